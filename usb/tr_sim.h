/* tr_sim.h - the "sim" backend: an in-process USB link to a simulated device
 * model, with a link model (speed, latency, faults) on the context's clock.
 *
 * The device model is the contract of usb/devmodel.h, implemented above (the
 * device core in src/device/devcore.c), so usb/ does not depend on proto/.
 * The same model is put on a real USB controller by tools/gadget.
 *
 * USB-level semantics modelled (what a real bus does, not what we wish):
 *  - OUT: the host's transfer is split into wMaxPacketSize packets. The device
 *    sees a "device transfer" end at a short packet (len % mps != 0) or a
 *    zero-length packet; bytes of transfers whose length is a multiple of mps
 *    with no ZLP after them run into the next transfer - as on FunctionFS.
 *  - IN: the device queues whole device transfers (one mux packet each) with a
 *    flag saying whether a ZLP follows. A host IN transfer completes when its
 *    buffer is full or the device transfer ends with a short packet/ZLP; a ZLP
 *    left over after a full buffer completes the next IN with 0 bytes.
 *  - Timing: a transfer takes latency + ceil(packets / per_frame) * frame_time
 *    (high speed: 13 x 512 B per 125 us microframe = 53.248 MB/s; full speed:
 *    19 x 64 B per 1 ms frame). With `link_off` completions are immediate.
 *  - Faults: a per-transfer error rate (TR_STATUS_ERROR), and a scheduled
 *    disconnect with re-enumeration (all transfers end NO_DEVICE, the device is
 *    absent for `reenum_gap_ns`, then lists again with a new address).
 *  - Churn: a device that leaves the bus for churn_gap_ns every
 *    churn_period_ns (first at churn_first_ns) and comes back each time as
 *    a new attachment (new address and session), as a phone on a loose
 *    connector or a test rack's USB switch does.
 *  - Several devices: one bus carries up to TR_SIM_MAX_PORTS devices, each
 *    with its own model, link, address, port path ("1-H.P": hub H, port P)
 *    and session; they share nothing but the clock and one event loop.
 *  - The model's bulk_state (optional): a NAKed endpoint holds its transfers
 *    (each still ends at its own timeout or cancel), a halted one ends them
 *    with TR_STATUS_STALL.
 */
#ifndef LP_TR_SIM_H
#define LP_TR_SIM_H

#include "usb/devmodel.h"
#include "usb/transport.h"

struct tr_sim_link {
	enum tr_speed speed;	   /* TR_SPEED_HIGH or TR_SPEED_FULL (timing); a SuperSpeed
				      value is reported as is and timed as high speed:
				      a phone's usbmux moves ~35 MB/s at 10 Gb/s too */
	uint64_t latency_ns;	   /* added to every transfer */
	bool link_off;		   /* no timing at all (bench, pure protocol tests) */
	double error_rate;	   /* probability a bulk transfer ends TR_STATUS_ERROR */
	uint64_t disconnect_at_ns; /* 0 = never; else drop the device at this time */
	uint64_t reenum_gap_ns;	   /* absent for this long, then re-enumerates */
	uint64_t seed;		   /* for error_rate */
	uint64_t churn_period_ns;  /* 0 = no churn; else leave every period... */
	uint64_t churn_gap_ns;	   /* ... for this long (< period) ... */
	uint64_t churn_first_ns;   /* ... the first time at this time */
	/* 0: an unplugged device is gone at once (its transfers end NO_DEVICE).
	 * Else as a kernel: for this long after the model stops being
	 * attached, every transfer ends ERROR (-71, EPROTO) and the device is
	 * still listed; then it is removed. */
	uint64_t removal_delay_ns;
	uint8_t hubs; /* hubs between the device and the root port (its port path) */
};

#define TR_SIM_MAX_PORTS 120 /* devices on one simulated bus (addresses 2..127) */
_Static_assert(TR_SIM_MAX_PORTS <= TR_LIST_MAX, "every simulated device fits one tr_list()");

/* One device on the simulated bus. Borrowed for the context's life. */
struct tr_sim_port {
	const struct devmodel_ops *ops;
	void *model;
	struct tr_sim_link link;
};

/* Argument for tr_ctx_new(&tr_sim_ops, env, &arg, ...). Borrowed for the
 * context's life. */
struct tr_sim_arg {
	const struct devmodel_ops *ops; /* one device (when nports is 0) */
	void *model;
	struct tr_sim_link link;
	uint8_t bus; /* bus number reported (default 1 if 0) */
	/* several devices: ports[0..nports), nports <= TR_SIM_MAX_PORTS; ops,
	 * model and link above are then ignored. Port i is at address 2 + i. */
	const struct tr_sim_port *ports;
	size_t nports;
};

/* Statistics of the link (for tests and the cable test): summed over every
 * device on the bus, or of port `i` only. */
struct tr_sim_stats {
	uint32_t disconnects;
	uint32_t enumerations;
	uint64_t errors_injected;
};
void tr_sim_get_stats(struct tr_ctx *ctx, struct tr_sim_stats *st);
int tr_sim_port_stats(struct tr_ctx *ctx, size_t i, struct tr_sim_stats *st);

#endif
