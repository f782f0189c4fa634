/* cap_writer.h - capture files: pcapng (our writer) or classic pcap (libpcap).
 *
 * A writer owns one output file (regular file or FIFO: it never seeks and
 * never requires a regular file, so an extcap FIFO works). It holds
 * interfaces (one link type each) and takes packets with nanosecond wall-clock
 * timestamps; pcapng packets may carry a comment (stage markers), and pcapng
 * files may carry TLS key-log secrets in a Decryption Secrets Block.
 *
 * Format: CAP_FMT_AUTO picks classic pcap when the path ends in ".pcap",
 * pcapng otherwise. Classic pcap is written with libpcap itself
 * (pcap_open_dead_with_tstamp_precision, nanosecond magic); it has one link
 * type and no comments or secrets (dropped silently: comments; refused:
 * secrets, LP_EUNSUPPORTED).
 *
 * One link type per file, in both formats: libpcap (1.10) refuses pcapng
 * sections whose interfaces differ in link type, and we promise that libpcap
 * reads back everything we write. A second interface of another link type is
 * LP_EUNSUPPORTED; the TCP view goes to its own file.
 *
 * Kill safety: every pcapng block is built in memory and written with one
 * write(2) (looping only on short writes, e.g. to a FIFO); classic pcap
 * records go through a stdio buffer larger than the largest record, flushed
 * after every record, so each record is also one write(2). A writer killed
 * with SIGKILL leaves whole records, with one kernel caveat, measured on
 * Linux 6.x ext4: generic_perform_write() copies a write in page/folio
 * chunks and stops between chunks when a fatal signal is pending, so a
 * write that straddles a page boundary of the file can be cut there (a
 * loop that only writes 1000-byte blocks and is SIGKILLed at random: 3-4
 * of 40 files cut; 64 KiB page-aligned blocks: 0 of 40; 4 MiB: 12 of 40).
 * O_APPEND does not change that; pipes/FIFOs are different (a write of <=
 * PIPE_BUF bytes is atomic). linkprobe spends little time inside write(2):
 * 300 runs of cable-test killed at random (pcapng and pcap) left no cut
 * record, and tests/t/50-capture.t checks one. If it happens, readers see
 * every record before the cut one (tshark/capinfos then say "cut short in
 * the middle of a packet" and exit non-zero). Making it impossible would
 * need every block to sit inside one page (filler blocks), not worth a
 * bigger file for a sub-microsecond window.
 *
 * Reference: doc/protocol.md 6.2, 6.3; pcapng draft-tuexen-opsawg-pcapng.
 *
 * Threading: none. Writing to a FIFO whose reader went away returns
 * LP_ECLOSED provided the process ignores SIGPIPE (the CLI's job). */
#ifndef LP_CAP_WRITER_H
#define LP_CAP_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_error.h"

#define CAP_LINKTYPE_IPV4 228

/* Caps (named, checked before allocating). */
#define CAP_BLOCK_MAX (1u << 20)   /* largest pcapng block we build */
#define CAP_COMMENT_MAX 4096u	   /* longest packet comment kept */
#define CAP_DSB_MAX (256u * 1024u) /* largest secrets payload in one DSB */
#define CAP_IFACES_MAX 64u	   /* interfaces per file */
#define CAP_SNAPLEN_DEFAULT 262144u
#define CAP_FIFO_OPEN_WAIT_MS 10000u

/* pcapng DSB secrets type: TLS key log ("TLSK"). */
#define CAP_DSB_TLS_KEYLOG 0x544C534Bu

enum cap_format {
	CAP_FMT_AUTO = 0, /* .pcap -> CAP_FMT_PCAP, else CAP_FMT_PCAPNG */
	CAP_FMT_PCAPNG,
	CAP_FMT_PCAP,
};

struct cap_open_opts {
	uint32_t snaplen;     /* 0 = CAP_SNAPLEN_DEFAULT; caplen above it is clipped */
	const char *userappl; /* shb_userappl; NULL = "linkprobe" */
	const char *os;	      /* shb_os; NULL = uname sysname + release */
	const char *hardware; /* shb_hardware; NULL = uname machine */
	bool secret;	      /* will hold keys or unredacted secrets: mode 0600 */
};

struct cap_writer;

/* Open `path` for writing (created 0644, 0600 with opts->secret, or
 * truncated, an existing file's mode tightened to 0600 with opts->secret;
 * "-" = standard output; a symlink is refused; a FIFO or character device is
 * written as is, waiting up to CAP_FIFO_OPEN_WAIT_MS for a FIFO's reader;
 * anything else is refused). opts may be NULL. pcapng: the Section Header Block is
 * written at once. */
struct cap_writer *cap_open(const char *path, enum cap_format fmt, const struct cap_open_opts *opts,
			    struct lp_errinfo *e);

/* Which format the writer produces (AUTO resolved). */
enum cap_format cap_get_format(const struct cap_writer *w);
/* The format CAP_FMT_AUTO picks for `path` (no I/O): lets a caller check
 * options before anything is created or truncated. */
enum cap_format cap_format_for_path(const char *path);

/* Add an interface; returns its id (>= 0) or a negative lp_err.
 * usb: LINKTYPE_USB_LINUX_MMAPPED, if_name `name`, if_description
 * `description` (e.g. "05ac:12a8 iPhone, high speed (480 Mb/s), bus 1
 * device 7"); both borrowed, NULL = omitted. ipv4: LINKTYPE_IPV4.
 * Classic pcap: the first call fixes the link type; more calls with the same
 * link type return 0 (pcap has one implied interface). */
int cap_add_usb_interface(struct cap_writer *w, const char *name, const char *description);
int cap_add_ipv4_interface(struct cap_writer *w, const char *name);
/* Generic form for any link type. */
int cap_add_interface(struct cap_writer *w, uint16_t linktype, const char *name,
		      const char *description);

/* Write one packet on interface `iface`. data[0..caplen) (borrowed) is what
 * is stored, origlen the length on the wire (>= caplen); caplen above the
 * snaplen is clipped. comment: UTF-8, NULL = none, longer than
 * CAP_COMMENT_MAX is cut; dropped in classic pcap. Returns 0 or a negative
 * lp_err; after an I/O error every later call returns the same error. */
int cap_write_packet(struct cap_writer *w, int iface, uint64_t wall_ns, const uint8_t *data,
		     size_t caplen, size_t origlen, const char *comment);

/* pcapng only: a Decryption Secrets Block (TLSK) holding `keylog_text` (NSS
 * key-log lines, LF-terminated; a missing final LF is added). Write it before
 * the packets it decrypts. Classic pcap: LP_EUNSUPPORTED. */
int cap_write_dsb_tls(struct cap_writer *w, const char *keylog_text);

/* Push buffered bytes to the file (classic pcap; pcapng is unbuffered). */
int cap_flush(struct cap_writer *w);

/* Packets written so far (for tests and summaries). */
uint64_t cap_packets(const struct cap_writer *w);

/* Flush, close and free; NULL ok. If no interface was ever added, one USB
 * interface is added first so the file is readable (libpcap refuses a pcapng
 * file without IDB and a pcap file without header). Returns the first error
 * the writer saw (0 if none). */
int cap_close(struct cap_writer *w);

#endif
