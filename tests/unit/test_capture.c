/* test_capture.c - usbmon records, pcap/pcapng writers, the capture tap,
 * redaction, kill safety and the synthetic TCP view, read back with libpcap
 * and (when installed) tshark.
 *
 * LP_UPDATE_GOLDEN=1 rewrites tests/data/capture/usbmux-lockdown.pcapng
 * (the input of tests/t/40-dissector.t); otherwise the test checks that the
 * writer still produces it byte for byte. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <plist/plist.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "src/capture/cap_streams.h"
#include "src/capture/cap_tap.h"
#include "usb/cap_usbmon.h"
#include "src/capture/cap_writer.h"
#include "usb/transport.h"

#define EPOCH 1700000000123456789ull
#define GOLDEN "tests/data/capture/usbmux-lockdown.pcapng"

static char tmpdir[] = "/tmp/lp-captest.XXXXXX";

static const char *tpath(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static bool have_tshark(void)
{
	return system("command -v tshark >/dev/null 2>&1") == 0;
}

/* Run a command, return its stdout (owned) */
static char *run(const char *fmt, ...)
{
	char cmd[1024], *out;
	size_t n = 0, cap = 4096;
	va_list ap;
	FILE *p;
	int c;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	out = malloc(cap);
	assert_non_null(out);
	while ((c = fgetc(p)) != EOF) {
		if (n + 1 >= cap)
			assert_non_null(out = realloc(out, cap *= 2));
		out[n++] = (char)c;
	}
	out[n] = 0;
	pclose(p);
	return out;
}

/* ---- a synthetic device and transfers ------------------------------------ */

static struct tr_dev fake_dev = {
	.info = {.bus = 3,
		 .addr = 7,
		 .vid = 0x05ac,
		 .pid = 0x12a8,
		 .speed = TR_SPEED_HIGH,
		 .port_path = "3-1",
		 .session = 1},
};

struct expect {
	char type;
	uint8_t ep;
	uint32_t data_len;
	uint64_t ns;
};

static void xsubmit(struct cap_tap *t, struct tr_xfer *x, uint64_t ns)
{
	x->submit_ns = ns;
	cap_tap_observe(t, TR_EV_SUBMIT, x, 0);
}

static void xdone(struct cap_tap *t, struct tr_xfer *x, uint64_t ns, enum tr_status st,
		  size_t actual)
{
	x->done_ns = ns;
	x->status = st;
	x->actual = actual;
	cap_tap_observe(t, TR_EV_COMPLETE, x, 0);
}

