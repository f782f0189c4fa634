/* fake_usbmuxd.c - a stand-in usbmuxd for tests/t/80-via-usbmuxd.t.
 *
 *   fake-usbmuxd --socket PATH --dir DIR [--profile P] [--trust-delay-ms N]
 *                [--hide] [--list-result N] [--connect-result N] [--reenum]
 *
 * Serves the usbmuxd plist protocol (doc/protocol.md 3) on a UNIX socket
 * for one simulated iPhone that it drives itself through the library's own
 * host link (sim transport + hostlink): ListDevices, ReadBUID,
 * ReadPairRecord, SavePairRecord (records in DIR, usbmuxd-style
 * <UDID>.plist) and Connect, after which the client socket is relayed
 * byte-for-byte to a mux connection on the simulated device. Single-threaded:
 * poll() on the sockets plus hl_pump() for the device. Real clock, so the
 * simulated Trust tap happens after --trust-delay-ms of wall time.
 * Each request is logged as one line on stderr. Exits on SIGTERM/SIGINT.
 * A daemon that misbehaves, for the tests of its diagnosis: --hide lists no
 * device (as if it did not see the one it holds), --list-result N answers
 * ListDevices with Result N, --connect-result N answers a Connect to
 * lockdown (62078) with Result N. --reenum lets the profile's simulated
 * iPhone re-enumerate after Trust (reenum-after-trust) and follows it as
 * usbmuxd does: connections to the device that left are closed, it is not
 * listed while away, and when it is back it is opened again and listed
 * under the next DeviceID. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/hostlink.h"
#include "proto/pair_store.h"
#include "src/device/simdev.h"
#include "proto/usbmuxd_client.h"
#include "src/base/lp_clock.h"
#include "usb/tr_sim.h"
#include "usb/transport.h"

#define MAX_CLIENTS 32

struct client {
	int fd;		       /* -1 = free slot */
	struct lp_stream *dev; /* non-NULL once Connect succeeded: relaying */
	uint8_t *buf;
	size_t len;
};

static volatile sig_atomic_t stop;
static struct hl_link *hl;
static struct tr_devinfo info;
static struct lp_clock clk;
static const char *dir;
static struct client clients[MAX_CLIENTS];
static bool hide;
static long list_result = -1, connect_result = -1;
static uint32_t device_id = 1; /* the next attachment gets the next one */
static struct tr_ctx *ctx;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void client_close(struct client *c)
{
	lp_stream_close(c->dev);
	c->dev = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void reply(struct client *c, uint32_t tag, plist_t d)
{
	char *xml = NULL;
	uint32_t xlen = 0;
	uint8_t h[16];
	uint32_t v[4];

	plist_to_xml(d, &xml, &xlen);
	v[0] = 16 + xlen, v[1] = 1, v[2] = 8, v[3] = tag;
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 4; k++)
			h[i * 4 + k] = (uint8_t)(v[i] >> (8 * k));
	write_all(c->fd, h, 16);
	write_all(c->fd, xml, xlen);
	plist_to_xml_free(xml);
	plist_free(d);
}

static void reply_result(struct client *c, uint32_t tag, uint64_t num)
{
	plist_t d = plist_new_dict();
	plist_dict_set_item(d, "MessageType", plist_new_string("Result"));
	plist_dict_set_item(d, "Number", plist_new_uint(num));
	reply(c, tag, d);
}

static const char *str_of(plist_t d, const char *k)
{
	plist_t v = plist_dict_get_item(d, k);
	return v && plist_get_node_type(v) == PLIST_STRING ? plist_get_string_ptr(v, NULL) : NULL;
}

static uint64_t uint_of(plist_t d, const char *k)
{
	plist_t v = plist_dict_get_item(d, k);
	uint64_t x = 0;
	if (v && plist_get_node_type(v) == PLIST_UINT)
		plist_get_uint_val(v, &x);
	return x;
}

