/* sim_lockdownd.h - the simulated iPhone's lockdownd, its services and what
 * the phone remembers (private to src/device/sim*.c; not a public API).
 *
 * Files: sim_state.c (key, pairings, state file, Trust dialog), sim_values.c
 * (GetValue tables), sim_lockdownd.c (lockdown requests on 62078),
 * sim_services.c (service ports, notification proxy, backup handshake). The
 * connection machine (framing, session TLS) is src/device/lkd_server.c.
 *
 * Two lifetimes:
 *  - struct slkd_device: what the phone remembers across USB re-enumeration
 *    (its RSA key, identity, pairings, the Trust dialog). Owned by struct simdev.
 *  - struct slkd: lockdownd and its services over one device core; its
 *    connections and service ports last one attachment (slkd_reset).
 *
 * Reference: doc/protocol.md 4.1-4.11 (requests, errors, pairing, TLS) and
 * section 0 (what real devices do). Facts the notes leave open are decided
 * here and written next to the code that decides them.
 */
#ifndef LP_SIM_LOCKDOWND_H
#define LP_SIM_LOCKDOWND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "src/base/lp_clock.h"
#include "src/base/lp_error.h"
#include "src/base/lp_log.h"
#include <plist/plist.h>

#include "proto/mux.h"
#include "src/device/devcore.h"
#include "src/device/lkd_server.h"
#include "src/device/sim_afc.h"

#define SLKD_MAX_PAIRINGS 16	  /* oldest pairing evicted beyond this */
#define SLKD_ID_MAX 64		  /* HostID / SystemBUID / UDID text */
#define SLKD_ESCROW_LEN 48	  /* bytes of the random EscrowBag */
#define SLKD_CERT_MAX (16u << 10) /* PEM certificate accepted from a host */
#define SLKD_STATE_MAX (1u << 20) /* persistent state file */
#define SLKD_NAME_MAX 64	  /* DeviceName */
#define SLKD_NOTIFY_NAMES 8	  /* names one notification-proxy client may observe */
#define SLKD_MAX_SERVICES 16	  /* service ports listening at once */
#define SLKD_SERVICE_PORT_BASE 49152

#define SLKD_NOTE_REQUEST_PAIR "com.apple.mobile.lockdown.request_pair"

enum slkd_dialog {
	SLKD_DIALOG_NONE,    /* no Trust dialog on screen */
	SLKD_DIALOG_SHOWN,   /* "Trust This Computer?" waiting for the user */
	SLKD_DIALOG_TRUSTED, /* user tapped Trust; the next Pair succeeds */
	SLKD_DIALOG_DENIED,  /* user tapped Don't Trust; the next Pair fails */
};

enum slkd_answer { SLKD_ANSWER_TRUST, SLKD_ANSWER_DENY, SLKD_ANSWER_NEVER };

/* Behaviour knobs taken from the profile. */
struct slkd_policy {
	enum slkd_answer answer;
	uint64_t trust_delay_ns; /* dialog shown -> user answers */
	bool locked;		 /* Pair: PasswordProtected forever */
	bool forget_hosts;	 /* pairings from the state file are ignored */
	bool refuse_host_certs;	 /* session TLS refuses every host certificate */
	/* answers to requests that would succeed (LP_ELKD_*; 0 = none):
	 * pair_error to every Pair (MCChallengeRequired carries a
	 * PairingChallenge), session_error to a StartSession of a known host,
	 * service_error to StartService */
	int pair_error, session_error, service_error;
	char prohibit[128]; /* GetValue keys answered GetProhibited, '+'-separated */
	enum slkd_down { SLKD_UP = 0, SLKD_DOWN_REFUSE, SLKD_DOWN_SILENT } down;
	bool legacy_tls; /* session TLS: TLS 1.0 with Camellia only (lks_set_legacy_tls) */
	bool tls_reset;	 /* StartSession succeeds, then the connection is reset at the
			    host's first TLS byte (as a device whose trust was reset) */
			 /* lockdownd not working: REFUSE - nothing listens on 62078 (a connect
	 * is answered RST); SILENT - connections are accepted and no request
	 * is ever answered */
};

