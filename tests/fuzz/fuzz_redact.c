/* fuzz_redact.c - libFuzzer harness for the capture redactor (device
 * payload bytes are untrusted). Byte 0 picks where the input is cut into two
 * "USB transfers" fed through one cap_redactor. Checks: outside binary
 * plists only base64 characters are ever replaced; every replacement is a
 * letter of "REDACTED"; inside a binary plist (after a "bplist00") any byte
 * may be replaced, by those letters only. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/capture/cap_tap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cap_redactor r;
	uint8_t *b;
	size_t cut, i, n, changed = 0;

	if (size < 1)
		return 0;
	n = size - 1;
	cut = n ? data[0] % (n + 1) : 0;
	b = malloc(n ? n : 1);
	if (!b)
		return 0;
	memcpy(b, data + 1, n);
	cap_redactor_init(&r);
	changed += cap_redactor_feed(&r, b, cut);
	changed += cap_redactor_feed(&r, b + cut, n - cut);
	{
		const uint8_t *bp = memmem(data + 1, n, "bplist00", 8);
		size_t bp_at = bp ? (size_t)(bp - (data + 1)) : n;

		for (i = 0; i < n; i++) {
			if (b[i] == data[1 + i])
				continue;
			if (!strchr("REDACT", b[i]) || (i < bp_at && !is_b64(data[1 + i])))
				abort();
		}
	}
	if (changed > n)
		abort();
	free(b);
	return 0;
}
