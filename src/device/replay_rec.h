/* replay_rec.h - what a recorded USB capture says about one device: the data
 * model the replay device (replaydev.h) plays back, and its loader.
 *
 * Loading reads a pcap/pcapng file through the one capture reader
 * (src/capture/reader.h: usbmon link types 220 and 189, USBPcap 249), picks
 * the Apple device (the one whose serial is
 * the given UDID, else the first in normal mode, else the first Apple device)
 * and extracts what the device said: its descriptors (GET_DESCRIPTOR replies),
 * every control reply, the usbmux VERSION it answered, which ports it accepted
 * or refused, and each lockdown request's meaning with the reply it got (paired
 * per connection), the first disconnect and the bulk error count. The
 * enumerations that are the same phone (same bus; same address, or same ids
 * and serial after a re-enumeration) are joined into one recording; the
 * phone coming back at another address is a disconnect even when usbmon
 * never showed it gone. An enumeration at the default address 0 (the
 * kernel's first descriptor read) is chosen only when nothing else is.
 *
 * The recording is immutable once loaded; the player keeps its own state
 * (which exchanges it used).
 *
 * Reference: doc/protocol.md (usbmux, lockdown, usbmon).
 */
#ifndef LP_REPLAY_REC_H
#define LP_REPLAY_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <plist/plist.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "usb/transport.h"
#include "usb/usb_desc.h"

#define RDEV_MAX_CTRL 256			/* distinct control replies */
#define RDEV_MAX_EXCHANGES 8192			/* lockdown request/reply pairs */
#define RDEV_MAX_PORTS 64			/* accepted/refused ports remembered */
#define RDEV_MAX_DELAY_NS (30ull * LP_NS_PER_S) /* longest reply delay replayed */
#define RDEV_MEANING_MAX 160

/* One recorded control request and how the device answered it. */
struct rdev_ctrl {
	uint8_t setup[8];
	bool stall;
	uint8_t *data; /* owned; the IN data stage (NULL for OUT / none) */
	size_t len;
};

/* One recorded lockdown request (by meaning) and the reply it got. */
struct rdev_xchg {
	char meaning[RDEV_MEANING_MAX];
	plist_t reply; /* owned */
	uint64_t delay_ns;
	bool tls_start;	 /* StartSession answered with EnableSessionSSL */
	bool tls_failed; /* ... and the device reset the TLS connection */
};

struct rdev_rec {
	/* identity */
	struct usbd_device dd;
	uint8_t bus, addr;
	char serial[80];
	struct usbd_config cfg[USBD_MAX_CONFIGS];
	bool cfg_ok[USBD_MAX_CONFIGS];
	enum tr_speed speed;
	/* control replies, longest successful answer per request */
	struct rdev_ctrl ctrl[RDEV_MAX_CTRL];
	size_t nctrl;
	/* lockdown exchanges in recorded order */
	struct rdev_xchg *x;
	size_t nx;
	/* usbmux */
	uint16_t accepted[RDEV_MAX_PORTS], refused[RDEV_MAX_PORTS];
	size_t nacc, nref;
	uint16_t svc_ports[RDEV_MAX_PORTS]; /* non-lockdown ports accepted, in order */
	size_t nsvc;
	uint32_t mux_major;
	/* link: first record, first disconnect, when it came back (UINT64_MAX never) */
	uint64_t t_first, disc_at, back_at;
	size_t disconnects;
	uint64_t bulk, bulk_err;
};

/* Load from an open capture (adopted: closed by the call, also on failure).
 * udid optional (borrowed). log borrowed. Returns 0 and *out (owned,
 * rdev_rec_free), LP_EFORMAT (not pcap/pcapng, or not a USB link type),
 * LP_ENOENT (no device in it), LP_EBADMSG (the device never answered
 * GET_DESCRIPTOR(device), or the capture started after it was plugged in:
 * usbmux without descriptors), LP_ENOMEM. Streaming: what is kept is bounded by
 * the caps above, not by the file's size. */
int rdev_rec_load(FILE *f, const char *udid, const struct lp_log *log, struct rdev_rec **out,
		  struct lp_errinfo *e);
void rdev_rec_free(struct rdev_rec *rec);

/* The recorded reply to a control request matching setup[0..3] (and
 * wIndex unless any_index), or NULL. Borrowed. */
const struct rdev_ctrl *rdev_rec_ctrl(const struct rdev_rec *rec, const uint8_t setup[8],
				      bool any_index);

/* The meaning of a lockdown request as matched ("GetValue Key=ProductVersion",
 * "StartService Service=com.apple.x", "Pair"); `req` borrowed. */
void rdev_meaning(plist_t req, char *out, size_t n);

#endif
