/* replaydev.c - plays a recorded capture's device side (replay_rec.h) as a
 * personality on the device core (src/device/devcore.h: descriptors from the
 * recording, chapter 9, usbmux, the IN queue with the recorded reply delays)
 * with a handler on the lockdown connection machine (lkd_server.h). See
 * replaydev.h for what is matched how; the limits:
 *  - session TLS is not replayed: it is re-done with a throwaway key, and
 *    what happened inside the recorded TLS is inferred (the service ports
 *    the host connected to afterwards); GetValue inside TLS is answered only
 *    from plaintext replies;
 *  - GetValue of a key the recording never asked (the host that made it
 *    asked others), when the recorded device answered GetValue at all:
 *    UniqueDeviceID from the USB serial, any other key MissingValue (with a
 *    warning);
 *  - service connections other than lockdown are accepted and otherwise
 *    silent (their payload is not replayed);
 *  - one disconnect (the first) is replayed; transfer errors are replayed as
 *    a rate, not at their recorded positions.
 *
 * Reference: doc/protocol.md (usbmux, lockdown).
 */
#include "src/device/replaydev.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "usb/usb_desc.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "proto/pair_cert.h"
#include "src/device/devcore.h"
#include "src/device/lkd_server.h"

#define RD_NEXT_SHOWN 3 /* recorded alternatives named in a divergence */

struct rdev {
	struct lp_clock *clock;
	const struct lp_log *log;
	bool timing;
	struct rdev_rec *rec; /* owned */
	bool *used;	      /* per recorded exchange: answered already */
	size_t svc_next;
	size_t replayed, reused;
	size_t unrecorded;  /* GetValue keys answered MissingValue */
	struct devcore *dc; /* owned */
	struct lks *srv;    /* owned */
	X509 *srv_cert;
	EVP_PKEY *srv_key;
	char divergence[RDEV_DIVERGENCE_MAX];
};

static int player_init(struct rdev *r);

/* ---- loading --------------------------------------------------------------- */

