/* find.h - the "find device" stage shared by every command. */
#ifndef LP_FIND_H
#define LP_FIND_H

#include "src/cli/app.h"
#include "src/diag/rules.h"
#include "usb/transport.h"

/* List Apple devices, waiting up to wait_ns for one to appear; pick the one
 * with --udid if given (else the first normal-mode one, else the first).
 * Fills r->dev from the listing. Returns 0 with *out, LP_ENODEV if none,
 * other lp_err on transport failure. */
int find_device(struct lp_app *app, struct diag_report *r, uint64_t wait_ns, struct tr_devinfo *out,
		struct lp_errinfo *e);

/* Fill r->dev from a listing entry (vid/pid/bus/addr/speed/mode). */
void find_fill_dev(struct diag_report *r, const struct tr_devinfo *d);

#endif
