/* reader_idb.c - pcapng Interface Description Blocks, picked out of the
 * bytes on their way to libpcap: libpcap does not expose if_description,
 * where linkprobe's writer (cap_writer.c) puts the link speed and the
 * device's bus and address ("05ac:12a8, high speed (480 Mb/s), bus 1
 * device 7"). One CAP_EV_INTERFACE per IDB with a description.
 *
 * libpcap reads the file through a stdio stream made here (fopencookie):
 * each piece read from the capture passes the block walker below before
 * libpcap sees it, so the file is read once. (It was read twice: a scan of
 * every block header first, then libpcap - 16 % of the CPU time of
 * analyzing a 100 MB lockdown-heavy capture.) The walker follows block
 * lengths from the Section Header Block on; it stops for good at a classic
 * pcap file, a stream with no position (a pipe: ftell() fails; skipped as before),
 * a broken block or after PCAPNG_SCAN_BLOCKS blocks. Never fails. Block
 * sizes are capped before anything is allocated.
 *
 * Reference: pcapng (draft-ietf-opsawg-pcapng) 4.1 SHB, 4.2 IDB, option 3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"
#include "src/capture/reader_int.h"

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_BOM 0x1A2B3C4Du
#define PCAPNG_BLOCK_MAX (16u << 20) /* larger blocks end the IDB scan */
#define PCAPNG_IDB_READ_MAX 65536u   /* IDB bodies we read for options */
#define PCAPNG_SCAN_BLOCKS 2000000u
#define IF_DESCRIPTION 3

static void idb_description(struct cap_reader *r, const char *s)
{
	struct cap_event ev = {.type = CAP_EV_INTERFACE};
	const char *p;

	ev.u.iface.description = s;
	ev.u.iface.bus = ev.u.iface.addr = -1;
	p = strstr(s, "Mb/s)");
	if (p) {
		const char *q = p;
		while (q > s && q[-1] != '(')
			q--;
		ev.u.iface.speed_mbps = strtod(q, NULL);
	}
	p = strstr(s, "bus ");
	if (p) {
		unsigned b, d;
		if (sscanf(p, "bus %u device %u", &b, &d) == 2 && b < 65536 && d < 256) {
			ev.u.iface.bus = (int)b;
			ev.u.iface.addr = (int)d;
		}
	}
	rd_emit(r, &ev);
}

/* The walker's state, and the stream's cookie. */
struct rd_idb_scan {
	struct cap_reader *r; /* borrowed; r->idb points back while the stream is open */
	FILE *f;	      /* adopted: closed with the stream */
	bool done;	      /* nothing more to look at */
	bool be;	      /* the section's byte order */
	unsigned nblocks;     /* blocks whose header was read */
	uint8_t hdr[12];      /* type, length (, byte-order magic of an SHB) */
	size_t have;	      /* bytes of hdr, or of body, collected */
	size_t want;	      /* header bytes wanted: 8, 12 for an SHB */
	uint64_t skip;	      /* bytes of the current block still to pass */
	uint8_t *body;	      /* an IDB's body and trailing length, being collected */
	size_t body_len;
};

static uint32_t scan_u32(const struct rd_idb_scan *s, const uint8_t *p)
{
	struct lp_rd rd;

	lp_rd_init(&rd, p, 4);
	return s->be ? lp_rd_be32(&rd) : lp_rd_le32(&rd);
}

/* A whole IDB body (blen bytes, then the trailing length): its options. */
static void idb_options(struct rd_idb_scan *s, const uint8_t *b, size_t blen)
{
	struct lp_rd rd;

	lp_rd_init(&rd, b, blen);
	if (blen >= 2) {
		uint16_t lt = s->be ? lp_rd_be16(&rd) : lp_rd_le16(&rd);
		if (s->r->nifaces < CAP_RD_IFACES)
			s->r->iface_lt[s->r->nifaces] = lt;
		s->r->nifaces++;
		lp_rd_skip(&rd, 6); /* reserved, snaplen */
	} else {
		lp_rd_skip(&rd, 8); /* linktype, reserved, snaplen */
	}
	while (lp_rd_left(&rd) >= 4) {
		uint16_t code = s->be ? lp_rd_be16(&rd) : lp_rd_le16(&rd);
		uint16_t olen = s->be ? lp_rd_be16(&rd) : lp_rd_le16(&rd);
		const uint8_t *v = lp_rd_ptr(&rd, olen);
		if (!v || code == 0)
			break;
		lp_rd_skip(&rd, (4 - olen % 4) % 4);
		if (code == IF_DESCRIPTION) {
			char d[256];
			lp_sanitize(d, sizeof(d), v, olen);
			idb_description(s->r, d);
		}
	}
}

