/* test_redact_paths.c - the capture tap finds every secret where lockdown
 * can carry it, however the bytes are framed (issue 14).
 *
 * The tap reads lockdown connections (mux TCP port 62078) by structure and
 * skips the payload of every other connection (src/capture/cap_tap.c). This
 * plants each key of the one secret list (src/base/lp_secret.h) as a
 * lockdown message (4-byte length + plist) in every framing the tap must
 * follow and checks, byte by byte, that no byte of the secret's value is left
 * in the written capture:
 *   - plist: XML (as libplist writes it) and binary (bplist00);
 *   - usbmux: v1 and v2 headers after the device's VERSION reply, and v2
 *     without one (the tap attached mid-session);
 *   - direction: host->device (OUT, dport 62078) and device->host (IN,
 *     sport 62078);
 *   - cut: the message in one packet; in packets of 37 payload bytes (each
 *     its own transfer); cut finer still (IN: one packet arriving in 16-byte
 *     transfers, so even its header spans three; OUT: 1-byte packets); and in
 *     37-byte packets with another connection's packet after each one on the
 *     same endpoint (whose bytes must come through untouched: the tap does
 *     not read them).
 * Every case also runs with redaction off, where every byte must be intact:
 * the map from message bytes to capture bytes is right, so the test can fail.
 */
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <plist/plist.h>

#include "proto/mux.h"
#include "src/base/lp_secret.h"
#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"
#include "usb/cap_usbmon.h"
#include "usb/transport.h"

#define EP_OUT 0x04
#define EP_IN 0x85
#define SECRET_LEN 48
#define PIECE 37      /* payload bytes per packet when cut */
#define SPAN_XFER 16  /* IN transfer size when one packet spans many */
#define MAX_RECS 8192 /* records of one case */
#define HOST_PORT 3
#define OTHER_PORT 1234

enum cut { CUT_WHOLE, CUT_PACKETS, CUT_FINE, CUT_INTERLEAVED, CUT_COUNT };
enum muxv { MV_V1, MV_V2, MV_V2_NOVERSION, MV_COUNT };

static struct tr_dev fake_dev = {
	.info = {.bus = 2, .addr = 5, .vid = 0x05ac, .pid = 0x12a8, .speed = TR_SPEED_HIGH},
};

/* What one case wrote: each record's data as fed (NULL/0 when none). */
struct rec {
	uint8_t *data;
	size_t len;
};

struct run {
	struct cap_tap *t;
	struct rec recs[MAX_RECS];
	size_t nrec;
	uint32_t *map;	 /* message byte -> record << 16 | offset */
	uint32_t *other; /* other connection's payload bytes, same encoding */
	size_t nother;
	uint32_t seq;
	bool v2;
};

static char tmpdir[] = "/tmp/lp-redpaths.XXXXXX";

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

/* One observed event; `data` is recorded (copied) when n > 0. */
static void event(struct run *r, enum tr_event ev, struct tr_xfer *x, const uint8_t *data, size_t n)
{
	assert_true(r->nrec < MAX_RECS);
	cap_tap_observe(r->t, ev, x, 0);
	r->recs[r->nrec].len = n;
	r->recs[r->nrec].data = NULL;
	if (n) {
		r->recs[r->nrec].data = malloc(n);
		assert_non_null(r->recs[r->nrec].data);
		memcpy(r->recs[r->nrec].data, data, n);
	}
	r->nrec++;
}

/* An OUT transfer: its data is in the submit record. Returns that record. */
static size_t send_out(struct run *r, uint8_t *b, size_t n)
{
	struct tr_xfer x = {.dev = &fake_dev, .type = TR_XFER_BULK, .endpoint = EP_OUT};
	size_t rec;

	x.buf = b;
	x.len = n;
	event(r, TR_EV_SUBMIT, &x, b, n);
	rec = r->nrec - 1;
	x.actual = n;
	x.status = TR_STATUS_COMPLETED;
	event(r, TR_EV_COMPLETE, &x, NULL, 0);
	return rec;
}

/* An IN transfer of buffer size `buflen` bringing b[0..n): its data is in
 * the completion record. */
