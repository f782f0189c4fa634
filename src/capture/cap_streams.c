/* cap_streams.c - synthetic IPv4/TCP flows for usbmux connections, and the
 * NSS key-log sink; see cap_streams.h.
 *
 * Packet (all fields BE):
 *   IPv4, 20 bytes: 45 00 | total len | id | 40 00 (DF) | ttl 64 | proto 6 |
 *                   header checksum | src | dst
 *   TCP,  20 bytes: sport | dport | seq | ack | 50 | flags | window 0xFFFF |
 *                   checksum (over pseudo header + segment) | urgent 0
 */
#include "src/capture/cap_streams.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/lp_cursor.h"
#include "src/capture/cap_tap.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define PKT_HDRS 40u

struct stream_conn {
	uint32_t id;
	uint16_t sport, dport; /* mux ports: host, device */
	uint16_t hport;	       /* host port of the current synthetic flow */
	uint32_t nxt[2];       /* next seq to send: [0] host, [1] device */
	bool tls;	       /* the current flow carries TLS records */
	uint8_t nhdr[2];       /* TLS record header bytes seen, per direction */
	uint8_t hdr[2][5];
	uint32_t left[2]; /* TLS record body bytes still to come */
	struct cap_redactor red[2];
};

struct cap_streams {
	struct cap_writer *w; /* borrowed */
	int iface;
	uint16_t ip_id;
	struct stream_conn *conns;
	size_t nconns, cap;
	uint8_t *pkt;		      /* PKT_HDRS + CAP_STREAMS_MSS */
	const struct lp_clock *clock; /* borrowed, may be NULL */
	int err;		      /* first error of cap_streams_observe() */
	bool no_redact;
	uint16_t next_port; /* host port of the next extra flow */
	uint64_t redacted;
};

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t cap_streams_build(uint8_t *out, uint32_t src_ip, uint32_t dst_ip, uint16_t sport,
			 uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t ip_id,
			 const uint8_t *data, size_t len)
{
	struct lp_wr w;
	uint8_t pseudo[12];
	uint32_t sum;
	uint16_t c;

	lp_wr_init_fixed(&w, out, PKT_HDRS);
	lp_wr_u8(&w, 0x45);
	lp_wr_u8(&w, 0);
	lp_wr_be16(&w, (uint16_t)(PKT_HDRS + len));
	lp_wr_be16(&w, ip_id);
	lp_wr_be16(&w, 0x4000);
	lp_wr_u8(&w, 64);
	lp_wr_u8(&w, 6);
	lp_wr_be16(&w, 0); /* checksum below */
	lp_wr_be32(&w, src_ip);
	lp_wr_be32(&w, dst_ip);
	lp_wr_be16(&w, sport);
	lp_wr_be16(&w, dport);
	lp_wr_be32(&w, seq);
	lp_wr_be32(&w, ack);
	lp_wr_u8(&w, 0x50);
	lp_wr_u8(&w, flags);
	lp_wr_be16(&w, 0xFFFF);
	lp_wr_be16(&w, 0); /* checksum below */
	lp_wr_be16(&w, 0);
	/* the caller may have put the payload in place already (redaction) */
	if (len && data != out + PKT_HDRS)
		memmove(out + PKT_HDRS, data, len);

	c = csum_fold(csum_add(0, out, 20));
	out[10] = (uint8_t)(c >> 8);
	out[11] = (uint8_t)c;

	memcpy(pseudo, out + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = (uint8_t)((20 + len) >> 8);
	pseudo[11] = (uint8_t)(20 + len);
	sum = csum_add(0, pseudo, sizeof(pseudo));
	sum = csum_add(sum, out + 20, 20 + len);
	c = csum_fold(sum);
	out[36] = (uint8_t)(c >> 8);
	out[37] = (uint8_t)c;
	return PKT_HDRS + len;
}

int cap_streams_new(struct cap_writer *w, const char *if_name, struct cap_streams **out,
		    struct lp_errinfo *e)
{
	struct cap_streams *s;
	int id;

	if (!w || !out)
		return lp_err_set(e, LP_EINVAL, "capture streams: no writer");
	s = calloc(1, sizeof(*s));
	if (s)
		s->pkt = malloc(PKT_HDRS + CAP_STREAMS_MSS);
	if (!s || !s->pkt) {
		free(s);
		return lp_err_set(e, LP_ENOMEM, "capture streams: out of memory");
	}
	id = cap_add_ipv4_interface(w, if_name ? if_name : "usbmux");
	if (id < 0) {
		free(s->pkt);
		free(s);
		return lp_err_set(e, id, "capture streams: cannot add the IPv4 interface: %s%s",
				  lp_strerror(id),
				  id == LP_EUNSUPPORTED ? " (use a separate file for the TCP view)"
							: "");
	}
	s->w = w;
	s->iface = id;
	s->next_port = CAP_STREAMS_FLOW_PORT_FIRST;
	*out = s;
	return 0;
}

void cap_streams_free(struct cap_streams *s)
{
	if (!s)
		return;
	free(s->conns);
	free(s->pkt);
	free(s);
}

static struct stream_conn *conn_find(struct cap_streams *s, uint32_t id)
{
	size_t i;

	for (i = 0; i < s->nconns; i++)
		if (s->conns[i].id == id)
			return &s->conns[i];
	return NULL;
}

static void conn_drop(struct cap_streams *s, struct stream_conn *c)
{
	*c = s->conns[--s->nconns];
}

static int emit(struct cap_streams *s, uint64_t ns, const struct stream_conn *c, int dir,
		uint8_t flags, const uint8_t *data, size_t len)
{
	uint32_t src = dir ? CAP_STREAMS_DEV_IP : CAP_STREAMS_HOST_IP;
	uint32_t dst = dir ? CAP_STREAMS_HOST_IP : CAP_STREAMS_DEV_IP;
	uint16_t sp = dir ? c->dport : c->hport, dp = dir ? c->hport : c->dport;
	uint32_t ack = (flags & TH_ACK) ? c->nxt[!dir] : 0;
	size_t n;

	n = cap_streams_build(s->pkt, src, dst, sp, dp, c->nxt[dir], ack, flags, s->ip_id++, data,
			      len);
	return cap_write_packet(s->w, s->iface, ns, s->pkt, n, n, NULL);
}

/* SYN, SYN|ACK, ACK on host port `hport`: a new synthetic flow. */
static int flow_start(struct cap_streams *s, uint64_t ns, struct stream_conn *c, uint16_t hport)
{
	int rc;

	c->hport = hport;
	c->nxt[0] = c->nxt[1] = 0;
	if ((rc = emit(s, ns, c, 0, TH_SYN, NULL, 0)))
		return rc;
	c->nxt[0] = 1;
	if ((rc = emit(s, ns, c, 1, TH_SYN | TH_ACK, NULL, 0)))
		return rc;
	c->nxt[1] = 1;
	return emit(s, ns, c, 0, TH_ACK, NULL, 0);
}

/* FIN both ways, last ACK: the flow is over but the mux connection is not
 * (a real usbmux close is an RST, so the two stay distinguishable). */
static int flow_end(struct cap_streams *s, uint64_t ns, struct stream_conn *c)
{
	int rc;

	if ((rc = emit(s, ns, c, 0, TH_FIN | TH_ACK, NULL, 0)))
		return rc;
	c->nxt[0]++;
	if ((rc = emit(s, ns, c, 1, TH_FIN | TH_ACK, NULL, 0)))
		return rc;
	c->nxt[1]++;
	return emit(s, ns, c, 0, TH_ACK, NULL, 0);
}

/* Continue the connection on a new flow (fresh host port) carrying TLS or
 * plaintext. A flow that carried nothing yet is kept (a service connection
 * whose first byte is the ClientHello stays one flow). */
static int flow_switch(struct cap_streams *s, uint64_t ns, struct stream_conn *c, bool tls)
{
	int rc;

	c->tls = tls;
	c->nhdr[0] = c->nhdr[1] = 0;
	c->left[0] = c->left[1] = 0;
	cap_redactor_init(&c->red[0]);
	cap_redactor_init(&c->red[1]);
	if (c->nxt[0] == 1 && c->nxt[1] == 1)
		return 0;
	if ((rc = flow_end(s, ns, c)))
		return rc;
	rc = flow_start(s, ns, c, s->next_port);
	s->next_port = s->next_port == 65535 ? (uint16_t)CAP_STREAMS_FLOW_PORT_FIRST
					     : (uint16_t)(s->next_port + 1);
	return rc;
}

static int conn_open(struct cap_streams *s, uint64_t ns, uint32_t id, uint16_t sport,
		     uint16_t dport, struct stream_conn **out)
{
	struct stream_conn *c;
	int rc;

	if (s->nconns == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;

		if (s->cap >= CAP_STREAMS_CONN_MAX)
			return LP_ETOOBIG;
		if (ncap > CAP_STREAMS_CONN_MAX)
			ncap = CAP_STREAMS_CONN_MAX;
		c = realloc(s->conns, ncap * sizeof(*c));
		if (!c)
			return LP_ENOMEM;
		s->conns = c;
		s->cap = ncap;
	}
	c = &s->conns[s->nconns++];
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->sport = sport;
	c->dport = dport;
	cap_redactor_init(&c->red[0]);
	cap_redactor_init(&c->red[1]);
	if ((rc = flow_start(s, ns, c, sport)))
		return rc;
	*out = c;
	return 0;
}

/* A TLS ClientHello record: 16 03 0x len len 01 (RFC 5246 6.2.1, 7.4). A
 * plaintext lockdown message cannot start so: its first word is a length
 * far over any lockdown cap. */
static bool is_client_hello(const uint8_t *p, size_t n)
{
	return n >= 6 && p[0] == 0x16 && p[1] == 3 && p[2] <= 4 && p[5] == 0x01;
}

/* Could a TLS record start here (content type 20..24, major version 3)? */
static bool is_tls_record(const uint8_t *p, size_t n)
{
	return p[0] >= 0x14 && p[0] <= 0x18 && (n < 2 || p[1] == 3);
}

/* Follow TLS record framing in one direction. Returns how many of the n
 * bytes are TLS: fewer than n only when bytes that cannot start a TLS record
 * come at a record boundary - lockdown went back to plaintext there (after
 * StopSession; no alert need be seen first, TLS 1.3 encrypts them). Erring
 * towards plaintext only runs the redactor over ciphertext; erring the other
 * way would leave plaintext unredacted. */
static size_t tls_walk(struct stream_conn *c, int dir, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		if (c->left[dir]) {
			size_t k = n - off < c->left[dir] ? n - off : c->left[dir];

			c->left[dir] -= (uint32_t)k;
			off += k;
			continue;
		}
		if (c->nhdr[dir] == 0 && !is_tls_record(p + off, n - off))
			return off;
		c->hdr[dir][c->nhdr[dir]++] = p[off++];
		if (c->nhdr[dir] == 5) {
			c->left[dir] = (uint32_t)c->hdr[dir][3] << 8 | c->hdr[dir][4];
			c->nhdr[dir] = 0;
		}
	}
	return n;
}

