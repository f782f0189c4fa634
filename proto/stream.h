/* stream.h - a blocking byte stream with deadlines: what lockdown runs on.
 *
 * Implemented by the host link (a usbmux connection over a transport) and by
 * the TLS layer on top of another stream. Every call is bounded by an absolute
 * deadline on the stream's clock (lp_clock_now() ns); there is no "forever". */
#ifndef LP_STREAM_H
#define LP_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"

struct lp_stream;

struct lp_stream_ops {
	/* Send all `len` bytes or fail. LP_ETIMEDOUT, LP_ECONNRESET, LP_ENODEV... */
	int (*send)(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t deadline,
		    struct lp_errinfo *e);
	/* Receive 1..cap bytes into buf (*got > 0) or fail; LP_ECLOSED / LP_ECONNRESET
	 * when the peer closed, LP_ETIMEDOUT at the deadline. */
	int (*recv)(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t deadline,
		    struct lp_errinfo *e);
	/* Close and free the stream object itself. */
	void (*close)(struct lp_stream *s);
};

struct lp_stream {
	const struct lp_stream_ops *ops;
	struct lp_clock *clock; /* borrowed */
	void *impl;
};

static inline int lp_stream_send(struct lp_stream *s, const uint8_t *b, size_t n, uint64_t dl,
				 struct lp_errinfo *e)
{
	return s->ops->send(s, b, n, dl, e);
}
static inline int lp_stream_recv(struct lp_stream *s, uint8_t *b, size_t cap, size_t *got,
				 uint64_t dl, struct lp_errinfo *e)
{
	return s->ops->recv(s, b, cap, got, dl, e);
}
/* Read exactly n bytes (loops over recv). */
int lp_stream_read_full(struct lp_stream *s, uint8_t *b, size_t n, uint64_t dl,
			struct lp_errinfo *e);
static inline void lp_stream_close(struct lp_stream *s)
{
	if (s)
		s->ops->close(s);
}

#endif
