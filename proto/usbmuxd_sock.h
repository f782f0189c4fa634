/* usbmuxd_sock.h - the usbmuxd daemon's socket: where it is (a UNIX path or
 * a TCP host:port, as libusbmuxd's USBMUXD_SOCKET_ADDRESS says) and a
 * connection to it as an lp_stream whose every wait is bounded by an
 * absolute deadline on the given clock (poll). Never prints. */
#ifndef LP_USBMUXD_SOCK_H
#define LP_USBMUXD_SOCK_H

#include <stdbool.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "proto/stream.h"

#define UMC_DEFAULT_SOCKET "/var/run/usbmuxd"
#define UMC_ENV_ADDRESS "USBMUXD_SOCKET_ADDRESS" /* "UNIX:/path" or "host:port" */
#define UMC_MAX_ADDR 108			 /* sun_path size */

struct umc_endpoint {
	char addr[UMC_MAX_ADDR + 1]; /* path, or host:port: for messages */
	bool tcp;
	char host[UMC_MAX_ADDR + 1];
	char port[8];
};

/* Parse `addr` ("UNIX:/path", "unix:///path", "/path", "host:port",
 * "tcp://host:port", "[::1]:port"; NULL or "" = $USBMUXD_SOCKET_ADDRESS, else
 * UMC_DEFAULT_SOCKET). LP_EINVAL for an address that does not parse. */
int umc_endpoint_parse(const char *addr, struct umc_endpoint *ep, struct lp_errinfo *e);

/* Connect; *out owned (lp_stream_close closes the socket), its clock
 * `clock`. LP_ENOENT when no daemon listens there ("usbmuxd is not running
 * at ..."), LP_EACCES, LP_ETIMEDOUT (TCP connect at the deadline). */
int umc_sock_open(const struct umc_endpoint *ep, struct lp_clock *clock, uint64_t deadline,
		  struct lp_stream **out, struct lp_errinfo *e);

/* The process listening on the UNIX socket at ep (SO_PEERCRED of a fresh
 * connection, closed at once): its pid, or 0 (TCP, nothing listens, or the
 * kernel does not say). Works for any user: usbmuxd runs as its own user,
 * whose /proc/PID/fd nobody else may read. */
long umc_sock_peer_pid(const struct umc_endpoint *ep);

#endif
