/* lp_str.h - string helpers for untrusted text. */
#ifndef LP_STR_H
#define LP_STR_H

#include <stddef.h>
#include <stdint.h>

/* Copy untrusted bytes into dst (size dstsz > 0, always NUL-terminated) so
 * that they are safe to print on a terminal: printable ASCII is kept, valid
 * UTF-8 sequences of printable code points are kept, everything else (control
 * characters, ESC, DEL, C1 controls, invalid UTF-8, NUL, and the invisible or
 * reordering Unicode format characters: zero-width spaces and joiners, bidi
 * marks, embeddings, overrides and isolates, BOM, soft hyphen, tags, line and
 * paragraph separators) becomes '?' - one '?' per byte of the sequence.
 * Output is truncated at a character boundary. Returns strlen(dst). */
size_t lp_sanitize(char *dst, size_t dstsz, const void *src, size_t srclen);

/* Same for a NUL-terminated string (NULL -> ""). */
size_t lp_sanitize_str(char *dst, size_t dstsz, const char *src);

/* Hex-encode n bytes into dst (needs 2n+1). */
void lp_hex(char *dst, const uint8_t *src, size_t n);

#endif
