/* replaydev.c - plays a recorded capture's device side (replay_rec.h) as a
 * tr_sim device model. See replaydev.h for what is matched how; the limits:
 *  - session TLS is not replayed: it is re-done with a throwaway key, and
 *    what happened inside the recorded TLS is inferred (the service ports
 *    the host connected to afterwards); GetValue inside TLS is answered only
 *    from plaintext replies of the same key;
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

#include "src/base/lp_cursor.h"
#include "usb/usb_desc.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "proto/pair_cert.h"
#include "proto/tls.h"

#define RD_TLS_IN_MAX (LKD_MAX_MESSAGE + 4096)
#define RD_NEXT_SHOWN 3	     /* recorded alternatives named in a divergence */

enum rt_state { RT_PLAIN, RT_TLS_HS, RT_TLS, RT_CLOSING, RT_DEAD };

struct rt_conn {
	bool used;
	uint32_t id;
	uint16_t port;
	enum rt_state st;
	bool tls_fail;
	uint8_t *in;
	size_t in_len;
	uint8_t *pt;
	size_t pt_len;
	struct lp_tls *tls;
};

struct rt_out {
	struct rt_out *next;
	uint32_t conn;
	uint64_t at;
	size_t len;
	uint8_t buf[];
};

struct rdev {
	struct lp_clock *clock;
	const struct lp_log *log;
	bool timing;
	struct rdev_rec *rec; /* owned */
	bool *used;	      /* per recorded exchange: answered already */
	size_t svc_next;
	size_t replayed, reused;
	uint64_t now;
	uint8_t config;
	struct mux *mux;
	uint8_t ep_in, ep_out;
	uint16_t mps;
	uint8_t *in_pkt;
	struct rt_conn conns[MUX_MAX_CONNS];
	struct rt_out *oq_head, *oq_tail;
	uint64_t oq_last;
	X509 *srv_cert;
	EVP_PKEY *srv_key;
	char divergence[RDEV_DIVERGENCE_MAX];
};

/* ---- loading --------------------------------------------------------------- */

int rdev_load_file(FILE *f, const struct rdev_opts *o, struct lp_clock *clock, const struct lp_log *log,
		   struct rdev **out, struct lp_errinfo *e)
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
		if (!r->used)
			ret = lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	if (ret) {
		rdev_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

int rdev_load_path(const char *path, const struct rdev_opts *o, struct lp_clock *clock, const struct lp_log *log,
		   struct rdev **out, struct lp_errinfo *e)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return lp_err_set(e, LP_ENOENT, "replay: cannot open %s", path);
	return rdev_load_file(f, o, clock, log, out, e);
}

/* ---- playing: output queue -------------------------------------------------- */

static void oq_flush(struct rdev *r)
{
	while (r->oq_head && r->oq_head->at <= r->now) {
		struct rt_out *o = r->oq_head;
		r->oq_head = o->next;
		if (!r->oq_head)
			r->oq_tail = NULL;
		if (r->mux && o->len)
			mux_send(r->mux, o->conn, o->buf, o->len);
		free(o);
	}
}

static void oq_clear(struct rdev *r)
{
	while (r->oq_head) {
		struct rt_out *o = r->oq_head;
		r->oq_head = o->next;
		free(o);
	}
	r->oq_tail = NULL;
}

/* Send bytes on conn after `delay`, in order with everything queued before. */
static void emit(struct rdev *r, uint32_t conn, const uint8_t *buf, size_t len, uint64_t delay)
{
	uint64_t at = r->now + (r->timing ? delay : 0);
	struct rt_out *o;

	if (!len)
		return;
	if (r->oq_head && at < r->oq_last)
		at = r->oq_last;
	if (at <= r->now && !r->oq_head) {
		mux_send(r->mux, conn, buf, len);
		return;
	}
	o = malloc(sizeof(*o) + len);
	if (!o)
		return;
	o->next = NULL;
	o->conn = conn;
	o->at = at;
	o->len = len;
	memcpy(o->buf, buf, len);
	if (r->oq_tail)
		r->oq_tail->next = o;
	else
		r->oq_head = o;
	r->oq_tail = o;
	r->oq_last = at;
}

/* ---- playing: lockdown ------------------------------------------------------ */

static struct rt_conn *conn_get(struct rdev *r, uint32_t id)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (r->conns[i].used && r->conns[i].id == id)
			return &r->conns[i];
	return NULL;
}

