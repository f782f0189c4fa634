/* usb_desc.h - USB descriptor decoding (untrusted bytes) and encoding.
 *
 * Decodes the device descriptor (18 bytes), a whole configuration descriptor
 * set (config + interfaces + endpoints, other descriptors skipped), and
 * string descriptors (UTF-16LE -> sanitized UTF-8). Used by the host (bytes
 * from GET_DESCRIPTOR control transfers), the analyzer (bytes from captures)
 * and the simulated device (to build its descriptors). USB 2.0 spec ch. 9.
 * Every length field is checked against what is there; a bLength that
 * runs past wTotalLength or is < 2 is LP_EBADMSG.
 */
#ifndef LP_USB_DESC_H
#define LP_USB_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USBD_DT_DEVICE 1
#define USBD_DT_CONFIG 2
#define USBD_DT_STRING 3
#define USBD_DT_INTERFACE 4
#define USBD_DT_ENDPOINT 5
#define USBD_DT_BOS 15		     /* Binary device Object Store (USB 2.1+, 3.x) */
#define USBD_DT_DEVICE_CAPABILITY 16 /* one capability inside the BOS */
#define USBD_CAP_USB20_EXT 2	     /* bDevCapabilityType: USB 2.0 extension */
#define USBD_CAP_SUPERSPEED 3	     /* SuperSpeed USB (5 Gb/s) */
#define USBD_CAP_SUPERSPEED_PLUS 10  /* SuperSpeedPlus (10/20 Gb/s) */
#define USBD_BOS_MAX_TOTAL 1024	     /* cap on wTotalLength we fetch/accept */
#define USBD_REQ_GET_DESCRIPTOR 6
#define USBD_REQ_SET_CONFIGURATION 9
#define USBD_REQ_GET_CONFIGURATION 8

#define USBD_MAX_CONFIGS 8
#define USBD_MAX_IFACES 8
#define USBD_MAX_EPS 4
#define USBD_CONFIG_MAX_TOTAL 4096 /* cap on wTotalLength we fetch/accept */

/* usbmux interface: class/subclass/protocol all three must match. */
#define USBMUX_CLASS 0xFF
#define USBMUX_SUBCLASS 0xFE
#define USBMUX_PROTOCOL 0x02

struct usbd_device {
	uint16_t bcdUSB, idVendor, idProduct, bcdDevice;
	uint8_t bDeviceClass, bDeviceSubClass, bDeviceProtocol, bMaxPacketSize0;
	uint8_t iManufacturer, iProduct, iSerialNumber, bNumConfigurations;
};

struct usbd_endpoint {
	uint8_t bEndpointAddress, bmAttributes, bInterval;
	uint16_t wMaxPacketSize;
};

struct usbd_interface {
	uint8_t bInterfaceNumber, bAlternateSetting, bNumEndpoints;
	uint8_t bInterfaceClass, bInterfaceSubClass, bInterfaceProtocol, iInterface;
	uint8_t num_eps; /* endpoints actually decoded (<= USBD_MAX_EPS) */
	struct usbd_endpoint ep[USBD_MAX_EPS];
};

struct usbd_config {
	uint16_t wTotalLength;
	uint8_t bNumInterfaces, bConfigurationValue, iConfiguration, bmAttributes, bMaxPower;
	uint8_t num_ifaces; /* interface descriptors (alt settings included) decoded */
	struct usbd_interface iface[USBD_MAX_IFACES];
};

/* 0, LP_ETRUNC, LP_EBADMSG (wrong bDescriptorType / bLength). */
int usbd_parse_device(const uint8_t *buf, size_t len, struct usbd_device *out);
/* Whole configuration set; `len` may be less than wTotalLength only if the
 * caller fetched just the 9-byte header (then num_ifaces = 0 and LP_ETRUNC). */
