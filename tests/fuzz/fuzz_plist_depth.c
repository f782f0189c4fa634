/* fuzz_plist_depth.c - libFuzzer harness for the plist nesting scanner
 * (lkd_plist_check_depth: bplist object tables and XML tags read before
 * libplist sees them). Whatever the scanner lets through goes to
 * lkd_plist_decode, so a scanner that under-counts shows up as a libplist
 * stack overflow here. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/lockdown_frame.h"
#include "proto/plist_depth.h"
#include "src/base/lp_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	plist_t p = NULL;
	int r = lkd_plist_check_depth(data, size, 4);

	if (r != 0 && r != LP_ETOOBIG && r != LP_EPLIST)
		abort();
	if (lkd_plist_decode(data, size, &p) == 0)
		plist_free(p);
	return 0;
}
