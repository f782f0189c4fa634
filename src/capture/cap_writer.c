/* cap_writer.c - pcapng writer (ours) and classic pcap writer (libpcap); see
 * cap_writer.h for the contract.
 *
 * pcapng (draft-tuexen-opsawg-pcapng), all numbers in host byte order:
 *
 *   block:  type u32 | total_len u32 | body ... pad to 4 | total_len u32
 *   option: code u16 | len u16 | value ... pad to 4      (end: 0, 0)
 *
 *   SHB 0x0A0D0D0A: magic 0x1A2B3C4D, major 1, minor 0, section len -1,
 *                   shb_hardware(2) shb_os(3) shb_userappl(4)
 *   IDB 0x00000001: linktype u16, 0 u16, snaplen u32,
 *                   if_name(2) if_description(3) if_tsresol(9) = 9 (ns)
 *   EPB 0x00000006: iface u32, ts_hi u32, ts_lo u32, caplen u32, origlen u32,
 *                   data, opt_comment(1)
 *   DSB 0x0000000A: secrets type u32, secrets len u32, secrets
 *
 * Each block is assembled in an lp_wr capped at CAP_BLOCK_MAX and written
 * with one write(2), so a killed writer leaves whole blocks behind.
 */
#include "src/capture/cap_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_cursor.h"
#include "usb/cap_usbmon.h"

#define CAP_HOST_BE (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_DSB 0x0000000Au
#define PCAPNG_BOM 0x1A2B3C4Du

#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_HARDWARE 2
#define SHB_OS 3
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9

/* Longest string option we copy (names, descriptions, SHB strings). */
#define CAP_STROPT_MAX 1024u
/* Room for EPB fields and options on top of the packet data. */
#define CAP_EPB_OVERHEAD 64u

struct cap_writer {
	enum cap_format fmt;
	int fd; /* pcapng; -1 once handed to stdio (classic) */
	uint32_t snaplen;
	unsigned nifaces;
	uint16_t linktype; /* of the first interface */
	uint64_t packets;
	int err; /* sticky */
	/* classic pcap */
	pcap_t *pd;
	pcap_dumper_t *dumper;
	FILE *fp;
	char *fbuf;
};

static void patch_h32(struct lp_wr *w, size_t off, uint32_t v)
{
	if (CAP_HOST_BE)
		lp_wr_patch_be32(w, off, v);
	else
		lp_wr_patch_le32(w, off, v);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EPIPE ? LP_ECLOSED : lp_err_from_errno(errno);
		}
		if (k == 0)
			return LP_EIO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static void blk_begin(struct lp_wr *b, uint32_t type)
{
	lp_wr_h32(b, type);
	lp_wr_h32(b, 0); /* total length, patched in blk_write */
}

static void opt_bytes(struct lp_wr *b, uint16_t code, const void *v, size_t n)
{
	lp_wr_h16(b, code);
	lp_wr_h16(b, (uint16_t)n);
	lp_wr_bytes(b, v, n);
	lp_wr_pad(b, 4);
}

/* String option, cut at `max` bytes on a UTF-8 character boundary. */
static void opt_str(struct lp_wr *b, uint16_t code, const char *s, size_t max)
{
	size_t n;

	if (!s || !*s)
		return;
	n = strlen(s);
	if (n > max) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	opt_bytes(b, code, s, n);
}

static void opt_end(struct lp_wr *b)
{
	lp_wr_h16(b, OPT_END);
	lp_wr_h16(b, 0);
}

/* Finish the block (pad, trailing length, patch leading length), write it. */
static int blk_write(struct cap_writer *w, struct lp_wr *b)
{
	int rc;

	lp_wr_pad(b, 4);
	lp_wr_h32(b, (uint32_t)(b->len + 4));
	if (lp_wr_ok(b))
		patch_h32(b, 4, (uint32_t)b->len);
	if (!lp_wr_ok(b))
		return b->err;
	rc = write_all(w->fd, b->buf, b->len);
	if (rc)
		w->err = rc;
	return rc;
}

