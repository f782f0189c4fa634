/* lp_gadget.c - put a USB device model (struct devmodel_ops, usb/devmodel.h:
 * the simulated iPhone of src/device/simdev.h on the device core) on a real USB device controller
 * through FunctionFS, so real hosts - Linux's USB stack, libusb, usbmuxd,
 * libimobiledevice, linkprobe - talk to it over a real (virtual) bus.
 *
 *   lp_gadget --ffs DIR [--iface usbmux|ptp|ethernet|audio|dfu|recovery] [--profile NAME]
 *             [--udid UDID] [--model simdev|echo] [--ready FILE]
 *             [--udc-attr CONFIGFS_UDC_FILE] [--state FILE] [--hostile MODE] [--insplit N]
 *             [--prohibit KEY[+KEY...]]
 *             [-v]
 *
 * configfs builds the device and configuration descriptors (tools/gadget/
 * gadget.sh); this program serves one FunctionFS function:
 *  - usbmux: interface ff/fe/02 with bulk IN + bulk OUT (64 B full speed,
 *    512 B high speed), driven by the model: ep0 in lpg_ffs.c, the bulk
 *    endpoints in lpg_bulk.c, the model's timers (model->next_timer/tick on a
 *    real lp_clock) in lpg_link.c.
 *  - ptp, ethernet, audio, dfu, recovery: inert interfaces (descriptors only, every request
 *    stalled) for the configurations a real iPhone has besides usbmux, and for
 *    DFU/recovery mode.
 * --udc-attr: the model's own (dis)appearance (re-enumeration after pairing,
 * the flaky profile's drop) is done physically by writing the configfs UDC
 * attribute. --state: where the simdev keeps its key and pairings (RSA key
 * generation takes seconds under emulation; the lab generates it once).
 * --hostile MODE: the simulated iPhone misbehaves on request
 * (src/device/sim_hostile.h; a NAKed or halted endpoint is done on the bus by
 * lpg_bulk.c).
 * --ready FILE is written once the function is ready to bind, with what the
 * model says about itself ("vid=05ac pid=12a8 configs=4 attached=1"), so the
 * launcher binds the UDC only when the device is attached (charge-only cables
 * never enumerate).
 *
 * Threads: ep0, OUT and IN each block in their own thread (FunctionFS bulk
 * files cannot be polled without AIO); the main thread runs the timers.
 * tools/gadget/lpg.h lists the parts and what they share. Every
 * model call is made with `lock` held, so the model sees one driver at a time,
 * as tr_sim.h requires.
 *
 * Reference: Linux Documentation/usb/functionfs.rst, include/uapi/linux/usb/
 * functionfs.h; USB 2.0 ch. 9; usbmuxd src/usb.c (what the host does).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/device/devcore.h"
#include "usb/devmodel.h"
#include "usb/tr_sim.h"
#ifdef LP_GADGET_SIMDEV
#include "src/device/simdev.h"
#endif
#include "tools/gadget/lpg.h"

volatile sig_atomic_t lpg_stop;

/* --- logging ------------------------------------------------------------- */

static void lpg_sink(void *ud, enum lp_log_level level, const char *msg)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(stderr, "[%5ld.%06ld] lp_gadget %s: %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000,
		names[level <= LP_LOG_TRACE ? level : LP_LOG_TRACE], msg);
}

/* --- main ---------------------------------------------------------------- */

static void on_signal(int sig)
{
	lpg_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lp_gadget --ffs DIR [--iface usbmux|ptp|ethernet|audio|dfu|recovery] [--profile NAME]\n"
		"                 [--udid UDID] [--model simdev|echo] [--ready FILE]\n"
		"                 [--udc-attr CONFIGFS_UDC_FILE] [--state FILE] [--hostile MODE]\n"
		"                 [--prohibit KEY[+KEY...]]\n"
		"                 [--insplit N] [-v]\n");
}

static int open_ep(struct lpg *g, const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		LOGE(g, "open %s: %s", path, strerror(errno));
	return fd;
}

#ifdef LP_GADGET_SIMDEV
static void simdev_free_cb(void *m)
{
	simdev_free(m);
}

/* --insplit N: usbmux IN packets in writes of N bytes, each ending the
 * host's transfer (a device that cuts its packets across transfers) */
static size_t lpg_insplit;
/* --prohibit KEYS: GetValue answers GetProhibited for these ('+'-separated) */
static const char *lpg_prohibit;

static int lpg_make_simdev(struct lpg *g, const char *profile, const char *udid, const char *state,
			   const char *hostile)
{
	struct simdev_opts o = {.udid = udid,
				.state_path = state,
				.hostile = hostile,
				.in_split = lpg_insplit,
				.prohibit = lpg_prohibit};
	struct tr_sim_link link;
	struct lp_errinfo e = {0};
	struct simdev *s;

	s = simdev_new(profile, &o, &g->clock, &g->log, &e);
	if (!s) {
		LOGE(g, "simulated iPhone (profile %s): %s", profile,
		     e.msg[0] ? e.msg : lp_strerror(e.code));
		return e.code ? e.code : LP_EINVAL;
	}
	g->ops = &devcore_model_ops;
	g->model = simdev_model(s);
	g->owner = s;
	g->model_free = simdev_free_cb;
	if (simdev_link(s, &link) == 0) {
		g->speed = link.speed;
		g->disconnect_after_ns = link.disconnect_at_ns;
		g->reenum_gap_ns = link.reenum_gap_ns;
		if (link.error_rate > 0)
			LOGW(g,
			     "profile %s: a %.0f%% transfer error rate cannot be put on a real bus; "
			     "ignored",
			     profile, link.error_rate * 100);
	}
	return 0;
}
#endif

