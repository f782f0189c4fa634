/* test_usbll.c - the bus-level decoder (src/capture/usbll.c): packets with
 * the CRCs real analyzer traces show (SETUP to 0.0 is 2d 00 10, a ZLP is
 * 4b 00 00, GET_DESCRIPTOR's setup ends dd 94), bad check nibbles and lengths
 * as garbage/malformed with packet numbers, control and bulk transfers
 * assembled across transactions with NAKs, retransmissions caught by the
 * data toggle, the host giving up after three failed transactions, STALL,
 * SET_ADDRESS, a bus reset, and missing/late SOFs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "src/base/lp_error.h"
#include "src/capture/usbll.h"

#define MAXX 16

struct sink {
	struct usbll_xfer x[MAXX];
	uint8_t data[MAXX][4096];
	size_t nx;
	uint8_t from, to;
	unsigned addrs, resets, anomalies;
	char last[200];
};

static void on_xfer(void *ud, const struct usbll_xfer *x)
{
	struct sink *s = ud;
	if (s->nx == MAXX)
		return;
	s->x[s->nx] = *x;
	if (x->len && x->data)
		memcpy(s->data[s->nx], x->data, x->len < 4096 ? x->len : 4096);
	s->nx++;
}

static void on_addr(void *ud, uint8_t from, uint8_t to, uint64_t t, uint64_t pkt)
{
	struct sink *s = ud;
	s->from = from;
	s->to = to;
	s->addrs++;
}

static void on_reset(void *ud, uint64_t t, uint64_t pkt)
{
	((struct sink *)ud)->resets++;
}

static void on_anom(void *ud, const char *msg)
{
	struct sink *s = ud;
	s->anomalies++;
	snprintf(s->last, sizeof(s->last), "%s", msg);
}

/* a tiny bus: packets fed with increasing times and numbers */
struct bus {
	struct usbll *u;
	struct sink s;
	uint64_t t, n;
};

static void bus_init(struct bus *b, enum tr_speed sp)
{
	struct usbll_cb cb = {
		.xfer = on_xfer, .address = on_addr, .reset = on_reset, .anomaly = on_anom};
	memset(b, 0, sizeof(*b));
	b->u = usbll_new(sp, &cb, &b->s);
	assert_non_null(b->u);
	b->t = 1000000;
}

static void feed(struct bus *b, const uint8_t *p, size_t n)
{
	b->t += 300;
	usbll_feed(b->u, b->t, ++b->n, p, n, n);
}

static void token(struct bus *b, unsigned pid, uint8_t addr, uint8_t ep)
{
	uint16_t v = (uint16_t)(addr | ep << 7);
	uint8_t p[3];
	v |= (uint16_t)(usbll_crc5(v, 11) << 11);
	p[0] = usbll_pid_byte(pid);
	p[1] = (uint8_t)v;
	p[2] = (uint8_t)(v >> 8);
	feed(b, p, 3);
}

static void data(struct bus *b, unsigned pid, const uint8_t *d, size_t n, bool corrupt)
{
	uint8_t p[USBLL_PKT_MAX];
	uint16_t c = usbll_crc16(d, n);
	p[0] = usbll_pid_byte(pid);
	if (n)
		memcpy(p + 1, d, n);
	p[n + 1] = (uint8_t)c;
	p[n + 2] = (uint8_t)(c >> 8);
	if (corrupt)
		p[1] ^= 0x04;
	feed(b, p, n + 3);
}

static void hs(struct bus *b, unsigned pid)
{
	uint8_t p = usbll_pid_byte(pid);
	feed(b, &p, 1);
}

