/* replaydev.h - the device side of a recorded USB capture, played back as a
 * device model behind usb/tr_sim.h (`--device replay:FILE`).
 *
 * The recording is loaded by replay_load.c into the data model of
 * replay_rec.h (what the device said); this file plays it back.
 *
 * Playing back matches host requests by meaning, not bytes, so a capture made
 * by another host tool can drive linkprobe:
 *  - control: by (bmRequestType, bRequest, wValue, wIndex); a shorter wLength
 *    truncates; unknown requests stall. SET_CONFIGURATION/SET_INTERFACE/
 *    GET_CONFIGURATION/CLEAR_FEATURE are answered from the descriptors.
 *  - usbmux: VERSION answered with the recorded major; SYN accepted on the
 *    ports the recording accepted, RST elsewhere.
 *  - lockdown: by Request (+ Key/Domain for Get/Set/RemoveValue, + Service for
 *    StartService): the next unused recorded exchange with that meaning, in
 *    the recording's order (Pair: pending, pending, success replays so); when
 *    a meaning's exchanges are used up its last reply repeats. A request with
 *    no recorded counterpart is a divergence: the connection is reset and
 *    rdev_divergence() names the request and what the recording has next.
 *    Except GetValue of a key the recording's host never asked, when the
 *    recorded device did answer GetValue: UniqueDeviceID is the recorded USB
 *    serial, any other key is answered MissingValue with a warning naming it
 *    (counted in rdev_summary.unrecorded).
 *  - session TLS cannot be replayed byte for byte (fresh keys): after a
 *    recorded StartSession with EnableSessionSSL the model is a TLS server
 *    with a throwaway self-signed certificate (hosts do not verify it) and
 *    accepts any client certificate. Inside TLS it answers by meaning from
 *    what the recording shows: GetValue from recorded plaintext replies,
 *    StartService with the next service port the host connected to in the
 *    recording, StopSession with Success. A recorded TLS failure (device
 *    reset the connection before sending any application data) replays as a
 *    handshake failure (reset on the first handshake bytes).
 *  - timing: each lockdown reply is held back by the delay the recording shows
 *    between request and reply, on the context clock; the recorded disconnect
 *    (-19/-108 statuses, or the same phone enumerated again at another
 *    address) and re-enumeration are returned by rdev_link() as the sim
 *    link's disconnect and re-enumeration gap; the bulk error rate the
 *    recording shows becomes the link's error rate (errors after a device's
 *    last good transfer before it left are its leaving, not the rate).
 *
 * Reference: doc/protocol.md (usbmux, lockdown, usbmon).
 */
#ifndef LP_REPLAYDEV_H
#define LP_REPLAYDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <plist/plist.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/device/devcore.h"
#include "usb/tr_sim.h"
#include "src/device/replay_rec.h"

#define RDEV_DIVERGENCE_MAX 512

/* All optional. Strings borrowed for the load call only. */
struct rdev_opts {
	const char *udid; /* pick the device with this serial / UDID */
	bool no_timing;	  /* replies without the recorded delays */
};

struct rdev;

/* Load from an open capture (adopted: closed by the call, also on failure)
 * or a path. clock and log borrowed, must outlive the model. Returns 0 and
 * *out (owned, rdev_free), LP_EFORMAT (not pcap/pcapng or an unsupported link
 * type), LP_ENOENT (file missing or no device in it), LP_EBADMSG (the device
 * never answered GET_DESCRIPTOR(device), or the capture started after it was
 * plugged in: usbmux without descriptors), LP_ENOMEM. */
int rdev_load_file(FILE *f, const struct rdev_opts *o, struct lp_clock *clock,
		   const struct lp_log *log, struct rdev **out, struct lp_errinfo *e);
int rdev_load_path(const char *path, const struct rdev_opts *o, struct lp_clock *clock,
		   const struct lp_log *log, struct rdev **out, struct lp_errinfo *e);
void rdev_free(struct rdev *r);

/* The device model to hand a driver (usb/devmodel.h): ops devcore_model_ops
 * (src/device/devcore.h), model rdev_model(r). Borrowed, lives as long as r. */
void *rdev_model(struct rdev *r);
/* The replay device behind a driver's model pointer, or NULL if the model is
 * not a replay device. */
struct rdev *rdev_of_model(void *model);

/* Link parameters from the recording: speed (from the bulk wMaxPacketSize),
 * no added latency, the bulk error rate, and the first recorded disconnect
 * placed at `now` + its offset from the first record, with the recorded gap
 * until the device came back (disconnect_at_ns 0 if none). */
int rdev_link(const struct rdev *r, uint64_t now, struct tr_sim_link *out);

/* The first divergence as one sentence ("host sent GetValue Key=Foo;
 * recording has next: GetValue Key=ProductVersion, StartSession"), or NULL.
 * Borrowed. */
const char *rdev_divergence(const struct rdev *r);

/* What the recording holds, for the CLI and tests. */
struct rdev_summary {
	uint16_t vid, pid;
	uint8_t bus, addr; /* of the recorded device */
	char udid[80];	   /* serial string, "" if not recorded */
	uint32_t mux_version;
	size_t control_replies, exchanges, accepted_ports, refused_ports;
	size_t disconnects;
	uint64_t bulk_transfers, bulk_errors;
	size_t replayed, reused; /* exchanges answered so far / answered again */
	size_t unrecorded;	 /* GetValue keys the recording lacks: answered MissingValue */
};
void rdev_get_summary(const struct rdev *r, struct rdev_summary *s);

#endif
