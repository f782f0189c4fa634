/* sim_desc.c - the simulated iPhone's USB descriptors, as a real iPhone's
 * (doc/protocol.md section 0) and, for DFU and recovery mode, as
 * libirecovery knows them; handed to the device core, which answers
 * GET_DESCRIPTOR with them.
 *
 * Normal-mode configurations (bConfigurationValue: interfaces):
 *   1 "PTP"                   0 PTP 06/01/01: bulk OUT 0x02, bulk IN 0x81, intr IN 0x83 (64)
 *   2 "iPod USB Interface"    0 audio control 01/01/00; 1 audio streaming 01/02/00
 *                             (alt 1: iso IN 0x81, 192); 2 HID 03/00/00 (intr IN 0x83, 64)
 *   3 "PTP + Apple Mobile Device"   0 PTP; 1 usbmux ff/fe/02: bulk OUT 0x04, bulk IN 0x85
 *   4 "... + Apple USB Ethernet"    0 PTP; 1 usbmux; 2 Ethernet ff/fd/01 (no endpoints)
 * Bulk wMaxPacketSize: 512 at high speed, 64 at full speed.
 */
#include "src/device/sim_desc.h"

#include "src/device/simdev.h"

#include "src/base/lp_cursor.h"
#include "usb/usb_desc.h"

#define SD_VID 0x05ac
#define SD_PID_NORMAL 0x12a8
#define SD_PID_DFU 0x1227
#define SD_PID_RECOVERY 0x1281
#define SD_CFG_MAX 256 /* bytes of one configuration descriptor set */
#define SD_MPS_HS 512
#define SD_MPS_FS 64
#define SD_MPS_INTR 64
#define SD_MPS_ISO 192

/* string descriptor indexes */
enum {
	SIM_STR_LANG = 0,
	SIM_STR_MANUFACTURER,
	SIM_STR_PRODUCT,
	SIM_STR_SERIAL,
	SIM_STR_PTP,
	SIM_STR_IPOD,
	SIM_STR_PTP_AMD,
	SIM_STR_PTP_AMD_ETH,
	SIM_STR_MUX,
	SIM_STR_ETH,
	SIM_STR_COUNT,
};

static void wr_iface(struct lp_wr *w, uint8_t num, uint8_t alt, uint8_t neps, uint8_t cls,
		     uint8_t sub, uint8_t proto, uint8_t istr)
{
	lp_wr_u8(w, 9);
	lp_wr_u8(w, 4);
	lp_wr_u8(w, num);
	lp_wr_u8(w, alt);
	lp_wr_u8(w, neps);
	lp_wr_u8(w, cls);
	lp_wr_u8(w, sub);
	lp_wr_u8(w, proto);
	lp_wr_u8(w, istr);
}

static void wr_ep(struct lp_wr *w, uint8_t addr, uint8_t attr, uint16_t mps, uint8_t interval)
{
	lp_wr_u8(w, 7);
	lp_wr_u8(w, 5);
	lp_wr_u8(w, addr);
	lp_wr_u8(w, attr);
	lp_wr_le16(w, mps);
	lp_wr_u8(w, interval);
}

static void wr_ptp(struct lp_wr *w, bool hs)
{
	wr_iface(w, 0, 0, 3, 0x06, 0x01, 0x01, SIM_STR_PTP);
	wr_ep(w, 0x02, 0x02, hs ? SD_MPS_HS : SD_MPS_FS, 0);
	wr_ep(w, 0x81, 0x02, hs ? SD_MPS_HS : SD_MPS_FS, 0);
	wr_ep(w, 0x83, 0x03, SD_MPS_INTR, hs ? 7 : 8); /* 8 ms either way */
}

static void wr_mux(struct lp_wr *w, bool hs)
{
	wr_iface(w, 1, 0, 2, 0xff, 0xfe, 0x02, SIM_STR_MUX);
	wr_ep(w, SIMDEV_EP_MUX_OUT, 0x02, hs ? SD_MPS_HS : SD_MPS_FS, 0);
	wr_ep(w, SIMDEV_EP_MUX_IN, 0x02, hs ? SD_MPS_HS : SD_MPS_FS, 0);
}

/* One configuration set; bConfigurationValue `value`, `layout` picks the
 * interfaces (1..4 as in the header comment, 'd' DFU, 'r' recovery). */
