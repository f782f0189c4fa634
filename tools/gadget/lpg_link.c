/* lpg_link.c - lp_gadget's physical link and clock: the model's own
 * (dis)appearance and the profile's scheduled drop are done by writing the
 * configfs UDC attribute (unbind = cable pulled, bind = plugged back); the
 * model's timers run on a real lp_clock in the main thread; the ready file
 * tells gadget.sh what the model says about itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/base/lp_error.h"
#include "usb/usb_desc.h"
#include "tools/gadget/lpg.h"

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
void lpg_run_timers(struct lpg *g)
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
	lpg_setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR, (uint16_t)(USBD_DT_STRING << 8 | idx),
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
int lpg_write_ready(struct lpg *g, const char *path)
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
		lpg_setup_bytes(setup, 0x80, USBD_REQ_GET_DESCRIPTOR, USBD_DT_DEVICE << 8, 0,
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
