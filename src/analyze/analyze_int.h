/* analyze_int.h - shared state of the capture analyzer (analyze*.c only).
 *
 * Model: struct an holds everything. One struct an_dev per device as the
 * report sees it (a phone: its identity, lockdown facts, stage times); one
 * struct an_usb per enumeration of a device (bus, address: descriptors,
 * usbmux reassembly, mux connections). A device that re-enumerates gets a
 * new an_usb pointing to the same an_dev. usbmuxd relays create an_dev by
 * the daemon's DeviceID. Lockdown conversations (an_lkd) run over a mux
 * connection or over a relayed socket and write facts into their an_dev. */
#ifndef LP_ANALYZE_INT_H
#define LP_ANALYZE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "src/analyze/analyze.h"
#include "proto/lockdown_frame.h"
#include "proto/mux.h"
#include "usb/usb_desc.h"

/* Named caps (checked before allocation / on insertion). */
#define AN_MAX_DEVS 32		  /* report devices */
#define AN_MAX_USB 64		  /* enumerations (bus, address) */
#define AN_PENDING_SLOTS 2048	  /* outstanding URBs tracked (hash slots) */
#define AN_MAX_CONNS 64		  /* live mux connections per enumeration */
#define AN_CONN_LIST_MAX 32	  /* connections listed in the report */
#define AN_ANOMALY_KEEP 64	  /* anomaly strings kept (all are counted) */
#define AN_ANOMALY_LEN 200
#define AN_SAMPLES_MAX 8192	  /* latency samples per statistic */
#define AN_MBUF_MAX (2u * MUX_MAX_PACKET) /* mux reassembly buffer */
#define AN_STRINGS 16		  /* string descriptors kept per enumeration */
#define AN_GAP_NS (5ull * 1000000000ull) /* a silence this long is a gap */
#define AN_REQ_FIFO 16		  /* outstanding lockdown requests per connection */
#define AN_TLS_RECORD_MAX 18432u  /* 2^14 + 2048: largest TLS ciphertext record */
#define AN_MAX_FLOWS 64		  /* TCP flows tracked */
#define AN_UMX_MSG_MAX (1u << 20) /* largest usbmuxd client-protocol message */
#define AN_IDB_MAX 64		  /* pcapng interface descriptions kept */

struct an;
struct an_dev;

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

enum an_tls_state { TLS_NONE, TLS_STARTED, TLS_OK, TLS_FAILED };

struct an_dev {
	char key[96];		/* identity: "vid:pid:serial", "bus:addr", "umx:<id>" */
	bool via_usbmuxd;
	uint32_t umx_id;
	uint16_t vid, pid;
	bool have_ids;
	char serial[80], product[64], manufacturer[64];
	uint8_t bus, addr;	/* of the latest enumeration */
	double speed_mbps;	/* 0 = unknown */
	uint64_t packets;
	uint64_t first_t, last_t, first_pkt;
	unsigned instances, reenum;
	bool gone;		/* a transfer ended with -19/-108 */
	uint64_t gone_t, gone_pkt;
	uint64_t errors, stalls, cancelled, timeouts;
	uint64_t first_err_pkt;
	int first_err_status;

	/* descriptors and configuration */
	bool have_desc;
	struct an_span desc;
	unsigned nconfigs;
	bool any_mux_config;	/* a configuration with the usbmux interface */
	bool configs_known;
	uint8_t mux_config;
	int sel_config;		/* -1 none seen */
	bool sel_has_mux;
	uint64_t sel_t;

	/* usbmux */
	struct an_span version;
	uint32_t mux_major;
	bool mux_seen;		/* any mux packet */
	uint8_t ep_in, ep_out, mux_iface;
	uint16_t mps;
	uint64_t mux_packets;

	/* lockdown */
	struct an_span lconnect;
	bool lconnect_refused;
	uint64_t lkd_conns;
	struct an_span qtype;
	char qtype_str[64];
	struct an_span info;
	unsigned getvalues, getvalue_errors;
	char udid[80], name[128], product_type[48], product_version[32];
	struct an_span pair;
	unsigned pair_tries, pair_pending, pair_locked;
	int pair_err;		/* last Pair error (0 none) */
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
	char last_error[64];	/* last lockdown Error string seen */
	uint64_t lkd_requests, lkd_replies;
	unsigned querytypes;
	uint64_t refused_conns, closed_port_probes;

	/* usbmuxd */
	struct an_span umx_find;
	bool pair_record_read, pair_record_found;
};

/* TLS record-header follower, one direction. */
struct an_tls_dir {
	uint8_t hdr[5];
	size_t have;
	size_t left;
	uint8_t ctype;
	bool broken;
	bool hs, app, alert, ccs;
	uint64_t last_app_t;
};

/* One mux connection or relayed socket carrying lockdown. */
struct an_lkd {
	struct an *a;
	struct an_dev *d;
	struct lkd_framer *fr[2]; /* 0 host->device, 1 device->host */
	bool dead[2];
	bool ssl_expected;	  /* StartSession said EnableSessionSSL */
	bool tls;		  /* both directions are TLS now */
	struct an_tls_dir t[2];
	struct {
		char name[32];
		uint64_t t;
	} req[AN_REQ_FIFO];
	size_t nreq;
};

struct an_mbuf {
	uint8_t *buf;
	size_t len;
};

