/* lp_gadget.c - put a USB device model (struct devmodel_ops, usb/devmodel.h:
 * the simulated iPhone of src/device/simdev.h on the device core) on a real USB device controller
 * through FunctionFS, so real hosts - Linux's USB stack, libusb, usbmuxd,
 * libimobiledevice, linkprobe - talk to it over a real (virtual) bus.
 *
 *   lp_gadget --ffs DIR [--iface usbmux|ptp|ethernet|audio|dfu|recovery] [--profile NAME]
 *             [--udid UDID] [--model simdev|echo] [--ready FILE]
 *             [--udc-attr CONFIGFS_UDC_FILE] [--state FILE] [-v]
 *
 * configfs builds the device and configuration descriptors (tools/gadget/
 * gadget.sh); this program serves one FunctionFS function:
 *  - usbmux: interface ff/fe/02 with bulk IN + bulk OUT (64 B full speed,
 *    512 B high speed), driven by the model:
 *      OUT  the ep file is read in LPG_OUT_CHUNK pieces; a read completes on a
 *           full buffer or a short packet/ZLP, so a full read means "more may
 *           follow" and a short one ends the device transfer; the reassembled
 *           transfer goes to model->bulk_out (the tr_sim OUT semantics).
 *      IN   model->bulk_in_next -> write(); a zero-length write follows when
 *           the model asks for a ZLP.
 *      ep0  ENABLE -> model->reset + a synthetic SET_CONFIGURATION(highest
 *           configuration of the model) so the model activates usbmux (configfs
 *           answered the real one); DISABLE/UNBIND -> model->reset; SETUP:
 *           vendor requests 0x45 (GET_MODE) and 0x52 (SET_MODE) go to
 *           model->control, everything else is stalled.
 *      timers model->next_timer/tick on a real lp_clock.
 *  - ptp, ethernet, audio, dfu, recovery: inert interfaces (descriptors only, every request
 *    stalled) for the configurations a real iPhone has besides usbmux, and for
 *    DFU/recovery mode.
 * --udc-attr: the model's own (dis)appearance (re-enumeration after pairing,
 * the flaky profile's drop) is done physically by writing the configfs UDC
 * attribute. --state: where the simdev keeps its key and pairings (RSA key
 * generation takes seconds under emulation; the lab generates it once).
 * --ready FILE is written once the function is ready to bind, with what the
 * model says about itself ("vid=05ac pid=12a8 configs=4 attached=1"), so the
 * launcher binds the UDC only when the device is attached (charge-only cables
 * never enumerate).
 *
 * Threads: ep0, OUT and IN each block in their own thread (FunctionFS bulk
 * files cannot be polled without AIO); the main thread runs the timers. Every
 * model call is made with `lock` held, so the model sees one driver at a time,
 * as tr_sim.h requires.
 *
 * Reference: Linux Documentation/usb/functionfs.rst, include/uapi/linux/usb/
 * functionfs.h; USB 2.0 ch. 9; usbmuxd src/usb.c (what the host does).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_cursor.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include "src/device/devcore.h"
#include "usb/devmodel.h"
#include "usb/tr_sim.h"
#include "usb/usb_desc.h"
#ifdef LP_GADGET_SIMDEV
#include "src/device/simdev.h"
#endif

#define LPG_OUT_CHUNK 16384			/* one FunctionFS read: a multiple of every mps */
#define LPG_OUT_MAX (1024 * 1024)		/* cap on one reassembled OUT transfer */
#define LPG_IN_MAX (1024 * 1024)		/* cap on one IN transfer from the model */
#define LPG_EP0_MAX 4096			/* cap on a control transfer's data stage */
#define LPG_TIMER_IDLE_NS (1000 * LP_NS_PER_MS) /* re-check interval with no timer */
#define LPG_SETUP_LEN 8

enum lpg_iface { LPG_USBMUX, LPG_PTP, LPG_DFU, LPG_RECOVERY, LPG_ETHERNET, LPG_AUDIO };

struct lpg_iface_desc {
	const char *name;
	uint8_t cls, subcls, proto;
	bool bulk;    /* bulk IN + bulk OUT */
	bool intr_in; /* an interrupt IN endpoint (PTP events) */
	const char *str;
	uint8_t cls2, subcls2, proto2; /* a second interface without endpoints, if cls2 */
};

static const struct lpg_iface_desc lpg_ifaces[] = {
	[LPG_USBMUX] = {"usbmux", 0xff, 0xfe, 0x02, true, false, "Apple USB Multiplexor"},
	[LPG_PTP] = {"ptp", 0x06, 0x01, 0x01, true, true, "PTP"},
	[LPG_DFU] = {"dfu", 0xfe, 0x01, 0x02, false, false, "Apple Mobile Device (DFU Mode)"},
	[LPG_RECOVERY] = {"recovery", 0xff, 0xff, 0x00, true, false,
			  "Apple Mobile Device (Recovery Mode)"},
	/* configuration 4's Apple USB Ethernet (ipheth's ff/fd/01); a real
	 * iPhone puts its bulk endpoints in alternate setting 1, here they are in
	 * alternate setting 0 (inert either way: every request is stalled) */
	[LPG_ETHERNET] = {"ethernet", 0xff, 0xfd, 0x01, true, false, "Apple USB Ethernet"},
	/* configuration 2's iPod audio: audio control 01/01/00 + audio streaming
	 * 01/02/00. A real iPhone streams on an isochronous IN endpoint in the
	 * streaming interface's alternate setting 1; dummy_hcd has no isochronous
	 * endpoints, so only the zero-bandwidth alternate setting 0 is here */
	[LPG_AUDIO] = {"audio", 0x01, 0x01, 0x00, false, false, "iPod Audio", 0x01, 0x02, 0x00},
};

