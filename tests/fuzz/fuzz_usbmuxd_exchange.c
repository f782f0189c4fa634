/* fuzz_usbmuxd_exchange.c - libFuzzer harness: the usbmuxd client's whole
 * exchange over a real UNIX socket (proto/usbmuxd_client.c: request, reply
 * read in pieces, tag check, decoding, the device pipe after Connect), against
 * a hostile daemon.
 *
 * A thread plays the daemon on a socket in a temporary directory: for each
 * connection it reads the client's request (header and body, bounded) and
 * answers with the input's reply bytes (under a lock the input's end clears,
 * so a connection the client abandoned is never answered from freed input),
 * then hangs up. Input: [u16 BE op]
 * [reply bytes]; op % 5 picks the call: ListDevices, Connect (then one read
 * of the device pipe), ReadBUID, ReadPairRecord, SavePairRecord. fuzz_usbmuxd.c
 * covers the decoders alone; this one the socket side. Seeds:
 * tests/fuzz/mkseeds.py.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/pair_cert.h"
#include "proto/pair_record.h"
#include "proto/usbmuxd_client.h"
#include "src/base/lp_clock.h"

static char g_path[108];
static int g_lfd = -1;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *g_reply;
static size_t g_reply_len;
static struct pair_record *g_rec;
static volatile size_t sink;

static void *daemon_thread(void *arg)
{
	for (;;) {
		int fd = accept(g_lfd, NULL, NULL);
		uint8_t hdr[16], body[4096];
		size_t want, got = 0;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		/* the request: 16-byte header, then its body (bounded) */
		while (got < sizeof(hdr)) {
			ssize_t n = read(fd, hdr + got, sizeof(hdr) - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got == sizeof(hdr)) {
			want = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16;
			want = want > sizeof(hdr) ? want - sizeof(hdr) : 0;
			while (want) {
				ssize_t n = read(fd, body,
						 want < sizeof(body) ? want : sizeof(body));
				if (n <= 0)
					break;
				want -= (size_t)n;
			}
		}
		pthread_mutex_lock(&g_lock);
		if (g_reply_len && send(fd, g_reply, g_reply_len, MSG_NOSIGNAL) < 0)
			sink++;
		pthread_mutex_unlock(&g_lock);
		close(fd);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/lp-fuzz-umc.XXXXXX";
	pthread_t t;

	if (!mkdtemp(dir))
		abort();
	snprintf(g_path, sizeof(g_path), "%s/usbmuxd", dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", g_path);
	g_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g_lfd < 0 || bind(g_lfd, (struct sockaddr *)&a, sizeof(a)) || listen(g_lfd, 16))
		abort();
	if (pthread_create(&t, NULL, daemon_thread, NULL))
		abort();
	g_rec = pair_record_new();
	if (!g_rec)
		abort();
	pair_record_set_str(&g_rec->udid, "00008030-001A2B3C4D5E6F70");
	pair_record_set_str(&g_rec->host_id, "5A6B7C8D-0000-4000-8000-0123456789AB");
	pair_record_set_str(&g_rec->system_buid, "A1B2C3D4-0000-4000-8000-0123456789AB");
	pair_record_set_blob(&g_rec->host_certificate, "-----BEGIN CERTIFICATE-----\n", 28);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_clock clock;
	struct umc *c = NULL;
	struct umc_device devs[8];
	struct pair_record *rec = NULL;
	struct lp_stream *s = NULL;
	char buid[UMC_BUID_LEN + 1];
	uint8_t buf[256];
	size_t n = 0;
	uint64_t dl;

	if (size < 2)
		return 0;
	lp_clock_init_real(&clock);
	if (umc_new(g_path, &clock, NULL, &c, NULL))
		abort();
	pthread_mutex_lock(&g_lock);
	g_reply = data + 2;
	g_reply_len = size - 2;
	pthread_mutex_unlock(&g_lock);
	dl = lp_clock_deadline_ms(&clock, 200);
	switch ((data[0] << 8 | data[1]) % 5) {
	case 0:
		if (umc_list_devices(c, devs, 8, &n, dl, NULL) == 0)
			for (size_t i = 0; i < n; i++)
				sink += strlen(devs[i].udid);
		break;
	case 1:
		if (umc_connect(c, 3, 62078, dl, &s, NULL) == 0) {
			lp_stream_recv(s, buf, sizeof(buf), &n, dl, NULL);
			lp_stream_close(s);
		}
		break;
	case 2:
		if (umc_read_buid(c, buid, dl, NULL) == 0)
			sink += strlen(buid);
		break;
	case 3:
		if (umc_read_pair_record(c, "00008030-001A2B3C4D5E6F70", &rec, dl, NULL) == 0)
			pair_record_free(rec);
		break;
	default:
		umc_save_pair_record(c, g_rec, 3, dl, NULL);
		break;
	}
	umc_free(c);
	/* a connection the client gave up on must not be answered from freed input */
	pthread_mutex_lock(&g_lock);
	g_reply = NULL;
	g_reply_len = 0;
	pthread_mutex_unlock(&g_lock);
	return 0;
}
