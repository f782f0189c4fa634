/* analyze.c - the capture analyzer's entry: the capture reader
 * (src/capture/reader.h) reads the file and emits events; each goes to the
 * ingest file that turns it into facts (analyze_usb.c, analyze_lkd.c,
 * analyze_relay.c); analyze_report.c builds the report from the facts.
 *
 * Reference: see analyze.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/analyze/analyze_facts.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_str.h"

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_BOM 0x1A2B3C4Du
#define PCAPNG_BLOCK_MAX (16u << 20) /* larger blocks end the IDB scan */
#define PCAPNG_IDB_READ_MAX 65536u   /* IDB bodies we read for options */
#define PCAPNG_SCAN_BLOCKS 2000000u
#define IF_DESCRIPTION 3
#define AN_GAPS_LISTED 4

/* --- pcapng interface descriptions ---------------------------------------- */

static void idb_description(struct an *a, const char *s)
{
	struct an_idb *i;
	const char *p;

	if (a->nidb == AN_IDB_MAX)
		return;
	i = &a->idb[a->nidb++];
	i->speed_mbps = 0;
	i->bus = i->addr = -1;
	p = strstr(s, "Mb/s)");
	if (p) {
		const char *q = p;
		while (q > s && q[-1] != '(')
			q--;
		i->speed_mbps = strtod(q, NULL);
	}
	p = strstr(s, "bus ");
	if (p) {
		unsigned b, d;
		if (sscanf(p, "bus %u device %u", &b, &d) == 2 && b < 65536 && d < 256) {
			i->bus = (int)b;
			i->addr = (int)d;
		}
	}
}

void an_scan_pcapng(struct an *a, FILE *f)
{
	long start = ftell(f);
	uint8_t hdr[12], *body = NULL;
	bool be = false;

	if (start < 0)
		return;
	for (unsigned n = 0; n < PCAPNG_SCAN_BLOCKS; n++) {
		uint32_t type, len;
		struct lp_rd rd;
		if (fread(hdr, 1, 8, f) != 8)
			break;
		lp_rd_init(&rd, hdr, 8);
		type = be ? lp_rd_be32(&rd) : lp_rd_le32(&rd);
		if (n == 0 && hdr[0] == 0x0A && hdr[1] == 0x0D && hdr[2] == 0x0D && hdr[3] == 0x0A)
			type = PCAPNG_SHB;
		if (n == 0 && type != PCAPNG_SHB)
			break; /* classic pcap */
		if (type == PCAPNG_SHB) {
			uint32_t bom;
			if (fread(hdr + 8, 1, 4, f) != 4)
				break;
			bom = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 | (uint32_t)hdr[11] << 24;
			if (bom == PCAPNG_BOM)
				be = false;
			else if (__builtin_bswap32(bom) == PCAPNG_BOM)
				be = true;
			else
				break;
			lp_rd_init(&rd, hdr + 4, 4);
			len = be ? lp_rd_be32(&rd) : lp_rd_le32(&rd);
			if (len < 28 || len > PCAPNG_BLOCK_MAX || len % 4 || fseek(f, (long)len - 12, SEEK_CUR))
				break;
			continue;
		}
		lp_rd_init(&rd, hdr + 4, 4);
		len = be ? lp_rd_be32(&rd) : lp_rd_le32(&rd);
		if (len < 12 || len > PCAPNG_BLOCK_MAX || len % 4)
			break;
		if (type == PCAPNG_IDB && len - 12 <= PCAPNG_IDB_READ_MAX) {
			size_t blen = len - 12;
			body = malloc(blen + 4);
			if (!body || fread(body, 1, blen + 4, f) != blen + 4)
				break;
			lp_rd_init(&rd, body, blen);
			lp_rd_skip(&rd, 8); /* linktype, reserved, snaplen */
			while (lp_rd_left(&rd) >= 4) {
				uint16_t code = be ? lp_rd_be16(&rd) : lp_rd_le16(&rd);
				uint16_t olen = be ? lp_rd_be16(&rd) : lp_rd_le16(&rd);
				const uint8_t *v = lp_rd_ptr(&rd, olen);
				if (!v || code == 0)
					break;
				lp_rd_skip(&rd, (4 - olen % 4) % 4);
				if (code == IF_DESCRIPTION) {
					char s[256];
					lp_sanitize(s, sizeof(s), v, olen);
					idb_description(a, s);
				}
			}
			free(body);
			body = NULL;
			continue;
		}
		if (fseek(f, (long)len - 8, SEEK_CUR))
			break;
	}
	free(body);
	clearerr(f);
	fseek(f, start, SEEK_SET);
}

