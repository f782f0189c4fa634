/* lpg_bulk.c - lp_gadget's bulk endpoints, one blocking thread each
 * (FunctionFS bulk files cannot be polled without AIO):
 *   OUT  the ep file is read in LPG_OUT_CHUNK pieces; a read completes on a
 *        full buffer or a short packet/ZLP, so a full read means "more may
 *        follow" and a short one ends the device transfer; the reassembled
 *        transfer goes to model->bulk_out (the tr_sim OUT semantics).
 *   IN   model->bulk_in_next -> write(); a zero-length write follows when
 *        the model asks for a ZLP.
 * The model's bulk_state (a hostile mode) is asked between transfers: a NAKed
 * endpoint is not read or written, a halted one is halted through FunctionFS.
 * A transfer queued or read before a disable/re-enable (`gen` changed)
 * belonged to the old link and is dropped. Every model call is made with
 * `lock` held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/base/lp_error.h"
#include "tools/gadget/lpg.h"

/* --- the model's say on an endpoint (hostile modes: NAK or halt) ------------ */

/* Called with the lock held. READY when the model has no opinion. */
static enum devmodel_ep ep_state_locked(struct lpg *g, uint8_t ep)
{
	if (!g->ops->bulk_state || !g->enabled)
		return DEVMODEL_EP_READY;
	return g->ops->bulk_state(g->model, ep, lp_clock_now(&g->clock));
}

/* Halt the endpoint behind `fd` by moving data the wrong way (functionfs.rst:
 * a read on an IN file or a write on an OUT file sets the halt). Repeated
 * while the model wants it: the host may clear the halt. */
static void halt_ep(struct lpg *g, int fd, bool in)
{
	uint8_t b = 0;
	ssize_t r = in ? read(fd, &b, 1) : write(fd, &b, 1);

	if (r >= 0 || (errno != EBADMSG && errno != EINTR))
		LOGD(g, "halting bulk %s: %s", in ? "IN" : "OUT",
		     r >= 0 ? "no halt" : strerror(errno));
}

#define LPG_HOLD_US 50000 /* re-ask a NAKing or halted endpoint's state */

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

void *lpg_out_thread(void *arg)
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
		ssize_t n;

		if (!len) {
			/* between transfers: a NAKing endpoint reads nothing (the
			 * host's OUT transfer stays pending), a halted one stalls */
			enum devmodel_ep es;

			pthread_mutex_lock(&g->lock);
			es = ep_state_locked(g, g->m_out);
			pthread_mutex_unlock(&g->lock);
			if (es != DEVMODEL_EP_READY) {
				if (es == DEVMODEL_EP_STALL)
					halt_ep(g, g->ep_out, false);
				usleep(LPG_HOLD_US);
				continue;
			}
		}
		n = read(g->ep_out, buf + len, LPG_OUT_CHUNK);

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

void *lpg_in_thread(void *arg)
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
			enum devmodel_ep es = ep_state_locked(g, g->m_in);

			if (es == DEVMODEL_EP_STALL) {
				rc = LP_ESTALL;
				break;
			}
			if (g->enabled && es == DEVMODEL_EP_READY) {
				rc = g->ops->bulk_in_next(g->model, g->m_in, &data, &len, &zlp,
							  lp_clock_now(&g->clock));
				if (rc == 0)
					break;
			}
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (es == DEVMODEL_EP_READY) {
				ts.tv_sec += 1;
			} else if ((ts.tv_nsec += LPG_HOLD_US * 1000L) >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
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
		if (rc == LP_ESTALL) {
			halt_ep(g, g->ep_in, true);
			usleep(LPG_HOLD_US);
			continue;
		}
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
