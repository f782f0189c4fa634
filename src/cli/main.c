/* main.c - linkprobe's command line: the command table, one option table
 * (which commands use each option, and its help line), per-command help,
 * usage errors and exit codes. See README.md for every command and option.
 *
 * Options may come before or after the command (`linkprobe --json list`,
 * `linkprobe list --json`). After parsing, every option given is checked
 * against the command: one the command does not use is a usage error that
 * names it. Every usage error exits 2; under --json it is also printed as
 * {"error": "...", "exit_code": 2} on stdout. */
#include <getopt.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/cli/app.h"
#include "src/base/lp_num.h"
#include "src/base/lp_str.h"

/* Commands, as bits of an option's `cmds` mask. */
enum {
	CMD_LIST = 1 << 0,
	CMD_CABLE = 1 << 1,
	CMD_TRUST = 1 << 2,
	CMD_SIM = 1 << 3,
	CMD_ANALYZE = 1 << 4,
	CMD_WATCH = 1 << 5,
	CMD_DEVICE = CMD_LIST | CMD_CABLE | CMD_TRUST, /* commands that open a device */
	CMD_ALL = CMD_DEVICE | CMD_SIM | CMD_ANALYZE | CMD_WATCH,
};

struct cmd {
	const char *name;
	unsigned bit;
	int (*fn)(struct lp_app *);
	const char *synopsis;
	const char *summary;
};

