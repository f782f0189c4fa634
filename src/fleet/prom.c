/* prom.c - the watch registry as a Prometheus text file (see prom.h).
 * Reference: the Prometheus "Exposition formats" document (text format
 * 0.0.4) and its metric naming guide (base units: seconds, bytes; counters
 * end in _total); `promtool check metrics` passes on the file (tests/t/87-watch.t). */
#include "src/fleet/prom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usb/transport.h"

#define PROM_PATH_MAX 4096

/* A label value with \, " and newline escaped. */
static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void labels(FILE *f, const struct watch_dev *d, const char *extra_k, const char *extra_v)
{
	fputs("{udid=\"", f);
	esc(f, d->udid);
	fputs("\",port_path=\"", f);
	esc(f, d->port_path);
	fputs("\",product_type=\"", f);
	esc(f, d->product_type);
	fputc('"', f);
	if (extra_k) {
		fprintf(f, ",%s=\"", extra_k);
		esc(f, extra_v);
		fputc('"', f);
	}
	fputc('}', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum fam_kind {
	F_PRESENT,
	F_SPEED,
	F_HELD,
	F_ARR,
	F_DEP,
	F_REENUM,
	F_SPEEDCH,
	F_PROBES,
	F_XFERERR,
	F_SEEN
};

struct fam {
	const char *name, *type, *help;
	enum fam_kind k;
};

static const struct fam fams[] = {
	{"linkprobe_device_present", "gauge", "1 if the phone is on the bus now, 0 if it left",
	 F_PRESENT},
	{"linkprobe_device_link_speed_bytes_per_second", "gauge",
	 "negotiated USB signalling rate of the phone's current or last attachment (60e6 high speed = 480 Mb/s, 1.5e6 full speed = 12 Mb/s)",
	 F_SPEED},
	{"linkprobe_device_usbmux_held", "gauge",
	 "1 if another process (usbmuxd) holds the usbmux interface, so only control round trips are probed",
	 F_HELD},
	{"linkprobe_device_arrivals_total", "counter", "times the phone appeared on the bus",
	 F_ARR},
	{"linkprobe_device_departures_total", "counter", "times the phone left the bus", F_DEP},
	{"linkprobe_device_reenumerations_total", "counter",
	 "times the phone came back after leaving (a new attachment of the same UDID)", F_REENUM},
	{"linkprobe_device_speed_changes_total", "counter",
	 "times the phone came back at another speed than before", F_SPEEDCH},
	{"linkprobe_device_probes_total", "counter", "probe rounds run on the phone", F_PROBES},
	{"linkprobe_device_transfer_errors_total", "counter",
	 "USB transfers to or from the phone that failed (host link)", F_XFERERR},
	{"linkprobe_device_last_seen_timestamp_seconds", "gauge",
	 "UNIX time the phone last answered a probe or was listed", F_SEEN},
};

static double value(const struct watch *w, const struct watch_dev *d, enum fam_kind k)
{
	switch (k) {
	case F_PRESENT:
		return d->present;
	case F_SPEED:
		return (double)tr_speed_bps(d->speed) / 8;
	case F_HELD:
		return d->held;
	case F_ARR:
		return (double)d->arrivals;
	case F_DEP:
		return (double)d->departures;
	case F_REENUM:
		return (double)d->reenumerations;
	case F_SPEEDCH:
		return (double)d->speed_changes;
	case F_PROBES:
		return (double)d->probes;
	case F_XFERERR:
		return (double)d->transfer_errors;
	case F_SEEN:
		return (double)lp_clock_wall(watch_clock(w), d->last_seen_ns) / LP_NS_PER_S;
	}
	return 0;
}

static void body(FILE *f, const struct watch *w, bool running)
{
	const struct lp_clock *clk = watch_clock(w);
	struct watch_totals t;
	size_t n = watch_device_count(w);

	watch_get_totals(w, &t);
	head(f, "linkprobe_watch_up", "gauge",
	     "1 while linkprobe watch runs; 0 in the file it leaves when stopped");
	fprintf(f, "linkprobe_watch_up %d\n", running ? 1 : 0);
	head(f, "linkprobe_watch_devices", "gauge", "Apple devices on the bus now");
	fprintf(f, "linkprobe_watch_devices %zu\n", t.devices_present);
	head(f, "linkprobe_watch_last_update_timestamp_seconds", "gauge",
	     "UNIX time this file was written");
	fprintf(f, "linkprobe_watch_last_update_timestamp_seconds %.3f\n",
		(double)lp_clock_wall(clk, lp_clock_now(clk)) / LP_NS_PER_S);
	for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
		head(f, fams[k].name, fams[k].type, fams[k].help);
		for (size_t i = 0; i < n; i++) {
			const struct watch_dev *d = watch_device_at(w, i);
			fputs(fams[k].name, f);
			labels(f, d, NULL, NULL);
			fprintf(f, " %.17g\n", value(w, d, fams[k].k));
		}
	}
	head(f, "linkprobe_device_probe_errors_total", "counter",
	     "probe round trips that failed, by probe (control, usbmux, lockdown)");
	for (size_t i = 0; i < n; i++) {
		const struct watch_dev *d = watch_device_at(w, i);
		for (int p = 0; p < WATCH_NPROBE; p++) {
			fputs("linkprobe_device_probe_errors_total", f);
			labels(f, d, "probe", watch_probe_name(p));
			fprintf(f, " %llu\n", (unsigned long long)d->probe_errors[p]);
		}
	}
	head(f, "linkprobe_device_round_trip_seconds", "gauge",
	     "the last successful probe round trip, by probe (control, usbmux, lockdown)");
	for (size_t i = 0; i < n; i++) {
		const struct watch_dev *d = watch_device_at(w, i);
		for (int p = 0; p < WATCH_NPROBE; p++) {
			if (d->rtt_s[p] < 0)
				continue;
			fputs("linkprobe_device_round_trip_seconds", f);
			labels(f, d, "probe", watch_probe_name(p));
			fprintf(f, " %.9f\n", d->rtt_s[p]);
		}
	}
}

int prom_write(const struct watch *w, const char *path, bool running, struct lp_errinfo *e)
{
	char tmp[PROM_PATH_MAX];
	const char *slash;
	FILE *f;
	int fd, r = 0;

	if (!w || !path || !*path)
		return lp_err_set(e, LP_EINVAL, "metrics: no file");
	slash = strrchr(path, '/');
	/* the temporary name does not end in .prom: the collector skips it */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.%s.tmpXXXXXX",
			     slash ? (int)(slash - path + 1) : 0, path,
			     slash ? slash + 1 : path) >= sizeof(tmp))
		return lp_err_set(e, LP_ETOOBIG, "metrics: path too long");
	fd = mkstemp(tmp);
	if (fd < 0)
		return lp_err_set(e, LP_EIO, "metrics: cannot create a file beside %s: %s", path,
				  strerror(errno));
	if (fchmod(fd, 0644) || !(f = fdopen(fd, "w"))) {
		r = lp_err_set(e, LP_EIO, "metrics: %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return r;
	}
	body(f, w, running);
	if (fflush(f) || ferror(f) || fsync(fileno(f)))
		r = lp_err_set(e, LP_EIO, "metrics: writing %s: %s", tmp, strerror(errno));
	if (fclose(f) && !r)
		r = lp_err_set(e, LP_EIO, "metrics: writing %s: %s", tmp, strerror(errno));
	if (!r && rename(tmp, path))
		r = lp_err_set(e, LP_EIO, "metrics: renaming onto %s: %s", path, strerror(errno));
	if (r)
		unlink(tmp);
	return r;
}
