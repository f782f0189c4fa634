/* transport.h - the USB transport interface: one ops table per backend, async
 * transfers stamped with ns timestamps, observers, fault injection, and one
 * blocking helper written once on top of async.
 *
 * Backends: "libusb" (real devices, usb/tr_libusb.c), "sim" (in-process link to
 * a simulated device model, usb/tr_sim.c), "replay" (device side played from a
 * capture). Backends implement async only.
 *
 * Model: libusb's. Submitting and completing are separate: tr_submit() returns
 * an error only when the transfer could not be queued (it then never
 * completes); otherwise exactly one completion follows, delivered from
 * tr_handle_events() through xfer->done, with xfer->status saying how it ended.
 * Every transfer is stamped at submit (submit_ns) and at completion (done_ns)
 * from the context's lp_clock, and every submit and completion is shown to
 * every observer (the capture tap and the diagnosis hang there).
 *
 * Threading: none. One thread drives a context. */
#ifndef LP_TRANSPORT_H
#define LP_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"

enum tr_speed {
	TR_SPEED_UNKNOWN = 0,
	TR_SPEED_LOW,		/* 1.5 Mb/s */
	TR_SPEED_FULL,		/* 12 Mb/s */
	TR_SPEED_HIGH,		/* 480 Mb/s */
	TR_SPEED_SUPER,		/* 5 Gb/s */
	TR_SPEED_SUPER_PLUS,	/* 10 Gb/s */
	TR_SPEED_SUPER_PLUS_X2, /* 20 Gb/s (Gen 2x2) */
};
/* bits per second (UNKNOWN -> 0) */
uint64_t tr_speed_bps(enum tr_speed s);
/* "high", "full", ... */
const char *tr_speed_name(enum tr_speed s);

enum tr_xfer_type {
	TR_XFER_CONTROL = 2, /* values match usbmon's xfer_type */
	TR_XFER_BULK = 3,
};

enum tr_status {
	TR_STATUS_COMPLETED = 0,
	TR_STATUS_ERROR, /* bus/protocol error (CRC, bitstuff, babble...) */
	TR_STATUS_TIMED_OUT,
	TR_STATUS_CANCELLED,
	TR_STATUS_STALL,
	TR_STATUS_NO_DEVICE,
	TR_STATUS_OVERFLOW,
};
const char *tr_status_name(enum tr_status s);
/* COMPLETED -> 0, STALL -> LP_ESTALL, NO_DEVICE -> LP_ENODEV, ... */
int tr_status_to_err(enum tr_status s);

#define TR_SERIAL_MAX 128

/* Devices every tr_list() caller makes room for: a USB bus has 127
 * addresses, and a rack of phones needs all of them found and followed (a
 * device past a smaller cap could not be picked by --udid, and one listing
 * that missed it would declare it gone). */
#define TR_LIST_MAX 128

/* One device as found by tr_list() (before opening). */
struct tr_devinfo {
	uint8_t bus;
	uint8_t addr; /* changes when the device re-enumerates */
	uint16_t vid, pid;
	enum tr_speed speed;
	uint8_t num_configs;
	uint8_t active_config; /* 0 = unconfigured / unknown */
	char port_path[32];    /* "1-2.3"-style physical location, "" if unknown */
	uint32_t session; /* backend's identity of this attachment; changes on re-enumeration */
};

struct tr_ctx;
struct tr_dev;
struct tr_xfer;

typedef void (*tr_done_fn)(struct tr_xfer *x);

struct tr_xfer {
	/* --- set by the caller before tr_submit() --- */
	struct tr_dev *dev;
	enum tr_xfer_type type;
	uint8_t endpoint; /* bit 7 = IN. Control: 0x00 or 0x80 from setup[0] */
	uint8_t setup
		[8];  /* control only: bmRequestType bRequest wValue(LE) wIndex(LE) wLength(LE) */
	uint8_t *buf; /* borrowed; data stage only (no setup bytes) */
	size_t len;   /* OUT: bytes to send; IN: buffer size */
	uint32_t timeout_ms; /* 0 = none; then the caller must bound the wait by cancelling */
	tr_done_fn done;     /* called from tr_handle_events(); may resubmit or free */
	void *user;
	/* --- written by the transport --- */
	enum tr_status status;
	size_t actual; /* bytes transferred */
	uint64_t id;   /* unique per context, stable across S and C (like a URB address) */
	uint64_t submit_ns;
	uint64_t done_ns;
	/* --- private to the transport --- */
	bool in_flight;
	void *priv;
};

