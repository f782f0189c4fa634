/* usbmuxd_sock.c - the usbmuxd socket (usbmuxd_sock.h): the daemon's
 * address, the connection to it as an lp_stream with every wait bounded by
 * an absolute deadline (poll), and who is on the other end. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/usbmuxd_sock.h"

struct umc_sock {
	struct lp_stream s;
	int fd;
};

/* Milliseconds until `deadline` for poll(), rounded up; 0 if it passed. */
static int ms_left(struct lp_clock *clock, uint64_t deadline)
{
	uint64_t now = lp_clock_now(clock), ms;

	if (now >= deadline)
		return 0;
	ms = (deadline - now + LP_NS_PER_MS - 1) / LP_NS_PER_MS;
	return ms > 60000 ? 60000 : (int)ms;
}

/* Wait for `events` on fd: 0, LP_ETIMEDOUT or an errno conversion. */
static int wait_fd(struct lp_clock *clock, int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = ms_left(clock, deadline), r;

		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return lp_err_from_errno(errno);
		if (r == 0 && clock->is_virtual) {
			/* nothing moves a virtual clock here: jump to the deadline */
			lp_clock_sleep_until(clock, deadline);
			return LP_ETIMEDOUT;
		}
		if (lp_clock_now(clock) >= deadline)
			return LP_ETIMEDOUT;
	}
}

static int sock_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t deadline,
		     struct lp_errinfo *e)
{
	struct umc_sock *k = s->impl;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(k->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			r = errno == EPIPE || errno == ECONNRESET ? LP_ECONNRESET
								  : lp_err_from_errno(errno);
			return lp_err_set(e, r, "usbmuxd socket: send: %s", strerror(errno));
		}
		r = wait_fd(s->clock, k->fd, POLLOUT, deadline);
		if (r)
			return lp_err_set(e, r, "usbmuxd socket: sending %zu bytes (%zu sent): %s",
					  len, off, lp_strerror(r));
	}
	return 0;
}

static int sock_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t deadline,
		     struct lp_errinfo *e)
{
	struct umc_sock *k = s->impl;

	if (!cap)
		return lp_err_set(e, LP_EINVAL, "recv with a zero-size buffer");
	for (;;) {
		ssize_t n = recv(k->fd, buf, cap, MSG_DONTWAIT);
		int r;

		if (n > 0) {
			*got = (size_t)n;
			return 0;
		}
		if (n == 0)
			return lp_err_set(e, LP_ECLOSED, "usbmuxd socket closed by the peer");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			r = errno == ECONNRESET ? LP_ECONNRESET : lp_err_from_errno(errno);
			return lp_err_set(e, r, "usbmuxd socket: recv: %s", strerror(errno));
		}
		r = wait_fd(s->clock, k->fd, POLLIN, deadline);
		if (r)
			return lp_err_set(e, r, "usbmuxd socket: receiving: %s", lp_strerror(r));
	}
}

static void sock_close(struct lp_stream *s)
{
	struct umc_sock *k = s->impl;

	if (k->fd >= 0)
		close(k->fd);
	free(k);
}

static const struct lp_stream_ops umc_sock_ops = {
	.send = sock_send,
	.recv = sock_recv,
	.close = sock_close,
};

/* The daemon is absent or unreachable: say so in the words a user needs. */
static int absent(const struct umc_endpoint *c, int errnum, struct lp_errinfo *e)
{
	const char *name = strerrorname_np(errnum);

	if (errnum == EACCES || errnum == EPERM)
		return lp_err_set(
			e, LP_EACCES, "permission denied on the usbmuxd socket %s (%s, %s; uid %u)",
			c->addr, strerror(errnum), name ? name : "?", (unsigned)geteuid());
	return lp_err_set(e, LP_ENOENT, "usbmuxd is not running at %s (%s, %s)", c->addr,
			  strerror(errnum), name ? name : "?");
}

