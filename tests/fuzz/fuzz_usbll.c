/* fuzz_usbll.c - libFuzzer harness for the bus-level packet decoder
 * (src/capture/usbll.c) without the pcap layer: the input is a sequence of
 * records, each a length byte followed by that many bytes (the last one
 * takes what is left), fed with increasing timestamps whose step comes from
 * the length byte's high bit (so SOF grids, timeouts and resets are
 * reached); the speed comes from the first byte. Transfers handed over are
 * read in full so ASan sees any bad length. */
#include <stdint.h>
#include <stdio.h>

#include "src/capture/usbll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void on_xfer(void *ud, const struct usbll_xfer *x)
{
	for (size_t i = 0; i < x->len; i++)
		sink ^= x->data[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usbll_cb cb = {.xfer = on_xfer};
	struct usbll *u;
	uint64_t t = 0, pkt = 0;
	size_t off = 1;

	if (size < 1)
		return 0;
	u = usbll_new((enum tr_speed)(data[0] % 4), &cb, NULL);
	if (!u)
		return 0;
	while (off < size) {
		size_t n = data[off] & 0x7f;
		t += data[off] & 0x80 ? 4000000 : 125000 / 4;
		off++;
		if (n > size - off)
			n = size - off;
		usbll_feed(u, t, ++pkt, data + off, n, n + (pkt % 97 == 0));
		off += n;
	}
	usbll_finish(u);
	usbll_free(u);
	return 0;
}
