/* lp_str.c - sanitizing untrusted strings for terminals and logs. */
#include "src/base/lp_str.h"

#include <string.h>

/* Unicode format characters (general category Cf, Unicode 15.0) and the line
 * and paragraph separators (Zl, Zp): invisible, or they reorder (bidi
 * embeddings, overrides, isolates, marks) or break what a terminal shows, so
 * a device name could hide or disguise text. Sorted ranges, inclusive. */
static const struct {
	uint32_t lo, hi;
} invisible[] = {
	{0x00AD, 0x00AD},   {0x0600, 0x0605},	{0x061C, 0x061C},   {0x06DD, 0x06DD},
	{0x070F, 0x070F},   {0x0890, 0x0891},	{0x08E2, 0x08E2},   {0x180E, 0x180E},
	{0x200B, 0x200F},   {0x2028, 0x202E},	{0x2060, 0x2064},   {0x2066, 0x206F},
	{0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},	{0x110BD, 0x110BD}, {0x110CD, 0x110CD},
	{0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
	{0xE0020, 0xE007F},
};

static int is_invisible(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(invisible) / sizeof(invisible[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cp < invisible[mid].lo)
			hi = mid;
		else if (cp > invisible[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

/* Length of a valid, printable UTF-8 sequence at s (0 if invalid). */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 0;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	/* overlong, surrogates, out of range, C1 controls, format characters */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF || (cp >= 0x80 && cp < 0xA0) ||
	    is_invisible(cp))
		return 0;
	return len;
}

size_t lp_sanitize(char *dst, size_t dstsz, const void *src, size_t srclen)
{
	const uint8_t *s = src;
	size_t o = 0, i = 0;

	if (!dstsz)
		return 0;
	while (s && i < srclen) {
		size_t l = 1;
		if (s[i] >= 0x20 && s[i] < 0x7F) {
			if (o + 1 >= dstsz)
				break;
			dst[o++] = (char)s[i];
		} else if ((l = utf8_len(s + i, srclen - i)) > 0) {
			if (o + l >= dstsz)
				break;
			memcpy(dst + o, s + i, l);
			o += l;
		} else {
			l = 1;
			if (o + 1 >= dstsz)
				break;
			dst[o++] = '?';
		}
		i += l;
	}
	dst[o] = '\0';
	return o;
}

size_t lp_sanitize_str(char *dst, size_t dstsz, const char *src)
{
	return lp_sanitize(dst, dstsz, src, src ? strlen(src) : 0);
}

void lp_hex(char *dst, const uint8_t *src, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = hx[src[i] >> 4];
		dst[2 * i + 1] = hx[src[i] & 15];
	}
	dst[2 * n] = '\0';
}
