/* cap_bus.c - transfers of a transport context -> the USB 2.0 packets the
 * modelled bus carries (see cap_bus.h), written with cap_writer.
 *
 * Every transaction is placed at the earliest time >= its desired time at
 * which the bus is free and the whole transaction fits before the end of
 * the current (micro)frame; the SOF of a frame is written just before the
 * first transaction in it. Times only grow, so the file is in time order.
 * Reference: USB 2.0 chapter 8 (packet formats, CRC5/CRC16, toggles,
 * transactions), 5.3.3 / 5.8 (bulk and control transfers), 9.4.6
 * (SET_ADDRESS); src/capture/usbll.h for the record format. */
#include "src/capture/cap_bus.h"

#include <stdlib.h>
#include <string.h>

#include "src/capture/usbll.h"

#define HS_FRAME_NS 125000ull
#define FS_FRAME_NS 1000000ull
#define EP0_MPS 64
#define RESET_SILENCE_NS (10ull * LP_NS_PER_MS) /* SE0 reset + recovery before SET_ADDRESS */

struct bus_dev {
	uint32_t session;
	uint8_t addr;
	bool gone;
	uint8_t tog[32]; /* next DATA PID per endpoint: 0 DATA0, 1 DATA1 (index epnum*2 + in) */
};

struct bus_pend {
	bool used;
	uint64_t id;
	uint32_t session;
	uint8_t addr, ep;
	uint64_t next_poll;
};

struct cap_bus {
	struct cap_writer *w;	      /* borrowed */
	const struct lp_clock *clock; /* borrowed */
	struct tr_ctx *ctx;	      /* borrowed while attached */
	int iface;
	int err;
	uint64_t packets;
	struct cap_bus_opts o;
	uint64_t frame_ns, slot_ns, gap_ns;
	uint16_t bulk_mps;
	uint64_t bus_t; /* the bus is free from here */
	bool have_sof;
	uint64_t sof_idx; /* (micro)frame index of the last SOF written */
	struct bus_dev devs[CAP_BUS_DEVS_MAX];
	size_t ndevs;
	struct bus_pend pend[CAP_BUS_PENDING_MAX];
	struct lp_rand rng;
	bool corrupt_token; /* the next token's bits get flipped */
	uint8_t pkt[USBLL_PKT_MAX];
};

/* ---- time on the wire ---------------------------------------------------- */

/* a packet of `len` bytes plus SYNC and EOP */
static uint64_t pkt_ns(const struct cap_bus *b, size_t len)
{
	uint64_t bytes = len + 2;
	return b->o.speed == TR_SPEED_HIGH ? (bytes * 50 + 2) / 3 : (bytes * 2000 + 2) / 3;
}

static uint64_t tx_ns(const struct cap_bus *b, size_t data_len, bool data, bool hs)
{
	uint64_t t = pkt_ns(b, 3);
	if (data)
		t += b->gap_ns + pkt_ns(b, data_len + 3);
	if (hs)
		t += b->gap_ns + pkt_ns(b, 1);
	return t;
}

static void emit(struct cap_bus *b, uint64_t t, size_t len)
{
	int r;

	if (b->err)
		return;
	r = cap_write_packet(b->w, b->iface, lp_clock_wall(b->clock, t), b->pkt, len, len, NULL);
	if (r) {
		b->err = r;
		return;
	}
	b->packets++;
	b->bus_t = t + pkt_ns(b, len);
}

static void emit_token(struct cap_bus *b, uint64_t t, unsigned pid, uint16_t v11)
{
	uint16_t v = (uint16_t)((v11 & 0x7ff) | usbll_crc5(v11 & 0x7ff, 11) << 11);

	if (b->corrupt_token) {
		b->corrupt_token = false;
		v ^= (uint16_t)(1u << (lp_rand_next(&b->rng) % 16));
	}

	b->pkt[0] = usbll_pid_byte(pid);
	b->pkt[1] = (uint8_t)v;
	b->pkt[2] = (uint8_t)(v >> 8);
	emit(b, t, 3);
}