static uint8_t desc_buf[18] = {18, 1, 0, 2, 0, 0, 0, 64, 0xac, 0x05, 0xa8, 0x12, 4, 8, 1, 2, 3, 4};
static uint8_t version_out[20] = {0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
static uint8_t in_buf[16384];

/* The standard sequence: 9 records. Fills exp[]. */
static size_t std_sequence(struct cap_tap *t, struct expect *exp)
{
	struct tr_xfer c = {0}, o = {0}, i = {0}, k = {0}, e = {0};
	static const uint8_t setup[8] = {0x80, 6, 0, 1, 0, 0, 18, 0};
	uint8_t ctl[18];
	size_t n = 0;

	c.dev = &fake_dev;
	c.type = TR_XFER_CONTROL;
	c.endpoint = 0x80;
	memcpy(c.setup, setup, 8);
	c.buf = ctl;
	c.len = 18;
	c.id = 1;
	xsubmit(t, &c, 1000);
	exp[n++] = (struct expect){'S', 0x80, 0, 1000};
	memcpy(ctl, desc_buf, 18);
	xdone(t, &c, 2500, TR_STATUS_COMPLETED, 18);
	exp[n++] = (struct expect){'C', 0x80, 18, 2500};

	o.dev = &fake_dev;
	o.type = TR_XFER_BULK;
	o.endpoint = 0x04;
	o.buf = version_out;
	o.len = 20;
	o.id = 2;
	xsubmit(t, &o, 5000);
	exp[n++] = (struct expect){'S', 0x04, 20, 5000};
	xdone(t, &o, 6000, TR_STATUS_COMPLETED, 20);
	exp[n++] = (struct expect){'C', 0x04, 0, 6000};

	i.dev = &fake_dev;
	i.type = TR_XFER_BULK;
	i.endpoint = 0x85;
	i.buf = in_buf;
	i.len = sizeof(in_buf);
	i.id = 3;
	xsubmit(t, &i, 7000);
	exp[n++] = (struct expect){'S', 0x85, 0, 7000};
	memcpy(in_buf, version_out, 20);
	xdone(t, &i, 9000, TR_STATUS_COMPLETED, 20);
	exp[n++] = (struct expect){'C', 0x85, 20, 9000};

	k = i;
	k.id = 4;
	xsubmit(t, &k, 10000);
	exp[n++] = (struct expect){'S', 0x85, 0, 10000};
	xdone(t, &k, 11000, TR_STATUS_CANCELLED, 0);
	exp[n++] = (struct expect){'C', 0x85, 0, 11000};

	e = o;
	e.id = 5;
	e.submit_ns = 12000;
	cap_tap_observe(t, TR_EV_SUBMIT_ERROR, &e, LP_ENODEV);
	exp[n++] = (struct expect){'E', 0x04, 0, 12000};
	return n;
}

static uint8_t *slurp(const char *path, size_t *len);

/* ---- usbmon encoding ------------------------------------------------------ */

static void test_usbmon_bulk_out_submit_bytes(void **state)
{
	struct tr_xfer x = {0};
	struct cap_usbmon_rec r;
	struct lp_wr w;
	uint8_t buf[128];
	uint8_t payload[4] = {1, 2, 3, 4};
	/* expected record on a little-endian host */
	static const uint8_t want[68] = {
		0x2a, 0,    0,	  0,	0, 0, 0,   0, /* id 42 */
		'S',  3,    0x04, 7,	3, 0, '-', 0, /* S bulk ep 4 dev 7 bus 3, no setup, data */
		0x00, 0xf1, 0x53, 0x65, 0, 0, 0,   0, /* ts_sec 1700000000 */
		0xa7, 0xe2, 0x01, 0,		      /* ts_usec 123559 */
		0x8d, 0xff, 0xff, 0xff,		      /* -115 */
		4,    0,    0,	  0,	4, 0, 0,   0, /* len_urb 4, len_cap 4 */
		0,    0,    0,	  0,	0, 0, 0,   0, /* setup */
		0,    0,    0,	  0,	0, 0, 0,   0, /* interval, start_frame */
		0,    0,    0,	  0,	0, 0, 0,   0, /* xfer_flags (OUT), ndesc */
		1,    2,    3,	  4};

	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		skip();
	x.dev = &fake_dev;
	x.type = TR_XFER_BULK;
	x.endpoint = 0x04;
	x.buf = payload;
	x.len = 4;
	x.id = 42;
	cap_usbmon_from_xfer(TR_EV_SUBMIT, &x, 0, EPOCH + 103000, 0, &r);
	lp_wr_init_fixed(&w, buf, sizeof(buf));
	cap_usbmon_encode(&w, &r);
	assert_true(lp_wr_ok(&w));
	assert_int_equal(w.len, 68);
	assert_memory_equal(buf, want, 68);
}

static void test_usbmon_kernel_rules(void **state)
{
	struct tr_xfer x = {0};
	struct cap_usbmon_rec r;
	uint8_t b[64];

	x.dev = &fake_dev;
	x.type = TR_XFER_CONTROL;
	x.endpoint = 0; /* direction must come from the setup packet */
	memcpy(x.setup, (uint8_t[8]){0xc0, 0x45, 0, 0, 0, 0, 4, 0}, 8);
	x.buf = b;
	x.len = 4;
	cap_usbmon_from_xfer(TR_EV_SUBMIT, &x, 0, EPOCH, 0, &r);
	assert_int_equal(r.epnum, 0x80);
	assert_int_equal(r.flag_setup, 0);
	assert_int_equal(r.flag_data, '<');
	assert_int_equal(r.len_urb, 4);
	assert_int_equal(r.len_cap, 0);
	assert_int_equal(r.xfer_flags, CAP_USBMON_URB_DIR_IN);
	assert_memory_equal(r.setup, x.setup, 8);
	assert_int_equal(r.status, -115);

	cap_usbmon_from_xfer(TR_EV_COMPLETE, &x, 0, EPOCH, 0, &r);
	assert_int_equal(r.flag_setup, '-');
	assert_int_equal(r.flag_data, 0);
	assert_int_equal(r.len_cap, 0); /* actual 0: "data present", zero length */

	x.type = TR_XFER_BULK;
	x.endpoint = 0x04;
	x.len = 64;
	x.actual = 64;
	x.status = TR_STATUS_STALL;
	cap_usbmon_from_xfer(TR_EV_COMPLETE, &x, 0, EPOCH, 0, &r);
	assert_int_equal(r.flag_data, '>');
	assert_int_equal(r.len_urb, 64);
	assert_int_equal(r.len_cap, 0);
	assert_int_equal(r.status, -32);

	cap_usbmon_from_xfer(TR_EV_SUBMIT_ERROR, &x, LP_ENODEV, EPOCH, 0, &r);
	assert_int_equal(r.type, 'E');
	assert_int_equal(r.flag_data, 'E');
	assert_int_equal(r.flag_setup, '-');
	assert_int_equal(r.status, -19);
	assert_int_equal(r.len_urb, 0);

	/* clipping keeps the real length in len_urb */
	cap_usbmon_from_xfer(TR_EV_SUBMIT, &x, 0, EPOCH, 16, &r);
	assert_int_equal(r.len_urb, 64);
	assert_int_equal(r.len_cap, 16);
	assert_true(r.clipped);

	assert_int_equal(cap_usbmon_status_from_tr(TR_STATUS_CANCELLED), -104);
	assert_int_equal(cap_usbmon_status_from_tr(TR_STATUS_NO_DEVICE), -108);
	assert_int_equal(cap_usbmon_status_to_tr(-2), TR_STATUS_CANCELLED);
	assert_int_equal(cap_usbmon_status_to_tr(-104), TR_STATUS_CANCELLED);
	assert_int_equal(cap_usbmon_status_to_tr(-19), TR_STATUS_NO_DEVICE);
	assert_int_equal(cap_usbmon_status_to_tr(-71), TR_STATUS_ERROR);
}

static void swap_hdr(uint8_t *b)
{
	static const struct {
		size_t off, n;
	} f[] = {{0, 8},  {12, 2}, {16, 8}, {24, 4}, {28, 4}, {32, 4},
		 {36, 4}, {48, 4}, {52, 4}, {56, 4}, {60, 4}};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		for (size_t a = f[i].off, z = f[i].off + f[i].n - 1; a < z; a++, z--) {
			uint8_t t = b[a];
			b[a] = b[z];
			b[z] = t;
		}
}

static void test_usbmon_decode(void **state)
{
	struct tr_xfer x = {0};
	struct cap_usbmon_rec r, d;
	struct lp_wr w;
	uint8_t buf[200], data[10] = "0123456789";

	x.dev = &fake_dev;
	x.type = TR_XFER_BULK;
	x.endpoint = 0x85;
	x.buf = data;
	x.len = 512;
	x.actual = 10;
	x.id = 0x1122334455667788ull;
	cap_usbmon_from_xfer(TR_EV_COMPLETE, &x, 0, EPOCH, 0, &r);
	lp_wr_init_fixed(&w, buf, sizeof(buf));
	cap_usbmon_encode(&w, &r);
	assert_int_equal(w.len, 74);

	assert_int_equal(cap_usbmon_decode(buf, w.len, false, &d), 0);
	assert_int_equal(d.id, x.id);
	assert_int_equal(d.type, 'C');
	assert_int_equal(d.epnum, 0x85);
	assert_int_equal(d.busnum, 3);
	assert_int_equal(d.devnum, 7);
	assert_int_equal(d.ts_sec, 1700000000);
	assert_int_equal(d.ts_usec, 123456);
	assert_int_equal(d.len_urb, 10);
	assert_int_equal(d.data_len, 10);
	assert_memory_equal(d.data, data, 10);
	assert_false(d.clipped);
	assert_int_equal(d.xfer_flags, CAP_USBMON_URB_DIR_IN);

	/* clipped by snaplen: header intact, fewer data bytes */
	assert_int_equal(cap_usbmon_decode(buf, 70, false, &d), 0);
	assert_int_equal(d.data_len, 6);
	assert_true(d.clipped);
	assert_int_equal(cap_usbmon_decode(buf, 63, false, &d), LP_ETRUNC);

	/* the other byte order */
	swap_hdr(buf);
	assert_int_equal(cap_usbmon_decode(buf, w.len, true, &d), 0);
	assert_int_equal(d.id, x.id);
	assert_int_equal(d.len_cap, 10);
	assert_int_equal(d.busnum, 3);
	swap_hdr(buf);

	/* 48-byte legacy header: data right after setup */
	memmove(buf + 48, buf + 64, 10);
	assert_int_equal(cap_usbmon_decode_lt(buf, 58, CAP_LINKTYPE_USB_LINUX, false, &d), 0);
	assert_true(d.legacy);
	assert_int_equal(d.data_len, 10);
	assert_memory_equal(d.data, data, 10);
	assert_int_equal(cap_usbmon_decode_lt(buf, 47, CAP_LINKTYPE_USB_LINUX, false, &d),
			 LP_ETRUNC);
	assert_int_equal(cap_usbmon_decode_lt(buf, 58, 1, false, &d), LP_EFORMAT);

	buf[8] = 'X';
	assert_int_equal(cap_usbmon_decode(buf, 64, false, &d), LP_EBADMSG);
}

/* ---- files read back with libpcap ---------------------------------------- */

static void write_std(const char *path, enum cap_format fmt, struct expect *exp, size_t *n,
		      const char *mark)
{
	struct lp_errinfo e = {0};
	struct cap_writer *w = cap_open(path, fmt, NULL, &e);
	struct lp_clock clk;
	struct cap_tap *t;

	assert_non_null(w);
	lp_clock_init_virtual(&clk, EPOCH);
	assert_int_equal(cap_tap_new(w, &clk, NULL, &t), 0);
	if (mark)
		assert_int_equal(cap_tap_mark(t, mark), 0);
	*n = std_sequence(t, exp);
	assert_int_equal(cap_tap_error(t), 0);
	assert_int_equal(cap_tap_records(t), *n);
	cap_tap_free(t);
	assert_int_equal(cap_close(w), 0);
}

static void check_readback(const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	struct expect exp[16];
	struct pcap_pkthdr *h;
	const u_char *p;
	size_t n, k = 0;
	pcap_t *pc;
	int rc;

	/* expectations only: regenerate in memory */
	{
		struct cap_writer *w = cap_open(tpath("scratch.pcapng"), CAP_FMT_PCAPNG, NULL,
						NULL);
		struct cap_tap *t;

		assert_non_null(w);
		assert_int_equal(cap_tap_new(w, NULL, NULL, &t), 0);
		n = std_sequence(t, exp);
		cap_tap_free(t);
		cap_close(w);
	}

	pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	assert_non_null(pc);
	assert_int_equal(pcap_datalink(pc), DLT_USB_LINUX_MMAPPED);
	while ((rc = pcap_next_ex(pc, &h, &p)) == 1) {
		struct cap_usbmon_rec d;
		uint64_t ns = EPOCH + exp[k].ns;

		assert_true(k < n);
		assert_int_equal(h->ts.tv_sec, ns / 1000000000ull);
		assert_int_equal(h->ts.tv_usec, ns % 1000000000ull);
		assert_int_equal(cap_usbmon_decode(p, h->caplen, false, &d), 0);
		assert_int_equal(d.type, exp[k].type);
		assert_int_equal(d.epnum, exp[k].ep);
		assert_int_equal(d.len_cap, exp[k].data_len);
		assert_int_equal(h->caplen, 64 + exp[k].data_len);
		assert_int_equal(d.busnum, 3);
		assert_int_equal(d.devnum, 7);
		assert_int_equal(d.ts_usec, (ns % 1000000000ull) / 1000);
		if (d.type == 'C' && d.epnum == 0x80)
			assert_memory_equal(d.data, desc_buf, 18);
		if (k == 7)
			assert_int_equal(d.status, -104);
		if (k == 8)
			assert_int_equal(d.status, -19);
		k++;
	}
	assert_int_equal(rc, PCAP_ERROR_BREAK); /* clean EOF, no error */
	assert_int_equal(k, n);
	pcap_close(pc);
}

/* The records libpcap hands back are byte-identical to what the encoder
 * produces for the same events. */
static void check_bytes_exact(const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *p;
	struct tr_xfer o = {0};
	struct cap_usbmon_rec r;
	struct lp_wr w;
	uint8_t want[128];
	pcap_t *pc;
	int i;

	o.dev = &fake_dev;
	o.type = TR_XFER_BULK;
	o.endpoint = 0x04;
	o.buf = version_out;
	o.len = 20;
	o.id = 2;
	cap_usbmon_from_xfer(TR_EV_SUBMIT, &o, 0, EPOCH + 5000, 0, &r);
	lp_wr_init_fixed(&w, want, sizeof(want));
	cap_usbmon_encode(&w, &r);

	pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	assert_non_null(pc);
	for (i = 0; i < 3; i++)
		assert_int_equal(pcap_next_ex(pc, &h, &p), 1);
	assert_int_equal(h->caplen, w.len);
	assert_int_equal(h->len, w.len);
	assert_memory_equal(p, want, w.len);
	pcap_close(pc);
}

static void test_pcapng_readback(void **state)
{
	struct expect exp[16];
	size_t n;
	const char *f = tpath("std.pcapng");

	write_std(f, CAP_FMT_AUTO, exp, &n, "stage StartSession");
	check_readback(f);
	check_bytes_exact(f);
}

static void test_pcap_readback(void **state)
{
	struct expect exp[16];
	size_t n;
	const char *f = tpath("std.pcap");
	FILE *fp;
	uint32_t magic;

	write_std(f, CAP_FMT_AUTO, exp, &n, "stage dropped");
	fp = fopen(f, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(&magic, 4, 1, fp), 1);
	fclose(fp);
	assert_int_equal(magic, 0xA1B23C4Du); /* nanosecond pcap, written by libpcap */
	check_readback(f);
	check_bytes_exact(f);
}

static void test_tshark_fields(void **state)
{
	struct expect exp[16];
	size_t n, i;
	char want[1024] = "", line[64];
	char *out;
	const char *f = tpath("tshark.pcapng");

	if (!have_tshark())
		skip();
	write_std(f, CAP_FMT_PCAPNG, exp, &n, "stage StartSession");
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "'%c'\t0x%02x\t%u\n", exp[i].type, exp[i].ep,
			 exp[i].data_len);
		strcat(want, line);
	}
	out = run("tshark -r %s -T fields -e usb.urb_type -e usb.endpoint_address -e usb.data_len "
		  "2>/dev/null",
		  f);
	assert_string_equal(out, want);
	free(out);

	out = run("tshark -r %s -T fields -e frame.comment 2>/dev/null | head -n 2", f);
	assert_string_equal(out, "stage StartSession\n\n");
	free(out);

	out = run("tshark -r %s -T fields -e usb.urb_status -e usb.bus_id -e usb.device_address "
		  "2>/dev/null | sed -n '8,9p'",
		  f);
	assert_string_equal(out, "-104\t3\t7\n-19\t3\t7\n");
	free(out);

	/* the IDB names the device and its speed */
	out = run("tshark -r %s -T fields -e frame.interface_name -e frame.interface_description "
		  "-c 1 2>/dev/null",
		  f);
	assert_string_equal(
		out, "usbmon3\t05ac:12a8, high speed (480 Mb/s), bus 3 device 7, port 3-1\n");
	free(out);
}

