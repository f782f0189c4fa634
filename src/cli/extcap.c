/* extcap.c - linkprobe as a Wireshark extcap: live capture of an iPhone's
 * (or the simulator's) USB traffic straight into Wireshark.
 *
 * Wireshark runs every program in its extcap directory with --extcap-*
 * arguments (main.c routes any of them here) and parses what it prints:
 *
 *   --extcap-interfaces                  extcap {version=..}{display=..}
 *                                        interface {value=..}{display=..}  (one per line)
 *   --extcap-dlts --extcap-interface X   dlt {number=220}{name=..}{display=..}
 *   --extcap-config --extcap-interface X arg {number=N}{call=--opt}{display=..}{type=..}...
 *                                        value {arg=N}{value=..}{display=..}[{default=true}]
 *   --capture --extcap-interface X --fifo PATH [--opt value ...]
 *                                        pcapng into PATH until the command ends
 *                                        (or Wireshark stops us with SIGTERM)
 *
 * Interfaces: linkprobe-usb (a real device through libusb) and linkprobe-sim
 * (the simulated iPhone; the profile is a config option). The capture is
 * the same usbmon-record pcapng as --capture (LINKTYPE_USB_LINUX_MMAPPED,
 * stage comments, EscrowBag redacted unless --no-redact); the command's
 * report goes to stderr, which Wireshark shows if we fail. A verdict of
 * "problem found" is still a successful capture: exit 0.
 *
 * Reference: Wireshark extcap(4) and its developer's guide (grammar above,
 * element types as printed by the bundled randpktdump), doc/protocol.md 6.
 * Unknown --extcap-* options (newer Wireshark) are ignored. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/cli/app.h"
#include "src/base/lp_num.h"
#include "src/base/lp_str.h"
#include "src/device/simdev.h"

#define EXTCAP_IF_USB "linkprobe-usb"
#define EXTCAP_IF_SIM "linkprobe-sim"
#define EXTCAP_DLT 220 /* LINKTYPE_USB_LINUX_MMAPPED */

enum {
	XO_INTERFACES = 256,
	XO_INTERFACE,
	XO_DLTS,
	XO_CONFIG,
	XO_VERSION,
	XO_CAPTURE,
	XO_FIFO,
	XO_FILTER,
	XO_CONTROL_IN,
	XO_CONTROL_OUT,
	XO_COMMAND,
	XO_PROFILE,
	XO_DURATION,
	XO_TIMEOUT,
	XO_PAIR_DIR,
	XO_PAIR,
	XO_UDID,
	XO_NO_REDACT,
	XO_IGNORED,
};

struct extcap_args {
	bool interfaces, dlts, config, capture, pair, no_redact;
	const char *iface, *fifo, *command, *profile, *pair_dir, *udid;
	double duration_s, timeout_s;
};

static void print_interfaces(void)
{
	printf("extcap {version=%s}{display=linkprobe: iPhone USB link and pairing analyzer}\n",
	       LP_VERSION);
	printf("interface {value=" EXTCAP_IF_USB
	       "}{display=linkprobe: iPhone over USB (libusb)}\n");
	printf("interface {value=" EXTCAP_IF_SIM "}{display=linkprobe: simulated iPhone}\n");
}

