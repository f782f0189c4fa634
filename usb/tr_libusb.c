/* tr_libusb.c - the "libusb" transport backend: real Apple devices through
 * libusb-1.0's async API. Lists vid 0x05ac only.
 *
 * Reference: doc/protocol.md 1 (usbmuxd src/usb.c: configuration choice,
 * kernel-driver detach before SET_CONFIGURATION, hotplug or 1 s polling),
 * libusb's API documentation (libusb_handle_events_timeout_completed,
 * libusb_fill_*_transfer). libusb errors and transfer statuses are mapped to
 * lp_err / tr_status right at the call.
 *
 * Needs a real clock: libusb waits in wall time, so a virtual clock would
 * never reach a deadline. Not done: reattaching kernel drivers on close
 * (usbmuxd does not either), isochronous/interrupt transfers. */
#include "usb/tr_libusb.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libusb.h>

#include "usb/usb_desc.h"

#define APPLE_VID 0x05ac
#define LU_MAX_PORTS 7		     /* USB allows at most 7 tiers of hubs */
#define LU_POLL_NS LP_NS_PER_S	     /* hotplug polling period without LIBUSB_CAP_HAS_HOTPLUG */
#define LU_WAIT_SLICE_NS LP_NS_PER_S /* longest single libusb wait */
#define LU_POLL_MAX_DEVS 128	     /* as many as one listing (a rack of phones) */

struct lu_ctx {
	struct tr_ctx *ctx;
	libusb_context *lu;
	bool hotplug;
	libusb_hotplug_callback_handle hp;
	int hp_changed; /* set by the hotplug callback */
	int completed;	/* set by transfer callbacks */
};

struct lu_dev {
	struct lu_ctx *lc;
	libusb_device_handle *h;
	uint8_t bus, addr;
	uint8_t claimed[32];
};

/* One submitted transfer. libusb and the kernel only ever see `buf`, a bounce
 * buffer owned here, never the caller's memory: if a cancelled transfer has
 * to be abandoned (tr_ops.detach), its late completion lands in memory we
 * still own and is dropped. */
struct lu_xfer {
	struct libusb_transfer *t;
	struct tr_xfer *x; /* NULL once detached */
	struct lu_ctx *lc;
	uint8_t *buf; /* control: 8 setup bytes + data stage; bulk: the data */
};

int tr_libusb_map_error(int r)
{
	switch (r) {
	case LIBUSB_SUCCESS:
		return 0;
	case LIBUSB_ERROR_IO:
		return LP_EIO;
	case LIBUSB_ERROR_INVALID_PARAM:
		return LP_EINVAL;
	case LIBUSB_ERROR_ACCESS:
		return LP_EACCES;
	case LIBUSB_ERROR_NO_DEVICE:
		return LP_ENODEV;
	case LIBUSB_ERROR_NOT_FOUND:
		return LP_ENOENT;
	case LIBUSB_ERROR_BUSY:
		return LP_EBUSY;
	case LIBUSB_ERROR_TIMEOUT:
		return LP_ETIMEDOUT;
	case LIBUSB_ERROR_OVERFLOW:
		return LP_EOVERFLOW;
	case LIBUSB_ERROR_PIPE:
		return LP_ESTALL;
	case LIBUSB_ERROR_INTERRUPTED:
		return LP_EAGAIN;
	case LIBUSB_ERROR_NO_MEM:
		return LP_ENOMEM;
	case LIBUSB_ERROR_NOT_SUPPORTED:
		return LP_EUNSUPPORTED;
	default:
		return LP_EUSB;
	}
}

enum tr_status tr_libusb_map_status(int s)
{
	switch (s) {
	case LIBUSB_TRANSFER_COMPLETED:
		return TR_STATUS_COMPLETED;
	case LIBUSB_TRANSFER_TIMED_OUT:
		return TR_STATUS_TIMED_OUT;
	case LIBUSB_TRANSFER_CANCELLED:
		return TR_STATUS_CANCELLED;
	case LIBUSB_TRANSFER_STALL:
		return TR_STATUS_STALL;
	case LIBUSB_TRANSFER_NO_DEVICE:
		return TR_STATUS_NO_DEVICE;
	case LIBUSB_TRANSFER_OVERFLOW:
		return TR_STATUS_OVERFLOW;
	case LIBUSB_TRANSFER_ERROR:
	default:
		return TR_STATUS_ERROR;
	}
}