struct lpg {
	pthread_mutex_t lock; /* held for every model call and the fields below */
	pthread_cond_t kick;  /* IN data may be queued, enable state or timers changed */
	const struct devmodel_ops *ops;
	void *model;
	void *owner; /* what model_free frees */
	void (*model_free)(void *owner);
	struct lp_clock clock;
	struct lp_log log;

	enum lpg_iface iface;
	int ep0, ep_in, ep_out;
	bool enabled;	     /* FunctionFS ENABLE seen, no DISABLE since */
	uint32_t gen;	     /* bumped on every enable/disable: drops stale transfers */
	uint16_t mps;	     /* wMaxPacketSize of the bulk endpoints at the current speed */
	uint8_t config;	     /* the configuration value the model was put in */
	uint8_t m_in, m_out; /* the model's own usbmux endpoint addresses */
	uint16_t m_mps;	     /* the model's own wMaxPacketSize for m_in */

	/* The physical link: the model's (dis)appearance and the profile's
	 * scheduled drop are done by unbinding/rebinding the UDC. */
	const char *udc_attr;	      /* configfs .../UDC, NULL: never touch the bus */
	char udc[64];		      /* controller name, learnt when we unbind */
	bool model_attached;	      /* attached() at the last check */
	bool we_unbound;	      /* the bus is down because of us */
	enum tr_speed speed;	      /* from the model's link, for the ready file */
	uint64_t disconnect_after_ns; /* after the first ENABLE; 0 = never */
	uint64_t reenum_gap_ns;
	uint64_t first_enable_ns; /* 0 = not yet */
	uint64_t rebind_at_ns;	  /* pending rebind after a scheduled drop, 0 = none */
};

static volatile sig_atomic_t lpg_stop;

/* --- logging ------------------------------------------------------------- */

static void lpg_sink(void *ud, enum lp_log_level level, const char *msg)
{
	static const char *names[] = {"error", "warn", "info", "debug", "trace"};
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(stderr, "[%5ld.%06ld] lp_gadget %s: %s\n", (long)ts.tv_sec, ts.tv_nsec / 1000,
		names[level <= LP_LOG_TRACE ? level : LP_LOG_TRACE], msg);
}

#define LOGE(g, ...) lp_logf(&(g)->log, LP_LOG_ERROR, __VA_ARGS__)
#define LOGW(g, ...) lp_logf(&(g)->log, LP_LOG_WARN, __VA_ARGS__)
#define LOGI(g, ...) lp_logf(&(g)->log, LP_LOG_INFO, __VA_ARGS__)
#define LOGD(g, ...) lp_logf(&(g)->log, LP_LOG_DEBUG, __VA_ARGS__)

/* --- the echo model: a stand-in device for testing the transfer machinery --
 * Every OUT transfer comes back as one IN transfer (ZLP-terminated when its
 * length is a multiple of 512), so a host can check that the gadget reassembles
 * and terminates transfers of every size correctly. */

#define ECHO_MPS 512
#define ECHO_EP_IN 0x85
#define ECHO_EP_OUT 0x04
#define ECHO_CONFIGS 4 /* as an iPhone: the host picks the highest */

/* A personality on the device core: raw (no usbmux codec), every OUT
 * transfer queued back on IN with the core's ZLP rule. */
struct echo {
	struct devcore *dc;
};

static void echo_bulk_out(void *p, uint8_t ep, const uint8_t *data, size_t len, uint64_t now)
{
	struct echo *e = p;

	if (ep == ECHO_EP_OUT)
		devcore_in_queue(e->dc, ECHO_EP_IN, data, len, true);
}

static int echo_control(void *p, const uint8_t setup[8], uint8_t *data, size_t len, size_t *actual,
			uint64_t now)
{
	if (setup[0] == 0xc0 && setup[1] == 0x45 && len >= 4) {
		memcpy(data, "\x03\x03\x03\x00", 4);
		*actual = 4;
		return 0;
	}
	if (setup[0] == 0xc0 && setup[1] == 0x52 && len >= 1) {
		data[0] = 1; /* refuse mode changes: stay in the initial mode */
		*actual = 1;
		return 0;
	}
	return LP_ESTALL;
}

static const struct devcore_personality echo_personality = {
	.control = echo_control,
	.bulk_out = echo_bulk_out,
	.raw = true,
};

static void echo_free(void *owner)
{
	struct echo *e = owner;

	if (e)
		devcore_free(e->dc);
	free(e);
}

static struct echo *echo_new(const struct lp_log *log)
{
	struct echo *e = calloc(1, sizeof(*e));
	struct devcore *dc = e ? devcore_new(&echo_personality, e, log) : NULL;
	struct usbd_device d = {.bcdUSB = 0x0200,
				.idVendor = 0x05ac,
				.idProduct = 0x12a8,
				.bMaxPacketSize0 = 64,
				.bNumConfigurations = ECHO_CONFIGS};
	uint8_t buf[64];
	int n, rc;