struct slkd_identity {
	char udid[SLKD_ID_MAX];	  /* UniqueDeviceID as lockdown reports it */
	char serial[16];	  /* SerialNumber (Apple's 12-char style) */
	char name[SLKD_NAME_MAX]; /* DeviceName */
	char wifi[18];		  /* WiFiAddress */
	char bt[18];		  /* BluetoothAddress */
	uint64_t ecid;		  /* UniqueChipID */
};

struct slkd_pairing {
	char host_id[SLKD_ID_MAX];
	char system_buid[SLKD_ID_MAX];
	X509 *root, *host, *device; /* owned */
	uint8_t escrow[SLKD_ESCROW_LEN];
	bool this_process; /* made since simdev_new (not loaded from the state file) */
	uint64_t seq;	   /* age, for eviction */
};

struct slkd_counters {
	uint32_t pair_requests, pairs_ok, dialogs_shown;
	uint32_t sessions_started, tls_sessions, tls_rejected;
	uint32_t notifications_posted, requests;
};

struct slkd_device {
	struct lp_clock *clock;	  /* borrowed */
	const struct lp_log *log; /* borrowed */
	struct lp_rand rand;	  /* escrow bags, session IDs, ports (not crypto) */
	struct slkd_policy pol;
	struct slkd_identity id;
	EVP_PKEY *key;	  /* the device's RSA key (owned) */
	char *pubkey_pem; /* DevicePublicKey: PEM "RSA PUBLIC KEY" (owned) */
	size_t pubkey_pem_len;
	struct slkd_pairing pair[SLKD_MAX_PAIRINGS];
	size_t npair;
	uint64_t pair_seq;
	enum slkd_dialog dialog;
	uint64_t dialog_at; /* when the dialog appeared */
	char untrusted_buid[SLKD_ID_MAX];
	char *state_path; /* owned copy, NULL = no persistence */
	bool state_readonly;
	struct slkd_counters n;
	/* set when a Pair succeeded because the user tapped Trust (simdev may
	 * re-enumerate the device afterwards, as real phones do) */
	bool trusted_pair_done;
	uint64_t trusted_pair_at;
	/* the user's last tap on Trust (0 = none yet): when the deadline
	 * passed, not when someone noticed (simdev re-enumerates from it) */
	uint64_t trusted_at;
};

/* Load or create the device key and pairings. `state_path` may be NULL; an
 * existing file is loaded (pairings skipped when pol->forget_hosts), a missing
 * one is created unless `readonly`. */
int slkd_device_init(struct slkd_device *d, struct lp_clock *clock, const struct lp_log *log,
		     const struct slkd_policy *pol, const struct slkd_identity *id, uint64_t seed,
		     const char *state_path, bool readonly, struct lp_errinfo *e);
void slkd_device_release(struct slkd_device *d);
/* Move the dialog along the clock: returns true exactly once, when the user
 * taps Trust at or before `now`. */
bool slkd_dialog_update(struct slkd_device *d, uint64_t now);
/* When the user will answer (UINT64_MAX if no answer is coming). */
uint64_t slkd_dialog_deadline(const struct slkd_device *d);
const struct slkd_pairing *slkd_find_pairing(const struct slkd_device *d, const char *host_id);

/* sim_state.c: pairings and persistence (for the request handlers). */
X509 *slkd_cert_from_node(plist_t dict, const char *key); /* PEM data -> owned X509 */
bool slkd_buid_paired(const struct slkd_device *d, const char *buid);
void slkd_remove_pairing(struct slkd_device *d, size_t i);
/* Adopts root/host/device. Replaces a pairing with the same HostID; evicts
 * the oldest when full. */
struct slkd_pairing *slkd_add_pairing(struct slkd_device *d, const char *host_id, const char *buid,
				      X509 *root, X509 *host, X509 *device);
