/* fuzz_pair_record.c - libFuzzer harness for the pair record loader
 * (pair_record_parse: the bytes of <UDID>.plist). Successful parses go
 * through the request builder, the serializer and the consistency check. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/pair_record.h"
#include "src/base/lp_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pair_record *rec = NULL;
	struct lp_errinfo e;
	plist_t p;

	if (pair_record_parse(data, size, &rec, &e) != 0)
		return 0;
	p = pair_record_to_pair_request(rec);
	plist_free(p);
	p = pair_record_to_plist(rec);
	if (!p)
		abort(); /* a parsed record has every required field */
	plist_free(p);
	(void)pair_record_verify(rec, &e);
	pair_record_free(rec);
	return 0;
}
