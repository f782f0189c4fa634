/* lab_afc.c - the peer path for the lab's throughput comparison: the same
 * transfer `linkprobe --cable-test --throughput` makes (a file written to
 * the media area in 1 MiB requests, read back, compared, removed), made with
 * Debian's libimobiledevice AFC client through the running usbmuxd.
 *
 *   lab_afc UDID MIB
 *
 * Prints one line: "write_mbps=W read_mbps=R bytes=N" (MB/s = 10^6 B/s of
 * wall-clock time, as linkprobe reports); exit 0 when the data read back is
 * what was written, 1 otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libimobiledevice/afc.h>
#include <libimobiledevice/libimobiledevice.h>
#include <libimobiledevice/lockdown.h>

#define CHUNK (1u << 20)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(uint8_t *b, size_t n, uint64_t i)
{
	uint64_t x = 0x243f6a8885a308d3ull ^ (i + 1) * 0x9e3779b97f4a7c15ull;

	for (size_t k = 0; k < n; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[k] = (uint8_t)x;
	}
}

static int die(const char *what, int code)
{
	fprintf(stderr, "lab_afc: %s failed (%d)\n", what, code);
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = "/lab-afc-throughput.tmp";
	idevice_t dev = NULL;
	lockdownd_client_t ld = NULL;
	lockdownd_service_descriptor_t svc = NULL;
	afc_client_t afc = NULL;
	uint8_t *out = malloc(CHUNK), *in = malloc(CHUNK);
	uint64_t total, h = 0;
	double t0, tw = 0, tr = 0;
	int rc = 0;

	if (argc != 3 || !out || !in) {
		fprintf(stderr, "usage: lab_afc UDID MIB\n");
		return 2;
	}
	total = strtoull(argv[2], NULL, 10) << 20;
	if (idevice_new_with_options(&dev, argv[1], IDEVICE_LOOKUP_USBMUX) != IDEVICE_E_SUCCESS)
		return die("idevice_new", 0);
	if ((rc = lockdownd_client_new_with_handshake(dev, &ld, "lab_afc")) != LOCKDOWN_E_SUCCESS)
		return die("lockdownd handshake", rc);
	if ((rc = lockdownd_start_service(ld, "com.apple.afc", &svc)) != LOCKDOWN_E_SUCCESS)
		return die("StartService com.apple.afc", rc);
	if ((rc = afc_client_new(dev, svc, &afc)) != AFC_E_SUCCESS)
		return die("afc_client_new", rc);

	if ((rc = afc_file_open(afc, path, AFC_FOPEN_WRONLY, &h)) != AFC_E_SUCCESS)
		return die("open for writing", rc);
	for (uint64_t i = 0, off = 0; off < total; i++, off += CHUNK) {
		uint32_t n = (uint32_t)(total - off < CHUNK ? total - off : CHUNK), wrote = 0;
		fill(out, n, i);
		t0 = now_s();
		if ((rc = afc_file_write(afc, h, (const char *)out, n, &wrote)) != AFC_E_SUCCESS ||
		    wrote != n)
			return die("write", rc);
		tw += now_s() - t0;
	}
	afc_file_close(afc, h);
	if ((rc = afc_file_open(afc, path, AFC_FOPEN_RDONLY, &h)) != AFC_E_SUCCESS)
		return die("open for reading", rc);
	for (uint64_t i = 0, off = 0; off < total; i++, off += CHUNK) {
		uint32_t n = (uint32_t)(total - off < CHUNK ? total - off : CHUNK), have = 0;
		t0 = now_s();
		while (have < n) {
			uint32_t got = 0;
			if ((rc = afc_file_read(afc, h, (char *)in + have, n - have, &got)) !=
				    AFC_E_SUCCESS ||
			    got == 0)
				return die("read", rc);
			have += got;
		}
		tr += now_s() - t0;
		fill(out, n, i);
		if (memcmp(in, out, n) != 0) {
			fprintf(stderr, "lab_afc: data differs in MiB %llu\n",
				(unsigned long long)i);
			rc = -1;
			break;
		}
	}
	afc_file_close(afc, h);
	afc_remove_path(afc, path);
	printf("write_mbps=%.2f read_mbps=%.2f bytes=%llu\n", tw > 0 ? (double)total / tw / 1e6 : 0,
	       tr > 0 ? (double)total / tr / 1e6 : 0, (unsigned long long)total);
	afc_client_free(afc);
	lockdownd_service_descriptor_free(svc);
	lockdownd_client_free(ld);
	idevice_free(dev);
	free(out);
	free(in);
	return rc == -1 ? 1 : 0;
}
