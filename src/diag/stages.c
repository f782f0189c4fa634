/* stages.c - stage names (see stages.h). */
#include "src/diag/stages.h"

static const char *const names[DIAG_STAGE_COUNT] = {
	[DIAG_STAGE_FIND_DEVICE] = "find device",
	[DIAG_STAGE_DESCRIPTORS] = "descriptors",
	[DIAG_STAGE_USBMUX] = "usbmux",
	[DIAG_STAGE_USBMUXD_CONNECT] = "usbmuxd connect",
	[DIAG_STAGE_LOCKDOWN_CONNECT] = "lockdown connect",
	[DIAG_STAGE_QUERY_TYPE] = "QueryType",
	[DIAG_STAGE_DEVICE_INFO] = "device info",
	[DIAG_STAGE_PAIR_RECORD] = "pair record",
	[DIAG_STAGE_PAIR] = "Pair",
	[DIAG_STAGE_START_SESSION] = "StartSession",
	[DIAG_STAGE_TLS] = "TLS",
	[DIAG_STAGE_START_SERVICE] = "StartService",
	[DIAG_STAGE_STOP_SESSION] = "StopSession",
	[DIAG_STAGE_ROUND_TRIPS] = "round trips",
	[DIAG_STAGE_THROUGHPUT] = "throughput",
	[DIAG_STAGE_ENUMERATE] = "enumerate",
	[DIAG_STAGE_DEVICE] = "device",
	[DIAG_STAGE_REENUMERATION] = "re-enumeration",
};

const char *diag_stage_name(enum diag_stage_id id)
{
	return (unsigned)id < DIAG_STAGE_COUNT && names[id] ? names[id] : "?";
}

struct diag_stage *diag_stage_begin(struct diag_report *r, enum diag_stage_id id)
{
	return diag_begin(r, diag_stage_name(id));
}

void diag_stage_skip(struct diag_report *r, enum diag_stage_id id, const char *why)
{
	diag_skip(r, diag_stage_name(id), why);
}
