/* cable.h - the cable test's parts shared between its files (cmd_cable.c,
 * cable_throughput.c). */
#ifndef LP_CABLE_H
#define LP_CABLE_H

#include <stdint.h>

#include "proto/hostlink.h"
#include "src/cli/app.h"
#include "src/diag/diag.h"
#include "usb/transport.h"

/* Bytes moved each way when --throughput gives no size: about one second at
 * the link's practical rate, whole MiB, 1..256 MiB. */
uint64_t cable_throughput_default_bytes(enum tr_speed speed);

/* The "throughput" stage over the open link (borrowed) to the device of
 * r->dev: see cable_throughput.c. Returns 0 (also when the stage was
 * skipped or the device refused the file) or the error that set the
 * verdict. */
int cable_throughput(struct lp_app *app, struct diag_report *r, struct hl_link *link,
		     enum tr_speed speed);

#endif
