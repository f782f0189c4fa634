/* usbll.c - USB 2.0 bus-level packets -> transactions -> transfers; see
 * usbll.h for the format, the rules and the references. */
#include "src/capture/usbll.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"

#define NADDR 128
#define NEPS (NADDR * 32) /* 16 endpoint numbers x 2 directions per address */
#define HS_FRAME_NS 125000ull
#define FS_FRAME_NS 1000000ull
#define ANOM_PER_KIND 4 /* messages per kind; every one is counted */
#define STAT_NONE (-1)
#define STAT_FULL (-2)

enum anom_kind {
	AK_GARBAGE,
	AK_MALFORMED,
	AK_CLIPPED,
	AK_CRC5,
	AK_CRC16,
	AK_UNEXPECTED,
	AK_GAVE_UP,
	AK_SOF_MISSING,
	AK_SOF_LATE,
	AK_SOF_JUMP,
	AK_RESET,
	AK_SETUP,
	AK_BUFS,
	AK_NKINDS
};

/* what the transaction in progress waits for */
enum tx_state {
	TX_IDLE,
	TX_TOKEN,   /* after SETUP/OUT: host data; after IN: device data, NAK or STALL */
	TX_HS,	    /* after host data or PING: the device's handshake */
	TX_HOSTACK, /* after device data: the host's ACK */
	TX_IGNORE,  /* after a corrupted token: the receiver ignores the rest */
};

struct ll_ep {
	uint16_t mps; /* from the configuration descriptor, 0 unknown */
	uint8_t errs; /* failed transactions in a row */
	bool toggle_known;
	uint8_t toggle; /* expected next: 0 DATA0, 1 DATA1 */
	int16_t stat;	/* index in stats.ep, STAT_NONE / STAT_FULL */
	int16_t buf;	/* buffer pool index, -1 none */
	bool active;	/* a transfer has started (data or a ZLP pending) */
	size_t len;
	uint64_t t0, pkt0;
	unsigned retries, naks;
};

struct ll_ctl {
	bool active;
	bool in;
	uint8_t setup[8];
	uint16_t wlen;
	bool data_toggle_known;
	uint8_t data_toggle;
	int16_t buf;
	size_t len;
	uint64_t t0, pkt0;
	unsigned retries, naks;
};

struct usbll {
	struct usbll_cb cb;
	void *ud;
	enum tr_speed speed;
	bool speed_given;
	struct usbll_stats st;
	unsigned anom_n[AK_NKINDS];

	/* transaction in progress */
	enum tx_state tx;
	uint8_t tx_pid, tx_addr, tx_ep;
	uint64_t tx_t, tx_pkt;		 /* end of the last packet of the transaction, its number */
	uint64_t tx_start, tx_start_pkt; /* the token */
	uint8_t stage_pid;		 /* host data held until the device's handshake */
	uint8_t stage[USBLL_DATA_MAX];
	size_t stage_len;
	bool after_split, expect_subpid;

	/* SOF grid */
	bool have_sof;
	uint64_t sof_t;
	uint16_t sof_frame;
	uint64_t frame_checked; /* frame index (since the last SOF) already judged */
	uint64_t last_t;
	bool had_addr_traffic, silence;

	struct ll_ep *ep; /* NEPS */
	struct ll_ctl ctl[NADDR];
	uint8_t *bufs[USBLL_BUFS_MAX];
	bool buf_used[USBLL_BUFS_MAX];
};

/* ---- packets ------------------------------------------------------------- */

static const char *const pid_names[16] = {
	"EXT",	 "OUT", "ACK", "DATA0", "PING",	   "SOF",   "NYET",  "DATA2",
	"SPLIT", "IN",	"NAK", "DATA1", "PRE/ERR", "SETUP", "STALL", "MDATA",
};

const char *usbll_pid_name(unsigned pid)
{
	return pid < 16 ? pid_names[pid] : "?";
}

uint8_t usbll_crc5(uint32_t bits, unsigned nbits)
{
	uint8_t r = 0x1f;

	for (unsigned i = 0; i < nbits; i++) {
		bool fb = ((bits >> i) ^ r) & 1;
		r >>= 1;
		if (fb)
			r ^= 0x14; /* x^5 + x^2 + 1, bit-reversed */
	}
	return (uint8_t)(~r & 0x1f);
}

static uint16_t crc16_tab[8][256];
static bool crc16_ready;

static void crc16_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint16_t c = (uint16_t)i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (uint16_t)(c >> 1 ^ 0xa001) : (uint16_t)(c >> 1);
		crc16_tab[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int s = 1; s < 8; s++)
			crc16_tab[s][i] = (uint16_t)(crc16_tab[s - 1][i] >> 8 ^
						     crc16_tab[0][crc16_tab[s - 1][i] & 0xff]);
	crc16_ready = true;
}

uint16_t usbll_crc16(const uint8_t *d, size_t n)
{
	uint16_t c = 0xffff;

	if (!crc16_ready)
		crc16_init();
	/* eight bytes per step (slicing-by-8): data packets are most of a capture */
	while (n >= 8) {
		uint16_t a = (uint16_t)(c ^ (d[0] | d[1] << 8));
		c = (uint16_t)(crc16_tab[7][a & 0xff] ^ crc16_tab[6][a >> 8] ^ crc16_tab[5][d[2]] ^
			       crc16_tab[4][d[3]] ^ crc16_tab[3][d[4]] ^ crc16_tab[2][d[5]] ^
			       crc16_tab[1][d[6]] ^ crc16_tab[0][d[7]]);
		d += 8;
		n -= 8;
	}
	while (n--)
		c = (uint16_t)(c >> 8 ^ crc16_tab[0][(c ^ *d++) & 0xff]);
	return (uint16_t)~c;
}

