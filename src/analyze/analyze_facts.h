/* analyze_facts.h - the analyzer's fact store (analyze*.c only).
 *
 * The capture reader (src/capture/reader.h) turns the file into events; the
 * ingest files turn events into facts here (analyze_usb.c: USB enumerations,
 * transfers, usbmux connections; analyze_lkd.c: lockdown messages and TLS;
 * analyze_relay.c: usbmuxd relay messages); analyze_report.c reads the facts
 * and builds the stages, verdict and metrics. One direction: reader -> facts
 * -> report.
 *
 * One struct an_dev per device as the report sees it (a phone: its identity,
 * lockdown facts, stage times); an enumeration (struct cap_usbdev) points to
 * its an_dev through `user`; a device that re-enumerates is merged into the
 * an_dev it had before. usbmuxd relays create an_dev by the daemon's
 * DeviceID. Nothing is kept per packet.
 */
#ifndef LP_ANALYZE_FACTS_H
#define LP_ANALYZE_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "src/analyze/analyze.h"
#include "src/capture/reader.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "usb/usb_desc.h"

/* Named caps (checked before allocation / on insertion). */
#define AN_MAX_DEVS 32		  /* report devices */
#define AN_MAX_USB CAP_RD_MAX_USB /* enumerations (bus, address) */
#define AN_CONN_LIST_MAX 32	  /* connections listed in the report */
#define AN_ANOMALY_KEEP 64	  /* anomaly strings kept (all are counted) */
#define AN_ANOMALY_LEN 200
#define AN_SAMPLES_MAX 8192	  /* latency samples per statistic */
#define AN_STRINGS CAP_RD_STRINGS /* string descriptors kept per enumeration */
#define AN_REQ_FIFO 16		  /* outstanding lockdown requests per connection */
#define AN_IDB_MAX 64		  /* pcapng interface descriptions kept */

struct an;
struct an_dev;

/* What an anomaly is (analyze.c sorts the reader's by their kind; the ingest
 * files add their own). Only AN_K_PROTOCOL - the device breaking usbmux or
 * lockdown - may support a PROTOCOL_ERROR, and only for the device it is
 * about; the others are notes for whoever reads the report. */
enum an_kind {
	AN_K_PROTOCOL, /* the device broke the protocol */
	AN_K_HOST,     /* the host's side (or usbmuxd) broke it */
	AN_K_CAPTURE,  /* the file: clipped or cut records, skipped records, caps */
	AN_K_TIMING,   /* silences between packets */
	AN_K_LINK,     /* transfer errors, a device leaving: judged by their own rules */
	AN_K_INFO,     /* allowed, worth a note */
};

struct an_samples {
	uint64_t *v;
	size_t n, cap;
};

/* A stage fact: when it started and ended in capture time (ns since the
 * first packet), and the packet numbers. t == 0 with !seen means absent. */
struct an_span {
	bool seen, done;
	uint64_t t0, t1;
	uint64_t pkt0, pkt1;
};

enum an_tls_state { AN_TLS_NONE, AN_TLS_STARTED, AN_TLS_OK, AN_TLS_FAILED };

struct an_dev {
	char key[96]; /* identity: "vid:pid:serial", "bus:addr", "umx:<id>" */
	bool via_usbmuxd;
	uint32_t umx_id;
	uint16_t vid, pid;
	bool have_ids;
	char serial[80], product[64], manufacturer[64];
	uint8_t bus, addr; /* of the latest enumeration */
	double speed_mbps; /* 0 = unknown */
	uint64_t packets;
	uint64_t first_t, last_t, first_pkt;
	unsigned instances, reenum;
	bool gone; /* a transfer ended with -19/-108 */
	uint64_t gone_t, gone_pkt;
	uint64_t errors, stalls, cancelled, timeouts;
	uint64_t violations;		      /* AN_K_PROTOCOL anomalies about this device */
	char first_violation[AN_ANOMALY_LEN]; /* ... the first of them */
	uint64_t last_violation_t;	      /* ... the time of the latest */
	uint64_t host_violations;	      /* AN_K_HOST ones on its link */
	uint64_t clipped, first_clipped_pkt;  /* records clipped (snap length, usbmon -s) */
	uint32_t first_clipped_kept, first_clipped_len;
	char first_host_violation[AN_ANOMALY_LEN];
	uint64_t first_err_pkt;
	int first_err_status;

