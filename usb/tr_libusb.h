/* tr_libusb.h - extras of the "libusb" transport backend (usb/tr_libusb.c)
 * beyond the ops table in transport.h: the libusb -> linkprobe code maps,
 * exposed so they are tested and reused, and not re-invented elsewhere. */
#ifndef LP_TR_LIBUSB_H
#define LP_TR_LIBUSB_H

#include "usb/transport.h"

/* libusb error code (LIBUSB_ERROR_*, <= 0) -> lp_err (0 for SUCCESS). */
int tr_libusb_map_error(int libusb_err);
/* libusb transfer status (LIBUSB_TRANSFER_*) -> enum tr_status. */
enum tr_status tr_libusb_map_status(int libusb_status);
/* libusb speed (LIBUSB_SPEED_*) -> enum tr_speed. */
enum tr_speed tr_libusb_map_speed(int libusb_speed);

/* The udev rule that grants a logged-in user access (installed under
 * $(DATADIR)/linkprobe/udev by make install). Named in LP_EACCES messages. */
#define TR_LIBUSB_UDEV_RULE "tools/udev/39-linkprobe.rules"

#endif
