/* cap_bus.h - the packets a modelled USB 2.0 bus carries for the transfers
 * of a transport context, written as a hardware bus analyzer would record
 * them (LINKTYPE_USB_2_0_HIGH_SPEED 295 / _FULL_SPEED 294 in pcapng; 288, speed
 * left to the reader, in classic pcap, which libpcap writes only for link
 * types it knows; one record per packet, PID first, CRCs included; see src/capture/usbll.h).
 *
 * Made for the simulated link (usb/tr_sim_bus.c), whose bus model it follows:
 * transfers take wMaxPacketSize packets (512 at high speed, 64 at full
 * speed, 64 on endpoint 0), each occupying 1/13 of a 125 us microframe
 * (1/19 of a 1 ms frame at full speed), and complete `latency_ns` after their
 * last packet, so a transfer's transactions are laid out backwards from its
 * completion. Time is the context clock's; the bus is serialized: a
 * transaction never overlaps another or crosses a (micro)frame boundary.
 *
 * What it writes:
 *  - SOF at the start of every (micro)frame that carries a transaction
 *    (frame number = ms since the clock's zero, mod 2048), or also every
 *    `sof_every_ns` while idle;
 *  - the enumeration the host controller driver does when a device (a new
 *    attachment: transport session) appears: after >= 10 ms of silence (the
 *    reset), SET_ADDRESS from address 0 to the device's address;
 *  - control transfers as SETUP/DATA0/ACK, a data stage with DATA1/DATA0
 *    toggles and 64-byte packets, and a status stage (zero-length DATA1 the
 *    other way); STALL where the transfer stalled;
 *  - bulk transfers as OUT or IN transactions with running toggles per
 *    endpoint (reset to DATA0 by SET_CONFIGURATION), a short packet or a ZLP
 *    where the transfer ended short; while an IN transfer waits for data the
 *    host polls it: IN + NAK every `nak_poll_ns` (the device has nothing
 *    queued);
 *  - a transfer that ended in error (the link's injected faults) as
 *    USBLL_ERR_LIMIT attempts whose data packet fails its CRC16 and gets no
 *    handshake (the host gives up); with `retry_rate`, a data packet is also
 *    hit once and retried successfully (what only the wire shows): its
 *    CRC16 fails (5 in 8), its token's CRC5 fails (2 in 8: the device
 *    ignores the transaction), or noise that is no packet comes first (1 in 8);
 *    at half that rate a SOF is hit (its CRC5 fails: that frame has no SOF);
 *  - nothing for a device that is gone (NO_DEVICE): its packets stop.
 *
 * Not modelled: bus time shared between endpoints beyond serialization,
 * PING/NYET flow control, split transactions.
 *
 * Like cap_tap, an observer: errors are kept and returned by cap_bus_error(). */
#ifndef LP_CAP_BUS_H
#define LP_CAP_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/capture/cap_writer.h"
#include "usb/transport.h"

#define CAP_BUS_PENDING_MAX 32 /* IN transfers polled at once */
#define CAP_BUS_DEVS_MAX 8     /* attachments remembered */

struct cap_bus_opts {
	enum tr_speed speed;   /* TR_SPEED_HIGH (default) or TR_SPEED_FULL */
	uint64_t latency_ns;   /* the link's per-transfer latency */
	uint64_t nak_poll_ns;  /* 0 = 1 ms */
	uint64_t sof_every_ns; /* 0 = SOF only in (micro)frames with traffic */
	double retry_rate;     /* probability a data packet is corrupted once, then retried */
	uint64_t seed;	       /* for retry_rate */
};

struct cap_bus;

/* `w` borrowed (must outlive the writer; one interface of link type 295 or
 * 294 is added to it), `clock` borrowed (wall time of context-clock ns). */
int cap_bus_new(struct cap_writer *w, const struct lp_clock *clock, const struct cap_bus_opts *o,
		struct cap_bus **out, struct lp_errinfo *e);
/* The observer (a tr_observer_fn; ud = the writer). */
void cap_bus_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err);
/* cap_bus_new() on ctx->env.clock plus tr_add_observer(). */
int cap_bus_attach(struct tr_ctx *ctx, struct cap_writer *w, const struct cap_bus_opts *o,
		   struct cap_bus **out, struct lp_errinfo *e);
/* Remove the observer from its context (no-op if not attached). */
void cap_bus_detach(struct cap_bus *b);
/* First write error (0 if none) and packets written. */
int cap_bus_error(const struct cap_bus *b);
uint64_t cap_bus_packets(const struct cap_bus *b);
/* NULL ok. The context must not report transfers any more. */
void cap_bus_free(struct cap_bus *b);

#endif
