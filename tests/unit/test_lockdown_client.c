/* test_lockdown_client.c - host lockdown client against a scripted fake
 * device over an in-memory stream (the device answers synchronously when the
 * client sends; an empty inbox at recv time means "silence until the
 * deadline" on a virtual clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/lockdown_client.h"
#include "proto/lockdown_frame.h"
#include "proto/pair_cert.h"
#include "proto/pair_record.h"
#include "proto/tls.h"
#include "src/base/lp_error.h"

#define MAX_CHUNKS 64

struct chunk {
	uint8_t *p;
	size_t len, off;
};

struct fake;
/* Reply (owned) to `req`, or NULL to stay silent. */
typedef plist_t (*handler_fn)(struct fake *f, plist_t req);

struct fake {
	struct lp_stream stream; /* what the client uses */
	struct lp_clock clock;
	struct lkd_framer *fr;
	struct lp_tls *tls;
	bool tls_closing; /* StopSession answered: only the host's close_notify may follow */
	handler_fn handler;
	struct chunk q[MAX_CHUNKS];
	size_t qhead, qtail;
	int nreq;
	plist_t last_req;
	bool split_prefix;
	bool saw_close_notify;
	const char *raw_reply; /* sent instead of a plist if set */
	bool coalesce_stop;    /* StopSession reply and close_notify in one read */
};

/* Shared across tests (RSA generation is slow). */
static struct pair_record *g_rec;
static X509 *g_dev_cert, *g_host_cert;
static EVP_PKEY *g_dev_key, *g_host_key;

static void enqueue(struct fake *f, const uint8_t *p, size_t n)
{
	assert_true(f->qtail < MAX_CHUNKS);
	f->q[f->qtail].p = malloc(n);
	memcpy(f->q[f->qtail].p, p, n);
	f->q[f->qtail].len = n;
	f->q[f->qtail].off = 0;
	f->qtail++;
}

static void enqueue_tls_output(struct fake *f)
{
	uint8_t *o = NULL;
	size_t n = 0;

	assert_int_equal(lp_tls_take(f->tls, &o, &n), 0);
	if (n)
		enqueue(f, o, n);
	free(o);
}

static void send_reply(struct fake *f, plist_t rep)
{
	uint8_t *w;
	size_t n;

	assert_int_equal(lkd_frame_encode(rep, &w, &n), 0);
	if (f->tls) {
		assert_int_equal(lp_tls_write(f->tls, w, n, NULL), 0);
		enqueue_tls_output(f);
	} else if (f->split_prefix) {
		/* doc/protocol.md section 0: the prefix in its own segment */
		enqueue(f, w, 4);
		enqueue(f, w + 4, n - 4);
	} else {
		enqueue(f, w, n);
	}
	free(w);
}

static void handle_requests(struct fake *f)
{
	plist_t req;

	while (lkd_framer_next(f->fr, &req, NULL, NULL) == 0) {
		const char *name = lkd_dict_str(req, "Request");
		plist_t rep;

		f->nreq++;
		plist_free(f->last_req);
		f->last_req = plist_copy(req);
		if (f->raw_reply) {
			size_t n = strlen(f->raw_reply);
			uint8_t hdr[4] = {0, 0, (uint8_t)(n >> 8), (uint8_t)n};
			enqueue(f, hdr, 4);
			enqueue(f, (const uint8_t *)f->raw_reply, n);
			plist_free(req);
			continue;
		}
		rep = f->handler(f, req);
		if (rep) {
			send_reply(f, rep);
			if (name && !strcmp(name, "StartSession") &&
			    lkd_dict_bool(rep, "EnableSessionSSL", 0)) {
				f->tls = lp_tls_new_server(g_dev_cert, g_dev_key, NULL);
				assert_non_null(f->tls);
			} else if (name && !strcmp(name, "StopSession") && f->tls) {
				/* the device ends TLS too; its close_notify comes in
				 * what is plaintext again for the host */
				lp_tls_shutdown(f->tls);
				if (f->coalesce_stop && f->qtail > f->qhead) {
					/* what a real-time link delivers: both in one transfer */
					struct chunk *last = &f->q[f->qtail - 1];
					uint8_t *o = NULL;
					size_t n = 0;
					assert_int_equal(lp_tls_take(f->tls, &o, &n), 0);
					last->p = realloc(last->p, last->len + n);
					memcpy(last->p + last->len, o, n);
					last->len += n;
					free(o);
				} else {
					enqueue_tls_output(f);
				}
				f->tls_closing = true;
			}
			plist_free(rep);
		}
		plist_free(req);
	}
}

