/* cap_usbmon.h - one USB transfer event as a Linux usbmon record, and back.
 *
 * Encodes what the kernel's binary monitor (drivers/usb/mon/mon_bin.c) would
 * have produced for a transfer we submitted ourselves, so a capture written by
 * linkprobe reads like `tcpdump -i usbmonN` (LINKTYPE_USB_LINUX_MMAPPED, 220).
 * Decodes such records (and the 48-byte LINKTYPE_USB_LINUX, 189) from a
 * capture through struct lp_rd. No I/O.
 *
 * Reference: doc/protocol.md section 6.1; Linux Documentation/usb/usbmon.rst,
 * drivers/usb/mon/mon_bin.c (mon_bin_event, mon_bin_error); libpcap pcap/usb.h.
 *
 * Record layout (64 bytes, every field in the capturing host's byte order):
 *
 *    0                   8    9    10   11   12        14   15   16
 *   +-------------------+----+----+----+----+---------+----+----+
 *   | id (u64)          |type|xfer|epnum|dev| busnum  |fset|fdat|
 *   +-------------------+----+----+----+----+---------+----+----+
 *   16                  24        28        32        36        40
 *   | ts_sec (s64)      |ts_usec  | status  | len_urb | len_cap |
 *   +-------------------+---------+---------+---------+---------+
 *   40                  48        52        56        60        64
 *   | setup[8] / iso    |interval |start_frm|xfer_flgs| ndesc   |
 *   +-------------------+---------+---------+---------+---------+
 *   followed by len_cap bytes (ISO descriptors, then data).
 *   The 48-byte variant stops after setup[8].
 *
 * Kernel rules reproduced by the encoder:
 *   S (submit): status -EINPROGRESS, len_urb = buffer length; OUT: data
 *     captured (flag_data 0), IN: no data (flag_data '<').
 *   C (callback): status = URB status, len_urb = actual length; IN: data
 *     captured (flag_data 0, also for 0 bytes), OUT: none (flag_data '>').
 *   E (submission error): header only, flag_setup '-', flag_data 'E',
 *     status = the submit error, len_urb = len_cap = xfer_flags = 0.
 *   flag_setup is 0 with the 8 setup bytes on a control S, '-' otherwise.
 *   epnum bit 7 comes from the URB direction (so a control IN is 0x80);
 *   xfer_flags carries URB_DIR_IN (0x200) for IN transfers.
 */
#ifndef LP_CAP_USBMON_H
#define LP_CAP_USBMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/base/lp_cursor.h"
#include "usb/transport.h"

#define CAP_LINKTYPE_USB_LINUX 189
#define CAP_LINKTYPE_USB_LINUX_MMAPPED 220

#define CAP_USBMON_HDR_LEN 64
#define CAP_USBMON_HDR_LEN_LEGACY 48

/* Largest record we write or accept: libpcap (1.10) refuses records above
 * its MAXIMUM_SNAPLEN of 262144 bytes for this link type. */
#define CAP_USBMON_SNAPLEN 262144u
/* Data bytes captured per record (longer transfers are clipped, like the
 * kernel clips to ring_size/5; len_urb keeps the real length). */
#define CAP_USBMON_DATA_MAX (CAP_USBMON_SNAPLEN - CAP_USBMON_HDR_LEN)
/* Decoder cap on ISO descriptors (the kernel's ISODESC_MAX is 128). */
#define CAP_USBMON_NDESC_MAX 128u

#define CAP_USBMON_URB_DIR_IN 0x0200u

/* Event types (byte 8). */
#define CAP_USBMON_SUBMIT 'S'
#define CAP_USBMON_COMPLETE 'C'
#define CAP_USBMON_ERROR 'E'

/* Linux errno values as they appear in the status field (asm-generic; fixed
 * across Linux architectures we care about, spelled out so that decoding a
 * capture does not depend on the reading host's <errno.h>). */
