/* devcore.h - one standard USB device: what every device model of linkprobe
 * has in common, behind the device-model contract of usb/devmodel.h.
 *
 * The core does, once for all models (the simulated iPhone, the replay
 * device, the gadget's echo model, the benchmark model, the test models):
 *  - descriptors: the device descriptor, each configuration set at full and
 *    high speed, ASCII strings (UTF-16LE on the wire, LANGID 0x0409);
 *  - chapter 9: GET_DESCRIPTOR (device, configuration, string, device
 *    qualifier; truncated to wLength), SET/GET_CONFIGURATION, GET_STATUS
 *    (device, interface, endpoint), SET/GET_INTERFACE to an alternate setting
 *    that exists, CLEAR_FEATURE(ENDPOINT_HALT) on an endpoint that exists;
 *    every other standard request stalls;
 *  - endpoints: wMaxPacketSize from the active configuration and alternate
 *    settings at the current speed;
 *  - the usbmux device role (proto/mux.c, MUX_ROLE_DEVICE) on the usbmux
 *    interface (ff/fe/02) of the active configuration: created when such a
 *    configuration is selected, dropped on reset or reconfiguration;
 *  - the IN queue: every usbmux packet is one device transfer, followed by a
 *    ZLP when its length is a multiple of wMaxPacketSize (the ZLP rule,
 *    doc/protocol.md 2.10); sends can be held back to a time on the clock
 *    (a replayed reply delay); raw transfers for models without usbmux.
 *
 * The personality (struct devcore_personality) supplies what differs: vendor
 * and class requests, which usbmux ports listen (devcore_listen from its
 * `configured` hook), who serves an accepted connection, timers, and whether
 * the device is attached at all.
 *
 * Reference: USB 2.0 chapter 9; doc/protocol.md section 0 (a real iPhone's
 * descriptors), 2.10 (one mux packet per transfer).
 */
#ifndef LP_DEVCORE_H
#define LP_DEVCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_log.h"
#include "proto/mux.h"
#include "usb/devmodel.h"
#include "usb/transport.h"

#define DEVCORE_MAX_CONFIGS 8
#define DEVCORE_MAX_STRINGS 16
#define DEVCORE_STRING_MAX 126	     /* characters of one string descriptor: (255 - 2) / 2 */
#define DEVCORE_INQ_MAX 256	     /* raw IN transfers queued at once */
#define DEVCORE_SEND_MAX (64u << 20) /* bytes held back in the delayed-send queue */

struct devcore;

/* What a model adds to the core. Every member optional; `p` is the
 * personality's own object (devcore_new's `ud`). Hooks may call the
 * devcore_* functions below, except devcore_free. */
struct devcore_personality {
	/* Is the device on the bus now? Default: always. */
	bool (*attached)(void *p, uint64_t now);
	/* Per-attachment state must go (`bus`: a bus reset or detach; else a
	 * new SET_CONFIGURATION): called before the core drops its usbmux
	 * codec, so no connection of the old one outlives it. */
	void (*reset)(void *p, bool bus, uint64_t now);
	/* Configuration `config` (non-zero) was selected; the usbmux codec (if
	 * the configuration has the interface) exists and listens on nothing:
	 * call devcore_listen for the ports the device serves. */
	void (*configured)(void *p, uint8_t config, uint64_t now);
	/* Every control request the core does not answer itself (vendor, class,
	 * and descriptors it does not hold). Contract of devmodel_ops.control;
	 * default: stall. */
	int (*control)(void *p, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
		       uint64_t now);
	/* A bulk OUT transfer that is not usbmux's (another endpoint, or every
	 * transfer of a personality with `raw` set). */
	void (*bulk_out)(void *p, uint8_t ep, const uint8_t *data, size_t len, uint64_t now);
	/* A bulk OUT transfer for usbmux arrived: return false to drop it
	 * unseen (a device that ignores what the host sent: fault injection). */
	bool (*filter_out)(void *p, const uint8_t *data, size_t len, uint64_t now);
	/* usbmux: a host connected to a listening port (the personality decides
	 * who serves it, or devcore_close()s it), sent data, or the connection
	 * ended (either side). */
	void (*accept)(void *p, uint32_t conn, uint16_t port, uint64_t now);
	void (*data)(void *p, uint32_t conn, const uint8_t *data, size_t len, uint64_t now);
	void (*closed)(void *p, uint32_t conn, uint64_t now);
	/* The host is about to read the IN queue (top up a stream). */
	void (*in_poll)(void *p, uint64_t now);
	/* Own timers: the earliest time > now with something to do, or
	 * UINT64_MAX; tick runs what is due. tick is also called after every
	 * bulk OUT transfer (consequences of what the host just said). */
	uint64_t (*next_timer)(void *p, uint64_t now);
	void (*tick)(void *p, uint64_t now);
	/* Misbehaving on request (a hostile device; src/device/sim_hostile.c).
	 * control_seen: every control request, before it is answered.
	 * bulk_state: devmodel_ops.bulk_state (NAK or halt an endpoint).
	 * in_edit: a usbmux packet the codec made, about to go out as an IN
	 * transfer; may be rewritten in place (`len` bytes, not longer). */
	void (*control_seen)(void *p, const uint8_t setup[8], uint64_t now);
	enum devmodel_ep (*bulk_state)(void *p, uint8_t ep, uint64_t now);
	void (*in_edit)(void *p, uint8_t *pkt, size_t len, uint64_t now);
	/* No usbmux codec even on a usbmux interface: bulk OUT goes to
	 * bulk_out, IN comes from devcore_in_queue only. */
	bool raw;
};