static void conn_release(struct rt_conn *c)
{
	free(c->in);
	free(c->pt);
	lp_tls_free(c->tls);
	memset(c, 0, sizeof(*c));
}

static void conn_kill(struct rdev *r, struct rt_conn *c)
{
	c->st = RT_DEAD;
	c->in_len = c->pt_len = 0;
	mux_close(r->mux, c->id);
}

static void tls_out(struct rdev *r, struct rt_conn *c, uint64_t delay)
{
	uint8_t *b = NULL;
	size_t n = 0;

	if (c->tls && lp_tls_take(c->tls, &b, &n) == 0 && n)
		emit(r, c->id, b, n, delay);
	free(b);
}

static void send_reply(struct rdev *r, struct rt_conn *c, plist_t reply, uint64_t delay)
{
	uint8_t *b = NULL;
	size_t n = 0;

	if (lkd_frame_encode(reply, &b, &n))
		return;
	if (c->st == RT_TLS) {
		if (lp_tls_write(c->tls, b + 0, n, NULL) == 0)
			tls_out(r, c, delay);
	} else {
		emit(r, c->id, b, n, delay);
	}
	free(b);
}

static void diverge(struct rdev *r, struct rt_conn *c, const char *meaning, bool in_tls, const char *why)
{
	char next[256] = "";
	size_t shown = 0, len = 0;

	for (size_t i = 0; i < r->rec->nx && shown < RD_NEXT_SHOWN; i++) {
		size_t same = 1;
		if (r->used[i])
			continue;
		while (i + same < r->rec->nx && !r->used[i + same] && !strcmp(r->rec->x[i + same].meaning, r->rec->x[i].meaning))
			same++;
		len += (size_t)snprintf(next + len, len < sizeof(next) ? sizeof(next) - len : 0, "%s%s", shown ? ", " : "",
					r->rec->x[i].meaning);
		if (same > 1 && len < sizeof(next))
			len += (size_t)snprintf(next + len, sizeof(next) - len, " (x%zu)", same);
		if (len >= sizeof(next))
			break;
		i += same - 1;
		shown++;
	}
	if (!r->divergence[0]) {
		if (why)
			snprintf(r->divergence, sizeof(r->divergence), "host sent %s%s; %s", meaning,
				 in_tls ? " inside session TLS" : "", why);
		else
			snprintf(r->divergence, sizeof(r->divergence), "host sent %s%s; recording has %s%s", meaning,
				 in_tls ? " inside session TLS" : "", next[0] ? "next: " : "no further lockdown request",
				 next);
		lp_logf(r->log, LP_LOG_WARN, "replay: diverged: %s", r->divergence);
	}
	conn_kill(r, c);
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
	    !X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) || !X509_set_pubkey(x, r->srv_key) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"linkprobe replay", -1, -1, 0) ||
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
	plist_dict_set_item(d, "Result", plist_new_string("Success"));
	return d;
}

static void handle_request(struct rdev *r, struct rt_conn *c, plist_t req)
{
	char meaning[RDEV_MEANING_MAX];
	const char *rq = lkd_dict_str(req, "Request");
	bool in_tls = c->st == RT_TLS;
	const struct rdev_xchg *x;

	rdev_meaning(req, meaning, sizeof(meaning));
	if (in_tls && rq && !strcmp(rq, "StopSession")) {
		plist_t rep = reply_new("StopSession");
		send_reply(r, c, rep, 0);
		plist_free(rep);
		/* our close_notify, then the host's TLS records are skipped */
		lp_tls_shutdown(c->tls);
		tls_out(r, c, 0);
		lp_tls_free(c->tls);
		c->tls = NULL;
		c->st = RT_CLOSING; /* tls_input drops what is left inside TLS */
		return;
	}
	x = match(r, meaning);
	if (x) {
		send_reply(r, c, x->reply, x->delay_ns);
		if (x->tls_start && !in_tls) {
			struct lp_errinfo e = {0};
			c->st = RT_TLS_HS;
			c->tls_fail = x->tls_failed;
			if (!c->tls_fail && (server_creds(r) ||
					     !(c->tls = lp_tls_new_server(r->srv_cert, r->srv_key, &e)))) {
				lp_logf(r->log, LP_LOG_WARN, "replay: no TLS server: %s", e.msg);
				conn_kill(r, c);
			}
		}
		return;
	}
	if (in_tls && rq && !strcmp(rq, "StartService") && lkd_dict_str(req, "Service")) {
		plist_t rep;
		uint16_t port;
		if (!r->rec->nsvc)
			return diverge(r, c, meaning, true,
				       "the recording shows no service connection after its session");
		port = r->rec->svc_ports[r->svc_next < r->rec->nsvc ? r->svc_next++ : r->rec->nsvc - 1];
		mux_listen(r->mux, port);
		rep = reply_new("StartService");
		plist_dict_set_item(rep, "Service", plist_new_string(lkd_dict_str(req, "Service")));
		plist_dict_set_item(rep, "Port", plist_new_uint(port));
		send_reply(r, c, rep, 0);
		plist_free(rep);
		r->replayed++;
		return;
	}
	diverge(r, c, meaning, in_tls, NULL);
}