static int fake_send(struct lp_stream *s, const uint8_t *buf, size_t len, uint64_t dl,
		     struct lp_errinfo *e)
{
	struct fake *f = s->impl;

	if (f->tls_closing) {
		uint8_t pt[64];
		size_t got = 0;

		/* the host's close_notify, as libimobiledevice sends it too */
		assert_int_equal(lp_tls_feed(f->tls, buf, len), 0);
		assert_int_equal(lp_tls_read(f->tls, pt, sizeof(pt), &got, NULL), LP_ECLOSED);
		lp_tls_free(f->tls);
		f->tls = NULL;
		f->tls_closing = false;
		f->saw_close_notify = true;
		return 0;
	}
	if (f->tls) {
		assert_int_equal(lp_tls_feed(f->tls, buf, len), 0);
		if (!lp_tls_established(f->tls)) {
			int r = lp_tls_handshake(f->tls, NULL);
			assert_true(r == 0 || r == LP_EAGAIN);
			enqueue_tls_output(f);
			if (r)
				return 0;
		}
		for (;;) {
			uint8_t pt[4096];
			size_t got = 0;
			int r = lp_tls_read(f->tls, pt, sizeof(pt), &got, NULL);
			if (r)
				break;
			assert_int_equal(lkd_framer_feed(f->fr, pt, got), 0);
		}
	} else {
		assert_int_equal(lkd_framer_feed(f->fr, buf, len), 0);
	}
	handle_requests(f);
	return 0;
}

static int fake_recv(struct lp_stream *s, uint8_t *buf, size_t cap, size_t *got, uint64_t dl,
		     struct lp_errinfo *e)
{
	struct fake *f = s->impl;
	struct chunk *c;
	size_t n;

	if (f->qhead == f->qtail) {
		lp_clock_sleep_until(&f->clock, dl);
		return lp_err_set(e, LP_ETIMEDOUT, "fake: nothing to read");
	}
	c = &f->q[f->qhead];
	n = c->len - c->off < cap ? c->len - c->off : cap;
	memcpy(buf, c->p + c->off, n);
	c->off += n;
	if (c->off == c->len) {
		free(c->p);
		f->qhead++;
	}
	*got = n;
	return 0;
}

static void fake_close(struct lp_stream *s)
{
}

static const struct lp_stream_ops fake_ops = {fake_send, fake_recv, fake_close};

static struct fake *fake_new(handler_fn h)
{
	struct fake *f = calloc(1, sizeof(*f));

	lp_clock_init_virtual(&f->clock, 0);
	f->stream.ops = &fake_ops;
	f->stream.clock = &f->clock;
	f->stream.impl = f;
	f->fr = lkd_framer_new();
	f->handler = h;
	return f;
}

static void fake_free(struct fake *f)
{
	for (size_t i = f->qhead; i < f->qtail; i++)
		free(f->q[i].p);
	lkd_framer_free(f->fr);
	lp_tls_free(f->tls);
	plist_free(f->last_req);
	free(f);
}

static uint64_t dl(struct fake *f)
{
	return lp_clock_deadline_ms(&f->clock, 5000);
}

static plist_t reply_to(plist_t req)
{
	plist_t r = plist_new_dict();

	plist_dict_set_item(r, "Request", plist_new_string(lkd_dict_str(req, "Request")));
	return r;
}

/* --- a well-behaved device --------------------------------------------- */

static const char *g_pair_error; /* Pair replies with this Error if set */

