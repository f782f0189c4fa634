/* devmodel.h - the USB device-model contract: what a device model (the
 * simulated iPhone, the replay device, the benchmark and test models, all
 * built on src/device/devcore.h) offers to a driver that puts it on a bus.
 *
 * Drivers: the "sim" transport backend (usb/tr_sim.c: an in-process bus on
 * the context's clock) and the FunctionFS gadget (tools/gadget/lp_gadget.c: a
 * real USB device controller). The contract lives here, in neither of them,
 * so models depend on usb/ only and each driver can be replaced.
 *
 * USB semantics a model relies on (the driver provides them):
 *  - OUT: bulk_out() gets one whole device transfer, ended on the bus by a
 *    short packet or a zero-length packet (ZLP).
 *  - IN: bulk_in_next() hands out one device transfer and says whether a ZLP
 *    follows it; the driver splits it into packets.
 *  - control: the driver hands every SETUP to control() (a gadget whose
 *    controller answers chapter-9 itself may hand only the rest).
 *  - `now` is the driver's clock (virtual or real), in ns.
 */
#ifndef LP_DEVMODEL_H
#define LP_DEVMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a bulk endpoint answers the host right now (devmodel_ops.bulk_state). */
enum devmodel_ep {
	DEVMODEL_EP_READY, /* takes / gives data as usual */
	DEVMODEL_EP_NAK,   /* NAKs: the host's transfer stays pending, nothing moves */
	DEVMODEL_EP_STALL, /* halted: the host's transfer ends with a STALL handshake */
};

/* The device model. All calls come from one driving thread at a time. Every
 * method is mandatory but bulk_state. `m` is the model object the driver was
 * given. */
struct devmodel_ops {
	/* Is a device attached now? false for a charge-only cable. */
	bool (*attached)(void *m, uint64_t now);
	/* Device descriptor fields the driver needs to list the device. */
	void (*identity)(void *m, uint16_t *vid, uint16_t *pid, uint8_t *num_configs);
	/* The device was (re)attached or bus-reset: back to the default state
	 * (unconfigured). */
	void (*reset)(void *m, uint64_t now);
	/* Control transfer. For IN, write up to `len` bytes to data and set *actual;
	 * for OUT, `data` holds `len` bytes. Return 0, or LP_ESTALL to stall. */
	int (*control)(void *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
		       uint64_t now);
	/* wMaxPacketSize of `ep` in the active configuration and alternate
	 * settings (0 if the endpoint does not exist there). */
	uint16_t (*max_packet)(void *m, uint8_t ep);
	/* One complete host->device transfer (ended by a short packet or ZLP). */
	void (*bulk_out)(void *m, uint8_t ep, const uint8_t *data, size_t len, uint64_t now);
	/* Next device->host transfer on `ep`, if any: *data owned by the model and
	 * valid until the next call; *zlp says whether the device sends a ZLP after
	 * it. Returns 0 with data, LP_EAGAIN if nothing is queued. */
	int (*bulk_in_next)(void *m, uint8_t ep, const uint8_t **data, size_t *len, bool *zlp,
			    uint64_t now);
	/* Earliest time > now at which the model has something to do (a timer),
	 * or UINT64_MAX. */
	uint64_t (*next_timer)(void *m, uint64_t now);
	/* Run timers due at `now`. */
	void (*tick)(void *m, uint64_t now);
	/* Optional (NULL: always DEVMODEL_EP_READY): how bulk endpoint `ep`
	 * answers the host's next packet - asked before data moves on it, so a
	 * model can NAK an endpoint for good or halt it (a hostile device). */
	enum devmodel_ep (*bulk_state)(void *m, uint8_t ep, uint64_t now);
};

#endif