static void print_config(bool sim)
{
	int n = 0;

	printf("arg {number=%d}{call=--command}{display=Command}{type=selector}"
	       "{tooltip=What linkprobe does with the device while capturing}\n",
	       n);
	printf("value {arg=%d}{value=trust}{display=trust: pairing stages and session TLS}{default=true}\n",
	       n);
	printf("value {arg=%d}{value=cable-test}{display=cable-test: link round trips}\n", n);
	n++;
	if (sim) {
		printf("arg {number=%d}{call=--profile}{display=Simulated profile}{type=selector}"
		       "{tooltip=Behaviour of the simulated iPhone}\n",
		       n);
		for (size_t i = 0; i < simdev_profile_count(); i++) {
			const char *name, *summary;

			if (simdev_profile_at(i, &name, &summary) != 0)
				continue;
			printf("value {arg=%d}{value=%s}{display=%s}%s\n", n, name, name,
			       strcmp(name, "healthy") == 0 ? "{default=true}" : "");
		}
		n++;
	} else {
		printf("arg {number=%d}{call=--udid}{display=Device UDID}{type=string}"
		       "{tooltip=Pick this device when several are connected}{required=false}\n",
		       n++);
	}
	printf("arg {number=%d}{call=--duration}{display=Cable test length (s)}{type=double}"
	       "{range=0.1,86400}{default=10}{tooltip=How long cable-test measures}\n",
	       n++);
	printf("arg {number=%d}{call=--timeout}{display=Trust dialog wait (s)}{type=double}"
	       "{range=0,86400}{default=120}{tooltip=How long trust waits for the Trust tap}\n",
	       n++);
	printf("arg {number=%d}{call=--pair-dir}{display=Pair record directory}{type=string}"
	       "{tooltip=%s}{required=false}\n",
	       n++,
	       sim ? "Default: ~/.local/state/linkprobe/extcap-pairs (pairs every time)"
		   : "Default: /var/lib/lockdown");
	printf("arg {number=%d}{call=--pair}{display=Pair even if a record exists}{type=boolflag}"
	       "{default=false}\n",
	       n++);
	printf("arg {number=%d}{call=--no-redact}{display=Keep EscrowBag and private keys}"
	       "{type=boolflag}{default=false}{tooltip=Captures redact secrets unless this is set}\n",
	       n++);
}

static void extcap_log(void *ud, enum lp_log_level level, const char *msg)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};

	char safe[1024];

	(void)ud;
	/* log messages may quote device or host strings: one place keeps them safe */
	lp_sanitize_str(safe, sizeof(safe), msg);
	fprintf(stderr, "linkprobe: %s: %s\n", names[level], safe);
}

/* Pair records of sim captures: $HOME/.local/state/linkprobe/extcap-pairs
 * (beside the simulated device's own state), created as needed. */
