/* bench_capture.c - what recording costs: the same usbmux streams through the
 * sim link (model off, as bench_mux.c) without a capture and with the
 * capture tap (src/capture/cap_tap.h, redaction on) writing every transfer as usbmon
 * records, in one run, as MB/s and a ratio:
 *   off                 no tap
 *   pcapng /tmp         our pcapng writer to a file (one write(2) per block)
 *   pcap /tmp           classic pcap through libpcap (stdio, flushed per record)
 *   pcapng /dev/null    the tap and writer without the file system
 *   ... redaction off   the same with --no-redact: what the secret scan costs
 * Each variant moves BENCH_CAPTURE_MIB (default 64) MiB host->device and as
 * much device->host on one connection; MB/s is payload bytes over wall time
 * of both streams (CLOCK_MONOTONIC), median of REPEAT runs on fresh links,
 * and over the process's CPU time (user+sys, getrusage) in the same runs: on
 * a shared machine wall time includes waiting for a core, CPU time does not.
 *
 * Then the same at the USB 2.0 rate: link model on (high speed) on the real
 * clock, so the stack runs as it would behind a real cable (sleeping between
 * transfers), capture off and pcapng to a file: CPU time per byte of each and
 * their ratio (goal: capture costs <= 10 % more, ratio >= 0.9).
 * BENCH_CAPTURE_RATE_MIB (default 16) MiB each way, median of REPEAT.
 * BENCH_CAPTURE_ONLY=LABEL runs only the variants whose label starts with
 * LABEL (for a profiler). Files are removed afterwards.
 * Exit 1 if a stream or the capture failed (not for a slow number). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/bench/bench_model.h"
#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"

struct variant {
	const char *label;
	const char *path; /* NULL = no capture */
	enum cap_format fmt;
	bool no_redact;
	bool paced; /* link model on, real clock: the USB 2.0 rate */
};

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#define REPEAT 3 /* each variant; the median is printed */

static int cmp_wall(const void *a, const void *b)
{
	const struct bm_result *x = a, *y = b;

	return x->wall_s < y->wall_s ? -1 : x->wall_s > y->wall_s;
}

static int one(const struct variant *v, uint64_t bytes, struct bm_result *out, uint64_t *records,
	       uint64_t *file_bytes)
{
	struct bm_fx f;
	struct cap_writer *w = NULL;
	struct cap_tap *tap = NULL;
	struct lp_errinfo e = {0};
	struct bm_result up, down;
	struct cap_tap_opts o = {.no_redact = v->no_redact};
	struct stat sb;
	double c0 = cpu_s();
	int rc, crc;

	rc = bm_fx_init(&f, !v->paced, !v->paced);
	if (!rc && v->path) {
		w = cap_open(v->path, v->fmt, NULL, &e);
		if (!w)
			rc = e.code ? e.code : LP_EIO;
		if (!rc)
			rc = cap_tap_attach(f.ctx, w, &o, &tap, &e);
		if (rc)
			fprintf(stderr, "bench: capture %s: %s: %s\n", v->path, lp_errname(rc),
				e.msg);
	}
	if (!rc)
		rc = bm_fx_open_link(&f);
	if (!rc)
		rc = bm_upload(&f, 1, bytes, &up);
	if (!rc)
		rc = bm_download(&f, 1, bytes, &down);
	if (!rc)
		rc = bm_check(&f, v->label);
	if (!rc && tap && cap_tap_error(tap)) {
		rc = cap_tap_error(tap);
		fprintf(stderr, "bench: capture write: %s\n", lp_errname(rc));
	}
	*records = tap ? cap_tap_records(tap) : 0;
	if (tap)
		cap_tap_detach(tap);
	bm_fx_release(&f);
	cap_tap_free(tap);
	crc = cap_close(w);
	if (!rc && crc) {
		rc = crc;
		fprintf(stderr, "bench: closing %s: %s\n", v->path, lp_errname(rc));
	}
	*file_bytes = v->path && stat(v->path, &sb) == 0 && S_ISREG(sb.st_mode)
			      ? (uint64_t)sb.st_size
			      : 0;
	if (!rc) {
		out->bytes = up.bytes + down.bytes;
		out->wall_s = up.wall_s + down.wall_s;
		/* the whole run: set-up, streams, closing the file */
		out->clock_s = cpu_s() - c0;
	}
	return rc;
}

static int cmp_cpu(const void *a, const void *b)
{
	const struct bm_result *x = a, *y = b;

	return x->clock_s < y->clock_s ? -1 : x->clock_s > y->clock_s;
}