/* Whole frames in buf[0..*len): handled and removed. */
static void frames(struct rdev *r, struct rt_conn *c, uint8_t *buf, size_t *len)
{
	size_t off = 0;

	while (c->st != RT_DEAD && *len - off >= 4) {
		struct lp_rd rd;
		uint32_t n;
		plist_t req = NULL;
		enum rt_state before = c->st;

		lp_rd_init(&rd, buf + off, *len - off);
		n = lp_rd_be32(&rd);
		if (n > LKD_MAX_MESSAGE) {
			diverge(r, c, "a lockdown message over the size cap", before == RT_TLS, "not replayable");
			return;
		}
		if (*len - off - 4 < n)
			break;
		if (lkd_plist_decode(buf + off + 4, n, &req) == 0 && plist_get_node_type(req) == PLIST_DICT)
			handle_request(r, c, req);
		else
			lp_logf(r->log, LP_LOG_WARN, "replay: host sent a lockdown message that is not a plist dictionary");
		plist_free(req);
		off += 4 + n;
		if (c->st != before)
			break; /* the rest belongs to the next layer */
	}
	if (c->st == RT_DEAD) {
		*len = 0;
		return;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
}

static bool buf_add(uint8_t **buf, size_t *len, const uint8_t *d, size_t n, size_t cap)
{
	uint8_t *nb;

	if (n > cap - *len)
		return false;
	nb = realloc(*buf, *len + n ? *len + n : 1);
	if (!nb)
		return false;
	memcpy(nb + *len, d, n);
	*buf = nb;
	*len += n;
	return true;
}

static void conn_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n);

static void tls_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n)
{
	uint8_t tmp[16384];
	size_t got;
	int rc;

	if (c->tls_fail || !c->tls)
		return conn_kill(r, c); /* the recorded device reset the handshake */
	lp_tls_feed(c->tls, d, n);
	if (c->st == RT_TLS_HS) {
		rc = lp_tls_handshake(c->tls, NULL);
		tls_out(r, c, 0);
		if (rc == LP_EAGAIN)
			return;
		if (rc)
			return conn_kill(r, c);
		c->st = RT_TLS;
	}
	for (;;) {
		rc = lp_tls_read(c->tls, tmp, sizeof(tmp), &got, NULL);
		if (rc)
			break;
		if (!buf_add(&c->pt, &c->pt_len, tmp, got, LKD_MAX_MESSAGE + 4))
			return conn_kill(r, c);
		frames(r, c, c->pt, &c->pt_len);
		if (c->st != RT_TLS) {
			c->pt_len = 0;
			break;
		}
	}
	tls_out(r, c, 0);
	if (rc == LP_ETLS)
		conn_kill(r, c);
}

