/* sim_services.c - the simulated iPhone's services: the service ports
 * StartService hands out, and what answers on them -
 *  - com.apple.mobile.insecure_notification_proxy: {Command:
 *    ObserveNotification / PostNotification / Shutdown, Name}; we send
 *    {Command: RelayNotification, Name} and answer Shutdown with ProxyDeath
 *    (libimobiledevice notification_proxy.c, read for facts);
 *  - com.apple.mobilebackup2 (EnableServiceSSL): the TLS handshake with the
 *    host's certificate checked as for the session; the DeviceLink
 *    conversation after it is not simulated;
 *  - com.apple.afc (plain, after StartService in a session): served by
 *    sim_afc.c.
 * Plus the per-connection object every sim handler keeps.
 *
 * Reference: doc/protocol.md 4.3 (preflight and notifications), 4.11.
 */
#include "src/device/sim_lockdownd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plist/plist.h>

#include "proto/lockdown_frame.h"

#define SLKD_NOTIFY_NAME_MAX 256
#define SLKD_PORT_TRIES 64
#define SLKD_PORT_SPAN 16000

struct slkd_conn *slkd_conn_new(struct slkd *l, enum slkd_kind kind, const char *host_id)
{
	struct slkd_conn *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->l = l;
	sc->kind = kind;
	snprintf(sc->host_id, sizeof(sc->host_id), "%s", host_id ? host_id : "");
	return sc;
}

void slkd_conn_closed(void *ud, struct lks_conn *c)
{
	struct slkd_conn *sc = lks_priv(c);

	(void)ud;
	if (!sc)
		return;
	for (size_t i = 0; i < sc->nobserve; i++)
		free(sc->observe[i]);
	free(sc);
	lks_set_priv(c, NULL);
}

/* --------------------------------------------------------------------------
 * Service ports
 */

int slkd_service_open(struct slkd *l, enum slkd_kind kind, const char *hid, uint16_t *port)
{
	struct slkd_service *s = NULL;

	for (size_t i = 0; i < SLKD_MAX_SERVICES && !s; i++)
		if (!l->svc[i].used)
			s = &l->svc[i];
	if (!s) { /* the oldest port stops listening */
		s = &l->svc[0];
		for (size_t i = 1; i < SLKD_MAX_SERVICES; i++)
			if (l->svc[i].seq < s->seq)
				s = &l->svc[i];
		devcore_unlisten(l->dc, s->port);
		s->used = false;
	}
	for (int tries = 0; tries < SLKD_PORT_TRIES; tries++) {
		uint16_t p = (uint16_t)(SLKD_SERVICE_PORT_BASE +
					lp_rand_next(&l->d->rand) % SLKD_PORT_SPAN);
		bool clash = p == MUX_PORT_LOCKDOWN;

		for (size_t i = 0; i < SLKD_MAX_SERVICES; i++)
			if (l->svc[i].used && l->svc[i].port == p)
				clash = true;
		if (clash)
			continue;
		if (devcore_listen(l->dc, p) != 0)
			return LP_ELKD_SERVICE_LIMIT;
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->port = p;
		s->kind = kind;
		s->seq = ++l->svc_seq;
		snprintf(s->host_id, sizeof(s->host_id), "%s", hid ? hid : "");
		*port = p;
		return 0;
	}
	return LP_ELKD_SERVICE_LIMIT;
}

void slkd_service_reset(struct slkd *l)
{
	memset(l->svc, 0, sizeof(l->svc));
}

/* --------------------------------------------------------------------------
 * Notification proxy
 */

static void relay(void *arg, struct lks_conn *c)
{
	const char *name = arg;
	struct slkd_conn *sc = lks_priv(c);
	plist_t m;

	for (size_t j = 0; j < sc->nobserve; j++) {
		if (strcmp(sc->observe[j], name))
			continue;
		m = plist_new_dict();
		plist_dict_set_item(m, "Command", plist_new_string("RelayNotification"));
		plist_dict_set_item(m, "Name", plist_new_string(name));
		lks_send(c, m, 0);
		plist_free(m);
		sc->l->d->n.notifications_posted++;
		return;
	}
}

