/* main.c - linkprobe's command line: global options, the command table,
 * exit codes. See README.md for every command and option. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/app.h"
#include "src/base/lp_num.h"
#include "src/base/lp_str.h"

struct cmd {
	const char *name;
	int (*fn)(struct lp_app *);
	const char *summary;
};

static const struct cmd commands[] = {
	{"list", cmd_list, "list connected Apple devices: mode, speed, UDID, configurations, usbmux"},
	{"cable-test", cmd_cable_test, "measure the link: enumeration, control and usbmux round trips, errors, speed"},
	{"trust", cmd_trust, "walk the pairing stages (usbmux, lockdown, Pair, session TLS, service) and say where it stalls"},
	{"sim", cmd_sim, "simulated devices: `linkprobe sim --list` prints the profiles"},
	{"analyze", cmd_analyze, "read a capture (pcap/pcapng: usbmon, USBPcap, usbmuxd socket) and give the same stages and verdict"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: linkprobe [options] <command>\n"
		"       linkprobe --cable-test [options]\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\noptions:\n"
		"  --device D            libusb (default) | sim[:PROFILE][,clock=virtual][,seed=N]\n"
		"                        | replay:FILE   (env LINKPROBE_DEVICE)\n"
		"  --udid UDID           pick this device when several are connected\n"
		"  --json                one JSON object on stdout\n"
		"  --report FILE.html    trust, cable-test, analyze: a self-contained HTML report\n"
		"  --capture FILE        record every USB transfer (pcapng; .pcap = classic pcap)\n"
		"  --capture-streams F   record usbmux connections as synthetic TCP (pcapng)\n"
		"  --capture-bus FILE    sim: record the packets the simulated USB 2.0 bus carries\n"
		"                        (link type 295/294, as a hardware bus analyzer would)\n"
		"  --tls-keys            put TLS session keys into the capture (Decryption Secrets Block)\n"
		"  --keylog FILE         write TLS session keys in NSS key-log format\n"
		"  --no-redact           keep EscrowBag/private keys in captures (default: redacted)\n"
		"  --pair-dir DIR        pair records (env LINKPROBE_PAIR_DIR; default /var/lib/lockdown)\n"
		"  --pair                trust: pair even if a record exists\n"
		"  --timeout SECONDS     trust: how long to wait for the Trust dialog (default 30)\n"
		"  --duration SECONDS    cable test length (default 2)\n"
		"  --list                sim: list simulated-device profiles\n"
		"  --usbmuxd-port N      analyze: TCP port carrying a relayed usbmuxd socket\n"
		"  --via-usbmuxd         list/trust through the usbmuxd daemon when it owns the device\n"
		"                        (env USBMUXD_SOCKET_ADDRESS=UNIX:/path|host:port; records are the daemon's)\n"
		"  --no-color            no colour (also NO_COLOR env; off when not a terminal)\n"
		"  -q, --quiet           print only the verdict line (prompts still reach stderr)\n"
		"  -v, --verbose         -v protocol milestones, -vv every USB transfer, -vvv payload hex\n"
		"                        dumps (secrets redacted) on stderr; default folds repeated warnings\n"
		"  -h, --help            this help\n"
		"  -V, --version         versions of linkprobe and the libraries it runs with\n"
		"\nexit codes: 0 good verdict, 1 problem found, 2 usage error, 3 runtime error\n");
}

static int parse_seconds(const char *s, double *out)
{
	return lp_parse_decimal(s, 0, 86400, out) ? -1 : 0;
}

enum {
	OPT_DEVICE = 256, OPT_JSON, OPT_CAPTURE, OPT_CAPTURE_STREAMS, OPT_CAPTURE_BUS, OPT_TLS_KEYS, OPT_KEYLOG,
	OPT_NO_REDACT, OPT_PAIR_DIR, OPT_PAIR, OPT_TIMEOUT, OPT_DURATION, OPT_LIST, OPT_NO_COLOR,
	OPT_CABLE_TEST, OPT_VERSION, OPT_UDID, OPT_USBMUXD_PORT, OPT_VIA_USBMUXD, OPT_REPORT,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, OPT_DEVICE},
		{"udid", required_argument, NULL, OPT_UDID},
		{"json", no_argument, NULL, OPT_JSON},
		{"capture", required_argument, NULL, OPT_CAPTURE},
		{"capture-streams", required_argument, NULL, OPT_CAPTURE_STREAMS},
		{"capture-bus", required_argument, NULL, OPT_CAPTURE_BUS},
		{"tls-keys", no_argument, NULL, OPT_TLS_KEYS},
		{"keylog", required_argument, NULL, OPT_KEYLOG},
		{"no-redact", no_argument, NULL, OPT_NO_REDACT},
		{"pair-dir", required_argument, NULL, OPT_PAIR_DIR},
		{"pair", no_argument, NULL, OPT_PAIR},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"list", no_argument, NULL, OPT_LIST},
		{"no-color", no_argument, NULL, OPT_NO_COLOR},
		{"cable-test", no_argument, NULL, OPT_CABLE_TEST},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{"usbmuxd-port", required_argument, NULL, OPT_USBMUXD_PORT},
		{"via-usbmuxd", no_argument, NULL, OPT_VIA_USBMUXD},
		{"report", required_argument, NULL, OPT_REPORT},
		{NULL, 0, NULL, 0},
	};
	struct lp_app app;
	const char *cmdname = NULL;
	bool no_color = false;
	int c;

	/* Wireshark's extcap protocol has its own argument grammar. */
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--extcap-", 9) == 0)
			return extcap_main(argc, argv);

	memset(&app, 0, sizeof(app));
	app.out = stdout;
	app.timeout_s = 30;
	app.duration_s = 2;
	app.device_spec = getenv("LINKPROBE_DEVICE");
	app.pair_dir = getenv("LINKPROBE_PAIR_DIR");

	opterr = 0;
	while ((c = getopt_long(argc, argv, "vhqV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_DEVICE: app.device_spec = optarg; break;
		case OPT_UDID: app.udid = optarg; break;
		case OPT_JSON: app.json = true; break;
		case OPT_CAPTURE: app.capture_path = optarg; break;
		case OPT_CAPTURE_STREAMS: app.capture_streams_path = optarg; break;
		case OPT_CAPTURE_BUS: app.capture_bus_path = optarg; break;
		case OPT_TLS_KEYS: app.tls_keys = true; break;
		case OPT_KEYLOG: app.keylog_path = optarg; break;
		case OPT_NO_REDACT: app.no_redact = true; break;
		case OPT_PAIR_DIR: app.pair_dir = optarg; break;
		case OPT_PAIR: app.pair = true; break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &app.timeout_s)) {
				fprintf(stderr, "linkprobe: --timeout wants seconds (0..86400), got '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_DURATION:
			if (parse_seconds(optarg, &app.duration_s) || app.duration_s < 0.1) {
				fprintf(stderr, "linkprobe: --duration wants seconds (0.1..86400), got '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_LIST: app.list_profiles = true; break;
		case OPT_USBMUXD_PORT: {
			uint64_t v;
			if (lp_parse_uint(optarg, 1, 65535, &v)) {
				fprintf(stderr, "linkprobe: --usbmuxd-port wants 1..65535, got '%s'\n", optarg);
				return EXIT_USAGE;
			}
			app.usbmuxd_port = (int)v;
			break;
		}
		case OPT_VIA_USBMUXD: app.via_usbmuxd = true; break;
		case OPT_REPORT: app.report_path = optarg; break;
		case OPT_NO_COLOR: no_color = true; break;
		case OPT_CABLE_TEST: cmdname = "cable-test"; break;
		case 'v': app.verbose++; break;
		case 'q': app.quiet = true; break;
		case 'h': usage(stdout); return EXIT_GOOD;
		case 'V':
		case OPT_VERSION: out_version(stdout); return EXIT_GOOD;
		case '?':
		default:
			if (optopt && optopt < 256)
				fprintf(stderr, "linkprobe: unknown or incomplete option '-%c'\n", optopt);
			else
				fprintf(stderr, "linkprobe: unknown or incomplete option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (cmdname && strcmp(argv[optind], "cable-test") != 0) {
			fprintf(stderr, "linkprobe: --cable-test and '%s' are two commands; give one\n", argv[optind]);
			return EXIT_USAGE;
		}
		cmdname = argv[optind++];
	}
	if (cmdname && strcmp(cmdname, "analyze") == 0 && optind < argc)
		app.file = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "linkprobe: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!cmdname) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(cmdname, "help") == 0) {
		usage(stdout);
		return EXIT_GOOD;
	}
	{
		struct lp_errinfo e = {0};

		/* every option checked before any output file is created or truncated */
		if (app_check_options(&app, &e)) {
			fprintf(stderr, "linkprobe: %s\n", e.msg);
			return EXIT_USAGE;
		}
	}
	app.color = out_use_color(no_color, app.json);
	app.log.sink = out_log_sink;
	app.log.ud = &app;
	app.log.max = app.verbose >= 3 ? LP_LOG_TRACE : app.verbose == 2 ? LP_LOG_DEBUG
		    : app.verbose == 1 ? LP_LOG_INFO : app.quiet ? LP_LOG_ERROR : LP_LOG_WARN;
	if (app.via_usbmuxd && strcmp(cmdname, "trust") != 0 && strcmp(cmdname, "list") != 0) {
		fprintf(stderr, "linkprobe: --via-usbmuxd works with list and trust, not '%s'\n", cmdname);
		return EXIT_USAGE;
	}
	if (app.via_usbmuxd && (app.capture_path || app.capture_streams_path || app.capture_bus_path || app.keylog_path)) {
		fprintf(stderr, "linkprobe: --via-usbmuxd: the daemon owns the USB traffic, so there is nothing "
				"to capture (drop --capture/--capture-streams/--keylog)\n");
		return EXIT_USAGE;
	}
	if (app.report_path && strcmp(cmdname, "trust") != 0 && strcmp(cmdname, "cable-test") != 0 &&
	    strcmp(cmdname, "analyze") != 0) {
		fprintf(stderr, "linkprobe: --report works with trust, cable-test and analyze, not '%s'\n", cmdname);
		return EXIT_USAGE;
	}
	if (app.via_usbmuxd)
		app.device_spec = "usbmuxd"; /* what the report header names */
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmdname, commands[i].name) == 0)
			return commands[i].fn(&app);
	fprintf(stderr, "linkprobe: unknown command '%s'\n", cmdname);
	usage(stderr);
	return EXIT_USAGE;
}
