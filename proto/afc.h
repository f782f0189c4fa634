/* afc.h - the Apple File Conduit (lockdown service "com.apple.afc"): the
 * packet codec, and a client over a stream for the file operations the
 * cable test's throughput measurement needs (open, write, read, close,
 * file info, remove). Reference: doc/protocol.md 4.12.
 *
 * Every AFC packet is a 40-byte header (magic "CFA6LPAA", then four
 * little-endian u64: entire length, header length, packet number,
 * operation), then operation data up to the header length, then a payload
 * up to the entire length. A reply carries the request's packet number.
 * Replies are untrusted: their lengths are checked against AFC_MAX_PACKET
 * before anything is allocated. */
#ifndef LP_AFC_H
#define LP_AFC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"
#include "proto/stream.h"

#define AFC_SERVICE "com.apple.afc"
#define AFC_MAGIC "CFA6LPAA"
#define AFC_HDR_LEN 40
#define AFC_MAX_PACKET ((8u << 20) + AFC_HDR_LEN + 64) /* largest packet accepted */
#define AFC_MAX_IO (8u << 20)			       /* largest read/write per packet */
#define AFC_PATH_MAX 1024

enum afc_op {
	AFC_OP_STATUS = 0x01,
	AFC_OP_DATA = 0x02,
	AFC_OP_READ_DIR = 0x03,
	AFC_OP_REMOVE_PATH = 0x08,
	AFC_OP_MAKE_DIR = 0x09,
	AFC_OP_GET_FILE_INFO = 0x0a,
	AFC_OP_GET_DEVINFO = 0x0b,
	AFC_OP_FILE_OPEN = 0x0d,
	AFC_OP_FILE_OPEN_RES = 0x0e,
	AFC_OP_READ = 0x0f,
	AFC_OP_WRITE = 0x10,
	AFC_OP_FILE_CLOSE = 0x14,
	AFC_OP_LAST_KNOWN = 0x1e, /* highest operation number in use (set file time) */
};

/* Status codes of an AFC_OP_STATUS reply. */
enum afc_status {
	AFC_S_SUCCESS = 0,
	AFC_S_UNKNOWN_ERROR = 1,
	AFC_S_OP_HEADER_INVALID = 2,
	AFC_S_NO_RESOURCES = 3,
	AFC_S_READ_ERROR = 4,
	AFC_S_WRITE_ERROR = 5,
	AFC_S_UNKNOWN_PACKET_TYPE = 6,
	AFC_S_INVALID_ARG = 7,
	AFC_S_OBJECT_NOT_FOUND = 8,
	AFC_S_OBJECT_IS_DIR = 9,
	AFC_S_PERM_DENIED = 10,
	AFC_S_SERVICE_NOT_CONNECTED = 11,
	AFC_S_OP_TIMEOUT = 12,
	AFC_S_TOO_MUCH_DATA = 13,
	AFC_S_END_OF_DATA = 14,
	AFC_S_OP_NOT_SUPPORTED = 15,
	AFC_S_OBJECT_EXISTS = 16,
	AFC_S_OBJECT_BUSY = 17,
	AFC_S_NO_SPACE_LEFT = 18,
	AFC_S_OP_WOULD_BLOCK = 19,
	AFC_S_IO_ERROR = 20,
	AFC_S_OP_INTERRUPTED = 21,
	AFC_S_OP_IN_PROGRESS = 22,
	AFC_S_INTERNAL_ERROR = 23,
};

/* FILE_OPEN modes (as fopen's r, r+, w, w+, a, a+). */
enum afc_mode {
	AFC_MODE_RDONLY = 1,
	AFC_MODE_RW = 2,
	AFC_MODE_WRONLY = 3, /* create, truncate */
	AFC_MODE_WR = 4,     /* read/write, create, truncate */
	AFC_MODE_APPEND = 5,
	AFC_MODE_RDAPPEND = 6,
};

