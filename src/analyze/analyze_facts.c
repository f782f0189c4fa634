/* analyze_facts.c - the analyzer's fact store: devices, anomalies, latency
 * samples, stage spans (analyze_facts.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_str.h"

/* --- small helpers ---------------------------------------------------------- */

void an_anomaly_add(struct an *a, enum an_kind k, struct an_dev *d, const char *fmt, ...)
{
	char tmp[AN_ANOMALY_LEN];
	va_list ap;

	char *first = NULL;

	a->nanom++;
	if (k == AN_K_PROTOCOL)
		a->nviol++;
	if (d && k == AN_K_PROTOCOL && !d->violations++)
		first = d->first_violation;
	if (d && k == AN_K_HOST && !d->host_violations++)
		first = d->first_host_violation;
	if (a->nanom_kept >= AN_ANOMALY_KEEP && !first)
		return;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (first)
		lp_sanitize_str(first, AN_ANOMALY_LEN, tmp);
	if (a->nanom_kept >= AN_ANOMALY_KEEP)
		return;
	a->anom_kind[a->nanom_kept] = k;
	lp_sanitize_str(a->anomalies[a->nanom_kept++], AN_ANOMALY_LEN, tmp);
	if (a->o.log)
		lp_logf(a->o.log, LP_LOG_DEBUG, "analyze: %s", tmp);
}

size_t an_anomaly_count(const struct an *a)
{
	return a->nanom_kept;
}
const char *an_anomaly(const struct an *a, size_t i)
{
	return i < a->nanom_kept ? a->anomalies[i] : NULL;
}

void an_sample(struct an_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint64_t *v;
		if (cap > AN_SAMPLES_MAX)
			return;
		v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
}

struct an_dev *an_dev_get(struct an *a, const char *key, bool create)
{
	struct an_dev *d;

	for (size_t i = 0; i < a->ndevs; i++)
		if (strcmp(a->devs[i]->key, key) == 0)
			return a->devs[i];
	if (!create)
		return NULL;
	if (a->ndevs == AN_MAX_DEVS) {
		if (!a->dev_overflow_noted)
			an_anomaly_add(a, AN_K_CAPTURE, NULL,
				       "packet %llu: more than %d devices; later ones ignored",
				       (unsigned long long)a->cur_pkt, AN_MAX_DEVS);
		a->dev_overflow_noted = true;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->sel_config = -1;
	d->first_t = UINT64_MAX;
	a->devs[a->ndevs++] = d;
	return d;
}

void an_dev_touch(struct an *a, struct an_dev *d, uint64_t t)
{
	d->packets++;
	if (t < d->first_t) {
		d->first_t = t;
		d->first_pkt = a->cur_pkt;
	}
	if (t > d->last_t)
		d->last_t = t;
}

struct an *an_new(const struct an_opts *opts)
{
	struct an *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	if (opts)
		a->o = *opts;
	a->conn_list = json_object_new_array();
	return a;
}

void an_free(struct an *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->ndevs; i++)
		free(a->devs[i]);
	free(a->rtt_ctrl.v);
	free(a->rtt_mux.v);
	free(a->rtt_lkd.v);
	if (a->conn_list)
		json_object_put(a->conn_list);
	free(a);
}

void an_span_start(struct an_span *s, uint64_t t, uint64_t pkt)
{
	if (!s->seen) {
		s->seen = true;
		s->t0 = t;
		s->pkt0 = pkt;
	}
}

void an_span_end(struct an_span *s, uint64_t t, uint64_t pkt)
{
	if (!s->seen)
		an_span_start(s, t, pkt);
	s->done = true;
	s->t1 = t;
	s->pkt1 = pkt;
}

struct an_dev *an_relay_dev(struct an *a, uint32_t id)
{
	char key[32];
	struct an_dev *d;

	snprintf(key, sizeof(key), "umx:%u", id);
	d = an_dev_get(a, key, true);
	if (d && !d->via_usbmuxd) {
		d->via_usbmuxd = true;
		d->umx_id = id;
		d->sel_config = -1;
		d->instances = 1;
	}
	return d;
}