/* --- events -> facts --------------------------------------------------------- */

static bool on_event(void *ud, const struct cap_event *ev)
{
	struct an *a = ud;

	a->cur_pkt = ev->pkt;
	switch (ev->type) {
	case CAP_EV_GAP:
		a->gaps++;
		if (ev->u.gap_ns > a->longest_gap)
			a->longest_gap = ev->u.gap_ns;
		if (a->gaps <= AN_GAPS_LISTED)
			an_anomaly_add(a, "packet %llu: %.1f s of silence before it", (unsigned long long)ev->pkt,
				       (double)ev->u.gap_ns / 1e9);
		break;
	case CAP_EV_ANOMALY:
		an_anomaly_add(a, "%s", ev->u.text);
		break;
	case CAP_EV_USB_NEW:
	case CAP_EV_TRANSFER:
	case CAP_EV_CONTROL:
	case CAP_EV_DISCONNECT:
	case CAP_EV_MUX:
		an_usb_event(a, ev);
		break;
	case CAP_EV_CONN:
	case CAP_EV_DATA:
		an_conn_event(a, ev);
		break;
	case CAP_EV_LOCKDOWN:
	case CAP_EV_TLS_START:
	case CAP_EV_TLS_RECORD:
		an_lkd_event(a, ev);
		break;
	case CAP_EV_UMX:
		an_relay_event(a, ev);
		break;
	case CAP_EV_END:
		a->packets = ev->u.end.packets;
		a->read_error = ev->u.end.read_error;
		a->end_mid_exchange = ev->u.end.mid_exchange;
		if (ev->u.end.pending_request)
			snprintf(a->end_pending, sizeof(a->end_pending), "%s", ev->u.end.pending_request);
		a->t_last = ev->t;
		a->tcp_segments = ev->u.end.tcp_segments;
		a->umx_flows = ev->u.end.umx_flows;
		a->umx_messages = ev->u.end.umx_messages;
		for (size_t i = 0; i < a->nusb; i++) {
			struct an_dev *d = a->usb[i]->user;
			if (d && d->mux_seen && !d->ep_out) {
				d->ep_out = a->usb[i]->ep_out;
				d->ep_in = a->usb[i]->ep_in;
			}
		}
		break;
	}
	return true;
}

int an_analyze_fp(FILE *f, const struct an_opts *opts, struct diag_report *r, struct lp_clock *clock,
		  struct lp_errinfo *e)
{
	struct cap_reader_opts ro = {0};
	struct cap_reader *rd;
	struct an *a = an_new(opts);
	int ret;

	if (opts)
		ro.usbmuxd_port = opts->usbmuxd_port;
	rd = a ? cap_reader_new(&ro, on_event, a) : NULL;
	if (!rd) {
		fclose(f);
		an_free(a);
		lp_err_set(e, LP_ENOMEM, "out of memory");
		return LP_ENOMEM;
	}
	an_scan_pcapng(a, f);
	ret = cap_reader_run(rd, f, e);
	a->linktype = cap_reader_linktype(rd);
	if (cap_linktype_is_usb(a->linktype))
		a->usb_records = a->packets;
	if (ret == 0)
		an_report(a, r, clock);
	cap_reader_free(rd);
	an_free(a);
	return ret;
}