struct afc_hdr {
	uint64_t entire_len; /* header + operation data + payload */
	uint64_t this_len;   /* header + operation data */
	uint64_t packet_num;
	uint64_t op;
};

/* --- codec ------------------------------------------------------------------ */

/* The 40-byte header of a packet with `data_len` bytes of operation data and
 * `payload_len` bytes of payload. */
void afc_put_header(uint8_t out[AFC_HDR_LEN], uint64_t op, uint64_t packet_num, size_t data_len,
		    size_t payload_len);
/* Parse a header from the first AFC_HDR_LEN bytes of buf: 0, LP_ETRUNC (fewer
 * bytes), LP_EBADMSG (magic, or lengths that contradict each other), or
 * LP_ETOOBIG (entire length over AFC_MAX_PACKET). */
int afc_parse_header(const uint8_t *buf, size_t len, struct afc_hdr *h);
/* "object not found" etc.; "status N" for codes outside the table. */
const char *afc_status_name(uint64_t status);
/* The lp_err for a status (OBJECT_NOT_FOUND -> LP_ENOENT, PERM_DENIED ->
 * LP_EACCES, NO_SPACE_LEFT -> LP_ETOOBIG, OP_NOT_SUPPORTED /
 * UNKNOWN_PACKET_TYPE -> LP_EUNSUPPORTED, else LP_EPROTO). */
int afc_status_err(uint64_t status);

/* --- client ------------------------------------------------------------------ */

struct afc_client;

/* A client over `stream` (borrowed; the caller closes it after
 * afc_client_free). NULL on allocation failure. */
struct afc_client *afc_client_new(struct lp_stream *stream);
void afc_client_free(struct afc_client *c);

/* Each call sends one request and reads its reply, all before `deadline`.
 * A STATUS reply with an error gives afc_status_err()'s code and the status
 * name in e; a reply that breaks the protocol (wrong packet number,
 * unexpected operation, bad lengths) gives LP_EPROTO with the reason. After
 * anything but a refusal (a stream error, a broken reply) the client is out
 * of step with the peer and every later call fails with LP_EPROTO. */
int afc_file_open(struct afc_client *c, const char *path, enum afc_mode mode, uint64_t *handle,
		  uint64_t deadline, struct lp_errinfo *e);
int afc_file_close(struct afc_client *c, uint64_t handle, uint64_t deadline, struct lp_errinfo *e);
/* Write all `len` bytes (len <= AFC_MAX_IO) in one request. */
int afc_file_write(struct afc_client *c, uint64_t handle, const uint8_t *data, size_t len,
		   uint64_t deadline, struct lp_errinfo *e);
/* Read up to `cap` bytes (cap <= AFC_MAX_IO): *got is 0 at end of file. */
int afc_file_read(struct afc_client *c, uint64_t handle, uint8_t *buf, size_t cap, size_t *got,
		  uint64_t deadline, struct lp_errinfo *e);
/* st_size of `path` from GET_FILE_INFO. */
int afc_file_size(struct afc_client *c, const char *path, uint64_t *size, uint64_t deadline,
		  struct lp_errinfo *e);
int afc_remove_path(struct afc_client *c, const char *path, uint64_t deadline,
		    struct lp_errinfo *e);
/* The status code of the last reply when it was an error status (the
 * device refused the request), else AFC_S_SUCCESS: tells a refusal apart
 * from a broken exchange. */
uint64_t afc_last_status(const struct afc_client *c);

/* --- key/value lists --------------------------------------------------------- */

/* GET_FILE_INFO and GET_DEVINFO answer with NUL-terminated strings, key and
 * value in turn. The value of `key` in `list` (len bytes), copied to out
 * (cut at n - 1 and NUL-terminated); false if absent or the list is
 * malformed (odd count, no final NUL). */
bool afc_kv_get(const uint8_t *list, size_t len, const char *key, char *out, size_t n);

#endif