/* The header of a block is complete (s->have == s->want). */
static void scan_header(struct rd_idb_scan *s)
{
	const uint8_t *h = s->hdr;
	uint32_t type, len;

	s->have = 0;
	if (s->want == 8) {
		type = scan_u32(s, h);
		if (s->nblocks == 0 && h[0] == 0x0A && h[1] == 0x0D && h[2] == 0x0D && h[3] == 0x0A)
			type = PCAPNG_SHB;
		s->nblocks++;
		if (s->nblocks == 1 && type != PCAPNG_SHB) {
			s->done = true; /* classic pcap */
			return;
		}
		if (type == PCAPNG_SHB) {
			s->have = 8;
			s->want = 12; /* and its byte-order magic */
			return;
		}
		len = scan_u32(s, h + 4);
		if (len < 12 || len > PCAPNG_BLOCK_MAX || len % 4) {
			s->done = true;
			return;
		}
		if (type == PCAPNG_IDB && len - 12 <= PCAPNG_IDB_READ_MAX) {
			s->body_len = len - 8; /* the body and the trailing length */
			s->body = malloc(s->body_len);
			if (!s->body)
				s->done = true;
			return;
		}
		s->skip = len - 8;
		return;
	}
	/* an SHB with its byte-order magic */
	s->want = 8;
	type = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
	if (type == PCAPNG_BOM)
		s->be = false;
	else if (__builtin_bswap32(type) == PCAPNG_BOM)
		s->be = true;
	else {
		s->done = true;
		return;
	}
	len = scan_u32(s, h + 4);
	if (len < 28 || len > PCAPNG_BLOCK_MAX || len % 4) {
		s->done = true;
		return;
	}
	s->skip = len - 12;
}

/* The next n bytes of the file, in order. */
static void scan_feed(struct rd_idb_scan *s, const uint8_t *p, size_t n)
{
	while (n && !s->done) {
		size_t k;

		/* the usual block: its whole header here, neither SHB nor IDB */
		if (!s->skip && !s->body && s->have == 0 && s->want == 8 && n >= 8 &&
		    s->nblocks > 0 && s->nblocks < PCAPNG_SCAN_BLOCKS) {
			uint32_t type = scan_u32(s, p), len = scan_u32(s, p + 4);

			if (type != PCAPNG_SHB && type != PCAPNG_IDB && len >= 12 &&
			    len <= PCAPNG_BLOCK_MAX && len % 4 == 0) {
				s->nblocks++;
				k = len <= n ? len : n;
				s->skip = len - k;
				p += k;
				n -= k;
				continue;
			}
		}
		if (s->skip) {
			k = s->skip < n ? (size_t)s->skip : n;
			s->skip -= k;
		} else if (s->body) {
			k = s->body_len - s->have < n ? s->body_len - s->have : n;
			memcpy(s->body + s->have, p, k);
			s->have += k;
			if (s->have == s->body_len) {
				idb_options(s, s->body, s->body_len - 4);
				free(s->body);
				s->body = NULL;
				s->have = 0;
			}
		} else {
			if (s->have == 0 && s->want == 8 && s->nblocks >= PCAPNG_SCAN_BLOCKS) {
				s->done = true;
				return;
			}
			k = s->want - s->have < n ? s->want - s->have : n;
			memcpy(s->hdr + s->have, p, k);
			s->have += k;
			if (s->have == s->want) {
				p += k;
				n -= k;
				scan_header(s);
				continue;
			}
		}
		p += k;
		n -= k;
	}
}

static ssize_t scan_read(void *cookie, char *buf, size_t size)
{
	struct rd_idb_scan *s = cookie;
	size_t got = fread(buf, 1, size, s->f);

	if (got == 0 && ferror(s->f))
		return -1;
	scan_feed(s, (const uint8_t *)buf, got);
	return (ssize_t)got;
}

static int scan_close(void *cookie)
{
	struct rd_idb_scan *s = cookie;
	int rc = fclose(s->f);

	if (s->r->idb == s)
		s->r->idb = NULL;
	free(s->body);
	free(s);
	return rc ? -1 : 0;
}

FILE *rd_idb_stream(struct cap_reader *r, FILE *f)
{
	static const cookie_io_functions_t io = {.read = scan_read, .close = scan_close};
	struct rd_idb_scan *s = calloc(1, sizeof(*s));
	FILE *out;

	if (!s)
		return NULL;
	s->r = r;
	s->f = f;
	s->want = 8;
	s->done = ftell(f) < 0;
	out = fopencookie(s, "rb", io);
	if (!out) {
		free(s);
		return NULL;
	}
	r->idb = s;
	return out;
}

void rd_idb_drain(struct cap_reader *r)
{
	struct rd_idb_scan *s = r->idb;
	uint8_t buf[16384];
	size_t got;

	if (!s)
		return;
	while (!s->done && (got = fread(buf, 1, sizeof(buf), s->f)) > 0)
		scan_feed(s, buf, got);
}
