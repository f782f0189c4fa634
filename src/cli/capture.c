/* capture.c - --capture / --capture-streams / --tls-keys / --keylog glue:
 * the USB tap on the transport, the synthetic-TCP view on the host link, and
 * the key log. Secrets go only where the user asked for them: plaintext is
 * redacted in both captures unless --no-redact, but --tls-keys/--keylog make
 * the whole session readable, including what lockdown sends inside TLS
 * (StartService's EscrowBag).
 *
 * The writers batch their output (src/capture/cap_writer.h): an interrupt or
 * `kill` (SIGINT, SIGTERM, SIGHUP) writes what is waiting before the process
 * ends the way it would have without us. */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/app.h"
#include "proto/hostlink.h"
#include "src/capture/cap_bus.h"
#include "src/capture/cap_streams.h"
#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"
#include "usb/tr_sim.h"

struct lp_capture {
	struct cap_writer *usb; /* --capture */
	struct cap_writer *tcp; /* --capture-streams */
	struct cap_writer *bus; /* --capture-bus */
	struct cap_bus *busw;
	struct cap_tap *tap;
	struct cap_streams *streams;
	struct cap_keylog *keylog;
	struct lp_clock *clock;
};

/* The open writers, for the signal handler. */
#define CAP_SIG_WRITERS 3
static struct cap_writer *volatile sig_writers[CAP_SIG_WRITERS];
static const int sig_flush[] = {SIGINT, SIGTERM, SIGHUP};

static void on_fatal_signal(int sig)
{
	for (size_t i = 0; i < CAP_SIG_WRITERS; i++)
		cap_flush_on_signal(sig_writers[i]);
	signal(sig, SIG_DFL);
	raise(sig); /* delivered when the handler returns: the default end */
}