int usbd_parse_config(const uint8_t *buf, size_t len, struct usbd_config *out);
/* String descriptor -> sanitized UTF-8 (non-ASCII kept if printable). */
int usbd_parse_string(const uint8_t *buf, size_t len, char *out, size_t outsz);
/* String descriptor 0 -> first LANGID. */
int usbd_parse_langid(const uint8_t *buf, size_t len, uint16_t *langid);

/* What a BOS descriptor set (GET_DESCRIPTOR type 15) says about speeds. */
struct usbd_bos {
	uint16_t wTotalLength;
	uint8_t num_caps;      /* device capabilities decoded */
	bool usb20_ext;	       /* USB 2.0 extension (LPM) */
	bool superspeed;       /* SuperSpeed USB capability: the device can run at 5 Gb/s */
	bool superspeed_plus;  /* SuperSpeedPlus capability: 10 Gb/s or more */
	uint16_t ss_speeds;    /* SuperSpeed cap wSpeedsSupported (bit 3: 5 Gb/s) */
	uint32_t ssp_max_mbps; /* fastest lane speed the SuperSpeedPlus cap lists (0: none) */
};

/* The whole BOS set: header (bLength 5, type 15, wTotalLength, bNumDeviceCaps)
 * then capability descriptors (type 16). Every length is checked against what
 * is there; unknown capabilities are skipped. 0, LP_ETRUNC (fewer bytes than
 * wTotalLength, or a capability running past them: the header alone still
 * fills wTotalLength), LP_EBADMSG (wrong types or lengths), LP_ETOOBIG
 * (wTotalLength over USBD_BOS_MAX_TOTAL). */
int usbd_parse_bos(const uint8_t *buf, size_t len, struct usbd_bos *out);
/* A BOS set with a USB 2.0 extension, a SuperSpeed capability (5 Gb/s) and,
 * if `plus_gbps` is 10 or 20, a SuperSpeedPlus capability with one
 * sublink pair at that lane speed (for the simulated device). Bytes written or
 * LP_ETOOBIG. */
int usbd_encode_bos(unsigned plus_gbps, uint8_t *buf, size_t cap);

/* Find the usbmux interface (ff/fe/02, alt 0, one bulk IN and one bulk OUT) in
 * a configuration. Returns the interface or NULL; *ep_in, *ep_out, *mps filled. */
const struct usbd_interface *usbd_find_usbmux(const struct usbd_config *c, uint8_t *ep_in,
					      uint8_t *ep_out, uint16_t *mps);

/* UTF-8/ASCII serial -> UDID: a 24-character serial gets '-' after the 8th
 * character (new-style UDIDs). out must hold 64 bytes. */
void usbd_serial_to_udid(const char *serial, char *out, size_t outsz);

/* Encoding (for the simulated device): write a string descriptor for ASCII
 * `s` into out (cap bytes), return its length (<= 255) or negative error. */
int usbd_encode_string(const char *s, uint8_t *out, size_t cap);
/* String descriptor 0 carrying one LANGID (4 bytes). Returns 4 or LP_ETOOBIG. */
int usbd_encode_langid(uint16_t langid, uint8_t *out, size_t cap);
/* Device descriptor (18 bytes). Returns 18 or LP_ETOOBIG. */
int usbd_encode_device(const struct usbd_device *d, uint8_t *out, size_t cap);
/* Whole configuration set: header, then each decoded interface followed by
 * its num_eps endpoints. wTotalLength and bNumInterfaces in `c` are ignored
 * and computed (bNumInterfaces = distinct interface numbers). Returns the
 * length or LP_ETOOBIG (cap or USBD_CONFIG_MAX_TOTAL exceeded). */
int usbd_encode_config(const struct usbd_config *c, uint8_t *out, size_t cap);
/* Fills `f` as interface `num` (class/subclass/protocol) with one bulk OUT
 * and one bulk IN endpoint of `mps` bytes, the shape of every interface the
 * simulated device models present (PTP, usbmux). */
void usbd_bulk_interface(struct usbd_interface *f, uint8_t num, uint8_t cls, uint8_t sub,
			 uint8_t proto, uint8_t ep_out, uint8_t ep_in, uint16_t mps);

#endif
