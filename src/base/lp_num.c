/* lp_num.c - strict decimal parsing for command-line numbers (lp_num.h). */
#include "src/base/lp_num.h"

#include <math.h>
#include <stdlib.h>

#include "src/base/lp_error.h"

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

int lp_parse_decimal(const char *s, double lo, double hi, double *out)
{
	size_t i = 0, ndig = 0;
	char *end;
	double v;

	if (!s || !out)
		return LP_EINVAL;
	while (digit(s[i]))
		i++, ndig++;
	if (s[i] == '.') {
		i++;
		while (digit(s[i]))
			i++, ndig++;
	}
	if (ndig == 0 || s[i] != '\0' || i > 64)
		return LP_EINVAL;
	/* the grammar above is a subset of strtod's; it does the rounding */
	v = strtod(s, &end);
	if (*end != '\0' || !isfinite(v) || !(v >= lo && v <= hi))
		return LP_EINVAL;
	*out = v;
	return 0;
}

int lp_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!s || !out || !s[0])
		return LP_EINVAL;
	for (i = 0; s[i]; i++) {
		unsigned d;

		if (!digit(s[i]))
			return LP_EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return LP_EINVAL;
		v = v * 10 + d;
	}
	if (v < lo || v > hi)
		return LP_EINVAL;
	*out = v;
	return 0;
}