int rdev_load_file(FILE *f, const struct rdev_opts *o, struct lp_clock *clock,
		   const struct lp_log *log, struct rdev **out, struct lp_errinfo *e)
{
	struct rdev *r;
	int ret;

	if (!f)
		return lp_err_set(e, LP_EINVAL, "replay: no capture");
	r = calloc(1, sizeof(*r));
	if (!r) {
		fclose(f);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	r->clock = clock;
	r->log = log;
	r->timing = !(o && o->no_timing);
	ret = rdev_rec_load(f, o ? o->udid : NULL, log, &r->rec, e);
	if (!ret) {
		r->used = calloc(r->rec->nx ? r->rec->nx : 1, sizeof(*r->used));
		if (!r->used || player_init(r))
			ret = lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	if (ret) {
		rdev_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int rdev_load_path(const char *path, const struct rdev_opts *o, struct lp_clock *clock,
		   const struct lp_log *log, struct rdev **out, struct lp_errinfo *e)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return lp_err_set(e, LP_ENOENT, "replay: cannot open %s", path);
	return rdev_load_file(f, o, clock, log, out, e);
}

/* ---- playing: lockdown ------------------------------------------------------ */

static void diverge(struct rdev *r, struct lks_conn *c, const char *meaning, bool in_tls,
		    const char *why)
{
	char next[256] = "";
	size_t shown = 0, len = 0;

	for (size_t i = 0; i < r->rec->nx && shown < RD_NEXT_SHOWN; i++) {
		size_t same = 1;
		if (r->used[i])
			continue;
		while (i + same < r->rec->nx && !r->used[i + same] &&
		       !strcmp(r->rec->x[i + same].meaning, r->rec->x[i].meaning))
			same++;
		len += (size_t)snprintf(next + len, len < sizeof(next) ? sizeof(next) - len : 0,
					"%s%s", shown ? ", " : "", r->rec->x[i].meaning);
		if (same > 1 && len < sizeof(next))
			len += (size_t)snprintf(next + len, sizeof(next) - len, " (x%zu)", same);
		if (len >= sizeof(next))
			break;
		i += same - 1;
		shown++;
	}
	if (!r->divergence[0]) {
		if (why)
			snprintf(r->divergence, sizeof(r->divergence), "host sent %s%s; %s",
				 meaning, in_tls ? " inside session TLS" : "", why);
		else
			snprintf(r->divergence, sizeof(r->divergence),
				 "host sent %s%s; recording has %s%s", meaning,
				 in_tls ? " inside session TLS" : "",
				 next[0] ? "next: " : "no further lockdown request", next);
		lp_logf(r->log, LP_LOG_WARN, "replay: diverged: %s", r->divergence);
	}
	lks_kill(c, "diverged from the recording");
}

/* The next recorded exchange with this meaning (its last one again when all
 * were used), or NULL. */
static const struct rdev_xchg *match(struct rdev *r, const char *meaning)
{
	const struct rdev_xchg *last = NULL;

	for (size_t i = 0; i < r->rec->nx; i++) {
		if (strcmp(r->rec->x[i].meaning, meaning))
			continue;
		if (!r->used[i]) {
			r->used[i] = true;
			r->replayed++;
			return &r->rec->x[i];
		}
		last = &r->rec->x[i];
	}
	if (last) {
		r->replayed++;
		r->reused++;
	}
	return last;
}

static plist_t reply_new(const char *request);

static bool recorded_getvalue(const struct rdev *r)
{
	for (size_t i = 0; i < r->rec->nx; i++)
		if (!strncmp(r->rec->x[i].meaning, "GetValue", 8))
			return true;
	return false;
}

/* GetValue Key=K that no recorded reply holds, on a recording whose device
 * did answer GetValue (the host that made it asked other keys): the
 * UniqueDeviceID is the recorded USB serial (doc/protocol.md 1.2); any other
 * key is answered as a device answers a key it has no value for
 * (MissingValue), with a warning - the recording cannot say more. NULL when
 * the recording never shows GetValue at all (a divergence). */
static plist_t value_unrecorded(struct rdev *r, plist_t req)
{
	const char *key = lkd_dict_str(req, "Key");
	plist_t rep;

	if (!key || !recorded_getvalue(r))
		return NULL;
	rep = reply_new("GetValue");
	plist_dict_set_item(rep, "Key", plist_new_string(key));
	if (!strcmp(key, "UniqueDeviceID") && r->rec->serial[0]) {
		char udid[96];
		usbd_serial_to_udid(r->rec->serial, udid, sizeof(udid));
		plist_dict_set_item(rep, "Value", plist_new_string(udid));
		return rep;
	}
	plist_dict_set_item(rep, "Error", plist_new_string("MissingValue"));
	r->unrecorded++;
	lp_logf(r->log, LP_LOG_WARN,
		"replay: GetValue Key=%s is not in the recording: answered MissingValue", key);
	return rep;
}

static int server_creds(struct rdev *r)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	X509 *x = NULL;
	X509_NAME *nm;

	if (r->srv_cert)
		return 0;
	if (pair_device_key_generate(&r->srv_key, &pem, &len))
		return LP_ECRYPTO;
	free(pem);
	x = X509_new();
	nm = x ? X509_get_subject_name(x) : NULL;
	if (!x || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) ||
	    !X509_set_pubkey(x, r->srv_key) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
					(const unsigned char *)"linkprobe replay", -1, -1, 0) ||
	    !X509_set_issuer_name(x, nm) || !X509_sign(x, r->srv_key, EVP_sha256())) {
		X509_free(x);
		EVP_PKEY_free(r->srv_key);
		r->srv_key = NULL;
		return LP_ECRYPTO;
	}
	r->srv_cert = x;
	return 0;
}

static plist_t reply_new(const char *request)
{
	plist_t d = plist_new_dict();
	plist_dict_set_item(d, "Request", plist_new_string(request));
	return d; /* no Result key, as real devices answer (notes section 0) */
}

static uint64_t delay(const struct rdev *r, uint64_t ns)
{
	return r->timing ? ns : 0;
}