	if (!dc) {
		free(e);
		return NULL;
	}
	e->dc = dc;
	n = usbd_encode_device(&d, buf, sizeof(buf));
	rc = n < 0 ? n : devcore_set_device(dc, buf, (size_t)n);
	for (uint8_t v = 1; v <= ECHO_CONFIGS && !rc; v++) {
		struct usbd_config c = {.bConfigurationValue = v,
					.bmAttributes = 0x80,
					.bMaxPower = 250,
					.num_ifaces = 1};

		c.iface[0] = (struct usbd_interface){.bInterfaceClass = 0xff,
						     .bInterfaceSubClass = 0xfe,
						     .bInterfaceProtocol = 0x02,
						     .bNumEndpoints = 2,
						     .num_eps = 2};
		c.iface[0].ep[0] = (struct usbd_endpoint){ECHO_EP_OUT, 2, 0, ECHO_MPS};
		c.iface[0].ep[1] = (struct usbd_endpoint){ECHO_EP_IN, 2, 0, ECHO_MPS};
		n = usbd_encode_config(&c, buf, sizeof(buf));
		rc = n < 0 ? n : devcore_add_config(dc, buf, (size_t)n, NULL, 0);
	}
	if (rc) {
		echo_free(e);
		return NULL;
	}
	return e;
}

/* --- FunctionFS descriptors ------------------------------------------------ */

static void put_endpoint(struct lp_wr *w, uint8_t addr, uint8_t attr, uint16_t mps,
			 uint8_t interval)
{
	lp_wr_u8(w, USB_DT_ENDPOINT_SIZE);
	lp_wr_u8(w, USB_DT_ENDPOINT);
	lp_wr_u8(w, addr);
	lp_wr_u8(w, attr);
	lp_wr_le16(w, mps);
	lp_wr_u8(w, interval);
}

/* One speed's descriptor list: interface, then its endpoints (IN first, so
 * FunctionFS names them ep1 = bulk IN, ep2 = bulk OUT, ep3 = interrupt IN). */
static unsigned put_speed(struct lp_wr *w, const struct lpg_iface_desc *d, bool hs)
{
	unsigned n = 1;
	uint8_t neps = (d->bulk ? 2 : 0) + (d->intr_in ? 1 : 0);

	lp_wr_u8(w, USB_DT_INTERFACE_SIZE);
	lp_wr_u8(w, USB_DT_INTERFACE);
	lp_wr_u8(w, 0); /* bInterfaceNumber: FunctionFS renumbers */
	lp_wr_u8(w, 0);
	lp_wr_u8(w, neps);
	lp_wr_u8(w, d->cls);
	lp_wr_u8(w, d->subcls);
	lp_wr_u8(w, d->proto);
	lp_wr_u8(w, 1); /* iInterface: our string 1 */
	if (d->bulk) {
		put_endpoint(w, 1 | USB_DIR_IN, USB_ENDPOINT_XFER_BULK, hs ? 512 : 64, 0);
		put_endpoint(w, 2 | USB_DIR_OUT, USB_ENDPOINT_XFER_BULK, hs ? 512 : 64, 0);
		n += 2;
	}
	if (d->intr_in) {
		/* 8 ms either way: 2^(4-1) microframes at high speed, 8 frames at full */
		put_endpoint(w, 3 | USB_DIR_IN, USB_ENDPOINT_XFER_INT, 64, hs ? 4 : 8);
		n++;
	}
	if (d->cls2) {
		lp_wr_u8(w, USB_DT_INTERFACE_SIZE);
		lp_wr_u8(w, USB_DT_INTERFACE);
		lp_wr_u8(w, 1); /* bInterfaceNumber: FunctionFS renumbers */
		lp_wr_u8(w, 0);
		lp_wr_u8(w, 0);
		lp_wr_u8(w, d->cls2);
		lp_wr_u8(w, d->subcls2);
		lp_wr_u8(w, d->proto2);
		lp_wr_u8(w, 1);
		n++;
	}
	return n;
}