/* Observer events: every transfer is shown at submit and at completion.
 * Also shown: configuration changes done outside transfers (SET_CONFIGURATION
 * through an ioctl), as a synthetic control transfer with both events. */
enum tr_event { TR_EV_SUBMIT, TR_EV_COMPLETE, TR_EV_SUBMIT_ERROR };
typedef void (*tr_observer_fn)(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err);

/* ---------------------------------------------------------------------------
 * Backend ops table. Every member documents: mandatory/optional, return,
 * calling context. All return 0 or a negative lp_err and write out-parameters
 * only on success.
 */
struct tr_ops {
	const char *name;
	size_t ctx_priv_size; /* bytes of backend state allocated with the context */

	/* mandatory. Set up backend state (ctx->priv zeroed, ctx_priv_size bytes).
	 * `arg` is the backend-specific configuration (borrowed, may be NULL). */
	int (*init)(struct tr_ctx *ctx, const void *arg, struct lp_errinfo *e);
	/* mandatory. Release backend state. All devices already closed. */
	void (*exit)(struct tr_ctx *ctx);
	/* mandatory. Fill up to `max` Apple devices (vid 0x05ac) into out[], set *n. */
	int (*list)(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n,
		    struct lp_errinfo *e);
	/* mandatory. Open the device described by `info` (from list). */
	int (*open)(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev *dev,
		    struct lp_errinfo *e);
	/* mandatory. Close; in-flight transfers were cancelled and reaped by core. */
	void (*close)(struct tr_dev *dev);
	/* mandatory. Active configuration value into *cfg (0 = unconfigured). */
	int (*get_configuration)(struct tr_dev *dev, int *cfg);
	/* mandatory. Select configuration `cfg`, detaching kernel drivers bound to
	 * its interfaces first where the OS has them. */
	int (*set_configuration)(struct tr_dev *dev, int cfg, struct lp_errinfo *e);
	/* mandatory. Claim / release an interface of the active configuration.
	 * LP_EBUSY when someone else holds it (e->msg says who, if known). */
	int (*claim_interface)(struct tr_dev *dev, int ifnum, struct lp_errinfo *e);
	int (*release_interface)(struct tr_dev *dev, int ifnum);
	/* mandatory. Queue a transfer. On success exactly one completion follows. */
	int (*submit)(struct tr_xfer *x);
	/* mandatory. Request cancellation of an in-flight transfer; it completes
	 * later with TR_STATUS_CANCELLED (or its real status if it finished first). */
	int (*cancel)(struct tr_xfer *x);
	/* mandatory. Deliver completions by calling tr_complete() for each; return
	 * after at least one completion or when now >= deadline_ns (return 0 in
	 * both cases). Must not block past deadline_ns. */
	int (*handle_events)(struct tr_ctx *ctx, uint64_t deadline_ns);
	/* optional (NULL = 0). Wait for devices to appear/disappear: returns once
	 * the device list may have changed or at the deadline. */
	int (*wait_hotplug)(struct tr_ctx *ctx, uint64_t deadline_ns);
	/* optional (NULL: the backend always completes cancellations promptly).
	 * Sever a cancelled transfer that did not come back in time: from now on
	 * the backend must never touch `x` or its buffer again (the caller's
	 * memory is going away); the late completion is dropped inside the
	 * backend. Called by the core only. */
	void (*detach)(struct tr_xfer *x);
	/* optional (NULL: the backend cannot tell). How many USB host
	 * controllers (buses with a root hub) the system shows, whatever is
	 * plugged into them: 0 in a container or VM without USB. */
	int (*host_controllers)(struct tr_ctx *ctx, size_t *n, struct lp_errinfo *e);
};

/* Environment handed to every backend (all borrowed, must outlive the ctx). */
struct tr_env {
	struct lp_clock *clock;
	const struct lp_log *log;
	struct lp_rand *rand;
};

struct tr_observer {
	tr_observer_fn fn;
	void *ud;
};

#define TR_MAX_OBSERVERS 4

/* Fault plan applied by the core to any backend (so faults work on real
 * hardware too). Counting is over submits on this context. */
