/* lkd_server.c - the device side of lockdown-framed connections: framing,
 * session TLS (start after StartSession, close_notify after StopSession,
 * plaintext again), resets. The requests themselves are the handler's.
 * See lkd_server.h for the state machine.
 *
 * Decisions (doc/protocol.md leaves them open):
 *  - after our close_notify, whole TLS records the host still sends (its
 *    close_notify) are skipped; the first byte that cannot start a TLS record
 *    (0x14..0x17) starts plaintext. A lockdown length prefix never starts with
 *    those bytes (that would be a message over 335 MiB);
 *  - plaintext that follows StopSession inside the same TLS stream is dropped;
 *  - a host that ends TLS with close_notify but no StopSession is back in
 *    plaintext.
 *
 * Reference: doc/protocol.md 4.1, 4.9, 4.10 and section 0.
 */
#include "src/device/lkd_server.h"

#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "proto/lockdown_frame.h"
#include "proto/tls.h"

#define LKS_PREFIX 4
#define LKS_TLS_HDR 5
#define LKS_CLOSING_MAX (LKD_MAX_MESSAGE + MUX_MAX_PACKET) /* raw bytes held after StopSession */
#define LKS_TLS_FLUSH_GUARD 64
#define LKS_READ_CHUNK 16384

enum lks_state { LKS_ST_PLAIN, LKS_ST_TLS_HS, LKS_ST_TLS, LKS_ST_CLOSING };

struct lks_conn {
	struct lks *s;
	bool used;
	bool dead; /* reset at the next sweep */
	uint32_t id;
	uint16_t port;
	enum lks_mode mode;
	enum lks_state st;
	struct lkd_framer *fr;
	uint8_t *raw; /* CLOSING: bytes not yet judged (owned) */
	size_t raw_len;
	struct lp_tls *tls;
	bool tls_fail;
	const struct lks_handler *h;
	void *ud, *priv;
};

struct lks {
	struct devcore *dc;
	const struct lp_log *log;
	enum lks_framing framing;
	bool legacy_tls;
	uint64_t now;
	struct lks_conn conn[LKS_MAX_CONNS];
};

struct lks *lks_new(struct devcore *dc, const struct lp_log *log)
{
	struct lks *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->dc = dc;
	s->log = log;
	s->framing = LKS_FRAMING_SPLIT;
	return s;
}

static void conn_release(struct lks_conn *c)
{
	struct lks *s = c->s;

	if (c->h && c->h->closed)
		c->h->closed(c->ud, c);
	lp_tls_free(c->tls);
	lkd_framer_free(c->fr);
	free(c->raw);
	memset(c, 0, sizeof(*c));
	c->s = s;
}

void lks_reset(struct lks *s)
{
	for (size_t i = 0; s && i < LKS_MAX_CONNS; i++)
		if (s->conn[i].used)
			conn_release(&s->conn[i]);
}

void lks_free(struct lks *s)
{
	lks_reset(s);
	free(s);
}

void lks_set_framing(struct lks *s, enum lks_framing f)
{
	s->framing = f;
}

static struct lks_conn *find(struct lks *s, uint32_t id)
{
	for (size_t i = 0; i < LKS_MAX_CONNS; i++)
		if (s->conn[i].used && s->conn[i].id == id)
			return &s->conn[i];
	return NULL;
}

struct lks_conn *lks_accept(struct lks *s, uint32_t conn, uint16_t port, enum lks_mode mode,
			    const struct lks_handler *h, void *ud)
{
	struct lks_conn *c = NULL;

	for (size_t i = 0; i < LKS_MAX_CONNS && !c; i++)
		if (!s->conn[i].used)
			c = &s->conn[i];
	if (!c || !h || !h->request)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->fr = lkd_framer_new();
	if (!c->fr)
		return NULL;
	c->used = true;
	c->id = conn;
	c->port = port;
	c->mode = mode;
	c->st = LKS_ST_PLAIN;
	c->h = h;
	c->ud = ud;
	return c;
}