static int write_shb(struct cap_writer *w, const struct cap_open_opts *o)
{
	struct utsname u;
	char os[300] = "", hw[80] = "";
	struct lp_wr b;
	int rc;

	if (uname(&u) == 0) {
		snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
		snprintf(hw, sizeof(hw), "%s", u.machine);
	}
	lp_wr_init_dyn(&b, CAP_BLOCK_MAX);
	blk_begin(&b, PCAPNG_SHB);
	lp_wr_h32(&b, PCAPNG_BOM);
	lp_wr_h16(&b, 1);
	lp_wr_h16(&b, 0);
	lp_wr_h32(&b, 0xFFFFFFFFu); /* section length -1: unknown (we never seek) */
	lp_wr_h32(&b, 0xFFFFFFFFu);
	opt_str(&b, SHB_HARDWARE, o && o->hardware ? o->hardware : hw, CAP_STROPT_MAX);
	opt_str(&b, SHB_OS, o && o->os ? o->os : os, CAP_STROPT_MAX);
	opt_str(&b, SHB_USERAPPL, o && o->userappl ? o->userappl : "linkprobe", CAP_STROPT_MAX);
	opt_end(&b);
	rc = blk_write(w, &b);
	lp_wr_release(&b);
	return rc;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcasecmp(s + n - m, suf) == 0;
}

/* Open for writing. Regular files are created (0644, or 0600 when the
 * capture will hold secrets) or truncated; FIFOs (extcap's, or a reader such
 * as `wireshark -k -i`) and character devices are written as they are.
 *
 * One open(2), then decisions on the descriptor, so nothing can be swapped
 * between a check and the open: O_NOFOLLOW refuses a planted symlink (root
 * must not truncate whatever it points to); O_NONBLOCK keeps a FIFO without
 * a reader from blocking the open (it fails with ENXIO, retried for a bounded
 * time); O_TRUNC is applied only once fstat says the file is regular. */
static int open_out(const char *path, bool secret, struct lp_errinfo *e)
{
	const struct timespec step = {0, 10 * 1000 * 1000};
	unsigned tries = CAP_FIFO_OPEN_WAIT_MS / 10;
	struct stat st;
	int fd, fl, en;

	if (strcmp(path, "-") == 0) {
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return lp_err_set(e, lp_err_from_errno(errno), "capture: stdout: %s",
					  strerror(errno));
		return fd;
	}
	for (;;) {
		fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
			  secret ? 0600 : 0644);
		if (fd >= 0 || errno != ENXIO || tries-- == 0)
			break;
		nanosleep(&step, NULL);
	}
	if (fd < 0) {
		en = errno;
		if (en == ELOOP)
			return lp_err_set(e, LP_EACCES,
					  "capture: %s is a symbolic link; refusing to "
					  "write through it",
					  path);
		return lp_err_set(e, en == ENXIO ? LP_ETIMEDOUT : lp_err_from_errno(en),
				  "capture: cannot open %s: %s", path,
				  en == ENXIO ? "no reader on the FIFO" : strerror(en));
	}
	if (fstat(fd, &st) != 0) {
		en = errno;
		close(fd);
		return lp_err_set(e, lp_err_from_errno(en), "capture: cannot stat %s: %s", path,
				  strerror(en));
	}
	if (S_ISREG(st.st_mode)) {
		/* an existing file keeps its mode on truncation: tighten it */
		if (ftruncate(fd, 0) != 0 ||
		    (secret && (st.st_mode & 077) && fchmod(fd, 0600) != 0)) {
			en = errno;
			close(fd);
			return lp_err_set(e, lp_err_from_errno(en),
					  "capture: cannot truncate %s: %s", path, strerror(en));
		}
	} else if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		close(fd);
		return lp_err_set(e, LP_EINVAL, "capture: %s is not a file, FIFO or device", path);
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

struct cap_writer *cap_open(const char *path, enum cap_format fmt, const struct cap_open_opts *o,
			    struct lp_errinfo *e)
{
	struct cap_writer *w;
	int fd;