static void test_writer_misc(void **state)
{
	struct lp_errinfo e = {0};
	struct cap_writer *w;
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *pc;

	/* unwritable path: error with detail, nothing returned */
	assert_null(cap_open("/nonexistent-dir/x.pcapng", CAP_FMT_AUTO, NULL, &e));
	assert_int_equal(e.code, LP_ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent-dir/x.pcapng"));

	/* nothing captured: still a readable file */
	w = cap_open(tpath("empty.pcapng"), CAP_FMT_AUTO, NULL, NULL);
	assert_non_null(w);
	assert_int_equal(cap_close(w), 0);
	pc = pcap_open_offline(tpath("empty.pcapng"), err);
	assert_non_null(pc);
	assert_int_equal(pcap_datalink(pc), DLT_USB_LINUX_MMAPPED);
	pcap_close(pc);
	w = cap_open(tpath("empty.pcap"), CAP_FMT_AUTO, NULL, NULL);
	assert_non_null(w);
	assert_int_equal(cap_close(w), 0);
	pc = pcap_open_offline(tpath("empty.pcap"), err);
	assert_non_null(pc);
	pcap_close(pc);

	/* one link type per file; secrets only in pcapng */
	w = cap_open(tpath("mix.pcap"), CAP_FMT_AUTO, NULL, NULL);
	assert_int_equal(cap_add_usb_interface(w, "a", NULL), 0);
	assert_int_equal(cap_add_usb_interface(w, "b", NULL), 0);
	assert_int_equal(cap_add_ipv4_interface(w, "c"), LP_EUNSUPPORTED);
	assert_int_equal(cap_write_dsb_tls(w, "CLIENT_RANDOM 00 11"), LP_EUNSUPPORTED);
	assert_int_equal(cap_write_packet(w, 1, 0, NULL, 0, 0, NULL), LP_EINVAL);
	cap_close(w);
	w = cap_open(tpath("mix.pcapng"), CAP_FMT_AUTO, NULL, NULL);
	assert_int_equal(cap_add_usb_interface(w, "a", NULL), 0);
	assert_int_equal(cap_add_usb_interface(w, "b", NULL), 1);
	assert_int_equal(cap_add_ipv4_interface(w, "c"), LP_EUNSUPPORTED);
	cap_close(w);
}

/* A FIFO target: no seeking, no regular-file requirement (extcap). */
static void test_fifo(void **state)
{
	const char *fifo = tpath("fifo"), *copy = tpath("fifo-copy.pcapng");
	struct expect exp[16];
	size_t n;
	pid_t pid;
	int st;

	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "cat %s > %s", fifo, copy);
		_exit(system(cmd) == 0 ? 0 : 1);
	}
	write_std(fifo, CAP_FMT_PCAPNG, exp, &n, NULL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	check_readback(copy);
}