	/* descriptors and configuration */
	bool have_desc;
	struct an_span desc;
	unsigned nconfigs;
	unsigned configs_expected; /* bNumConfigurations, 0 = device descriptor not seen */
	bool any_mux_config;	   /* a configuration with the usbmux interface */
	bool configs_known;
	uint8_t mux_config;
	int sel_config; /* -1 none seen */
	bool sel_has_mux;
	uint64_t sel_t;

	/* usbmux */
	struct an_span version;
	uint32_t mux_major;
	bool mux_seen;	   /* any mux packet */
	uint64_t mux_t0;   /* ... the first one's time */
	bool mux_by_shape; /* endpoints recognised from the packets (no descriptors, no VERSION) */
	uint8_t ep_in, ep_out, mux_iface;
	uint16_t mps;
	uint64_t mux_packets;

	/* the host's bulk OUT transfers: does the device take them? */
	bool out_done_seen;   /* the capture logs OUT completions (USBPcap does not) */
	unsigned out_pending; /* submitted, not yet completed */
	uint64_t out_wait_t0, out_wait_pkt; /* since when OUT has made no progress */
	uint64_t in_while_waiting;	    /* device usbmux packets since then */
	bool flood_noted;		    /* ... over what a host can queue answers for */
	bool out_untaken;		    /* the latest OUT cancelled untaken, after 1 s+ */
	uint64_t out_untaken_t0, out_untaken_t1, out_untaken_pkt;
	uint64_t out_last_ok_t; /* the last OUT the device took (0: none) */

	/* lockdown */
	struct an_span lconnect;
	bool lconnect_refused;
	bool lconnect_before; /* a lockdown connection open before the capture started */
	uint64_t lkd_conns;
	struct an_span qtype;
	char qtype_str[64];
	struct an_span info;
	unsigned getvalues, getvalue_errors;
	char refused_keys[160];
	bool tls_device_hs; /* the device sent handshake records of the session TLS */
	bool tls_dev_reset; /* the device reset the connection before its first handshake record */
	bool ss_capable;    /* its BOS offers SuperSpeed (or SuperSpeedPlus) */
	bool ss_plus;	    /* GetValue keys answered GetProhibited before Pair/StartSession */
	char udid[80], name[128], product_type[48], product_version[32];
	struct an_span pair;
	unsigned pair_tries, pair_pending, pair_locked;
	int pair_err; /* last Pair error (0 none) */
	bool pair_ok;
	struct an_span session;
	int session_err;
	bool session_ok, session_ssl;
	char session_id[64];
	struct an_span tls;
	enum an_tls_state tls_state;
	char tls_detail[128];
	struct an_span service;
	char service_name[64];
	unsigned service_port;
	int service_err;
	bool service_ok, service_inferred;
	struct an_span stop;
	bool stop_inferred, stop_ok;
	char last_error[64]; /* last lockdown Error string seen */
	uint64_t lkd_requests, lkd_replies;
	unsigned querytypes;
	unsigned querytype_replies; /* QueryType round trips that completed */
	uint64_t refused_conns, closed_port_probes;

	/* usbmuxd */
	struct an_span umx_find;
	bool pair_record_read, pair_record_found;
	bool lkd_open_at_end; /* a lockdown connection was still open when the capture ended */
};

/* The analyzer's side of one lockdown connection (cap_conn.user): requests
 * awaiting a reply (for latency), what each direction's TLS showed. */
struct an_lkd {
	struct an_dev *d;
	struct {
		char name[32];
		uint64_t t;
	} req[AN_REQ_FIFO];
	size_t nreq;
	struct {
		bool hs, app, alert, ccs;
		uint64_t last_app_t;
	} t[2];
};

struct an_idb {
	double speed_mbps;
	int bus, addr; /* -1 unknown */
};

