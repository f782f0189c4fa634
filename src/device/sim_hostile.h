/* sim_hostile.h - the simulated iPhone misbehaving on request (private to
 * src/device/sim*.c): `--device sim:PROFILE,hostile=MODE`, lp_gadget
 * --hostile MODE. Each mode is one thing a broken or malicious device does to
 * the host; the host must end with a clear verdict, in bounded time and
 * memory, printing nothing the device chose raw.
 *
 *   mux-short        the first lockdown reply's usbmux length says 2 bytes
 *                    less than the packet holds
 *   mux-over         ... 64 bytes more than the transfer holds (under the cap)
 *   mux-long         ... 256 MiB (over any cap)
 *   plist-garbage    the QueryType reply is framed garbage ("bplist00" + noise)
 *   plist-deep       the QueryType reply is a binary plist of 100 000 nested
 *                    arrays (~700 KB: under the message cap)
 *   plist-deep-xml   ... an XML plist of 200 000 nested <array>s (~3 MB)
 *   plist-nul        ... a binary plist with a UTF-16 key holding a NUL
 *                    (libplist 2.2 aborts whoever reads that key on an
 *                    assert: proto/plist_depth.h)
 *   name-escape      DeviceName holds terminal escapes (CSI, OSC, C1), bidi
 *                    and zero-width characters, a newline and invalid UTF-8
 *   stall            once usbmux is up, both bulk endpoints are halted for good
 *   nak-out          once usbmux is up, bulk OUT NAKs forever
 *   nak-out-querytype once lockdownd has accepted the host's connection,
 *                    bulk OUT NAKs forever: the QueryType request never
 *                    leaves the host
 *   in-flood         once usbmux is up, IN carries 16 KiB transfers of tiny
 *                    packets to host ports nobody opened, and OUT NAKs
 *   disconnect-STAGE the phone leaves the bus in the middle of STAGE:
 *                    descriptors (3rd GET_DESCRIPTOR), usbmux (VERSION),
 *                    lockdown (connect), querytype, getvalue, pair,
 *                    startsession, tls (the host's first handshake bytes),
 *                    startservice, stopsession
 *
 * The hooks are called by simdev.c's personality and by lockdownd
 * (struct slkd.intercept); none frees the device core under its caller: an
 * unplug is decided at once (attached() answers false) and carried out at the
 * next tick.
 */
#ifndef LP_SIM_HOSTILE_H
#define LP_SIM_HOSTILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/device/devcore.h"
#include "src/device/lkd_server.h"

enum shost_mode {
	SHOST_NONE = 0,
	SHOST_MUX_SHORT,
	SHOST_MUX_OVER,
	SHOST_MUX_LONG,
	SHOST_PLIST_GARBAGE,
	SHOST_PLIST_DEEP,
	SHOST_PLIST_DEEP_XML,
	SHOST_PLIST_NUL,
	SHOST_NAME_ESCAPE,
	SHOST_STALL,
	SHOST_NAK_OUT,
	SHOST_NAK_OUT_QUERYTYPE,
	SHOST_IN_FLOOD,
	SHOST_DISCONNECT,
};

enum shost_stage {
	SHOST_AT_DESCRIPTORS,
	SHOST_AT_USBMUX,
	SHOST_AT_LOCKDOWN,
	SHOST_AT_QUERYTYPE,
	SHOST_AT_GETVALUE,
	SHOST_AT_PAIR,
	SHOST_AT_STARTSESSION,
	SHOST_AT_TLS,
	SHOST_AT_STARTSERVICE,
	SHOST_AT_STOPSESSION,
	SHOST_AT_COUNT,
};

struct shost {
	enum shost_mode mode;
	enum shost_stage at;   /* SHOST_DISCONNECT */
	struct devcore *dc;    /* borrowed */
	bool fired;	       /* the one-shot misbehaviour happened */
	bool unplug;	       /* decided: the phone is off the bus */
	bool detached;	       /* ... and the core was told */
	bool unplug_next_out;  /* disconnect-tls: at the host's next bytes */
	bool lockdown_open;    /* nak-out-querytype: lockdownd accepted */
	unsigned descriptors;  /* GET_DESCRIPTOR requests seen */
	uint16_t flood_seq;    /* tx_seq of the flood's packets */
	uint64_t flood_queued; /* flood transfers queued */
};

/* Mode by name ("mux-short", "disconnect-pair", ...): 0, or LP_EINVAL. */
int shost_parse(const char *name, struct shost *h);
/* Every mode name, ", "-separated (for usage errors). Static. */
const char *shost_names(void);
/* DeviceName this mode imposes, or NULL. Static. */
const char *shost_device_name(const struct shost *h);

/* Personality hooks (simdev.c). */
void shost_control_seen(struct shost *h, const uint8_t setup[8]);
bool shost_filter_out(struct shost *h, const uint8_t *data, size_t len); /* false: drop */
bool shost_accept(struct shost *h, uint16_t port);			 /* true: swallowed */
enum devmodel_ep shost_bulk_state(struct shost *h, uint8_t ep);
void shost_in_edit(struct shost *h, uint8_t *pkt, size_t len);
void shost_in_poll(struct shost *h, uint8_t ep_in);
/* lockdownd sees `request` first: true when the mode handled (or swallowed) it. */
bool shost_intercept(struct shost *h, struct lks_conn *c, const char *request);
/* An unplug decided and not yet carried out (the tick should detach). */
bool shost_detach_due(const struct shost *h);

#endif