/* ---- kill safety ---------------------------------------------------------- */

static void kill_run(const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *p;
	uint32_t k = 0;
	pcap_t *pc;
	pid_t pid;
	int rc, st;
	struct stat sb;

	unlink(path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cap_writer *w = cap_open(path, CAP_FMT_AUTO, NULL, NULL);
		static uint8_t pkt[3000];
		uint32_t i;

		if (!w || cap_add_usb_interface(w, "usbmon1", "kill test") < 0)
			_exit(2);
		for (i = 0;; i++) {
			size_t len = 64 + (i * 37) % (sizeof(pkt) - 64);

			memset(pkt, (int)(i & 0xff), len);
			memcpy(pkt, &i, 4);
			if (cap_write_packet(w, 0, EPOCH + i, pkt, len, len,
					     i % 3 ? NULL : "a stage marker") != 0)
				_exit(3);
		}
	}
	/* let it write a good number of records, then kill it mid-stream (the
	 * condition, not a time: up to 30 s on a loaded machine) */
	for (int tries = 0; tries < 15000; tries++) {
		const struct timespec ms = {0, 2000000};

		if (stat(path, &sb) == 0 && sb.st_size > 200000)
			break;
		nanosleep(&ms, NULL);
	}
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	assert_non_null(pc);
	while ((rc = pcap_next_ex(pc, &h, &p)) == 1) {
		uint32_t seq;
		size_t len = 64 + (k * 37) % (3000 - 64);

		memcpy(&seq, p, 4);
		assert_int_equal(seq, k);
		assert_int_equal(h->caplen, len);
		assert_int_equal(p[len - 1], k & 0xff);
		k++;
	}
	/* Every whole record reads back. Linux may still cut one write(2) at a
	 * page boundary when SIGKILL lands inside it (generic_perform_write
	 * checks for fatal signals per page): then, and only then, the tail is
	 * reported as a truncated last record. */
	if (rc != PCAP_ERROR_BREAK) {
		assert_int_equal(rc, PCAP_ERROR);
		assert_non_null(strstr(pcap_geterr(pc), "truncated"));
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size % 4096, 0);
	}
	assert_true(k > 50);
	pcap_close(pc);
}

static void test_kill_safety_pcapng(void **state)
{
	kill_run(tpath("kill.pcapng"));
}

static void test_kill_safety_pcap(void **state)
{
	kill_run(tpath("kill.pcap"));
}

/* ---- redaction ------------------------------------------------------------ */

static const char plist_escrow[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n"
	"\t<key>EscrowBag</key>\n\t<data>\n\tQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n"
	"\tMDEyMzQ1Njc4OQ==\n\t</data>\n"
	"\t<key>HostID</key>\n\t<string>ABCD-1234</string>\n"
	"\t<key>HostPrivateKey</key><data>TUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFF</data>\n"
	"</dict>\n</plist>\n";

static void test_redact_plist(void **state)
{
	char buf[sizeof(plist_escrow)];
	size_t n;

	memcpy(buf, plist_escrow, sizeof(buf));
	n = cap_redact((uint8_t *)buf, sizeof(buf) - 1);
	assert_int_equal(n, 36 + 16 + 36);
	assert_int_equal(strlen(buf), strlen(plist_escrow));
	assert_null(strstr(buf, "QUJDREVG"));
	assert_null(strstr(buf, "MDEyMzQ1"));
	assert_null(strstr(buf, "TUlJRXZR"));
	assert_non_null(strstr(
		buf,
		"<data>\n\tREDACTEDREDACTEDREDACTEDREDACTEDREDA\n\tCTEDREDACTEDREDA\n\t</data>"));
	assert_non_null(strstr(buf, "<data>REDACTEDREDACTEDREDACTEDREDACTEDREDA</data>"));
	/* everything else untouched */
	assert_non_null(strstr(buf, "<string>ABCD-1234</string>"));
	assert_non_null(strstr(buf, "<key>EscrowBag</key>"));

	/* other keys' data is left alone */
	strcpy(buf, "<key>DeviceCertificate</key><data>QUJD</data>");
	assert_int_equal(cap_redact((uint8_t *)buf, strlen(buf)), 0);
	assert_string_equal(buf, "<key>DeviceCertificate</key><data>QUJD</data>");
}

static void test_redact_pem(void **state)
{
	char buf[] = "x-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabcd+/==\n"
		     "-----END RSA PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nMIIC\n";

	assert_int_equal(cap_redact((uint8_t *)buf, strlen(buf)), 16 + 8);
	assert_non_null(strstr(buf, "-----\nREDACTEDREDACTED\nREDACTED\n-----END RSA PRIVATE KEY"));
	assert_non_null(strstr(buf, "CERTIFICATE-----\nMIIC\n"));
}

/* A secret split over two USB transfers, the second starting with a mux v2
 * TCP header (36 bytes) whose bytes must survive. */
static void test_redact_split(void **state)
{
	const char *secret = "<key>EscrowBag</key>\n\t<data>QUJDREVGR0hJSktMTU5P</data>";
	size_t L = strlen(secret);
	uint8_t hdr[36] = {0,	 0,    0, 6, 0, 0,    0,    0,	  0xfe, 0xed, 0xfa,
			   0xce, 0,    5, 0, 4, 0,    1,    0xf2, 0x7e, 0,    0,
			   0,	 0x41, 0, 0, 0, 0x42, 0x50, 0x10, 0x02, 0};
	uint8_t a[128], b[128], orig_hdr[36];

	for (size_t cut = 1; cut < L; cut++) {
		struct cap_redactor r;
		char joined[128];
		size_t nb = 36 + (L - cut), got = 0;

		memcpy(a, secret, cut);
		memcpy(b, hdr, 36);
		b[7] = (uint8_t)nb;
		memcpy(orig_hdr, b, 36);
		memcpy(b + 36, secret + cut, L - cut);
		cap_redactor_init(&r);
		got += cap_redactor_feed(&r, a, cut);
		got += cap_redactor_feed(&r, b, nb);
		assert_memory_equal(b, orig_hdr, 36);
		memcpy(joined, a, cut);
		memcpy(joined + cut, b + 36, L - cut);
		joined[L] = 0;
		assert_int_equal(got, 20);
		assert_string_equal(joined,
				    "<key>EscrowBag</key>\n\t<data>REDACTEDREDACTEDREDA</data>");
	}
}

/* Through the tap: redacted by default, kept with no_redact. */
static void test_tap_redaction(void **state)
{
	const char *f1 = tpath("red.pcapng"), *f2 = tpath("nored.pcapng");
	struct cap_tap_opts keep = {.no_redact = true};
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *p;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		struct cap_writer *w = cap_open(pass ? f2 : f1, CAP_FMT_AUTO, NULL, NULL);
		struct tr_xfer x = {0};
		struct cap_tap *t;
		uint8_t buf[sizeof(plist_escrow)];
		pcap_t *pc;

		memcpy(buf, plist_escrow, sizeof(buf));
		assert_int_equal(cap_tap_new(w, NULL, pass ? &keep : NULL, &t), 0);
		x.dev = &fake_dev;
		x.type = TR_XFER_BULK;
		x.endpoint = 0x85;
		x.buf = buf;
		x.len = sizeof(buf);
		cap_tap_observe(t, TR_EV_SUBMIT, &x, 0);
		x.actual = sizeof(buf) - 1;
		cap_tap_observe(t, TR_EV_COMPLETE, &x, 0);
		assert_int_equal(cap_tap_redacted(t), pass ? 0 : 88);
		/* the transfer buffer itself is never modified */
		assert_memory_equal(buf, plist_escrow, sizeof(buf));
		cap_tap_free(t);
		assert_int_equal(cap_close(w), 0);

		pc = pcap_open_offline(pass ? f2 : f1, err);
		assert_non_null(pc);
		assert_int_equal(pcap_next_ex(pc, &h, &p), 1);
		assert_int_equal(pcap_next_ex(pc, &h, &p), 1);
		assert_int_equal(h->caplen, 64 + sizeof(plist_escrow) - 1);
		assert_int_equal(memmem(p, h->caplen, "QUJDREVG", 8) != NULL, pass == 1);
		assert_int_equal(memmem(p, h->caplen, "REDACTED", 8) != NULL, pass == 0);
		pcap_close(pc);
	}
}

