/* bench_bus.c - the bus-level capture for tools/bench/bench_bus.sh: the
 * bench device model (bench_model.h) driven by the host stack at high speed
 * on a virtual clock, with the bus writer (src/capture/cap_bus.h) recording
 * every packet the modelled USB 2.0 bus carries (SOFs, tokens, 512-byte data
 * packets with CRC16, handshakes, NAK polls; link type 295, pcapng): rounds
 * of 16 MiB uploads and downloads on one and two mux connections until the
 * file holds BENCH_BUS_MB (default 210) * 10^6 bytes - a saturated bus, the
 * case the analyzer must keep up with (>= 200 MB/s).
 *
 * Run without arguments by `make bench` (before the scripts): writes
 * $B/bench/bus-<MB>MB.pcapng (B default "build") unless it exists and is
 * newer than this program; prints one line. Exit 0 / 1. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tools/bench/bench_model.h"
#include "src/capture/cap_bus.h"
#include "src/capture/cap_writer.h"

#define GEN_ROUND (16 * BM_MiB)
#define GEN_MAX_ROUNDS 200

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static bool fresh(const char *path, const char *self)
{
	struct stat a, b;

	return stat(path, &a) == 0 && a.st_size > 0 &&
	       (!self || stat(self, &b) != 0 || a.st_mtime >= b.st_mtime);
}

int main(int argc, char **argv)
{
	const char *bdir = getenv("B") ? getenv("B") : "build";
	const char *mbs = getenv("BENCH_BUS_MB");
	unsigned mb = mbs && atoi(mbs) > 0 ? (unsigned)atoi(mbs) : 210;
	struct cap_bus_opts bo = {.speed = TR_SPEED_HIGH, .latency_ns = 20 * LP_NS_PER_US};
	struct bm_fx f;
	struct cap_writer *w = NULL;
	struct cap_bus *bus = NULL;
	struct lp_errinfo e = {0};
	struct bm_result r;
	char path[4096], tmp[4200];
	double t0 = bm_mono();
	int rc, crc;

	(void)argc;
	snprintf(path, sizeof(path), "%s/bench/bus-%uMB.pcapng", bdir, mb);
	if (fresh(path, argv[0])) {
		printf("== bench_bus: bus-level capture %s (cached)\n", path);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	bm_pattern_init();
	rc = bm_fx_init(&f, false, true);
	if (!rc) {
		w = cap_open(tmp, CAP_FMT_PCAPNG, NULL, &e);
		if (!w)
			rc = e.code ? e.code : LP_EIO;
	}
	if (!rc)
		rc = cap_bus_attach(f.ctx, w, &bo, &bus, &e);
	if (rc)
		fprintf(stderr, "bench_bus: %s: %s: %s\n", tmp, lp_errname(rc), e.msg);
	if (!rc)
		rc = bm_fx_open_link(&f);
	for (unsigned i = 0;
	     !rc && i < GEN_MAX_ROUNDS && file_size(tmp) < (uint64_t)mb * 1000000ull; i++) {
		size_t nconns = 1 + (i / 2) % 2;
		rc = i % 2 ? bm_download(&f, nconns, GEN_ROUND, &r)
			   : bm_upload(&f, nconns, GEN_ROUND, &r);
		if (!rc && cap_bus_error(bus))
			rc = cap_bus_error(bus);
	}
	if (!rc)
		rc = bm_check(&f, "bench_bus");
	cap_bus_detach(bus);
	bm_fx_release(&f);
	crc = cap_close(w);
	if (!rc)
		rc = crc;
	if (!rc && rename(tmp, path) != 0)
		rc = LP_EIO;
	if (rc) {
		fprintf(stderr, "bench_bus: %s: %s\n", path, lp_errname(rc));
		remove(tmp);
		cap_bus_free(bus);
		return 1;
	}
	printf("== bench_bus: bus-level capture %s: %.1f MB, %llu packets, generated in %.1f s\n",
	       path, (double)file_size(path) / 1e6, (unsigned long long)cap_bus_packets(bus),
	       bm_mono() - t0);
	cap_bus_free(bus);
	return 0;
}
