/* fuzz_mux.c - libFuzzer harness for the usbmux codec (proto/mux.c).
 *
 * A host codec and a device codec are first brought up back to back (VERSION,
 * SETUP, one connection to lockdownd) so the TCP paths run; then the input is
 * played as transfers into either codec:
 *
 *   byte 0: bit 0 device answers v1, bit 1 cross-feed codec output to the
 *           other side, bit 2 device echoes data, bit 3 device MTU 65536
 *   then records: [ctl u8][len u16 BE][len bytes]
 *     ctl bit 0: 0 = feed the host, 1 = feed the device
 *     ctl bit 1: transfer_end
 *     ctl bit 2: afterwards the host sends the record's bytes on its conns
 *     ctl bit 3: afterwards close one connection (host if bit 4 clear)
 *     ctl bit 5: afterwards the host opens another connection
 *   a short last record takes what is left.
 * Every record is also run through mux_decode() with both header versions.
 * Also runs under gcc with a main() when built with -DFUZZ_MUX_MAIN.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/mux.h"

struct fz {
	struct mux *h, *d;
	bool echo;
	uint32_t hconn[8];
	size_t nh;
	uint32_t dconn[8];
	size_t nd;
};

static void fz_connect(void *ud, uint32_t conn, uint16_t port, int result)
{
	struct fz *f = ud;

	if (!result && f->nh < 8)
		f->hconn[f->nh++] = conn;
}

static void fz_accept(void *ud, uint32_t conn, uint16_t port)
{
	struct fz *f = ud;

	if (f->nd < 8)
		f->dconn[f->nd++] = conn;
}

static void fz_ddata(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	struct fz *f = ud;

	if (f->echo)
		mux_send(f->d, conn, data, len);
}

static void fz_hdata(void *ud, uint32_t conn, const uint8_t *data, size_t len)
{
	/* touch every byte so ASan sees the borrowed range */
	volatile uint8_t x = 0;

	for (size_t i = 0; i < len; i++)
		x ^= data[i];
	(void)x;
}

static void fz_control(void *ud, uint8_t type, const uint8_t *text, size_t len)
{
	fz_hdata(ud, 0, text, len);
}

static void fz_drain(struct mux *from, struct mux *to, bool to_host)
{
	uint8_t *pkt;
	size_t len;
	int n = 0;

	while (mux_out_take(from, &pkt, &len) == 0) {
		if (to && n++ < 256) {
			if (to_host) {
				for (size_t off = 0; off < len; off += 16384) {
					size_t c = len - off > 16384 ? 16384 : len - off;
					mux_feed(to, pkt + off, c, c < 16384);
				}
			} else {
				mux_feed(to, pkt, len, true);
			}
		}
		free(pkt);
	}
}

static void fz_exchange(struct fz *f, int rounds)
{
	for (int i = 0; i < rounds && (mux_out_pending(f->h) || mux_out_pending(f->d)); i++) {
		fz_drain(f->h, f->d, false);
		fz_drain(f->d, f->h, true);
	}
	fz_drain(f->h, NULL, false);
	fz_drain(f->d, NULL, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mux_cbs hcb = {
		.on_connect = fz_connect, .on_data = fz_hdata, .on_control = fz_control};
	struct mux_cbs dcb = {.on_accept = fz_accept, .on_data = fz_ddata};
	struct fz f;
	uint8_t opt;
	size_t off = 1;
	uint32_t c;

	if (!size)
		return 0;
	memset(&f, 0, sizeof(f));
	opt = data[0];
	f.echo = opt & 4;
	f.h = mux_new(MUX_ROLE_HOST, &hcb, &f, NULL);
	f.d = mux_new(MUX_ROLE_DEVICE, &dcb, &f, NULL);
	if (!f.h || !f.d)
		goto out;
	if (opt & 1)
		mux_set_device_version(f.d, 1);
	if (opt & 8)
		mux_set_mtu(f.d, MUX_MAX_PACKET);
	mux_listen(f.d, MUX_PORT_LOCKDOWN);
	mux_listen(f.d, 1);
	mux_start(f.h, 2);
	fz_exchange(&f, 8);
	mux_connect(f.h, MUX_PORT_LOCKDOWN, &c);
	fz_exchange(&f, 8);

	while (off < size) {
		uint8_t ctl = data[off++];
		size_t len = 0;
		struct mux_packet p;

		if (size - off >= 2) {
			len = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
		}
		if (len > size - off)
			len = size - off;
		mux_decode(data + off, len, 1, &p);
		mux_decode(data + off, len, 2, &p);
		mux_feed(ctl & 1 ? f.d : f.h, data + off, len, ctl & 2);
		if ((ctl & 4) && f.nh)
			mux_send(f.h, f.hconn[len % f.nh], data + off, len);
		if ((ctl & 8) && (ctl & 16) && f.nd)
			mux_close(f.d, f.dconn[len % f.nd]);
		else if ((ctl & 8) && f.nh)
			mux_close(f.h, f.hconn[len % f.nh]);
		if (ctl & 32)
			mux_connect(f.h, (uint16_t)(ctl & 64 ? 1 : MUX_PORT_LOCKDOWN), &c);
		off += len;
		if (opt & 2)
			fz_exchange(&f, 16);
		else
			fz_exchange(&f, 0);
	}
out:
	mux_free(f.h);
	mux_free(f.d);
	return 0;
}

#ifdef FUZZ_MUX_MAIN
#include <stdio.h>

/* gcc driver: run each file named on the command line once. */
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *fp = fopen(argv[i], "rb");
		uint8_t *buf = malloc(1 << 20);
		size_t n;

		if (!fp || !buf)
			return 1;
		n = fread(buf, 1, 1 << 20, fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
		free(buf);
	}
	return 0;
}
#endif