static void emit_sof(struct cap_bus *b, uint64_t idx)
{
	uint64_t t = idx * b->frame_ns;
	/* the frame number counts milliseconds at both speeds */
	uint16_t frame = (uint16_t)((t / FS_FRAME_NS) & 0x7ff);

	/* a SOF hit on the wire: the device sees no frame start (a missing SOF) */
	if (b->o.retry_rate > 0 && lp_rand_unit(&b->rng) < b->o.retry_rate / 2)
		b->corrupt_token = true;
	emit_token(b, t, USBLL_PID_SOF, frame);
	b->have_sof = true;
	b->sof_idx = idx;
}

static void emit_data(struct cap_bus *b, uint64_t t, unsigned pid, const uint8_t *d, size_t n,
		      bool corrupt)
{
	uint16_t crc;

	if (n > USBLL_DATA_MAX)
		n = USBLL_DATA_MAX;
	b->pkt[0] = usbll_pid_byte(pid);
	if (n)
		memcpy(b->pkt + 1, d, n);
	crc = usbll_crc16(b->pkt + 1, n);
	b->pkt[1 + n] = (uint8_t)crc;
	b->pkt[2 + n] = (uint8_t)(crc >> 8);
	if (corrupt) {
		/* a bit flipped on the wire: the receiver's CRC check fails */
		size_t at = n ? lp_rand_next(&b->rng) % n : 0;
		b->pkt[1 + at] ^= (uint8_t)(1u << (lp_rand_next(&b->rng) % 8));
	}
	emit(b, t, n + 3);
}

static void emit_hs(struct cap_bus *b, uint64_t t, unsigned pid)
{
	b->pkt[0] = usbll_pid_byte(pid);
	emit(b, t, 1);
}

/* Earliest start >= want for a transaction of `dur` ns: after the bus is
 * free, inside one (micro)frame, after that frame's SOF (written here). */
static uint64_t place(struct cap_bus *b, uint64_t want, uint64_t dur)
{
	uint64_t t = want, sof_ns = pkt_ns(b, 3);

	if (b->packets && t < b->bus_t + b->gap_ns)
		t = b->bus_t + b->gap_ns;
	for (int guard = 0; guard < 4; guard++) {
		uint64_t idx = t / b->frame_ns, fstart = idx * b->frame_ns;
		if (!b->have_sof || idx != b->sof_idx) {
			if (b->have_sof && idx < b->sof_idx) {
				t = (b->sof_idx + 1) * b->frame_ns;
				continue;
			}
			emit_sof(b, idx);
			if (t < fstart + sof_ns + b->gap_ns)
				t = fstart + sof_ns + b->gap_ns;
		}
		if (t + dur <= fstart + b->frame_ns - b->gap_ns)
			return t;
		t = (idx + 1) * b->frame_ns;
	}
	return t;
}

/* ---- transactions -------------------------------------------------------- */

static uint16_t tok(uint8_t addr, uint8_t ep)
{
	return (uint16_t)((addr & 0x7f) | (ep & 0x0f) << 7);
}

/* OUT or SETUP: token, data, the device's handshake (0 = none). */
static uint64_t tx_out(struct cap_bus *b, uint64_t want, unsigned token, uint8_t addr, uint8_t ep,
		       unsigned dpid, const uint8_t *d, size_t n, unsigned hs, bool corrupt)
{
	uint64_t t = place(b, want, tx_ns(b, n, true, hs != 0));

	emit_token(b, t, token, tok(addr, ep));
	emit_data(b, b->bus_t + b->gap_ns, dpid, d, n, corrupt);
	if (hs)
		emit_hs(b, b->bus_t + b->gap_ns, hs);
	return t;
}

/* IN: token, then device data (dpid) with the host's ACK, or a handshake
 * (NAK/STALL) when dpid is 0. */
static uint64_t tx_in(struct cap_bus *b, uint64_t want, uint8_t addr, uint8_t ep, unsigned dpid,
		      const uint8_t *d, size_t n, unsigned hs, bool corrupt)
{
	uint64_t t = place(b, want, tx_ns(b, n, dpid != 0, true));

	emit_token(b, t, USBLL_PID_IN, tok(addr, ep));
	if (dpid) {
		emit_data(b, b->bus_t + b->gap_ns, dpid, d, n, corrupt);
		if (!corrupt)
			emit_hs(b, b->bus_t + b->gap_ns, USBLL_PID_ACK);
	} else if (hs) {
		emit_hs(b, b->bus_t + b->gap_ns, hs);
	}
	return t;
}