/* ---- TCP view and key log ------------------------------------------------- */

static void test_streams_build(void **state)
{
	uint8_t pkt[64];
	size_t n = cap_streams_build(pkt, CAP_STREAMS_HOST_IP, CAP_STREAMS_DEV_IP, 1, 62078, 1, 1,
				     0x18, 7, (const uint8_t *)"abc", 3);
	uint32_t sum = 0;

	assert_int_equal(n, 43);
	assert_int_equal(pkt[0], 0x45);
	assert_int_equal(pkt[2] << 8 | pkt[3], 43);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)pkt[i] << 8 | pkt[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff); /* header checksum verifies */
	static const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};

	assert_memory_equal(pkt + 12, addrs, 8);
	assert_int_equal(pkt[20] << 8 | pkt[21], 1);
	assert_int_equal(pkt[22] << 8 | pkt[23], 62078);
	assert_int_equal(pkt[33], 0x18);
}

static void test_streams_tshark(void **state)
{
	const char *f = tpath("streams.pcapng"), *kl = tpath("keys.log");
	struct cap_writer *w = cap_open(f, CAP_FMT_AUTO, NULL, NULL);
	struct cap_streams *s;
	struct cap_keylog *k;
	const uint8_t req[] = "\0\0\0\x05hello";
	char *out, line[256];
	FILE *fp;
	struct stat sb;

	assert_non_null(w);
	assert_int_equal(cap_streams_new(w, NULL, &s, NULL), 0);
	assert_int_equal(cap_keylog_open(kl, w, &k, NULL), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 1, NULL, 0), 0);
	assert_int_equal(cap_streams_event(s, EPOCH + 10, 1, 1, 62078, 0, 0, req, 9), 0);
	assert_int_equal(cap_streams_event(s, EPOCH + 20, 1, 1, 62078, 1, 0, req, 4), 0);
	cap_keylog_line(k, "CLIENT_RANDOM 0011 2233");
	cap_keylog_line(k, "bad\nline");
	assert_int_equal(cap_keylog_count(k), 1);
	assert_int_equal(cap_streams_event(s, EPOCH + 30, 1, 1, 62078, 1, 0, req + 4, 5), 0);
	assert_int_equal(cap_streams_event(s, EPOCH + 40, 1, 1, 62078, 0, 2, NULL, 0), 0);
	/* data on a connection never opened: opened implicitly */
	assert_int_equal(cap_streams_event(s, EPOCH + 50, 2, 2, 49152, 0, 0, req, 9), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 1, 2, 0, NULL, 0), LP_EINVAL);
	assert_int_equal(cap_keylog_close(k), 0);
	cap_streams_free(s);
	assert_int_equal(cap_close(w), 0);

	assert_int_equal(stat(kl, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	fp = fopen(kl, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_string_equal(line, "CLIENT_RANDOM 0011 2233\n");
	fclose(fp);

	if (!have_tshark())
		skip();
	/* libpcap reads it all (the DSB is skipped), cleanly */
	{
		char err[PCAP_ERRBUF_SIZE];
		struct pcap_pkthdr *h;
		const u_char *p;
		pcap_t *pc = pcap_open_offline(f, err);
		int rc, cnt = 0;

		assert_non_null(pc);
		assert_int_equal(pcap_datalink(pc), DLT_IPV4);
		while ((rc = pcap_next_ex(pc, &h, &p)) == 1)
			cnt++;
		assert_int_equal(rc, PCAP_ERROR_BREAK);
		assert_int_equal(cnt, 11);
		pcap_close(pc);
	}
	/* the DSB: type 10, TLSK, the line; before the segment sent after it */
	{
		size_t n;
		uint8_t *b = slurp(f, &n);
		const uint8_t *l = memmem(b, n, "CLIENT_RANDOM 0011 2233\n", 24);
		const uint8_t *after = memmem(b, n, "hello", 5);
		uint32_t v[4];

		assert_non_null(l);
		memcpy(v, l - 16, 16);
		assert_int_equal(v[0], 0x0000000A);
		assert_int_equal(v[2], CAP_DSB_TLS_KEYLOG);
		assert_int_equal(v[3], 24);
		assert_non_null(after);
		after = memmem(after + 5, n - (size_t)(after + 5 - b), "hello", 5);
		assert_non_null(after); /* second "hello": the device's, sent after the key */
		assert_true(l < after);
		free(b);
	}

	if (!have_tshark())
		skip();
	out = run("tshark -r %s -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -T fields "
		  "-e tcp.stream -e tcp.srcport -e tcp.dstport -e tcp.flags -e tcp.seq -e tcp.ack "
		  "-e tcp.len -e ip.checksum.status -e tcp.checksum.status 2>/dev/null",
		  f);
	assert_string_equal(out, "0\t1\t62078\t0x0002\t0\t0\t0\t1\t1\n"
				 "0\t62078\t1\t0x0012\t0\t1\t0\t1\t1\n"
				 "0\t1\t62078\t0x0010\t1\t1\t0\t1\t1\n"
				 "0\t1\t62078\t0x0018\t1\t1\t9\t1\t1\n"
				 "0\t62078\t1\t0x0018\t1\t10\t4\t1\t1\n"
				 "0\t62078\t1\t0x0018\t5\t10\t5\t1\t1\n"
				 "0\t1\t62078\t0x0014\t10\t10\t0\t1\t1\n"
				 "1\t2\t49152\t0x0002\t0\t0\t0\t1\t1\n"
				 "1\t49152\t2\t0x0012\t0\t1\t0\t1\t1\n"
				 "1\t2\t49152\t0x0010\t1\t1\t0\t1\t1\n"
				 "1\t2\t49152\t0x0018\t1\t1\t9\t1\t1\n");
	free(out);
}

/* One synthetic packet of the TCP view as the reader sees it. */
struct tcp_pkt {
	uint16_t sp, dp;
	uint32_t seq;
	uint8_t flags;
	size_t len;
	uint8_t data[256];
};

static size_t read_tcp_view(const char *f, struct tcp_pkt *o, size_t max)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *p;
	pcap_t *pc = pcap_open_offline(f, err);
	size_t n = 0;

	assert_non_null(pc);
	while (n < max && pcap_next_ex(pc, &h, &p) == 1) {
		assert_true(h->caplen >= 40);
		o[n].sp = (uint16_t)(p[20] << 8 | p[21]);
		o[n].dp = (uint16_t)(p[22] << 8 | p[23]);
		o[n].seq = (uint32_t)p[24] << 24 | (uint32_t)p[25] << 16 | (uint32_t)p[26] << 8 |
			   p[27];
		o[n].flags = p[33];
		o[n].len = h->caplen - 40;
		assert_true(o[n].len <= sizeof(o[n].data));
		memcpy(o[n].data, p + 40, o[n].len);
		n++;
	}
	pcap_close(pc);
	return n;
}

/* Lockdown's StartSession: plaintext, then TLS from the ClientHello on, then
 * plaintext again after the close_notify alerts: three flows, the TLS one
 * starting with the ClientHello (what Wireshark's TLS heuristic needs). A
 * service connection that is TLS from its first byte stays one flow. */
static void test_streams_tls_flows(void **state)
{
	const char *f = tpath("tlsflows.pcapng");
	struct cap_writer *w = cap_open(f, CAP_FMT_AUTO, NULL, NULL);
	struct cap_streams *s;
	static const uint8_t plain[] = "\0\0\0\x05hello";
	static const uint8_t hello[] = {0x16, 3, 1, 0, 4, 0x01, 0, 0, 0};
	static const uint8_t shello[] = {0x16, 3, 3, 0, 2, 0x02, 0};
	/* app data record cut over two events, then an alert in the same event */
	static const uint8_t app1[] = {0x17, 3, 3, 0, 6, 'a', 'b'};
	static const uint8_t app2[] = {'c', 'd', 'e', 'f', 0x15, 3, 3, 0, 2, 1, 0};
	static const uint8_t alert[] = {0x15, 3, 3, 0, 2, 1, 0};
	struct tcp_pkt pk[40];
	size_t n, i, nsyn = 0, nfin = 0;

	assert_non_null(w);
	assert_int_equal(cap_streams_new(w, NULL, &s, NULL), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 1, NULL, 0), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, plain, 9), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, plain, 9), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, hello, sizeof(hello)), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, shello, sizeof(shello)), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, app1, sizeof(app1)), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, app2, sizeof(app2)), 0);
	/* device: its alert and the plaintext reply in one event */
	{
		uint8_t both[sizeof(alert) + 9];

		memcpy(both, alert, sizeof(alert));
		memcpy(both + sizeof(alert), plain, 9);
		assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, both, sizeof(both)),
				 0);
	}
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 2, NULL, 0), 0);
	/* service connection: TLS from the first byte */
	assert_int_equal(cap_streams_event(s, EPOCH, 2, 2, 58182, 0, 1, NULL, 0), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 2, 2, 58182, 0, 0, hello, sizeof(hello)), 0);
	cap_streams_free(s);
	assert_int_equal(cap_close(w), 0);

	n = read_tcp_view(f, pk, 40);
	for (i = 0; i < n; i++) {
		nsyn += (pk[i].flags & 0x02) && !(pk[i].flags & 0x10);
		nfin += (pk[i].flags & 0x01) != 0;
	}
	assert_int_equal(nsyn, 4); /* 3 lockdown flows + the service */
	assert_int_equal(nfin, 4); /* two flows ended with FIN both ways */
	for (i = 0; i < n; i++) {
		if (pk[i].len == 0)
			continue;
		if (pk[i].data[0] == 0x16 && pk[i].data[5] == 0x01 && pk[i].dp == 62078) {
			/* ClientHello: first payload of a new flow */
			assert_int_equal(pk[i].sp, CAP_STREAMS_FLOW_PORT_FIRST);
			assert_int_equal(pk[i].seq, 1);
		}
	}
	/* every payload on its flow: plaintext before (host port 1) and after
	 * (49153, from seq 1), TLS records in between (49152) */
	{
		size_t nplain = 0;

		for (i = 0; i < n; i++) {
			uint16_t hp = pk[i].sp == 62078 ? pk[i].dp : pk[i].sp;

			if (pk[i].len == 0 || hp == 2)
				continue;
			if (pk[i].len == 9 && pk[i].data[4] == 'h') {
				nplain++;
				assert_int_equal(hp,
						 nplain < 3 ? 1 : CAP_STREAMS_FLOW_PORT_FIRST + 1);
				if (nplain == 3)
					assert_int_equal(pk[i].seq, 1);
			} else {
				assert_int_equal(hp, CAP_STREAMS_FLOW_PORT_FIRST);
			}
		}
		assert_int_equal(nplain, 3);
	}
	/* the service flow keeps its port and carries the ClientHello at seq 1 */
	assert_int_equal(pk[n - 1].sp, 2);
	assert_int_equal(pk[n - 1].dp, 58182);
	assert_int_equal(pk[n - 1].seq, 1);
	assert_int_equal(pk[n - 1].data[0], 0x16);

	if (!have_tshark())
		return;
	{
		char *out = run("tshark -r %s -Y tls.handshake.type==1 -T fields -e tcp.srcport "
				"2>/dev/null",
				f);

		assert_string_equal(out, "49152\n2\n"); /* both found by the TLS heuristic */
		free(out);
	}
}

