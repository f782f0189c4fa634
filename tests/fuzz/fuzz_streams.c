/* fuzz_streams.c - libFuzzer harness for the TCP view (src/capture/cap_streams.c):
 * its TLS record walk and flow switching see device bytes. The input is a
 * list of events: byte 0 = conn (bits 0-1) | dir (bit 2) | event (bits 3-4,
 * 3 = data too), byte 1 = payload length, then the payload. Every event must
 * succeed (writes go to /dev/null), and the sequence numbers of a flow must
 * only grow by what was sent: checked by the IPv4/TCP build staying within
 * its buffer under ASan. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "src/capture/cap_streams.h"
#include "src/capture/cap_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cap_writer *w = cap_open("/dev/null", CAP_FMT_PCAPNG, NULL, NULL);
	struct cap_streams *s;
	size_t off = 0;

	if (!w)
		abort();
	if (cap_streams_new(w, NULL, &s, NULL))
		abort();
	cap_streams_set_redact(s, size & 1);
	while (off + 2 <= size) {
		uint8_t h = data[off];
		size_t n = data[off + 1];
		uint32_t conn = h & 3;
		int dir = (h >> 2) & 1, ev = (h >> 3) & 3;

		off += 2;
		if (n > size - off)
			n = size - off;
		if (ev == 3)
			ev = CAP_STREAMS_DATA;
		if (cap_streams_event(s, 0, conn, (uint16_t)(conn + 1), 62078, dir, ev,
				      n ? data + off : NULL, ev == CAP_STREAMS_DATA ? n : 0))
			abort();
		off += n;
	}
	cap_streams_free(s);
	cap_close(w);
	return 0;
}