static bool retry_now(struct cap_bus *b)
{
	return b->o.retry_rate > 0 && lp_rand_unit(&b->rng) < b->o.retry_rate;
}

/* One data packet of a bulk or control stage, with an injected retry when
 * the profile asks for one. Advances the toggle. */
static void data_packet(struct cap_bus *b, uint64_t *want, struct bus_dev *dv, uint8_t ep, bool in,
			const uint8_t *d, size_t n, uint8_t *tg)
{
	unsigned pid = *tg ? USBLL_PID_DATA1 : USBLL_PID_DATA0;

	if (retry_now(b)) {
		uint64_t r = lp_rand_next(&b->rng) % 8;
		if (r == 0) {
			/* noise: bits on the wire that make no packet (the PID check fails) */
			uint64_t t = place(b, *want, pkt_ns(b, 3));
			b->pkt[0] = (uint8_t)(usbll_pid_byte(USBLL_PID_IN) ^ 0x10);
			b->pkt[1] = 0x5a;
			emit(b, t, 2);
		} else if (r < 3) {
			/* the token is hit: the device ignores the transaction */
			b->corrupt_token = true;
			if (in)
				tx_in(b, *want, dv->addr, ep, 0, NULL, 0, 0, false);
			else
				tx_out(b, *want, USBLL_PID_OUT, dv->addr, ep, pid, d, n, 0, false);
		} else if (in) {
			tx_in(b, *want, dv->addr, ep, pid, d, n, 0, true);
		} else {
			tx_out(b, *want, USBLL_PID_OUT, dv->addr, ep, pid, d, n, 0, true);
		}
		*want = b->bus_t + b->gap_ns;
	}
	if (in)
		tx_in(b, *want, dv->addr, ep, pid, d, n, 0, false);
	else
		tx_out(b, *want, USBLL_PID_OUT, dv->addr, ep, pid, d, n, USBLL_PID_ACK, false);
	*tg ^= 1;
	*want = b->bus_t + b->gap_ns;
}

/* ---- pending IN transfers: the host polls, the device NAKs -------------- */

static void polls_until(struct cap_bus *b, uint64_t until)
{
	for (;;) {
		struct bus_pend *p = NULL;
		struct bus_dev *dv = NULL;
		uint64_t t;

		for (size_t i = 0; i < CAP_BUS_PENDING_MAX; i++)
			if (b->pend[i].used && b->pend[i].next_poll < until &&
			    (!p || b->pend[i].next_poll < p->next_poll))
				p = &b->pend[i];
		if (!p || b->err)
			return;
		for (size_t i = 0; i < b->ndevs; i++)
			if (b->devs[i].session == p->session)
				dv = &b->devs[i];
		if (!dv || dv->gone) {
			p->used = false;
			continue;
		}
		t = tx_in(b, p->next_poll, dv->addr, p->ep, 0, NULL, 0, USBLL_PID_NAK, false);
		p->next_poll = (t > p->next_poll ? t : p->next_poll) + b->o.nak_poll_ns;
	}
}

static void idle_sofs_until(struct cap_bus *b, uint64_t until)
{
	uint64_t every, idx;

	if (!b->o.sof_every_ns || !b->have_sof)
		return;
	every = (b->o.sof_every_ns + b->frame_ns - 1) / b->frame_ns;
	for (idx = b->sof_idx + every; (idx + 1) * b->frame_ns <= until && !b->err; idx += every) {
		polls_until(b, idx * b->frame_ns);
		if (idx <= b->sof_idx || idx * b->frame_ns < b->bus_t)
			continue;
		emit_sof(b, idx);
	}
}

static void advance_to(struct cap_bus *b, uint64_t t)
{
	idle_sofs_until(b, t);
	polls_until(b, t);
}

/* ---- devices ------------------------------------------------------------- */