static const struct cmd commands[] = {
	{"list", CMD_LIST, cmd_list, "linkprobe list [options]",
	 "list connected Apple devices: mode, speed, UDID, configurations, usbmux"},
	{"cable-test", CMD_CABLE, cmd_cable_test,
	 "linkprobe --cable-test [options]  (or: linkprobe cable-test)",
	 "measure the link: enumeration, control and usbmux round trips, errors, speed"},
	{"trust", CMD_TRUST, cmd_trust, "linkprobe trust [--pair] [options]",
	 "walk the pairing stages (usbmux, lockdown, Pair, session TLS, service) and say where it stalls"},
	{"sim", CMD_SIM, cmd_sim, "linkprobe sim --list [--json]",
	 "simulated devices: `linkprobe sim --list` prints the profiles"},
	{"watch", CMD_WATCH, cmd_watch, "linkprobe watch [--metrics FILE] [options]",
	 "follow every Apple device until stopped: hotplug, speed, re-enumerations, probes (JSON lines)"},
	{"analyze", CMD_ANALYZE, cmd_analyze, "linkprobe analyze FILE [options]",
	 "read a capture (pcap/pcapng: usbmon, USBPcap, macOS, usbmuxd socket) and give the same stages and verdict"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

enum {
	OPT_DEVICE = 256,
	OPT_JSON,
	OPT_CAPTURE,
	OPT_CAPTURE_STREAMS,
	OPT_CAPTURE_BUS,
	OPT_TLS_KEYS,
	OPT_KEYLOG,
	OPT_NO_REDACT,
	OPT_PAIR_DIR,
	OPT_PAIR,
	OPT_TIMEOUT,
	OPT_DURATION,
	OPT_LIST,
	OPT_NO_COLOR,
	OPT_CABLE_TEST,
	OPT_VERSION,
	OPT_UDID,
	OPT_USBMUXD_PORT,
	OPT_VIA_USBMUXD,
	OPT_DIRECT,
	OPT_REPORT,
	OPT_THROUGHPUT,
	OPT_ALL,
	OPT_METRICS,
	OPT_INTERVAL,
	OPT_VERBOSE = 'v',
	OPT_HELP = 'h',
	OPT_QUIET = 'q',
};

/* One row per option: getopt's table and every help text are made from it. */
struct opt_def {
	const char *name;
	int has_arg;
	int id;
	const char *arg;  /* argument name in help, NULL for flags */
	unsigned cmds;	  /* commands that use it */
	const char *help; /* may hold "\n" for continuation lines */
};

static const struct opt_def optdefs[] = {
	{"device", required_argument, OPT_DEVICE, "D", CMD_DEVICE | CMD_WATCH,
	 "libusb (default) | sim[:PROFILE][,clock=virtual][,seed=N]\n"
	 "| sim:PROFILE*N+PROFILE*M...[,k=v] | replay:FILE   (env LINKPROBE_DEVICE)"},
	{"udid", required_argument, OPT_UDID, "UDID", CMD_CABLE | CMD_TRUST,
	 "pick this device when several are connected"},
	{"all", no_argument, OPT_ALL, NULL, CMD_CABLE,
	 "every device at once (one event loop), one line and verdict each"},
	{"via-usbmuxd", no_argument, OPT_VIA_USBMUXD, NULL, CMD_LIST | CMD_TRUST,
	 "go through the usbmuxd daemon when it owns the device\n"
	 "(env USBMUXD_SOCKET_ADDRESS=UNIX:/path|host:port; records are the daemon's)"},
	{"direct", no_argument, OPT_DIRECT, NULL, CMD_CABLE | CMD_TRUST,
	 "only the direct USB path: no going through usbmuxd when it holds\nthe device (DEVICE_BUSY then)"},
	{"pair", no_argument, OPT_PAIR, NULL, CMD_TRUST, "pair even if a record exists"},
	{"pair-dir", required_argument, OPT_PAIR_DIR, "DIR", CMD_DEVICE | CMD_WATCH,
	 "pair records (env LINKPROBE_PAIR_DIR; default /var/lib/lockdown); with\n"
	 "--device sim also where the simulated iPhone keeps its key and pairings"},
	{"timeout", required_argument, OPT_TIMEOUT, "SECONDS", CMD_TRUST,
	 "how long to wait for the Trust dialog (default 120: it can take ~30 s\nto appear, then the passcode is typed)"},
	{"duration", required_argument, OPT_DURATION, "SECONDS", CMD_CABLE | CMD_WATCH,
	 "how long to measure (default 2; watch: until stopped)"},
	{"metrics", required_argument, OPT_METRICS, "FILE", CMD_WATCH,
	 "watch: keep a Prometheus text file (node_exporter textfile collector)"},
	{"interval", required_argument, OPT_INTERVAL, "SECONDS", CMD_WATCH,
	 "watch: probe each device this often (default 5)"},
	{"throughput", optional_argument, OPT_THROUGHPUT, "[=MiB]", CMD_CABLE,
	 "then write a file to the device and read it back (com.apple.afc;\n"
	 "needs a pair record): MB/s each way. Default size ~1 s of the link"},
	{"capture", required_argument, OPT_CAPTURE, "FILE", CMD_DEVICE,
	 "record every USB transfer (pcapng; .pcap = classic pcap)"},
	{"capture-streams", required_argument, OPT_CAPTURE_STREAMS, "FILE", CMD_DEVICE,
	 "record usbmux connections as synthetic TCP (pcapng)"},
	{"capture-bus", required_argument, OPT_CAPTURE_BUS, "FILE", CMD_DEVICE,
	 "sim: record the packets the simulated USB 2.0 bus carries\n"
	 "(link type 295/294, as a hardware bus analyzer would)"},
	{"tls-keys", no_argument, OPT_TLS_KEYS, NULL, CMD_TRUST,
	 "put TLS session keys into the capture (Decryption Secrets Block)"},
	{"keylog", required_argument, OPT_KEYLOG, "FILE", CMD_TRUST,
	 "write TLS session keys in NSS key-log format"},
	{"no-redact", no_argument, OPT_NO_REDACT, NULL, CMD_TRUST,
	 "keep EscrowBag/private keys in captures (default: redacted)"},
	{"list", no_argument, OPT_LIST, NULL, CMD_SIM, "list the simulated-device profiles"},
	{"usbmuxd-port", required_argument, OPT_USBMUXD_PORT, "N", CMD_ANALYZE,
	 "TCP port carrying a relayed usbmuxd socket (default: detect)"},
	{"json", no_argument, OPT_JSON, NULL, CMD_ALL, "one JSON object on stdout"},
	{"report", required_argument, OPT_REPORT, "FILE.html", CMD_CABLE | CMD_TRUST | CMD_ANALYZE,
	 "a self-contained HTML report"},
	{"no-color", no_argument, OPT_NO_COLOR, NULL, CMD_ALL & ~CMD_SIM,
	 "no colour (also NO_COLOR env; off when not a terminal)"},
	{"quiet", no_argument, OPT_QUIET, NULL, CMD_ALL & ~CMD_SIM,
	 "print only the verdict line (prompts still reach stderr)"},
	{"verbose", no_argument, OPT_VERBOSE, NULL, CMD_ALL & ~CMD_SIM,
	 "-v protocol milestones, -vv every USB transfer, -vvv payload hex\n"
	 "dumps (secrets redacted) on stderr; default folds repeated warnings"},
	{"cable-test", no_argument, OPT_CABLE_TEST, NULL, CMD_CABLE, NULL},
	{"help", no_argument, OPT_HELP, NULL, CMD_ALL, "this help"},
	{"version", no_argument, OPT_VERSION, NULL, 0, NULL},
};
#define NOPTS (sizeof(optdefs) / sizeof(optdefs[0]))

static const struct opt_def *optdef(int id)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (optdefs[i].id == id)
			return &optdefs[i];
	return NULL;
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* Help lines for the options `mask` uses; with `tag`, each line names the
 * commands an option belongs to unless every command takes it. */
static void print_options(FILE *f, unsigned mask, bool tag)
{
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt_def *o = &optdefs[i];
		char head[64], cmds[64] = "";
		const char *p, *nl;
		size_t off = 0;

		if (!o->help || !(o->cmds & mask))
			continue;
		if (o->id < 256)
			snprintf(head, sizeof(head), "-%c, --%s", o->id, o->name);
		else
			snprintf(head, sizeof(head), "--%s%s%s", o->name,
				 o->arg && o->arg[0] != '[' ? " " : "", o->arg ? o->arg : "");
		if (tag && o->cmds != CMD_ALL) {
			for (size_t k = 0; k < NCOMMANDS; k++)
				if (o->cmds & commands[k].bit)
					off += (size_t)snprintf(cmds + off, sizeof(cmds) - off,
								"%s%s", off ? "," : " [",
								commands[k].name);
			snprintf(cmds + off, sizeof(cmds) - off, "]");
		}
		p = o->help;
		nl = strchr(p, '\n');
		fprintf(f, "  %-24s %.*s%s\n", head, nl ? (int)(nl - p) : (int)strlen(p), p,
			nl ? "" : cmds);
		while (nl) {
			p = nl + 1;
			nl = strchr(p, '\n');
			fprintf(f, "  %-24s %.*s%s\n", "", nl ? (int)(nl - p) : (int)strlen(p), p,
				nl ? "" : cmds);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: linkprobe <command> [options]\n"
		   "       linkprobe --cable-test [options]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\noptions ([the commands that take them]; `linkprobe COMMAND --help` for one command):\n");
	print_options(f, CMD_ALL, true);
	fprintf(f, "  %-24s %s\n", "-V, --version",
		"versions of linkprobe and the libraries it runs with");
	fprintf(f,
		"\nexit codes: 0 good verdict, 1 problem found, 2 usage error, 3 runtime error\n");
}

static void cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "usage: %s\n\n%s\n\noptions:\n", c->synopsis, c->summary);
	print_options(f, c->bit, false);
	fprintf(f,
		"\nexit codes: 0 good verdict, 1 problem found, 2 usage error, 3 runtime error\n");
}

