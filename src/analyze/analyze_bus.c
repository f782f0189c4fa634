/* analyze_bus.c - what only a bus-level capture shows, in the report: the
 * counters of src/capture/usbll.c (kept by the reader,
 * cap_reader_bus_stats) as metrics.bus, the bus speed for devices whose
 * speed the file does not otherwise say, and the verdict rule for a
 * corrupted wire (src/diag/diag_bus.c). The transfers themselves went
 * through the usual USB path (src/capture/reader_bus.c). */
#include <stdio.h>

#include "src/analyze/analyze_facts.h"

void an_bus_take(struct an *a, const struct cap_reader *rd)
{
	enum tr_speed sp = TR_SPEED_UNKNOWN;
	const struct usbll_stats *s = cap_reader_bus_stats(rd, &sp);

	if (!s)
		return;
	a->is_bus = true;
	a->bus = *s;
	a->bus_speed = sp;
	for (size_t i = 0; i < a->ndevs; i++) {
		struct an_dev *d = a->devs[i];
		if (d->speed_mbps <= 0 && sp != TR_SPEED_UNKNOWN)
			d->speed_mbps = (double)tr_speed_bps(sp) / 1e6;
	}
}

void an_bus_verdict(const struct an *a, struct diag_report *r)
{
	const struct usbll_stats *s = &a->bus;

	if (!a->is_bus)
		return;
	diag_rule_bus_corruption(r, s->crc5_bad + s->crc16_bad + s->garbage + s->malformed,
				 s->records, s->crc5_bad + s->crc16_bad, s->first_bad_pkt,
				 s->retries, s->gave_up);
}

static json_object *jint(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

json_object *an_bus_json(const struct an *a)
{
	const struct usbll_stats *s = &a->bus;
	json_object *o = json_object_new_object(), *pids = json_object_new_object(),
		    *eps = json_object_new_array();

	json_object_object_add(o, "speed",
			       json_object_new_string(a->bus_speed == TR_SPEED_UNKNOWN
							      ? "unknown"
							      : tr_speed_name(a->bus_speed)));
	json_object_object_add(o, "packets", jint(s->records));
	json_object_object_add(o, "bytes", jint(s->bytes));
	for (unsigned p = 0; p < 16; p++)
		if (s->by_pid[p])
			json_object_object_add(pids, usbll_pid_name(p), jint(s->by_pid[p]));
	json_object_object_add(o, "pids", pids);
	json_object_object_add(o, "crc5_errors", jint(s->crc5_bad));
	json_object_object_add(o, "crc16_errors", jint(s->crc16_bad));
	json_object_object_add(o, "garbage", jint(s->garbage));
	json_object_object_add(o, "malformed", jint(s->malformed));
	json_object_object_add(o, "clipped", jint(s->clipped));
	json_object_object_add(o, "unexpected", jint(s->unexpected));
	json_object_object_add(o, "first_bad_packet", jint(s->first_bad_pkt));
	json_object_object_add(o, "transactions", jint(s->transactions));
	json_object_object_add(o, "timeouts", jint(s->timeouts));
	json_object_object_add(o, "retries", jint(s->retries));
	json_object_object_add(o, "host_gave_up", jint(s->gave_up));
	json_object_object_add(o, "duplicates", jint(s->duplicates));
	json_object_object_add(o, "acks", jint(s->acks));
	json_object_object_add(o, "naks", jint(s->naks));
	json_object_object_add(o, "stalls", jint(s->stalls));
	json_object_object_add(o, "nyets", jint(s->nyets));
	json_object_object_add(o, "sofs", jint(s->sofs));
	json_object_object_add(o, "sof_missing", jint(s->sof_missing));
	json_object_object_add(o, "sof_late", jint(s->sof_late));
	json_object_object_add(o, "sof_frame_jumps", jint(s->sof_jumps));
	json_object_object_add(o, "resets", jint(s->resets));
	json_object_object_add(o, "set_address", jint(s->addresses));
	json_object_object_add(o, "splits", jint(s->splits));
	json_object_object_add(o, "pings", jint(s->pings));
	for (size_t i = 0; i < s->nep; i++) {
		const struct usbll_epstat *e = &s->ep[i];
		json_object *x = json_object_new_object();
		char name[16];
		snprintf(name, sizeof(name), "%u.%u%s", e->addr, e->ep & 0x0f,
			 e->ep & 0x80 ? "in" : "out");
		json_object_object_add(x, "endpoint", json_object_new_string(name));
		json_object_object_add(x, "tokens", jint(e->tokens));
		json_object_object_add(x, "naks", jint(e->naks));
		json_object_object_add(
			x, "nak_rate",
			json_object_new_double(e->tokens ? (double)e->naks / (double)e->tokens
							 : 0));
		json_object_object_add(x, "data_packets", jint(e->data));
		json_object_object_add(x, "bytes", jint(e->bytes));
		json_object_object_add(x, "failures", jint(e->failures));
		json_object_object_add(x, "stalls", jint(e->stalls));
		json_object_array_add(eps, x);
	}
	json_object_object_add(o, "endpoints", eps);
	return o;
}