static struct bus_dev *dev_for(struct cap_bus *b, const struct tr_xfer *x, uint64_t t)
{
	const struct tr_devinfo *in = &x->dev->info;
	struct bus_dev *dv;
	uint64_t start;
	uint8_t setup[8] = {0x00, 0x05, 0, 0, 0, 0, 0, 0};

	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i].session == in->session)
			return &b->devs[i];
	if (b->ndevs == CAP_BUS_DEVS_MAX) {
		memmove(b->devs, b->devs + 1, sizeof(b->devs[0]) * (CAP_BUS_DEVS_MAX - 1));
		b->ndevs--;
	}
	dv = &b->devs[b->ndevs++];
	memset(dv, 0, sizeof(*dv));
	dv->session = in->session;
	dv->addr = in->addr & 0x7f;
	/* a new attachment: the reset is silence on the bus, then the host
	 * controller driver gives the device its address */
	for (size_t i = 0; i < b->ndevs - 1; i++)
		b->devs[i].gone = true;
	start = t > LP_NS_PER_MS ? t - LP_NS_PER_MS : 0;
	if (b->packets && start < b->bus_t + RESET_SILENCE_NS)
		start = b->bus_t + RESET_SILENCE_NS;
	b->have_sof = false; /* the SOFs stopped during the reset */
	setup[2] = dv->addr;
	start = tx_out(b, start, USBLL_PID_SETUP, 0, 0, USBLL_PID_DATA0, setup, 8, USBLL_PID_ACK,
		       false);
	tx_in(b, b->bus_t + b->gap_ns, 0, 0, USBLL_PID_DATA1, NULL, 0, 0, false);
	(void)start;
	return dv;
}

static struct bus_pend *pend_find(struct cap_bus *b, uint64_t id)
{
	for (size_t i = 0; i < CAP_BUS_PENDING_MAX; i++)
		if (b->pend[i].used && b->pend[i].id == id)
			return &b->pend[i];
	return NULL;
}

/* ---- transfers ------------------------------------------------------------ */

static void control_xfer(struct cap_bus *b, struct bus_dev *dv, const struct tr_xfer *x,
			 uint64_t want)
{
	bool in = x->setup[0] & 0x80;
	size_t wlen = (size_t)(x->setup[6] | x->setup[7] << 8);
	size_t n = in ? x->actual : (x->len < wlen ? x->len : wlen);
	uint8_t tg = 1;

	if (x->status == TR_STATUS_ERROR) {
		for (int i = 0; i < USBLL_ERR_LIMIT; i++) {
			tx_out(b, want, USBLL_PID_SETUP, dv->addr, 0, USBLL_PID_DATA0, x->setup, 8,
			       0, true);
			want = b->bus_t + b->gap_ns;
		}
		return;
	}
	tx_out(b, want, USBLL_PID_SETUP, dv->addr, 0, USBLL_PID_DATA0, x->setup, 8, USBLL_PID_ACK,
	       false);
	want = b->bus_t + b->gap_ns;
	if (x->status == TR_STATUS_STALL) {
		if (wlen && in)
			tx_in(b, want, dv->addr, 0, 0, NULL, 0, USBLL_PID_STALL, false);
		else if (wlen)
			tx_out(b, want, USBLL_PID_OUT, dv->addr, 0, USBLL_PID_DATA1, x->buf,
			       n < EP0_MPS ? n : EP0_MPS, USBLL_PID_STALL, false);
		else
			tx_in(b, want, dv->addr, 0, 0, NULL, 0, USBLL_PID_STALL, false);
		return;
	}
	if (x->status != TR_STATUS_COMPLETED)
		return; /* cancelled or timed out after the setup stage */
	if (wlen) {
		size_t off = 0;
		/* a read shorter than asked ends with a short packet, a ZLP after full ones */
		bool zlp = in && n < wlen && n % EP0_MPS == 0;
		while (off < n || zlp) {
			size_t k = n - off < EP0_MPS ? n - off : EP0_MPS;
			unsigned pid = tg ? USBLL_PID_DATA1 : USBLL_PID_DATA0;
			const uint8_t *d = x->buf && k ? x->buf + off : NULL;
			if (in)
				tx_in(b, want, dv->addr, 0, pid, d, k, 0, false);
			else
				tx_out(b, want, USBLL_PID_OUT, dv->addr, 0, pid, d, k,
				       USBLL_PID_ACK, false);
			want = b->bus_t + b->gap_ns;
			tg ^= 1;
			off += k;
			if (!k)
				zlp = false;
		}
	}
	if (in)
		tx_out(b, want, USBLL_PID_OUT, dv->addr, 0, USBLL_PID_DATA1, NULL, 0, USBLL_PID_ACK,
		       false);
	else
		tx_in(b, want, dv->addr, 0, USBLL_PID_DATA1, NULL, 0, 0, false);
	if (x->setup[0] == 0x00 && x->setup[1] == 9)
		memset(dv->tog, 0,
		       sizeof(dv->tog)); /* SET_CONFIGURATION: every toggle back to DATA0 */
}

