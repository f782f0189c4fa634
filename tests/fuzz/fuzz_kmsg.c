/* fuzz_kmsg.c - libFuzzer harness for the kernel-log reader (usb/kmsg.c):
 * the input split into lines goes through usbk_feed_line (the line parser
 * and the USB matchers), and each line through usbk_parse_line: a record
 * that parses must point inside its line; what is kept must be terminated
 * and free of control characters.
 * Also builds standalone: -DFUZZ_MAIN (tests/fuzz/fuzz_main.h). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usb/kmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usbk_findings f;
	const char *p = (const char *)data, *end = p + size;

	memset(&f, 0, sizeof(f));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct usbk_record rec;

		if (usbk_parse_line(p, n, &rec) == 0 &&
		    (rec.text < p || rec.text + rec.text_len > p + n || rec.prio > 7))
			abort();
		usbk_feed_line(&f, p, n, 0);
		p += n + (nl != NULL);
	}
	if (memchr(f.last_error, '\0', sizeof(f.last_error)) == NULL ||
	    memchr(f.port, '\0', sizeof(f.port)) == NULL)
		abort();
	for (const unsigned char *q = (const unsigned char *)f.last_error; *q; q++)
		if (*q < 0x20 || *q == 0x7f)
			abort();
	if (f.errors > f.records || f.attempts > f.records)
		abort();
	return 0;
}

#include "tests/fuzz/fuzz_main.h"