/* Plaintext in the TCP view is redacted like the USB capture, unless asked. */
static void test_streams_redact(void **state)
{
	for (int pass = 0; pass < 2; pass++) {
		const char *f = tpath("redact-streams.pcapng");
		struct cap_writer *w = cap_open(f, CAP_FMT_AUTO, NULL, NULL);
		struct cap_streams *s;
		size_t len = sizeof(plist_escrow) - 1, n;
		uint8_t *b;

		assert_non_null(w);
		assert_int_equal(cap_streams_new(w, NULL, &s, NULL), 0);
		if (pass == 1)
			cap_streams_set_redact(s, false);
		/* cut in the middle of the EscrowBag body */
		assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0,
						   (const uint8_t *)plist_escrow, 120),
				 0);
		assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0,
						   (const uint8_t *)plist_escrow + 120, len - 120),
				 0);
		assert_true(pass == 1 ? cap_streams_redacted(s) == 0
				      : cap_streams_redacted(s) > 40);
		cap_streams_free(s);
		assert_int_equal(cap_close(w), 0);
		b = slurp(f, &n);
		assert_int_equal(memmem(b, n, "QUJDREVG", 8) != NULL, pass == 1);
		assert_int_equal(memmem(b, n, "MDEyMzQ1", 8) != NULL, pass == 1);
		assert_int_equal(memmem(b, n, "TUlJRXZR", 8) != NULL, pass == 1);
		assert_int_equal(memmem(b, n, "REDACTED", 8) != NULL, pass == 0);
		free(b);
	}
}

/* TLS 1.3 encrypts its alerts (type 23, like application data): after
 * StopSession the plaintext that follows is still plaintext, and redacted. */