static size_t send_in(struct run *r, uint8_t *b, size_t n, size_t buflen)
{
	struct tr_xfer x = {.dev = &fake_dev, .type = TR_XFER_BULK, .endpoint = EP_IN};

	x.buf = b;
	x.len = buflen;
	event(r, TR_EV_SUBMIT, &x, NULL, 0);
	x.actual = n;
	x.status = TR_STATUS_COMPLETED;
	event(r, TR_EV_COMPLETE, &x, b, n);
	return r->nrec - 1;
}

/* A mux TCP packet around payload[0..n) into out; returns its length and
 * the payload's offset in *poff. */
static size_t mux_tcp(struct run *r, uint8_t *out, bool in, uint16_t port, const uint8_t *payload,
		      size_t n, size_t *poff)
{
	size_t h = r->v2 ? MUX_V2_HDR : MUX_V1_HDR, len = h + MUX_TCP_HDR + n;
	uint8_t *t = out + h;

	memset(out, 0, h + MUX_TCP_HDR);
	put32(out, MUX_PROTO_TCP);
	put32(out + 4, (uint32_t)len);
	if (r->v2) {
		put32(out + 8, MUX_V2_MAGIC);
		put16(out + 12, (uint16_t)r->seq);
		put16(out + 14, (uint16_t)r->seq);
	}
	put16(t, in ? port : HOST_PORT);
	put16(t + 2, in ? HOST_PORT : port);
	put32(t + 4, r->seq);
	put32(t + 8, r->seq);
	t[12] = 0x50;
	t[13] = MUX_TH_ACK;
	put16(t + 14, 0x0200);
	r->seq += (uint32_t)n;
	memcpy(out + h + MUX_TCP_HDR, payload, n);
	*poff = h + MUX_TCP_HDR;
	return len;
}

/* The device's VERSION reply (always the 8-byte header). */
static void version_reply(struct run *r, uint32_t major)
{
	uint8_t v[20] = {0};

	put32(v, MUX_PROTO_VERSION);
	put32(v + 4, sizeof(v));
	put32(v + 8, major);
	send_in(r, v, sizeof(v), 16384);
}

/* Packet of payload m[from..from+n) on the lockdown connection (or of the
 * other connection's filler when m is NULL), sent as one transfer, or as
 * SPAN_XFER-byte IN transfers; the bytes' places go to map/other. */
static void send_piece(struct run *r, bool in, bool span, const uint8_t *m, size_t from, size_t n)
{
	static uint8_t filler[PIECE + 13];
	uint8_t pkt[MUX_MAX_PACKET];
	size_t poff, len, rec;
	const uint8_t *payload = m ? m + from : filler;

	if (!m) {
		n = sizeof(filler);
		for (size_t i = 0; i < n; i++)
			filler[i] = (uint8_t)('a' + i % 26);
	}
	len = mux_tcp(r, pkt, in, m ? MUX_PORT_LOCKDOWN : OTHER_PORT, payload, n, &poff);
	if (!span) {
		rec = in ? send_in(r, pkt, len, 16384) : send_out(r, pkt, len);
		for (size_t i = 0; i < n; i++) {
			uint32_t at = (uint32_t)(rec << 16 | (poff + i));

			if (m)
				r->map[from + i] = at;
			else
				r->other[r->nother++] = at;
		}
		return;
	}
	assert_true(in && m);
	for (size_t o = 0; o < len; o += SPAN_XFER) {
		size_t k = len - o < SPAN_XFER ? len - o : SPAN_XFER;

		rec = send_in(r, pkt + o, k, SPAN_XFER);
		for (size_t i = o; i < o + k; i++)
			if (i >= poff)
				r->map[from + i - poff] = (uint32_t)(rec << 16 | (i - o));
	}
	if (len % SPAN_XFER == 0)
		send_in(r, pkt, 0, SPAN_XFER); /* ZLP ends the transfer run */
}

/* Lockdown message (4-byte length + plist) holding `key` = secret, with some
 * company; *s0..*s1 is the secret's encoding in it. */