struct tr_faults {
	uint64_t fail_submit_nth; /* 0 = off; the Nth submit returns fail_submit_err */
	bool fail_submit_persist; /* ... and every one after it */
	int fail_submit_err;
	double error_rate; /* probability a completion becomes error_status */
	enum tr_status error_status;
	uint8_t only_endpoint; /* 0xff = any endpoint; else only this endpoint address */
	int fail_open_err;     /* 0 = off; else every tr_open fails with it (LP_EACCES...) */
	int fail_claim_err;    /* 0 = off; else every tr_claim_interface fails with it (LP_EBUSY) */
	bool no_host;	       /* the system shows no USB host controller: nothing is listed */
	char claim_driver[24]; /* with fail_claim_err: a kernel driver of this name holds it */
};

struct tr_tasks;
struct tr_task;

struct tr_ctx {
	const struct tr_ops *ops;
	struct tr_env env;
	void *priv; /* backend state */
	struct tr_observer obs[TR_MAX_OBSERVERS];
	size_t nobs;
	struct tr_faults faults;
	uint64_t submits;
	uint64_t next_id;
	struct tr_stats {
		uint64_t submitted, completed, failed, cancelled, bytes_in, bytes_out;
	} stats;
	struct tr_tasks *tasks; /* cooperative tasks on this context (usb/tr_task.h), or NULL */
};

struct tr_dev {
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	void *priv; /* backend state for the open device */
	size_t in_flight;
	bool gone;	      /* a completion said NO_DEVICE */
	struct tr_task *task; /* the task that opened it (its completions wake it), or NULL */
};

/* Backend tables (defined in their files). */
extern const struct tr_ops tr_sim_ops;
extern const struct tr_ops tr_libusb_ops;

/* Create a context on a backend. `arg` is passed to ops->init. */
int tr_ctx_new(const struct tr_ops *ops, const struct tr_env *env, const void *arg,
	       struct tr_ctx **out, struct lp_errinfo *e);
/* Close nothing implicitly: all devices must be closed first. NULL ok. */
void tr_ctx_free(struct tr_ctx *ctx);

int tr_add_observer(struct tr_ctx *ctx, tr_observer_fn fn, void *ud);
void tr_set_faults(struct tr_ctx *ctx, const struct tr_faults *f); /* NULL = none */

int tr_list(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n,
	    struct lp_errinfo *e);
int tr_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev **out,
	    struct lp_errinfo *e);
/* USB host controllers the system shows (see tr_ops.host_controllers): the
 * count, or -1 when the backend cannot tell. The no_host fault makes it 0. */
long tr_host_controllers(struct tr_ctx *ctx);
/* Cancels in-flight transfers, waits (bounded, 1 s) for them, then closes. */
void tr_close(struct tr_dev *dev);
int tr_get_configuration(struct tr_dev *dev, int *cfg);
int tr_set_configuration(struct tr_dev *dev, int cfg, struct lp_errinfo *e);
int tr_claim_interface(struct tr_dev *dev, int ifnum, struct lp_errinfo *e);
int tr_release_interface(struct tr_dev *dev, int ifnum);

/* Async. Fills id and submit_ns, notifies observers, applies faults. */
int tr_submit(struct tr_xfer *x);
int tr_cancel(struct tr_xfer *x);
/* Drive completions until at least one happened or deadline_ns passed.
 * Inside a task (usb/tr_task.h): yield until a completion on one of the
 * task's devices or the deadline. */
int tr_handle_events(struct tr_ctx *ctx, uint64_t deadline_ns);
int tr_wait_hotplug(struct tr_ctx *ctx, uint64_t deadline_ns);

/* Called by backends only: stamps done_ns, applies faults, updates stats,
 * notifies observers, then calls x->done. */
void tr_complete(struct tr_xfer *x, enum tr_status status, size_t actual);
/* Called by backends that change configuration without a transfer. */
void tr_notify_synthetic_control(struct tr_dev *dev, const uint8_t setup[8], enum tr_status st);

/* Blocking helper (the only one): submit, handle events until done or
 * timeout, cancel on timeout and reap (bounded). Returns 0 if the transfer
 * COMPLETED, else tr_status_to_err(status) (LP_ETIMEDOUT on timeout). x->actual
 * is valid either way. x->done/user are overwritten. */
int tr_xfer_sync(struct tr_xfer *x, uint32_t timeout_ms);

/* Convenience on top of tr_xfer_sync. */
int tr_control_sync(struct tr_dev *dev, uint8_t bmRequestType, uint8_t bRequest, uint16_t wValue,
		    uint16_t wIndex, uint8_t *data, uint16_t wLength, uint32_t timeout_ms,
		    size_t *actual);
int tr_bulk_sync(struct tr_dev *dev, uint8_t endpoint, uint8_t *data, size_t len,
		 uint32_t timeout_ms, size_t *actual);

#endif