static int lpg_write_descriptors(struct lpg *g)
{
	const struct lpg_iface_desc *d = &lpg_ifaces[g->iface];
	uint8_t buf[256], sbuf[128];
	struct lp_wr w, s;
	size_t cnt_off;
	unsigned nfs, nhs;

	lp_wr_init_fixed(&w, buf, sizeof(buf));
	lp_wr_le32(&w, FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
	lp_wr_le32(&w, 0); /* length, patched */
	/* ALL_CTRL_RECIP + CONFIG0_SETUP: usbmuxd sends its device-recipient
	 * vendor requests while the device is still unconfigured */
	lp_wr_le32(&w, FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC |
			       (g->iface == LPG_USBMUX
					? FUNCTIONFS_ALL_CTRL_RECIP | FUNCTIONFS_CONFIG0_SETUP
					: 0));
	cnt_off = w.len;
	lp_wr_le32(&w, 0);
	lp_wr_le32(&w, 0);
	nfs = put_speed(&w, d, false);
	nhs = put_speed(&w, d, true);
	lp_wr_patch_le32(&w, 4, (uint32_t)w.len);
	lp_wr_patch_le32(&w, cnt_off, nfs);
	lp_wr_patch_le32(&w, cnt_off + 4, nhs);

	lp_wr_init_fixed(&s, sbuf, sizeof(sbuf));
	lp_wr_le32(&s, FUNCTIONFS_STRINGS_MAGIC);
	lp_wr_le32(&s, 0);
	lp_wr_le32(&s, 1); /* str_count */
	lp_wr_le32(&s, 1); /* lang_count */
	lp_wr_le16(&s, 0x0409);
	lp_wr_bytes(&s, d->str, strlen(d->str) + 1);
	lp_wr_patch_le32(&s, 4, (uint32_t)s.len);
	if (!lp_wr_ok(&w) || !lp_wr_ok(&s))
		return LP_ETOOBIG;

	if (write(g->ep0, buf, w.len) != (ssize_t)w.len) {
		LOGE(g, "writing FunctionFS descriptors: %s", strerror(errno));
		return lp_err_from_errno(errno);
	}
	if (write(g->ep0, sbuf, s.len) != (ssize_t)s.len) {
		LOGE(g, "writing FunctionFS strings: %s", strerror(errno));
		return lp_err_from_errno(errno);
	}
	return 0;
}

/* --- ep0 ------------------------------------------------------------------ */

static void setup_bytes(uint8_t out[LPG_SETUP_LEN], uint8_t type, uint8_t req, uint16_t value,
			uint16_t index, uint16_t length)
{
	struct lp_wr w;

	lp_wr_init_fixed(&w, out, LPG_SETUP_LEN);
	lp_wr_u8(&w, type);
	lp_wr_u8(&w, req);
	lp_wr_le16(&w, value);
	lp_wr_le16(&w, index);
	lp_wr_le16(&w, length);
}

/* Find the model's usbmux endpoints in the configuration it was put in.
 * Called with lock held. */
static void lpg_model_endpoints(struct lpg *g, uint64_t now)
{
	uint8_t setup[LPG_SETUP_LEN], *buf;
	struct usbd_config c;
	size_t actual = 0;
	int rc;

	g->m_in = 0x81;
	g->m_out = 0x02;
	g->m_mps = 512;
	buf = malloc(USBD_CONFIG_MAX_TOTAL);
	if (!buf)
		return;
	/* configuration index = value - 1 for every configuration we model */
	setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR,
		    (uint16_t)(USBD_DT_CONFIG << 8 | (g->config - 1)), 0, USBD_CONFIG_MAX_TOTAL);
	rc = g->ops->control(g->model, setup, buf, USBD_CONFIG_MAX_TOTAL, &actual, now);
	if (rc == 0)
		rc = usbd_parse_config(buf, actual, &c);
	if (rc == 0 && !usbd_find_usbmux(&c, &g->m_in, &g->m_out, &g->m_mps))
		rc = LP_ENOENT;
	if (rc)
		LOGW(g, "model's configuration %u: no usbmux interface found (%s); using 0x81/0x02",
		     g->config, lp_strerror(rc));
	else
		LOGI(g, "model: configuration %u, usbmux IN 0x%02x OUT 0x%02x mps %u", g->config,
		     g->m_in, g->m_out, g->m_mps);
	free(buf);
}

static uint16_t ep_file_mps(struct lpg *g, int fd)
{
	struct usb_endpoint_descriptor d;

	if (fd < 0 || ioctl(fd, FUNCTIONFS_ENDPOINT_DESC, &d) < 0)
		return 0;
	return (uint16_t)(((const uint8_t *)&d.wMaxPacketSize)[0] |
			  ((const uint8_t *)&d.wMaxPacketSize)[1] << 8);
}

static void lpg_enable(struct lpg *g)
{
	uint64_t now = lp_clock_now(&g->clock);
	uint8_t setup[LPG_SETUP_LEN];
	uint16_t vid, pid;
	uint8_t ncfg;
	size_t actual;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->mps = ep_file_mps(g, g->ep_in);
	g->ops->reset(g->model, now);
	g->ops->identity(g->model, &vid, &pid, &ncfg);
	/* The host chose the configuration holding usbmux (the highest, as
	 * usbmuxd does); configfs answered it, the model has to hear it too. */
	g->config = ncfg ? ncfg : 1;
	setup_bytes(setup, 0x00, USBD_REQ_SET_CONFIGURATION, g->config, 0, 0);
	rc = g->ops->control(g->model, setup, NULL, 0, &actual, now);
	if (rc)
		LOGW(g, "model refused SET_CONFIGURATION %u: %s", g->config, lp_strerror(rc));
	lpg_model_endpoints(g, now);
	g->enabled = true;
	g->gen++;
	if (!g->first_enable_ns)
		g->first_enable_ns = now ? now : 1;
	LOGI(g, "enabled: wMaxPacketSize %u (%s speed)", g->mps, g->mps == 64 ? "full" : "high");
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
}

static void lpg_disable(struct lpg *g, const char *why)
{
	pthread_mutex_lock(&g->lock);
	if (g->enabled)
		LOGI(g, "%s: device unconfigured", why);
	g->enabled = false;
	g->gen++;
	g->ops->reset(g->model, lp_clock_now(&g->clock));
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
}