static void bulk_xfer(struct cap_bus *b, struct bus_dev *dv, const struct tr_xfer *x, uint64_t want)
{
	bool in = x->endpoint & 0x80;
	uint8_t epn = x->endpoint & 0x0f;
	uint8_t *tg = &dv->tog[epn * 2 + (in ? 1 : 0)];
	size_t n = in ? x->actual : x->len, mps = b->bulk_mps, off = 0;
	unsigned pid = *tg ? USBLL_PID_DATA1 : USBLL_PID_DATA0;

	switch (x->status) {
	case TR_STATUS_ERROR:
		/* the link corrupts the first packet every time: the host gives up */
		for (int i = 0; i < USBLL_ERR_LIMIT; i++) {
			size_t k = n < mps ? n : mps;
			if (in)
				tx_in(b, want, dv->addr, epn, pid, x->buf, k, 0, true);
			else
				tx_out(b, want, USBLL_PID_OUT, dv->addr, epn, pid, x->buf, k, 0,
				       true);
			want = b->bus_t + b->gap_ns;
		}
		return;
	case TR_STATUS_STALL:
		if (in)
			tx_in(b, want, dv->addr, epn, 0, NULL, 0, USBLL_PID_STALL, false);
		else
			tx_out(b, want, USBLL_PID_OUT, dv->addr, epn, pid, x->buf,
			       n < mps ? n : mps, USBLL_PID_STALL, false);
		return;
	case TR_STATUS_COMPLETED:
	case TR_STATUS_OVERFLOW:
		break;
	default:
		if (!in || !n)
			return; /* cancelled / timed out with nothing moved */
		break;
	}
	while (off < n) {
		size_t k = n - off < mps ? n - off : mps;
		data_packet(b, &want, dv, epn, in, x->buf + off, k, tg);
		off += k;
	}
	/* IN: a transfer shorter than its buffer ended with a short packet, or a
	 * ZLP after full ones; OUT: a zero-length transfer is a ZLP */
	if ((in && n < x->len && n % mps == 0) || (!in && n == 0))
		data_packet(b, &want, dv, epn, in, NULL, 0, tg);
}

void cap_bus_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err)
{
	struct cap_bus *b = ud;
	struct bus_dev *dv;
	struct bus_pend *p;
	uint64_t want, span, nt;

	(void)submit_err;
	if (!b || !x || !x->dev || b->err)
		return;
	if (ev == TR_EV_SUBMIT) {
		if (x->type != TR_XFER_BULK || !(x->endpoint & 0x80))
			return;
		for (size_t i = 0; i < CAP_BUS_PENDING_MAX; i++) {
			if (b->pend[i].used)
				continue;
			b->pend[i] = (struct bus_pend){.used = true,
						       .id = x->id,
						       .session = x->dev->info.session,
						       .addr = x->dev->info.addr,
						       .ep = x->endpoint & 0x0f,
						       .next_poll = x->submit_ns + b->slot_ns};
			break;
		}
		return;
	}
	if (ev != TR_EV_COMPLETE)
		return;
	p = pend_find(b, x->id);
	if (x->status == TR_STATUS_NO_DEVICE) {
		if (p)
			p->used = false;
		for (size_t i = 0; i < b->ndevs; i++)
			if (b->devs[i].session == x->dev->info.session)
				b->devs[i].gone = true;
		return;
	}
	/* the transfer's packets end `latency_ns` before its completion */
	if (x->type == TR_XFER_CONTROL) {
		want = x->submit_ns;
	} else {
		size_t n = x->endpoint & 0x80 ? x->actual : x->len;
		nt = n / b->bulk_mps + 1;
		span = nt * b->slot_ns + b->o.latency_ns;
		want = x->done_ns > span ? x->done_ns - span : 0;
		if (want < x->submit_ns)
			want = x->submit_ns;
	}
	advance_to(b, want);
	if (p)
		p->used = false;
	dv = dev_for(b, x, want);
	if (dv->gone)
		return;
	if (x->type == TR_XFER_CONTROL)
		control_xfer(b, dv, x, want);
	else
		bulk_xfer(b, dv, x, want);
}