static plist_t good_device(struct fake *f, plist_t req)
{
	const char *name = lkd_dict_str(req, "Request");
	plist_t r = reply_to(req);

	if (!strcmp(name, "QueryType")) {
		plist_dict_set_item(r, "Type", plist_new_string("com.apple.mobile.lockdown"));
	} else if (!strcmp(name, "GetValue")) {
		const char *key = lkd_dict_str(req, "Key");
		const char *dom = lkd_dict_str(req, "Domain");

		if (key)
			plist_dict_set_item(r, "Key", plist_new_string(key));
		if (key && !strcmp(key, "IDAMCapability")) {
			plist_dict_set_item(r, "Error", plist_new_string("GetProhibited"));
		} else if (dom) {
			plist_dict_set_item(r, "Value", plist_new_uint(87));
		} else if (key) {
			plist_dict_set_item(r, "Value", plist_new_string("17.5"));
		} else {
			plist_t all = plist_new_dict();
			plist_dict_set_item(all, "DeviceClass", plist_new_string("iPhone"));
			plist_dict_set_item(r, "Value", all);
		}
	} else if (!strcmp(name, "Pair")) {
		if (g_pair_error)
			plist_dict_set_item(r, "Error", plist_new_string(g_pair_error));
		else
			plist_dict_set_item(r, "EscrowBag", plist_new_data("SECRETBAG", 9));
	} else if (!strcmp(name, "StartSession")) {
		if (strcmp(lkd_dict_str(req, "HostID"), g_rec->host_id) != 0) {
			plist_dict_set_item(r, "Error", plist_new_string("InvalidHostID"));
		} else {
			plist_dict_set_item(r, "SessionID", plist_new_string("SESSION-1"));
			plist_dict_set_item(r, "EnableSessionSSL", plist_new_bool(1));
		}
	} else if (!strcmp(name, "StopSession")) {
		plist_dict_set_item(r, "Result", plist_new_string("Success"));
	} else if (!strcmp(name, "StartService")) {
		plist_dict_set_item(r, "Service", plist_new_string(lkd_dict_str(req, "Service")));
		plist_dict_set_item(r, "Port", plist_new_uint(49152));
		plist_dict_set_item(r, "EnableServiceSSL", plist_new_bool(1));
	}
	return r;
}

static int group_setup(void **state)
{
	uint8_t *pub = NULL;
	size_t len = 0;
	struct pair_creds c = {0};

	if (pair_device_key_generate(&g_dev_key, &pub, &len) ||
	    pair_creds_generate(pub, len, &c, NULL))
		return -1;
	free(pub);
	g_rec = pair_record_new();
	pair_record_adopt_creds(g_rec, &c);
	pair_record_set_str(&g_rec->host_id, "11111111-2222-4333-8444-555555555555");
	pair_record_set_str(&g_rec->system_buid, "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE");
	g_dev_cert = pair_load_cert(g_rec->device_certificate.data, g_rec->device_certificate.len);
	g_host_cert = pair_load_cert(g_rec->host_certificate.data, g_rec->host_certificate.len);
	g_host_key = pair_load_key(g_rec->host_private_key.data, g_rec->host_private_key.len);
	return g_dev_cert && g_host_cert && g_host_key ? 0 : -1;
}

static int group_teardown(void **state)
{
	pair_record_free(g_rec);
	X509_free(g_dev_cert);
	X509_free(g_host_cert);
	EVP_PKEY_free(g_dev_key);
	EVP_PKEY_free(g_host_key);
	return 0;
}

/* --- tests --------------------------------------------------------------- */

static void test_query_type(void **state)
{
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	char *type = NULL;

	f->split_prefix = true;
	assert_int_equal(lkd_query_type(c, &type, dl(f), NULL), 0);
	assert_string_equal(type, "com.apple.mobile.lockdown");
	/* what went on the wire, like Apple's tools */
	assert_string_equal(lkd_dict_str(f->last_req, "Request"), "QueryType");
	assert_string_equal(lkd_dict_str(f->last_req, "Label"), "linkprobe");
	assert_string_equal(lkd_dict_str(f->last_req, "ProtocolVersion"), "2");
	free(type);
	lkd_client_free(c);
	assert_int_equal(f->nreq, 1); /* free sent nothing */
	fake_free(f);
}

