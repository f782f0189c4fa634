/* cable_throughput.c - `--cable-test --throughput[=MiB]`: how fast the link
 * really moves data, measured with a file through the device's file
 * service (com.apple.afc), after the round trips.
 *
 * With the stored pair record: StartSession (+ session TLS) on lockdown,
 * StartService com.apple.afc (no EscrowBag: the media area does not need
 * it), then a temporary file in the media area is written in 1 MiB
 * requests, its size checked, read back, compared byte for byte and
 * removed (also when something failed half-way, so nothing is left on the
 * device), and the session is stopped. The data is pseudo-random, so a link
 * that compresses cannot flatter the figure. Each request is timed; the
 * stage reports MB/s each way, the spread over the requests and the fraction
 * of the link's practical rate; diag_rule_throughput judges it.
 *
 * Without a pair record the stage is skipped and says what is needed; the
 * cable test's verdict from the round trips stands. A record this host
 * cannot read, or a damaged one, is the host's fault as in `trust`
 * (PAIR_RECORD_ACCESS, PAIR_RECORD_CORRUPT) when the link is fine. Reference:
 * doc/protocol.md 4.12 (AFC). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/afc.h"
#include "proto/hostlink.h"
#include "proto/lockdown_client.h"
#include "proto/pair_store.h"
#include "src/cli/app.h"
#include "src/cli/cable.h"
#include "src/diag/rules.h"
#include "src/diag/stages.h"

#define TP_CHUNK (1u << 20)
#define TP_MIN_BYTES (1u << 20)
#define TP_MAX_BYTES (256u << 20)
#define TP_REQ_S 10   /* one lockdown request or 1 MiB AFC request may take this long */
#define TP_BUDGET_S 4 /* the default size stops writing after this long (a slow link) */

struct tp_run {
	struct lp_app *app;
	struct diag_report *r;
	struct diag_stage *s;
	struct hl_link *link;
	struct pair_record *rec;
	bool record_bad; /* its host certificate or key does not load */
	struct lp_stream *lkd_stream, *afc_stream;
	struct lkd_client *lkd;
	struct afc_client *afc;
	char *session_id;
	bool in_session;
	uint8_t *out, *in; /* one chunk each */
	struct lp_errinfo e;
};

uint64_t cable_throughput_default_bytes(enum tr_speed speed)
{
	double mb = diag_practical_mbytes((double)tr_speed_bps(speed) / 1e6);
	uint64_t b = (uint64_t)(mb * 1e6); /* ~1 s at the practical rate */

	b = (b + TP_CHUNK - 1) / TP_CHUNK * TP_CHUNK;
	if (b < TP_MIN_BYTES)
		b = TP_MIN_BYTES;
	if (b > TP_MAX_BYTES)
		b = TP_MAX_BYTES;
	return b;
}

static uint64_t dl(struct tp_run *t)
{
	return lp_clock_now(&t->app->clock) + TP_REQ_S * LP_NS_PER_S;
}

/* Chunk `i` of the pattern: xorshift64 bytes from a per-chunk seed. */
static void fill(uint8_t *buf, size_t n, uint64_t seed, uint64_t i)
{
	uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * (i + 1));

	for (size_t k = 0; k < n; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (size_t b = 0; b < 8 && k + b < n; b++)
			buf[k + b] = (uint8_t)(x >> (8 * b));
	}
}

static int __attribute__((format(printf, 2, 3))) skip(struct tp_run *t, const char *fmt, ...)
{
	char why[DIAG_DETAIL];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	diag_end(t->r, t->s, DIAG_ST_SKIPPED, "%s", why);
	return 0;
}

/* This host's pair record cannot be used (`err`, `msg`: as proto/pair_store.h
 * reports them): the host's fault, as in trust (diag_rule_pair_store) -
 * PAIR_RECORD_ACCESS or PAIR_RECORD_CORRUPT - when the link itself is fine;
 * after a link verdict (FLAKY, DISCONNECTED...) the stage fails with it and
 * the link verdict stands. */
static int store_fault(struct tp_run *t, int err, const char *msg)
{
	if (t->r->verdict == DIAG_V_GOOD || t->r->verdict == DIAG_V_DEGRADED)
		diag_rule_pair_store(t->r, t->s, err, msg);
	else
		diag_end(t->r, t->s, DIAG_ST_FAIL, "the pair record cannot be used: %s", msg);
	return 0;
}

static void minmax(double v, double *lo, double *hi)
{
	if (*lo == 0 || v < *lo)
		*lo = v;
	if (v > *hi)
		*hi = v;
}

static double rate(uint64_t bytes, uint64_t ns)
{
	return ns ? (double)bytes / ((double)ns / LP_NS_PER_S) / 1e6 : 0;
}

