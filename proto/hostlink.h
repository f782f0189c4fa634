/* hostlink.h - the host side of a usbmux link: a transport device, the mux
 * codec in host role, and blocking deadline-bounded streams (proto/stream.h)
 * over mux connections, for lockdown and the diagnosis.
 *
 * hl_open() reads the descriptors (usb/usb_probe.h) of the device it keeps, selects the usbmux configuration if it is not active, claims the
 * interface, keeps HL_NUM_RX bulk IN transfers of HL_RX_SIZE bytes in flight,
 * and negotiates VERSION (and SETUP for v2). Reference:
 * doc/protocol.md sections 1.4, 1.6, 1.7, 1.9, 2.
 *
 * Every wait is bounded by an absolute deadline on the transport context's
 * clock. Single-threaded: the thread that calls into a link drives its
 * transport context. A transfer that completes NO_DEVICE marks the link dead:
 * every later call returns LP_ENODEV. Other transfer errors are counted; the
 * next hl_pump()/stream call returns them once.
 */
#ifndef LP_HOSTLINK_H
#define LP_HOSTLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"
#include "usb/usb_probe.h"
#include "proto/mux.h"
#include "proto/stream.h"

#define HL_NUM_RX 3		   /* bulk IN transfers kept in flight (usbmuxd NUM_RX_LOOPS) */
#define HL_RX_SIZE 16384	   /* size of each (usbmuxd USB_MRU) */
#define HL_VERSION_TIMEOUT_MS 2000 /* default wait for the VERSION reply */
#define HL_RXBUF_MAX (16u << 20)   /* unread bytes per stream before it is reset */
#define HL_MAX_RX_ERRORS 8	   /* consecutive failed IN transfers before giving up */
/* OUT transfers submitted and not completed. A device that stalls (NAKs)
 * OUT forever keeps them all pending; past this the packets wait in the mux
 * codec's queue, whose cap (MUX_OUTQ_MAX_*) turns a device that keeps
 * flooding IN into a protocol error instead of unbounded host memory. */
#define HL_MAX_TX_INFLIGHT 64

struct hl_opts {
	uint32_t version_timeout_ms; /* 0 = HL_VERSION_TIMEOUT_MS */
	uint32_t want_major;	     /* 0 = 2; 1 forces v1 */
};

struct hl_stats {
	uint64_t xfers_in, xfers_out, zlps; /* completed bulk transfers */
	uint64_t bytes_in, bytes_out;
	uint64_t errors; /* transfers that ended neither COMPLETED nor CANCELLED */
	uint64_t submit_errors;
	int last_error; /* lp_err of the last one, 0 if none */
	/* how long OUT transfers have been pending without one completing
	 * (0 when none is pending): a device that NAKs what the host sends */
	uint64_t out_stalled_ns;
	struct mux_stats mux;
};

struct hl_link;

/* Open the device, bring usbmux up (see the file comment). `opts` may be NULL.
 * *out owned by the caller (hl_close). LP_EUNSUPPORTED when no configuration
 * has a usbmux interface, LP_ETIMEDOUT when VERSION is not answered. */
int hl_open(struct tr_ctx *ctx, const struct tr_devinfo *info, const struct hl_opts *opts,
	    struct hl_link **out, struct lp_errinfo *e);

/* Open a mux connection to device `port`. *out owned (lp_stream_close sends
 * RST and frees it; it stays safe to call after hl_close). LP_ECONNREFUSED if
 * the device answers RST, LP_ETIMEDOUT at the deadline. */
int hl_connect(struct hl_link *hl, uint16_t port, uint64_t deadline, struct lp_stream **out,
	       struct lp_errinfo *e);

/* Send pending packets and run transport events once (until one completion
 * or the deadline). 0, LP_ENODEV, or a transfer error seen since last time. */
int hl_pump(struct hl_link *hl, uint64_t deadline);

/* Reset open connections, cancel transfers (bounded), release, close. NULL ok. */
void hl_close(struct hl_link *hl);

const struct usbd_probe *hl_info(struct hl_link *hl); /* borrowed */
struct mux *hl_mux(struct hl_link *hl);		      /* borrowed */
struct tr_dev *hl_dev(struct hl_link *hl);	      /* borrowed (addition) */
void hl_get_stats(const struct hl_link *hl, struct hl_stats *st);
/* After transfer errors, before anyone blames the cable: is the device
 * still on the bus? An unplugged device's in-flight transfers end with an
 * error status first and the kernel removes it up to a few seconds later.
 * Looks at a fresh device list and asks the device (GET_DESCRIPTOR) until
 * one of them answers or `wait_ms` passed: LP_ENODEV (the link is marked
 * dead) when it left the bus, 0 when it is still there. */
int hl_check_present(struct hl_link *hl, uint32_t wait_ms);
#define HL_PRESENCE_WAIT_MS 3000 /* how long the kernel may take to remove it */
#define HL_PRESENCE_REQ_MS 200	 /* each status request, and between looks */

/* Why the link's last wait ended in LP_EPROTO, in a sentence ("" if it
 * did not): the evidence a protocol-error verdict names. Borrowed. */
const char *hl_why(const struct hl_link *hl);
uint32_t hl_mux_version(const struct hl_link *hl);
bool hl_dead(const struct hl_link *hl); /* a NO_DEVICE completion was seen (addition) */

/* Observe connection payload (for captures): dir 0 host->device, 1
 * device->host; event 0 data, 1 open, 2 close (data NULL for 1 and 2).
 * `fn` NULL removes it. ud borrowed. */
typedef void (*hl_stream_observer_fn)(void *ud, uint32_t conn, uint16_t sport, uint16_t dport,
				      int dir, const uint8_t *data, size_t len, int event);
void hl_set_stream_observer(struct hl_link *hl, hl_stream_observer_fn fn, void *ud);

#endif