static void sig_watch(size_t slot, struct cap_writer *w)
{
	sig_writers[slot] = w;
	for (size_t i = 0; i < sizeof(sig_flush) / sizeof(sig_flush[0]); i++) {
		struct sigaction old, sa;

		/* leave a signal alone that someone set to be ignored (nohup) */
		if (sigaction(sig_flush[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_fatal_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sig_flush[i], &sa, NULL);
	}
}

/* Close a writer with the signals held, so none ends the process between
 * forgetting the writer and its last flush. */
static void sig_close(size_t slot, struct cap_writer *w)
{
	sigset_t set, old;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sig_flush) / sizeof(sig_flush[0]); i++)
		sigaddset(&set, sig_flush[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	sig_writers[slot] = NULL;
	cap_close(w);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static bool is_stdout(const char *path)
{
	return path && strcmp(path, "-") == 0;
}

int app_check_options(struct lp_app *app, struct lp_errinfo *e)
{
	const char *cap = app->capture_path, *str = app->capture_streams_path;

	if (app->tls_keys && !cap && !str)
		return lp_err_set(e, LP_EINVAL, "--tls-keys needs --capture or --capture-streams");
	if (app->tls_keys && !str && cap_format_for_path(cap) != CAP_FMT_PCAPNG)
		return lp_err_set(e, LP_EINVAL,
				  "--tls-keys needs a pcapng capture "
				  "(classic pcap has no secrets block): name it .pcapng");
	if (is_stdout(cap) && is_stdout(str))
		return lp_err_set(e, LP_EINVAL,
				  "--capture - and --capture-streams - cannot both "
				  "write to standard output");
	if (is_stdout(app->keylog_path))
		return lp_err_set(e, LP_EINVAL, "--keylog wants a file name, not '-'");
	if ((cap && str && strcmp(cap, str) == 0) ||
	    (app->keylog_path && ((cap && strcmp(cap, app->keylog_path) == 0) ||
				  (str && strcmp(str, app->keylog_path) == 0))))
		return lp_err_set(e, LP_EINVAL,
				  "--capture, --capture-streams and --keylog need "
				  "different files");
	/* a capture on standard output is binary: the report goes to stderr
	 * so `linkprobe trust --capture - | wireshark -k -i -` gets a clean
	 * pcapng */
	if (is_stdout(cap) || is_stdout(str))
		app->out = stderr;
	return 0;
}

int app_capture_open(struct lp_app *app, struct lp_errinfo *e)
{
	struct lp_capture *c = calloc(1, sizeof(*c));
	struct cap_writer *dsb = NULL;
	/* keys (Decryption Secrets Block) or unredacted EscrowBag/private keys */
	struct cap_open_opts oo = {.secret = app->tls_keys || app->no_redact};
	int r;

	if (!c)
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	app->cap = c;
	c->clock = &app->clock;
	if (app->capture_path) {
		struct cap_tap_opts o = {.no_redact = app->no_redact};
		c->usb = cap_open(app->capture_path, CAP_FMT_AUTO, &oo, e);
		if (!c->usb)
			return lp_err_prefix(e, "--capture %s", app->capture_path),
			       e ? e->code : LP_EIO;
		sig_watch(0, c->usb);
		r = cap_tap_attach(app->tr, c->usb, &o, &c->tap, e);
		if (r)
			return r;
		if (app->tls_keys && cap_get_format(c->usb) == CAP_FMT_PCAPNG)
			dsb = c->usb;
	}
	if (app->capture_streams_path) {
		c->tcp = cap_open(app->capture_streams_path, CAP_FMT_PCAPNG, &oo, e);
		if (!c->tcp)
			return lp_err_prefix(e, "--capture-streams %s", app->capture_streams_path),
			       e ? e->code : LP_EIO;
		sig_watch(1, c->tcp);
		r = cap_streams_new(c->tcp, "usbmux-streams", &c->streams, e);
		if (r)
			return r;
		cap_streams_set_redact(c->streams, !app->no_redact);
		if (app->tls_keys)
			dsb = c->tcp;
	}
	if (app->capture_bus_path) {
		/* the bus of the simulated link: its speed, latency and fault rate */
		const struct tr_sim_arg *sa = app->sim_arg;
		struct cap_bus_opts bo = {0};
		if (!app->is_sim || !sa)
			return lp_err_set(
				e, LP_EINVAL,
				"--capture-bus records the simulated link's bus (--device sim or "
				"replay:FILE); on real hardware use a bus analyzer");
		bo.speed = sa->link.speed == TR_SPEED_FULL || sa->link.speed == TR_SPEED_LOW
				   ? TR_SPEED_FULL
				   : TR_SPEED_HIGH;
		bo.latency_ns = sa->link.link_off ? 0 : sa->link.latency_ns;
		bo.retry_rate = sa->link.error_rate > 0.5 ? 0.5 : sa->link.error_rate;
		bo.seed = sa->link.seed ^ 0x62757363ull;
		c->bus = cap_open(app->capture_bus_path, CAP_FMT_AUTO, NULL, e);
		if (!c->bus)
			return lp_err_prefix(e, "--capture-bus %s", app->capture_bus_path),
			       e ? e->code : LP_EIO;
		sig_watch(2, c->bus);
		r = cap_bus_attach(app->tr, c->bus, &bo, &c->busw, e);
		if (r)
			return r;
	}
	if (app->tls_keys && !dsb)
		return lp_err_set(
			e, LP_EINVAL,
			"--tls-keys needs a pcapng capture (classic pcap has no secrets block)");
	if (app->keylog_path || dsb) {
		r = cap_keylog_open(app->keylog_path, dsb, &c->keylog, e);
		if (r)
			return r;
	}
	return 0;
}

void app_capture_close(struct lp_app *app)
{
	struct lp_capture *c = app->cap;

	if (!c)
		return;
	cap_keylog_close(c->keylog);
	cap_streams_free(c->streams);
	if (c->tap)
		cap_tap_detach(c->tap);
	cap_tap_free(c->tap);
	if (c->usb)
		sig_close(0, c->usb);
	cap_bus_detach(c->busw);
	cap_bus_free(c->busw);
	if (c->bus)
		sig_close(2, c->bus);
	if (c->tcp)
		sig_close(1, c->tcp);
	free(c);
	app->cap = NULL;
}

void app_capture_mark(void *ud, const char *text)
{
	struct lp_app *app = ud;
	if (app->cap && app->cap->tap)
		cap_tap_mark(app->cap->tap, text);
}

static void stream_obs(void *ud, uint32_t conn, uint16_t sport, uint16_t dport, int dir,
		       const uint8_t *data, size_t len, int event)
{
	struct lp_capture *c = ud;
	uint64_t wall = lp_clock_wall(c->clock, lp_clock_now(c->clock));
	cap_streams_event(c->streams, wall, conn, sport, dport, dir, event, data, len);
}

void app_capture_link(struct lp_app *app, struct hl_link *link)
{
	if (app->cap && app->cap->streams)
		hl_set_stream_observer(link, stream_obs, app->cap);
}

void app_capture_keylog(void *ud, const char *line)
{
	struct lp_app *app = ud;
	if (app->cap && app->cap->keylog)
		cap_keylog_line(app->cap->keylog, line);
}
