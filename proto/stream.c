/* stream.c - helpers over struct lp_stream. */
#include "proto/stream.h"

int lp_stream_read_full(struct lp_stream *s, uint8_t *b, size_t n, uint64_t dl,
			struct lp_errinfo *e)
{
	size_t off = 0;

	while (off < n) {
		size_t got = 0;
		int r = lp_stream_recv(s, b + off, n - off, &got, dl, e);
		if (r)
			return r;
		off += got;
	}
	return 0;
}
