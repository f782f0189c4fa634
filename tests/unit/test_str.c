/* test_str.c - the terminal sanitizer (src/base/lp_str.h): device strings
 * such as DeviceName must not carry escapes, controls, or invisible and
 * reordering Unicode format characters to the user's terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "src/base/lp_str.h"

static void expect(const char *in, const char *want)
{
	char out[128];

	lp_sanitize_str(out, sizeof(out), in);
	assert_string_equal(out, want);
}

static void test_controls(void **state)
{
	expect("iPhone", "iPhone");
	expect("a\x1b[31mred", "a?[31mred");
	expect("a\r\nb\x7f", "a??b?");
	expect("\xc2\x9b"
	       "2J",
	       "??2J"); /* C1 CSI */
	expect("\xff\xfe", "??");
	expect("Jos\xc3\xa9's iPhone \xf0\x9f\x93\xb1", "Jos\xc3\xa9's iPhone \xf0\x9f\x93\xb1");
}

/* issue 10: zero-width, bidi and other Cf characters */
static void test_format_characters(void **state)
{
	static const char *const cf[] = {
		"\xe2\x80\x8b",	    /* U+200B ZERO WIDTH SPACE */
		"\xe2\x80\x8d",	    /* U+200D ZERO WIDTH JOINER */
		"\xe2\x80\x8e",	    /* U+200E LEFT-TO-RIGHT MARK */
		"\xe2\x80\x8f",	    /* U+200F RIGHT-TO-LEFT MARK */
		"\xe2\x80\xae",	    /* U+202E RIGHT-TO-LEFT OVERRIDE */
		"\xe2\x81\xa6",	    /* U+2066 LEFT-TO-RIGHT ISOLATE */
		"\xe2\x81\xa9",	    /* U+2069 POP DIRECTIONAL ISOLATE */
		"\xe2\x81\xa0",	    /* U+2060 WORD JOINER */
		"\xe2\x80\xa8",	    /* U+2028 LINE SEPARATOR */
		"\xe2\x80\xa9",	    /* U+2029 PARAGRAPH SEPARATOR */
		"\xef\xbb\xbf",	    /* U+FEFF BOM / ZWNBSP */
		"\xd8\x9c",	    /* U+061C ARABIC LETTER MARK */
		"\xc2\xad",	    /* U+00AD SOFT HYPHEN */
		"\xe1\xa0\x8e",	    /* U+180E MONGOLIAN VOWEL SEPARATOR */
		"\xef\xbf\xb9",	    /* U+FFF9 INTERLINEAR ANNOTATION ANCHOR */
		"\xf3\xa0\x80\x81", /* U+E0001 LANGUAGE TAG */
		"\xf3\xa0\x81\xa1", /* U+E0061 TAG LATIN SMALL LETTER A */
		NULL,
	};

	for (size_t i = 0; cf[i]; i++) {
		char in[32], out[32];

		strcpy(in, "a");
		strcat(in, cf[i]);
		strcat(in, "b");
		lp_sanitize_str(out, sizeof(out), in);
		assert_null(strstr(out, cf[i]));
		assert_int_equal(out[0], 'a');
		assert_int_equal(out[strlen(out) - 1], 'b');
		for (size_t k = 1; k + 1 < strlen(out); k++)
			assert_int_equal(out[k], '?');
	}
	/* neighbours of the ranges stay */
	expect("\xe2\x80\x8a", "\xe2\x80\x8a"); /* U+200A HAIR SPACE (Zs) */
	expect("\xe2\x80\x90", "\xe2\x80\x90"); /* U+2010 HYPHEN */
	expect("\xe2\x81\xb0", "\xe2\x81\xb0"); /* U+2070 SUPERSCRIPT ZERO */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_format_characters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
