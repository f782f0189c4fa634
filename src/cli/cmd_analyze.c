/* cmd_analyze.c - `linkprobe analyze FILE [--json] [--usbmuxd-port N]`: the
 * stage timeline and verdict of a live run, read from a capture (usbmon,
 * USBPcap, or a relayed usbmuxd socket; pcap or pcapng). The engine is
 * analyze.c; this file opens the file, prints and picks the exit code:
 * 0 good verdict, 1 problem found, 2 usage, 3 file unreadable / unsupported
 * link type. Anomalies in the file are listed, never fatal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "src/analyze/analyze.h"
#include "src/cli/app.h"

int cmd_analyze(struct lp_app *app)
{
	struct diag_report r;
	struct lp_clock clk;
	struct lp_errinfo e = {0};
	struct an_opts o = {.usbmuxd_port = app->usbmuxd_port, .log = &app->log};
	FILE *f;
	int ret, code;

	if (!app->file) {
		return out_usage_error(app, "analyze needs a capture file: linkprobe analyze FILE");
	}
	if (app->usbmuxd_port < 0 || app->usbmuxd_port > 65535) {
		return out_usage_error(app, "option '--usbmuxd-port' must be 1..65535");
	}
	f = strcmp(app->file, "-") == 0 ? stdin : fopen(app->file, "rb");
	if (!f) {
		out_error(app, "cannot open %s: %s", app->file, strerror(errno));
		return EXIT_RUNTIME;
	}
	lp_clock_init_virtual(&clk, 0);
	diag_init(&r, "analyze", &clk);
	if (!app->device_spec)
		app->device_spec = app->file; /* the banner names the input */
	out_attach(app, &r);		      /* stages print as an_report() builds them */
	ret = an_analyze_fp(f, &o, &r, &clk, &e);
	if (ret) {
		out_error(app, "%s: %s", app->file, e.msg[0] ? e.msg : lp_strerror(ret));
		diag_release(&r);
		return EXIT_RUNTIME;
	}
	if (!app->json && !app->quiet) {
		/* the device's protocol violations, then the notes (silences,
		 * the host's side, the capture file): only the first kind can
		 * make a PROTOCOL_ERROR */
		static const char *const lists[][2] = {
			{"protocol_violations", "protocol violations by the device"},
			{"notes", "notes"},
		};
		for (size_t k = 0; k < 2; k++) {
			json_object *an = r.extra ? json_object_object_get(r.extra, lists[k][0])
						  : NULL;
			size_t n = an ? json_object_array_length(an) : 0;
			if (!n)
				continue;
			fprintf(app->out, "  %s (%zu listed):\n", lists[k][1], n);
			for (size_t i = 0; i < n; i++)
				fprintf(app->out, "    %s\n",
					json_object_get_string(json_object_array_get_idx(an, i)));
		}
		json_object *devs = r.extra ? json_object_object_get(r.extra, "devices") : NULL;
		for (size_t i = 0; devs && i < json_object_array_length(devs); i++) {
			json_object *d = json_object_array_get_idx(devs, i);
			fprintf(app->out, "  device %s: %s (%s)\n",
				json_object_get_string(json_object_object_get(d, "key")),
				json_object_get_string(json_object_object_get(d, "verdict")),
				json_object_get_boolean(json_object_object_get(d, "primary"))
					? "this report"
					: "other");
		}
	}
	code = out_finish(app, &r);
	diag_release(&r);
	return code;
}
