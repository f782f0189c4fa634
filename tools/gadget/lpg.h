/* lpg.h - what the parts of lp_gadget share (see lp_gadget.c for the program):
 * the state of one FunctionFS function, the interface table, the caps and the
 * entry points of each part.
 *
 *   lp_gadget.c   options, model choice (simulated iPhone or echo), main loop
 *   lpg_ffs.c     FunctionFS descriptors and ep0: ENABLE/DISABLE, vendor SETUPs
 *   lpg_bulk.c    the bulk OUT and bulk IN threads (transfer reassembly, ZLPs)
 *   lpg_link.c    the physical link (UDC bind/unbind), the model's timers, the
 *                 ready file
 *   lpg_echo.c    the echo model
 *
 * Locking: `lock` is held for every model call and for the fields marked
 * below; each part's comment says which of its functions take it.
 */
#ifndef LP_GADGET_LPG_H
#define LP_GADGET_LPG_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_log.h"
#include "usb/devmodel.h"
#include "usb/tr_sim.h"

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

/* set by a signal or a fatal error: every thread winds down */
extern volatile sig_atomic_t lpg_stop;
extern const struct lpg_iface_desc lpg_ifaces[LPG_AUDIO + 1];

#define LOGE(g, ...) lp_logf(&(g)->log, LP_LOG_ERROR, __VA_ARGS__)
#define LOGW(g, ...) lp_logf(&(g)->log, LP_LOG_WARN, __VA_ARGS__)
#define LOGI(g, ...) lp_logf(&(g)->log, LP_LOG_INFO, __VA_ARGS__)
#define LOGD(g, ...) lp_logf(&(g)->log, LP_LOG_DEBUG, __VA_ARGS__)

/* lpg_ffs.c */
/* A SETUP packet's 8 bytes. */
void lpg_setup_bytes(uint8_t out[LPG_SETUP_LEN], uint8_t type, uint8_t req, uint16_t value,
		     uint16_t index, uint16_t length);
/* Write the function's FunctionFS descriptors and strings to ep0. */
int lpg_write_descriptors(struct lpg *g);
/* ep0's event loop (thread entry; arg: struct lpg). */
void *lpg_ep0_thread(void *arg);

/* lpg_bulk.c: thread entries (arg: struct lpg) */
void *lpg_out_thread(void *arg);
void *lpg_in_thread(void *arg);

/* lpg_link.c */
/* Run the model's timers and the link's scheduled drops until lpg_stop. */
void lpg_run_timers(struct lpg *g);
/* Write the ready file gadget.sh reads (the model's identity). */
int lpg_write_ready(struct lpg *g, const char *path);

/* lpg_echo.c: put the echo model into g (ops, model, owner, model_free). */
int lpg_make_echo(struct lpg *g);

#endif