/* Data segments of at most CAP_STREAMS_MSS; plaintext is redacted in place. */
static int emit_data(struct cap_streams *s, uint64_t ns, struct stream_conn *c, int dir,
		     const uint8_t *data, size_t len)
{
	int rc;

	while (len) {
		size_t n = len < CAP_STREAMS_MSS ? len : CAP_STREAMS_MSS;
		const uint8_t *p = data;

		if (!c->tls && !s->no_redact) {
			memcpy(s->pkt + PKT_HDRS, data, n);
			s->redacted += cap_redactor_feed(&c->red[dir], s->pkt + PKT_HDRS, n);
			p = s->pkt + PKT_HDRS;
		}
		if ((rc = emit(s, ns, c, dir, TH_PSH | TH_ACK, p, n)))
			return rc;
		c->nxt[dir] += (uint32_t)n;
		data += n;
		len -= n;
	}
	return 0;
}

int cap_streams_event(struct cap_streams *s, uint64_t ns, uint32_t conn, uint16_t sport,
		      uint16_t dport, int dir, int event, const uint8_t *data, size_t len)
{
	struct stream_conn *c;
	int rc;

	if (!s || (dir != 0 && dir != 1) || event < 0 || event > 2 || (len && !data))
		return LP_EINVAL;
	c = conn_find(s, conn);
	switch (event) {
	case CAP_STREAMS_OPEN:
		if (c)
			conn_drop(s, c); /* id reused: the old flow is over */
		return conn_open(s, ns, conn, sport, dport, &c);
	case CAP_STREAMS_DATA:
		if (!c && (rc = conn_open(s, ns, conn, sport, dport, &c)))
			return rc;
		while (len) {
			size_t n = len;

			if (!c->tls && dir == 0 && is_client_hello(data, len) &&
			    (rc = flow_switch(s, ns, c, true)))
				return rc;
			if (c->tls) {
				n = tls_walk(c, dir, data, len);
				if (n == 0) {
					if ((rc = flow_switch(s, ns, c, false)))
						return rc;
					continue;
				}
			}
			if ((rc = emit_data(s, ns, c, dir, data, n)))
				return rc;
			data += n;
			len -= n;
		}
		return 0;
	default: /* close */
		if (!c)
			return 0;
		rc = emit(s, ns, c, dir, TH_RST | TH_ACK, NULL, 0);
		conn_drop(s, c);
		return rc;
	}
}