static void test_streams_tls13_plaintext_after(void **state)
{
	const char *f = tpath("tls13-after.pcapng");
	struct cap_writer *w = cap_open(f, CAP_FMT_AUTO, NULL, NULL);
	struct cap_streams *s;
	static const uint8_t hello[] = {0x16, 3, 1, 0, 4, 0x01, 0, 0, 0};
	static const uint8_t shello[] = {0x16, 3, 3, 0, 2, 0x02, 0};
	static const uint8_t app[] = {0x17, 3, 3, 0, 3, 'x', 'y', 'z'};
	size_t len = sizeof(plist_escrow) - 1, n;
	uint8_t *b, msg[4 + sizeof(plist_escrow)];

	assert_non_null(w);
	assert_int_equal(cap_streams_new(w, NULL, &s, NULL), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 1, NULL, 0), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, hello, sizeof(hello)), 0);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, shello, sizeof(shello)), 0);
	/* StopSession and its answer, then both close_notify alerts: all type 23 */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 0, 0, app, sizeof(app)),
				 0);
		assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, app, sizeof(app)),
				 0);
	}
	/* the device goes on in plaintext: a lockdown message holding an EscrowBag */
	msg[0] = msg[1] = 0;
	msg[2] = (uint8_t)(len >> 8);
	msg[3] = (uint8_t)len;
	memcpy(msg + 4, plist_escrow, len);
	assert_int_equal(cap_streams_event(s, EPOCH, 1, 1, 62078, 1, 0, msg, 4 + len), 0);
	assert_true(cap_streams_redacted(s) > 40);
	cap_streams_free(s);
	assert_int_equal(cap_close(w), 0);
	b = slurp(f, &n);
	assert_null(memmem(b, n, "QUJDREVG", 8));
	assert_non_null(memmem(b, n, "REDACTED", 8));
	free(b);
}

/* ---- golden usbmux capture (input of tests/t/40-dissector.t) -------------- */

static void mux_out(struct cap_tap *t, uint64_t *ns, uint64_t *id, const uint8_t *d, size_t n)
{
	struct tr_xfer x = {0};

	x.dev = &fake_dev;
	x.type = TR_XFER_BULK;
	x.endpoint = 0x04;
	x.buf = (uint8_t *)d;
	x.len = n;
	x.id = ++*id;
	xsubmit(t, &x, *ns += 1000);
	xdone(t, &x, *ns += 20000, TR_STATUS_COMPLETED, n);
}

static void mux_in(struct cap_tap *t, uint64_t *ns, uint64_t *id, const uint8_t *d, size_t n)
{
	struct tr_xfer x = {0};
	static uint8_t buf[16384];

	x.dev = &fake_dev;
	x.type = TR_XFER_BULK;
	x.endpoint = 0x85;
	x.buf = buf;
	x.len = sizeof(buf);
	x.id = ++*id;
	xsubmit(t, &x, *ns += 1000);
	memcpy(buf, d, n);
	xdone(t, &x, *ns += 150000, TR_STATUS_COMPLETED, n);
}

/* mux v2 TCP packet: 16-byte mux header + 20-byte TCP header + payload */
static size_t mux_tcp(uint8_t *o, uint16_t txs, uint16_t rxs, uint16_t sp, uint16_t dp,
		      uint32_t seq, uint32_t ack, uint8_t flags, const void *pl, size_t n)
{
	struct lp_wr w;

	lp_wr_init_fixed(&w, o, 36 + n);
	lp_wr_be32(&w, 6);
	lp_wr_be32(&w, (uint32_t)(36 + n));
	lp_wr_be32(&w, 0xFEEDFACE);
	lp_wr_be16(&w, txs);
	lp_wr_be16(&w, rxs);
	lp_wr_be16(&w, sp);
	lp_wr_be16(&w, dp);
	lp_wr_be32(&w, seq);
	lp_wr_be32(&w, ack);
	lp_wr_u8(&w, 0x50);
	lp_wr_u8(&w, flags);
	lp_wr_be16(&w, 0x0200);
	lp_wr_be16(&w, 0);
	lp_wr_be16(&w, 0);
	if (n)
		lp_wr_bytes(&w, pl, n);
	return w.len;
}

static size_t lockdown_msg(uint8_t *o, const char *body)
{
	size_t n = strlen(body);

	o[0] = (uint8_t)(n >> 24);
	o[1] = (uint8_t)(n >> 16);
	o[2] = (uint8_t)(n >> 8);
	o[3] = (uint8_t)n;
	memcpy(o + 4, body, n);
	return 4 + n;
}

#define PL_HEAD \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n"
#define PL_TAIL "</dict>\n</plist>\n"