enum tr_speed tr_libusb_map_speed(int s)
{
	switch (s) {
	case LIBUSB_SPEED_LOW:
		return TR_SPEED_LOW;
	case LIBUSB_SPEED_FULL:
		return TR_SPEED_FULL;
	case LIBUSB_SPEED_HIGH:
		return TR_SPEED_HIGH;
	case LIBUSB_SPEED_SUPER:
		return TR_SPEED_SUPER;
	case LIBUSB_SPEED_SUPER_PLUS:
		return TR_SPEED_SUPER_PLUS;
	case 6: /* LIBUSB_SPEED_SUPER_PLUS_X2, libusb 1.0.27 and later */
		return TR_SPEED_SUPER_PLUS_X2;
	default:
		return TR_SPEED_UNKNOWN;
	}
}

static struct lu_ctx *lu_of(struct tr_ctx *ctx)
{
	return ctx->priv;
}

/* ---- who holds the device? ---------------------------------------------- */

static bool read_comm(const char *pid, char *out, size_t outsz)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(out, 1, outsz - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0'))
		n--;
	out[n] = '\0';
	return true;
}

static bool pid_has_node_open(const char *pid, const char *node)
{
	char dpath[64], lpath[320], target[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dpath, sizeof(dpath), "/proc/%s/fd", pid);
	d = opendir(dpath);
	if (!d)
		return false; /* another user's process: not ours to see */
	while (!found && (de = readdir(d))) {
		ssize_t n;
		if (de->d_name[0] == '.')
			continue;
		snprintf(lpath, sizeof(lpath), "%s/%s", dpath, de->d_name);
		n = readlink(lpath, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, node) == 0;
	}
	closedir(d);
	return found;
}

/* Sentence naming who probably holds /dev/bus/usb/BBB/DDD: a process with
 * the node open, else a running usbmuxd, else "another driver". */
static void find_holder(uint8_t bus, uint8_t addr, char *out, size_t outsz)
{
	char node[64], comm[64];
	long me = (long)getpid(), muxd = 0;
	struct dirent *de;
	DIR *d;

	snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", bus, addr);
	snprintf(out, outsz, "another process or a kernel driver holds %s", node);
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (pid <= 0 || *end || pid == me)
			continue;
		if (!read_comm(de->d_name, comm, sizeof(comm)))
			continue;
		if (pid_has_node_open(de->d_name, node)) {
			snprintf(out, outsz, "%s (pid %ld) has %s open", comm, pid, node);
			closedir(d);
			return;
		}
		if (!muxd && strcmp(comm, "usbmuxd") == 0)
			muxd = pid;
	}
	closedir(d);
	/* usbmuxd runs as its own user: its fds are usually not visible to us */
	if (muxd)
		snprintf(out, outsz, "usbmuxd (pid %ld) is running and probably holds %s", muxd,
			 node);
}

/* ---- ops ---------------------------------------------------------------- */

static int LIBUSB_CALL hotplug_cb(libusb_context *c, libusb_device *d, libusb_hotplug_event ev,
				  void *ud)
{
	struct lu_ctx *lc = ud;
	(void)c;
	(void)d;
	(void)ev;
	lc->hp_changed = 1;
	return 0; /* stay registered */
}