/* Session and service: 0, or an error with t->e set. */
static int open_afc(struct tp_run *t)
{
	uint16_t port = 0;
	bool ssl = false, svc_ssl = false;
	int ret;

	ret = hl_connect(t->link, MUX_PORT_LOCKDOWN, dl(t), &t->lkd_stream, &t->e);
	if (ret)
		return ret;
	t->lkd = lkd_client_new(t->lkd_stream, "linkprobe");
	if (!t->lkd)
		return lp_err_set(&t->e, LP_ENOMEM, "out of memory");
	ret = lkd_start_session(t->lkd, t->rec->host_id, t->rec->system_buid, &t->session_id, &ssl,
				dl(t), &t->e);
	if (ret)
		return ret;
	t->in_session = true;
	if (ssl) {
		X509 *cert;
		EVP_PKEY *key;
		const char *bad;

		t->record_bad = !pair_record_host_identity(t->rec, &cert, &key, &bad);
		ret = !t->record_bad
			      ? lkd_start_tls(t->lkd, cert, key, dl(t), &t->e)
			      : lp_err_set(&t->e, LP_EBADMSG,
					   "the pair record's HostCertificate or HostPrivateKey "
					   "is not a usable PEM %s",
					   bad);
		X509_free(cert);
		EVP_PKEY_free(key);
		if (ret)
			return ret;
	}
	ret = lkd_start_service(t->lkd, AFC_SERVICE, NULL, &port, &svc_ssl, dl(t), &t->e);
	if (ret)
		return ret;
	if (svc_ssl)
		return lp_err_set(&t->e, LP_EUNSUPPORTED,
				  "the device wants TLS on %s (not implemented for it)",
				  AFC_SERVICE);
	ret = hl_connect(t->link, port, dl(t), &t->afc_stream, &t->e);
	if (ret)
		return ret;
	t->afc = afc_client_new(t->afc_stream);
	return t->afc ? 0 : lp_err_set(&t->e, LP_ENOMEM, "out of memory");
}

static int transfer(struct tp_run *t, const char *path, uint64_t total, uint64_t seed,
		    struct diag_throughput_facts *f)
{
	struct lp_clock *clk = &t->app->clock;
	uint64_t h = 0, size = 0, t0, w_ns = 0, r_ns = 0, start = lp_clock_now(clk);
	uint64_t budget = t->app->throughput_bytes ? UINT64_MAX : TP_BUDGET_S * LP_NS_PER_S;
	int ret;

	ret = afc_file_open(t->afc, path, AFC_MODE_WRONLY, &h, dl(t), &t->e);
	if (ret)
		return ret;
	for (uint64_t i = 0, off = 0; off < total; i++, off += TP_CHUNK) {
		size_t n = total - off < TP_CHUNK ? (size_t)(total - off) : TP_CHUNK;
		fill(t->out, n, seed, i);
		t0 = lp_clock_now(clk);
		ret = afc_file_write(t->afc, h, t->out, n, dl(t), &t->e);
		if (ret)
			return ret;
		t0 = lp_clock_now(clk) - t0;
		w_ns += t0;
		minmax(rate(n, t0), &f->write_min, &f->write_max);
		out_progress(t->app, (double)(lp_clock_now(clk) - t->r->t0) / LP_NS_PER_S,
			     t->s->name, "writing: %" PRIu64 " of %" PRIu64 " MiB", (off + n) >> 20,
			     total >> 20);
		if (off + n < total && lp_clock_now(clk) - start >= budget) {
			f->cut = true; /* enough to judge a slow link: read back what is there */
			total = off + n;
			break;
		}
	}
	ret = afc_file_close(t->afc, h, dl(t), &t->e);
	if (ret == 0)
		ret = afc_file_size(t->afc, path, &size, dl(t), &t->e);
	if (ret)
		return ret;
	if (size != total)
		return lp_err_set(&t->e, LP_EPROTO,
				  "the device stored %" PRIu64 " of the %" PRIu64 " bytes written",
				  size, total);
	ret = afc_file_open(t->afc, path, AFC_MODE_RDONLY, &h, dl(t), &t->e);
	if (ret)
		return ret;
	for (uint64_t i = 0, off = 0; off < total; i++, off += TP_CHUNK) {
		size_t n = total - off < TP_CHUNK ? (size_t)(total - off) : TP_CHUNK, got = 0;
		size_t have = 0;
		t0 = lp_clock_now(clk);
		while (have < n) {
			ret = afc_file_read(t->afc, h, t->in + have, n - have, &got, dl(t), &t->e);
			if (ret)
				return ret;
			if (got == 0)
				return lp_err_set(&t->e, LP_EPROTO,
						  "the file ended at %" PRIu64 " of %" PRIu64
						  " bytes when read back",
						  off + have, total);
			have += got;
		}
		t0 = lp_clock_now(clk) - t0;
		r_ns += t0;
		minmax(rate(n, t0), &f->read_min, &f->read_max);
		fill(t->out, n, seed, i);
		if (memcmp(t->in, t->out, n) != 0) {
			size_t k = 0;
			while (t->in[k] == t->out[k])
				k++;
			return lp_err_set(&t->e, LP_EPROTO,
					  "the data read back differs from what was written at "
					  "byte %" PRIu64,
					  off + k);
		}
		out_progress(t->app, (double)(lp_clock_now(clk) - t->r->t0) / LP_NS_PER_S,
			     t->s->name, "reading back: %" PRIu64 " of %" PRIu64 " MiB",
			     (off + n) >> 20, total >> 20);
	}
	ret = afc_file_close(t->afc, h, dl(t), &t->e);
	if (ret)
		return ret;
	f->bytes = total;
	f->secs = (double)(lp_clock_now(clk) - start) / LP_NS_PER_S;
	f->write_mbytes = rate(total, w_ns);
	f->read_mbytes = rate(total, r_ns);
	return 0;
}