struct an_conn {
	bool used;
	uint16_t hport, dport;
	enum { C_SYN, C_OPEN, C_REFUSED, C_RESET_HOST, C_RESET_DEV, C_ORPHAN } state;
	uint64_t t_syn, t_open, t_close;
	uint64_t bytes[2], packets[2];
	struct an_lkd *lkd;
};

struct an_usb {
	uint16_t bus;
	uint8_t addr;
	struct an_dev *d;
	uint64_t first_t, last_t;
	bool gone;
	/* descriptors */
	struct usbd_device dd;
	bool have_dd;
	struct usbd_config cfg[USBD_MAX_CONFIGS];
	unsigned ncfg;
	char str[AN_STRINGS][80];
	/* usbmux */
	uint8_t ep_in, ep_out;
	uint16_t mps;
	bool eps_from_desc;
	uint32_t hdr_ver; /* 0 until VERSION seen */
	bool ver_guess_noted;
	struct an_mbuf mb[2]; /* 0 host->device (OUT), 1 device->host (IN) */
	struct an_conn conns[AN_MAX_CONNS];
	bool conn_overflow_noted;
};

struct an_pending {
	bool used;
	uint64_t id;
	uint16_t bus;
	uint8_t addr, xfer, ep;
	uint64_t t;
	uint32_t len;
	uint8_t setup[8];
	bool have_setup;
};

/* One event from any USB link type, normalized to usbmon's view. */
struct an_urb {
	uint64_t t, pkt;
	uint64_t id;
	char type;	/* 'S', 'C', 'E' */
	uint8_t xfer;	/* 0 iso, 1 interrupt, 2 control, 3 bulk */
	uint8_t ep;	/* bit 7 = IN */
	uint16_t bus;
	uint8_t addr;
	int32_t status; /* Linux errno form */
	uint32_t len;	/* S: requested; C: actual */
	bool len_known; /* USBPcap IN submits carry no length */
	bool have_setup;
	uint8_t setup[8];
	const uint8_t *data;
	size_t data_len;
	bool clipped;
};

struct an_idb {
	double speed_mbps;
	int bus, addr; /* -1 unknown */
};

struct an_flow;

struct an {
	struct an_opts o;
	int linktype;
	uint64_t packets;
	uint64_t t_first_abs;	/* absolute ns of the first packet */
	bool have_first;
	uint64_t t_last;	/* relative */
	uint64_t cur_pkt;
	bool backwards_noted;
	bool read_error; /* libpcap gave up before the end of the file */
	/* anomalies */
	char anomalies[AN_ANOMALY_KEEP][AN_ANOMALY_LEN];
	size_t nanom_kept;
	uint64_t nanom;
	/* devices */
	struct an_dev *devs[AN_MAX_DEVS];
	size_t ndevs;
	struct an_usb *usb[AN_MAX_USB];
	size_t nusb;
	bool dev_overflow_noted, usb_overflow_noted;
	struct an_pending pend[AN_PENDING_SLOTS];
	bool pend_overflow_noted;
	bool swapped_noted;
	bool usbmon_swapped; /* headers seen byte-swapped: decode all so */
	/* counters */
	uint64_t xfers_ctrl, xfers_bulk_in, xfers_bulk_out, xfers_intr, xfers_iso;
	uint64_t usb_records, bad_records;
	uint64_t mux_bytes[2];
	uint64_t conns_total, conns_refused, conns_reset, conns_lockdown;
	struct an_samples rtt_ctrl, rtt_mux, rtt_lkd;
	uint64_t gaps, longest_gap;
	json_object *conn_list; /* array, owned */
	/* pcapng IDB descriptions */
	struct an_idb idb[AN_IDB_MAX];
	size_t nidb;
	/* TCP / usbmuxd */
	struct an_flow *flows[AN_MAX_FLOWS];
	size_t nflows;
	bool flow_overflow_noted;
	uint64_t tcp_segments, umx_messages, umx_flows;
	unsigned tcp_gaps_listed;
	bool umx_list_seen;
	uint64_t umx_list_t, umx_list_pkt;
};

/* analyze.c */
void an_anomaly_add(struct an *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void an_sample(struct an_samples *s, uint64_t ns);
struct an_dev *an_dev_get(struct an *a, const char *key, bool create);
void an_dev_touch(struct an *a, struct an_dev *d, uint64_t t);

/* analyze_usb.c */
int an_usb_record(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, size_t wirelen);
void an_usb_finish(struct an *a);
void an_usb_free(struct an_usb *u);
void an_conn_close(struct an *a, struct an_conn *c, uint64_t t, int how);

/* analyze_lkd.c */
struct an_lkd *an_lkd_new(struct an *a, struct an_dev *d);
void an_lkd_free(struct an_lkd *l);
/* dir 0 = host -> device, 1 = device -> host */
void an_lkd_feed(struct an_lkd *l, int dir, const uint8_t *buf, size_t len, uint64_t t);
/* The connection ended (RST, FIN, device gone) at t. */
void an_lkd_close(struct an_lkd *l, uint64_t t);
/* A new connection to a non-lockdown port was accepted after the session
 * TLS came up: StartService (inside TLS) inferred. */
void an_lkd_service_conn(struct an_dev *d, uint16_t port, uint64_t t_syn, uint64_t t_open, uint64_t pkt);

/* analyze_tcp.c */
int an_ip_packet(struct an *a, uint64_t t, const uint8_t *buf, size_t caplen, size_t wirelen);
void an_tcp_finish(struct an *a);
void an_flow_free(struct an_flow *f);

#endif