static void notify_request(void *ud, struct lks_conn *c, plist_t msg, uint64_t now)
{
	struct slkd *l = ud;
	struct slkd_conn *sc = lks_priv(c);
	const char *cmd = lkd_dict_str(msg, "Command");
	const char *name = lkd_dict_str(msg, "Name");

	l->now = now;
	if (!cmd)
		return;
	if (!strcmp(cmd, "ObserveNotification") && name) {
		if (sc->nobserve == SLKD_NOTIFY_NAMES || strlen(name) >= SLKD_NOTIFY_NAME_MAX)
			return;
		for (size_t i = 0; i < sc->nobserve; i++)
			if (!strcmp(sc->observe[i], name))
				return;
		sc->observe[sc->nobserve] = strdup(name);
		if (sc->observe[sc->nobserve])
			sc->nobserve++;
	} else if (!strcmp(cmd, "PostNotification") && name &&
		   strlen(name) < SLKD_NOTIFY_NAME_MAX) {
		char copy[SLKD_NOTIFY_NAME_MAX];

		snprintf(copy, sizeof(copy), "%s", name);
		slkd_notify(l, copy);
	} else if (!strcmp(cmd, "Shutdown")) {
		plist_t r = plist_new_dict();

		plist_dict_set_item(r, "Command", plist_new_string("ProxyDeath"));
		lks_send(c, r, 0);
		plist_free(r);
	}
}

static const struct lks_handler notify_handler = {
	.request = notify_request,
	.closed = slkd_conn_closed,
};

struct observers {
	const char *name;
	size_t n;
};

static void count(void *arg, struct lks_conn *c)
{
	struct observers *o = arg;
	struct slkd_conn *sc = lks_priv(c);

	for (size_t j = 0; j < sc->nobserve; j++)
		if (!strcmp(sc->observe[j], o->name))
			o->n++;
}

size_t slkd_observers(struct slkd *l, const char *name)
{
	struct observers o = {name, 0};

	lks_each(l->srv, &notify_handler, count, &o);
	return o.n;
}

size_t slkd_notify(struct slkd *l, const char *name)
{
	uint32_t before = l->d->n.notifications_posted;

	lks_each(l->srv, &notify_handler, relay, (void *)name);
	lks_sweep(l->srv);
	return l->d->n.notifications_posted - before;
}

/* --------------------------------------------------------------------------
 * mobilebackup2: the handshake only
 */

static void backup_request(void *ud, struct lks_conn *c, plist_t msg, uint64_t now)
{
	(void)ud;
	(void)c;
	(void)msg;
	(void)now; /* nothing is framed on a TLS-only service */
}

static const struct lks_handler backup_handler = {
	.request = backup_request,
	.peer_ok = slkd_peer_ok,
	.closed = slkd_conn_closed,
};

bool slkd_service_accept(struct slkd *l, uint32_t conn, uint16_t port)
{
	const struct slkd_service *s = NULL;
	const struct slkd_pairing *p;
	struct slkd_conn *sc;
	struct lks_conn *c;
	bool backup;

	for (size_t i = 0; i < SLKD_MAX_SERVICES && !s; i++)
		if (l->svc[i].used && l->svc[i].port == port)
			s = &l->svc[i];
	if (!s)
		return false;
	if (s->kind == SLKD_AFC)
		return sim_afc_accept(l->afc, conn);
	backup = s->kind == SLKD_BACKUP;
	sc = slkd_conn_new(l, s->kind, s->host_id);
	c = sc ? lks_accept(l->srv, conn, port, backup ? LKS_TLS_SERVICE : LKS_FRAMED,
			    backup ? &backup_handler : &notify_handler, l)
	       : NULL;
	if (!c) {
		free(sc);
		return false;
	}
	lks_set_priv(c, sc);
	if (!backup)
		return true;
	/* EnableServiceSSL: the host starts TLS at once */
	p = slkd_find_pairing(l->d, s->host_id);
	if (!p)
		lks_kill(c, "backup: no pairing");
	else
		lks_start_tls(c, p->device, l->d->key, false);
	return true;
}