void cap_streams_set_redact(struct cap_streams *s, bool redact)
{
	s->no_redact = !redact;
}

uint64_t cap_streams_redacted(const struct cap_streams *s)
{
	return s->redacted;
}

void cap_streams_set_clock(struct cap_streams *s, const struct lp_clock *clock)
{
	s->clock = clock;
}

void cap_streams_observe(void *ud, uint32_t conn, uint16_t sport, uint16_t dport, int dir,
			 const uint8_t *data, size_t len, int event)
{
	struct cap_streams *s = ud;
	uint64_t ns;
	int rc;

	if (!s || s->err)
		return;
	ns = s->clock ? lp_clock_wall(s->clock, lp_clock_now(s->clock)) : 0;
	rc = cap_streams_event(s, ns, conn, sport, dport, dir, event, data, len);
	if (rc)
		s->err = rc;
}

int cap_streams_error(const struct cap_streams *s)
{
	return s->err;
}

/* ---- key log ------------------------------------------------------------- */

struct cap_keylog {
	int fd;			/* -1 = no file */
	struct cap_writer *dsb; /* borrowed, may be NULL */
	size_t count;
	int err;
};

int cap_keylog_open(const char *path, struct cap_writer *dsb, struct cap_keylog **out,
		    struct lp_errinfo *e)
{
	struct cap_keylog *k;

