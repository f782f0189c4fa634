/* reader.c - the capture reader's front: libpcap, the record loop (time base,
 * timestamps going back, gaps), dispatch by link type, events out. See
 * reader.h; the USB layers are in reader_usb.c, the usbmuxd relay in
 * reader_tcp.c, lockdown framing in reader_lkd.c.
 */
#include "src/capture/reader.h"

#include <stdarg.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_str.h"
#include "src/capture/reader_int.h"
#include "usb/cap_usbmon.h"

#define RD_ANOMALY_LEN 200

void rd_emit(struct cap_reader *r, struct cap_event *ev)
{
	if (r->stop)
		return;
	ev->t = r->cur_t;
	ev->pkt = r->cur_pkt;
	if (!r->fn(r->ud, ev))
		r->stop = true;
}

static void anomaly_v(struct cap_reader *r, enum cap_anomaly_kind k, struct cap_usbdev *u,
		      struct cap_conn *c, const char *fmt, va_list ap)
{
	char tmp[RD_ANOMALY_LEN];
	struct cap_event ev = {.type = CAP_EV_ANOMALY, .usb = u, .conn = c, .anomaly_kind = k};

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	ev.u.text = tmp;
	rd_emit(r, &ev);
}

void rd_anomaly(struct cap_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	anomaly_v(r, CAP_AK_CAPTURE, NULL, NULL, fmt, ap);
	va_end(ap);
}

void rd_anomaly_of(struct cap_reader *r, enum cap_anomaly_kind k, struct cap_usbdev *u,
		   struct cap_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	anomaly_v(r, k, u, c, fmt, ap);
	va_end(ap);
}

void rd_conn_event(struct cap_reader *r, struct rd_conn *c, enum cap_conn_state st, uint64_t t,
		   bool ended)
{
	struct cap_event ev = {.type = CAP_EV_CONN, .conn = &c->pub, .usb = c->pub.usb};
	uint64_t keep = r->cur_t;

	c->pub.state = st;
	c->pub.ended = ended;
	if (ended)
		c->pub.t_close = t;
	r->cur_t = t;
	rd_emit(r, &ev);
	r->cur_t = keep;
	if (ended) {
		rd_lkd_free(c->lkd);
		c->lkd = NULL;
		c->used = false;
	}
}

bool cap_linktype_is_usb(int lt)
{
	return lt == CAP_LINKTYPE_USB_LINUX || lt == CAP_LINKTYPE_USB_LINUX_MMAPPED ||
	       lt == CAP_LINKTYPE_USBPCAP || lt == CAP_LINKTYPE_USB_DARWIN;
}

bool cap_linktype_is_ip(int lt)
{
	switch (lt) {
	case 0:
	case 1:
	case 12:
	case 14:
	case 101:
	case 108:
	case 113:
	case 228:
	case 229:
	case 276:
		return true;
	default:
		return false;
	}
}

struct cap_reader *cap_reader_new(const struct cap_reader_opts *opts, cap_event_fn fn, void *ud)
{
	struct cap_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (opts)
		r->o = *opts;
	if (r->o.lockdown_keys) {
		/* reader_lkd.c reads these itself */
		static const char *const own[] = {"Request", "Error", "EnableSessionSSL", NULL};
		size_t n = 0;

		for (const char *const *k = own; *k; k++)
			r->lkd_keys[n++] = *k;
		for (const char *const *k = r->o.lockdown_keys; *k; k++) {
			size_t i = 0;
			while (i < n && strcmp(r->lkd_keys[i], *k) != 0)
				i++;
			if (i < n)
				continue;
			if (n == LKD_TOP_KEYS_MAX) {
				n = 0; /* more than a view takes: whole dictionaries */
				break;
			}
			r->lkd_keys[n++] = *k;
		}
		r->lkd_keys[n] = NULL;
	}
	r->fn = fn;
	r->ud = ud;
	return r;
}

void cap_reader_free(struct cap_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nusb; i++)
		rd_usb_free(r->usb[i]);
	for (size_t i = 0; i < r->nflows; i++)
		rd_flow_free(r->flows[i]);
	usbll_free(r->bus);
	free(r);
}

int cap_reader_linktype(const struct cap_reader *r)
{
	return r->linktype;
}

size_t cap_reader_iface_linktypes(const struct cap_reader *r, int *lt, size_t max)
{
	for (size_t i = 0; i < max && i < r->nifaces && i < CAP_RD_IFACES; i++)
		lt[i] = r->iface_lt[i];
	return r->nifaces;
}

const char *cap_reader_read_error(const struct cap_reader *r)
{
	return r->read_err;
}

void cap_reader_begin(struct cap_reader *r, int linktype)
{
	r->linktype = linktype;
}

void cap_reader_finish(struct cap_reader *r, bool read_error)
{
	struct cap_event ev = {.type = CAP_EV_END};
	const char *req = NULL;
	bool mid;
	char pending[32] = "";

	rd_bus_finish(r); /* what the wire decoder still holds goes through first */
	mid = rd_usb_mid_exchange(r, &req);
	mid = rd_tcp_mid_exchange(r, &req) || mid;
	if (req)
		snprintf(pending, sizeof(pending), "%s", req);
	rd_usb_finish(r);
	rd_tcp_finish(r);
	r->cur_t = r->t_last;
	ev.u.end.read_error = read_error;
	ev.u.end.mid_exchange = mid;
	ev.u.end.pending_request = pending[0] ? pending : NULL;
	ev.u.end.packets = r->packets;
	ev.u.end.tcp_segments = r->tcp_segments;
	ev.u.end.umx_flows = r->umx_flows;
	ev.u.end.umx_messages = r->umx_messages;
	rd_emit(r, &ev);
}