static void test_packets(void **state)
{
	static const uint8_t setup0[] = {0x2d, 0x00, 0x10};
	static const uint8_t zlp[] = {0x4b, 0x00, 0x00};
	static const uint8_t getdesc[] = {0xc3, 0x80, 0x06, 0x00, 0x01, 0x00,
					  0x00, 0x40, 0x00, 0xdd, 0x94};
	static const uint8_t split[] = {0x78, 0x81, 0x02,
					0x00}; /* CSPLIT hub 1 port 2, control; CRC below */
	struct usbll_pkt p;
	uint8_t s4[4];
	uint32_t v;

	assert_int_equal(usbll_decode(setup0, 3, &p), 0);
	assert_int_equal(p.pid, USBLL_PID_SETUP);
	assert_int_equal(p.kind, USBLL_K_TOKEN);
	assert_true(p.crc_ok);
	assert_int_equal(p.addr, 0);
	assert_int_equal(p.ep, 0);
	assert_int_equal(usbll_decode(zlp, 3, &p), 0);
	assert_int_equal(p.kind, USBLL_K_DATA);
	assert_int_equal(p.data_len, 0);
	assert_true(p.crc_ok);
	assert_int_equal(usbll_decode(getdesc, sizeof(getdesc), &p), 0);
	assert_true(p.crc_ok);
	assert_int_equal(p.data_len, 8);
	assert_int_equal(usbll_crc16(getdesc + 1, 8), 0x94dd);

	/* one bit flipped: the packet is there, its CRC says the bits are not */
	{
		uint8_t bad[sizeof(getdesc)];
		memcpy(bad, getdesc, sizeof(bad));
		bad[3] ^= 0x20;
		assert_int_equal(usbll_decode(bad, sizeof(bad), &p), 0);
		assert_false(p.crc_ok);
		memcpy(bad, setup0, 3);
		bad[1] = 0x01; /* address 1 with address 0's CRC */
		assert_int_equal(usbll_decode(bad, 3, &p), 0);
		assert_false(p.crc_ok);
	}
	/* SPLIT: 19 bits + CRC5 */
	memcpy(s4, split, 4);
	v = (uint32_t)(s4[1] | s4[2] << 8 | s4[3] << 16) & 0x7ffff;
	v |= (uint32_t)usbll_crc5(v, 19) << 19;
	s4[1] = (uint8_t)v;
	s4[2] = (uint8_t)(v >> 8);
	s4[3] = (uint8_t)(v >> 16);
	assert_int_equal(usbll_decode(s4, 4, &p), 0);
	assert_int_equal(p.kind, USBLL_K_SPLIT);
	assert_true(p.crc_ok);
	assert_true(p.complete);
	assert_int_equal(p.hub, 1);
	assert_int_equal(p.port, 2);

	/* truncated kept apart from invalid */
	assert_int_equal(usbll_decode(setup0, 0, &p), LP_ETRUNC);
	assert_int_equal(usbll_decode(setup0, 2, &p), LP_ETRUNC);
	assert_int_equal(usbll_decode(zlp, 2, &p), LP_ETRUNC);
	{
		static const uint8_t nibble[] = {0x3d, 0x00, 0x10}; /* 0xd with check 0x3 */
		static const uint8_t longack[] = {0xd2, 0x00};
		static const uint8_t longtok[] = {0x2d, 0x00, 0x10, 0x00};
		assert_int_equal(usbll_decode(nibble, 3, &p), LP_EBADMSG);
		assert_int_equal(usbll_decode(longack, 2, &p), LP_EBADMSG);
		assert_int_equal(usbll_decode(longtok, 4, &p), LP_EBADMSG);
	}
	assert_string_equal(usbll_pid_name(USBLL_PID_NYET), "NYET");
	assert_int_equal(usbll_pid_byte(USBLL_PID_ACK), 0xd2);
	{
		enum tr_speed sp;
		assert_true(usbll_linktype_speed(295, &sp));
		assert_int_equal(sp, TR_SPEED_HIGH);
		assert_true(usbll_linktype_speed(294, &sp));
		assert_int_equal(sp, TR_SPEED_FULL);
		assert_false(usbll_linktype_speed(220, &sp));
	}
}

static const uint8_t devdesc[18] = {18,	  1,	0,    2, 0, 0, 0, 64, 0xac,
				    0x05, 0xa8, 0x12, 4, 8, 1, 2, 3,  4};

static void control_read(struct bus *b, uint8_t addr)
{
	const uint8_t setup[8] = {0x80, 6, 0, 1, 0, 0, 64, 0};
	token(b, USBLL_PID_SETUP, addr, 0);
	data(b, USBLL_PID_DATA0, setup, 8, false);
	hs(b, USBLL_PID_ACK);
	token(b, USBLL_PID_IN, addr, 0);
	hs(b, USBLL_PID_NAK);
	token(b, USBLL_PID_IN, addr, 0);
	data(b, USBLL_PID_DATA1, devdesc, 18, false);
	hs(b, USBLL_PID_ACK);
	token(b, USBLL_PID_OUT, addr, 0);
	data(b, USBLL_PID_DATA1, NULL, 0, false);
	hs(b, USBLL_PID_ACK);
}