	if (!out)
		return lp_err_set(e, LP_EINVAL, "key log: no output");
	k = calloc(1, sizeof(*k));
	if (!k)
		return lp_err_set(e, LP_ENOMEM, "key log: out of memory");
	k->fd = -1;
	k->dsb = dsb;
	if (path) {
		/* secrets: never follow a planted symlink, never leave them in
		 * a file others can read (an existing file is tightened to
		 * 0600), never block on a FIFO: only a regular file will do */
		struct stat st;

		k->fd = open(path,
			     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
			     0600);
		if (k->fd >= 0 && (fstat(k->fd, &st) != 0 || !S_ISREG(st.st_mode))) {
			close(k->fd);
			free(k);
			return lp_err_set(e, LP_EINVAL, "key log: %s is not a regular file", path);
		}
		if (k->fd >= 0 && fchmod(k->fd, 0600) != 0) {
			int err = errno;
			close(k->fd);
			k->fd = -1;
			errno = err;
		}
		if (k->fd < 0) {
			int rc = lp_err_from_errno(errno);

			lp_err_set(e, rc, "key log: cannot open %s: %s", path, strerror(errno));
			free(k);
			return rc;
		}
	}
	*out = k;
	return 0;
}

void cap_keylog_line(void *ud, const char *line)
{
	struct cap_keylog *k = ud;
	char buf[CAP_KEYLOG_LINE_MAX + 2];
	size_t n, i;
	int rc;

	if (!k || !line)
		return;
	n = strlen(line);
	if (n == 0 || n > CAP_KEYLOG_LINE_MAX)
		return;
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return;
	memcpy(buf, line, n);
	buf[n++] = '\n';
	buf[n] = 0;
	if (k->fd >= 0) {
		const char *p = buf;
		size_t left = n;

		while (left) {
			ssize_t w = write(k->fd, p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				if (!k->err)
					k->err = w < 0 ? lp_err_from_errno(errno) : LP_EIO;
				break;
			}
			p += w;
			left -= (size_t)w;
		}
	}
	if (k->dsb && (rc = cap_write_dsb_tls(k->dsb, buf)) && !k->err)
		k->err = rc;
	k->count++;
}

size_t cap_keylog_count(const struct cap_keylog *k)
{
	return k->count;
}

int cap_keylog_close(struct cap_keylog *k)
{
	int rc;

	if (!k)
		return 0;
	rc = k->err;
	if (k->fd >= 0 && close(k->fd) != 0 && !rc)
		rc = LP_EIO;
	free(k);
	return rc;
}
