/* libusb_init_fail.c - an LD_PRELOAD shim for the tests: libusb_init()
 * fails as it does where the system shows libusb no USB at all (no usbfs,
 * no sysfs, no uevent socket - a locked-down container), so the real
 * backend's start-up failure path runs (tests/t/27-host-faults.t). */
#include <libusb.h>

int libusb_init(libusb_context **ctx)
{
	if (ctx)
		*ctx = NULL;
	return LIBUSB_ERROR_OTHER;
}