/* A stall is answered by moving data "the wrong way" (functionfs.rst). */
static void ep0_stall(struct lpg *g, const struct usb_ctrlrequest *s)
{
	ssize_t r;

	if (s->bRequestType & USB_DIR_IN)
		r = read(g->ep0, NULL, 0);
	else
		r = write(g->ep0, NULL, 0);
	(void)r;
}

static void lpg_setup(struct lpg *g, const struct usb_ctrlrequest *s)
{
	uint8_t setup[LPG_SETUP_LEN], data[LPG_EP0_MAX];
	uint16_t wlen = le16toh(s->wLength);
	size_t actual = 0;
	bool in = s->bRequestType & USB_DIR_IN;
	int rc = LP_ESTALL;
	ssize_t r;

	setup_bytes(setup, s->bRequestType, s->bRequest, le16toh(s->wValue), le16toh(s->wIndex),
		    wlen);
	LOGD(g, "SETUP %02x %02x wValue %04x wIndex %04x wLength %u", s->bRequestType, s->bRequest,
	     le16toh(s->wValue), le16toh(s->wIndex), wlen);
	bool vendor = (s->bRequestType & USB_TYPE_MASK) == USB_TYPE_VENDOR;
	if (g->iface != LPG_USBMUX || !vendor || (s->bRequest != 0x45 && s->bRequest != 0x52) ||
	    wlen > sizeof(data)) {
		ep0_stall(g, s);
		return;
	}
	if (!in && wlen) {
		r = read(g->ep0, data, wlen);
		if (r != wlen) {
			LOGW(g, "control OUT data stage: %s", r < 0 ? strerror(errno) : "short");
			return;
		}
	}
	pthread_mutex_lock(&g->lock);
	rc = g->ops->control(g->model, setup, data, wlen, &actual, lp_clock_now(&g->clock));
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
	LOGI(g, "vendor request 0x%02x -> %s", s->bRequest, rc ? lp_strerror(rc) : "answered");
	if (rc) {
		ep0_stall(g, s);
		return;
	}
	if (in)
		r = write(g->ep0, data, actual < wlen ? actual : wlen);
	else
		r = read(g->ep0, NULL, 0); /* status stage */
	if (r < 0)
		LOGW(g, "control status stage: %s", strerror(errno));
}

static void *ep0_thread(void *arg)
{
	static const char *names[] = {"BIND",  "UNBIND",  "ENABLE", "DISABLE",
				      "SETUP", "SUSPEND", "RESUME"};
	struct lpg *g = arg;
	struct usb_functionfs_event ev[4];

	while (!lpg_stop) {
		ssize_t n = read(g->ep0, ev, sizeof(ev));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			LOGE(g, "reading ep0 events: %s", strerror(errno));
			lpg_stop = 1;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
			uint8_t t = ev[i].type;

			LOGD(g, "ep0 event %s", t < 7 ? names[t] : "?");
			if (g->iface != LPG_USBMUX) {
				if (t == FUNCTIONFS_SETUP)
					ep0_stall(g, &ev[i].u.setup);
				continue;
			}
			switch (t) {
			case FUNCTIONFS_ENABLE:
				lpg_enable(g);
				break;
			case FUNCTIONFS_DISABLE:
			case FUNCTIONFS_UNBIND:
				lpg_disable(g, t == FUNCTIONFS_DISABLE ? "DISABLE" : "UNBIND");
				break;
			case FUNCTIONFS_SETUP:
				lpg_setup(g, &ev[i].u.setup);
				break;
			default:
				break;
			}
		}
	}
	pthread_mutex_lock(&g->lock);
	pthread_cond_broadcast(&g->kick);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* --- bulk OUT ---------------------------------------------------------------- */

/* Wait (bounded, re-checking stop) until the function is enabled; returns its
 * generation. */
static uint32_t wait_enabled(struct lpg *g)
{
	uint32_t gen;

	pthread_mutex_lock(&g->lock);
	while (!g->enabled && !lpg_stop) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&g->kick, &g->lock, &ts);
	}
	gen = g->gen;
	pthread_mutex_unlock(&g->lock);
	return gen;
}

static void *out_thread(void *arg)
{
	struct lpg *g = arg;
	uint8_t *buf = malloc(LPG_OUT_MAX);
	size_t len = 0;
	uint32_t gen;

	if (!buf) {
		LOGE(g, "out of memory");
		lpg_stop = 1;
		return NULL;
	}
	gen = wait_enabled(g);
	while (!lpg_stop) {
		ssize_t n = read(g->ep_out, buf + len, LPG_OUT_CHUNK);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ESHUTDOWN && errno != ECONNRESET)
				LOGW(g, "bulk OUT read: %s", strerror(errno));
			len = 0; /* a transfer cut by disable/unbind is lost, as on a bus */
			usleep(10000);
			gen = wait_enabled(g);
			continue;
		}
		len += (size_t)n;
		/* A full read says nothing about the end of the transfer: the next
		 * read continues it, unless the cap is reached. */
		if (n == LPG_OUT_CHUNK && len + LPG_OUT_CHUNK <= LPG_OUT_MAX)
			continue;
		if (n == LPG_OUT_CHUNK)
			LOGW(g, "bulk OUT transfer over %d bytes: delivered in pieces",
			     LPG_OUT_MAX);
		pthread_mutex_lock(&g->lock);
		if (g->enabled && g->gen == gen && len) {
			LOGD(g, "OUT transfer %zu bytes", len);
			g->ops->bulk_out(g->model, g->m_out, buf, len, lp_clock_now(&g->clock));
			pthread_cond_broadcast(&g->kick);
		} else if (g->gen != gen) {
			gen = g->gen;
		}
		pthread_mutex_unlock(&g->lock);
		len = 0;
	}
	free(buf);
	return NULL;
}

