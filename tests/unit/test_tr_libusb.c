/* test_tr_libusb.c - what can be checked of the libusb backend without
 * hardware: the libusb -> linkprobe maps, that a context starts, that listing
 * returns only Apple devices (none on a machine without them) and that a
 * device that is not there fails to open with LP_ENODEV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libusb.h>
#include <string.h>

#include "usb/tr_libusb.h"

static void test_maps(void **state)
{
	assert_int_equal(tr_libusb_map_error(LIBUSB_SUCCESS), 0);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_ACCESS), LP_EACCES);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_BUSY), LP_EBUSY);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_NO_DEVICE), LP_ENODEV);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_PIPE), LP_ESTALL);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_TIMEOUT), LP_ETIMEDOUT);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_OVERFLOW), LP_EOVERFLOW);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_NOT_SUPPORTED), LP_EUNSUPPORTED);
	assert_int_equal(tr_libusb_map_error(LIBUSB_ERROR_OTHER), LP_EUSB);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_COMPLETED), TR_STATUS_COMPLETED);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_ERROR), TR_STATUS_ERROR);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_TIMED_OUT), TR_STATUS_TIMED_OUT);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_CANCELLED), TR_STATUS_CANCELLED);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_STALL), TR_STATUS_STALL);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_NO_DEVICE), TR_STATUS_NO_DEVICE);
	assert_int_equal(tr_libusb_map_status(LIBUSB_TRANSFER_OVERFLOW), TR_STATUS_OVERFLOW);
	assert_int_equal(tr_libusb_map_speed(LIBUSB_SPEED_HIGH), TR_SPEED_HIGH);
	assert_int_equal(tr_libusb_map_speed(LIBUSB_SPEED_FULL), TR_SPEED_FULL);
	assert_int_equal(tr_libusb_map_speed(LIBUSB_SPEED_UNKNOWN), TR_SPEED_UNKNOWN);
}

static void test_virtual_clock_refused(void **state)
{
	struct lp_clock clk;
	struct tr_env env = {.clock = &clk};
	struct lp_errinfo e = {0};
	struct tr_ctx *ctx = NULL;

	lp_clock_init_virtual(&clk, 0);
	assert_int_equal(tr_ctx_new(&tr_libusb_ops, &env, NULL, &ctx, &e), LP_EINVAL);
	assert_null(ctx);
	assert_non_null(strstr(e.msg, "real clock"));
}

static void test_list_and_open(void **state)
{
	struct lp_clock clk;
	struct tr_env env = {.clock = &clk};
	struct tr_devinfo di[8], ghost = {.bus = 250, .addr = 127, .vid = 0x05ac, .pid = 0x12a8};
	struct lp_errinfo e = {0};
	struct tr_ctx *ctx = NULL;
	struct tr_dev *dev = NULL;
	size_t n = 99;
	int rc;

	lp_clock_init_real(&clk);
	rc = tr_ctx_new(&tr_libusb_ops, &env, NULL, &ctx, &e);
	if (rc) {
		/* no libusb at all here: the failure must say so */
		assert_int_equal(e.code, rc);
		assert_true(e.msg[0] != '\0');
		skip();
	}
	assert_int_equal(tr_list(ctx, di, 8, &n, NULL), 0);
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(di[i].vid, 0x05ac);
	assert_int_equal(tr_list(ctx, di, 0, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tr_open(ctx, &ghost, &dev, &e), LP_ENODEV);
	assert_null(dev);
	assert_non_null(strstr(e.msg, "gone"));
	/* a bounded wait with nothing in flight returns at the deadline */
	assert_int_equal(tr_handle_events(ctx, lp_clock_deadline_ms(&clk, 20)), 0);
	assert_int_equal(tr_wait_hotplug(ctx, lp_clock_deadline_ms(&clk, 20)), 0);
	tr_ctx_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_virtual_clock_refused),
		cmocka_unit_test(test_list_and_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