static void test_get_value(void **state)
{
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, "mylabel");
	struct lp_errinfo e = {0};
	plist_t v = NULL;
	uint64_t u = 0;

	assert_int_equal(lkd_get_value(c, NULL, "ProductVersion", &v, dl(f), &e), 0);
	assert_int_equal(plist_get_node_type(v), PLIST_STRING);
	assert_string_equal(plist_get_string_ptr(v, NULL), "17.5");
	assert_null(plist_dict_get_item(f->last_req, "Domain"));
	assert_string_equal(lkd_dict_str(f->last_req, "Key"), "ProductVersion");
	assert_string_equal(lkd_dict_str(f->last_req, "Label"), "mylabel");
	plist_free(v);

	assert_int_equal(lkd_get_value(c, "com.apple.mobile.battery", "BatteryCurrentCapacity", &v,
				       dl(f), &e),
			 0);
	assert_string_equal(lkd_dict_str(f->last_req, "Domain"), "com.apple.mobile.battery");
	plist_get_uint_val(v, &u);
	assert_int_equal(u, 87);
	plist_free(v);

	assert_int_equal(lkd_get_value(c, NULL, NULL, &v, dl(f), &e), 0);
	assert_null(plist_dict_get_item(f->last_req, "Key"));
	assert_string_equal(lkd_dict_str(v, "DeviceClass"), "iPhone");
	plist_free(v);

	v = NULL;
	assert_int_equal(lkd_get_value(c, NULL, "IDAMCapability", &v, dl(f), &e),
			 LP_ELKD_GET_PROHIBITED);
	assert_string_equal(e.msg, "GetProhibited");
	assert_null(v);
	lkd_client_free(c);
	fake_free(f);
}

struct seen {
	int sent, recv;
	bool leaked;
};

static void observer(void *ud, int dir, plist_t msg)
{
	struct seen *s = ud;
	char *xml = NULL;
	uint32_t n = 0;

	if (dir == LKD_DIR_SEND)
		s->sent++;
	else
		s->recv++;
	plist_to_xml(msg, &xml, &n);
	/* "SECRETBAG" base64 = U0VDUkVUQkFH; private keys never appear */
	if (strstr(xml, "U0VDUkVUQkFH") || strstr(xml, "PRIVATE KEY") || strstr(xml, "PrivateKey"))
		s->leaked = true;
	plist_to_xml_free(xml);
}

static void test_pair_ok(void **state)
{
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	struct seen seen = {0};
	plist_t bag = NULL, pr, opt;
	const char *p;
	uint64_t n = 0;

	lkd_set_observer(c, observer, &seen);
	g_pair_error = NULL;
	assert_int_equal(lkd_pair(c, g_rec, &bag, dl(f), NULL), 0);
	assert_non_null(bag);
	p = plist_get_data_ptr(bag, &n);
	assert_int_equal(n, 9);
	assert_memory_equal(p, "SECRETBAG", 9);
	/* doc/protocol.md 4.7: five keys, no private keys; ExtendedPairingErrors */
	pr = plist_dict_get_item(f->last_req, "PairRecord");
	assert_non_null(pr);
	assert_int_equal(plist_dict_get_size(pr), 5);
	assert_null(plist_dict_get_item(pr, "HostPrivateKey"));
	assert_null(plist_dict_get_item(pr, "RootPrivateKey"));
	opt = plist_dict_get_item(f->last_req, "PairingOptions");
	assert_int_equal(lkd_dict_bool(opt, "ExtendedPairingErrors", 0), 1);
	assert_int_equal(seen.sent, 1);
	assert_int_equal(seen.recv, 1);
	assert_false(seen.leaked);
	plist_free(bag);
	lkd_client_free(c);
	fake_free(f);
}

static void test_pair_errors(void **state)
{
	static const struct {
		const char *s;
		int code;
	} cases[] = {
		{"PairingDialogResponsePending", LP_ELKD_PAIRING_DIALOG_PENDING},
		{"UserDeniedPairing", LP_ELKD_USER_DENIED_PAIRING},
		{"PasswordProtected", LP_ELKD_PASSWORD_PROTECTED},
		{"InvalidHostID", LP_ELKD_INVALID_HOST_ID},
		{"PairingProhibitedOverThisConnection", LP_ELKD_PAIRING_PROHIBITED},
		{"MCChallengeRequired", LP_ELKD_MC_CHALLENGE_REQUIRED},
		{"SomethingNewInIOS42", LP_ELKD_UNKNOWN},
	};
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lp_errinfo e = {0};
		plist_t bag = (plist_t)1;

		g_pair_error = cases[i].s;
		assert_int_equal(lkd_pair(c, g_rec, &bag, dl(f), &e), cases[i].code);
		assert_int_equal(e.code, cases[i].code);
		assert_string_equal(e.msg, cases[i].s);
		assert_ptr_equal(bag, (plist_t)1); /* untouched on failure */
	}
	g_pair_error = NULL;
	lkd_client_free(c);
	fake_free(f);
}