/* --- bulk IN ----------------------------------------------------------------- */

static void *in_thread(void *arg)
{
	struct lpg *g = arg;
	uint8_t *buf = malloc(LPG_IN_MAX);

	if (!buf) {
		LOGE(g, "out of memory");
		lpg_stop = 1;
		return NULL;
	}
	while (!lpg_stop) {
		const uint8_t *data;
		size_t len = 0;
		bool zlp = false, stale;
		int rc = LP_EAGAIN;
		uint32_t gen = 0;
		ssize_t w;

		pthread_mutex_lock(&g->lock);
		while (!lpg_stop) {
			if (g->enabled) {
				rc = g->ops->bulk_in_next(g->model, g->m_in, &data, &len, &zlp,
							  lp_clock_now(&g->clock));
				if (rc == 0)
					break;
			}
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&g->kick, &g->lock, &ts);
		}
		if (rc == 0) {
			if (len > LPG_IN_MAX) {
				LOGW(g, "model queued %zu bytes, over the %d cap: truncated", len,
				     LPG_IN_MAX);
				len = LPG_IN_MAX;
			}
			memcpy(buf, data, len);
			/* The model terminates transfers for its own wMaxPacketSize;
			 * at another speed (full speed: 64) terminate for the real one,
			 * or a transfer ending on a packet boundary never completes. */
			if (g->mps && g->mps != g->m_mps)
				zlp = len % g->mps == 0;
			gen = g->gen;
		}
		pthread_mutex_unlock(&g->lock);
		if (rc)
			break;
		/* queued before a disable/re-enable: it belonged to the old link */
		pthread_mutex_lock(&g->lock);
		stale = g->gen != gen;
		pthread_mutex_unlock(&g->lock);
		if (stale)
			continue;

		LOGD(g, "IN transfer %zu bytes%s", len, zlp && len ? " + ZLP" : "");
		w = write(g->ep_in, buf, len);
		if (w == (ssize_t)len && zlp && len)
			w = write(g->ep_in, buf, 0);
		if (w < 0 && errno != ESHUTDOWN && errno != ECONNRESET && errno != EINTR)
			LOGW(g, "bulk IN write: %s", strerror(errno));
	}
	free(buf);
	return NULL;
}

/* --- main ---------------------------------------------------------------- */

static void on_signal(int sig)
{
	lpg_stop = 1;
}

/* Write the configfs UDC attribute: "" unbinds (cable pulled), a controller
 * name binds (plugged in). Called without the lock: unbinding makes the
 * kernel send UNBIND/DISABLE, which the ep0 thread handles under the lock. */
static void lpg_set_bus(struct lpg *g, bool up)
{
	char cur[64] = "";
	ssize_t n;
	int fd;

	if (!g->udc_attr)
		return;
	fd = open(g->udc_attr, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		LOGW(g, "%s: %s", g->udc_attr, strerror(errno));
		return;
	}
	n = read(fd, cur, sizeof(cur) - 1);
	cur[n > 0 ? n : 0] = 0;
	cur[strcspn(cur, "\n")] = 0;
	if (!up && cur[0]) {
		snprintf(g->udc, sizeof(g->udc), "%s", cur);
		n = pwrite(fd, "\n", 1, 0);
		g->we_unbound = n == 1;
		LOGI(g, "bus: unbound from %s%s", g->udc, n == 1 ? "" : " FAILED");
	} else if (up && !cur[0] && g->we_unbound && g->udc[0]) {
		n = pwrite(fd, g->udc, strlen(g->udc), 0);
		g->we_unbound = false;
		LOGI(g, "bus: bound to %s%s", g->udc, n > 0 ? "" : " FAILED");
	}
	close(fd);
}

/* Called with the lock held; may drop it to touch the bus. */
static void lpg_link_check(struct lpg *g, uint64_t now)
{
	bool att = g->ops->attached(g->model, now);
	int action = 0; /* -1 down, +1 up */

	if (att != g->model_attached) {
		LOGI(g, "model %s the bus", att ? "is back on" : "dropped off");
		g->model_attached = att;
		action = att ? 1 : -1;
	}
	if (g->disconnect_after_ns && g->first_enable_ns &&
	    now >= g->first_enable_ns + g->disconnect_after_ns) {
		LOGI(g, "profile: scheduled drop off the bus for %llu ms",
		     (unsigned long long)(g->reenum_gap_ns / LP_NS_PER_MS));
		g->disconnect_after_ns = 0;
		g->rebind_at_ns = now + (g->reenum_gap_ns ? g->reenum_gap_ns : 1);
		action = -1;
	}
	if (g->rebind_at_ns && now >= g->rebind_at_ns && g->model_attached) {
		g->rebind_at_ns = 0;
		action = 1;
	}
	if (action) {
		pthread_mutex_unlock(&g->lock);
		lpg_set_bus(g, action > 0);
		pthread_mutex_lock(&g->lock);
	}
}