struct an {
	struct an_opts o;
	int linktype;
	uint64_t packets;
	uint64_t t_last; /* relative */
	uint64_t cur_pkt;
	bool read_error;       /* libpcap gave up before the end of the file */
	bool end_mid_exchange; /* the capture stops inside an exchange */
	char end_pending[32];  /* ... the lockdown request left unanswered, "" none */
	/* anomalies */
	char anomalies[AN_ANOMALY_KEEP][AN_ANOMALY_LEN];
	enum an_kind anom_kind[AN_ANOMALY_KEEP];
	size_t nanom_kept;
	uint64_t nanom, nviol; /* all; AN_K_PROTOCOL */
	/* devices */
	struct an_dev *devs[AN_MAX_DEVS];
	size_t ndevs;
	struct cap_usbdev *usb[AN_MAX_USB]; /* enumerations, borrowed from the reader */
	size_t nusb;
	bool dev_overflow_noted;
	/* counters */
	uint64_t xfers_ctrl, xfers_bulk_in, xfers_bulk_out, xfers_intr, xfers_iso;
	uint64_t usb_records;
	uint64_t mux_bytes[2];
	uint64_t conns_total, conns_refused, conns_reset, conns_lockdown;
	struct an_samples rtt_ctrl, rtt_mux, rtt_lkd;
	uint64_t gaps, longest_gap;
	json_object *conn_list; /* array, owned */
	/* pcapng IDB descriptions */
	struct an_idb idb[AN_IDB_MAX];
	size_t nidb;
	/* usbmuxd relay */
	uint64_t tcp_segments, umx_messages, umx_flows;
	bool umx_list_seen;
	uint64_t umx_list_t, umx_list_pkt;
	/* bus-level captures (analyze_bus.c) */
	bool is_bus;
	enum tr_speed bus_speed;
	struct usbll_stats bus;
};

/* analyze_facts.c: the store */
/* An anomaly of kind `k` about device `d` (may be NULL: none in particular):
 * counted, kept (up to AN_ANOMALY_KEEP), and an AN_K_PROTOCOL or AN_K_HOST
 * one is counted on `d` with the first kept as its evidence. */
void an_anomaly_add(struct an *a, enum an_kind k, struct an_dev *d, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void an_sample(struct an_samples *s, uint64_t ns);
struct an_dev *an_dev_get(struct an *a, const char *key, bool create);
void an_dev_touch(struct an *a, struct an_dev *d, uint64_t t);
/* The device usbmuxd calls `id` (created on first use; NULL over the cap). */
struct an_dev *an_relay_dev(struct an *a, uint32_t id);
void an_span_start(struct an_span *s, uint64_t t, uint64_t pkt);
void an_span_end(struct an_span *s, uint64_t t, uint64_t pkt);

/* analyze_report.c: after the reader ran, a capture that holds no device
 * and cannot: libpcap gave up before the first packet (a pcapng mixing
 * interface link types: named, with how to extract one), or IP traffic that
 * is not a relayed usbmuxd socket (the phone's own network traffic:
 * rvictl, pcapd, NCM). LP_EFORMAT with the reason in `e`; 0 otherwise. */
int an_capture_refusal(const struct an *a, const struct cap_reader *rd, struct lp_errinfo *e);

/* analyze_bus.c: bus-level captures. After the reader ran: keep its wire
 * counters and give devices the bus speed; the verdict rule; metrics.bus. */
void an_bus_take(struct an *a, const struct cap_reader *rd);
void an_bus_verdict(const struct an *a, struct diag_report *r);
json_object *an_bus_json(const struct an *a);

/* analyze_lkd.c: the root keys of lockdown messages it looks up (NULL-terminated) */
extern const char *const an_lkd_keys[];

/* Ingest: one reader event each (analyze.c dispatches). */
void an_usb_event(struct an *a, const struct cap_event *ev);   /* analyze_usb.c */
void an_conn_event(struct an *a, const struct cap_event *ev);  /* analyze_usb.c: USB and relay */
void an_lkd_event(struct an *a, const struct cap_event *ev);   /* analyze_lkd.c */
void an_relay_event(struct an *a, const struct cap_event *ev); /* analyze_relay.c */

/* analyze_lkd.c: a lockdown connection's analyzer state */
struct an_lkd *an_lkd_new(struct an_dev *d);
void an_lkd_free(struct an_lkd *l);
/* The connection ended (refused, reset, closed, device gone) at t. */
void an_lkd_close(struct an *a, struct an_lkd *l, const struct cap_conn *c, uint64_t t);
/* A new connection to a non-lockdown port was accepted after the session
 * TLS came up: StartService (inside TLS) inferred. */
void an_lkd_service_conn(struct an_dev *d, uint16_t port, uint64_t t_syn, uint64_t t_open,
			 uint64_t pkt);

#endif
