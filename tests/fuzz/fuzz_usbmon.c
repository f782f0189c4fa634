/* fuzz_usbmon.c - libFuzzer harness for cap_usbmon_decode_lt() (usbmon
 * records from untrusted captures). Input byte 0 selects the variant: bit 0
 * = other byte order, bit 1 = 48-byte legacy header (link type 189); the
 * rest is the record. A decoded record is re-encoded and decoded again: the
 * result must agree (header fields survive the round trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "usb/cap_usbmon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cap_usbmon_rec r, r2;
	bool swapped;
	int lt, rc;
	size_t i, sum = 0;

	if (size < 1)
		return 0;
	swapped = data[0] & 1;
	lt = data[0] & 2 ? CAP_LINKTYPE_USB_LINUX : CAP_LINKTYPE_USB_LINUX_MMAPPED;
	rc = cap_usbmon_decode_lt(data + 1, size - 1, lt, swapped, &r);
	if (rc) {
		if (rc != LP_ETRUNC && rc != LP_EBADMSG)
			abort();
		return 0;
	}
	if (r.data_len > r.len_cap || r.data_len > size - 1)
		abort();
	for (i = 0; i < r.data_len; i++) /* data must be readable */
		sum += r.data[i];
	(void)sum;

	if (!r.legacy && !swapped) {
		struct lp_wr w;

		lp_wr_init_dyn(&w, CAP_USBMON_HDR_LEN + r.data_len);
		r.len_cap = (uint32_t)r.data_len;
		r.ndesc = 0;
		cap_usbmon_encode(&w, &r);
		if (!lp_wr_ok(&w))
			abort();
		if (cap_usbmon_decode(w.buf, w.len, false, &r2) != 0)
			abort();
		if (r2.id != r.id || r2.type != r.type || r2.status != r.status ||
		    r2.len_urb != r.len_urb || r2.data_len != r.data_len ||
		    (r.data_len && memcmp(r2.data, r.data, r.data_len)))
			abort();
		lp_wr_release(&w);
	}
	return 0;
}