static void test_control_and_address(void **state)
{
	struct bus b;
	const uint8_t setaddr[8] = {0x00, 5, 7, 0, 0, 0, 0, 0};

	bus_init(&b, TR_SPEED_HIGH);
	token(&b, USBLL_PID_SETUP, 0, 0);
	data(&b, USBLL_PID_DATA0, setaddr, 8, false);
	hs(&b, USBLL_PID_ACK);
	token(&b, USBLL_PID_IN, 0, 0);
	data(&b, USBLL_PID_DATA1, NULL, 0, false);
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(b.s.nx, 1);
	assert_int_equal(b.s.x[0].status, USBLL_ST_OK);
	assert_int_equal(b.s.x[0].setup[1], 5);
	assert_int_equal(b.s.addrs, 1);
	assert_int_equal(b.s.from, 0);
	assert_int_equal(b.s.to, 7);

	control_read(&b, 7);
	assert_int_equal(b.s.nx, 2);
	assert_int_equal(b.s.x[1].type, USBLL_XFER_CONTROL);
	assert_int_equal(b.s.x[1].addr, 7);
	assert_int_equal(b.s.x[1].ep, 0x80);
	assert_int_equal(b.s.x[1].len, 18);
	assert_int_equal(b.s.x[1].naks, 1);
	assert_memory_equal(b.s.data[1], devdesc, 18);
	assert_int_equal(b.s.x[1].pkt0, 7); /* the SETUP token */
	assert_int_equal(usbll_stats(b.u)->naks, 1);
	assert_int_equal(b.s.anomalies, 0);
	usbll_free(b.u);
}

static void test_bulk_toggles_and_retransmission(void **state)
{
	struct bus b;
	uint8_t big[1124];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	bus_init(&b, TR_SPEED_HIGH);
	token(&b, USBLL_PID_IN, 3, 5);
	hs(&b, USBLL_PID_NAK);
	token(&b, USBLL_PID_IN, 3, 5);
	data(&b, USBLL_PID_DATA0, big, 512, false);
	/* the host's ACK is lost: the device sends the same DATA0 again */
	token(&b, USBLL_PID_IN, 3, 5);
	data(&b, USBLL_PID_DATA0, big, 512, false);
	hs(&b, USBLL_PID_ACK);
	token(&b, USBLL_PID_IN, 3, 5);
	data(&b, USBLL_PID_DATA1, big + 512, 512, false);
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(b.s.nx, 0); /* full packets: not over yet */
	token(&b, USBLL_PID_IN, 3, 5);
	data(&b, USBLL_PID_DATA0, big + 1024, 100, false);
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(b.s.nx, 1);
	assert_int_equal(b.s.x[0].ep, 0x85);
	assert_int_equal(b.s.x[0].type, USBLL_XFER_BULK);
	assert_int_equal(b.s.x[0].len, 1124);
	assert_true(b.s.x[0].short_end);
	assert_memory_equal(b.s.data[0], big, 1124);
	assert_int_equal(b.s.x[0].naks, 1);
	assert_int_equal(usbll_stats(b.u)->duplicates, 1);
	assert_int_equal(usbll_stats(b.u)->timeouts, 1); /* the missing ACK */
	assert_int_equal(usbll_stats(b.u)->retries, 1);

	/* a ZLP ends a transfer of whole packets */
	token(&b, USBLL_PID_OUT, 3, 4);
	data(&b, USBLL_PID_DATA0, big, 512, false);
	hs(&b, USBLL_PID_ACK);
	token(&b, USBLL_PID_OUT, 3, 4);
	data(&b, USBLL_PID_DATA1, NULL, 0, false);
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(b.s.nx, 2);
	assert_int_equal(b.s.x[1].ep, 0x04);
	assert_int_equal(b.s.x[1].len, 512);
	/* NAKed OUT data is not taken */
	token(&b, USBLL_PID_OUT, 3, 4);
	data(&b, USBLL_PID_DATA0, big, 10, false);
	hs(&b, USBLL_PID_NAK);
	token(&b, USBLL_PID_OUT, 3, 4);
	data(&b, USBLL_PID_DATA0, big, 10, false);
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(b.s.nx, 3);
	assert_int_equal(b.s.x[2].len, 10);
	usbll_free(b.u);
}