static int make_model(struct lpg *g, const char *kind, const char *profile, const char *udid,
		      const char *state, const char *hostile)
{
	if (!strcmp(kind, "echo"))
		return lpg_make_echo(g);
#ifdef LP_GADGET_SIMDEV
	if (!strcmp(kind, "simdev"))
		return lpg_make_simdev(g, profile, udid, state, hostile);
#endif
	LOGE(g, "model '%s' is not built in", kind);
	return LP_EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ffs", required_argument, NULL, 'f'},
		{"iface", required_argument, NULL, 'i'},
		{"profile", required_argument, NULL, 'p'},
		{"udid", required_argument, NULL, 'u'},
		{"model", required_argument, NULL, 'm'},
		{"ready", required_argument, NULL, 'r'},
		{"udc-attr", required_argument, NULL, 'U'},
		{"state", required_argument, NULL, 's'},
		{"hostile", required_argument, NULL, 'H'},
		{"prohibit", required_argument, NULL, 'P'},
		{"insplit", required_argument, NULL, 'I'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct lpg g = {.ep0 = -1, .ep_in = -1, .ep_out = -1};
	const char *ffs = NULL, *profile = "healthy", *udid = NULL, *ready = NULL, *state = NULL,
		   *hostile = NULL;
#ifdef LP_GADGET_SIMDEV
	const char *kind = "simdev";
#else
	const char *kind = "echo";
#endif
	pthread_t t0, tin, tout;
	pthread_condattr_t ca;
	int c, rc = 3;

	g.log = (struct lp_log){.sink = lpg_sink, .max = LP_LOG_INFO};
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			ffs = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case 'u':
			udid = optarg;
			break;
		case 'm':
			kind = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'U':
			g.udc_attr = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'H':
			hostile = optarg;
			break;
		case 'P':
			lpg_prohibit = optarg;
			break;
		case 'I': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (end == optarg || *end || v == 0 || v > (1ul << 20)) {
				fprintf(stderr, "lp_gadget: --insplit wants 1..1048576 bytes\n");
				return 2;
			}
#ifdef LP_GADGET_SIMDEV
			lpg_insplit = (size_t)v;
#endif
		} break;
		case 'v':
			g.log.max = g.log.max < LP_LOG_TRACE ? g.log.max + 1 : LP_LOG_TRACE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'i':
			for (c = 0; c < (int)(sizeof(lpg_ifaces) / sizeof(lpg_ifaces[0])); c++)
				if (!strcmp(optarg, lpg_ifaces[c].name))
					break;
			if (c == (int)(sizeof(lpg_ifaces) / sizeof(lpg_ifaces[0]))) {
				usage(stderr);
				return 2;
			}
			g.iface = (enum lpg_iface)c;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ffs || optind != argc) {
		usage(stderr);
		return 2;
	}

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.kick, &ca);
	pthread_mutex_init(&g.lock, NULL);
	lp_clock_init_real(&g.clock);
	/* no SA_RESTART: a blocking FunctionFS read must return EINTR */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (g.iface == LPG_USBMUX && make_model(&g, kind, profile, udid, state, hostile))
		return 3;
	g.ep0 = open_ep(&g, ffs, "ep0");
	if (g.ep0 < 0 || lpg_write_descriptors(&g))
		goto out;
	if (g.iface == LPG_USBMUX) {
		g.ep_in = open_ep(&g, ffs, "ep1");
		g.ep_out = open_ep(&g, ffs, "ep2");
		if (g.ep_in < 0 || g.ep_out < 0)
			goto out;
	}
	if (ready && lpg_write_ready(&g, ready))
		goto out;
	LOGI(&g, "%s function ready on %s (model %s, profile %s)", lpg_ifaces[g.iface].name, ffs,
	     g.iface == LPG_USBMUX ? kind : "-", profile);

	pthread_create(&t0, NULL, lpg_ep0_thread, &g);
	if (g.iface == LPG_USBMUX) {
		pthread_create(&tout, NULL, lpg_out_thread, &g);
		pthread_create(&tin, NULL, lpg_in_thread, &g);
		lpg_run_timers(&g);
	} else {
		while (!lpg_stop)
			pause();
	}
	/* The worker threads may sit in a read() that only the host can end:
	 * take the lock so no model call is in flight, then exit. */
	pthread_mutex_lock(&g.lock);
	LOGI(&g, "stopping");
	if (g.model_free)
		g.model_free(g.owner);
	_exit(0);
out:
	if (g.model_free)
		g.model_free(g.owner);
	return rc;
}
