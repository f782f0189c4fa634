/* fuzz_usbmuxd.c - libFuzzer harness for the usbmuxd client codec.
 *
 * Input: a daemon reply as it arrives on the socket (16-byte LE header, then
 * the body). The header is decoded (length cap before any allocation), the
 * body decoded as the client would, and the dict run through the Result and
 * DeviceList decoders and, for PairRecordData, pair_record_parse. Also builds
 * standalone:  cc -DFUZZ_MAIN ... fuzz_usbmuxd.c && ./a.out FILE...
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pair_record.h"
#include "proto/usbmuxd_codec.h"

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct umc_header h;
	struct umc_device devs[UMC_MAX_DEVICES];
	plist_t d = NULL, v;
	size_t n = 0, skipped = 0;
	uint32_t num;

	if (umc_decode_header(data, size, &h, NULL))
		return 0;
	if (umc_decode_body(&h, data + UMC_HEADER_LEN, size - UMC_HEADER_LEN, &d, NULL))
		return 0;
	if (umc_reply_result(d, &num))
		sink += (size_t)umc_result_to_err(num, num & 1) + strlen(umc_result_name(num));
	if (umc_parse_device_list(d, devs, UMC_MAX_DEVICES, &n, &skipped, NULL) == 0)
		for (size_t i = 0; i < n; i++)
			sink += strlen(devs[i].udid) + strlen(devs[i].conn_type) +
				devs[i].device_id;
	v = plist_dict_get_item(d, "PairRecordData");
	if (v && plist_get_node_type(v) == PLIST_DATA) {
		uint64_t len = 0;
		const char *p = plist_get_data_ptr(v, &len);
		struct pair_record *rec = NULL;
		if (p && pair_record_parse((const uint8_t *)p, (size_t)len, &rec, NULL) == 0)
			pair_record_free(rec);
	}
	plist_free(d);
	return 0;
}

#include "tests/fuzz/fuzz_main.h"