void lks_kill(struct lks_conn *c, const char *why)
{
	if (!c->dead)
		lp_logf(c->s->log, LP_LOG_DEBUG, "device: closing connection %u (port %u): %s",
			c->id, c->port, why);
	c->dead = true;
}

void lks_sweep(struct lks *s)
{
	for (size_t i = 0; i < LKS_MAX_CONNS; i++) {
		struct lks_conn *c = &s->conn[i];
		uint32_t id = c->id;

		if (!c->used || !c->dead)
			continue;
		/* release first: the reset calls back into lks_closed */
		conn_release(c);
		devcore_close(s->dc, id);
	}
}

/* --------------------------------------------------------------------------
 * Sending
 */

static void raw_send(struct lks_conn *c, const uint8_t *buf, size_t len, uint64_t delay)
{
	int rc;

	if (c->dead || !len)
		return;
	rc = devcore_send(c->s->dc, c->id, buf, len, delay);
	if (rc)
		lks_kill(c, lp_strerror(rc));
}

static void tls_flush(struct lks_conn *c, uint64_t delay)
{
	for (int guard = 0; c->tls && guard < LKS_TLS_FLUSH_GUARD; guard++) {
		uint8_t *out = NULL;
		size_t n = 0;

		if (lp_tls_take(c->tls, &out, &n) != 0 || n == 0) {
			free(out);
			return;
		}
		raw_send(c, out, n, delay);
		free(out);
	}
}

/* One whole frame (prefix + body) onto the connection, as the device sends it. */
static void send_frame(struct lks_conn *c, const uint8_t *buf, size_t len, uint64_t delay)
{
	if (c->st == LKS_ST_TLS) {
		if (lp_tls_write(c->tls, buf, len, NULL))
			lks_kill(c, "TLS write failed");
		else
			tls_flush(c, delay);
	} else if (c->s->framing == LKS_FRAMING_SPLIT) {
		/* a real device's prefix travels in a packet of its own */
		raw_send(c, buf, LKS_PREFIX, delay);
		raw_send(c, buf + LKS_PREFIX, len - LKS_PREFIX, delay);
	} else {
		raw_send(c, buf, len, delay);
	}
}

void lks_send(struct lks_conn *c, plist_t msg, uint64_t delay)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (c->dead)
		return;
	if (lkd_frame_encode(msg, &buf, &len)) {
		lks_kill(c, "reply encoding failed");
		return;
	}
	send_frame(c, buf, len, delay);
	free(buf);
}

void lks_send_body(struct lks_conn *c, const uint8_t *body, size_t len, uint64_t delay)
{
	uint8_t *buf;

	if (c->dead || len > UINT32_MAX)
		return;
	buf = malloc(LKS_PREFIX + len);
	if (!buf) {
		lks_kill(c, "out of memory");
		return;
	}
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	memcpy(buf + LKS_PREFIX, body, len);
	send_frame(c, buf, LKS_PREFIX + len, delay);
	free(buf);
}

/* --------------------------------------------------------------------------
 * TLS
 */

void lks_set_legacy_tls(struct lks *s, bool on)
{
	s->legacy_tls = on;
}

int lks_start_tls(struct lks_conn *c, X509 *cert, EVP_PKEY *key, bool fail)
{
	struct lp_errinfo e = {0};

	c->st = LKS_ST_TLS_HS;
	c->tls_fail = fail;
	if (fail)
		return 0;
	c->tls = lp_tls_new_server(cert, key, &e);
	if (c->tls && c->s->legacy_tls && lp_tls_server_legacy_only(c->tls, &e)) {
		lp_tls_free(c->tls);
		c->tls = NULL;
	}
	if (!c->tls) {
		lp_logf(c->s->log, LP_LOG_WARN, "device: TLS server: %s", e.msg);
		lks_kill(c, "no TLS engine");
		return LP_ETLS;
	}
	return 0;
}