static int sim_pair_dir(char *out, size_t n)
{
	const char *home = app_home();
	static const char *const parts[] = {"/.local", "/.local/state", "/.local/state/linkprobe",
					    "/.local/state/linkprobe/extcap-pairs"};

	/* never a shared directory such as /tmp: the records hold private keys */
	if (!home) {
		errno = ENOENT;
		snprintf(out, n, "$HOME/.local/state/linkprobe/extcap-pairs (no home directory)");
		return -1;
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(out, n, "%s%s", home, parts[i]);
		if (mkdir(out, 0700) != 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int run_capture(const struct extcap_args *a, bool sim)
{
	struct lp_app app;
	char spec[128], pairs[1024];
	int rc;

	if (!a->fifo) {
		fprintf(stderr, "linkprobe: extcap: --capture needs --fifo PATH\n");
		return EXIT_USAGE;
	}
	if (strcmp(a->command, "trust") != 0 && strcmp(a->command, "cable-test") != 0) {
		fprintf(stderr,
			"linkprobe: extcap: --command wants trust or cable-test, got '%s'\n",
			a->command);
		return EXIT_USAGE;
	}
	memset(&app, 0, sizeof(app));
	app.out = stderr; /* the report: Wireshark shows stderr when a capture fails */
	app.capture_path = a->fifo;
	app.no_redact = a->no_redact;
	app.duration_s = a->duration_s;
	app.timeout_s = a->timeout_s;
	app.pair = a->pair;
	app.udid = a->udid;
	app.pair_dir = a->pair_dir ? a->pair_dir : getenv("LINKPROBE_PAIR_DIR");
	if (sim) {
		snprintf(spec, sizeof(spec), "sim:%s", a->profile ? a->profile : "healthy");
		app.device_spec = spec;
		if (!app.pair_dir && strcmp(a->command, "trust") == 0) {
			/* a fresh Pair every time, so the capture shows pairing */
			if (sim_pair_dir(pairs, sizeof(pairs))) {
				fprintf(stderr, "linkprobe: extcap: cannot create %s: %s\n", pairs,
					strerror(errno));
				return EXIT_RUNTIME;
			}
			app.pair_dir = pairs;
			app.pair = true;
		}
	} else {
		app.device_spec = "libusb";
	}
	app.log.sink = extcap_log;
	app.log.max = LP_LOG_WARN;
	/* a reader that goes away must end the capture with an error, not a signal */
	signal(SIGPIPE, SIG_IGN);
	rc = strcmp(a->command, "trust") == 0 ? cmd_trust(&app) : cmd_cable_test(&app);
	return rc == EXIT_PROBLEM ? EXIT_GOOD : rc;
}

static int parse_double(const char *opt, const char *s, double lo, double *out)
{
	if (lp_parse_decimal(s, lo, 86400, out)) {
		fprintf(stderr, "linkprobe: extcap: %s wants seconds (%g..86400), got '%s'\n", opt,
			lo, s);
		return -1;
	}
	return 0;
}

int extcap_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"extcap-interfaces", no_argument, NULL, XO_INTERFACES},
		{"extcap-interface", required_argument, NULL, XO_INTERFACE},
		{"extcap-dlts", no_argument, NULL, XO_DLTS},
		{"extcap-config", no_argument, NULL, XO_CONFIG},
		{"extcap-version", optional_argument, NULL, XO_VERSION},
		{"capture", no_argument, NULL, XO_CAPTURE},
		{"fifo", required_argument, NULL, XO_FIFO},
		{"extcap-capture-filter", required_argument, NULL, XO_FILTER},
		{"extcap-control-in", required_argument, NULL, XO_CONTROL_IN},
		{"extcap-control-out", required_argument, NULL, XO_CONTROL_OUT},
		{"extcap-reload-option", required_argument, NULL, XO_IGNORED},
		{"command", required_argument, NULL, XO_COMMAND},
		{"profile", required_argument, NULL, XO_PROFILE},
		{"duration", required_argument, NULL, XO_DURATION},
		{"timeout", required_argument, NULL, XO_TIMEOUT},
		{"pair-dir", required_argument, NULL, XO_PAIR_DIR},
		{"pair", no_argument, NULL, XO_PAIR},
		{"udid", required_argument, NULL, XO_UDID},
		{"no-redact", no_argument, NULL, XO_NO_REDACT},
		{NULL, 0, NULL, 0},
	};
	struct extcap_args a = {.command = "trust", .duration_s = 10, .timeout_s = 120};
	bool sim;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case XO_INTERFACES:
			a.interfaces = true;
			break;
		case XO_INTERFACE:
			a.iface = optarg;
			break;
		case XO_DLTS:
			a.dlts = true;
			break;
		case XO_CONFIG:
			a.config = true;
			break;
		case XO_CAPTURE:
			a.capture = true;
			break;
		case XO_FIFO:
			a.fifo = optarg;
			break;
		case XO_COMMAND:
			a.command = optarg;
			break;
		case XO_PROFILE:
			a.profile = optarg;
			break;
		case XO_DURATION:
			if (parse_double("--duration", optarg, 0.1, &a.duration_s))
				return EXIT_USAGE;
			break;
		case XO_TIMEOUT:
			if (parse_double("--timeout", optarg, 0, &a.timeout_s))
				return EXIT_USAGE;
			break;
		case XO_PAIR_DIR:
			a.pair_dir = *optarg ? optarg : NULL;
			break;
		case XO_PAIR:
			a.pair = true;
			break;
		case XO_UDID:
			a.udid = *optarg ? optarg : NULL;
			break;
		case XO_NO_REDACT:
			a.no_redact = true;
			break;
		default:
			break; /* filter, control pipes, newer options: not used */
		}
	}
	if (a.interfaces) {
		print_interfaces();
		return EXIT_GOOD;
	}
	if (!a.iface) {
		fprintf(stderr, "linkprobe: extcap: --extcap-interface " EXTCAP_IF_USB
				"|" EXTCAP_IF_SIM " needed (or --extcap-interfaces)\n");
		return EXIT_USAGE;
	}
	sim = strcmp(a.iface, EXTCAP_IF_SIM) == 0;
	if (!sim && strcmp(a.iface, EXTCAP_IF_USB) != 0) {
		fprintf(stderr, "linkprobe: extcap: unknown interface '%s'\n", a.iface);
		return EXIT_USAGE;
	}
	if (a.dlts) {
		printf("dlt {number=%d}{name=USB_LINUX_MMAPPED}{display=USB with Linux usbmon header (%s)}\n",
		       EXTCAP_DLT, sim ? "simulated iPhone" : "libusb");
		return EXIT_GOOD;
	}
	if (a.config) {
		print_config(sim);
		return EXIT_GOOD;
	}
	if (a.capture)
		return run_capture(&a, sim);
	fprintf(stderr,
		"linkprobe: extcap: nothing to do (--extcap-dlts, --extcap-config or --capture)\n");
	return EXIT_USAGE;
}