static int lu_init(struct tr_ctx *ctx, const void *arg, struct lp_errinfo *e)
{
	struct lu_ctx *lc = lu_of(ctx);
	int r;

	(void)arg;
	if (ctx->env.clock->is_virtual)
		return lp_err_set(e, LP_EINVAL, "libusb backend needs a real clock");
	lc->ctx = ctx;
	r = libusb_init(&lc->lu);
	if (r == LIBUSB_ERROR_NO_MEM)
		return lp_err_set(e, LP_ENOMEM, "libusb_init failed: %s", libusb_strerror(r));
	if (r) /* no usbfs, no sysfs, no uevent socket: this system shows no USB */
		return lp_err_set(e, LP_ENODEV,
				  "libusb_init failed: %s (libusb finds no USB device nodes or "
				  "hotplug events on this system)",
				  libusb_strerror(r));
	if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
		r = libusb_hotplug_register_callback(
			lc->lu,
			LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0,
			APPLE_VID, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, hotplug_cb,
			lc, &lc->hp);
		lc->hotplug = r == LIBUSB_SUCCESS;
		if (!lc->hotplug)
			lp_logf(ctx->env.log, LP_LOG_DEBUG,
				"libusb: hotplug registration failed (%s); polling instead",
				libusb_strerror(r));
	}
	return 0;
}

static void lu_exit(struct tr_ctx *ctx)
{
	struct lu_ctx *lc = lu_of(ctx);

	if (!lc->lu)
		return;
	if (lc->hotplug)
		libusb_hotplug_deregister_callback(lc->lu, lc->hp);
	libusb_exit(lc->lu);
	lc->lu = NULL;
}

static void port_path(libusb_device *d, uint8_t bus, char *out, size_t outsz)
{
	uint8_t ports[LU_MAX_PORTS];
	int np = libusb_get_port_numbers(d, ports, LU_MAX_PORTS);
	size_t o;

	out[0] = '\0';
	if (np <= 0)
		return;
	o = (size_t)snprintf(out, outsz, "%u-", bus);
	for (int i = 0; i < np && o < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, i ? ".%u" : "%u", ports[i]);
}

static void fill_info(libusb_device *d, const struct libusb_device_descriptor *dd,
		      struct tr_devinfo *di)
{
	struct libusb_config_descriptor *cd;

	memset(di, 0, sizeof(*di));
	di->bus = libusb_get_bus_number(d);
	di->addr = libusb_get_device_address(d);
	di->vid = dd->idVendor;
	di->pid = dd->idProduct;
	di->speed = tr_libusb_map_speed(libusb_get_device_speed(d));
	di->num_configs = dd->bNumConfigurations;
	port_path(d, di->bus, di->port_path, sizeof(di->port_path));
	/* Linux answers this from sysfs without opening the device */
	if (libusb_get_active_config_descriptor(d, &cd) == 0) {
		di->active_config = cd->bConfigurationValue;
		libusb_free_config_descriptor(cd);
	}
	di->session = (uint32_t)di->bus << 8 | di->addr;
}

static int lu_list(struct tr_ctx *ctx, struct tr_devinfo *out, size_t max, size_t *n,
		   struct lp_errinfo *e)
{
	struct lu_ctx *lc = lu_of(ctx);
	libusb_device **l;
	ssize_t cnt = libusb_get_device_list(lc->lu, &l);
	size_t k = 0;

	if (cnt < 0)
		return lp_err_set(e, tr_libusb_map_error((int)cnt),
				  "libusb_get_device_list failed: %s", libusb_strerror((int)cnt));
	for (ssize_t i = 0; i < cnt && k < max; i++) {
		struct libusb_device_descriptor dd;
		if (libusb_get_device_descriptor(l[i], &dd) || dd.idVendor != APPLE_VID)
			continue;
		fill_info(l[i], &dd, &out[k++]);
	}
	libusb_free_device_list(l, 1);
	*n = k;
	return 0;
}

/* Buses with anything on them: Linux lists every bus's root hub as a
 * device, so no bus at all means no host controller is visible. */
static int lu_host_controllers(struct tr_ctx *ctx, size_t *n, struct lp_errinfo *e)
{
	struct lu_ctx *lc = lu_of(ctx);
	libusb_device **l;
	ssize_t cnt = libusb_get_device_list(lc->lu, &l);
	uint8_t seen[32] = {0}; /* bus numbers 0..255 */
	size_t k = 0;

	if (cnt < 0)
		return lp_err_set(e, tr_libusb_map_error((int)cnt),
				  "libusb_get_device_list failed: %s", libusb_strerror((int)cnt));
	for (ssize_t i = 0; i < cnt; i++) {
		uint8_t b = libusb_get_bus_number(l[i]);
		if (!(seen[b / 8] & (1u << (b % 8)))) {
			seen[b / 8] |= (uint8_t)(1u << (b % 8));
			k++;
		}
	}
	libusb_free_device_list(l, 1);
	*n = k;
	return 0;
}

