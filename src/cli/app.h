/* app.h - the CLI's shared state: options, clock, log, the opened transport
 * and capture, and the command table. Only src/ prints or exits. */
#ifndef LP_APP_H
#define LP_APP_H

#include <stdbool.h>
#include <stdio.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/diag/diag.h"

#define LP_VERSION "0.1.0"

/* Exit codes (documented in README). */
enum { EXIT_GOOD = 0, EXIT_PROBLEM = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

struct tr_ctx;
struct simdev;
struct lp_capture;

struct lp_app {
	/* options */
	const char *device_spec; /* "libusb", "sim[:profile][,k=v]", "replay:FILE" */
	bool json;
	bool quiet; /* -q: only the verdict line on stdout */
	bool color;
	int verbose;
	const char *capture_path;
	const char *capture_streams_path;
	const char *capture_bus_path; /* --capture-bus: the simulated link's packets */
	const char *keylog_path;
	bool tls_keys;
	bool no_redact;
	const char *pair_dir;
	double timeout_s;	   /* trust: total wait for the Trust dialog */
	double duration_s;	   /* cable test */
	bool throughput;	   /* cable test: --throughput */
	uint64_t throughput_bytes; /* its size (0 = ~1 s at the link's rate) */
	bool pair;
	bool list_profiles;
	const char *udid;	  /* select a device */
	bool all;		  /* cable-test --all: every device, concurrently */
	const char *metrics_path; /* watch --metrics: Prometheus text file */
	double interval_s;	  /* watch: probe period */
	double watch_duration_s;  /* watch --duration; 0 = until stopped */
	const char *file;	  /* analyze: the capture */
	int usbmuxd_port;	  /* analyze: TCP port of a relayed usbmuxd socket (0 = detect) */
	bool via_usbmuxd;	  /* list/trust through the usbmuxd daemon (via_usbmuxd.c) */
	bool direct; /* trust/cable-test: never through usbmuxd, even when it holds the device */
	const char *report_path; /* trust, cable-test, analyze: --report FILE.html */

	/* runtime */
	struct lp_clock clock;
	struct lp_log log;
	struct lp_rand rand;
	struct tr_ctx *tr;
	struct simdev *sim;   /* the (first) simulated device */
	struct simdev **sims; /* every simulated device (--device sim:P*N+...), owned */
	size_t nsims;
	void *sim_arg; /* struct tr_sim_arg, owned */
	struct lp_capture *cap;
	bool is_sim;
	FILE *out; /* stdout */
};

/* device.c: open the transport named by app->device_spec (and the capture if
 * asked). Returns 0 or an lp_err with detail; usage errors are LP_EINVAL. */
int app_open_device(struct lp_app *app, struct lp_errinfo *e);
void app_close_device(struct lp_app *app);
/* The user's home directory: $HOME if absolute, else the password entry's;
 * NULL if neither (callers then refuse rather than use a shared /tmp). */
const char *app_home(void);
/* --device replay: a replay the host drove off the recording is
 * REPLAY_DIVERGED (diag_rule_replay_diverged); no-op otherwise. */
void app_replay_note(struct lp_app *app, struct diag_report *r);

/* Output options checked together before any file is opened (main calls it
 * after parsing): LP_EINVAL (a usage error) with the reason in e. A capture
 * on standard output ("-") moves the report to stderr (app->out). */
int app_check_options(struct lp_app *app, struct lp_errinfo *e);
/* capture glue (capture.c): attach to the transport; marks from diag. */
int app_capture_open(struct lp_app *app, struct lp_errinfo *e);
void app_capture_close(struct lp_app *app);
void app_capture_mark(void *ud, const char *text);
struct hl_link;
void app_capture_link(struct lp_app *app, struct hl_link *link);
void app_capture_keylog(void *ud, const char *line);

/* output.c */
void out_attach(struct lp_app *app, struct diag_report *r);
/* Colour on stdout? Not with --no-color, a non-empty NO_COLOR, --json, a
 * non-terminal or TERM=dumb. */
bool out_use_color(bool no_color_opt, bool json);
/* A progress line for a person watching a terminal (redrawn in place, cut to
 * the width); nothing under --json, -q or off a terminal. Not report data. */
void out_progress(struct lp_app *app, double t_s, const char *stage, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The log sink (ud = struct lp_app *): sanitized lines on stderr; repeated
 * warnings folded at default verbosity, counted by out_log_flush(). */
void out_log_sink(void *ud, enum lp_log_level level, const char *msg);
void out_log_flush(void);
/* version.c: `--version`: linkprobe's and the libraries' versions. */
void out_version(FILE *f);
int out_finish(struct lp_app *app, struct diag_report *r);
/* A runtime error (exit 3) on stderr, and as {"error", "exit_code"} on
 * stdout under --json. */
void out_error(struct lp_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a usage error (exit 2); returns EXIT_USAGE. */
int out_usage_error(struct lp_app *app, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* app_open_device failed with e: LP_EINVAL is a usage error; libusb that
 * would not start (LP_ENODEV) is, for `command` (a report's command name;
 * NULL: none), a NO_USB_HOST report; anything else a runtime error. Prints
 * and returns the exit code. */
int out_open_failed(struct lp_app *app, const struct lp_errinfo *e, const char *command);

/* Commands: return the process exit code. */
int cmd_list(struct lp_app *app);
int cmd_cable_test(struct lp_app *app);
int cmd_trust(struct lp_app *app);
int cmd_sim(struct lp_app *app);
int cmd_analyze(struct lp_app *app);
int cmd_watch(struct lp_app *app);

/* extcap.c: Wireshark extcap entry point (argv has an --extcap-* option). */
int extcap_main(int argc, char **argv);

#endif