static void handle_request(void *ud, struct lks_conn *c, plist_t req, uint64_t now)
{
	struct rdev *r = ud;
	char meaning[RDEV_MEANING_MAX];
	const char *rq = lkd_dict_str(req, "Request");
	bool in_tls = lks_in_tls(c);
	const struct rdev_xchg *x;

	rdev_meaning(req, meaning, sizeof(meaning));
	if (in_tls && rq && !strcmp(rq, "StopSession")) {
		plist_t rep = reply_new("StopSession");
		lks_send(c, rep, 0);
		plist_free(rep);
		lks_stop_tls(c); /* our close_notify; the host's records are skipped */
		return;
	}
	x = match(r, meaning);
	if (x) {
		lks_send(c, x->reply, delay(r, x->delay_ns));
		if (x->tls_start && !in_tls) {
			/* a recorded TLS failure replays as a reset on the first
			 * handshake bytes */
			if (!x->tls_failed && server_creds(r)) {
				lp_logf(r->log, LP_LOG_WARN, "replay: no TLS server key");
				lks_kill(c, "no TLS server key");
				return;
			}
			lks_start_tls(c, r->srv_cert, r->srv_key, x->tls_failed);
		}
		return;
	}
	if (rq && !strcmp(rq, "GetValue")) {
		plist_t rep = value_unrecorded(r, req);
		if (rep) {
			lks_send(c, rep, 0);
			plist_free(rep);
			r->replayed++;
			return;
		}
	}
	if (in_tls && rq && !strcmp(rq, "StartService") && lkd_dict_str(req, "Service")) {
		plist_t rep;
		uint16_t port;
		if (!r->rec->nsvc)
			return diverge(
				r, c, meaning, true,
				"the recording shows no service connection after its session");
		port = r->rec->svc_ports[r->svc_next < r->rec->nsvc ? r->svc_next++
								    : r->rec->nsvc - 1];
		devcore_listen(r->dc, port);
		rep = reply_new("StartService");
		plist_dict_set_item(rep, "Service", plist_new_string(lkd_dict_str(req, "Service")));
		plist_dict_set_item(rep, "Port", plist_new_uint(port));
		lks_send(c, rep, 0);
		plist_free(rep);
		r->replayed++;
		return;
	}
	diverge(r, c, meaning, in_tls, NULL);
}

static void handle_bad(void *ud, struct lks_conn *c, int err, uint64_t now)
{
	struct rdev *r = ud;

	if (err == LP_ETOOBIG)
		diverge(r, c, "a lockdown message over the size cap", lks_in_tls(c),
			"not replayable");
	else
		lp_logf(r->log, LP_LOG_WARN,
			"replay: host sent a lockdown message that is not a plist dictionary");
}

/* The replay's TLS server has a throwaway certificate; hosts do not verify
 * it and it accepts any client certificate (no pairing to check against). */
static const struct lks_handler replay_handler = {
	.request = handle_request,
	.bad = handle_bad,
};

/* ---- the personality ---------------------------------------------------------- */

static void p_reset(void *ud, bool bus, uint64_t now)
{
	struct rdev *r = ud;

	lks_reset(r->srv);
}

static void p_configured(void *ud, uint8_t config, uint64_t now)
{
	struct rdev *r = ud;

	for (size_t i = 0; i < r->rec->nacc; i++)
		devcore_listen(r->dc, r->rec->accepted[i]);
	r->svc_next = 0;
}

/* What the core does not answer itself (strings, vendor and class
 * requests): the recorded reply. */
static int p_control(void *ud, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
		     uint64_t now)
{
	struct rdev *r = ud;
	const struct rdev_ctrl *c = rdev_rec_ctrl(r->rec, setup, false);

	if (!c && setup[0] == 0x80 && setup[1] == USBD_REQ_GET_DESCRIPTOR &&
	    setup[3] == USBD_DT_STRING)
		c = rdev_rec_ctrl(r->rec, setup, true); /* another LANGID than recorded */
	if (!c || c->stall)
		return LP_ESTALL;
	if (setup[0] & 0x80) {
		size_t n = c->len < len ? c->len : len;
		if (n)
			memcpy(data, c->data, n);
		*actual = n;
	}
	return 0;
}

/* Lockdown connections are served; service connections are accepted and
 * silent (their payload is not replayed). */
static void p_accept(void *ud, uint32_t conn, uint16_t port, uint64_t now)
{
	struct rdev *r = ud;

	if (port == MUX_PORT_LOCKDOWN &&
	    !lks_accept(r->srv, conn, port, LKS_FRAMED, &replay_handler, r))
		devcore_close(r->dc, conn);
}

static void p_data(void *ud, uint32_t conn, const uint8_t *data, size_t len, uint64_t now)
{
	struct rdev *r = ud;

	lks_data(r->srv, conn, data, len, now);
}

static void p_closed(void *ud, uint32_t conn, uint64_t now)
{
	struct rdev *r = ud;

	lks_closed(r->srv, conn);
}