static void do_list(struct client *c, uint32_t tag)
{
	const struct usbd_probe *p = hl_info(hl);
	plist_t d, arr, ent, props;

	if (list_result >= 0) {
		reply_result(c, tag, (uint64_t)list_result);
		return;
	}
	d = plist_new_dict();
	arr = plist_new_array();
	ent = plist_new_dict();
	props = plist_new_dict();

	plist_dict_set_item(props, "ConnectionSpeed", plist_new_uint(tr_speed_bps(info.speed)));
	plist_dict_set_item(props, "ConnectionType", plist_new_string("USB"));
	plist_dict_set_item(props, "DeviceID", plist_new_uint(device_id));
	plist_dict_set_item(props, "LocationID",
			    plist_new_uint((uint32_t)info.bus << 16 | info.addr));
	plist_dict_set_item(props, "ProductID", plist_new_uint(info.pid));
	plist_dict_set_item(props, "SerialNumber", plist_new_string(p->udid));
	plist_dict_set_item(ent, "MessageType", plist_new_string("Attached"));
	plist_dict_set_item(ent, "DeviceID", plist_new_uint(device_id));
	plist_dict_set_item(ent, "Properties", props);
	if (!hl_dead(hl) && !hide)
		plist_array_append_item(arr, ent);
	else
		plist_free(ent);
	plist_dict_set_item(d, "DeviceList", arr);
	reply(c, tag, d);
}