/* Median wall and median CPU of REPEAT runs of variant v. */
static int measure(const struct variant *v, uint64_t bytes, double *wall_mbps, double *cpu_mbps,
		   uint64_t *recs, uint64_t *fsize)
{
	struct bm_result rs[REPEAT];
	int rc = 0;

	for (size_t k = 0; k < REPEAT && !rc; k++) {
		rc = one(v, bytes, &rs[k], recs, fsize);
		if (v->path && strcmp(v->path, "/dev/null") != 0)
			unlink(v->path);
	}
	if (rc)
		return rc;
	qsort(rs, REPEAT, sizeof(rs[0]), cmp_wall);
	*wall_mbps = bm_mbps(rs[REPEAT / 2].bytes, rs[REPEAT / 2].wall_s);
	qsort(rs, REPEAT, sizeof(rs[0]), cmp_cpu);
	*cpu_mbps = bm_mbps(rs[REPEAT / 2].bytes, rs[REPEAT / 2].clock_s);
	return 0;
}

int main(void)
{
	const char *env = getenv("BENCH_CAPTURE_MIB"), *renv = getenv("BENCH_CAPTURE_RATE_MIB");
	const char *only = getenv("BENCH_CAPTURE_ONLY");
	uint64_t mib = env && atoi(env) > 0 ? (uint64_t)atoi(env) : 64;
	uint64_t rmib = renv && atoi(renv) > 0 ? (uint64_t)atoi(renv) : 16;
	char png[64], pcap[64];
	struct variant vs[5], rv[2];
	double base = 0, base_cpu = 0, off_cpu = 0;
	int fails = 0;

	snprintf(png, sizeof(png), "/tmp/linkprobe-bench-%d.pcapng", (int)getpid());
	snprintf(pcap, sizeof(pcap), "/tmp/linkprobe-bench-%d.pcap", (int)getpid());
	vs[0] = (struct variant){"capture off", NULL, CAP_FMT_AUTO, false, false};
	vs[1] = (struct variant){"capture pcapng /tmp", png, CAP_FMT_PCAPNG, false, false};
	vs[2] = (struct variant){"capture pcap /tmp", pcap, CAP_FMT_PCAP, false, false};
	vs[3] = (struct variant){"capture pcapng /dev/null", "/dev/null", CAP_FMT_PCAPNG, false,
				 false};
	vs[4] = (struct variant){"capture pcapng /dev/null, redaction off", "/dev/null",
				 CAP_FMT_PCAPNG, true, false};
	rv[0] = (struct variant){"capture off", NULL, CAP_FMT_AUTO, false, true};
	rv[1] = (struct variant){"capture pcapng /tmp, redaction on", png, CAP_FMT_PCAPNG, false,
				 true};

	bm_pattern_init();
	printf("== bench_capture: %llu MiB each way, one connection, link model off, "
	       "median of %d\n",
	       (unsigned long long)mib, REPEAT);
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		uint64_t recs = 0, fsize = 0;
		double mbps, cpu;
		int rc;

		if (only && strncmp(vs[i].label, only, strlen(only)) != 0)
			continue;
		rc = measure(&vs[i], mib * BM_MiB, &mbps, &cpu, &recs, &fsize);

		if (rc) {
			printf("%s: FAILED (%s)\n", vs[i].label, lp_errname(rc));
			fails++;
			continue;
		}
		printf("%s: %.1f MB/s wall, %.1f MB/s of CPU time (%.1fx the USB 2.0 bulk limit)",
		       vs[i].label, mbps, cpu, mbps / BM_USB2_BULK_MBPS);
		if (i == 0) {
			base = mbps;
			base_cpu = cpu;
		}
		if (fsize)
			printf("  [%llu records, %.1f MB file]", (unsigned long long)recs,
			       (double)fsize / 1e6);
		else if (recs)
			printf("  [%llu records]", (unsigned long long)recs);
		printf("\n");
		if (i > 0 && base > 0 && base_cpu > 0)
			printf("  capture overhead (%s): x%.2f wall, x%.2f CPU; at 53.2 MB/s the "
			       "stack with it would use ~%.0f%% of one core\n",
			       vs[i].label + 8, mbps / base, cpu / base_cpu,
			       100.0 * BM_USB2_BULK_MBPS / cpu);
	}

	printf("== bench_capture: at the USB 2.0 rate (link model on, high speed, real clock), "
	       "%llu MiB each way, median of %d\n",
	       (unsigned long long)rmib, REPEAT);
	for (size_t i = 0; i < 2 && !only; i++) {
		uint64_t recs = 0, fsize = 0;
		double mbps, cpu;
		int rc = measure(&rv[i], rmib * BM_MiB, &mbps, &cpu, &recs, &fsize);

		if (rc) {
			printf("%s at the USB 2.0 rate: FAILED (%s)\n", rv[i].label,
			       lp_errname(rc));
			fails++;
			continue;
		}
		printf("%s at the USB 2.0 rate: %.1f MB/s wall, %.2f ns of CPU per byte "
		       "(%.1f%% of one core)",
		       rv[i].label, mbps, 1e3 / cpu, 100.0 * mbps / cpu);
		if (i == 0)
			off_cpu = cpu;
		else if (off_cpu > 0)
			printf("  [x%.2f the capture-off figure in CPU time per byte; goal >= 0.90]",
			       cpu / off_cpu);
		printf("\n");
	}
	return fails ? 1 : 0;
}
