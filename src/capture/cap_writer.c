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
 * Batching (regular files): blocks are appended to one batch buffer,
 * allocated once, and written with one write(2) per CAP_BATCH_BYTES or
 * CAP_BATCH_MS; a flush only ever covers whole blocks (a packet is built in
 * place with cap_packet_begin/commit and counted in the batch at commit).
 * FIFOs and character devices (a live reader: extcap, `wireshark -k -i`)
 * get every block at once, from a buffer also allocated once. Classic pcap
 * goes through libpcap's pcap_dump() into a stdio stream whose only sink is
 * the same batch (fopencookie), so both formats flush alike.
 */
#include "src/capture/cap_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

/* The batch: CAP_BATCH_BYTES of whole blocks before a flush, plus room for
 * the largest block being built after them. */
#define CAP_BATCH_CAP (CAP_BATCH_BYTES + CAP_BLOCK_MAX)
/* EPB fixed part: type, total length, iface, ts_hi, ts_lo, caplen, origlen */
#define EPB_HDR 28u

struct cap_writer {
	enum cap_format fmt;
	int fd;	       /* the output, both formats (classic: stdio only feeds the batch) */
	bool batching; /* regular file: write in batches; else at once */
	uint32_t snaplen;
	unsigned nifaces;
	uint16_t linktype; /* of the first interface */
	uint64_t packets;
	int err; /* sticky */
	/* batch[0..blen) holds whole blocks not yet written; bend is where the
	 * block being built ends (classic: libpcap's bytes land there). blen
	 * is one aligned store, so cap_flush_on_signal() sees whole blocks. */
	uint8_t *batch;
	volatile size_t blen;
	size_t bend;
	uint64_t bfirst_ms; /* coarse monotonic time of the oldest unwritten block */
	/* the packet between cap_packet_begin and cap_packet_commit */
	size_t pk_off; /* of its block in batch */
	size_t pk_caplen;
	uint64_t pk_wall, pk_origlen; /* classic */
	const char *pk_comment;	      /* borrowed until commit */
	bool pk_open;
	/* classic pcap */
	pcap_t *pd;
	pcap_dumper_t *dumper;
	FILE *fp;
	uint8_t *scratch; /* the packet being built (CAP_PACKET_MAX) */
};

static void patch_h32(struct lp_wr *w, size_t off, uint32_t v)
{
	if (CAP_HOST_BE)
		lp_wr_patch_be32(w, off, v);
	else
		lp_wr_patch_le32(w, off, v);
}

static void h32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* pcapng: host byte order */
}

static void h16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
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

static uint64_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Write batch[0..blen) and empty it. Catchable signals are held meanwhile so
 * a handler calling cap_flush_on_signal() never writes a block twice. */
static int batch_flush(struct cap_writer *w)
{
	sigset_t all, old;
	int rc;

	if (!w->blen)
		return w->err;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = w->err ? w->err : write_all(w->fd, w->batch, w->blen);
	if (w->bend > w->blen) /* a block being built moves down */
		memmove(w->batch, w->batch + w->blen, w->bend - w->blen);
	w->bend -= w->blen;
	if (w->pk_open)
		w->pk_off -= w->blen;
	w->blen = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc && !w->err)
		w->err = rc;
	return rc;
}

/* The block batch[blen..bend) is complete: count it in the batch and write
 * the batch when it is full or old, or at once when not batching. */
static int batch_commit(struct cap_writer *w)
{
	if (!w->batching) {
		/* a live reader: the block goes out now; blen stays 0, so a
		 * signal handler has nothing to write twice */
		int rc = write_all(w->fd, w->batch, w->bend);

		w->bend = 0;
		if (rc && !w->err)
			w->err = rc;
		return rc;
	}
	if (!w->blen)
		w->bfirst_ms = coarse_ms();
	w->blen = w->bend;
	if (w->blen >= CAP_BATCH_BYTES || coarse_ms() - w->bfirst_ms >= CAP_BATCH_MS)
		return batch_flush(w);
	return 0;
}

/* Room for `n` more bytes at bend (n <= CAP_BLOCK_MAX): flush first if the
 * batch is too full. */
static int batch_room(struct cap_writer *w, size_t n)
{
	if (w->err)
		return w->err;
	if (n > CAP_BLOCK_MAX)
		return LP_ETOOBIG;
	if (w->bend + n > CAP_BATCH_CAP && batch_flush(w))
		return w->err;
	return w->bend + n > CAP_BATCH_CAP ? LP_ETOOBIG : 0;
}

/* Finish the block (pad, trailing length, patch leading length) and append
 * it to the batch. */
