/* bench_mux.c - usbmux stream throughput through the whole host stack:
 * lp_stream -> hostlink -> transport core -> sim backend -> a device model
 * (tools/bench/bench_model.h: discard and source services on a device-role
 * mux codec).
 *
 * 1. Link model off (tr_sim_link.link_off): the cost of the software path
 *    alone. host->device and device->host, one connection and four, MB/s of
 *    wall time (CLOCK_MONOTONIC, 10^6 B/s) and the ratio to the USB 2.0
 *    high-speed bulk limit (53.248 MB/s): how far the stack is from being the
 *    bottleneck on a real cable.
 * 2. Link model on, high speed, virtual clock: the modelled throughput (bytes
 *    over modelled time). A sanity figure: it should come close to the bulk
 *    limit minus usbmux overhead (headers, ACKs, ZLPs, transfer latency).
 *
 * Sizes: BENCH_MUX_MIB (default 64) per link-off run, a quarter of it (at
 * least 4) per link-on run; each run is done REPEAT times on a fresh link and
 * the median (by wall time) is printed. Exit 0 when every run moved every byte intact,
 * 1 when a run failed; a slow number is not a failure. */
#include <stdio.h>
#include <stdlib.h>

#include "tools/bench/bench_model.h"

#define REPEAT 3 /* each run; the median is printed */

static int once(bool link_off, bool upload, size_t nconns, uint64_t bytes, const char *label,
		struct bm_result *r)
{
	struct bm_fx f;
	int rc;

	rc = bm_fx_init(&f, link_off, true);
	if (!rc)
		rc = bm_fx_open_link(&f);
	if (!rc)
		rc = upload ? bm_upload(&f, nconns, bytes, r) : bm_download(&f, nconns, bytes, r);
	if (!rc)
		rc = bm_check(&f, label);
	bm_fx_release(&f);
	return rc;
}

static int cmp_wall(const void *a, const void *b)
{
	const struct bm_result *x = a, *y = b;

	return x->wall_s < y->wall_s ? -1 : x->wall_s > y->wall_s;
}

static int run(const char *label, bool link_off, bool upload, size_t nconns, uint64_t bytes)
{
	struct bm_result rs[REPEAT], r;
	int rc = 0;

	for (size_t i = 0; i < REPEAT && !rc; i++)
		rc = once(link_off, upload, nconns, bytes, label, &rs[i]);
	if (rc) {
		printf("usbmux stream %s: FAILED (%s)\n", label, lp_errname(rc));
		return rc;
	}
	qsort(rs, REPEAT, sizeof(rs[0]), cmp_wall);
	r = rs[REPEAT / 2];
	if (link_off) {
		double mbps = bm_mbps(r.bytes, r.wall_s);

		printf("usbmux stream %s: %.1f MB/s (%.1fx the %.1f MB/s USB 2.0 bulk limit)"
		       "  [%llu MiB in %.3f s, median of %d]\n",
		       label, mbps, mbps / BM_USB2_BULK_MBPS, BM_USB2_BULK_MBPS,
		       (unsigned long long)(r.bytes / BM_MiB), r.wall_s, REPEAT);
	} else {
		double mbps = bm_mbps(r.bytes, r.clock_s);

		printf("usbmux stream %s: %.1f MB/s modelled (%.0f%% of the %.1f MB/s USB 2.0 bulk "
		       "limit)  [%llu MiB in %.3f s modelled, %.3f s wall]\n",
		       label, mbps, 100.0 * mbps / BM_USB2_BULK_MBPS, BM_USB2_BULK_MBPS,
		       (unsigned long long)(r.bytes / BM_MiB), r.clock_s, r.wall_s);
	}
	return 0;
}

int main(void)
{
	const char *env = getenv("BENCH_MUX_MIB");
	uint64_t mib = env && atoi(env) > 0 ? (uint64_t)atoi(env) : 64;
	uint64_t big = mib * BM_MiB, modelled = (mib / 4 < 4 ? 4 : mib / 4) * BM_MiB;
	int fails = 0;

	bm_pattern_init();
	printf("== bench_mux: usbmux streams, hostlink -> transport -> sim -> device model\n");
	fails += run("host->device", true, true, 1, big) != 0;
	fails += run("device->host", true, false, 1, big) != 0;
	fails += run("host->device, 4 connections", true, true, 4, big) != 0;
	fails += run("device->host, 4 connections", true, false, 4, big) != 0;
	fails += run("host->device, link model on (high speed)", false, true, 1, modelled) != 0;
	fails += run("device->host, link model on (high speed)", false, false, 1, modelled) != 0;
	return fails ? 1 : 0;
}