static int lu_open(struct tr_ctx *ctx, const struct tr_devinfo *info, struct tr_dev *dev,
		   struct lp_errinfo *e)
{
	struct lu_ctx *lc = lu_of(ctx);
	libusb_device **l, *found = NULL;
	libusb_device_handle *h = NULL;
	struct lu_dev *ld;
	ssize_t cnt = libusb_get_device_list(lc->lu, &l);
	int r;

	if (cnt < 0)
		return lp_err_set(e, tr_libusb_map_error((int)cnt),
				  "libusb_get_device_list failed: %s", libusb_strerror((int)cnt));
	for (ssize_t i = 0; i < cnt; i++) {
		struct libusb_device_descriptor dd;
		if (libusb_get_bus_number(l[i]) != info->bus ||
		    libusb_get_device_address(l[i]) != info->addr ||
		    libusb_get_device_descriptor(l[i], &dd) || dd.idVendor != info->vid ||
		    dd.idProduct != info->pid)
			continue;
		found = l[i];
		break;
	}
	if (!found) {
		libusb_free_device_list(l, 1);
		return lp_err_set(e, LP_ENODEV, "device %03u/%03u (%04x:%04x) is gone", info->bus,
				  info->addr, info->vid, info->pid);
	}
	r = libusb_open(found, &h);
	libusb_free_device_list(l, 1);
	if (r == LIBUSB_ERROR_ACCESS)
		return lp_err_set(e, LP_EACCES,
				  "no permission to open /dev/bus/usb/%03u/%03u: install the udev "
				  "rule %s into /etc/udev/rules.d, run 'udevadm control --reload' "
				  "and replug (or run as root)",
				  info->bus, info->addr, TR_LIBUSB_UDEV_RULE);
	if (r)
		return lp_err_set(e, tr_libusb_map_error(r), "libusb_open %03u/%03u failed: %s",
				  info->bus, info->addr, libusb_strerror(r));
	ld = calloc(1, sizeof(*ld));
	if (!ld) {
		libusb_close(h);
		return lp_err_set(e, LP_ENOMEM, "libusb: out of memory");
	}
	ld->lc = lc;
	ld->h = h;
	ld->bus = info->bus;
	ld->addr = info->addr;
	dev->priv = ld;
	return 0;
}

static void lu_close(struct tr_dev *dev)
{
	struct lu_dev *ld = dev->priv;

	if (!ld)
		return;
	for (int i = 0; i < 256; i++)
		if (ld->claimed[i / 8] & 1u << i % 8)
			libusb_release_interface(ld->h, i);
	libusb_close(ld->h);
	free(ld);
	dev->priv = NULL;
}

static int lu_get_configuration(struct tr_dev *dev, int *cfg)
{
	struct lu_dev *ld = dev->priv;
	int v = 0, r = libusb_get_configuration(ld->h, &v);

	if (r)
		return tr_libusb_map_error(r);
	*cfg = v;
	return 0;
}

/* Detach kernel drivers from every interface of configuration `value`. */
static void detach_config(struct lu_dev *ld, int value)
{
	struct libusb_config_descriptor *cd;
	libusb_device *d = libusb_get_device(ld->h);
	const struct lp_log *log = ld->lc->ctx->env.log;

	if (value <= 0 || libusb_get_config_descriptor_by_value(d, (uint8_t)value, &cd))
		return;
	for (int i = 0; i < cd->bNumInterfaces; i++) {
		int ifn, r;
		if (!cd->interface[i].num_altsetting)
			continue;
		ifn = cd->interface[i].altsetting[0].bInterfaceNumber;
		if (libusb_kernel_driver_active(ld->h, ifn) != 1)
			continue;
		r = libusb_detach_kernel_driver(ld->h, ifn);
		lp_logf(log, r ? LP_LOG_WARN : LP_LOG_DEBUG,
			"libusb: detach kernel driver from interface %d: %s", ifn,
			r ? libusb_strerror(r) : "ok");
	}
	libusb_free_config_descriptor(cd);
}

