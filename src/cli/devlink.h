/* devlink.h - the path to the device as `trust` sees it, so its stages are
 * written once: open a connection to a device port, let time pass while the
 * device works (the Trust dialog), and load/save the pair record and this
 * host's SystemBUID.
 *
 * Two implementations:
 *   direct   our own usbmux over the transport (hostlink); records in
 *            --pair-dir (devlink.c)
 *   usbmuxd  --via-usbmuxd: the daemon's Connect; records and SystemBUID kept
 *            by the daemon (ReadPairRecord/SavePairRecord/ReadBUID)
 *            (via_usbmuxd.c, which also holds the stages that open it)
 */
#ifndef LP_DEVLINK_H
#define LP_DEVLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/cli/app.h"
#include "src/base/lp_error.h"
#include "proto/pair_store.h"
#include "proto/stream.h"

struct hl_link;
struct devlink;

struct devlink_ops {
	/* Mandatory. Open a connection to device `port`; *out owned
	 * (lp_stream_close). LP_ECONNREFUSED, LP_ETIMEDOUT, LP_ENODEV. */
	int (*connect)(struct devlink *l, uint16_t port, uint64_t deadline, struct lp_stream **out,
		       struct lp_errinfo *e);
	/* Mandatory. Return at `until`, having let the device progress; LP_ENODEV
	 * early if it went away. */
	int (*idle)(struct devlink *l, uint64_t until);
	/* Mandatory. The record for `udid`: *out owned with udid set; LP_ENOENT
	 * if there is none, else as pair_record_parse. */
	int (*record_load)(struct devlink *l, const char *udid, struct pair_record **out,
			   struct lp_errinfo *e);
	/* Mandatory. Store rec (borrowed) under rec->udid. */
	int (*record_save)(struct devlink *l, const struct pair_record *rec, struct lp_errinfo *e);
	/* Optional (NULL: nothing to check). Before a Pair: can a record be
	 * saved? 0, or the error pair_store_check_writable gives. */
	int (*record_check)(struct devlink *l, struct lp_errinfo *e);
	/* Mandatory. This host's SystemBUID (36-char UUID). */
	int (*system_buid)(struct devlink *l, char out[37], struct lp_errinfo *e);
	/* Mandatory. Where the record for `udid` lives, for messages:
	 * "/var/lib/lockdown/<udid>.plist" or "usbmuxd at /path, PairRecordID <udid>". */
	void (*record_name)(struct devlink *l, const char *udid, char *buf, size_t n);
	/* Optional (NULL: a device that left is not followed). The device left
	 * the bus: wait until the same device (same UDID) is back as a new
	 * attachment, or until `deadline`, and open it as at the start (direct:
	 * the usbmux configuration selected again, usbmux up; usbmuxd: the
	 * daemon lists it again, after its preflight). Every connection made
	 * before is dead. 0 with `where` ("address 7", "DeviceID 4") filled;
	 * LP_ENODEV when it is not back by the deadline; another lp_err when it
	 * came back but could not be opened (e filled). */
	int (*reattach)(struct devlink *l, uint64_t deadline, char *where, size_t n,
			struct lp_errinfo *e);
	/* Mandatory. Close what the link owns and free it. */
	void (*free)(struct devlink *l);
};

struct devlink {
	const struct devlink_ops *ops;
	const char *conn_kind;	       /* "mux connection", "usbmuxd connection" */
	const char *save_note;	       /* appended after a save: " (mode 0600)" */
	const char *daemon;	       /* through usbmuxd: "usbmuxd (pid 812)"; NULL direct */
	bool local_records;	       /* records are this host's files (pair_store.h errors) */
	struct hl_link *link;	       /* direct: the current host link (owned by the devlink;
				  replaced by reattach); NULL through usbmuxd */
	const struct tr_devinfo *info; /* direct: the attachment `link` is open on */
	void *impl;
};

static inline int devlink_connect(struct devlink *l, uint16_t port, uint64_t deadline,
				  struct lp_stream **out, struct lp_errinfo *e)
{
	return l->ops->connect(l, port, deadline, out, e);
}
static inline int devlink_idle(struct devlink *l, uint64_t until)
{
	return l->ops->idle(l, until);
}
static inline int devlink_record_load(struct devlink *l, const char *udid, struct pair_record **out,
				      struct lp_errinfo *e)
{
	return l->ops->record_load(l, udid, out, e);
}
static inline int devlink_record_save(struct devlink *l, const struct pair_record *rec,
				      struct lp_errinfo *e)
{
	return l->ops->record_save(l, rec, e);
}
static inline int devlink_record_check(struct devlink *l, struct lp_errinfo *e)
{
	return l->ops->record_check ? l->ops->record_check(l, e) : 0;
}
static inline int devlink_system_buid(struct devlink *l, char out[37], struct lp_errinfo *e)
{
	return l->ops->system_buid(l, out, e);
}
static inline void devlink_record_name(struct devlink *l, const char *udid, char *buf, size_t n)
{
	l->ops->record_name(l, udid, buf, n);
}
static inline int devlink_reattach(struct devlink *l, uint64_t deadline, char *where, size_t n,
				   struct lp_errinfo *e)
{
	if (!l->ops->reattach)
		return lp_err_set(e, LP_ENODEV, "this path cannot follow a device that left");
	return l->ops->reattach(l, deadline, where, n, e);
}
static inline void devlink_free(struct devlink *l)
{
	if (l)
		l->ops->free(l);
}

/* Direct path over an open host link (adopted: devlink_free closes it) to
 * the device `info` (copied); records in `pair_dir`; transport, clock and
 * capture from `app` (both borrowed). NULL on allocation failure (the link
 * is then closed). */
struct devlink *devlink_direct_new(struct lp_app *app, struct hl_link *link,
				   const struct tr_devinfo *info, const char *pair_dir);

/* --via-usbmuxd (via_usbmuxd.c). Run the stages "find device" (ListDevices;
 * --udid picks, else the first USB device) and "usbmuxd connect" (ReadBUID),
 * filling r->dev and setting the verdict on failure. *out owned. */
int via_usbmuxd_open(struct lp_app *app, struct diag_report *r, struct devlink **out);

/* The usbmux interface of the device in r->dev is held (find_usb_stages_held
 * said so in `held`): run the stage "usbmuxd connect" - find the daemon, the
 * device in its list (by UDID, waiting for its preflight), its SystemBUID -
 * and say who holds the device and that `doing` ("pairing", "measuring")
 * goes through it. *out owned. On failure the stage fails with the verdict:
 * DEVICE_BUSY when no daemon answers (someone else holds it), USBMUXD_ERROR
 * when the daemon does not list the device or answers with an error. */
int via_usbmuxd_held(struct lp_app *app, struct diag_report *r, const char *held, const char *doing,
		     struct devlink **out);

/* Whether an lp_err from a daemon request is the daemon failing to serve
 * (an error code, a malformed or missing answer) rather than the device's
 * answer relayed (refused port, device gone). */
bool via_usbmuxd_fault(int err);

/* `linkprobe list --via-usbmuxd`: the daemon's device list. Exit code. */
int cmd_list_usbmuxd(struct lp_app *app);

#endif