static void write_golden(const char *path)
{
	static const uint8_t ver_out[20] = {0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 2};
	static const uint8_t ver_in[20] = {0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 2};
	static const uint8_t setup[17] = {0,	0,    0,    2, 0, 0,	0,    17, 0xfe,
					  0xed, 0xfa, 0xce, 0, 0, 0xff, 0xff, 7};
	struct cap_open_opts oo = {
		.os = "Linux", .hardware = "golden", .userappl = "linkprobe test"};
	struct cap_writer *w = cap_open(path, CAP_FMT_PCAPNG, &oo, NULL);
	struct lp_clock clk;
	struct cap_tap *t;
	uint8_t pkt[2048], msg[1800];
	uint64_t ns = 0, id = 0x100;
	uint32_t hs = 1, ds = 1; /* next seq, host and device (ISN 0) */
	size_t n, m;

	assert_non_null(w);
	lp_clock_init_virtual(&clk, EPOCH);
	assert_int_equal(cap_tap_new(w, &clk, NULL, &t), 0);
	cap_tap_mark(t, "stage Version");
	mux_out(t, &ns, &id, ver_out, 20);
	mux_in(t, &ns, &id, ver_in, 20);
	mux_out(t, &ns, &id, setup, 17);
	cap_tap_mark(t, "stage Connect");
	n = mux_tcp(pkt, 1, 0xffff, 1, 62078, 0, 0, 0x02, NULL, 0);
	mux_out(t, &ns, &id, pkt, n);
	n = mux_tcp(pkt, 0, 1, 62078, 1, 0, 1, 0x12, NULL, 0);
	mux_in(t, &ns, &id, pkt, n);
	n = mux_tcp(pkt, 2, 0, 1, 62078, 1, 1, 0x10, NULL, 0);
	mux_out(t, &ns, &id, pkt, n);
	cap_tap_mark(t, "stage QueryType");
	m = lockdown_msg(msg,
			 PL_HEAD "\t<key>Label</key>\n\t<string>linkprobe</string>\n"
				 "\t<key>Request</key>\n\t<string>QueryType</string>\n" PL_TAIL);
	n = mux_tcp(pkt, 3, 0, 1, 62078, hs, ds, 0x10, msg, m);
	mux_out(t, &ns, &id, pkt, n);
	hs += (uint32_t)m;
	/* the device sends the length prefix in its own segment (section 0) */
	m = lockdown_msg(
		msg, PL_HEAD
		"\t<key>Request</key>\n\t<string>QueryType</string>\n"
		"\t<key>Type</key>\n\t<string>com.apple.mobile.lockdown</string>\n" PL_TAIL);
	n = mux_tcp(pkt, 1, 3, 62078, 1, ds, hs, 0x10, msg, 4);
	mux_in(t, &ns, &id, pkt, n);
	n = mux_tcp(pkt, 2, 3, 62078, 1, ds + 4, hs, 0x10, msg + 4, m - 4);
	mux_in(t, &ns, &id, pkt, n);
	ds += (uint32_t)m;
	cap_tap_mark(t, "stage GetValue");
	m = lockdown_msg(msg,
			 PL_HEAD "\t<key>Key</key>\n\t<string>IDAMCapability</string>\n"
				 "\t<key>Request</key>\n\t<string>GetValue</string>\n" PL_TAIL);
	n = mux_tcp(pkt, 4, 2, 1, 62078, hs, ds, 0x10, msg, m);
	mux_out(t, &ns, &id, pkt, n);
	hs += (uint32_t)m;
	m = lockdown_msg(msg,
			 PL_HEAD "\t<key>Error</key>\n\t<string>GetProhibited</string>\n"
				 "\t<key>Key</key>\n\t<string>IDAMCapability</string>\n"
				 "\t<key>Request</key>\n\t<string>GetValue</string>\n" PL_TAIL);
	n = mux_tcp(pkt, 3, 4, 62078, 1, ds, hs, 0x10, msg, m);
	mux_in(t, &ns, &id, pkt, n);
	ds += (uint32_t)m;
	n = mux_tcp(pkt, 5, 3, 1, 62078, hs, ds, 0x04, NULL, 0);
	mux_out(t, &ns, &id, pkt, n);
	assert_int_equal(cap_tap_error(t), 0);
	cap_tap_free(t);
	assert_int_equal(cap_close(w), 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void test_golden_capture(void **state)
{
	const char *f = tpath("golden.pcapng");
	uint8_t *a, *b;
	size_t na, nb;
	const char *upd = getenv("LP_UPDATE_GOLDEN");

	write_golden(upd && *upd == '1' ? GOLDEN : f);
	if (upd && *upd == '1')
		return;
	a = slurp(f, &na);
	b = slurp(GOLDEN, &nb);
	if (!b) {
		free(a);
		skip(); /* not run from the top of the tree */
	}
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	free(a);
	free(b);
}

static int setup_all(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_all(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Issue 10: a binary plist (a device may answer Pair in bplist00) keeps
 * its secrets out of the capture too, whole or cut across transfers. */
static uint8_t *bplist_secret_msg(size_t *len)
{
	static const uint8_t bag[40] = "ESCROW-SECRET-0123456789-ESCROW-SECRET!";
	plist_t d = plist_new_dict();
	char *bin = NULL;
	uint32_t bl = 0;
	uint8_t *m;

	plist_dict_set_item(d, "Request", plist_new_string("Pair"));
	plist_dict_set_item(d, "EscrowBag", plist_new_data((const char *)bag, sizeof(bag)));
	plist_dict_set_item(d, "HostID", plist_new_string("ABCD-1234"));
	plist_dict_set_item(d, "HostPrivateKey",
			    plist_new_data("PRIVATE-KEY-BYTES-PRIVATE-KEY", 29));
	plist_to_bin(d, &bin, &bl);
	plist_free(d);
	m = malloc(4 + bl);
	assert_non_null(m);
	m[0] = (uint8_t)(bl >> 24), m[1] = (uint8_t)(bl >> 16), m[2] = (uint8_t)(bl >> 8),
	m[3] = (uint8_t)bl;
	memcpy(m + 4, bin, bl);
	plist_to_bin_free(bin);
	*len = 4 + bl;
	return m;
}

static bool has(const uint8_t *b, size_t n, const char *s)
{
	return memmem(b, n, s, strlen(s)) != NULL;
}

static void test_redact_binary_plist(void **state)
{
	size_t len;
	uint8_t *m = bplist_secret_msg(&len);
	plist_t back = NULL;

	uint8_t *orig = malloc(len);
	size_t changed = 0, got;

	assert_non_null(orig);
	memcpy(orig, m, len);
	assert_true(has(m, len, "ESCROW-SECRET"));
	got = cap_redact(m, len);
	/* the count is of the bytes changed: the 40 + 29 secret bytes, less
	 * those that already held the marker's letter at their place */
	for (size_t i = 0; i < len; i++)
		changed += m[i] != orig[i];
	free(orig);
	assert_int_equal(got, changed);
	assert_in_range(got, 60, 40 + 29);
	assert_false(has(m, len, "ESCROW-SECRET"));
	assert_false(has(m, len, "PRIVATE-KEY-BYTES"));
	/* exact: the structure survives, the rest is untouched */
	plist_from_bin((const char *)m + 4, (uint32_t)(len - 4), &back);
	assert_non_null(back);
	assert_string_equal(plist_get_string_ptr(plist_dict_get_item(back, "HostID"), NULL),
			    "ABCD-1234");
	plist_free(back);
	free(m);

	/* cut across two transfers at every point, the prefix in its own one */
	m = bplist_secret_msg(&len);
	for (size_t cut = 5; cut < len; cut++) {
		struct cap_redactor r;
		uint8_t *b = malloc(len);

		memcpy(b, m, len);
		cap_redactor_init(&r);
		cap_redactor_feed(&r, b, 4);
		cap_redactor_feed(&r, b + 4, cut - 4);
		cap_redactor_feed(&r, b + cut, len - cut);
		if (has(b, len, "ESCROW-SECRET") || has(b, len, "PRIVATE-KEY-BYTES"))
			fail_msg("secret left in the capture with the cut at %zu of %zu", cut, len);
		free(b);
	}
	free(m);
}

/* One data object that two dictionaries both name as their EscrowBag (a
 * binary plist may share objects): blanked once, counted once. The count
 * used to add the object's length for every reference (the redact fuzzer:
 * 256 bytes "replaced" in a 217-byte input). */
static void test_redact_binary_plist_shared_value(void **state)
{
	static const uint8_t body[] = {
		'b',  'p', 'l', 'i', 's', 't', '0', '0', 0xD2, 1,   3,	2, 4, /* 0: {1: 2, 3: 4} */
		0x59, 'E', 's', 'c', 'r', 'o', 'w', 'B', 'a',  'g',	      /* 1 */
		0x44, 'w', 'x', 'y', 'z',				      /* 2: the secret */
		0x55, 'O', 't', 'h', 'e', 'r',				      /* 3 */
		0xD1, 1,   2,						      /* 4: {1: 2} again */
		8,    13,  23,	28,  34,				      /* offset table */
		0,    0,   0,	0,   0,	  0,   1,   1,			      /* trailer */
		0,    0,   0,	0,   0,	  0,   0,   5,	 0,    0,   0,	0, 0,
		0,    0,   0,	0,   0,	  0,   0,   0,	 0,    0,   37,
	};
	uint8_t m[4 + sizeof(body)];
	plist_t back = NULL;

	(void)state;
	m[0] = m[1] = m[2] = 0;
	m[3] = (uint8_t)sizeof(body);
	memcpy(m + 4, body, sizeof(body));
	plist_from_bin((const char *)body, (uint32_t)sizeof(body), &back);
	assert_non_null(back); /* a valid plist: libplist reads it */
	plist_free(back);
	assert_int_equal(cap_redact(m, sizeof(m)), 4);
	assert_false(has(m, sizeof(m), "wxyz"));
	assert_memory_equal(m + 4 + 24, "REDA", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usbmon_bulk_out_submit_bytes),
		cmocka_unit_test(test_usbmon_kernel_rules),
		cmocka_unit_test(test_usbmon_decode),
		cmocka_unit_test(test_pcapng_readback),
		cmocka_unit_test(test_pcap_readback),
		cmocka_unit_test(test_tshark_fields),
		cmocka_unit_test(test_writer_misc),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_kill_safety_pcapng),
		cmocka_unit_test(test_kill_safety_pcap),
		cmocka_unit_test(test_redact_plist),
		cmocka_unit_test(test_redact_binary_plist),
		cmocka_unit_test(test_redact_binary_plist_shared_value),
		cmocka_unit_test(test_redact_pem),
		cmocka_unit_test(test_redact_split),
		cmocka_unit_test(test_tap_redaction),
		cmocka_unit_test(test_streams_build),
		cmocka_unit_test(test_streams_tshark),
		cmocka_unit_test(test_streams_tls_flows),
		cmocka_unit_test(test_streams_redact),
		cmocka_unit_test(test_streams_tls13_plaintext_after),
		cmocka_unit_test(test_golden_capture),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
