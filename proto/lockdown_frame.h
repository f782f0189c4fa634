/* lockdown_frame.h - lockdown message framing, sans-I/O, both roles.
 *
 * Wire format (doc/protocol.md 4.1): a 4-byte big-endian length, then that
 * many bytes of property list (XML "<?xml" or binary "bplist00"), parsed
 * through libplist only. Lengths over LKD_MAX_MESSAGE are refused before any
 * allocation. Control bytes < 0x20 other than TAB/LF/CR in XML are replaced
 * before parsing (some iOS versions emit them).
 */
#ifndef LP_LOCKDOWN_FRAME_H
#define LP_LOCKDOWN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <plist/plist.h>

#define LKD_MAX_MESSAGE (4u << 20) /* 4 MiB: far above any real lockdown message */

struct lkd_framer;

/* New framer (NULL on allocation failure). */
struct lkd_framer *lkd_framer_new(void);
void lkd_framer_free(struct lkd_framer *f);
/* Append received bytes. LP_ETOOBIG if a length prefix over the cap was seen
 * (the framer is then dead: every later call returns the same error). */
int lkd_framer_feed(struct lkd_framer *f, const uint8_t *buf, size_t len);
/* As lkd_framer_feed, but stop at the first frame boundary: take bytes only
 * until one more frame is complete (or `len` runs out), and say in *used how
 * many were taken. The bytes after a frame stay with the caller - lockdown
 * switches the same stream to TLS right after a StartSession reply and back
 * after StopSession, so what follows a frame may belong to another layer. */
int lkd_framer_feed_one(struct lkd_framer *f, const uint8_t *buf, size_t len, size_t *used);
/* Next complete message: 0 and *out (owned, plist_free) when one is ready;
 * LP_EAGAIN when more bytes are needed; LP_EPLIST when the body is not a
 * plist dictionary (that message is consumed and dropped); LP_ETOOBIG as above.
 * If raw/raw_len are non-NULL they receive a copy (owned, free()) of the body. */
int lkd_framer_next(struct lkd_framer *f, plist_t *out, uint8_t **raw, size_t *raw_len);
/* Bytes buffered but not yet a whole message. */
size_t lkd_framer_pending(const struct lkd_framer *f);

/* Encode `msg` (borrowed) as XML with the length prefix: *out owned (free()). */
int lkd_frame_encode(plist_t msg, uint8_t **out, size_t *len);

/* Decode one plist body (no prefix) from untrusted bytes: XML or binary,
 * sanitizing XML control bytes. Nesting deeper than LKD_MAX_DEPTH containers
 * is refused before libplist sees the bytes (proto/plist_depth.h), and so is
 * a binary plist that names a key twice in one dict (libplist keeps both).
 * *out owned. LP_EPLIST on failure. */
int lkd_plist_decode(const uint8_t *body, size_t len, plist_t *out);

/* The top-level view of a plist body, for readers that only look at the
 * root dictionary's scalars (the capture analyzer: Request, Error, Key,
 * Value, SessionID, Port...). The common XML shape - the usual <?xml?> and
 * Apple <!DOCTYPE> lines (optional, exactly), <plist version="1.0">, a root <dict> of <key>s whose values are
 * <string> (no entities), <true/>/<false/>, decimal <integer>, or a <data>,
 * <real>, <date>, nested <dict>/<array> (these kept as empty values of their
 * type, their structure still checked: known tags, balanced, at most
 * LKD_MAX_DEPTH deep) - is read directly, about ten times cheaper than
 * libplist; anything else (binary plists, entities, comments, CDATA,
 * attributes, control bytes, duplicate keys, a tag it does not know) goes
 * through lkd_plist_decode(), so every body gets a dictionary with the same
 * root keys, types and scalar values as lkd_plist_decode() would give, or
 * LP_EPLIST (tests/fuzz/fuzz_lockdown.c holds the two to that). *out owned. */
int lkd_plist_decode_top(const uint8_t *body, size_t len, plist_t *out);
/* Make lkd_framer_next() decode with lkd_plist_decode_top(). */
void lkd_framer_top_only(struct lkd_framer *f, int on);
/* The view: a few known root keys of each message, without a libplist
 * dictionary, for a reader that looks up a known few keys (the capture
 * analyzer): building and freeing the dictionary was a fifth of analyzing a
 * lockdown-heavy capture. The body is read as lkd_plist_decode_top() reads
 * it (the same shape check, every key checked, duplicates refused); a body
 * it does not read goes through lkd_plist_decode() and the view borrows
 * from that dictionary. So a view holds the same values as
 * lkd_plist_decode_top()'s dictionary has at those keys. */
#define LKD_TOP_KEYS_MAX 16
struct lkd_view_item {
	const char *key; /* borrowed from the framer's keys */
	plist_type type; /* PLIST_STRING, PLIST_BOOLEAN, PLIST_UINT or another type */
	const char *str; /* PLIST_STRING: borrowed from the view */
	uint64_t uint;	 /* PLIST_UINT */
	uint8_t boolean; /* PLIST_BOOLEAN */
};
struct lkd_view {
	size_t n; /* the keys present in the message */
	struct lkd_view_item item[LKD_TOP_KEYS_MAX];
	plist_t pl; /* owned: what libplist decoded, when it did */
	char *text; /* owned: the string values read directly */
	size_t cap, used;
};
/* The keys lkd_framer_next_view() keeps (NULL-terminated, at most
 * LKD_TOP_KEYS_MAX, borrowed for the framer's life). LP_EINVAL for more. */
int lkd_framer_top_keys(struct lkd_framer *f, const char *const *keys);
/* Next complete message as a view of those keys: returns as
 * lkd_framer_next(). `v` (zeroed before its first use) is cleared first and
 * holds the message until the next call, lkd_view_clear() or
 * lkd_view_release(). */
int lkd_framer_next_view(struct lkd_framer *f, struct lkd_view *v);
/* Empty the view (string bytes wiped, the dictionary freed), keeping its
 * buffer; release also frees the buffer. */
void lkd_view_clear(struct lkd_view *v);
void lkd_view_release(struct lkd_view *v);
/* The lkd_dict_* getters on a view: NULL / dflt when absent or another type. */
const char *lkd_view_str(const struct lkd_view *v, const char *key);
int lkd_view_bool(const struct lkd_view *v, const char *key, int dflt);
uint64_t lkd_view_uint(const struct lkd_view *v, const char *key, uint64_t dflt);

/* Convenience getters on a dictionary: NULL / false if absent or wrong type.
 * Returned strings borrowed from the plist. */
const char *lkd_dict_str(plist_t dict, const char *key);
int lkd_dict_bool(plist_t dict, const char *key, int dflt);
/* The unsigned integer at `key` of a dict, or dflt (absent / another type). */
uint64_t lkd_dict_uint(plist_t dict, const char *key, uint64_t dflt);

#endif