void lks_stop_tls(struct lks_conn *c)
{
	struct lkd_framer *fr;

	if (!c->tls || c->st != LKS_ST_TLS)
		return;
	lp_tls_shutdown(c->tls);
	tls_flush(c, 0);
	c->st = LKS_ST_CLOSING;
	fr = lkd_framer_new(); /* what followed StopSession inside TLS is dropped */
	if (!fr) {
		lks_kill(c, "out of memory");
		return;
	}
	lkd_framer_free(c->fr);
	c->fr = fr;
}

static void to_plain(struct lks_conn *c)
{
	lp_tls_free(c->tls);
	c->tls = NULL;
	c->st = LKS_ST_PLAIN;
}

/* --------------------------------------------------------------------------
 * Receiving
 */

static void too_big(struct lks_conn *c)
{
	if (c->h->bad && !c->dead)
		c->h->bad(c->ud, c, LP_ETOOBIG, c->s->now);
	lks_kill(c, "lockdown message over the size cap");
}

/* Hand every whole message in the framer to the handler; stop when the
 * connection changes layer (the bytes after belong to the next one). */
static void deliver(struct lks_conn *c)
{
	enum lks_state before = c->st;

	while (!c->dead && c->st == before) {
		plist_t msg = NULL;
		int rc = lkd_framer_next(c->fr, &msg, NULL, NULL);

		if (rc == LP_EAGAIN)
			return;
		if (rc == LP_EPLIST) {
			if (c->h->bad)
				c->h->bad(c->ud, c, rc, c->s->now);
			continue;
		}
		if (rc) {
			too_big(c);
			return;
		}
		c->h->request(c->ud, c, msg, c->s->now);
		plist_free(msg);
	}
}

static bool peer_ok(struct lks_conn *c)
{
	return !c->h->peer_ok || c->h->peer_ok(c->ud, c, lp_tls_peer_cert(c->tls));
}

static void tls_pump(struct lks_conn *c)
{
	struct lp_errinfo e = {0};
	uint8_t buf[LKS_READ_CHUNK];
	int rc;

	if (c->st == LKS_ST_TLS_HS) {
		rc = lp_tls_handshake(c->tls, &e);
		if (rc == 0 && !peer_ok(c)) {
			/* our Finished never leaves: the host's handshake fails */
			lks_kill(c, "host certificate not from this pairing");
			return;
		}
		tls_flush(c, 0);
		if (rc == LP_EAGAIN)
			return;
		if (rc) {
			lp_logf(c->s->log, LP_LOG_INFO, "device: TLS handshake failed: %s", e.msg);
			lks_kill(c, "TLS handshake failed");
			return;
		}
		c->st = LKS_ST_TLS;
		lp_logf(c->s->log, LP_LOG_DEBUG, "device: TLS up on connection %u (%s, %s)", c->id,
			lp_tls_version(c->tls), lp_tls_cipher(c->tls));
	}
	while (!c->dead && c->st == LKS_ST_TLS) {
		size_t got = 0;

		rc = lp_tls_read(c->tls, buf, sizeof(buf), &got, &e);
		if (rc == LP_EAGAIN)
			break;
		if (rc == LP_ECLOSED) {
			to_plain(c); /* close_notify without StopSession */
			break;
		}
		if (rc) {
			lks_kill(c, "TLS read failed");
			break;
		}
		if (c->mode != LKS_FRAMED)
			continue; /* a service's conversation is not simulated */
		if (lkd_framer_feed(c->fr, buf, got)) {
			too_big(c);
			break;
		}
		deliver(c);
	}
	tls_flush(c, 0);
}

static void tls_input(struct lks_conn *c, const uint8_t *buf, size_t len)
{
	if (c->tls_fail || !c->tls) {
		lks_kill(c, "TLS refused");
		return;
	}
	if (lp_tls_feed(c->tls, buf, len) != 0) {
		lks_kill(c, "TLS feed failed");
		return;
	}
	tls_pump(c);
}

static void conn_input(struct lks_conn *c, const uint8_t *buf, size_t len);

