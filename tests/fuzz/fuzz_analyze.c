/* fuzz_analyze.c - libFuzzer harness for the capture analyzer: the input is
 * a whole pcap/pcapng file (fmemopen + pcap_fopen_offline via
 * an_analyze_fp), analyzed into a report that is then discarded. Any link
 * type libpcap accepts gets through to the decoders. */
#include <stdint.h>
#include <stdio.h>

#include "src/analyze/analyze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag_report r;
	struct lp_clock clk;
	struct lp_errinfo e = {0};
	struct an_opts o = {0};
	FILE *f;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "rb");
	if (!f)
		return 0;
	lp_clock_init_virtual(&clk, 0);
	diag_init(&r, "analyze", &clk);
	an_analyze_fp(f, &o, &r, &clk, &e);
	json_object_put(diag_to_json(&r));
	diag_release(&r);
	return 0;
}