/* One record's time: relative to the first, gaps and steps back noted. */
static void rd_clock(struct cap_reader *r, uint64_t abs, uint64_t *prev_abs)
{
	uint64_t t;

	if (!r->have_first) {
		r->have_first = true;
		r->t_first_abs = abs;
		*prev_abs = abs;
	}
	if (abs < *prev_abs && !r->backwards_noted) {
		rd_anomaly(r, "packet %llu: timestamp goes back %.6f s",
			   (unsigned long long)r->cur_pkt, (double)(*prev_abs - abs) / 1e9);
		r->backwards_noted = true;
	}
	*prev_abs = abs;
	t = abs > r->t_first_abs ? abs - r->t_first_abs : 0;
	if (t > r->t_last) {
		if (r->packets > 1 && t - r->t_last >= CAP_RD_GAP_NS) {
			struct cap_event ev = {.type = CAP_EV_GAP};
			ev.u.gap_ns = t - r->t_last;
			r->cur_t = t;
			rd_emit(r, &ev);
		}
		r->t_last = t;
	}
	r->cur_t = t;
}

int cap_reader_run(struct cap_reader *r, FILE *f, struct lp_errinfo *e)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	struct pcap_pkthdr *h;
	const u_char *data;
	uint64_t prev_abs = 0;
	bool read_error = false;
	pcap_t *p;
	FILE *in;
	char *iobuf;
	int rc;

	/* big reads: libpcap asks stdio for every record (a bus capture is
	 * millions of 3-byte ones). The buffer must be given: glibc ignores the
	 * size of setvbuf(f, NULL, ...) and reads 4 KiB at a time (measured: a
	 * 100 MB lockdown-heavy capture took 48865 read(2)s, half its CPU time).
	 * It is the buffer of the stream libpcap reads (reader_idb.c); that
	 * stream's reads go to read(2) directly when f has no buffer. Not much
	 * larger than the L2 cache: the IDB walker and libpcap read each piece
	 * right after the kernel wrote it (1 MiB was 5 % slower on lockdown-heavy
	 * captures and 10 % on bulk ones than 256 KiB). */
	iobuf = malloc(CAP_RD_IOBUF);
	setvbuf(f, NULL, _IONBF, 0);
	__fsetlocking(f, FSETLOCKING_BYCALLER);
	in = iobuf ? rd_idb_stream(r, f) : NULL;
	if (!in) {
		fclose(f);
		free(iobuf);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	setvbuf(in, iobuf, _IOFBF, CAP_RD_IOBUF);
	/* only this thread reads: libpcap's two fread()s per record need not
	 * take the stream's lock (6 % of analyzing a lockdown-heavy capture) */
	__fsetlocking(in, FSETLOCKING_BYCALLER);
	p = pcap_fopen_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p) {
		fclose(in);
		free(iobuf);
		return lp_err_set(e, LP_EIO, "not a capture libpcap can read: %s", errbuf);
	}
	r->linktype = pcap_datalink(p);
	if (!cap_linktype_is_usb(r->linktype) && !cap_linktype_is_ip(r->linktype) &&
	    !cap_linktype_is_bus(r->linktype)) {
		const char *name = pcap_datalink_val_to_name(r->linktype);
		lp_err_set(
			e, LP_EFORMAT,
			"link type %d (%s) is not supported: analyze reads usbmon (220, 189), "
			"USBPcap (249), macOS (266), USB 2.0 bus analyzers (288, 293-295) and IP captures of a relayed usbmuxd socket",
			r->linktype, name ? name : "unknown");
		pcap_close(p);
		free(iobuf);
		return LP_EFORMAT;
	}
	if (cap_linktype_is_bus(r->linktype) && rd_bus_begin(r)) {
		pcap_close(p);
		free(iobuf);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	while (!r->stop && (rc = pcap_next_ex(p, &h, &data)) != PCAP_ERROR_BREAK) {
		uint64_t abs;

		if (rc == 0)
			continue;
		if (rc < 0) {
			rd_idb_drain(r); /* the IDBs further on still count */
			snprintf(r->read_err, sizeof(r->read_err), "%s", pcap_geterr(p));
			rd_anomaly(r, "after packet %llu: %s; the rest of the file is unreadable",
				   (unsigned long long)r->packets, r->read_err);
			read_error = true;
			break;
		}
		r->packets++;
		r->cur_pkt = r->packets;
		abs = h->ts.tv_sec < 0 ? 0
				       : (uint64_t)h->ts.tv_sec * LP_NS_PER_S +
						 (uint64_t)(uint32_t)h->ts.tv_usec;
		rd_clock(r, abs, &prev_abs);
		if (r->bus)
			rd_bus_record(r, data, h->caplen, h->len);
		else if (cap_linktype_is_usb(r->linktype)) {
			r->cur_wire_len = h->len;
			rd_usb_record(r, data, h->caplen);
		} else
			rd_ip_packet(r, data, h->caplen);
	}
	pcap_close(p); /* fclose()s in, and so f: the buffer can go */
	free(iobuf);
	cap_reader_finish(r, read_error);
	return 0;
}