static void do_read_record(struct client *c, uint32_t tag, const char *udid)
{
	char path[512];
	FILE *f;
	uint8_t *buf;
	long n;
	plist_t d;

	if (!udid || !pair_record_udid_ok(udid)) {
		reply_result(c, tag, EINVAL);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s.plist", dir, udid);
	f = fopen(path, "rb");
	if (!f) {
		reply_result(c, tag, ENOENT);
		return;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (n <= 0 || n > (long)PAIR_RECORD_MAX_FILE || !buf ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		reply_result(c, tag, EINVAL);
		return;
	}
	fclose(f);
	d = plist_new_dict();
	plist_dict_set_item(d, "PairRecordData", plist_new_data((const char *)buf, (uint64_t)n));
	free(buf);
	reply(c, tag, d);
}

static void do_save_record(struct client *c, uint32_t tag, plist_t req)
{
	const char *udid = str_of(req, "PairRecordID");
	plist_t data = plist_dict_get_item(req, "PairRecordData");
	struct pair_record *rec = NULL;
	const char *p;
	uint64_t n = 0;

	if (!udid || !pair_record_udid_ok(udid) || !data ||
	    plist_get_node_type(data) != PLIST_DATA) {
		reply_result(c, tag, EINVAL);
		return;
	}
	p = plist_get_data_ptr(data, &n);
	if (pair_record_parse((const uint8_t *)p, (size_t)n, &rec, NULL) ||
	    pair_record_set_str(&rec->udid, udid) || pair_record_save(dir, rec, NULL)) {
		pair_record_free(rec);
		reply_result(c, tag, EINVAL);
		return;
	}
	pair_record_free(rec);
	fprintf(stderr, "fake-usbmuxd: saved record %s (DeviceID %llu)\n", udid,
		(unsigned long long)uint_of(req, "DeviceID"));
	reply_result(c, tag, 0);
}

static void do_connect(struct client *c, uint32_t tag, plist_t req)
{
	uint16_t port = ntohs((uint16_t)uint_of(req, "PortNumber"));
	struct lp_errinfo e = {0};
	int r;

	if (uint_of(req, "DeviceID") != device_id) {
		reply_result(c, tag, UMC_RESULT_BADDEV);
		return;
	}
	if (port == 62078 && connect_result >= 0) {
		fprintf(stderr, "fake-usbmuxd: Connect port %u: answering Result %ld\n", port,
			connect_result);
		reply_result(c, tag, (uint64_t)connect_result);
		return;
	}
	r = hl_connect(hl, port, lp_clock_deadline_ms(&clk, 5000), &c->dev, &e);
	fprintf(stderr, "fake-usbmuxd: Connect port %u: %s\n", port, r ? e.msg : "ok");
	if (r) {
		reply_result(c, tag,
			     r == LP_ECONNREFUSED ? UMC_RESULT_CONNREFUSED : UMC_RESULT_BADDEV);
		return;
	}
	reply_result(c, tag, 0);
}

/* A whole request is buffered in c->buf: answer it. */
static void handle(struct client *c)
{
	struct umc_header h;
	plist_t req = NULL;
	const char *type;
	char buid[37];

	if (umc_decode_header(c->buf, c->len, &h, NULL) ||
	    umc_decode_body(&h, c->buf + 16, c->len - 16, &req, NULL)) {
		client_close(c);
		return;
	}
	type = str_of(req, "MessageType");
	fprintf(stderr, "fake-usbmuxd: %s\n", type ? type : "?");
	if (!type)
		reply_result(c, h.tag, UMC_RESULT_BADCOMMAND);
	else if (strcmp(type, "ListDevices") == 0)
		do_list(c, h.tag);
	else if (strcmp(type, "ReadBUID") == 0) {
		plist_t d = plist_new_dict();
		if (pair_system_buid(dir, buid, NULL) == 0)
			plist_dict_set_item(d, "BUID", plist_new_string(buid));
		reply(c, h.tag, d);
	} else if (strcmp(type, "ReadPairRecord") == 0)
		do_read_record(c, h.tag, str_of(req, "PairRecordID"));
	else if (strcmp(type, "SavePairRecord") == 0)
		do_save_record(c, h.tag, req);
	else if (strcmp(type, "Connect") == 0)
		do_connect(c, h.tag, req);
	else
		reply_result(c, h.tag, UMC_RESULT_BADCOMMAND);
	plist_free(req);
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}

static void client_readable(struct client *c)
{
	uint8_t tmp[65536];
	ssize_t n = read(c->fd, tmp, sizeof(tmp));
	struct umc_header h;

	if (n <= 0) {
		client_close(c);
		return;
	}
	if (c->dev) {
		if (lp_stream_send(c->dev, tmp, (size_t)n, lp_clock_deadline_ms(&clk, 5000), NULL))
			client_close(c);
		return;
	}
	if (c->len + (size_t)n > UMC_MAX_MESSAGE) {
		client_close(c);
		return;
	}
	c->buf = realloc(c->buf, c->len + (size_t)n);
	memcpy(c->buf + c->len, tmp, (size_t)n);
	c->len += (size_t)n;
	if (umc_decode_header(c->buf, c->len, &h, NULL) == 0 && c->len >= h.length)
		handle(c);
}

/* Device -> client for every relayed connection. */
/* The device left (the link is dead): close what was relayed to it, and
 * once it is back on the bus, open it again as a new device. */
static void follow_device(void)
{
	struct tr_devinfo devs[4];
	struct lp_errinfo e = {0};
	struct hl_link *nl = NULL;
	size_t n = 0;

	if (!hl_dead(hl))
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0 && clients[i].dev)
			client_close(&clients[i]);
	if (tr_list(ctx, devs, 4, &n, NULL) || n == 0 || devs[0].session == info.session)
		return;
	if (hl_open(ctx, &devs[0], NULL, &nl, &e)) {
		fprintf(stderr, "fake-usbmuxd: device back, not opened yet: %s\n", e.msg);
		return;
	}
	hl_close(hl);
	hl = nl;
	info = devs[0];
	device_id++;
	fprintf(stderr, "fake-usbmuxd: device back at address %u as DeviceID %u\n", info.addr,
		device_id);
}

static void relay_from_device(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		uint8_t buf[65536];
		size_t got = 0;
		int r;

		if (c->fd < 0 || !c->dev)
			continue;
		while ((r = lp_stream_recv(c->dev, buf, sizeof(buf), &got, lp_clock_now(&clk),
					   NULL)) == 0)
			if (write_all(c->fd, buf, got))
				break;
		if (r && r != LP_ETIMEDOUT)
			client_close(c);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"dir", required_argument, NULL, 'd'},
		{"profile", required_argument, NULL, 'p'},
		{"trust-delay-ms", required_argument, NULL, 't'},
		{"hide", no_argument, NULL, 'H'},
		{"list-result", required_argument, NULL, 'L'},
		{"connect-result", required_argument, NULL, 'C'},
		{"reenum", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *profile = "healthy";
	char state[512];
	struct simdev_opts so;
	struct simdev *sim;
	struct tr_sim_arg arg;
	struct tr_env env;
	bool reenum = false;
	struct lp_rand rnd;
	struct lp_errinfo e = {0};
	struct sockaddr_un sa;
	size_t n = 0;
	int lfd, c;

	memset(&so, 0, sizeof(so));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case 't':
			so.set_trust_delay = true;
			so.trust_delay_ms = strtoull(optarg, NULL, 10);
			break;
		case 'H':
			hide = true;
			break;
		case 'L':
			list_result = strtol(optarg, NULL, 10);
			break;
		case 'C':
			connect_result = strtol(optarg, NULL, 10);
			break;
		case 'R':
			reenum = true;
			break;
		default:
			fprintf(stderr,
				"usage: fake-usbmuxd --socket PATH --dir DIR [--profile P] [--trust-delay-ms N] [--hide] [--list-result N] [--connect-result N] [--reenum]\n");
			return 2;
		}
	}
	if (!sock || !dir || strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "fake-usbmuxd: --socket and --dir are required\n");
		return 2;
	}
	mkdir(dir, 0700);
	lp_clock_init_real(&clk);
	lp_rand_seed(&rnd, 1);
	snprintf(state, sizeof(state), "%s/.sim-device", dir);
	so.seed = 1;
	so.state_path = state;
	so.reenum_after_pair = reenum ? SIMDEV_REENUM_AUTO : SIMDEV_REENUM_NEVER;
	sim = simdev_new(profile, &so, &clk, NULL, &e);
	if (!sim) {
		fprintf(stderr, "fake-usbmuxd: %s\n", e.msg);
		return 1;
	}
	memset(&arg, 0, sizeof(arg));
	arg.ops = &devcore_model_ops;
	arg.model = simdev_model(sim);
	simdev_link(sim, &arg.link);
	arg.link.link_off = true;
	arg.bus = 1;
	env.clock = &clk;
	env.log = NULL;
	env.rand = &rnd;
	if (tr_ctx_new(&tr_sim_ops, &env, &arg, &ctx, &e) || tr_list(ctx, &info, 1, &n, &e) ||
	    n != 1 || hl_open(ctx, &info, NULL, &hl, &e)) {
		fprintf(stderr, "fake-usbmuxd: cannot bring up the simulated device: %s\n", e.msg);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	unlink(sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16)) {
		perror("fake-usbmuxd: listen");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	fprintf(stderr, "fake-usbmuxd: listening on %s, device %s\n", sock, hl_info(hl)->udid);

	while (!stop) {
		struct pollfd pf[MAX_CLIENTS + 1];
		int map[MAX_CLIENTS + 1], np = 0;

		pf[np].fd = lfd;
		pf[np].events = POLLIN;
		map[np++] = -1;
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (clients[i].fd < 0)
				continue;
			pf[np].fd = clients[i].fd;
			pf[np].events = POLLIN;
			map[np++] = i;
		}
		if (poll(pf, (nfds_t)np, 2) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < np; k++) {
			if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (map[k] < 0) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				int i;
				for (i = 0; fd >= 0 && i < MAX_CLIENTS && clients[i].fd >= 0; i++)
					;
				if (fd >= 0 && i < MAX_CLIENTS)
					clients[i].fd = fd;
				else if (fd >= 0)
					close(fd);
			} else if (clients[map[k]].fd >= 0) {
				client_readable(&clients[map[k]]);
			}
		}
		hl_pump(hl, lp_clock_deadline_ms(&clk, 1));
		relay_from_device();
		follow_device();
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	hl_close(hl);
	tr_ctx_free(ctx);
	simdev_free(sim);
	close(lfd);
	unlink(sock);
	return 0;
}
