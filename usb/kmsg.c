/* kmsg.c - the kernel log's word on USB enumeration (see kmsg.h).
 *
 * Record format (Documentation/ABI/testing/dev-kmsg): "PRI,SEQ,USEC,FLAGS[,...];
 * MESSAGE\n", then optional continuation lines starting with a space
 * ("SUBSYSTEM=usb"...), which are skipped. /dev/kmsg returns one record per
 * read() and EAGAIN (O_NONBLOCK) at the end; EPIPE when records were
 * overwritten under us (the read is simply retried). A plain file returns
 * arbitrary chunks: both are split into lines the same way.
 *
 * The messages matched are the USB core's and hub driver's (drivers/usb/core
 * hub.c): "new <speed> USB device number N using <hcd>" (an attempt),
 * "device descriptor read/64, error -71", "device descriptor read/8, error
 * -71", "device not accepting address N, error -71", "unable to enumerate
 * USB device", "Cannot enable. Maybe the USB cable is bad?" (failures), "New
 * USB device found" (success). */
#include "usb/kmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/base/lp_str.h"

/* Decimal field up to `stop`; false if empty, not digits, or overflowing. */
static bool parse_dec(const char **p, const char *end, char stop, uint64_t *out)
{
	uint64_t v = 0;
	const char *q = *p;

	if (q >= end || *q < '0' || *q > '9')
		return false;
	while (q < end && *q >= '0' && *q <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	if (q >= end || *q != stop)
		return false;
	*p = q + 1;
	*out = v;
	return true;
}

int usbk_parse_line(const char *line, size_t len, struct usbk_record *out)
{
	const char *p = line, *end = line + len, *semi;
	uint64_t prio, seq, ts;

	if (!line || !out)
		return LP_EINVAL;
	semi = memchr(line, ';', len);
	if (!semi || !parse_dec(&p, semi, ',', &prio) || !parse_dec(&p, semi, ',', &seq))
		return LP_EBADMSG;
	/* USEC, then ',' and FLAGS (and maybe more fields) up to ';' */
	{
		const char *c = memchr(p, ',', (size_t)(semi - p));
		if (!c || !parse_dec(&p, c + 1, ',', &ts))
			return LP_EBADMSG;
	}
	out->prio = (unsigned)(prio & 7);
	out->seq = seq;
	out->ts_usec = ts;
	out->text = semi + 1;
	out->text_len = (size_t)(end - (semi + 1));
	while (out->text_len &&
	       (out->text[out->text_len - 1] == '\n' || out->text[out->text_len - 1] == '\r'))
		out->text_len--;
	return 0;
}

/* `needle` inside the first n bytes of `hay`. */
static bool has(const char *hay, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; k <= n && i <= n - k; i++)
		if (memcmp(hay + i, needle, k) == 0)
			return true;
	return false;
}

/* "usb 1-2.3: ..." or "usb usb1-port2: ..." -> "1-2.3" / "1-2". */
static void port_of(const char *t, size_t n, char *out, size_t outsz)
{
	size_t i = 0, o = 0;

	out[0] = '\0';
	if (n < 5 || memcmp(t, "usb ", 4) != 0)
		return;
	i = 4;
	if (n - i > 3 && memcmp(t + i, "usb", 3) == 0) { /* usbN-portP */
		i += 3;
		while (i < n && o + 1 < outsz && t[i] >= '0' && t[i] <= '9')
			out[o++] = t[i++];
		if (n - i > 5 && memcmp(t + i, "-port", 5) == 0) {
			i += 5;
			if (o + 1 < outsz)
				out[o++] = '-';
		}
	}
	while (i < n && o + 1 < outsz && t[i] != ':' &&
	       ((t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '.'))
		out[o++] = t[i++];
	out[o] = '\0';
	if (i >= n || t[i] != ':')
		out[0] = '\0';
}

void usbk_feed_line(struct usbk_findings *f, const char *line, size_t len, uint64_t since_usec)
{
	struct usbk_record rec;
	const char *t;
	size_t n;

	if (!len || line[0] == ' ' || usbk_parse_line(line, len, &rec) != 0)
		return; /* a continuation line, or not a record */
	if (rec.ts_usec < since_usec)
		return;
	f->records++;
	t = rec.text;
	n = rec.text_len;
	if (n < 4 || memcmp(t, "usb ", 4) != 0)
		return;
	if (has(t, n, " USB device number ") && has(t, n, "new "))
		f->attempts++;
	else if (has(t, n, "New USB device found"))
		f->enumerated++;
	else if (has(t, n, "device descriptor read/") ||
		 has(t, n, "device not accepting address") ||
		 has(t, n, "unable to enumerate USB device") ||
		 has(t, n, "Maybe the USB cable is bad")) {
		f->errors++;
		lp_sanitize(f->last_error, sizeof(f->last_error), (const uint8_t *)t, n);
		port_of(t, n, f->port, sizeof(f->port));
	}
}

int usbk_scan(const char *path, uint64_t since_usec, struct usbk_findings *out,
	      struct lp_errinfo *e)
{
	char *buf, line[USBK_LINE_MAX];
	size_t used = 0, total = 0;
	bool skipping = false;
	int fd, rc = 0;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return lp_err_set(e, lp_err_from_errno(errno), "%s: %s", path, strerror(errno));
	buf = malloc(8192);
	if (!buf) {
		close(fd);
		return lp_err_set(e, LP_ENOMEM, "out of memory");
	}
	while (total < USBK_MAX_BYTES) {
		ssize_t r = read(fd, buf, 8192);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EPIPE)
			continue; /* records overwritten while we read: go on */
		if (r < 0 && errno == EAGAIN)
			break; /* the end of /dev/kmsg */
		if (r < 0) {
			rc = lp_err_set(e, lp_err_from_errno(errno), "%s: %s", path,
					strerror(errno));
			break;
		}
		if (r == 0)
			break;
		total += (size_t)r;
		for (ssize_t i = 0; i < r; i++) {
			char c = buf[i];

			if (c == '\n') {
				if (!skipping)
					usbk_feed_line(out, line, used, since_usec);
				used = 0;
				skipping = false;
			} else if (used + 1 < sizeof(line)) {
				line[used++] = c;
			} else {
				skipping = true; /* over USBK_LINE_MAX: not one of ours */
			}
		}
	}
	if (used && !skipping)
		usbk_feed_line(out, line, used, since_usec);
	free(buf);
	close(fd);
	return rc;
}
