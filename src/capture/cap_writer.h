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
 * Batching: to a regular file, blocks (classic pcap: records) are collected
 * in one buffer, allocated at open, and written with one write(2) per
 * CAP_BATCH_BYTES, or sooner when the oldest waiting block is CAP_BATCH_MS
 * old (checked at each block), and at cap_flush()/cap_close(). A write only
 * ever holds whole blocks. A FIFO or character device (a live reader such as
 * Wireshark's extcap) gets every block as it is made, one write(2) each. No
 * allocation per packet either way: cap_packet_begin() hands out the place
 * in the buffer where the packet's bytes go (the capture tap builds and
 * redacts its record there), cap_packet_commit() finishes the block.
 *
 * Kill safety: a writer killed with SIGKILL leaves whole blocks: everything
 * flushed before, nothing of what was still in the buffer (at most
 * CAP_BATCH_BYTES / CAP_BATCH_MS of packets). Exit paths flush: cap_close(),
 * and a signal handler may call cap_flush_on_signal() (async-signal-safe:
 * blocks in the buffer are counted only once complete, and a flush in
 * progress holds signals, so the handler writes each block exactly once).
 * One kernel caveat, measured on Linux 6.x ext4: generic_perform_write()
 * copies a write in page/folio chunks and stops between chunks when a fatal
 * signal is pending, so a write that straddles a page boundary of the file
 * can be cut there (a loop that only writes 1000-byte blocks and is
 * SIGKILLed at random: 3-4 of 40 files cut; 64 KiB page-aligned blocks: 0
 * of 40; 4 MiB: 12 of 40). The window is the time spent inside write(2),
 * about the same for batches as for single blocks at the same byte rate;
 * tests/t/92-kill.t kills 100 captures and finds no cut record. If it
 * happens, readers see every record before the cut one (tshark/capinfos
 * then say "cut short in the middle of a packet" and exit non-zero).
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
#define CAP_PACKET_MAX CAP_SNAPLEN_DEFAULT /* largest caplen cap_packet_begin takes */
#define CAP_BATCH_BYTES (256u * 1024u)	   /* regular files: write(2) size */
#define CAP_BATCH_MS 200u		   /* ... or age of the oldest waiting block */

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

/* The same without a copy: reserve the packet in the writer's buffer.
 * *data gets room for `caplen` bytes (<= CAP_PACKET_MAX, else LP_ETOOBIG;
 * above the snaplen they are written but not kept), which the caller fills
 * (and may change: redaction) before cap_packet_commit(). `comment`
 * borrowed until the commit. One packet at a time; no other call on the
 * writer in between. cap_packet_abort() drops a begun packet (no-op if
 * none). Returns 0 or a negative lp_err (the writer's sticky error). */
int cap_packet_begin(struct cap_writer *w, int iface, uint64_t wall_ns, size_t caplen,
		     size_t origlen, const char *comment, uint8_t **data);
int cap_packet_commit(struct cap_writer *w);
void cap_packet_abort(struct cap_writer *w);

/* pcapng only: a Decryption Secrets Block (TLSK) holding `keylog_text` (NSS
 * key-log lines, LF-terminated; a missing final LF is added). Write it before
 * the packets it decrypts. Classic pcap: LP_EUNSUPPORTED. */
int cap_write_dsb_tls(struct cap_writer *w, const char *keylog_text);

/* Write the blocks waiting in the buffer. */
int cap_flush(struct cap_writer *w);

/* For a signal handler (async-signal-safe; NULL ok): write the whole blocks
 * waiting in the buffer; the writer takes nothing more after it (the
 * handler is about to end the process). */
void cap_flush_on_signal(struct cap_writer *w);

/* Packets written so far (for tests and summaries). */
uint64_t cap_packets(const struct cap_writer *w);

/* Flush, close and free; NULL ok. If no interface was ever added, one USB
 * interface is added first so the file is readable (libpcap refuses a pcapng
 * file without IDB and a pcap file without header). Returns the first error
 * the writer saw (0 if none). */
int cap_close(struct cap_writer *w);

#endif