static size_t build_config(uint8_t *buf, uint8_t value, int layout, bool hs)
{
	struct lp_wr w;
	uint8_t nif = 1, istr = 0;

	lp_wr_init_fixed(&w, buf, SD_CFG_MAX);
	switch (layout) {
	case 1:
		nif = 1;
		istr = SIM_STR_PTP;
		break;
	case 2:
		nif = 3;
		istr = SIM_STR_IPOD;
		break;
	case 3:
		nif = 2;
		istr = SIM_STR_PTP_AMD;
		break;
	case 4:
		nif = 3;
		istr = SIM_STR_PTP_AMD_ETH;
		break;
	default:
		nif = 1;
		istr = 0;
		break;
	}
	lp_wr_u8(&w, 9);
	lp_wr_u8(&w, 2);
	lp_wr_le16(&w, 0); /* wTotalLength, patched below */
	lp_wr_u8(&w, nif);
	lp_wr_u8(&w, value);
	lp_wr_u8(&w, istr);
	lp_wr_u8(&w, 0xc0); /* self-powered */
	lp_wr_u8(&w, 250);  /* 500 mA */
	switch (layout) {
	case 1:
		wr_ptp(&w, hs);
		break;
	case 2:
		wr_iface(&w, 0, 0, 0, 0x01, 0x01, 0x00, 0);
		/* class-specific AC header: bcdADC 1.00, one streaming interface */
		lp_wr_u8(&w, 9);
		lp_wr_u8(&w, 0x24);
		lp_wr_u8(&w, 0x01);
		lp_wr_le16(&w, 0x0100);
		lp_wr_le16(&w, 9);
		lp_wr_u8(&w, 1);
		lp_wr_u8(&w, 1);
		wr_iface(&w, 1, 0, 0, 0x01, 0x02, 0x00, 0);
		wr_iface(&w, 1, 1, 1, 0x01, 0x02, 0x00, 0);
		wr_ep(&w, 0x81, 0x05, SD_MPS_ISO, hs ? 4 : 1); /* iso async, 1 ms */
		wr_iface(&w, 2, 0, 1, 0x03, 0x00, 0x00, 0);
		/* HID descriptor: bcdHID 1.11, one report descriptor of 47 bytes */
		lp_wr_u8(&w, 9);
		lp_wr_u8(&w, 0x21);
		lp_wr_le16(&w, 0x0111);
		lp_wr_u8(&w, 0);
		lp_wr_u8(&w, 1);
		lp_wr_u8(&w, 0x22);
		lp_wr_le16(&w, 47);
		wr_ep(&w, 0x83, 0x03, SD_MPS_INTR, hs ? 7 : 8);
		break;
	case 3:
		wr_ptp(&w, hs);
		wr_mux(&w, hs);
		break;
	case 4:
		wr_ptp(&w, hs);
		wr_mux(&w, hs);
		wr_iface(&w, 2, 0, 0, 0xff, 0xfd, 0x01, SIM_STR_ETH);
		break;
	case 'd':
		wr_iface(&w, 0, 0, 0, 0xfe, 0x01, 0x00, 0);
		/* DFU functional descriptor: can download/manifest, 2 KiB transfers */
		lp_wr_u8(&w, 9);
		lp_wr_u8(&w, 0x21);
		lp_wr_u8(&w, 0x0b);
		lp_wr_le16(&w, 0);
		lp_wr_le16(&w, 0x0800);
		lp_wr_le16(&w, 0x0110);
		break;
	default: /* 'r' */
		wr_iface(&w, 0, 0, 0, 0xff, 0xff, 0x51, 0);
		break;
	}
	buf[2] = (uint8_t)(w.len & 0xff);
	buf[3] = (uint8_t)(w.len >> 8);
	return w.len;
}

int sim_descriptors(struct devcore *dc, enum sim_mode kind, const char *serial, uint16_t bcd_usb)
{
	static const char *const names[SIM_STR_COUNT] = {
		[SIM_STR_MANUFACTURER] = "Apple Inc.",
		[SIM_STR_PTP] = "PTP",
		[SIM_STR_IPOD] = "iPod USB Interface",
		[SIM_STR_PTP_AMD] = "PTP + Apple Mobile Device",
		[SIM_STR_PTP_AMD_ETH] = "PTP + Apple Mobile Device + Apple USB Ethernet",
		[SIM_STR_MUX] = "Apple USB Multiplexor",
		[SIM_STR_ETH] = "Apple USB Ethernet",
	};
	uint8_t devdesc[18], cfg[2][SD_CFG_MAX];
	struct lp_wr w;
	int rc;

	uint16_t pid = kind == SIM_DFU	      ? SD_PID_DFU
		       : kind == SIM_RECOVERY ? SD_PID_RECOVERY
					      : SD_PID_NORMAL;
	uint8_t ncfg = kind == SIM_NORMAL ? 4 : 1;
	lp_wr_init_fixed(&w, devdesc, sizeof(devdesc));
	lp_wr_u8(&w, 18);
	lp_wr_u8(&w, 1);
	lp_wr_le16(&w, bcd_usb ? bcd_usb : 0x0200);
	lp_wr_u8(&w, 0);
	lp_wr_u8(&w, 0);
	lp_wr_u8(&w, 0);
	lp_wr_u8(&w, 64);
	lp_wr_le16(&w, SD_VID);
	lp_wr_le16(&w, pid);
	lp_wr_le16(&w, kind == SIM_NORMAL || kind == SIM_CAMERA ? 0x0804 : 0x0000);
	lp_wr_u8(&w, SIM_STR_MANUFACTURER);
	lp_wr_u8(&w, SIM_STR_PRODUCT);
	lp_wr_u8(&w, SIM_STR_SERIAL);
	lp_wr_u8(&w, ncfg);
	rc = devcore_set_device(dc, devdesc, sizeof(devdesc));
	for (uint8_t i = 0; i < ncfg && !rc; i++) {
		int layout = kind == SIM_DFU ? 'd' : kind == SIM_RECOVERY ? 'r' : i + 1;
		size_t fs = build_config(cfg[0], i + 1, layout, false);
		size_t hs = build_config(cfg[1], i + 1, layout, true);

		rc = devcore_add_config(dc, cfg[0], fs, cfg[1], hs);
	}
	for (uint8_t i = 1; i < SIM_STR_COUNT && !rc; i++)
		if (names[i])
			rc = devcore_set_string(dc, i, names[i]);
	if (!rc)
		rc = devcore_set_string(dc, SIM_STR_PRODUCT,
					kind == SIM_DFU ? "Apple Mobile Device (DFU Mode)"
					: kind == SIM_RECOVERY
						? "Apple Mobile Device (Recovery Mode)"
						: "iPhone");
	if (!rc)
		rc = devcore_set_string(dc, SIM_STR_SERIAL, serial);
	return rc;
}
