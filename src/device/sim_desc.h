/* sim_desc.h - the simulated iPhone's USB descriptors (private to
 * src/device/sim*.c). */
#ifndef LP_SIM_DESC_H
#define LP_SIM_DESC_H

#include "src/device/devcore.h"

/* The USB mode a profile puts the phone in. */
enum sim_mode { SIM_NORMAL, SIM_CAMERA, SIM_DFU, SIM_RECOVERY };

/* Give `dc` the device, configuration and string descriptors of an iPhone in
 * `mode` with iSerialNumber `serial` (borrowed; copied). 0 or an LP_E* code. */
/* bcd_usb: the device descriptor's bcdUSB (0x0200 for Lightning iPhones,
 * 0x0320 for a USB-C one that can run SuperSpeed; it then has a BOS, which
 * the personality answers). */
int sim_descriptors(struct devcore *dc, enum sim_mode mode, const char *serial, uint16_t bcd_usb);

#endif
