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
 * usage: gen_capture FILE [MB]   (MB default 210). Exit 0 / 1. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tools/bench/bench_model.h"
#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"

#define GEN_ROUND (16 * BM_MiB)
#define GEN_MAX_ROUNDS 200 /* bound: 3.2 GiB of payload */

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

int main(int argc, char **argv)
{
	struct bm_fx f;
	struct cap_writer *w = NULL;
	struct cap_tap *tap = NULL;
	struct lp_errinfo e = {0};
	struct bm_result r;
	char tmp[4096];
	uint64_t target;
	int rc, crc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: gen_capture FILE [MB]\n");
		return 2;
	}
	target = (argc == 3 && atoi(argv[2]) > 0 ? (uint64_t)atoi(argv[2]) : 210) * 1000000ull;
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
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
	return 0;
}