/* Earliest time the link needs a look (UINT64_MAX: none). */
static uint64_t lpg_link_timer(const struct lpg *g)
{
	uint64_t t = UINT64_MAX;

	if (g->disconnect_after_ns && g->first_enable_ns)
		t = g->first_enable_ns + g->disconnect_after_ns;
	if (g->rebind_at_ns && g->rebind_at_ns < t)
		t = g->rebind_at_ns;
	return t;
}

/* The model's timers: next_timer() only ever names a time in the future, so
 * remember the deadline waited for and tick once it has passed - also when
 * the wake-up came from another thread's kick. */
static void run_timers(struct lpg *g)
{
	uint64_t due = UINT64_MAX;

	pthread_mutex_lock(&g->lock);
	g->model_attached = g->ops->attached(g->model, lp_clock_now(&g->clock));
	while (!lpg_stop) {
		uint64_t now = lp_clock_now(&g->clock), t;
		struct timespec ts;

		if (now >= due) {
			g->ops->tick(g->model, now);
			pthread_cond_broadcast(&g->kick);
		}
		lpg_link_check(g, now);
		now = lp_clock_now(&g->clock);
		due = g->ops->next_timer(g->model, now);
		t = due;
		if (lpg_link_timer(g) < t)
			t = lpg_link_timer(g);
		if (t <= now)
			continue;
		if (t - now > LPG_TIMER_IDLE_NS)
			t = now + LPG_TIMER_IDLE_NS; /* also bounds the reaction to a signal */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t abs_ns = (uint64_t)ts.tv_sec * LP_NS_PER_S + (uint64_t)ts.tv_nsec +
				  (t - now);
		ts.tv_sec = (time_t)(abs_ns / LP_NS_PER_S);
		ts.tv_nsec = (long)(abs_ns % LP_NS_PER_S);
		pthread_cond_timedwait(&g->kick, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
}

/* Ask the model for string descriptor `idx` (0: none) as sanitized text. */
static void model_string(struct lpg *g, uint8_t idx, char *out, size_t outsz)
{
	uint8_t setup[LPG_SETUP_LEN], buf[256];
	size_t actual = 0;

	out[0] = 0;
	if (!idx)
		return;
	setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR, (uint16_t)(USBD_DT_STRING << 8 | idx),
		    0x0409, sizeof(buf));
	if (g->ops->control(g->model, setup, buf, sizeof(buf), &actual, 0) ||
	    usbd_parse_string(buf, actual, out, outsz))
		out[0] = 0;
	/* the launcher reads key=value lines: keep values on one line, unquoted */
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\'' || *p == '"' || *p == '\\')
			*p = '?';
}

/* The ready file tells the launcher (gadget.sh) what the model says about
 * itself, so configfs presents the same identity as the model and a detached
 * (charge-only) device is never bound. One key=value per line: vid, pid, bcd,
 * configs, attached, speed, serial, product, manufacturer. */
static int lpg_write_ready(struct lpg *g, const char *path)
{
	uint16_t vid = 0x05ac, pid = 0;
	uint8_t ncfg = 0, setup[LPG_SETUP_LEN], buf[18];
	struct usbd_device dd = {0};
	char serial[128] = "", product[128] = "", manuf[128] = "";
	size_t actual = 0;
	bool att = true;
	FILE *f;

	if (g->iface == LPG_USBMUX) {
		g->ops->identity(g->model, &vid, &pid, &ncfg);
		att = g->ops->attached(g->model, lp_clock_now(&g->clock));
		setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, 0,
			    sizeof(buf));
		if (g->ops->control(g->model, setup, buf, sizeof(buf), &actual, 0) == 0 &&
		    usbd_parse_device(buf, actual, &dd) == 0) {
			model_string(g, dd.iSerialNumber, serial, sizeof(serial));
			model_string(g, dd.iProduct, product, sizeof(product));
			model_string(g, dd.iManufacturer, manuf, sizeof(manuf));
		}
	}
	f = fopen(path, "w");
	if (!f) {
		LOGE(g, "writing %s: %s", path, strerror(errno));
		return LP_EIO;
	}
	fprintf(f,
		"vid=%04x\npid=%04x\nbcd=%04x\nconfigs=%u\nattached=%d\nspeed=%s\n"
		"serial=%s\nproduct=%s\nmanufacturer=%s\n",
		vid, pid, dd.bcdDevice, ncfg, att, g->speed == TR_SPEED_FULL ? "full" : "high",
		serial, product, manuf);
	if (fclose(f)) {
		LOGE(g, "writing %s: %s", path, strerror(errno));
		return LP_EIO;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: lp_gadget --ffs DIR [--iface usbmux|ptp|ethernet|audio|dfu|recovery] [--profile NAME]\n"
		"                 [--udid UDID] [--model simdev|echo] [--ready FILE]\n"
		"                 [--udc-attr CONFIGFS_UDC_FILE] [--state FILE] [-v]\n");
}

static int open_ep(struct lpg *g, const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		LOGE(g, "open %s: %s", path, strerror(errno));
	return fd;
}

#ifdef LP_GADGET_SIMDEV
static void simdev_free_cb(void *m)
{
	simdev_free(m);
}