/* ---- life ---------------------------------------------------------------- */

int cap_bus_new(struct cap_writer *w, const struct lp_clock *clock, const struct cap_bus_opts *o,
		struct cap_bus **out, struct lp_errinfo *e)
{
	struct cap_bus *b;
	int lt;

	if (!w || !clock || !out)
		return lp_err_set(e, LP_EINVAL, "cap_bus_new: missing writer or clock");
	b = calloc(1, sizeof(*b));
	if (!b)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	if (o)
		b->o = *o;
	if (b->o.speed != TR_SPEED_FULL)
		b->o.speed = TR_SPEED_HIGH;
	if (!b->o.nak_poll_ns)
		b->o.nak_poll_ns = LP_NS_PER_MS;
	if (b->o.retry_rate < 0 || b->o.retry_rate > 0.5) {
		double rr = b->o.retry_rate;
		free(b);
		return lp_err_set(e, LP_EINVAL, "bus capture: retry rate %g outside [0, 0.5]", rr);
	}
	b->w = w;
	b->clock = clock;
	if (b->o.speed == TR_SPEED_HIGH) {
		b->frame_ns = HS_FRAME_NS;
		b->slot_ns = HS_FRAME_NS / 13;
		b->gap_ns = 200;
		b->bulk_mps = 512;
		lt = USBLL_LINKTYPE_HIGH;
	} else {
		b->frame_ns = FS_FRAME_NS;
		b->slot_ns = FS_FRAME_NS / 19;
		b->gap_ns = 700;
		b->bulk_mps = 64;
		lt = USBLL_LINKTYPE_FULL;
	}
	/* libpcap (1.10) writes classic pcap only for link types it knows: 288
	 * yes, the speed-specific 293-295 not; readers infer the speed of 288
	 * from the SOF spacing */
	if (cap_get_format(w) == CAP_FMT_PCAP)
		lt = USBLL_LINKTYPE;
	lp_rand_seed(&b->rng, b->o.seed);
	b->iface = cap_add_interface(w, (uint16_t)lt, "usb-bus",
				     b->o.speed == TR_SPEED_HIGH
					     ? "USB 2.0 bus, high speed (480 Mb/s), modelled"
					     : "USB 2.0 bus, full speed (12 Mb/s), modelled");
	if (b->iface < 0) {
		int r = b->iface;
		free(b);
		return lp_err_set(e, r, "bus capture: cannot add a link type %d interface (%s)", lt,
				  lp_strerror(r));
	}
	*out = b;
	return 0;
}

int cap_bus_attach(struct tr_ctx *ctx, struct cap_writer *w, const struct cap_bus_opts *o,
		   struct cap_bus **out, struct lp_errinfo *e)
{
	struct cap_bus *b;
	int r;

	if (!ctx)
		return lp_err_set(e, LP_EINVAL, "cap_bus_attach: no context");
	r = cap_bus_new(w, ctx->env.clock, o, &b, e);
	if (r)
		return r;
	r = tr_add_observer(ctx, cap_bus_observe, b);
	if (r) {
		cap_bus_free(b);
		return lp_err_set(e, r, "bus capture: cannot observe the transport (%s)",
				  lp_strerror(r));
	}
	b->ctx = ctx;
	*out = b;
	return 0;
}

void cap_bus_detach(struct cap_bus *b)
{
	struct tr_ctx *ctx;
	size_t i, j;

	if (!b || !b->ctx)
		return;
	ctx = b->ctx;
	for (i = j = 0; i < ctx->nobs; i++)
		if (!(ctx->obs[i].fn == cap_bus_observe && ctx->obs[i].ud == b))
			ctx->obs[j++] = ctx->obs[i];
	for (i = j; i < ctx->nobs; i++)
		memset(&ctx->obs[i], 0, sizeof(ctx->obs[i]));
	ctx->nobs = j;
	b->ctx = NULL;
}

int cap_bus_error(const struct cap_bus *b)
{
	return b ? b->err : 0;
}

uint64_t cap_bus_packets(const struct cap_bus *b)
{
	return b ? b->packets : 0;
}

void cap_bus_free(struct cap_bus *b)
{
	free(b);
}
