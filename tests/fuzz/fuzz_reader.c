/* fuzz_reader.c - libFuzzer harness for the capture reader's transfer entry
 * (cap_reader_transfer, the one a non-usbmon source drives): the input is a
 * sequence of transfers, each an 8-byte head then its data:
 *
 *   +------+------+----+--------+------+-------+--------+----
 *   | type | xfer | ep | status | addr | len   | dlen   | setup (8, control S) + data
 *   +------+------+----+--------+------+-------+--------+----
 *     u8     u8    u8    s8       u8     u8      u16 LE (cut to what is left)
 *   type % 3: S, C, E; len: the transfer length in units of 64 bytes
 *
 * The id pairs a submit with its completion by (xfer, ep). Every event is
 * consumed (plists walked) so the borrowed pointers are touched. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "src/capture/reader.h"
#include "usb/cap_usbmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool on_ev(void *ud, const struct cap_event *ev)
{
	size_t *sum = ud;

	switch (ev->type) {
	case CAP_EV_ANOMALY:
		*sum += strlen(ev->u.text);
		break;
	case CAP_EV_LOCKDOWN:
		*sum += plist_dict_get_size(ev->u.msg);
		break;
	case CAP_EV_CONTROL:
		for (size_t i = 0; i < ev->u.ctrl.data_len; i++)
			*sum += ev->u.ctrl.data[i];
		break;
	default:
		break;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sum = 0, off = 0;
	uint64_t t = 0, pkt = 0;
	struct cap_reader *r = cap_reader_new(NULL, on_ev, &sum);

	if (!r)
		return 0;
	cap_reader_begin(r, CAP_LINKTYPE_USB_LINUX_MMAPPED);
	while (size - off >= 8) {
		const uint8_t *h = data + off;
		struct cap_transfer x = {0};
		const uint8_t *setup = NULL;
		size_t dlen = (size_t)(h[6] | h[7] << 8);

		off += 8;
		x.type = "SCE"[h[0] % 3];
		x.xfer = h[1] & 3;
		x.ep = h[2];
		x.status = (int8_t)h[3];
		x.len = (uint32_t)h[5] * 64;
		x.len_known = true;
		if (x.type == 'S' && x.xfer == 2) {
			if (size - off < 8)
				break;
			setup = data + off;
			off += 8;
		}
		if (dlen > size - off)
			dlen = size - off;
		x.data = data + off;
		x.data_len = dlen;
		off += dlen;
		t += 1000;
		cap_reader_transfer(r, t, ++pkt, (uint64_t)x.xfer << 8 | x.ep, 1, h[4] & 3, setup,
				    &x);
	}
	cap_reader_finish(r, false);
	cap_reader_free(r);
	return sum == 0xdeadbeef;
}