/* Which kernel driver is bound to an interface of the active configuration,
 * by name: libusb says one is active, sysfs says which (the interface's
 * `driver` link, e.g. /sys/bus/usb/devices/1-2:4.2/driver -> .../ipheth).
 * `ifnum` < 0: any interface. Writes "kernel driver NAME holds interface N
 * of configuration C" into out and returns true, or false. */
static bool kernel_holder(struct lu_dev *ld, int ifnum, char *out, size_t outsz)
{
	libusb_device *d = libusb_get_device(ld->h);
	struct libusb_config_descriptor *cd;
	char path[48], link[256], lpath[128];
	int cfg = 0;
	bool found = false;

	if (libusb_get_configuration(ld->h, &cfg) || cfg <= 0 ||
	    libusb_get_config_descriptor_by_value(d, (uint8_t)cfg, &cd))
		return false;
	port_path(d, ld->bus, path, sizeof(path));
	for (int i = 0; i < cd->bNumInterfaces && !found; i++) {
		int ifn;
		ssize_t n;
		const char *name;

		if (!cd->interface[i].num_altsetting)
			continue;
		ifn = cd->interface[i].altsetting[0].bInterfaceNumber;
		if ((ifnum >= 0 && ifn != ifnum) || libusb_kernel_driver_active(ld->h, ifn) != 1)
			continue;
		name = "?";
		snprintf(lpath, sizeof(lpath), "/sys/bus/usb/devices/%s:%d.%d/driver", path, cfg,
			 ifn);
		n = path[0] ? readlink(lpath, link, sizeof(link) - 1) : -1;
		if (n > 0) {
			link[n] = '\0';
			name = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		}
		snprintf(out, outsz, "kernel driver %s holds interface %d of configuration %d",
			 name, ifn, cfg);
		found = true;
	}
	libusb_free_config_descriptor(cd);
	return found;
}

static int lu_set_configuration(struct tr_dev *dev, int cfg, struct lp_errinfo *e)
{
	struct lu_dev *ld = dev->priv;
	uint8_t setup[8] = {0x00, USBD_REQ_SET_CONFIGURATION, (uint8_t)cfg, 0, 0, 0, 0, 0};
	char who[LP_ERRINFO_MSG / 2];
	int cur = -1, r;

	if (libusb_get_configuration(ld->h, &cur) == 0 && cur == cfg)
		return 0; /* as usbmuxd: an unchanged configuration is left alone */
	detach_config(ld, cur);
	detach_config(ld, cfg);
	r = libusb_set_configuration(ld->h, cfg);
	if (r == 0 || r == LIBUSB_ERROR_PIPE || r == LIBUSB_ERROR_IO || r == LIBUSB_ERROR_TIMEOUT)
		tr_notify_synthetic_control(dev, setup,
					    r == 0			? TR_STATUS_COMPLETED
					    : r == LIBUSB_ERROR_PIPE	? TR_STATUS_STALL
					    : r == LIBUSB_ERROR_TIMEOUT ? TR_STATUS_TIMED_OUT
									: TR_STATUS_ERROR);
	if (r == LIBUSB_ERROR_BUSY) {
		if (!kernel_holder(ld, -1, who, sizeof(who)))
			find_holder(ld->bus, ld->addr, who, sizeof(who));
		return lp_err_set(e, LP_EBUSY, "cannot select configuration %d: %s", cfg, who);
	}
	if (r)
		return lp_err_set(e, tr_libusb_map_error(r), "SET_CONFIGURATION %d failed: %s", cfg,
				  libusb_strerror(r));
	return 0;
}

