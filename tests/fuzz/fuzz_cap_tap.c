/* fuzz_cap_tap.c - libFuzzer harness: the capture tap (src/capture/cap_tap.c):
 * transfers -> usbmon records, stage markers, and the per-endpoint redaction
 * of secrets that spans transfer boundaries, written through the pcapng
 * writer (to /dev/null).
 *
 * Input: [u8 options] then events [u8 what][u8 endpoint][u8 status][u16 BE
 * length][bytes]: what & 3 is submit / complete / submit error / a stage
 * marker (the bytes are its text), what & 4 a control transfer (the first 8
 * bytes its setup), what >> 3 the device (several attachments); options bit 0
 * turns redaction off, bits 1-3 cap the data per record. Data the tap writes
 * is device data: EscrowBag and private keys inside it must be blanked (the
 * redaction tests say how); here it only must not crash or overrun.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/capture/cap_tap.h"
#include "src/capture/cap_writer.h"
#include "usb/transport.h"

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[8] = {0, 1, 7, 64, 512, 4096, 16384, 65536};
	struct tr_dev devs[4];
	struct cap_tap_opts o = {0};
	struct cap_writer *w;
	struct cap_tap *t = NULL;
	size_t off = 1;
	uint64_t now = 1700000000ull * 1000000000ull, id = 1;

	if (size < 1)
		return 0;
	o.no_redact = data[0] & 1;
	o.data_max = caps[(data[0] >> 1) & 7];
	w = cap_open("/dev/null", CAP_FMT_PCAPNG, NULL, NULL);
	if (!w)
		return 0;
	if (cap_tap_new(w, NULL, &o, &t))
		goto out;
	memset(devs, 0, sizeof(devs));
	for (int i = 0; i < 4; i++) {
		devs[i].info = (struct tr_devinfo){.bus = 1,
						   .addr = (uint8_t)(2 + i),
						   .vid = 0x05ac,
						   .pid = 0x12a8,
						   .speed = i & 1 ? TR_SPEED_FULL : TR_SPEED_HIGH,
						   .session = (uint32_t)i};
	}
	while (size - off >= 5) {
		uint8_t what = data[off], ep = data[off + 1], st = data[off + 2];
		size_t len = (size_t)data[off + 3] << 8 | data[off + 4];
		struct tr_xfer x;
		uint8_t *buf;

		off += 5;
		if (len > size - off)
			len = size - off;
		if ((what & 3) == 3) {
			char text[256];
			size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;

			memcpy(text, data + off, n);
			text[n] = 0;
			cap_tap_mark(t, text);
			off += len;
			continue;
		}
		buf = malloc(len ? len : 1);
		if (!buf)
			break;
		memcpy(buf, data + off, len);
		off += len;
		memset(&x, 0, sizeof(x));
		x.dev = &devs[(what >> 3) & 3];
		x.endpoint = ep;
		x.id = id++;
		x.submit_ns = now;
		x.done_ns = now + 125000;
		now += 250000;
		if (what & 4) {
			x.type = TR_XFER_CONTROL;
			memcpy(x.setup, buf, len < 8 ? len : 8);
			x.endpoint = x.setup[0] & 0x80;
			x.buf = len > 8 ? buf + 8 : buf;
			x.len = len > 8 ? len - 8 : 0;
		} else {
			x.type = TR_XFER_BULK;
			x.buf = buf;
			x.len = len;
		}
		x.status = (enum tr_status)(st % 7);
		x.actual = x.len;
		cap_tap_observe(t,
				(what & 3) == 0	  ? TR_EV_SUBMIT
				: (what & 3) == 1 ? TR_EV_COMPLETE
						  : TR_EV_SUBMIT_ERROR,
				&x, (what & 3) == 2 ? LP_EIO : 0);
		free(buf);
	}
	sink += cap_tap_records(t) + cap_tap_redacted(t);
out:
	cap_tap_free(t);
	cap_close(w);
	return 0;
}