int slkd_state_save(struct slkd_device *d);

/* sim_values.c: GetValue of `key` (NULL: all) in `domain` (NULL: none);
 * `session`: asked inside session TLS. 0 and *out (owned), or LP_ELKD_*. */
int slkd_value(const struct slkd_device *d, const char *domain, const char *key, bool session,
	       uint64_t now, plist_t *out);

/* --- lockdownd over a device core ------------------------------------------- */

enum slkd_kind { SLKD_LOCKDOWN, SLKD_NOTIFY, SLKD_BACKUP, SLKD_AFC };

struct slkd_service {
	bool used;
	uint16_t port;
	enum slkd_kind kind;
	char host_id[SLKD_ID_MAX];
	uint64_t seq;
};

/* Per connection (lks_priv). */
struct slkd_conn {
	struct slkd *l;
	enum slkd_kind kind;
	bool session;
	char session_id[40];
	char host_id[SLKD_ID_MAX];
	char *observe[SLKD_NOTIFY_NAMES];
	size_t nobserve;
};

struct slkd {
	struct slkd_device *d; /* borrowed */
	struct devcore *dc;    /* borrowed */
	struct lks *srv;       /* owned */
	struct sim_afc *afc;   /* owned: com.apple.afc (sim_afc.c) */
	struct slkd_service svc[SLKD_MAX_SERVICES];
	uint64_t svc_seq;
	uint64_t now; /* of the event being handled */
	/* Optional: sees every lockdown request (by name) before it is served;
	 * true = handled or swallowed there (simdev's hostile modes). */
	bool (*intercept)(void *ud, struct lks_conn *c, const char *request);
	void *intercept_ud;
};

/* lockdownd and services of the device `d` over `dc` (both borrowed). NULL on
 * allocation failure. */
struct slkd *slkd_new(struct slkd_device *d, struct devcore *dc, const struct lp_log *log);
void slkd_free(struct slkd *l);
void slkd_set_framing(struct slkd *l, enum lks_framing f);
/* A usbmux configuration was selected: listen on 62078. */
void slkd_attach(struct slkd *l);
/* The attachment ended: connections and service ports are gone. */
void slkd_reset(struct slkd *l);
/* Device-core events. slkd_accept decides who serves the connection. */
void slkd_accept(struct slkd *l, uint32_t conn, uint16_t port, uint64_t now);
void slkd_data(struct slkd *l, uint32_t conn, const uint8_t *buf, size_t len, uint64_t now);
void slkd_closed(struct slkd *l, uint32_t conn);
/* Relay notification `name` to every notification-proxy client observing
 * it. Returns how many got it. */
size_t slkd_notify(struct slkd *l, const char *name);
/* How many notification-proxy clients observe `name`. */
size_t slkd_observers(struct slkd *l, const char *name);

/* sim_services.c, for sim_lockdownd.c */
extern const struct lks_handler slkd_lockdown_handler; /* sim_lockdownd.c */
/* A service port for `kind` serving `host_id`: 0 and *port, or LP_ELKD_SERVICE_LIMIT. */
int slkd_service_open(struct slkd *l, enum slkd_kind kind, const char *host_id, uint16_t *port);
/* Serve an accepted connection on a service port; false if the port is none
 * of ours. */
bool slkd_service_accept(struct slkd *l, uint32_t conn, uint16_t port);
void slkd_service_reset(struct slkd *l);
/* Per-connection object for any kind (NULL on allocation failure). */
struct slkd_conn *slkd_conn_new(struct slkd *l, enum slkd_kind kind, const char *host_id);
void slkd_conn_closed(void *ud, struct lks_conn *c);
/* lks peer_ok hook of every sim handler (ud: struct slkd): the host's TLS
 * certificate must be the stored Root/Host certificate of the connection's
 * pairing or signed by its root; counts tls_sessions / tls_rejected. */
bool slkd_peer_ok(void *ud, struct lks_conn *c, X509 *peer);

#endif