static int open_tcp(const struct umc_endpoint *c, struct lp_clock *clock, uint64_t deadline,
		    int *fdout, struct lp_errinfo *e)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, last = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc)
		return lp_err_set(e, LP_ENOENT, "usbmuxd address %s: %s", c->addr,
				  gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		int err = 0;
		socklen_t el = sizeof(err);

		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			*fdout = fd;
			freeaddrinfo(res);
			return 0;
		}
		if (errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		rc = wait_fd(clock, fd, POLLOUT, deadline);
		if (rc) {
			close(fd);
			freeaddrinfo(res);
			return lp_err_set(e, rc, "connecting to usbmuxd at %s: %s", c->addr,
					  lp_strerror(rc));
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) {
			*fdout = fd;
			freeaddrinfo(res);
			return 0;
		}
		last = err ? err : errno;
		close(fd);
	}
	freeaddrinfo(res);
	return absent(c, last, e);
}

int umc_sock_open(const struct umc_endpoint *c, struct lp_clock *clock, uint64_t deadline,
		  struct lp_stream **out, struct lp_errinfo *e)
{
	struct umc_sock *k;
	int fd = -1, rc;

	if (c->tcp) {
		rc = open_tcp(c, clock, deadline, &fd, e);
		if (rc)
			return rc;
	} else {
		struct sockaddr_un sa;

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, c->addr, strlen(c->addr));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return lp_err_set(e, lp_err_from_errno(errno), "socket: %s",
					  strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			int err = errno;
			close(fd);
			return absent(c, err, e);
		}
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	k->fd = fd;
	k->s.ops = &umc_sock_ops;
	k->s.clock = clock;
	k->s.impl = k;
	*out = &k->s;
	return 0;
}

int umc_endpoint_parse(const char *addr, struct umc_endpoint *c, struct lp_errinfo *e)
{
	const char *colon;

	if (!addr || !*addr)
		addr = getenv(UMC_ENV_ADDRESS);
	if (!addr || !*addr)
		addr = UMC_DEFAULT_SOCKET;
	memset(c, 0, sizeof(*c));
	if (strncmp(addr, "UNIX:", 5) == 0)
		addr += 5;
	else if (strncmp(addr, "unix://", 7) == 0)
		addr += 7;
	else if (strncmp(addr, "tcp://", 6) == 0) {
		addr += 6;
		c->tcp = true;
	} else if (addr[0] != '/')
		c->tcp = true;
	if (!*addr || strlen(addr) >= UMC_MAX_ADDR)
		return lp_err_set(e, LP_EINVAL, "usbmuxd address '%.120s' is empty or too long",
				  addr);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (c->tcp) {
		char *end;
		long port;

		colon = strrchr(c->addr, ':');
		if (!colon || colon == c->addr)
			return lp_err_set(
				e, LP_EINVAL,
				"usbmuxd address '%s' is neither UNIX:/path nor host:port", addr);
		port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end || port < 1 || port > 65535)
			return lp_err_set(e, LP_EINVAL, "usbmuxd address '%s': bad port", addr);
		snprintf(c->host, sizeof(c->host), "%.*s", (int)(colon - c->addr), c->addr);
		/* [::1]:27015 */
		if (c->host[0] == '[' && c->host[strlen(c->host) - 1] == ']') {
			memmove(c->host, c->host + 1, strlen(c->host));
			c->host[strlen(c->host) - 1] = '\0';
		}
		snprintf(c->port, sizeof(c->port), "%ld", port);
	}
	return 0;
}

long umc_sock_peer_pid(const struct umc_endpoint *ep)
{
	struct sockaddr_un sa;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	long pid = 0;
	int fd;

	if (ep->tcp)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, ep->addr, strlen(ep->addr));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	/* a UNIX connect completes at once or fails (EAGAIN: the backlog is
	 * full - then nobody says who it is) */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && len == sizeof(cr))
		pid = (long)cr.pid;
	close(fd);
	return pid;
}