static plist_t wrong_request(struct fake *f, plist_t req)
{
	plist_t r = plist_new_dict();

	plist_dict_set_item(r, "Request", plist_new_string("GetValue"));
	plist_dict_set_item(r, "Type", plist_new_string("com.apple.mobile.lockdown"));
	return r;
}

static plist_t no_request(struct fake *f, plist_t req)
{
	plist_t r = plist_new_dict();

	plist_dict_set_item(r, "Type", plist_new_string("com.apple.mobile.lockdown"));
	return r;
}

static plist_t result_failure(struct fake *f, plist_t req)
{
	plist_t r = reply_to(req);

	plist_dict_set_item(r, "Result", plist_new_string("Failure"));
	return r;
}

static void test_protocol_violations(void **state)
{
	struct fake *f = fake_new(wrong_request);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	struct lp_errinfo e = {0};
	char *type = NULL;

	assert_int_equal(lkd_query_type(c, &type, dl(f), &e), LP_EPROTO);
	assert_non_null(strstr(e.msg, "GetValue"));
	assert_null(type);
	f->handler = no_request;
	assert_int_equal(lkd_query_type(c, &type, dl(f), &e), LP_EPROTO);
	f->handler = result_failure;
	assert_int_equal(lkd_goodbye(c, dl(f), &e), LP_ELKD_UNKNOWN);
	/* a body that is not a plist */
	f->raw_reply = "<html>nope</html>";
	assert_int_equal(lkd_query_type(c, &type, dl(f), &e), LP_EPLIST);
	lkd_client_free(c);
	fake_free(f);
}

static plist_t silent(struct fake *f, plist_t req)
{
	return NULL;
}

static void test_deadline(void **state)
{
	struct fake *f = fake_new(silent);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	struct lp_errinfo e = {0};
	char *type = NULL;
	uint64_t t0 = lp_clock_now(&f->clock);
	uint64_t d = lp_clock_deadline_ms(&f->clock, 1500);

	assert_int_equal(lkd_query_type(c, &type, d, &e), LP_ETIMEDOUT);
	assert_int_equal(e.code, LP_ETIMEDOUT);
	assert_int_equal(lp_clock_now(&f->clock) - t0, 1500 * LP_NS_PER_MS);
	/* a deadline already past fails without waiting further */
	assert_int_equal(lkd_goodbye(c, d, &e), LP_ETIMEDOUT);
	assert_int_equal(lp_clock_now(&f->clock) - t0, 1500 * LP_NS_PER_MS);
	lkd_client_free(c);
	fake_free(f);
}

struct kl {
	int lines;
};

static void keylog(void *ud, const char *line)
{
	((struct kl *)ud)->lines++;
}

