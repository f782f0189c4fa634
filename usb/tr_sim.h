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
 */
#ifndef LP_TR_SIM_H
#define LP_TR_SIM_H

#include "usb/devmodel.h"
#include "usb/transport.h"

struct tr_sim_link {
	enum tr_speed speed;	   /* TR_SPEED_HIGH or TR_SPEED_FULL */
	uint64_t latency_ns;	   /* added to every transfer */
	bool link_off;		   /* no timing at all (bench, pure protocol tests) */
	double error_rate;	   /* probability a bulk transfer ends TR_STATUS_ERROR */
	uint64_t disconnect_at_ns; /* 0 = never; else drop the device at this time */
	uint64_t reenum_gap_ns;	   /* absent for this long, then re-enumerates */
	uint64_t seed;		   /* for error_rate */
};

/* Argument for tr_ctx_new(&tr_sim_ops, env, &arg, ...). Borrowed for the
 * context's life. */
struct tr_sim_arg {
	const struct devmodel_ops *ops;
	void *model;
	struct tr_sim_link link;
	uint8_t bus; /* bus number reported (default 1 if 0) */
};

/* Statistics of the link (for tests and the cable test). */
struct tr_sim_stats {
	uint32_t disconnects;
	uint32_t enumerations;
	uint64_t errors_injected;
};
void tr_sim_get_stats(struct tr_ctx *ctx, struct tr_sim_stats *st);

#endif