static uint8_t *message(const char *key, bool xml, size_t *len, size_t *s0, size_t *s1)
{
	static const uint8_t cert[12] = "CERT-NOT-KEY";
	uint8_t secret[SECRET_LEN];
	plist_t d = plist_new_dict();
	char *body = NULL, *p, *q;
	uint32_t bl = 0;
	uint8_t *m;

	/* F7 DF 7D is "9999" in base64: no letter of REDACTED, and the raw
	 * bytes are no letter either, so every kept byte shows */
	for (size_t i = 0; i < SECRET_LEN; i++)
		secret[i] = (uint8_t[]){0xF7, 0xDF, 0x7D}[i % 3];
	plist_dict_set_item(d, "Request", plist_new_string("Pair"));
	plist_dict_set_item(d, "DeviceCertificate", plist_new_data((const char *)cert, 12));
	plist_dict_set_item(d, key, plist_new_data((const char *)secret, SECRET_LEN));
	plist_dict_set_item(d, "HostID", plist_new_string("5F5B-HOST"));
	if (xml)
		plist_to_xml(d, &body, &bl);
	else
		plist_to_bin(d, &body, &bl);
	plist_free(d);
	assert_non_null(body);
	m = malloc(4 + bl);
	assert_non_null(m);
	put32(m, bl);
	memcpy(m + 4, body, bl);
	if (xml)
		plist_to_xml_free(body);
	else
		plist_to_bin_free(body);
	*len = 4 + bl;
	if (xml) {
		char tag[64];

		snprintf(tag, sizeof(tag), "<key>%s</key>", key);
		p = memmem(m, *len, tag, strlen(tag));
		assert_non_null(p);
		p = memmem(p, *len - (size_t)(p - (char *)m), "<data>", 6);
		assert_non_null(p);
		p += 6;
		q = memmem(p, *len - (size_t)(p - (char *)m), "</data>", 7);
		assert_non_null(q);
	} else {
		p = memmem(m, *len, secret, SECRET_LEN);
		assert_non_null(p);
		q = p + SECRET_LEN;
	}
	*s0 = (size_t)(p - (char *)m);
	*s1 = (size_t)(q - (char *)m);
	return m;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One case; returns the number of secret bytes that survived (redact) or
 * that were changed (no redact), and checks the other connection. */
static size_t one_case(const char *key, bool xml, enum muxv mv, bool in, enum cut cut, bool redact)
{
	struct cap_tap_opts keep = {.no_redact = true};
	char path[256], err[PCAP_ERRBUF_SIZE];
	struct run *r = calloc(1, sizeof(*r));
	size_t len, s0, s1, bad = 0, k = 0;
	uint8_t *m = message(key, xml, &len, &s0, &s1);
	struct cap_writer *w;
	struct pcap_pkthdr *h;
	const u_char *p;
	pcap_t *pc;

	assert_non_null(r);
	r->map = calloc(len, sizeof(*r->map));
	r->other = calloc(len * 4 + 1024, sizeof(*r->other));
	assert_non_null(r->map);
	assert_non_null(r->other);
	r->v2 = mv != MV_V1;
	snprintf(path, sizeof(path), "%s/case.pcapng", tmpdir);
	w = cap_open(path, CAP_FMT_PCAPNG, NULL, NULL);
	assert_non_null(w);
	assert_int_equal(cap_tap_new(w, NULL, redact ? NULL : &keep, &r->t), 0);
	if (mv != MV_V2_NOVERSION)
		version_reply(r, mv == MV_V1 ? 1 : 2);

	if (cut == CUT_WHOLE) {
		send_piece(r, in, false, m, 0, len);
	} else if (cut == CUT_FINE && in) {
		send_piece(r, in, true, m, 0, len);
	} else {
		size_t step = cut == CUT_FINE ? 1 : PIECE;

		for (size_t o = 0; o < len; o += step) {
			send_piece(r, in, false, m, o, len - o < step ? len - o : step);
			if (cut == CUT_INTERLEAVED)
				send_piece(r, in, false, NULL, 0, 0);
		}
	}
	assert_int_equal(cap_tap_error(r->t), 0);
	/* counted as failures (not asserted) so that every case is listed */
	if (redact ? cap_tap_redacted(r->t) == 0 : cap_tap_redacted(r->t) != 0)
		bad += 1000;
	cap_tap_free(r->t);
	assert_int_equal(cap_close(w), 0);

	/* read it back: the same records, in order */
	pc = pcap_open_offline(path, err);
	assert_non_null(pc);
	{
		uint8_t **copy = calloc(r->nrec, sizeof(*copy));

		assert_non_null(copy);
		while (pcap_next_ex(pc, &h, &p) == 1) {
			assert_true(k < r->nrec);
			assert_int_equal(h->caplen, CAP_USBMON_HDR_LEN + r->recs[k].len);
			copy[k] = malloc(h->caplen);
			assert_non_null(copy[k]);
			memcpy(copy[k], p, h->caplen);
			k++;
		}
		assert_int_equal(k, r->nrec);
		for (size_t j = s0; j < s1; j++) {
			uint8_t got;

			if (xml && is_space(m[j]))
				continue;
			got = copy[r->map[j] >> 16][CAP_USBMON_HDR_LEN + (r->map[j] & 0xFFFF)];
			if (redact ? got == m[j] : got != m[j])
				bad++;
		}
		/* the other connection is never read, never changed */
		for (size_t j = 0; j < r->nother; j++) {
			uint8_t got = copy[r->other[j] >> 16]
					  [CAP_USBMON_HDR_LEN + (r->other[j] & 0xFFFF)];
			uint8_t want = r->recs[r->other[j] >> 16].data[r->other[j] & 0xFFFF];

			assert_int_equal(got, want);
		}
		for (size_t i = 0; i < r->nrec; i++) {
			free(copy[i]);
			free(r->recs[i].data);
		}
		free(copy);
	}
	pcap_close(pc);
	unlink(path);
	free(r->map);
	free(r->other);
	free(r);
	free(m);
	return bad;
}

static const char *const cut_name[CUT_COUNT] = {"one packet", "37-byte packets", "finest cut",
						"interleaved"};
static const char *const mv_name[MV_COUNT] = {"mux v1", "mux v2", "mux v2, no VERSION seen"};

static void test_every_key_every_framing(void **state)
{
	size_t cases = 0, failed = 0;

	for (size_t k = 0; lp_secret_keys[k]; k++)
		for (int xml = 0; xml < 2; xml++)
			for (int mv = 0; mv < MV_COUNT; mv++)
				for (int in = 0; in < 2; in++)
					for (int cut = 0; cut < CUT_COUNT; cut++) {
						size_t left = one_case(lp_secret_keys[k], xml, mv,
								       in, cut, true);
						size_t moved = one_case(lp_secret_keys[k], xml, mv,
									in, cut, false);

						cases++;
						if (left || moved) {
							failed++;
							print_message(
								"%s, %s, %s, %s, %s: %zu secret "
								"bytes left; without redaction "
								"%zu changed\n",
								lp_secret_keys[k],
								xml ? "XML" : "binary", mv_name[mv],
								in ? "device->host"
								   : "host->device",
								cut_name[cut], left, moved);
						}
					}
	assert_int_equal(cases, lp_secret_key_count() * 2 * MV_COUNT * 2 * CUT_COUNT);
	assert_int_equal(failed, 0);
}

/* A secret on a non-lockdown connection is not looked for: that is the
 * design (only lockdown carries them), and the bytes come through as sent. */
static void test_other_connection_not_read(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	char path[256];
	size_t len, s0, s1, poff;
	uint8_t *m = message("EscrowBag", true, &len, &s0, &s1), pkt[4096];
	struct cap_writer *w;
	uint64_t before;

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/other.pcapng", tmpdir);
	w = cap_open(path, CAP_FMT_PCAPNG, NULL, NULL);
	assert_non_null(w);
	assert_int_equal(cap_tap_new(w, NULL, NULL, &r->t), 0);
	r->v2 = true;
	version_reply(r, 2);
	before = cap_tap_redacted(r->t);
	send_out(r, pkt, mux_tcp(r, pkt, false, OTHER_PORT, m, len, &poff));
	assert_int_equal(cap_tap_redacted(r->t), before);
	/* the same bytes to lockdown are redacted */
	send_out(r, pkt, mux_tcp(r, pkt, false, MUX_PORT_LOCKDOWN, m, len, &poff));
	assert_true(cap_tap_redacted(r->t) > before);
	/* and bytes that are not usbmux at all are scanned as before */
	before = cap_tap_redacted(r->t);
	send_out(r, m + 4, len - 4);
	assert_true(cap_tap_redacted(r->t) > before);
	cap_tap_free(r->t);
	assert_int_equal(cap_close(w), 0);
	for (size_t i = 0; i < r->nrec; i++)
		free(r->recs[i].data);
	unlink(path);
	free(r);
	free(m);
}

static int setup_all(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_all(void **state)
{
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_every_framing),
		cmocka_unit_test(test_other_connection_not_read),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
