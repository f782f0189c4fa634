/* lp_num.h - the one parser for numbers given on the command line (options,
 * --device sim:k=v, extcap arguments).
 *
 * strtod/strtoul accept far more than a person means by "seconds" or "port":
 * "nan" (which passes every < and > range check, so `--timeout nan` waited
 * forever), "inf", hex ("0x1p4"), exponents, leading blanks and signs. These
 * accept only plain decimal digits, with one optional fraction for
 * lp_parse_decimal, and check the range after parsing. */
#ifndef LP_NUM_H
#define LP_NUM_H

#include <stdint.h>

/* "12", "0.5", "3.": digits with an optional '.' and fraction digits, finite
 * and within [lo, hi]. 0 and *out, or LP_EINVAL (out untouched). */
int lp_parse_decimal(const char *s, double lo, double hi, double *out);

/* Decimal digits only, within [lo, hi] (no sign, no 0x, no overflow wrap).
 * 0 and *out, or LP_EINVAL (out untouched). */
int lp_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

#endif