int usbll_decode(const uint8_t *buf, size_t len, struct usbll_pkt *p)
{
	struct lp_rd r;
	uint8_t b;

	memset(p, 0, sizeof(*p));
	p->crc_ok = true;
	lp_rd_init(&r, buf, len);
	b = lp_rd_u8(&r);
	if (!lp_rd_ok(&r))
		return LP_ETRUNC;
	p->pid = b & 0x0f;
	if ((b >> 4) != (~b & 0x0f))
		return LP_EBADMSG;
	switch (p->pid) {
	case USBLL_PID_OUT:
	case USBLL_PID_IN:
	case USBLL_PID_SETUP:
	case USBLL_PID_PING:
	case USBLL_PID_EXT:
	case USBLL_PID_SOF: {
		uint16_t v = lp_rd_le16(&r);
		if (!lp_rd_ok(&r))
			return LP_ETRUNC;
		if (p->pid == USBLL_PID_SOF) {
			p->kind = USBLL_K_SOF;
			p->frame = v & 0x7ff;
		} else {
			p->kind = USBLL_K_TOKEN;
			p->addr = v & 0x7f;
			p->ep = (v >> 7) & 0x0f;
		}
		p->crc_ok = usbll_crc5(v & 0x7ff, 11) == v >> 11;
		break;
	}
	case USBLL_PID_SPLIT: {
		uint32_t v = lp_rd_u8(&r);
		v |= (uint32_t)lp_rd_u8(&r) << 8;
		v |= (uint32_t)lp_rd_u8(&r) << 16;
		if (!lp_rd_ok(&r))
			return LP_ETRUNC;
		p->kind = USBLL_K_SPLIT;
		p->hub = v & 0x7f;
		p->complete = v & 0x80;
		p->port = (v >> 8) & 0x7f;
		p->s = v & 0x8000;
		p->eu = v & 0x10000;
		p->et = (v >> 17) & 3;
		p->crc_ok = usbll_crc5(v & 0x7ffff, 19) == v >> 19;
		break;
	}
	case USBLL_PID_DATA0:
	case USBLL_PID_DATA1:
	case USBLL_PID_DATA2:
	case USBLL_PID_MDATA: {
		size_t n = lp_rd_left(&r);
		const uint8_t *d;
		uint16_t crc;
		if (n < 2)
			return LP_ETRUNC;
		if (n - 2 > USBLL_DATA_MAX)
			return LP_EBADMSG;
		p->kind = USBLL_K_DATA;
		d = lp_rd_ptr(&r, n - 2);
		crc = lp_rd_le16(&r);
		p->data = d;
		p->data_len = n - 2;
		p->crc_ok = usbll_crc16(d, n - 2) == crc;
		break;
	}
	case USBLL_PID_ACK:
	case USBLL_PID_NAK:
	case USBLL_PID_STALL:
	case USBLL_PID_NYET:
		p->kind = USBLL_K_HANDSHAKE;
		break;
	default: /* PRE/ERR */
		p->kind = USBLL_K_PRE_ERR;
		break;
	}
	if (lp_rd_left(&r))
		return LP_EBADMSG;
	return 0;
}

bool usbll_linktype_speed(int linktype, enum tr_speed *speed)
{
	enum tr_speed s;

	switch (linktype) {
	case USBLL_LINKTYPE:
		s = TR_SPEED_UNKNOWN;
		break;
	case USBLL_LINKTYPE_LOW:
		s = TR_SPEED_LOW;
		break;
	case USBLL_LINKTYPE_FULL:
		s = TR_SPEED_FULL;
		break;
	case USBLL_LINKTYPE_HIGH:
		s = TR_SPEED_HIGH;
		break;
	default:
		return false;
	}
	if (speed)
		*speed = s;
	return true;
}

/* ---- decoder state ------------------------------------------------------- */

struct usbll *usbll_new(enum tr_speed speed, const struct usbll_cb *cb, void *ud)
{
	struct usbll *u;

	if (!cb || !cb->xfer)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->ep = calloc(NEPS, sizeof(*u->ep));
	if (!u->ep) {
		free(u);
		return NULL;
	}
	for (size_t i = 0; i < NEPS; i++) {
		u->ep[i].stat = STAT_NONE;
		u->ep[i].buf = -1;
	}
	for (size_t i = 0; i < NADDR; i++)
		u->ctl[i].buf = -1;
	u->cb = *cb;
	u->ud = ud;
	u->speed = speed;
	u->speed_given = speed != TR_SPEED_UNKNOWN;
	if (!crc16_ready)
		crc16_init();
	return u;
}

void usbll_free(struct usbll *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < USBLL_BUFS_MAX; i++)
		free(u->bufs[i]);
	free(u->ep);
	free(u);
}

const struct usbll_stats *usbll_stats(const struct usbll *u)
{
	return &u->st;
}

enum tr_speed usbll_speed(const struct usbll *u)
{
	return u->speed;
}