static int lu_claim_interface(struct tr_dev *dev, int ifnum, struct lp_errinfo *e)
{
	struct lu_dev *ld = dev->priv;
	char who[LP_ERRINFO_MSG / 2];
	int r;

	if (libusb_kernel_driver_active(ld->h, ifnum) == 1)
		libusb_detach_kernel_driver(ld->h, ifnum);
	r = libusb_claim_interface(ld->h, ifnum);
	if (r == LIBUSB_ERROR_BUSY) {
		if (!kernel_holder(ld, ifnum, who, sizeof(who)))
			find_holder(ld->bus, ld->addr, who, sizeof(who));
		return lp_err_set(e, LP_EBUSY, "cannot claim interface %d: %s", ifnum, who);
	}
	if (r)
		return lp_err_set(e, tr_libusb_map_error(r), "claim interface %d failed: %s", ifnum,
				  libusb_strerror(r));
	ld->claimed[ifnum / 8] |= (uint8_t)(1u << ifnum % 8);
	return 0;
}

static int lu_release_interface(struct tr_dev *dev, int ifnum)
{
	struct lu_dev *ld = dev->priv;
	int r = libusb_release_interface(ld->h, ifnum);

	ld->claimed[ifnum / 8] &= (uint8_t) ~(1u << ifnum % 8);
	return tr_libusb_map_error(r);
}

static void LIBUSB_CALL xfer_cb(struct libusb_transfer *t)
{
	struct lu_xfer *lx = t->user_data;
	struct tr_xfer *x = lx->x;
	enum tr_status st = tr_libusb_map_status(t->status);
	size_t actual = t->actual_length > 0 ? (size_t)t->actual_length : 0;
	size_t off = x && x->type == TR_XFER_CONTROL ? LIBUSB_CONTROL_SETUP_SIZE : 0;

	lx->lc->completed = 1;
	if (x) {
		if (actual > x->len)
			actual = x->len;
		if ((x->endpoint & 0x80) && actual)
			memcpy(x->buf, lx->buf + off, actual);
		x->priv = NULL;
	}
	free(lx->buf);
	libusb_free_transfer(t);
	free(lx);
	if (x)
		tr_complete(x, st, actual);
}

static int lu_submit(struct tr_xfer *x)
{
	struct lu_dev *ld = x->dev->priv;
	struct lu_xfer *lx;
	size_t len = x->len;
	int r;

	if (x->len > INT_MAX - LIBUSB_CONTROL_SETUP_SIZE)
		return LP_EINVAL;
	if (x->type == TR_XFER_CONTROL) {
		size_t wlen = (size_t)(x->setup[6] | x->setup[7] << 8);
		if (wlen > x->len)
			return LP_EINVAL;
		len = LIBUSB_CONTROL_SETUP_SIZE + wlen;
	}
	lx = calloc(1, sizeof(*lx));
	if (!lx)
		return LP_ENOMEM;
	lx->x = x;
	lx->lc = ld->lc;
	lx->t = libusb_alloc_transfer(0);
	lx->buf = malloc(len ? len : 1);
	if (!lx->t || !lx->buf) {
		libusb_free_transfer(lx->t);
		free(lx->buf);
		free(lx);
		return LP_ENOMEM;
	}
	if (x->type == TR_XFER_CONTROL) {
		memcpy(lx->buf, x->setup, LIBUSB_CONTROL_SETUP_SIZE);
		if (!(x->setup[0] & 0x80) && len > LIBUSB_CONTROL_SETUP_SIZE)
			memcpy(lx->buf + LIBUSB_CONTROL_SETUP_SIZE, x->buf,
			       len - LIBUSB_CONTROL_SETUP_SIZE);
		libusb_fill_control_transfer(lx->t, ld->h, lx->buf, xfer_cb, lx, x->timeout_ms);
	} else {
		if (!(x->endpoint & 0x80) && len)
			memcpy(lx->buf, x->buf, len);
		libusb_fill_bulk_transfer(lx->t, ld->h, x->endpoint, lx->buf, (int)len, xfer_cb, lx,
					  x->timeout_ms);
	}
	x->priv = lx;
	r = libusb_submit_transfer(lx->t);
	if (r) {
		free(lx->buf);
		libusb_free_transfer(lx->t);
		free(lx);
		x->priv = NULL;
		return tr_libusb_map_error(r);
	}
	return 0;
}