static void test_session_tls(void **state)
{
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	struct lp_errinfo e = {0};
	struct kl kl = {0};
	char *sid = NULL, *type = NULL;
	bool ssl = false;
	const char *ver, *ciph;
	plist_t v = NULL, bag = plist_new_data("SECRETBAG", 9);
	uint16_t port = 0;
	struct seen seen = {0};

	lkd_set_keylog(c, keylog, &kl);
	lkd_set_observer(c, observer, &seen);
	assert_int_equal(lkd_tls_info(c, &ver, &ciph), LP_ENOENT);
	assert_int_equal(
		lkd_start_session(c, "not-paired", g_rec->system_buid, &sid, &ssl, dl(f), &e),
		LP_ELKD_INVALID_HOST_ID);
	assert_int_equal(
		lkd_start_session(c, g_rec->host_id, g_rec->system_buid, &sid, &ssl, dl(f), &e), 0);
	assert_string_equal(sid, "SESSION-1");
	assert_true(ssl);
	assert_string_equal(lkd_dict_str(f->last_req, "SystemBUID"), g_rec->system_buid);
	{
		/* issue 10: no EscrowBag before the device has proved itself */
		const char *why = NULL;

		assert_false(lkd_escrow_allowed(c, g_rec->device_certificate.data,
						g_rec->device_certificate.len, &why));
		assert_string_equal(why, "the session is not encrypted");
		plist_free(f->last_req);
		f->last_req = NULL;
		assert_int_equal(lkd_start_service(c, "com.apple.afc", bag, &port, &ssl, dl(f), &e),
				 LP_EINVAL);
		assert_null(f->last_req); /* nothing went out in plaintext */
	}
	assert_int_equal(lkd_start_tls(c, g_host_cert, g_host_key, dl(f), &e), 0);
	assert_true(lkd_in_tls(c));
	assert_int_equal(lkd_tls_info(c, &ver, &ciph), 0);
	assert_string_equal(ver, "TLSv1.2");
	assert_true(strlen(ciph) > 0);
	assert_true(kl.lines > 0);
	/* the device really saw the host certificate */
	assert_int_equal(X509_cmp(lp_tls_peer_cert(f->tls), g_host_cert), 0);

	assert_int_equal(lkd_get_value(c, NULL, "ProductVersion", &v, dl(f), &e), 0);
	assert_string_equal(plist_get_string_ptr(v, NULL), "17.5");
	{
		const char *why = NULL;

		assert_true(lkd_escrow_allowed(c, g_rec->device_certificate.data,
					       g_rec->device_certificate.len, &why));
		/* a device presenting any other certificate does not get it */
		assert_false(lkd_escrow_allowed(c, g_rec->host_certificate.data,
						g_rec->host_certificate.len, &why));
		assert_string_equal(
			why,
			"the device's TLS certificate is not the pair record's DeviceCertificate");
		assert_false(lkd_escrow_allowed(c, NULL, 0, &why));
	}
	plist_free(v);
	assert_int_equal(lkd_start_service(c, "com.apple.afc", bag, &port, &ssl, dl(f), &e), 0);
	assert_int_equal(port, 49152);
	assert_true(ssl);
	assert_non_null(plist_dict_get_item(f->last_req, "EscrowBag"));

	assert_int_equal(lkd_stop_session(c, sid, dl(f), &e), 0);
	assert_false(lkd_in_tls(c));
	assert_true(f->saw_close_notify);
	assert_int_equal(lkd_tls_info(c, &ver, &ciph), 0); /* still reported */
	/* plaintext again; the device's close_notify is skipped */
	assert_int_equal(lkd_query_type(c, &type, dl(f), &e), 0);
	assert_string_equal(type, "com.apple.mobile.lockdown");
	assert_false(seen.leaked);
	free(type);
	free(sid);
	plist_free(bag);
	lkd_client_free(c);
	fake_free(f);
}

/* Regression: the device's StopSession reply and its close_notify arrive in
 * one read; the reply must not be lost behind the alert. */
static void test_stop_session_with_close_notify(void **state)
{
	struct fake *f = fake_new(good_device);
	struct lkd_client *c = lkd_client_new(&f->stream, NULL);
	struct lp_errinfo e = {0};
	char *sid = NULL, *type = NULL;
	bool ssl = false;

	f->coalesce_stop = true;
	assert_int_equal(
		lkd_start_session(c, g_rec->host_id, g_rec->system_buid, &sid, &ssl, dl(f), &e), 0);
	assert_int_equal(lkd_start_tls(c, g_host_cert, g_host_key, dl(f), &e), 0);
	assert_int_equal(lkd_stop_session(c, sid, dl(f), &e), 0);
	assert_false(lkd_in_tls(c));
	assert_int_equal(lkd_query_type(c, &type, dl(f), &e), 0);
	free(type);
	free(sid);
	lkd_client_free(c);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_type),
		cmocka_unit_test(test_get_value),
		cmocka_unit_test(test_pair_ok),
		cmocka_unit_test(test_pair_errors),
		cmocka_unit_test(test_protocol_violations),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_session_tls),
		cmocka_unit_test(test_stop_session_with_close_notify),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
