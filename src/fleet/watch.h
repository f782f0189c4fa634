/* watch.h - `linkprobe watch`: every Apple device on the transport, for as
 * long as it runs, on one event loop (usb/tr_task.h: one task watches the
 * bus, one task per attached device probes it; no thread per device).
 *
 * What it follows, per phone (known by UDID, so a phone that leaves and
 * comes back is the same phone re-enumerated):
 *  - arrivals and departures (the transport's hotplug, polled every
 *    poll_ns), the port path, address, speed and mode of each attachment;
 *    re-enumerations (the same UDID back after leaving) and speed changes;
 *  - every probe_ns a cheap probe: a control round trip (GET_DESCRIPTOR),
 *    a usbmux round trip (connect to a closed port, answered by RST) and a
 *    lockdown QueryType - the last two only when no other process (usbmuxd)
 *    holds the usbmux interface; with the round-trip times and error counts.
 *
 * It reports through a callback (events, one at a time, borrowed for the
 * call) and keeps the registry the Prometheus file is written from
 * (src/fleet/prom.h). It never prints. Memory is bounded: at most
 * WATCH_MAX_DEVICES phones are remembered (the longest gone is forgotten
 * first) and an attachment's state goes with it.
 */
#ifndef LP_WATCH_H
#define LP_WATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"
#include "usb/transport.h"

#define WATCH_MAX_DEVICES 1024
#define WATCH_PROBE_NS_DEFAULT (5 * LP_NS_PER_S)
#define WATCH_POLL_NS_DEFAULT (250 * LP_NS_PER_MS)
#define WATCH_REQ_MS 1000 /* one probe round trip may take this long */

enum watch_probe_kind {
	WATCH_PROBE_CONTROL,
	WATCH_PROBE_USBMUX,
	WATCH_PROBE_LOCKDOWN,
	WATCH_NPROBE
};
/* "control", "usbmux", "lockdown" */
const char *watch_probe_name(enum watch_probe_kind k);

/* One phone, as the registry keeps it. */
struct watch_dev {
	char udid[64];
	char port_path[32];
	char product_type[48]; /* from lockdown GetValue ProductType, "" until known */
	const char *mode;      /* "normal", "recovery", "dfu", ... */
	uint16_t vid, pid;
	uint8_t bus, addr;
	uint32_t session; /* the transport's attachment */
	enum tr_speed speed;
	bool present;
	bool held;	/* another process holds the usbmux interface (usbmuxd) */
	bool no_usbmux; /* no usbmux interface (DFU, recovery, camera only) */
	uint64_t first_seen_ns, last_seen_ns, left_ns;
	uint64_t arrivals, departures, reenumerations, speed_changes;
	uint64_t probes;
	uint64_t probe_errors[WATCH_NPROBE];
	uint64_t transfer_errors;   /* failed USB transfers seen by the host link */
	double rtt_s[WATCH_NPROBE]; /* last successful round trip, -1 if none yet */
	unsigned tasks;		    /* private to watch.c: probe tasks still running on it */
};

enum watch_ev_kind {
	WATCH_EV_ARRIVED,      /* a phone not seen before */
	WATCH_EV_REENUMERATED, /* a phone seen before is back (new attachment) */
	WATCH_EV_LEFT,	       /* a phone left the bus */
	WATCH_EV_SPEED,	       /* a phone came back at another speed */
	WATCH_EV_PROBE, /* one probe round done (rtt_s < 0: that probe failed or was not run) */
	WATCH_EV_ERROR, /* one probe failed: kind and message */
};
/* "arrived", "reenumerated", "left", "speed", "probe", "error" */
const char *watch_ev_name(enum watch_ev_kind k);

struct watch_event {
	enum watch_ev_kind kind;
	uint64_t t_ns; /* on the transport's clock */
	const struct watch_dev *dev;
	double gap_s;		      /* REENUMERATED: how long it was gone */
	enum tr_speed old_speed;      /* SPEED */
	double rtt_s[WATCH_NPROBE];   /* PROBE: this round (-1: failed / not run) */
	enum watch_probe_kind failed; /* ERROR */
	const char *msg;	      /* ERROR: what failed (sanitized) */
};

typedef void (*watch_event_fn)(void *ud, const struct watch_event *ev);

struct watch;

struct watch_opts {
	uint64_t probe_ns;		   /* 0 = WATCH_PROBE_NS_DEFAULT */
	uint64_t poll_ns;		   /* 0 = WATCH_POLL_NS_DEFAULT */
	uint64_t duration_ns;		   /* 0 = until *stop */
	const volatile sig_atomic_t *stop; /* set from a signal handler; may be NULL */
	/* Called every tick_ns (and once at the end) with the registry, for the
	 * metrics file; may be NULL. */
	void (*tick)(void *ud, const struct watch *w);
	uint64_t tick_ns; /* 0 = 1 s */
	watch_event_fn on_event;
	void *ud;
};

struct watch_totals {
	uint64_t arrivals, departures, reenumerations, probes, probe_errors, transfer_errors;
	size_t devices_seen, devices_present;
	double seconds;
};

/* Watch ctx until opts->duration_ns passed or *opts->stop is set; ctx
 * borrowed, must have no task scheduler yet. *out (owned: watch_free) keeps
 * the registry for a last look. 0, or an lp_err from the transport. */
int watch_run(struct tr_ctx *ctx, const struct watch_opts *opts, struct watch **out,
	      struct lp_errinfo *e);
void watch_free(struct watch *w);

/* The registry: phones remembered (present or gone), borrowed until the
 * next event or watch_free. */
size_t watch_device_count(const struct watch *w);
const struct watch_dev *watch_device_at(const struct watch *w, size_t i);
void watch_get_totals(const struct watch *w, struct watch_totals *t);
/* The context's clock, for timestamps. */
const struct lp_clock *watch_clock(const struct watch *w);

#endif