static int lu_cancel(struct tr_xfer *x)
{
	struct lu_xfer *lx = x->priv;

	if (!lx)
		return LP_ENOENT;
	return tr_libusb_map_error(libusb_cancel_transfer(lx->t));
}

static void lu_detach(struct tr_xfer *x)
{
	struct lu_xfer *lx = x->priv;

	if (lx)
		lx->x = NULL; /* xfer_cb frees lx and drops the completion */
	x->priv = NULL;
}

/* Run libusb's event loop until *flag is set or the deadline passes. */
static int lu_wait(struct lu_ctx *lc, int *flag, uint64_t deadline_ns)
{
	struct lp_clock *clk = lc->ctx->env.clock;

	for (;;) {
		uint64_t now = lp_clock_now(clk), rem;
		struct timeval tv;
		int r;

		if (*flag || now >= deadline_ns)
			return 0;
		rem = deadline_ns - now;
		if (rem > LU_WAIT_SLICE_NS)
			rem = LU_WAIT_SLICE_NS;
		tv.tv_sec = (time_t)(rem / LP_NS_PER_S);
		tv.tv_usec = (suseconds_t)((rem % LP_NS_PER_S + 999) / 1000);
		r = libusb_handle_events_timeout_completed(lc->lu, &tv, flag);
		if (r && r != LIBUSB_ERROR_INTERRUPTED && r != LIBUSB_ERROR_TIMEOUT)
			return tr_libusb_map_error(r);
	}
}

static int lu_handle_events(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	struct lu_ctx *lc = lu_of(ctx);

	lc->completed = 0;
	return lu_wait(lc, &lc->completed, deadline_ns);
}

/* Apple devices present now, as bus << 8 | addr; returns the count. */
static size_t snapshot(struct lu_ctx *lc, uint32_t *ids, size_t max)
{
	libusb_device **l;
	ssize_t cnt = libusb_get_device_list(lc->lu, &l);
	size_t k = 0;

	if (cnt < 0)
		return 0;
	for (ssize_t i = 0; i < cnt && k < max; i++) {
		struct libusb_device_descriptor dd;
		if (libusb_get_device_descriptor(l[i], &dd) || dd.idVendor != APPLE_VID)
			continue;
		ids[k++] = (uint32_t)libusb_get_bus_number(l[i]) << 8 |
			   libusb_get_device_address(l[i]);
	}
	libusb_free_device_list(l, 1);
	return k;
}

static int lu_wait_hotplug(struct tr_ctx *ctx, uint64_t deadline_ns)
{
	struct lu_ctx *lc = lu_of(ctx);
	uint32_t before[LU_POLL_MAX_DEVS], after[LU_POLL_MAX_DEVS];
	size_t nb, na;

	if (lc->hotplug) {
		lc->hp_changed = 0;
		return lu_wait(lc, &lc->hp_changed, deadline_ns);
	}
	nb = snapshot(lc, before, LU_POLL_MAX_DEVS);
	for (;;) {
		uint64_t now = lp_clock_now(ctx->env.clock), t;
		int never = 0, r;

		if (now >= deadline_ns)
			return 0;
		t = deadline_ns - now > LU_POLL_NS ? now + LU_POLL_NS : deadline_ns;
		/* keep transfers moving while we poll */
		r = lu_wait(lc, &never, t);
		if (r)
			return r;
		na = snapshot(lc, after, LU_POLL_MAX_DEVS);
		if (na != nb || memcmp(before, after, na * sizeof(*after)) != 0)
			return 0;
	}
}

const struct tr_ops tr_libusb_ops = {
	.name = "libusb",
	.ctx_priv_size = sizeof(struct lu_ctx),
	.init = lu_init,
	.exit = lu_exit,
	.list = lu_list,
	.host_controllers = lu_host_controllers,
	.open = lu_open,
	.close = lu_close,
	.get_configuration = lu_get_configuration,
	.set_configuration = lu_set_configuration,
	.claim_interface = lu_claim_interface,
	.release_interface = lu_release_interface,
	.submit = lu_submit,
	.cancel = lu_cancel,
	.handle_events = lu_handle_events,
	.wait_hotplug = lu_wait_hotplug,
	.detach = lu_detach,
};