	if (!path || !*path) {
		lp_err_set(e, LP_EINVAL, "capture: no file name");
		return NULL;
	}
	if (fmt == CAP_FMT_AUTO)
		fmt = cap_format_for_path(path);
	w = calloc(1, sizeof(*w));
	if (!w) {
		lp_err_set(e, LP_ENOMEM, "capture: out of memory");
		return NULL;
	}
	w->fmt = fmt;
	w->snaplen = o && o->snaplen ? o->snaplen : CAP_SNAPLEN_DEFAULT;
	if (w->snaplen > CAP_SNAPLEN_DEFAULT)
		w->snaplen = CAP_SNAPLEN_DEFAULT;
	fd = open_out(path, o && o->secret, e);
	if (fd < 0) {
		free(w);
		return NULL;
	}
	w->fd = fd;
	if (fmt == CAP_FMT_PCAPNG) {
		int rc = write_shb(w, o);

		if (rc) {
			lp_err_set(e, rc, "capture: writing %s: %s", path, lp_strerror(rc));
			close(fd);
			free(w);
			return NULL;
		}
	}
	return w;
}

enum cap_format cap_format_for_path(const char *path)
{
	return path && ends_with(path, ".pcap") ? CAP_FMT_PCAP : CAP_FMT_PCAPNG;
}

enum cap_format cap_get_format(const struct cap_writer *w)
{
	return w->fmt;
}

uint64_t cap_packets(const struct cap_writer *w)
{
	return w->packets;
}

static int classic_start(struct cap_writer *w, uint16_t linktype)
{
	size_t bufsz = (size_t)w->snaplen + 4096; /* > one record: one write(2) each */
	int dlt = linktype == 101 ? DLT_RAW : linktype;

	w->pd = pcap_open_dead_with_tstamp_precision(dlt, (int)w->snaplen,
						     PCAP_TSTAMP_PRECISION_NANO);
	if (!w->pd)
		return LP_ENOMEM;
	w->fbuf = malloc(bufsz);
	w->fp = w->fbuf ? fdopen(w->fd, "wb") : NULL;
	if (!w->fp)
		return LP_ENOMEM;
	w->fd = -1; /* the FILE owns it now */
	setvbuf(w->fp, w->fbuf, _IOFBF, bufsz);
	w->dumper = pcap_dump_fopen(w->pd, w->fp);
	if (!w->dumper)
		return LP_EIO;
	if (pcap_dump_flush(w->dumper) != 0)
		return LP_EIO;
	return 0;
}

int cap_add_interface(struct cap_writer *w, uint16_t linktype, const char *name,
		      const char *description)
{
	const uint8_t tsresol = 9;
	struct lp_wr b;
	int rc;

	if (w->err)
		return w->err;
	if (w->nifaces && linktype != w->linktype)
		return LP_EUNSUPPORTED;
	if (w->fmt == CAP_FMT_PCAP) {
		if (w->nifaces)
			return 0;
		rc = classic_start(w, linktype);
		if (rc) {
			w->err = rc;
			return rc;
		}
		w->linktype = linktype;
		w->nifaces = 1;
		return 0;
	}
	if (w->nifaces >= CAP_IFACES_MAX)
		return LP_ETOOBIG;
	lp_wr_init_dyn(&b, CAP_BLOCK_MAX);
	blk_begin(&b, PCAPNG_IDB);
	lp_wr_h16(&b, linktype);
	lp_wr_h16(&b, 0);
	lp_wr_h32(&b, w->snaplen);
	opt_str(&b, IF_NAME, name, CAP_STROPT_MAX);
	opt_str(&b, IF_DESCRIPTION, description, CAP_STROPT_MAX);
	opt_bytes(&b, IF_TSRESOL, &tsresol, 1);
	opt_end(&b);
	rc = blk_write(w, &b);
	lp_wr_release(&b);
	if (rc)
		return rc;
	w->linktype = linktype;
	return (int)w->nifaces++;
}

int cap_add_usb_interface(struct cap_writer *w, const char *name, const char *description)
{
	return cap_add_interface(w, CAP_LINKTYPE_USB_LINUX_MMAPPED, name, description);
}

int cap_add_ipv4_interface(struct cap_writer *w, const char *name)
{
	return cap_add_interface(w, CAP_LINKTYPE_IPV4, name,
				 "linkprobe: usbmux connections as IPv4/TCP");
}