/* CLOSING: skip whole TLS records (the host's close_notify); the first byte
 * that cannot start one begins plaintext, and everything from there on is
 * input of the plain connection. */
static void closing_input(struct lks_conn *c, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	uint8_t *rest;

	if (len > LKS_CLOSING_MAX - c->raw_len) {
		lks_kill(c, "too much input after StopSession");
		return;
	}
	rest = realloc(c->raw, c->raw_len + len);
	if (!rest) {
		lks_kill(c, "out of memory");
		return;
	}
	memcpy(rest + c->raw_len, buf, len);
	c->raw = rest;
	c->raw_len += len;
	while (off < c->raw_len) {
		struct lp_rd rd;
		uint8_t type;
		uint16_t rlen;

		lp_rd_init(&rd, c->raw + off, c->raw_len - off);
		type = lp_rd_u8(&rd);
		if (type < 0x14 || type > 0x17) {
			size_t n = c->raw_len - off;

			rest = c->raw;
			c->raw = NULL;
			c->raw_len = 0;
			to_plain(c);
			conn_input(c, rest + off, n);
			free(rest);
			return;
		}
		lp_rd_skip(&rd, 2);
		rlen = lp_rd_be16(&rd);
		if (!lp_rd_ok(&rd) || c->raw_len - off - LKS_TLS_HDR < rlen)
			break;
		off += LKS_TLS_HDR + (size_t)rlen;
	}
	memmove(c->raw, c->raw + off, c->raw_len - off);
	c->raw_len -= off;
}

static void conn_input(struct lks_conn *c, const uint8_t *buf, size_t len)
{
	while (len && !c->dead) {
		size_t used = 0;

		switch (c->st) {
		case LKS_ST_TLS_HS:
		case LKS_ST_TLS:
			tls_input(c, buf, len);
			return;
		case LKS_ST_CLOSING:
			closing_input(c, buf, len);
			return;
		case LKS_ST_PLAIN:
			if (c->mode == LKS_TLS_SERVICE)
				return; /* before TLS: the unsimulated conversation */
			if (lkd_framer_feed_one(c->fr, buf, len, &used)) {
				too_big(c);
				return;
			}
			deliver(c);
			break;
		}
		buf += used;
		len -= used;
	}
}

bool lks_data(struct lks *s, uint32_t conn, const uint8_t *buf, size_t len, uint64_t now)
{
	struct lks_conn *c = find(s, conn);

	if (!c)
		return false;
	s->now = now;
	if (!c->dead && len)
		conn_input(c, buf, len);
	lks_sweep(s);
	return true;
}

bool lks_closed(struct lks *s, uint32_t conn)
{
	struct lks_conn *c = find(s, conn);

	if (!c)
		return false;
	conn_release(c);
	return true;
}

/* --------------------------------------------------------------------------
 * Accessors
 */

bool lks_in_tls(const struct lks_conn *c)
{
	return c->st == LKS_ST_TLS;
}
bool lks_dead(const struct lks_conn *c)
{
	return c->dead;
}
uint32_t lks_conn_id(const struct lks_conn *c)
{
	return c->id;
}
uint16_t lks_conn_port(const struct lks_conn *c)
{
	return c->port;
}
const char *lks_tls_version(const struct lks_conn *c)
{
	return c->tls ? lp_tls_version(c->tls) : NULL;
}
const char *lks_tls_cipher(const struct lks_conn *c)
{
	return c->tls ? lp_tls_cipher(c->tls) : NULL;
}
void lks_set_priv(struct lks_conn *c, void *priv)
{
	c->priv = priv;
}
void *lks_priv(const struct lks_conn *c)
{
	return c->priv;
}

size_t lks_each(struct lks *s, const struct lks_handler *h,
		void (*fn)(void *arg, struct lks_conn *c), void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < LKS_MAX_CONNS; i++) {
		struct lks_conn *c = &s->conn[i];

		if (!c->used || c->dead || c->h != h)
			continue;
		fn(arg, c);
		n++;
	}
	return n;
}