static int blk_write(struct cap_writer *w, struct lp_wr *b)
{
	int rc;

	lp_wr_pad(b, 4);
	lp_wr_h32(b, (uint32_t)(b->len + 4));
	if (lp_wr_ok(b))
		patch_h32(b, 4, (uint32_t)b->len);
	if (!lp_wr_ok(b))
		return b->err;
	rc = batch_room(w, b->len);
	if (rc)
		return rc;
	memcpy(w->batch + w->bend, b->buf, b->len);
	w->bend += b->len;
	return batch_commit(w);
}

/* Classic pcap: libpcap's stdio stream writes here, after the committed
 * blocks; cap_packet_commit() (or classic_start) commits what it wrote. */
static ssize_t cookie_write(void *ud, const char *buf, size_t n)
{
	struct cap_writer *w = ud;

	int rc = batch_room(w, n);

	if (rc) {
		if (!w->err)
			w->err = rc;
		errno = EIO;
		return -1;
	}
	memcpy(w->batch + w->bend, buf, n);
	w->bend += n;
	return (ssize_t)n;
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
static int open_out(const char *path, bool secret, bool *regular, struct lp_errinfo *e)
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
		*regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
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
	*regular = S_ISREG(st.st_mode);
	if (S_ISREG(st.st_mode)) {
		/* an existing file keeps its mode on truncation: tighten it.
		 * An empty one is not truncated: on ext4 a truncation to 0
		 * makes close() start writing the file back (auto_da_alloc),
		 * which a new capture does not need */
		if ((st.st_size && ftruncate(fd, 0) != 0) ||
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
	w->batch = malloc(CAP_BATCH_CAP);
	if (!w->batch) {
		free(w);
		lp_err_set(e, LP_ENOMEM, "capture: out of memory");
		return NULL;
	}
	fd = open_out(path, o && o->secret, &w->batching, e);
	if (fd < 0) {
		free(w->batch);
		free(w);
		return NULL;
	}
	w->fd = fd;
	if (fmt == CAP_FMT_PCAPNG) {
		/* the header goes out at once: the file is a capture from here on */
		int rc = write_shb(w, o);

		if (!rc)
			rc = batch_flush(w);
		if (rc) {
			lp_err_set(e, rc, "capture: writing %s: %s", path, lp_strerror(rc));
			close(fd);
			free(w->batch);
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
	static const cookie_io_functions_t io = {.write = cookie_write};
	int dlt = linktype == 101 ? DLT_RAW : linktype;

	w->pd = pcap_open_dead_with_tstamp_precision(dlt, (int)w->snaplen,
						     PCAP_TSTAMP_PRECISION_NANO);
	if (!w->pd)
		return LP_ENOMEM;
	w->fp = fopencookie(w, "wb", io);
	if (!w->fp)
		return LP_ENOMEM;
	/* unbuffered: every fwrite of libpcap reaches the batch at once */
	setvbuf(w->fp, NULL, _IONBF, 0);
	w->dumper = pcap_dump_fopen(w->pd, w->fp);
	if (!w->dumper)
		return w->err ? w->err : LP_EIO;
	if (w->err)
		return w->err;
	/* the file header goes out at once, like pcapng's */
	w->blen = w->bend;
	return batch_flush(w);
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

int cap_packet_begin(struct cap_writer *w, int iface, uint64_t wall_ns, size_t caplen,
		     size_t origlen, const char *comment, uint8_t **data)
{
	size_t room, kept;
	uint8_t *p;
	int rc;

	if (w->err)
		return w->err;
	if (w->pk_open || iface < 0 || (unsigned)iface >= w->nifaces || !data)
		return LP_EINVAL;
	if (caplen > CAP_PACKET_MAX)
		return LP_ETOOBIG;
	if (origlen < caplen)
		origlen = caplen;
	if (origlen > UINT32_MAX)
		origlen = UINT32_MAX;
	kept = caplen > w->snaplen ? w->snaplen : caplen;
	if (w->fmt == CAP_FMT_PCAP) {
		/* libpcap writes the record (to the batch) at commit */
		if (!w->scratch && !(w->scratch = malloc(CAP_PACKET_MAX)))
			return LP_ENOMEM;
		w->pk_off = w->bend;
		w->pk_wall = wall_ns;
		w->pk_origlen = origlen;
		p = w->scratch;
	} else {
		room = EPB_HDR + caplen + 3 + 4 + CAP_COMMENT_MAX + 8 + 4;
		rc = batch_room(w, room);
		if (rc)
			return rc;
		w->pk_off = w->bend;
		p = w->batch + w->bend;
		h32(p, PCAPNG_EPB);
		h32(p + 4, 0); /* total length: commit */
		h32(p + 8, (uint32_t)iface);
		h32(p + 12, (uint32_t)(wall_ns >> 32));
		h32(p + 16, (uint32_t)wall_ns);
		h32(p + 20, (uint32_t)kept);
		h32(p + 24, (uint32_t)origlen);
		p += EPB_HDR;
	}
	w->pk_caplen = kept;
	w->pk_comment = comment;
	w->pk_open = true;
	*data = p;
	return 0;
}

int cap_packet_commit(struct cap_writer *w)
{
	size_t n, pos;
	uint8_t *b;

	if (!w->pk_open)
		return LP_EINVAL;
	w->pk_open = false;
	if (w->err)
		return w->err;
	n = w->pk_caplen;
	b = w->batch + w->pk_off;
	if (w->fmt == CAP_FMT_PCAP) {
		struct pcap_pkthdr h;

		memset(&h, 0, sizeof(h));
		h.ts.tv_sec = (time_t)(w->pk_wall / LP_NS_PER_S);
		h.ts.tv_usec = (suseconds_t)(w->pk_wall % LP_NS_PER_S); /* ns: NANO precision */
		h.caplen = (bpf_u_int32)n;
		h.len = (bpf_u_int32)w->pk_origlen;
		/* header and data reach the batch at bend through the cookie */
		pcap_dump((u_char *)w->dumper, &h, w->scratch);
		if (w->err)
			return w->err;
		w->packets++;
		return batch_commit(w);
	}
	pos = EPB_HDR + n;
	while (pos & 3)
		b[pos++] = 0;
	if (w->pk_comment && *w->pk_comment) {
		size_t c = strlen(w->pk_comment);

		if (c > CAP_COMMENT_MAX) {
			c = CAP_COMMENT_MAX;
			while (c && ((unsigned char)w->pk_comment[c] & 0xC0) == 0x80)
				c--;
		}
		h16(b + pos, OPT_COMMENT);
		h16(b + pos + 2, (uint16_t)c);
		memcpy(b + pos + 4, w->pk_comment, c);
		pos += 4 + c;
		while (pos & 3)
			b[pos++] = 0;
		h16(b + pos, OPT_END);
		h16(b + pos + 2, 0);
		pos += 4;
	}
	h32(b + 4, (uint32_t)(pos + 4));
	h32(b + pos, (uint32_t)(pos + 4));
	w->bend = w->pk_off + pos + 4;
	w->packets++;
	return batch_commit(w);
}

void cap_packet_abort(struct cap_writer *w)
{
	if (w->pk_open) {
		w->pk_open = false;
		w->bend = w->blen;
	}
}

int cap_write_packet(struct cap_writer *w, int iface, uint64_t wall_ns, const uint8_t *data,
		     size_t caplen, size_t origlen, const char *comment)
{
	uint8_t *p;
	int rc;

	if (caplen && !data)
		return LP_EINVAL;
	if (origlen < caplen)
		origlen = caplen;
	if (caplen > w->snaplen)
		caplen = w->snaplen;
	rc = cap_packet_begin(w, iface, wall_ns, caplen, origlen, comment, &p);
	if (rc)
		return rc;
	if (caplen)
		memcpy(p, data, caplen);
	return cap_packet_commit(w);
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
	return batch_flush(w);
}

void cap_flush_on_signal(struct cap_writer *w)
{
	const uint8_t *p;
	size_t n;

	if (!w || w->err || w->fd < 0)
		return;
	p = w->batch;
	n = w->blen;
	while (n) {
		ssize_t k = write(w->fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		p += k;
		n -= (size_t)k;
	}
	w->blen = 0;
	w->bend = 0;
	w->err = LP_ECLOSED; /* nothing more after the handler's flush */
}

int cap_close(struct cap_writer *w)
{
	int rc;

	if (!w)
		return 0;
	if (!w->nifaces && !w->err)
		cap_add_usb_interface(w, "linkprobe", "no device seen");
	cap_packet_abort(w);
	if (w->dumper)
		pcap_dump_close(w->dumper); /* fclose()s w->fp: nothing buffered */
	else if (w->fp)
		fclose(w->fp);
	if (w->pd)
		pcap_close(w->pd);
	cap_flush(w);
	rc = w->err;
	if (w->fd >= 0 && close(w->fd) != 0 && !rc)
		rc = LP_EIO;
	free(w->scratch);
	free(w->batch);
	free(w);
	return rc;
}
