/* gen_capture.c - write a large usbmon capture for the analyze benchmark
 * (tools/bench/bench_analyze.sh): the bench device model (bench_model.h)
 * driven by the host stack with the capture tap on (pcapng, redaction on),
 * link model on at high speed on a virtual clock so timestamps look like a
 * real 480 Mb/s link (and no wall time is spent waiting).
 *
 * Content: descriptor reads, SET_CONFIGURATION, usbmux VERSION/SETUP, then
 * rounds of 16 MiB host->device (discard service) and device->host (source
 * service) on one and then two connections, until the file holds at least
 * MB * 10^6 bytes. Written to FILE.tmp and renamed, so an interrupted run
 * never leaves a short file behind under the final name.
 *
 * --repeat SEED: the lockdown-heavy file instead - the records of SEED (a
 * usbmon capture of one `linkprobe trust --pair` session on the simulated
 * iPhone: descriptors, usbmux, lockdown plaintext, Pair, TLS) written again
 * and again, as if trust were run over and over against a phone that stays
 * plugged in: each copy 1 s after the one before, URB ids made unique, the
 * device's address unchanged, until the file holds MB * 10^6 bytes.
 *
 * Both write the number of packets to FILE.packets (for packets/s).
 *
 * usage: gen_capture [--repeat SEED] FILE [MB]   (MB default 210). Exit 0 / 1. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tools/bench/bench_model.h"
#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"
#include "usb/cap_usbmon.h"

#define GEN_ROUND (16 * BM_MiB)
#define GEN_MAX_ROUNDS 200 /* bound: 3.2 GiB of payload */

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static void write_count(const char *file, uint64_t packets)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof(p), "%s.packets", file);
	f = fopen(p, "w");
	if (f) {
		fprintf(f, "%llu\n", (unsigned long long)packets);
		fclose(f);
	}
}

struct seed_rec {
	uint64_t ns;
	uint32_t caplen, len;
	uint64_t id;
	uint8_t *data;
};

/* --repeat: SEED's records again and again into tmp. */
static int repeat_seed(const char *seed, const char *tmp, uint64_t target, uint64_t *packets)
{
	char err[PCAP_ERRBUF_SIZE];
	struct seed_rec *recs = NULL;
	size_t n = 0, cap = 0;
	struct pcap_pkthdr *h;
	const u_char *d;
	struct cap_writer *w;
	struct lp_errinfo e = {0};
	pcap_t *pc;
	uint64_t t0, span, shift = 0;
	int iface, rc = 0;

	pc = pcap_open_offline_with_tstamp_precision(seed, PCAP_TSTAMP_PRECISION_NANO, err);
	if (!pc) {
		fprintf(stderr, "gen_capture: %s: %s\n", seed, err);
		return LP_EIO;
	}
	if (pcap_datalink(pc) != CAP_LINKTYPE_USB_LINUX_MMAPPED) {
		fprintf(stderr, "gen_capture: %s: not a usbmon capture\n", seed);
		pcap_close(pc);
		return LP_EFORMAT;
	}
	while (pcap_next_ex(pc, &h, &d) == 1) {
		if (n == cap) {
			struct seed_rec *nr = realloc(recs,
						      (cap = cap ? 2 * cap : 256) * sizeof(*nr));

			if (!nr) {
				rc = LP_ENOMEM;
				break;
			}
			recs = nr;
		}
		recs[n].ns = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec;
		recs[n].caplen = h->caplen;
		recs[n].len = h->len;
		recs[n].data = malloc(h->caplen ? h->caplen : 1);
		if (!recs[n].data) {
			rc = LP_ENOMEM;
			break;
		}
		memcpy(recs[n].data, d, h->caplen);
		recs[n].id = 0;
		if (h->caplen >= 8)
			memcpy(&recs[n].id, d, 8);
		n++;
	}
	pcap_close(pc);
	if (!rc && n < 2)
		rc = LP_EFORMAT;
	w = rc ? NULL : cap_open(tmp, CAP_FMT_PCAPNG, NULL, &e);
	if (!rc && !w)
		rc = e.code ? e.code : LP_EIO;
	iface = rc ? -1 : cap_add_usb_interface(w, "usbmon1", "bench: trust --pair, repeated");
	if (!rc && iface < 0)
		rc = iface;
	t0 = n ? recs[0].ns : 0;
	span = n ? recs[n - 1].ns - t0 + 1000000000ull : 0;
	for (uint64_t k = 0; !rc && file_size(tmp) < target && k < 1000000; k++) {
		for (size_t i = 0; !rc && i < n; i++) {
			uint8_t *r = recs[i].data;

			/* URB id (host order, the first 8 bytes): unique per copy */
			if (recs[i].caplen >= 8) {
				uint64_t id = recs[i].id ^ (k << 40);

				memcpy(r, &id, 8);
			}
			rc = cap_write_packet(w, iface, recs[i].ns + shift, r, recs[i].caplen,
					      recs[i].len, NULL);
		}
		shift += span;
		if (!rc)
			rc = cap_flush(w);
	}
	*packets = w ? cap_packets(w) : 0;
	if (w) {
		int crc = cap_close(w);

		rc = rc ? rc : crc;
	}
	for (size_t i = 0; i < n; i++)
		free(recs[i].data);
	free(recs);
	return rc;
}