static void conn_input(struct rdev *r, struct rt_conn *c, const uint8_t *d, size_t n)
{
	if (c->st == RT_DEAD || c->port != MUX_PORT_LOCKDOWN)
		return; /* service connections: accepted, nothing replayed */
	if (c->st == RT_TLS_HS || c->st == RT_TLS)
		return tls_input(r, c, d, n);
	if (!buf_add(&c->in, &c->in_len, d, n, RD_TLS_IN_MAX))
		return conn_kill(r, c);
	for (;;) {
		if (c->st == RT_CLOSING) {
			/* skip the host's TLS records (close_notify) */
			while (c->in_len >= 5 && c->in[0] >= 20 && c->in[0] <= 23 && c->in[1] == 3) {
				size_t rl = 5 + ((size_t)c->in[3] << 8 | c->in[4]);
				if (c->in_len < rl)
					return;
				memmove(c->in, c->in + rl, c->in_len - rl);
				c->in_len -= rl;
			}
			if (c->in_len < 5 && c->in_len && c->in[0] >= 20 && c->in[0] <= 23)
				return;
			if (!c->in_len)
				return;
			c->st = RT_PLAIN;
		}
		if (c->st != RT_PLAIN)
			break;
		frames(r, c, c->in, &c->in_len);
		if (c->st == RT_PLAIN || c->st == RT_DEAD)
			return;
		if (c->st == RT_TLS_HS && c->in_len) {
			size_t k = c->in_len;
			uint8_t *rest = c->in;
			c->in = NULL;
			c->in_len = 0;
			tls_input(r, c, rest, k);
			free(rest);
			return;
		}
		if (c->st != RT_CLOSING)
			return;
	}
}

/* ---- playing: usbmux callbacks ---------------------------------------------- */

static void cb_accept(void *ud, uint32_t conn, uint16_t port)
{
	struct rdev *r = ud;

	for (size_t i = 0; i < MUX_MAX_CONNS; i++) {
		if (r->conns[i].used && r->conns[i].st == RT_DEAD)
			conn_release(&r->conns[i]); /* reset by us earlier */
		if (!r->conns[i].used) {
			r->conns[i].used = true;
			r->conns[i].id = conn;
			r->conns[i].port = port;
			r->conns[i].st = RT_PLAIN;
			return;
		}
	}
	mux_close(r->mux, conn);
}

static void cb_data(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct rdev *r = ud;
	struct rt_conn *c = conn_get(r, conn);

	if (c)
		conn_input(r, c, data, len);
}

static void cb_close(void *ud, uint32_t conn, int reason)
{
	struct rdev *r = ud;
	struct rt_conn *c = conn_get(r, conn);

	(void)reason;
	if (c)
		conn_release(c);
}

static const struct mux_cbs rdev_mux_cbs = {
    .on_accept = cb_accept,
    .on_data = cb_data,
    .on_close = cb_close,
};

static void usb_teardown(struct rdev *r)
{
	for (size_t i = 0; i < MUX_MAX_CONNS; i++)
		if (r->conns[i].used)
			conn_release(&r->conns[i]);
	oq_clear(r);
	mux_free(r->mux);
	r->mux = NULL;
	free(r->in_pkt);
	r->in_pkt = NULL;
	r->config = 0;
}

static const struct usbd_config *active_cfg(const struct rdev *r)
{
	for (unsigned i = 0; i < USBD_MAX_CONFIGS; i++)
		if (r->rec->cfg_ok[i] && r->config && r->rec->cfg[i].bConfigurationValue == r->config)
			return &r->rec->cfg[i];
	return NULL;
}

static int set_config(struct rdev *r, uint8_t v)
{
	const struct usbd_config *c;

	usb_teardown(r);
	if (!v)
		return 0;
	r->config = v;
	c = active_cfg(r);
	if (!c) {
		r->config = 0;
		return LP_ESTALL;
	}
	if (usbd_find_usbmux(c, &r->ep_in, &r->ep_out, &r->mps) && r->mps) {
		r->mux = mux_new(MUX_ROLE_DEVICE, &rdev_mux_cbs, r, r->log);
		if (!r->mux)
			return LP_ESTALL;
		mux_set_device_version(r->mux, r->rec->mux_major ? r->rec->mux_major : 2);
		for (size_t i = 0; i < r->rec->nacc; i++)
			mux_listen(r->mux, r->rec->accepted[i]);
		r->svc_next = 0;
	}
	return 0;
}

/* ---- model ops -------------------------------------------------------------- */

static bool op_attached(void *m, uint64_t now)
{
	(void)m;
	(void)now;
	return true; /* the recorded disconnect is the link's (rdev_link) */
}

static void op_identity(void *m, uint16_t *vid, uint16_t *pid, uint8_t *num_configs)
{
	struct rdev *r = m;

	*vid = r->rec->dd.idVendor;
	*pid = r->rec->dd.idProduct;
	*num_configs = r->rec->dd.bNumConfigurations;
}