static void close_all(struct tp_run *t)
{
	struct lp_errinfo e = {0};

	afc_client_free(t->afc);
	lp_stream_close(t->afc_stream);
	if (t->in_session && t->lkd)
		lkd_stop_session(t->lkd, t->session_id, dl(t), &e);
	lkd_client_free(t->lkd);
	lp_stream_close(t->lkd_stream);
	free(t->session_id);
	pair_record_free(t->rec);
	free(t->out);
	free(t->in);
}

int cable_throughput(struct lp_app *app, struct diag_report *r, struct hl_link *link,
		     enum tr_speed speed)
{
	struct tp_run t = {.app = app, .r = r, .link = link};
	struct diag_throughput_facts f = {.speed_mbps = (double)tr_speed_bps(speed) / 1e6};
	const char *dir = app->pair_dir ? app->pair_dir : PAIR_RECORD_DEFAULT_DIR;
	uint64_t total = app->throughput_bytes ? app->throughput_bytes
					       : cable_throughput_default_bytes(speed);
	char path[96];
	bool refused = false;
	int ret;

	t.s = diag_stage_begin(r, DIAG_STAGE_THROUGHPUT);
	if (!r->dev.udid[0])
		return skip(&t, "%s", "the device's UDID is not known: no pair record to use");
	ret = pair_record_load(dir, r->dev.udid, &t.rec, &t.e);
	if (ret == LP_ENOENT)
		return skip(&t,
			    "needs a pairing: there is no pair record for this device in %s; run "
			    "`linkprobe trust --pair`, tap Trust, then run the test again",
			    dir);
	if (ret)
		return store_fault(&t, ret, t.e.msg);
	t.out = malloc(TP_CHUNK);
	t.in = malloc(TP_CHUNK);
	if (!t.out || !t.in) {
		close_all(&t);
		diag_end(r, t.s, DIAG_ST_FAIL, "out of memory");
		return LP_ENOMEM;
	}
	ret = open_afc(&t);
	if (ret == 0) {
		uint64_t seed = lp_rand_next(&app->rand);
		struct lp_errinfo e2 = {0};
		int rm;

		snprintf(path, sizeof(path), "/linkprobe-throughput-%016" PRIx64 ".tmp", seed);
		ret = transfer(&t, path, total, seed, &f);
		refused = ret && afc_last_status(t.afc) != AFC_S_SUCCESS;
		rm = afc_remove_path(t.afc, path, dl(&t), &e2);
		if (ret == 0 && rm && rm != LP_ENOENT) {
			ret = rm;
			t.e = e2;
		}
	}
	close_all(&t);
	if (ret && t.record_bad) /* the record's own certificate or key */
		return store_fault(&t, ret, t.e.msg);
	if (ret) {
		diag_rule_throughput_failed(r, t.s, ret, t.e.msg, refused);
		return refused ? 0 : ret;
	}
	diag_rule_throughput(r, t.s, &f);
	json_object_object_add(r->metrics, "throughput_bytes",
			       json_object_new_int64((int64_t)total));
	json_object_object_add(r->metrics, "throughput_write_mbps",
			       json_object_new_double(f.write_mbytes));
	json_object_object_add(r->metrics, "throughput_read_mbps",
			       json_object_new_double(f.read_mbytes));
	json_object *spread = json_object_new_object();
	json_object_object_add(spread, "write_min", json_object_new_double(f.write_min));
	json_object_object_add(spread, "write_max", json_object_new_double(f.write_max));
	json_object_object_add(spread, "read_min", json_object_new_double(f.read_min));
	json_object_object_add(spread, "read_max", json_object_new_double(f.read_max));
	json_object_object_add(r->metrics, "throughput_spread_mbps", spread);
	json_object_object_add(r->metrics, "throughput_practical_mbps",
			       json_object_new_double(diag_practical_mbytes(f.speed_mbps)));
	return 0;
}
