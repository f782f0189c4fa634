/* fuzz_replaydev.c - libFuzzer harness for the replay device (the loader
 * src/device/replay_load.c on the capture reader, and the player
 * src/device/replaydev.c): the input is a capture file (pcap or pcapng)
 * read through fmemopen; if it loads, a host drives the model the way
 * linkprobe does - descriptors, every configuration, usbmux VERSION, a
 * lockdown connection and a few requests - with bounded pumping. StartSession is left out: a
 * recorded TLS session would make the model generate an RSA key per run. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "src/device/replaydev.h"
#include "src/base/lp_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct rdev *rd;
	struct mux *host;
	uint64_t now;
	uint32_t conn;
	bool open;
};

static void on_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct fz *f = ud;
	(void)port;
	f->conn = conn;
	f->open = result == 0;
}

static const struct mux_cbs cbs = {.on_connect = on_connect};

static void pump(struct fz *f)
{
	for (int i = 0; i < 64; i++) {
		const uint8_t *d;
		uint8_t *p;
		size_t n;
		bool zlp, moved = false;

		while (mux_out_take(f->host, &p, &n) == 0) {
			devcore_model_ops.bulk_out(rdev_model(f->rd), 0x04, p, n, f->now);
			free(p);
			moved = true;
		}
		for (int k = 0; k < 64 && devcore_model_ops.bulk_in_next(rdev_model(f->rd), 0x85,
									 &d, &n, &zlp, f->now) == 0;
		     k++) {
			mux_feed(f->host, d, n, true);
			moved = true;
		}
		if (!moved) {
			uint64_t t = devcore_model_ops.next_timer(rdev_model(f->rd), f->now);
			if (t == UINT64_MAX)
				return;
			f->now = t;
			devcore_model_ops.tick(rdev_model(f->rd), f->now);
		}
	}
}

static void ask(struct fz *f, const char *req, const char *key)
{
	plist_t d = plist_new_dict();
	uint8_t *b;
	size_t n;

	plist_dict_set_item(d, "Request", plist_new_string(req));
	if (key)
		plist_dict_set_item(d, "Key", plist_new_string(key));
	if (lkd_frame_encode(d, &b, &n) == 0) {
		mux_send(f->host, f->conn, b, n);
		free(b);
	}
	plist_free(d);
	pump(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lp_clock clock;
	static const struct lp_log log = {.max = LP_LOG_ERROR};
	struct fz f = {0};
	struct lp_errinfo e = {0};
	struct tr_sim_link link;
	struct rdev_summary s;
	uint8_t buf[4096], setup[8] = {0x80, 6, 0, 1, 0, 0, 0x00, 0x10};
	uint16_t vid, pid;
	uint8_t ncfg;
	size_t got;
	FILE *fp;

	if (!size)
		return 0;
	fp = fmemopen((void *)data, size, "rb");
	if (!fp)
		return 0;
	lp_clock_init_virtual(&clock, 0);
	if (rdev_load_file(fp, NULL, &clock, &log, &f.rd, &e))
		return 0;
	rdev_link(f.rd, 0, &link);
	rdev_get_summary(f.rd, &s);
	devcore_model_ops.reset(rdev_model(f.rd), 0);
	devcore_model_ops.identity(rdev_model(f.rd), &vid, &pid, &ncfg);
	devcore_model_ops.control(rdev_model(f.rd), setup, buf, sizeof(buf), &got, 0);
	for (unsigned i = 0; i < ncfg && i < 8; i++) {
		uint8_t cs[8] = {0x80, 6, (uint8_t)i, 2, 0, 0, 0x00, 0x10};
		devcore_model_ops.control(rdev_model(f.rd), cs, buf, sizeof(buf), &got, 0);
	}
	for (unsigned v = 1; v <= 4; v++) {
		uint8_t sc[8] = {0x00, 9, (uint8_t)v, 0, 0, 0, 0, 0};
		if (devcore_model_ops.control(rdev_model(f.rd), sc, NULL, 0, &got, 0) == 0 &&
		    devcore_model_ops.max_packet(rdev_model(f.rd), 0x85))
			break;
	}
	f.host = mux_new(MUX_ROLE_HOST, &cbs, &f, &log);
	if (f.host && mux_start(f.host, 2) == 0) {
		pump(&f);
		if (mux_connect(f.host, MUX_PORT_LOCKDOWN, &f.conn) == 0) {
			pump(&f);
			if (f.open) {
				ask(&f, "QueryType", NULL);
				ask(&f, "GetValue", "UniqueDeviceID");
				ask(&f, "GetValue", "DevicePublicKey");
				ask(&f, "Pair", NULL);
				ask(&f, "Bogus", NULL);
			}
		}
	}
	(void)rdev_divergence(f.rd);
	mux_free(f.host);
	rdev_free(f.rd);
	return 0;
}