/* New core for `pers` (borrowed, static) with `ud` passed to its hooks; log
 * borrowed, may be NULL. NULL on allocation failure. The descriptors are set
 * with the calls below before the model is put on a bus. */
struct devcore *devcore_new(const struct devcore_personality *pers, void *ud,
			    const struct lp_log *log);
void devcore_free(struct devcore *dc);

/* The model to hand a driver: ops + devcore_model(dc). */
extern const struct devmodel_ops devcore_model_ops;
static inline void *devcore_model(struct devcore *dc)
{
	return dc;
}
/* The personality object of a model built on the core, if its personality
 * is `pers`; else NULL (telling models apart from a driver's argument). */
void *devcore_owner(void *model, const struct devcore_personality *pers);

/* --- descriptors ---------------------------------------------------------- */

/* The 18-byte device descriptor (copied). LP_EBADMSG if it does not parse. */
int devcore_set_device(struct devcore *dc, const uint8_t *desc, size_t len);
/* Append configuration set number (index) n: its bytes at full and high speed
 * (copied; `hs` NULL = the same bytes at both speeds). The set must parse
 * (usb/usb_desc.h): LP_EBADMSG / LP_ETRUNC otherwise, LP_ETOOBIG past
 * DEVCORE_MAX_CONFIGS. */
int devcore_add_config(struct devcore *dc, const uint8_t *fs, size_t fs_len, const uint8_t *hs,
		       size_t hs_len);
/* String `index` (1..DEVCORE_MAX_STRINGS-1) as ASCII (copied, cut at
 * DEVCORE_STRING_MAX). Strings not set go to the personality's control. */
int devcore_set_string(struct devcore *dc, uint8_t index, const char *ascii);
/* The bus speed (selects the configuration bytes, wMaxPacketSize and the ZLP
 * rule). Default TR_SPEED_HIGH. */
void devcore_set_speed(struct devcore *dc, enum tr_speed speed);
/* Send every usbmux IN packet longer than `n` bytes in transfers of `n`
 * bytes (the last takes the rest), each ending the host's transfer: a device
 * that cuts its packets across transfers (hosts must reassemble them by the
 * header's length). 0 = one packet per transfer (the default). */
void devcore_set_in_split(struct devcore *dc, size_t n);
enum tr_speed devcore_speed(const struct devcore *dc);
/* Any descriptor as GET_DESCRIPTOR would return it at `speed` (type 1 device,
 * 2 configuration `index` (0-based), 3 string `index`, 6 qualifier): 0, or
 * LP_ESTALL if the core holds no such descriptor; truncated to cap. */
int devcore_descriptor(const struct devcore *dc, enum tr_speed speed, uint8_t type, uint8_t index,
		       uint8_t *out, size_t cap, size_t *len);
void devcore_identity(const struct devcore *dc, uint16_t *vid, uint16_t *pid, uint8_t *ncfg);

/* --- state ------------------------------------------------------------------ */

/* Active configuration (0 = unconfigured). */
uint8_t devcore_config(const struct devcore *dc);
/* Drop the attachment's state now (the device left the bus): as a bus reset. */
void devcore_detach(struct devcore *dc, uint64_t now);
/* The time of the entry point being served (the driver's `now`). */
uint64_t devcore_now(const struct devcore *dc);

/* --- usbmux ------------------------------------------------------------------ */

/* The usbmux protocol version the device answers (default 2), kept across
 * configurations. */
void devcore_set_mux_version(struct devcore *dc, uint32_t major);
/* The codec of the active configuration, or NULL (borrowed: gone at the next
 * reset). For statistics and queue depths. */
struct mux *devcore_mux(const struct devcore *dc);
int devcore_listen(struct devcore *dc, uint16_t port);
void devcore_unlisten(struct devcore *dc, uint16_t port);
/* Send on a connection `delay_ns` from now, in order with everything held
 * back before it (delay 0 with nothing held back: at once). 0, LP_ENODEV
 * without a codec, or mux_send's error. */
int devcore_send(struct devcore *dc, uint32_t conn, const uint8_t *buf, size_t len,
		 uint64_t delay_ns);
/* Reset a connection (RST). The personality's closed hook runs for it. */
void devcore_close(struct devcore *dc, uint32_t conn);
/* Bytes accepted by mux_send on conn and not yet on the bus. */
size_t devcore_unsent(const struct devcore *dc, uint32_t conn);

/* --- raw IN queue (models without usbmux) --------------------------------- */

/* Queue one device transfer on `ep` (copied). `allow_zlp`: a ZLP follows when
 * the length is a multiple of wMaxPacketSize (false: the bytes run into the
 * next transfer, as on a device that forgets the ZLP). LP_EAGAIN when full. */
int devcore_in_queue(struct devcore *dc, uint8_t ep, const uint8_t *data, size_t len,
		     bool allow_zlp);

#endif