static void anomaly(struct usbll *u, enum anom_kind k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void anomaly(struct usbll *u, enum anom_kind k, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	if (!u->cb.anomaly || u->anom_n[k] >= ANOM_PER_KIND)
		return;
	u->anom_n[k]++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (u->anom_n[k] == ANOM_PER_KIND)
		strncat(msg, " (further ones only counted)", sizeof(msg) - strlen(msg) - 1);
	u->cb.anomaly(u->ud, msg);
}

static void bad_packet(struct usbll *u, uint64_t pkt)
{
	if (!u->st.first_bad_pkt)
		u->st.first_bad_pkt = pkt;
}

static struct ll_ep *ep_of(struct usbll *u, uint8_t addr, uint8_t epnum, bool in)
{
	return &u->ep[(size_t)(addr & 0x7f) * 32 + (epnum & 0x0f) * 2 + (in ? 1 : 0)];
}

static struct usbll_epstat *epstat(struct usbll *u, struct ll_ep *e, uint8_t addr, uint8_t epnum,
				   bool in)
{
	if (e->stat == STAT_NONE) {
		if (u->st.nep == USBLL_EPSTAT_MAX) {
			e->stat = STAT_FULL;
			return NULL;
		}
		e->stat = (int16_t)u->st.nep;
		u->st.ep[u->st.nep].addr = addr;
		u->st.ep[u->st.nep].ep = (uint8_t)(epnum | (in ? 0x80 : 0));
		u->st.nep++;
	}
	return e->stat >= 0 ? &u->st.ep[e->stat] : NULL;
}

static uint16_t default_mps(const struct usbll *u)
{
	return u->speed == TR_SPEED_HIGH ? 512 : 64;
}

/* End of a packet of `len` bytes (plus SYNC and EOP) that started at t; an
 * unknown speed is taken as full speed, the slower, so nothing is called a
 * timeout too early. */
static uint64_t pkt_end(const struct usbll *u, uint64_t t, size_t len)
{
	uint64_t bytes = len + 2;

	switch (u->speed) {
	case TR_SPEED_HIGH:
		return t + bytes * 50 / 3;
	case TR_SPEED_LOW:
		return t + bytes * 16000 / 3;
	default:
		return t + bytes * 2000 / 3;
	}
}

static uint64_t frame_ns(const struct usbll *u)
{
	return u->speed == TR_SPEED_HIGH ? HS_FRAME_NS : FS_FRAME_NS;
}

static int buf_get(struct usbll *u)
{
	for (int i = 0; i < USBLL_BUFS_MAX; i++) {
		if (u->buf_used[i])
			continue;
		if (!u->bufs[i]) {
			u->bufs[i] = malloc(USBLL_CHUNK_MAX);
			if (!u->bufs[i])
				return -1;
		}
		u->buf_used[i] = true;
		return i;
	}
	return -1;
}

static void buf_put(struct usbll *u, int16_t *b)
{
	if (*b >= 0)
		u->buf_used[*b] = false;
	*b = -1;
}

/* ---- transfers ----------------------------------------------------------- */

static void bulk_emit(struct usbll *u, struct ll_ep *e, uint8_t addr, uint8_t ep,
		      enum usbll_status st, bool short_end, bool more, uint64_t t1, uint64_t pkt1)
{
	struct usbll_xfer x;

	memset(&x, 0, sizeof(x));
	x.t0 = e->active ? e->t0 : t1;
	x.pkt0 = e->active ? e->pkt0 : pkt1;
	x.t1 = t1;
	x.pkt1 = pkt1;
	x.addr = addr;
	x.ep = ep;
	x.type = USBLL_XFER_BULK;
	x.status = st;
	x.data = e->buf >= 0 ? u->bufs[e->buf] : NULL;
	x.len = e->len;
	x.short_end = short_end;
	x.more = more;
	x.retries = e->retries;
	x.naks = e->naks;
	u->st.xfers_bulk++;
	u->cb.xfer(u->ud, &x);
	e->len = 0;
	e->active = false;
	e->retries = e->naks = 0;
	if (!more)
		buf_put(u, &e->buf);
}

/* the endpoint descriptors of a configuration descriptor: wMaxPacketSize */
static void learn_config(struct usbll *u, uint8_t addr, const uint8_t *d, size_t n)
{
	struct lp_rd r;

	lp_rd_init(&r, d, n);
	while (lp_rd_left(&r) >= 2) {
		uint8_t bl = lp_rd_u8(&r), type = lp_rd_u8(&r);
		if (bl < 2 || !lp_rd_has(&r, (size_t)bl - 2))
			return;
		if (type == 5 && bl >= 7) {
			uint8_t ea = lp_rd_u8(&r);
			lp_rd_u8(&r); /* bmAttributes */
			uint16_t mps = lp_rd_le16(&r) & 0x7ff;
			struct ll_ep *e = ep_of(u, addr, ea & 0x0f, ea & 0x80);
			if ((ea & 0x0f) && mps)
				e->mps = mps;
			lp_rd_skip(&r, (size_t)bl - 6);
		} else {
			lp_rd_skip(&r, (size_t)bl - 2);
		}
	}
}

static void reset_toggles(struct usbll *u, uint8_t addr)
{
	for (unsigned i = 2; i < 32; i++)
		u->ep[(size_t)addr * 32 + i].toggle_known = false;
}

static void forget_address(struct usbll *u, uint8_t addr)
{
	struct ll_ctl *c = &u->ctl[addr];

	for (unsigned i = 0; i < 32; i++) {
		struct ll_ep *e = &u->ep[(size_t)addr * 32 + i];
		buf_put(u, &e->buf);
		e->active = false;
		e->len = 0;
		e->errs = 0;
		e->mps = 0;
		e->toggle_known = false;
	}
	buf_put(u, &c->buf);
	c->active = false;
}

static void ctl_emit(struct usbll *u, uint8_t addr, enum usbll_status st, uint64_t t1,
		     uint64_t pkt1)
{
	struct ll_ctl *c = &u->ctl[addr];
	const uint8_t *s = c->setup;
	struct usbll_xfer x;

	memset(&x, 0, sizeof(x));
	x.t0 = c->t0;
	x.pkt0 = c->pkt0;
	x.t1 = t1;
	x.pkt1 = pkt1;
	x.addr = addr;
	x.ep = c->in ? 0x80 : 0x00;
	x.type = USBLL_XFER_CONTROL;
	x.status = st;
	x.have_setup = true;
	memcpy(x.setup, s, 8);
	x.data = c->buf >= 0 ? u->bufs[c->buf] : NULL;
	x.len = c->buf >= 0 ? c->len : 0;
	x.retries = c->retries;
	x.naks = c->naks;
	c->active = false;
	u->st.xfers_ctrl++;
	if (st == USBLL_ST_OK) {
		uint16_t wvalue = (uint16_t)(s[2] | s[3] << 8),
			 windex = (uint16_t)(s[4] | s[5] << 8);
		if (s[0] == 0x80 && s[1] == 6 && s[3] == 2 && x.len)
			learn_config(u, addr, x.data, x.len);
		else if (s[0] == 0x00 && s[1] == 9)
			reset_toggles(u, addr);
		else if (s[0] == 0x01 && s[1] == 11)
			reset_toggles(u, addr);
		else if (s[0] == 0x02 && s[1] == 1 && wvalue == 0)
			ep_of(u, addr, windex & 0x0f, windex & 0x80)->toggle_known = false;
	}
	u->cb.xfer(u->ud, &x);
	buf_put(u, &c->buf);
	if (st == USBLL_ST_OK && s[0] == 0x00 && s[1] == 5) {
		uint8_t to = s[2] & 0x7f;
		if (to != addr)
			forget_address(u, to); /* an address reused: whatever was there is gone */
		u->st.addresses++;
		if (u->cb.address)
			u->cb.address(u->ud, addr, to, t1, pkt1);
	}
}

static void ctl_setup(struct usbll *u, uint8_t addr, const uint8_t *setup, uint64_t t0,
		      uint64_t pkt0, uint64_t t, uint64_t pkt)
{
	struct ll_ctl *c = &u->ctl[addr];

	if (c->active)
		ctl_emit(u, addr, USBLL_ST_ABORTED, t, pkt);
	memcpy(c->setup, setup, 8);
	c->active = true;
	c->in = setup[0] & 0x80;
	c->wlen = (uint16_t)(setup[6] | setup[7] << 8);
	c->data_toggle_known = true;
	c->data_toggle = 1;
	c->len = 0;
	c->t0 = t0;
	c->pkt0 = pkt0;
	c->retries = c->naks = 0;
	if (c->wlen && c->buf < 0) {
		c->buf = (int16_t)buf_get(u);
		if (c->buf < 0)
			anomaly(u, AK_BUFS,
				"packet %llu: too many transfers in progress; control data not kept",
				(unsigned long long)pkt);
	}
}

/* Accepted data (CRC good; for host data the device ACKed it). */
static void ep_data(struct usbll *u, uint8_t addr, uint8_t epnum, bool in, uint8_t pid,
		    const uint8_t *d, size_t n, uint64_t t, uint64_t pkt)
{
	uint8_t tog = pid == USBLL_PID_DATA1 ? 1 : 0;
	bool toggled = pid == USBLL_PID_DATA0 || pid == USBLL_PID_DATA1;

	if (epnum == 0) {
		struct ll_ctl *c = &u->ctl[addr];
		if (!c->active)
			return; /* the capture began inside this control transfer */
		if (in == c->in && c->wlen) {
			/* data stage: it ends with the status transaction the other way,
			 * so no packet size needs to be known here */
			if (toggled && c->data_toggle_known && tog != c->data_toggle) {
				u->st.duplicates++;
				return;
			}
			c->data_toggle_known = toggled;
			c->data_toggle = (uint8_t)(tog ^ 1);
			if (c->buf >= 0) {
				size_t room = c->wlen > c->len ? c->wlen - c->len : 0;
				size_t k = n < room ? n : room;
				memcpy(u->bufs[c->buf] + c->len, d, k);
				c->len += k;
			}
			return;
		}
		if (in != c->in || !c->wlen) {
			if (n == 0) {
				ctl_emit(u, addr, USBLL_ST_OK, t, pkt);
				return;
			}
		}
		anomaly(u, AK_SETUP,
			"packet %llu: control data on %u.0 that fits no stage (%zu bytes)",
			(unsigned long long)pkt, addr, n);
		return;
	}
	struct ll_ep *e = ep_of(u, addr, epnum, in);
	uint16_t mps = e->mps ? e->mps : default_mps(u);
	uint8_t epaddr = (uint8_t)(epnum | (in ? 0x80 : 0));

	if (toggled) {
		if (e->toggle_known && tog != e->toggle) {
			u->st.duplicates++;
			return;
		}
		e->toggle_known = true;
		e->toggle = (uint8_t)(tog ^ 1);
	}
	if (!e->active) {
		e->active = true;
		e->t0 = t;
		e->pkt0 = pkt;
	}
	if (n) {
		if (e->buf < 0)
			e->buf = (int16_t)buf_get(u);
		if (e->buf < 0) {
			/* no buffer left: hand the packet over as a piece of its own */
			anomaly(u, AK_BUFS,
				"packet %llu: too many transfers in progress; data handed over per packet",
				(unsigned long long)pkt);
			struct usbll_xfer x;
			memset(&x, 0, sizeof(x));
			x.t0 = x.t1 = t;
			x.pkt0 = x.pkt1 = pkt;
			x.addr = addr;
			x.ep = epaddr;
			x.type = USBLL_XFER_BULK;
			x.data = d;
			x.len = n;
			x.short_end = n < mps;
			x.more = !x.short_end;
			u->st.xfers_bulk++;
			u->cb.xfer(u->ud, &x);
			e->active = false;
			return;
		}
		memcpy(u->bufs[e->buf] + e->len, d, n);
		e->len += n;
	}
	if (n < mps)
		bulk_emit(u, e, addr, epaddr, USBLL_ST_OK, true, false, t, pkt);
	else if (e->len + USBLL_DATA_MAX > USBLL_CHUNK_MAX)
		bulk_emit(u, e, addr, epaddr, USBLL_ST_OK, false, true, t, pkt);
}

/* A transaction on (addr, ep, in) failed (timeout, CRC): the host retries,
 * and gives up after USBLL_ERR_LIMIT in a row. */
static void tx_failed(struct usbll *u, uint8_t addr, uint8_t epnum, bool in, uint64_t t,
		      uint64_t pkt)
{
	struct ll_ep *e = ep_of(u, addr, epnum, epnum ? in : false);
	struct usbll_epstat *es = epstat(u, ep_of(u, addr, epnum, in), addr, epnum, in);

	if (es)
		es->failures++;
	if (++e->errs < USBLL_ERR_LIMIT)
		return;
	e->errs = 0;
	u->st.gave_up++;
	anomaly(u, AK_GAVE_UP,
		"packet %llu: %u transactions in a row failed on %u.%u %s: the host gives up "
		"(a transfer error)",
		(unsigned long long)pkt, USBLL_ERR_LIMIT, addr, epnum, in ? "IN" : "OUT");
	if (epnum == 0) {
		if (u->ctl[addr].active)
			ctl_emit(u, addr, USBLL_ST_ERROR, t, pkt);
		return;
	}
	bulk_emit(u, e, addr, (uint8_t)(epnum | (in ? 0x80 : 0)), USBLL_ST_ERROR, false, false, t,
		  pkt);
}

static void tx_ok(struct usbll *u, uint8_t addr, uint8_t epnum, bool in)
{
	ep_of(u, addr, epnum, epnum ? in : false)->errs = 0;
}

static void tx_stall(struct usbll *u, uint8_t addr, uint8_t epnum, bool in, uint64_t t,
		     uint64_t pkt)
{
	u->st.stalls++;
	if (epnum == 0) {
		if (u->ctl[addr].active)
			ctl_emit(u, addr, USBLL_ST_STALL, t, pkt);
		return;
	}
	struct ll_ep *e = ep_of(u, addr, epnum, in);
	bulk_emit(u, e, addr, (uint8_t)(epnum | (in ? 0x80 : 0)), USBLL_ST_STALL, false, false, t,
		  pkt);
	e->toggle_known = false; /* CLEAR_FEATURE(ENDPOINT_HALT) will reset it to DATA0 */
}

static void count_nak(struct usbll *u, uint8_t addr, uint8_t epnum, bool in)
{
	struct ll_ep *e = ep_of(u, addr, epnum, in);
	struct usbll_epstat *es = epstat(u, e, addr, epnum, in);

	u->st.naks++;
	if (es)
		es->naks++;
	if (epnum == 0)
		u->ctl[addr].naks++;
	else
		e->naks++;
}

/* The transaction in progress got no (usable) response. */
static void tx_timeout(struct usbll *u)
{
	bool in = u->tx_pid == USBLL_PID_IN;

	if (u->tx == TX_IDLE || u->tx == TX_IGNORE) {
		u->tx = TX_IDLE;
		return;
	}
	u->st.timeouts++;
	tx_failed(u, u->tx_addr, u->tx_ep, in, u->tx_t, u->tx_pkt);
	u->tx = TX_IDLE;
}

/* ---- SOF ------------------------------------------------------------------ */

static void infer_speed(struct usbll *u, uint64_t dt)
{
	if (u->speed_given || u->speed != TR_SPEED_UNKNOWN)
		return;
	if (dt >= HS_FRAME_NS / 2 && dt < FS_FRAME_NS * 3 / 4)
		u->speed = TR_SPEED_HIGH;
	else if (dt >= FS_FRAME_NS * 3 / 4 && dt <= FS_FRAME_NS * 5 / 4)
		u->speed = TR_SPEED_FULL;
}

static void on_sof(struct usbll *u, uint64_t t, uint64_t pkt, uint16_t frame)
{
	u->st.sofs++;
	if (u->have_sof && t > u->sof_t && t - u->sof_t < USBLL_RESET_GAP_NS) {
		uint64_t dt = t - u->sof_t, per, n, tol, off;
		infer_speed(u, dt);
		per = frame_ns(u);
		n = (dt + per / 2) / per;
		tol = per / 50;
		off = dt > n * per ? dt - n * per : n * per - dt;
		if (n == 0 || off > tol) {
			u->st.sof_late++;
			anomaly(u, AK_SOF_LATE, "packet %llu: SOF %.1f us off the %s grid",
				(unsigned long long)pkt, (double)off / 1e3,
				u->speed == TR_SPEED_HIGH ? "125 us" : "1 ms");
		} else {
			/* high speed: the frame number changes every 8 microframes */
			uint64_t df = (uint64_t)((frame - u->sof_frame) & 0x7ff);
			bool okf = u->speed == TR_SPEED_HIGH ? (df * 8 + 8 >= n && df * 8 <= n + 8)
							     : df == (n & 0x7ff);
			if (!okf) {
				u->st.sof_jumps++;
				anomaly(u, AK_SOF_JUMP,
					"packet %llu: SOF frame number %u after %u, %llu frames later",
					(unsigned long long)pkt, frame, u->sof_frame,
					(unsigned long long)n);
			}
		}
	}
	u->have_sof = true;
	u->sof_t = t;
	u->sof_frame = frame;
	u->frame_checked = 0;
}

/* Traffic at t: if SOFs are being recorded, its (micro)frame must have had one. */
static void check_frame(struct usbll *u, uint64_t t, uint64_t pkt)
{
	uint64_t per, k;

	if (!u->have_sof || u->st.sofs < 2 || t <= u->sof_t || u->speed == TR_SPEED_UNKNOWN)
		return;
	if (t - u->sof_t >= USBLL_RESET_GAP_NS)
		return;
	per = frame_ns(u);
	k = (t - u->sof_t + per / 50) / per; /* a SOF a little late still counts for its frame */
	if (k == 0 || k == u->frame_checked || t - u->sof_t < per + per / 50)
		return;
	u->frame_checked = k;
	u->st.sof_missing++;
	anomaly(u, AK_SOF_MISSING,
		"packet %llu: traffic %.1f us after the last SOF: the SOF of its %s is missing",
		(unsigned long long)pkt, (double)(t - u->sof_t) / 1e3,
		u->speed == TR_SPEED_HIGH ? "microframe" : "frame");
}

/* ---- records ------------------------------------------------------------- */

static void on_token(struct usbll *u, const struct usbll_pkt *p, uint64_t t, uint64_t pkt)
{
	bool in = p->pid == USBLL_PID_IN;
	struct ll_ep *e;
	struct usbll_epstat *es;

	tx_timeout(u);
	if (p->pid == USBLL_PID_EXT) {
		u->st.ext++;
		u->expect_subpid = p->crc_ok;
		return;
	}
	if (!p->crc_ok) {
		/* nobody answers a corrupted token; what the host sends after it
		 * (its data) belongs to it and is ignored too */
		u->tx = TX_IGNORE;
		u->tx_t = pkt_end(u, t, 3);
		return;
	}
	if (p->pid == USBLL_PID_PING)
		u->st.pings++;
	if (p->addr == 0 && u->silence) {
		/* bus idle (no SOF) long enough for a reset, then the default address */
		u->silence = false;
		u->st.resets++;
		for (unsigned a = 1; a < NADDR; a++) {
			struct ll_ctl *c = &u->ctl[a];
			if (c->active)
				ctl_emit(u, (uint8_t)a, USBLL_ST_ABORTED, t, pkt);
			for (unsigned i = 2; i < 32; i++) {
				struct ll_ep *x = &u->ep[(size_t)a * 32 + i];
				if (x->active)
					bulk_emit(u, x, (uint8_t)a,
						  (uint8_t)((i >> 1) | (i & 1 ? 0x80 : 0)),
						  USBLL_ST_ABORTED, false, false, t, pkt);
			}
		}
		anomaly(u, AK_RESET, "packet %llu: bus reset (the bus was idle, then address 0)",
			(unsigned long long)pkt);
		if (u->cb.reset)
			u->cb.reset(u->ud, t, pkt);
	} else if (p->addr) {
		u->had_addr_traffic = true;
		u->silence = false;
	}
	u->st.transactions++;
	e = ep_of(u, p->addr, p->ep, in);
	es = epstat(u, e, p->addr, p->ep, in);
	if (es)
		es->tokens++;
	if (ep_of(u, p->addr, p->ep, p->ep ? in : false)->errs) {
		u->st.retries++;
		if (p->ep == 0)
			u->ctl[p->addr].retries++;
		else
			e->retries++;
	}
	u->tx = p->pid == USBLL_PID_PING ? TX_HS : TX_TOKEN;
	u->tx_pid = p->pid;
	u->tx_addr = p->addr;
	u->tx_ep = p->ep;
	u->tx_t = pkt_end(u, t, 3);
	u->tx_pkt = pkt;
	u->tx_start = t;
	u->tx_start_pkt = pkt;
}

static void on_data(struct usbll *u, const struct usbll_pkt *p, uint64_t t, uint64_t pkt)
{
	bool host = u->tx_pid == USBLL_PID_SETUP || u->tx_pid == USBLL_PID_OUT;

	if (u->tx == TX_IGNORE) {
		u->tx_t = pkt_end(u, t, p->data_len + 3);
		return;
	}
	if (u->tx != TX_TOKEN || u->tx_pid == USBLL_PID_PING) {
		u->st.unexpected++;
		anomaly(u, AK_UNEXPECTED, "packet %llu: %s outside a transaction",
			(unsigned long long)pkt, usbll_pid_name(p->pid));
		return;
	}
	if (!p->crc_ok) {
		/* the receiver ignores it: no handshake, the host retries */
		u->tx = TX_IDLE;
		u->st.timeouts++;
		tx_failed(u, u->tx_addr, u->tx_ep, !host, t, pkt);
		return;
	}
	u->tx_t = pkt_end(u, t, p->data_len + 3);
	u->tx_pkt = pkt;
	if (host) {
		if (u->tx_pid == USBLL_PID_SETUP && (p->pid != USBLL_PID_DATA0 || p->data_len != 8))
			anomaly(u, AK_SETUP,
				"packet %llu: SETUP data is %s with %zu bytes (DATA0, 8 bytes expected)",
				(unsigned long long)pkt, usbll_pid_name(p->pid), p->data_len);
		memcpy(u->stage, p->data, p->data_len);
		u->stage_len = p->data_len;
		u->stage_pid = p->pid;
		u->tx = TX_HS;
		return;
	}
	{
		struct ll_ep *e = ep_of(u, u->tx_addr, u->tx_ep, true);
		struct usbll_epstat *es = epstat(u, e, u->tx_addr, u->tx_ep, true);
		if (es) {
			es->data++;
			es->bytes += p->data_len;
		}
	}
	if (u->speed == TR_SPEED_UNKNOWN && p->data_len > 64 && u->tx_ep)
		u->speed = TR_SPEED_HIGH;
	tx_ok(u, u->tx_addr, u->tx_ep, true);
	u->tx = TX_HOSTACK;
	ep_data(u, u->tx_addr, u->tx_ep, true, p->pid, p->data, p->data_len, t, pkt);
}

static void on_handshake(struct usbll *u, const struct usbll_pkt *p, uint64_t t, uint64_t pkt)
{
	uint8_t addr = u->tx_addr, epn = u->tx_ep;
	bool in = u->tx_pid == USBLL_PID_IN;
	struct usbll_epstat *es;

	switch (p->pid) {
	case USBLL_PID_ACK:
		u->st.acks++;
		break;
	case USBLL_PID_NYET:
		u->st.nyets++;
		break;
	default:
		break;
	}
	if (u->tx == TX_IGNORE)
		return;
	es = u->tx != TX_IDLE ? epstat(u, ep_of(u, addr, epn, in), addr, epn, in) : NULL;
	if (u->tx == TX_HOSTACK && p->pid == USBLL_PID_ACK) {
		u->tx = TX_IDLE;
		return;
	}
	if (u->tx == TX_TOKEN && in &&
	    (p->pid == USBLL_PID_NAK || p->pid == USBLL_PID_STALL ||
	     (p->pid == USBLL_PID_NYET && u->after_split))) {
		u->tx = TX_IDLE;
		tx_ok(u, addr, epn, true);
		if (p->pid == USBLL_PID_NAK)
			count_nak(u, addr, epn, true);
		else if (p->pid == USBLL_PID_STALL) {
			if (es)
				es->stalls++;
			tx_stall(u, addr, epn, true, t, pkt);
		}
		return;
	}
	if (u->tx == TX_TOKEN && u->tx_pid == USBLL_PID_OUT && u->after_split &&
	    (p->pid == USBLL_PID_NYET || p->pid == USBLL_PID_ACK)) {
		u->tx = TX_IDLE; /* complete-split of an OUT: the data went with the start-split */
		tx_ok(u, addr, epn, false);
		return;
	}
	if (u->tx != TX_HS) {
		u->st.unexpected++;
		anomaly(u, AK_UNEXPECTED, "packet %llu: %s outside a transaction",
			(unsigned long long)pkt, usbll_pid_name(p->pid));
		u->tx = TX_IDLE;
		return;
	}
	u->tx = TX_IDLE;
	tx_ok(u, addr, epn, false);
	if (u->tx_pid == USBLL_PID_PING) {
		if (p->pid == USBLL_PID_NAK)
			count_nak(u, addr, epn, false);
		else if (p->pid == USBLL_PID_STALL)
			tx_stall(u, addr, epn, false, t, pkt);
		return;
	}
	switch (p->pid) {
	case USBLL_PID_ACK:
	case USBLL_PID_NYET:
		if (es) {
			es->data++;
			es->bytes += u->stage_len;
		}
		if (p->pid == USBLL_PID_NYET && es)
			es->nyets++;
		if (u->tx_pid == USBLL_PID_SETUP) {
			if (u->stage_len == 8)
				ctl_setup(u, addr, u->stage, u->tx_start, u->tx_start_pkt, t, pkt);
			/* the token's time starts the transfer */
		} else {
			ep_data(u, addr, epn, false, u->stage_pid, u->stage, u->stage_len, t, pkt);
		}
		break;
	case USBLL_PID_NAK:
		count_nak(u, addr, epn, false);
		break;
	case USBLL_PID_STALL:
		if (es)
			es->stalls++;
		tx_stall(u, addr, epn, false, t, pkt);
		break;
	default:
		break;
	}
}

void usbll_feed(struct usbll *u, uint64_t t, uint64_t pkt, const uint8_t *buf, size_t caplen,
		size_t wirelen)
{
	struct usbll_pkt p;
	int r;

	u->st.records++;
	u->st.bytes += caplen;
	if (u->st.records > 1 && t >= u->last_t + USBLL_RESET_GAP_NS && u->had_addr_traffic)
		u->silence = true;
	if (u->tx != TX_IDLE && t > u->tx_t + USBLL_RESP_TIMEOUT_NS)
		tx_timeout(u);
	u->last_t = t;
	if (caplen < wirelen) {
		u->st.clipped++;
		bad_packet(u, pkt);
		anomaly(u, AK_CLIPPED, "packet %llu: %zu of %zu bytes captured; not decoded",
			(unsigned long long)pkt, caplen, wirelen);
		tx_timeout(u);
		return;
	}
	if (u->expect_subpid) {
		/* the second packet of an EXT token (LPM): a SubPID and 11 bits + CRC5 */
		u->expect_subpid = false;
		if (caplen == 3) {
			uint16_t v = (uint16_t)(buf[1] | buf[2] << 8);
			if (usbll_crc5(v & 0x7ff, 11) != v >> 11) {
				u->st.crc5_bad++;
				bad_packet(u, pkt);
			}
			return;
		}
	}
	r = usbll_decode(buf, caplen, &p);
	if (r) {
		if (r == LP_EBADMSG && caplen && (buf[0] >> 4) != (~buf[0] & 0x0f)) {
			u->st.garbage++;
			anomaly(u, AK_GARBAGE,
				"packet %llu: %zu bytes that are no packet (PID byte 0x%02x fails its check)",
				(unsigned long long)pkt, caplen, buf[0]);
		} else {
			u->st.malformed++;
			anomaly(u, AK_MALFORMED,
				"packet %llu: %s record of %zu bytes does not fit its PID",
				(unsigned long long)pkt,
				caplen ? usbll_pid_name(buf[0] & 0x0f) : "an empty", caplen);
		}
		bad_packet(u, pkt);
		/* whatever it was, the transaction it belonged to failed */
		if (u->tx == TX_TOKEN || u->tx == TX_HS || u->tx == TX_HOSTACK)
			tx_timeout(u);
		return;
	}
	u->st.by_pid[p.pid]++;
	if (!p.crc_ok) {
		if (p.kind == USBLL_K_DATA) {
			u->st.crc16_bad++;
			anomaly(u, AK_CRC16, "packet %llu: %s of %zu bytes failed its CRC16",
				(unsigned long long)pkt, usbll_pid_name(p.pid), p.data_len);
		} else {
			u->st.crc5_bad++;
			anomaly(u, AK_CRC5, "packet %llu: %s failed its CRC5",
				(unsigned long long)pkt, usbll_pid_name(p.pid));
		}
		bad_packet(u, pkt);
	}
	if (p.kind != USBLL_K_SOF)
		check_frame(u, t, pkt);
	switch (p.kind) {
	case USBLL_K_SOF:
		tx_timeout(u);
		u->after_split = false;
		if (p.crc_ok)
			on_sof(u, t, pkt, p.frame);
		else
			u->st.sofs++;
		break;
	case USBLL_K_SPLIT:
		tx_timeout(u);
		u->st.splits++;
		u->after_split = p.crc_ok;
		break;
	case USBLL_K_TOKEN:
		on_token(u, &p, t, pkt);
		if (p.pid != USBLL_PID_EXT && !(p.crc_ok && u->after_split))
			u->after_split = false;
		break;
	case USBLL_K_DATA:
		if (u->speed == TR_SPEED_UNKNOWN && p.data_len > 64 && u->tx_ep)
			u->speed = TR_SPEED_HIGH;
		on_data(u, &p, t, pkt);
		break;
	case USBLL_K_HANDSHAKE:
		on_handshake(u, &p, t, pkt);
		break;
	case USBLL_K_PRE_ERR:
		u->st.pre_err++;
		if (u->after_split && u->tx == TX_TOKEN) {
			/* ERR: the full/low-speed transaction behind the hub failed */
			tx_timeout(u);
		}
		break;
	}
}

void usbll_finish(struct usbll *u)
{
	if (u->tx == TX_TOKEN || u->tx == TX_HS)
		tx_timeout(u);
	u->tx = TX_IDLE;
	for (unsigned a = 0; a < NADDR; a++) {
		if (u->ctl[a].active)
			ctl_emit(u, (uint8_t)a, USBLL_ST_ABORTED, u->last_t, u->st.records);
		for (unsigned i = 2; i < 32; i++) {
			struct ll_ep *e = &u->ep[(size_t)a * 32 + i];
			if (e->active && e->len)
				bulk_emit(u, e, (uint8_t)a,
					  (uint8_t)((i >> 1) | (i & 1 ? 0x80 : 0)), USBLL_ST_OK,
					  false, false, u->last_t, u->st.records);
		}
	}
}
