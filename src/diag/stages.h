/* stages.h - the one stage vocabulary: every stage any command or the
 * capture analyzer reports, by id. The name is what the user reads and what
 * JSON carries; it holds no data (bus numbers, counts and versions go in the
 * stage's detail), so a live run and `analyze` on its capture name the same
 * stages the same way.
 *
 * Order of a `trust` run (direct):
 *   find device -> descriptors -> usbmux -> lockdown connect -> QueryType ->
 *   device info -> pair record -> Pair -> StartSession -> TLS ->
 *   StartService -> StopSession
 * (a phone that re-enumerates after Trust during StartSession..StopSession:
 * "re-enumeration" in place of the stage it cut short, then StartSession
 * again); through usbmuxd, "usbmuxd connect" follows "find device" and the USB
 * stages are not run. `--cable-test`: find device -> descriptors -> usbmux
 * -> round trips [-> throughput (--throughput: a file through com.apple.afc)].
 * `list`: enumerate, then one "descriptors" (direct) or
 * "device" (usbmuxd) per device. */
#ifndef LP_DIAG_STAGES_H
#define LP_DIAG_STAGES_H

#include "src/diag/diag.h"

enum diag_stage_id {
	DIAG_STAGE_FIND_DEVICE,
	DIAG_STAGE_DESCRIPTORS,
	DIAG_STAGE_USBMUX,
	DIAG_STAGE_USBMUXD_CONNECT,
	DIAG_STAGE_LOCKDOWN_CONNECT,
	DIAG_STAGE_QUERY_TYPE,
	DIAG_STAGE_DEVICE_INFO,
	DIAG_STAGE_PAIR_RECORD,
	DIAG_STAGE_PAIR,
	DIAG_STAGE_START_SESSION,
	DIAG_STAGE_TLS,
	DIAG_STAGE_START_SERVICE,
	DIAG_STAGE_STOP_SESSION,
	DIAG_STAGE_ROUND_TRIPS,
	DIAG_STAGE_THROUGHPUT,
	DIAG_STAGE_ENUMERATE,
	DIAG_STAGE_DEVICE,
	DIAG_STAGE_REENUMERATION, /* trust: the phone left after Trust and came back */
	DIAG_STAGE_COUNT
};

/* "find device", "Pair", ... (never NULL; "?" for an id out of range). */
const char *diag_stage_name(enum diag_stage_id id);

/* Open stage `id` (diag_begin with its name). */
struct diag_stage *diag_stage_begin(struct diag_report *r, enum diag_stage_id id);
/* A stage that was not run, with the reason. */
void diag_stage_skip(struct diag_report *r, enum diag_stage_id id, const char *why);

#endif