int cap_write_packet(struct cap_writer *w, int iface, uint64_t wall_ns, const uint8_t *data,
		     size_t caplen, size_t origlen, const char *comment)
{
	struct lp_wr b;
	int rc;

	if (w->err)
		return w->err;
	if (iface < 0 || (unsigned)iface >= w->nifaces || (caplen && !data))
		return LP_EINVAL;
	if (origlen < caplen)
		origlen = caplen;
	if (origlen > UINT32_MAX)
		origlen = UINT32_MAX;
	if (caplen > w->snaplen)
		caplen = w->snaplen;

	if (w->fmt == CAP_FMT_PCAP) {
		struct pcap_pkthdr h;

		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = (time_t)(wall_ns / LP_NS_PER_S);
		h.ts.tv_usec = (suseconds_t)(wall_ns % LP_NS_PER_S); /* ns: NANO precision */
		h.caplen = (bpf_u_int32)caplen;
		h.len = (bpf_u_int32)origlen;
		pcap_dump((u_char *)w->dumper, &h, data);
		if (pcap_dump_flush(w->dumper) != 0) {
			w->err = errno == EPIPE ? LP_ECLOSED : LP_EIO;
			return w->err;
		}
		w->packets++;
		return 0;
	}

	lp_wr_init_dyn(&b, CAP_BLOCK_MAX);
	blk_begin(&b, PCAPNG_EPB);
	lp_wr_h32(&b, (uint32_t)iface);
	lp_wr_h32(&b, (uint32_t)(wall_ns >> 32));
	lp_wr_h32(&b, (uint32_t)wall_ns);
	lp_wr_h32(&b, (uint32_t)caplen);
	lp_wr_h32(&b, (uint32_t)origlen);
	if (caplen)
		lp_wr_bytes(&b, data, caplen);
	lp_wr_pad(&b, 4);
	if (comment && *comment) {
		opt_str(&b, OPT_COMMENT, comment, CAP_COMMENT_MAX);
		opt_end(&b);
	}
	rc = blk_write(w, &b);
	lp_wr_release(&b);
	if (rc == 0)
		w->packets++;
	return rc;
}

int cap_write_dsb_tls(struct cap_writer *w, const char *text)
{
	size_t n;
	bool add_lf;
	struct lp_wr b;
	int rc;

	if (w->err)
		return w->err;
	if (w->fmt != CAP_FMT_PCAPNG)
		return LP_EUNSUPPORTED;
	if (!text || !*text)
		return LP_EINVAL;
	n = strlen(text);
	add_lf = text[n - 1] != '\n';
	if (n + add_lf > CAP_DSB_MAX)
		return LP_ETOOBIG;
	lp_wr_init_dyn(&b, CAP_BLOCK_MAX);
	blk_begin(&b, PCAPNG_DSB);
	lp_wr_h32(&b, CAP_DSB_TLS_KEYLOG);
	lp_wr_h32(&b, (uint32_t)(n + add_lf));
	lp_wr_bytes(&b, text, n);
	if (add_lf)
		lp_wr_u8(&b, '\n');
	rc = blk_write(w, &b);
	lp_wr_release(&b);
	return rc;
}

int cap_flush(struct cap_writer *w)
{
	if (w->err)
		return w->err;
	if (w->dumper && pcap_dump_flush(w->dumper) != 0)
		w->err = LP_EIO;
	return w->err;
}

int cap_close(struct cap_writer *w)
{
	int rc;

	if (!w)
		return 0;
	if (!w->nifaces && !w->err)
		cap_add_usb_interface(w, "linkprobe", "no device seen");
	cap_flush(w);
	rc = w->err;
	if (w->dumper)
		pcap_dump_close(w->dumper); /* fclose()s w->fp */
	else if (w->fp)
		fclose(w->fp);
	if (w->pd)
		pcap_close(w->pd);
	free(w->fbuf);
	if (w->fd >= 0 && close(w->fd) != 0 && !rc)
		rc = LP_EIO;
	free(w);
	return rc;
}
