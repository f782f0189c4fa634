/* test_num.c - the one command-line number parser (src/base/lp_num.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "src/base/lp_error.h"
#include "src/base/lp_num.h"

static void test_decimal(void **state)
{
	static const char *const bad[] = {"nan",   "NAN",	 "-nan", "inf", "Infinity", "0x10",
					  "0x1p4", "1e3",	 "1E3",	 " 5",	"5 ",	    "5x",
					  "-1",	   "+3",	 "",	 ".",	"1..2",	    "1.2.3",
					  "١",	   "86400.0001", NULL};
	double v = -7;

	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(lp_parse_decimal(bad[i], 0, 86400, &v), LP_EINVAL);
		assert_true(v == -7); /* untouched */
	}
	assert_int_equal(lp_parse_decimal("0", 0, 86400, &v), 0);
	assert_true(v == 0);
	assert_int_equal(lp_parse_decimal("2.5", 0, 86400, &v), 0);
	assert_true(v == 2.5);
	assert_int_equal(lp_parse_decimal(".5", 0, 86400, &v), 0);
	assert_int_equal(lp_parse_decimal("3.", 0, 86400, &v), 0);
	assert_int_equal(lp_parse_decimal("86400", 0, 86400, &v), 0);
	assert_int_equal(lp_parse_decimal("0.05", 0.1, 86400, &v), LP_EINVAL);
	assert_int_equal(lp_parse_decimal(NULL, 0, 1, &v), LP_EINVAL);
}

static void test_uint(void **state)
{
	static const char *const bad[] = {"0x10",
					  "-1",
					  "+1",
					  " 1",
					  "1 ",
					  "",
					  "1.0",
					  "nan",
					  "18446744073709551616",
					  "99999999999999999999",
					  NULL};
	uint64_t v = 7;

	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(lp_parse_uint(bad[i], 0, UINT64_MAX, &v), LP_EINVAL);
		assert_true(v == 7);
	}
	assert_int_equal(lp_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(lp_parse_uint("65535", 1, 65535, &v), 0);
	assert_int_equal(lp_parse_uint("65536", 1, 65535, &v), LP_EINVAL);
	assert_int_equal(lp_parse_uint("0", 1, 65535, &v), LP_EINVAL);
	assert_int_equal(lp_parse_uint("007", 0, 10, &v), 0);
	assert_true(v == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_uint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