/* A usage error: one line on stderr (and the JSON error object under
 * --json), exit code 2. `hint` names the help to read, may be NULL. */
static int usage_error(bool json, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int usage_error(bool json, const char *hint, const char *fmt, ...)
{
	char msg[512], safe[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lp_sanitize_str(safe, sizeof(safe), msg); /* it quotes the command line */
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(safe));
		json_object_object_add(o, "exit_code", json_object_new_int(EXIT_USAGE));
		printf("%s\n",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	fprintf(stderr, "linkprobe: %s\n", safe);
	fprintf(stderr, "linkprobe: see `%s`\n", hint ? hint : "linkprobe --help");
	return EXIT_USAGE;
}

static int parse_seconds(const char *s, double min, double *out)
{
	/* strict: no nan/inf/hex/trailing junk (lp_num.h) */
	return lp_parse_decimal(s, min, 86400, out) ? -1 : 0;
}

static int parse_port(const char *s, int *out)
{
	uint64_t v;

	if (lp_parse_uint(s, 1, 65535, &v))
		return -1;
	*out = (int)v;
	return 0;
}

/* --json anywhere before "--": usage errors found while parsing are then
 * already reported in JSON. */
static bool wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct option lopts[NOPTS + 1];
	bool seen[NOPTS] = {false};
	struct lp_app app;
	const struct cmd *cmd = NULL;
	const char *cmdname = NULL;
	bool no_color = false, help = false, json;
	char hint[64];
	int c;

	/* Wireshark's extcap protocol has its own argument grammar. */
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--extcap-", 9) == 0)
			return extcap_main(argc, argv);

	memset(&app, 0, sizeof(app));
	app.out = stdout;
	app.timeout_s = 120; /* iOS 17-26: the dialog can take 20-30 s to appear */
	app.duration_s = 2;
	app.interval_s = 5;
	app.device_spec = getenv("LINKPROBE_DEVICE");
	app.pair_dir = getenv("LINKPROBE_PAIR_DIR");
	json = wants_json(argc, argv);

	memset(lopts, 0, sizeof(lopts));
	for (size_t i = 0; i < NOPTS; i++)
		lopts[i] = (struct option){optdefs[i].name, optdefs[i].has_arg, NULL,
					   optdefs[i].id};

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vhqV", lopts, NULL)) != -1) {
		const struct opt_def *d = optdef(c);

		if (d)
			seen[d - optdefs] = true;
		switch (c) {
		case OPT_DEVICE:
			app.device_spec = optarg;
			break;
		case OPT_UDID:
			app.udid = optarg;
			break;
		case OPT_ALL:
			app.all = true;
			break;
		case OPT_METRICS:
			app.metrics_path = optarg;
			break;
		case OPT_INTERVAL:
			if (parse_seconds(optarg, 0.1, &app.interval_s))
				return usage_error(
					json, NULL,
					"option '--interval' wants seconds (0.1..86400), got '%s'",
					optarg);
			break;
		case OPT_JSON:
			app.json = true;
			break;
		case OPT_REPORT:
			app.report_path = optarg;
			break;
		case OPT_CAPTURE:
			app.capture_path = optarg;
			break;
		case OPT_CAPTURE_STREAMS:
			app.capture_streams_path = optarg;
			break;
		case OPT_CAPTURE_BUS:
			app.capture_bus_path = optarg;
			break;
		case OPT_TLS_KEYS:
			app.tls_keys = true;
			break;
		case OPT_KEYLOG:
			app.keylog_path = optarg;
			break;
		case OPT_NO_REDACT:
			app.no_redact = true;
			break;
		case OPT_PAIR_DIR:
			app.pair_dir = optarg;
			break;
		case OPT_PAIR:
			app.pair = true;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, 0, &app.timeout_s))
				return usage_error(
					json, NULL,
					"option '--timeout' wants seconds (0..86400), got '%s'",
					optarg);
			break;
		case OPT_DURATION:
			if (parse_seconds(optarg, 0.1, &app.duration_s))
				return usage_error(
					json, NULL,
					"option '--duration' wants seconds (0.1..86400), got '%s'",
					optarg);
			break;
		case OPT_THROUGHPUT:
			app.throughput = true;
			if (optarg) {
				uint64_t mib;
				if (lp_parse_uint(optarg, 1, 1024, &mib))
					return usage_error(
						json, NULL,
						"option '--throughput' wants MiB (1..1024), got '%s'",
						optarg);
				app.throughput_bytes = mib << 20;
			}
			break;
		case OPT_LIST:
			app.list_profiles = true;
			break;
		case OPT_USBMUXD_PORT:
			if (parse_port(optarg, &app.usbmuxd_port))
				return usage_error(
					json, NULL,
					"option '--usbmuxd-port' wants a TCP port (1..65535), got '%s'",
					optarg);
			break;
		case OPT_VIA_USBMUXD:
			app.via_usbmuxd = true;
			break;
		case OPT_DIRECT:
			app.direct = true;
			break;
		case OPT_NO_COLOR:
			no_color = true;
			break;
		case OPT_CABLE_TEST:
			cmdname = "cable-test";
			break;
		case OPT_VERBOSE:
			app.verbose++;
			break;
		case OPT_QUIET:
			app.quiet = true;
			break;
		case OPT_HELP:
			help = true;
			break;
		case 'V':
		case OPT_VERSION:
			out_version(stdout);
			return EXIT_GOOD;
		case ':':
			d = optdef(optopt);
			return usage_error(json, NULL, "option '--%s' requires an argument",
					   d ? d->name : "?");
		case '?':
		default:
			d = optdef(optopt);
			if (d && strncmp(argv[optind - 1], "--", 2) == 0)
				return usage_error(json, NULL, "option '--%s' takes no argument",
						   d->name);
			if (optopt && optopt < 256)
				return usage_error(json, NULL, "unknown option '-%c'", optopt);
			return usage_error(json, NULL, "unknown or ambiguous option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (cmdname && strcmp(argv[optind], "cable-test") != 0)
			return usage_error(json, NULL,
					   "--cable-test and '%s' are two commands; give one",
					   argv[optind]);
		cmdname = argv[optind++];
	}
	if (cmdname && strcmp(cmdname, "help") == 0) {
		/* `linkprobe help [COMMAND]` */
		if (optind < argc) {
			if (!(cmd = find_cmd(argv[optind])))
				return usage_error(json, NULL, "unknown command '%s'",
						   argv[optind]);
			cmd_usage(stdout, cmd);
		} else {
			usage(stdout);
		}
		return EXIT_GOOD;
	}
	if (cmdname && !(cmd = find_cmd(cmdname)))
		return usage_error(json, NULL, "unknown command '%s'", cmdname);
	if (help) {
		if (cmd)
			cmd_usage(stdout, cmd);
		else
			usage(stdout);
		return EXIT_GOOD;
	}
	if (!cmd) {
		if (json)
			return usage_error(json, NULL, "no command given");
		usage(stderr);
		return EXIT_USAGE;
	}
	snprintf(hint, sizeof(hint), "linkprobe %s --help", cmd->name);
	if (cmd->bit == CMD_ANALYZE && optind < argc)
		app.file = argv[optind++];
	if (optind < argc)
		return usage_error(json, hint, "unexpected argument '%s'", argv[optind]);
	for (size_t i = 0; i < NOPTS; i++)
		if (seen[i] && optdefs[i].cmds && !(optdefs[i].cmds & cmd->bit))
			return usage_error(json, hint, "option '--%s' is not used by '%s'",
					   optdefs[i].name, cmd->name);
	if (cmd->bit == CMD_WATCH && seen[optdef(OPT_DURATION) - optdefs])
		app.watch_duration_s = app.duration_s; /* else until stopped */
	if (app.tls_keys && !app.capture_path && !app.capture_streams_path)
		return usage_error(json, hint,
				   "option '--tls-keys' needs --capture or --capture-streams");
	if (app.via_usbmuxd && app.direct)
		return usage_error(json, hint,
				   "options '--via-usbmuxd' and '--direct' exclude each other");
	if (app.via_usbmuxd && (app.capture_path || app.capture_streams_path ||
				app.capture_bus_path || app.keylog_path))
		return usage_error(
			json, hint,
			"option '--via-usbmuxd': the daemon owns the USB traffic, so there is "
			"nothing to capture (drop --capture/--capture-streams/--keylog)");
	{
		struct lp_errinfo e = {0};

		/* every option checked before any output file is created or truncated */
		if (app_check_options(&app, &e))
			return usage_error(json, hint, "%s", e.msg);
	}

	app.color = out_use_color(no_color, app.json);
	app.log.sink = out_log_sink;
	app.log.ud = &app;
	app.log.max = app.verbose >= 3	 ? LP_LOG_TRACE
		      : app.verbose == 2 ? LP_LOG_DEBUG
		      : app.verbose == 1 ? LP_LOG_INFO
		      : app.quiet	 ? LP_LOG_ERROR
					 : LP_LOG_WARN;
	if (app.via_usbmuxd)
		app.device_spec = "usbmuxd"; /* what the report header names */
	return cmd->fn(&app);
}