/* The recorded disconnect is the link's (rdev_link): always attached. */
static const struct devcore_personality replay_personality = {
	.reset = p_reset,
	.configured = p_configured,
	.control = p_control,
	.accept = p_accept,
	.data = p_data,
	.closed = p_closed,
};

/* The core with the recorded descriptors: the device descriptor, then each
 * configuration the recording holds whole, in order. */
static int player_init(struct rdev *r)
{
	const struct rdev_rec *rec = r->rec;
	const uint8_t dsetup[8] = {0x80, USBD_REQ_GET_DESCRIPTOR, 0, USBD_DT_DEVICE, 0, 0, 0, 0};
	const struct rdev_ctrl *dev = rdev_rec_ctrl(rec, dsetup, true);
	uint8_t buf[18];
	int n;

	r->dc = devcore_new(&replay_personality, r, r->log);
	r->srv = r->dc ? lks_new(r->dc, r->log) : NULL;
	if (!r->srv)
		return LP_ENOMEM;
	if (dev && !dev->stall && dev->len == sizeof(buf) &&
	    devcore_set_device(r->dc, dev->data, dev->len) == 0) {
		/* as recorded */
	} else if ((n = usbd_encode_device(&rec->dd, buf, sizeof(buf))) > 0) {
		devcore_set_device(r->dc, buf, (size_t)n);
	}
	for (unsigned i = 0; i < rec->dd.bNumConfigurations && i < USBD_MAX_CONFIGS; i++) {
		const uint8_t cs[8] = {
			0x80, USBD_REQ_GET_DESCRIPTOR, (uint8_t)i, USBD_DT_CONFIG, 0, 0, 0, 0};
		const struct rdev_ctrl *c = rdev_rec_ctrl(rec, cs, true);

		if (!rec->cfg_ok[i] || !c || c->stall ||
		    devcore_add_config(r->dc, c->data, c->len, NULL, 0))
			break;
	}
	devcore_set_speed(r->dc, rec->speed);
	devcore_set_mux_version(r->dc, rec->mux_major);
	return 0;
}

void *rdev_model(struct rdev *r)
{
	return devcore_model(r->dc);
}

struct rdev *rdev_of_model(void *model)
{
	return devcore_owner(model, &replay_personality);
}

/* ---- public ------------------------------------------------------------------- */

int rdev_link(const struct rdev *r, uint64_t now, struct tr_sim_link *out)
{
	if (!r || !out)
		return LP_EINVAL;
	memset(out, 0, sizeof(*out));
	out->speed = r->rec->speed;
	if (r->rec->bulk)
		out->error_rate = (double)r->rec->bulk_err / (double)r->rec->bulk;
	if (r->rec->disconnects) {
		out->disconnect_at_ns = now + (r->rec->disc_at > r->rec->t_first
						       ? r->rec->disc_at - r->rec->t_first
						       : 1);
		/* never came back: longer than any host waits */
		out->reenum_gap_ns = r->rec->back_at == UINT64_MAX ? 3600ull * LP_NS_PER_S
				     : r->rec->back_at > r->rec->disc_at
					     ? r->rec->back_at - r->rec->disc_at
					     : 1;
	}
	out->seed = 1;
	return 0;
}

const char *rdev_divergence(const struct rdev *r)
{
	return r && r->divergence[0] ? r->divergence : NULL;
}

void rdev_get_summary(const struct rdev *r, struct rdev_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->vid = r->rec->dd.idVendor;
	s->pid = r->rec->dd.idProduct;
	s->bus = r->rec->bus;
	s->addr = r->rec->addr;
	snprintf(s->udid, sizeof(s->udid), "%s", r->rec->serial);
	s->mux_version = r->rec->mux_major;
	s->control_replies = r->rec->nctrl;
	s->exchanges = r->rec->nx;
	s->accepted_ports = r->rec->nacc;
	s->refused_ports = r->rec->nref;
	s->disconnects = r->rec->disconnects;
	s->bulk_transfers = r->rec->bulk;
	s->bulk_errors = r->rec->bulk_err;
	s->replayed = r->replayed;
	s->reused = r->reused;
	s->unrecorded = r->unrecorded;
}

void rdev_free(struct rdev *r)
{
	if (!r)
		return;
	devcore_free(r->dc); /* first: its reset hook drops the connections */
	lks_free(r->srv);
	rdev_rec_free(r->rec);
	free(r->used);
	X509_free(r->srv_cert);
	EVP_PKEY_free(r->srv_key);
	free(r);
}