static int lpg_make_simdev(struct lpg *g, const char *profile, const char *udid, const char *state)
{
	struct simdev_opts o = {.udid = udid, .state_path = state};
	struct tr_sim_link link;
	struct lp_errinfo e = {0};
	struct simdev *s;

	s = simdev_new(profile, &o, &g->clock, &g->log, &e);
	if (!s) {
		LOGE(g, "simulated iPhone (profile %s): %s", profile,
		     e.msg[0] ? e.msg : lp_strerror(e.code));
		return e.code ? e.code : LP_EINVAL;
	}
	g->ops = &devcore_model_ops;
	g->model = simdev_model(s);
	g->owner = s;
	g->model_free = simdev_free_cb;
	if (simdev_link(s, &link) == 0) {
		g->speed = link.speed;
		g->disconnect_after_ns = link.disconnect_at_ns;
		g->reenum_gap_ns = link.reenum_gap_ns;
		if (link.error_rate > 0)
			LOGW(g,
			     "profile %s: a %.0f%% transfer error rate cannot be put on a real bus; "
			     "ignored",
			     profile, link.error_rate * 100);
	}
	return 0;
}
#endif

static int make_model(struct lpg *g, const char *kind, const char *profile, const char *udid,
		      const char *state)
{
	if (!strcmp(kind, "echo")) {
		struct echo *e = echo_new(&g->log);

		if (!e)
			return LP_ENOMEM;
		g->ops = &devcore_model_ops;
		g->model = devcore_model(e->dc);
		g->owner = e;
		g->model_free = echo_free;
		return 0;
	}
#ifdef LP_GADGET_SIMDEV
	if (!strcmp(kind, "simdev"))
		return lpg_make_simdev(g, profile, udid, state);
#endif
	LOGE(g, "model '%s' is not built in", kind);
	return LP_EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ffs", required_argument, NULL, 'f'},
		{"iface", required_argument, NULL, 'i'},
		{"profile", required_argument, NULL, 'p'},
		{"udid", required_argument, NULL, 'u'},
		{"model", required_argument, NULL, 'm'},
		{"ready", required_argument, NULL, 'r'},
		{"udc-attr", required_argument, NULL, 'U'},
		{"state", required_argument, NULL, 's'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct lpg g = {.ep0 = -1, .ep_in = -1, .ep_out = -1};
	const char *ffs = NULL, *profile = "healthy", *udid = NULL, *ready = NULL, *state = NULL;
#ifdef LP_GADGET_SIMDEV
	const char *kind = "simdev";
#else
	const char *kind = "echo";
#endif
	pthread_t t0, tin, tout;
	pthread_condattr_t ca;
	int c, rc = 3;

	g.log = (struct lp_log){.sink = lpg_sink, .max = LP_LOG_INFO};
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			ffs = optarg;
			break;
		case 'p':
			profile = optarg;
			break;
		case 'u':
			udid = optarg;
			break;
		case 'm':
			kind = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'U':
			g.udc_attr = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'v':
			g.log.max = g.log.max < LP_LOG_TRACE ? g.log.max + 1 : LP_LOG_TRACE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'i':
			for (c = 0; c < (int)(sizeof(lpg_ifaces) / sizeof(lpg_ifaces[0])); c++)
				if (!strcmp(optarg, lpg_ifaces[c].name))
					break;
			if (c == (int)(sizeof(lpg_ifaces) / sizeof(lpg_ifaces[0]))) {
				usage(stderr);
				return 2;
			}
			g.iface = (enum lpg_iface)c;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ffs || optind != argc) {
		usage(stderr);
		return 2;
	}

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.kick, &ca);
	pthread_mutex_init(&g.lock, NULL);
	lp_clock_init_real(&g.clock);
	/* no SA_RESTART: a blocking FunctionFS read must return EINTR */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (g.iface == LPG_USBMUX && make_model(&g, kind, profile, udid, state))
		return 3;
	g.ep0 = open_ep(&g, ffs, "ep0");
	if (g.ep0 < 0 || lpg_write_descriptors(&g))
		goto out;
	if (g.iface == LPG_USBMUX) {
		g.ep_in = open_ep(&g, ffs, "ep1");
		g.ep_out = open_ep(&g, ffs, "ep2");
		if (g.ep_in < 0 || g.ep_out < 0)
			goto out;
	}
	if (ready && lpg_write_ready(&g, ready))
		goto out;
	LOGI(&g, "%s function ready on %s (model %s, profile %s)", lpg_ifaces[g.iface].name, ffs,
	     g.iface == LPG_USBMUX ? kind : "-", profile);

	pthread_create(&t0, NULL, ep0_thread, &g);
	if (g.iface == LPG_USBMUX) {
		pthread_create(&tout, NULL, out_thread, &g);
		pthread_create(&tin, NULL, in_thread, &g);
		run_timers(&g);
	} else {
		while (!lpg_stop)
			pause();
	}
	/* The worker threads may sit in a read() that only the host can end:
	 * take the lock so no model call is in flight, then exit. */
	pthread_mutex_lock(&g.lock);
	LOGI(&g, "stopping");
	if (g.model_free)
		g.model_free(g.owner);
	_exit(0);
out:
	if (g.model_free)
		g.model_free(g.owner);
	return rc;
}