#define CAP_URB_ENOENT (-2)
#define CAP_URB_ENOMEM (-12)
#define CAP_URB_EBUSY (-16)
#define CAP_URB_ENODEV (-19)
#define CAP_URB_EINVAL (-22)
#define CAP_URB_EPIPE (-32)
#define CAP_URB_ETIME (-62)
#define CAP_URB_EPROTO (-71)
#define CAP_URB_EOVERFLOW (-75)
#define CAP_URB_EILSEQ (-84)
#define CAP_URB_ECONNRESET (-104)
#define CAP_URB_ESHUTDOWN (-108)
#define CAP_URB_EINPROGRESS (-115)
#define CAP_URB_EREMOTEIO (-121)
#define CAP_URB_EIO (-5)
#define CAP_URB_EPERM (-1)

/* One decoded (or to-be-encoded) record. */
struct cap_usbmon_rec {
	uint64_t id;
	uint8_t type;	   /* 'S', 'C', 'E' */
	uint8_t xfer_type; /* 0 iso, 1 interrupt, 2 control, 3 bulk */
	uint8_t epnum;	   /* bit 7 = IN */
	uint8_t devnum;
	uint16_t busnum;
	uint8_t flag_setup;
	uint8_t flag_data;
	int64_t ts_sec;
	int32_t ts_usec;
	int32_t status;
	uint32_t len_urb;
	uint32_t len_cap;
	uint8_t setup[8];    /* or iso error_count/numdesc */
	int32_t interval;    /* mmapped only */
	int32_t start_frame; /* mmapped only */
	uint32_t xfer_flags; /* mmapped only */
	uint32_t ndesc;	     /* mmapped only */
	/* Captured bytes after the header: borrowed from the decoder's input
	 * (or the encoder's caller). data_len <= len_cap; less when the record
	 * was clipped by the capture's snaplen (then `clipped` is set). */
	const uint8_t *data;
	size_t data_len;
	bool clipped;
	bool legacy; /* 48-byte header (link type 189) */
};

/* The URB status the kernel reports in a C record for a transfer that ended
 * with `s` (see the table in cap_usbmon.c). */
int32_t cap_usbmon_status_from_tr(enum tr_status s);
/* Inverse for analysis: -2 and -104 both read back as CANCELLED, -108/-19 as
 * NO_DEVICE, any unknown negative value as ERROR. */
enum tr_status cap_usbmon_status_to_tr(int32_t status);
/* The errno (negative) a failed submit reports in an E record. */
int32_t cap_usbmon_status_from_err(int lp_err);

/* Fill `out` for one observer event on `x`. `ev`/`submit_err` as given to a
 * tr_observer_fn; `wall_ns` the event's wall-clock time (UNIX epoch ns).
 * out->data points into x->buf (borrowed) and is clipped to `data_max` bytes
 * (0 = CAP_USBMON_DATA_MAX). Bus/device numbers from x->dev->info (0 if
 * x->dev is NULL). */
void cap_usbmon_from_xfer(enum tr_event ev, const struct tr_xfer *x, int submit_err,
			  uint64_t wall_ns, size_t data_max, struct cap_usbmon_rec *out);

/* Append the 64-byte header (host byte order) and rec->data_len bytes of
 * rec->data to `w`. rec->len_cap must equal rec->data_len. Errors are the
 * writer's sticky error (check lp_wr_ok). */
void cap_usbmon_encode(struct lp_wr *w, const struct cap_usbmon_rec *rec);

/* Decode one record of a LINKTYPE_USB_LINUX_MMAPPED capture. `swapped`:
 * the capture was written on a host of the other byte order (the pcap/pcapng
 * reader knows). Returns 0, LP_ETRUNC (shorter than the header) or
 * LP_EBADMSG (unknown event or transfer type, ndesc over the cap, len_cap
 * below the ISO descriptors it announces). `out` written only on success;
 * out->data borrowed from buf. */
int cap_usbmon_decode(const uint8_t *buf, size_t len, bool swapped, struct cap_usbmon_rec *out);
/* Same for either link type: 220 (64-byte header) or 189 (48-byte).
 * LP_EFORMAT for any other link type. */
int cap_usbmon_decode_lt(const uint8_t *buf, size_t len, int linktype, bool swapped,
			 struct cap_usbmon_rec *out);

#endif