static void op_reset(void *m, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	usb_teardown(r);
}

static int op_control(void *m, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual, uint64_t now)
{
	struct rdev *r = m;
	uint8_t rt = setup[0], req = setup[1];
	uint16_t wValue = (uint16_t)(setup[2] | setup[3] << 8);
	const struct rdev_ctrl *c;

	r->now = now;
	*actual = 0;
	if (rt == 0x00 && req == USBD_REQ_SET_CONFIGURATION)
		return set_config(r, (uint8_t)wValue);
	if (rt == 0x80 && req == USBD_REQ_GET_CONFIGURATION) {
		if (len >= 1) {
			data[0] = r->config;
			*actual = 1;
		}
		return 0;
	}
	if ((rt == 0x01 && req == 11) || (rt == 0x02 && req == 1))
		return r->config ? 0 : LP_ESTALL; /* SET_INTERFACE, CLEAR_FEATURE(HALT) */
	c = rdev_rec_ctrl(r->rec, setup, false);
	if (!c && rt == 0x80 && req == USBD_REQ_GET_DESCRIPTOR && setup[3] == USBD_DT_STRING)
		c = rdev_rec_ctrl(r->rec, setup, true); /* another LANGID than recorded */
	if (!c || c->stall)
		return LP_ESTALL;
	if (rt & 0x80) {
		size_t n = c->len < len ? c->len : len;
		if (n)
			memcpy(data, c->data, n);
		*actual = n;
	}
	return 0;
}

static uint16_t op_max_packet(void *m, uint8_t ep)
{
	struct rdev *r = m;
	const struct usbd_config *c = active_cfg(r);

	if ((ep & 0x0f) == 0)
		return r->rec->dd.bMaxPacketSize0;
	if (!c)
		return 0;
	for (unsigned i = 0; i < c->num_ifaces; i++)
		for (unsigned k = 0; k < c->iface[i].num_eps; k++)
			if (c->iface[i].ep[k].bEndpointAddress == ep)
				return c->iface[i].ep[k].wMaxPacketSize;
	return 0;
}

static void op_bulk_out(void *m, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	if (!r->mux || ep != r->ep_out || !len)
		return;
	oq_flush(r);
	mux_feed(r->mux, data, len, true);
}

static int op_bulk_in_next(void *m, uint8_t ep, const uint8_t **data, size_t *len, bool *zlp, uint64_t now)
{
	struct rdev *r = m;
	uint8_t *pkt = NULL;
	size_t n = 0;

	r->now = now;
	if (!r->mux || ep != r->ep_in)
		return LP_EAGAIN;
	oq_flush(r);
	if (mux_out_take(r->mux, &pkt, &n) != 0)
		return LP_EAGAIN;
	free(r->in_pkt);
	r->in_pkt = pkt;
	*data = pkt;
	*len = n;
	*zlp = r->mps && n % r->mps == 0;
	return 0;
}

static uint64_t op_next_timer(void *m, uint64_t now)
{
	struct rdev *r = m;

	if (!r->oq_head)
		return UINT64_MAX;
	return r->oq_head->at > now ? r->oq_head->at : now + 1;
}

static void op_tick(void *m, uint64_t now)
{
	struct rdev *r = m;

	r->now = now;
	oq_flush(r);
}

const struct devmodel_ops rdev_model_ops = {
    .attached = op_attached,
    .identity = op_identity,
    .reset = op_reset,
    .control = op_control,
    .max_packet = op_max_packet,
    .bulk_out = op_bulk_out,
    .bulk_in_next = op_bulk_in_next,
    .next_timer = op_next_timer,
    .tick = op_tick,
};

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
		out->disconnect_at_ns = now + (r->rec->disc_at > r->rec->t_first ? r->rec->disc_at - r->rec->t_first : 1);
		/* never came back: longer than any host waits */
		out->reenum_gap_ns = r->rec->back_at == UINT64_MAX ? 3600ull * LP_NS_PER_S
				     : r->rec->back_at > r->rec->disc_at ? r->rec->back_at - r->rec->disc_at : 1;
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
}

void rdev_free(struct rdev *r)
{
	if (!r)
		return;
	usb_teardown(r);
	rdev_rec_free(r->rec);
	free(r->used);
	X509_free(r->srv_cert);
	EVP_PKEY_free(r->srv_key);
	free(r);
}