static void test_errors(void **state)
{
	struct bus b;
	uint8_t d[64] = {1, 2, 3};
	const struct usbll_stats *st;

	bus_init(&b, TR_SPEED_HIGH);
	for (int i = 0; i < 3; i++) {
		token(&b, USBLL_PID_OUT, 2, 4);
		data(&b, USBLL_PID_DATA0, d, 64, true); /* CRC16 fails: no handshake */
	}
	token(&b, USBLL_PID_IN, 2, 5); /* next transaction */
	hs(&b, USBLL_PID_STALL);
	st = usbll_stats(b.u);
	assert_int_equal(st->crc16_bad, 3);
	assert_int_equal(st->gave_up, 1);
	assert_int_equal(st->retries, 2);
	assert_int_equal(st->first_bad_pkt, 2);
	assert_int_equal(b.s.nx, 2);
	assert_int_equal(b.s.x[0].status, USBLL_ST_ERROR);
	assert_int_equal(b.s.x[0].ep, 0x04);
	assert_int_equal(b.s.x[1].status, USBLL_ST_STALL);
	assert_int_equal(b.s.x[1].ep, 0x85);

	/* garbage and malformed records are counted with their packet numbers */
	{
		const uint8_t junk[] = {0xff, 0x13};
		const uint8_t longack[] = {0xd2, 0x00, 0x00};
		feed(&b, junk, 2);
		assert_int_equal(st->garbage, 1);
		assert_non_null(strstr(b.s.last, "packet 9:"));
		feed(&b, longack, 3);
		assert_int_equal(st->malformed, 1);
		assert_non_null(strstr(b.s.last, "packet 10:"));
		feed(&b, junk, 0);
		assert_int_equal(st->malformed, 2);
		/* a clipped record is not decoded */
		usbll_feed(b.u, b.t + 100, ++b.n, longack, 1, 3);
		assert_int_equal(st->clipped, 1);
	}
	/* handshake out of nowhere */
	hs(&b, USBLL_PID_ACK);
	assert_int_equal(st->unexpected, 1);
	/* a token hit on the wire: its data goes unanswered and is no anomaly */
	{
		const uint8_t badtok[3] = {0xe1, 0x02, 0x13}; /* OUT 2.4 with a wrong CRC5 */
		b.t += 50000;
		feed(&b, badtok, 3);
		data(&b, USBLL_PID_DATA1, d, 36, false);
		assert_int_equal(st->unexpected, 1);
		assert_int_equal(st->crc5_bad, 1);
		token(&b, USBLL_PID_OUT, 2, 4);
		data(&b, USBLL_PID_DATA1, d, 36, false);
		hs(&b, USBLL_PID_ACK);
		assert_int_equal(b.s.nx, 3);
		assert_int_equal(b.s.x[2].len, 36);
	}
	usbll_free(b.u);
}

static void sof(struct bus *b, uint64_t t, uint16_t frame)
{
	uint16_t v = (uint16_t)(frame | usbll_crc5(frame, 11) << 11);
	uint8_t p[3] = {usbll_pid_byte(USBLL_PID_SOF), (uint8_t)v, (uint8_t)(v >> 8)};
	b->t = t;
	usbll_feed(b->u, t, ++b->n, p, 3, 3);
}

static void test_sof_and_reset(void **state)
{
	struct bus b;
	const struct usbll_stats *st;
	uint64_t t0 = 10000000;

	bus_init(&b, TR_SPEED_UNKNOWN);
	st = usbll_stats(b.u);
	/* 125 us apart: high speed; the frame number moves every 8 */
	for (int i = 0; i < 16; i++)
		sof(&b, t0 + (uint64_t)i * 125000, (uint16_t)(100 + i / 8));
	assert_int_equal(usbll_speed(b.u), TR_SPEED_HIGH);
	assert_int_equal(st->sof_late + st->sof_missing + st->sof_jumps, 0);
	/* traffic two microframes after the last SOF: its SOF is missing */
	b.t = t0 + 15 * 125000 + 260000;
	token(&b, USBLL_PID_IN, 4, 1);
	hs(&b, USBLL_PID_NAK);
	assert_int_equal(st->sof_missing, 1);
	/* a SOF 20 us off the grid is late */
	sof(&b, t0 + 18 * 125000 + 20000, 102);
	assert_int_equal(st->sof_late, 1);
	/* a frame number that does not follow */
	sof(&b, t0 + 19 * 125000 + 20000, 300);
	assert_int_equal(st->sof_jumps, 1);

	/* silence, then the default address: a reset */
	control_read(&b, 4);
	b.t += 5000000;
	token(&b, USBLL_PID_SETUP, 0, 0);
	assert_int_equal(st->resets, 1);
	assert_int_equal(b.s.resets, 1);
	usbll_free(b.u);
}

/* hostile: random bytes and lengths never crash, counters stay consistent */
static void test_noise(void **state)
{
	struct bus b;
	uint64_t x = 0x1234567;
	uint8_t p[USBLL_PKT_MAX + 8];

	bus_init(&b, TR_SPEED_UNKNOWN);
	for (int i = 0; i < 20000; i++) {
		size_t n;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = (size_t)(x % sizeof(p));
		for (size_t k = 0; k < n; k++)
			p[k] = (uint8_t)(x >> (k % 56));
		if (i % 3 == 0 && n)
			p[0] = usbll_pid_byte((unsigned)(x >> 5) & 0xf);
		feed(&b, p, n);
	}
	usbll_finish(b.u);
	assert_int_equal(usbll_stats(b.u)->records, 20000);
	usbll_free(b.u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packets),
		cmocka_unit_test(test_control_and_address),
		cmocka_unit_test(test_bulk_toggles_and_retransmission),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sof_and_reset),
		cmocka_unit_test(test_noise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