int main(int argc, char **argv)
{
	struct bm_fx f;
	struct cap_writer *w = NULL;
	struct cap_tap *tap = NULL;
	struct lp_errinfo e = {0};
	struct bm_result r;
	char tmp[4096];
	const char *seed = NULL;
	uint64_t target, packets = 0;
	int rc, crc;

	if (argc >= 3 && strcmp(argv[1], "--repeat") == 0) {
		seed = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gen_capture [--repeat SEED] FILE [MB]\n");
		return 2;
	}
	target = (argc == 3 && atoi(argv[2]) > 0 ? (uint64_t)atoi(argv[2]) : 210) * 1000000ull;
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	if (seed) {
		rc = repeat_seed(seed, tmp, target, &packets);
		if (!rc && rename(tmp, argv[1]) != 0)
			rc = LP_EIO;
		if (rc) {
			fprintf(stderr, "gen_capture: %s: %s\n", argv[1], lp_errname(rc));
			remove(tmp);
			return 1;
		}
		write_count(argv[1], packets);
		return 0;
	}
	bm_pattern_init();

	rc = bm_fx_init(&f, false, true);
	if (!rc) {
		w = cap_open(tmp, CAP_FMT_PCAPNG, NULL, &e);
		if (!w)
			rc = e.code ? e.code : LP_EIO;
	}
	if (!rc)
		rc = cap_tap_attach(f.ctx, w, NULL, &tap, &e);
	if (rc)
		fprintf(stderr, "gen_capture: %s: %s: %s\n", tmp, lp_errname(rc), e.msg);
	if (!rc)
		rc = bm_fx_open_link(&f);
	for (unsigned i = 0; !rc && i < GEN_MAX_ROUNDS && file_size(tmp) < target; i++) {
		size_t nconns = 1 + (i / 2) % 2;

		rc = i % 2 ? bm_download(&f, nconns, GEN_ROUND, &r)
			   : bm_upload(&f, nconns, GEN_ROUND, &r);
		if (!rc && cap_tap_error(tap))
			rc = cap_tap_error(tap);
	}
	if (!rc)
		rc = bm_check(&f, "gen_capture");
	if (tap)
		cap_tap_detach(tap);
	bm_fx_release(&f);
	packets = tap ? cap_tap_records(tap) : 0;
	cap_tap_free(tap);
	crc = cap_close(w);
	if (!rc)
		rc = crc;
	if (!rc && file_size(tmp) < target)
		rc = LP_ETOOBIG;
	if (!rc && rename(tmp, argv[1]) != 0)
		rc = LP_EIO;
	if (rc) {
		fprintf(stderr, "gen_capture: %s: %s\n", argv[1], lp_errname(rc));
		remove(tmp);
		return 1;
	}
	write_count(argv[1], packets);
	return 0;
}
