/* test_pair_record.c - pair record files: round trip, format, hostile files,
 * atomic writes, SystemConfiguration.plist. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/pair_cert.h"
#include "proto/pair_store.h"
#include "src/base/lp_error.h"

#define UDID "00008030-001A2B3C4D5E802E"

struct fixture {
	char dir[64];
	struct pair_record *rec; /* complete, with udid */
};

static void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static struct pair_record *make_record(void)
{
	EVP_PKEY *k = NULL;
	uint8_t *pub = NULL;
	size_t len = 0;
	struct pair_creds c = {0};
	struct pair_record *rec = pair_record_new();

	assert_int_equal(pair_device_key_generate(&k, &pub, &len), 0);
	assert_int_equal(pair_creds_generate(pub, len, &c, NULL), 0);
	pair_record_adopt_creds(rec, &c);
	assert_null(c.host_key.data);
	assert_int_equal(pair_record_set_str(&rec->host_id, "11111111-2222-4333-8444-555555555555"),
			 0);
	assert_int_equal(
		pair_record_set_str(&rec->system_buid, "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"), 0);
	assert_int_equal(pair_record_set_str(&rec->wifi_mac_address, "aa:bb:cc:dd:ee:ff"), 0);
	assert_int_equal(pair_record_set_blob(&rec->escrow_bag, "\x00\x01escrow\xff", 9), 0);
	assert_int_equal(pair_record_set_str(&rec->udid, UDID), 0);
	EVP_PKEY_free(k);
	free(pub);
	return rec;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/lp-pairrec-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fx->rec = make_record();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	rm_rf(fx->dir);
	pair_record_free(fx->rec);
	free(fx);
	return 0;
}

static void blob_eq(const struct pair_blob *a, const struct pair_blob *b)
{
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->data, b->data, a->len);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *got = NULL;
	struct lp_errinfo e = {0};
	char path[512], cmd[700];
	struct stat st;

	assert_int_equal(pair_record_save(fx->dir, fx->rec, &e), 0);
	snprintf(path, sizeof(path), "%s/%s.plist", fx->dir, UDID);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(count_entries(fx->dir), 1);

	/* libplist's own tool accepts the file */
	snprintf(cmd, sizeof(cmd), "plistutil -i '%s' -o /dev/null", path);
	assert_int_equal(system(cmd), 0);

	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), 0);
	blob_eq(&got->device_certificate, &fx->rec->device_certificate);
	blob_eq(&got->host_certificate, &fx->rec->host_certificate);
	blob_eq(&got->host_private_key, &fx->rec->host_private_key);
	blob_eq(&got->root_certificate, &fx->rec->root_certificate);
	blob_eq(&got->root_private_key, &fx->rec->root_private_key);
	blob_eq(&got->escrow_bag, &fx->rec->escrow_bag);
	assert_string_equal(got->host_id, fx->rec->host_id);
	assert_string_equal(got->system_buid, fx->rec->system_buid);
	assert_string_equal(got->wifi_mac_address, fx->rec->wifi_mac_address);
	assert_string_equal(got->udid, UDID);
	assert_int_equal(pair_record_verify(got, &e), 0);

	/* the private keys on disk load in OpenSSL */
	EVP_PKEY *k = pair_load_key(got->host_private_key.data, got->host_private_key.len);
	assert_non_null(k);
	EVP_PKEY_free(k);
	k = pair_load_key(got->root_private_key.data, got->root_private_key.len);
	assert_non_null(k);
	EVP_PKEY_free(k);
	pair_record_free(got);
}

static void test_file_has_nine_keys(void **state)
{
	struct fixture *fx = *state;
	static const char *const keys[] = {
		"DeviceCertificate", "HostCertificate", "HostPrivateKey",
		"RootCertificate",   "RootPrivateKey",	"HostID",
		"SystemBUID",	     "EscrowBag",	"WiFiMACAddress"};
	static const plist_type types[] = {PLIST_DATA,	 PLIST_DATA, PLIST_DATA,
					   PLIST_DATA,	 PLIST_DATA, PLIST_STRING,
					   PLIST_STRING, PLIST_DATA, PLIST_STRING};
	char path[512];
	FILE *f;
	char *buf = calloc(1, 1 << 16);
	size_t n;
	plist_t d = NULL;

	assert_int_equal(pair_record_save(fx->dir, fx->rec, NULL), 0);
	snprintf(path, sizeof(path), "%s/%s.plist", fx->dir, UDID);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, 1 << 16, f);
	fclose(f);
	assert_memory_equal(buf, "<?xml", 5);
	plist_from_xml(buf, (uint32_t)n, &d);
	assert_non_null(d);
	assert_int_equal(plist_dict_get_size(d), 9);
	for (size_t i = 0; i < 9; i++) {
		plist_t v = plist_dict_get_item(d, keys[i]);
		assert_non_null(v);
		assert_int_equal(plist_get_node_type(v), types[i]);
	}
	/* PEM stored without a trailing NUL (doc/protocol.md 5) */
	uint64_t len = 0;
	const char *pem = plist_get_data_ptr(plist_dict_get_item(d, "HostCertificate"), &len);
	assert_true(len > 0);
	assert_int_not_equal(pem[len - 1], '\0');
	plist_free(d);
	free(buf);
}

static void test_pair_request_has_no_keys(void **state)
{
	struct fixture *fx = *state;
	plist_t d = pair_record_to_pair_request(fx->rec);

	assert_non_null(d);
	assert_int_equal(plist_dict_get_size(d), 5);
	assert_non_null(plist_dict_get_item(d, "DeviceCertificate"));
	assert_non_null(plist_dict_get_item(d, "HostCertificate"));
	assert_non_null(plist_dict_get_item(d, "RootCertificate"));
	assert_non_null(plist_dict_get_item(d, "HostID"));
	assert_non_null(plist_dict_get_item(d, "SystemBUID"));
	assert_null(plist_dict_get_item(d, "HostPrivateKey"));
	assert_null(plist_dict_get_item(d, "RootPrivateKey"));
	assert_null(plist_dict_get_item(d, "EscrowBag"));
	plist_free(d);
}

static void test_missing_and_delete(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *got = NULL;
	struct lp_errinfo e = {0};

	assert_int_equal(pair_record_load(fx->dir, "ABCDEF", &got, &e), LP_ENOENT);
	assert_int_equal(pair_record_save(fx->dir, fx->rec, &e), 0);
	assert_int_equal(pair_record_delete(fx->dir, UDID, &e), 0);
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), LP_ENOENT);
	assert_int_equal(pair_record_delete(fx->dir, UDID, &e), LP_ENOENT);
}

static void test_udid_validation(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *got = NULL;
	struct lp_errinfo e = {0};

	assert_true(pair_record_udid_ok(UDID));
	assert_true(pair_record_udid_ok("0123456789abcdef0123456789abcdef01234567"));
	assert_false(pair_record_udid_ok("../../etc/passwd"));
	assert_false(pair_record_udid_ok("abc/def"));
	assert_false(pair_record_udid_ok(".."));
	assert_false(pair_record_udid_ok(""));
	assert_false(pair_record_udid_ok(NULL));
	assert_false(pair_record_udid_ok("SystemConfiguration"));
	assert_int_equal(pair_record_load(fx->dir, "../x", &got, &e), LP_EINVAL);
	assert_int_equal(pair_record_delete(fx->dir, "..", &e), LP_EINVAL);
}

static void test_creates_dir_0700(void **state)
{
	struct fixture *fx = *state;
	char sub[128];
	struct stat st;
	char buid[37], buid2[37];

	snprintf(sub, sizeof(sub), "%s/a", fx->dir);
	assert_int_equal(pair_record_save(sub, fx->rec, NULL), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(pair_system_buid(sub, buid, NULL), 0);
	assert_int_equal(pair_record_delete(sub, UDID, NULL), 0);
	assert_int_equal(pair_system_buid(sub, buid2, NULL), 0);
	assert_string_equal(buid, buid2);
	char p[256];
	snprintf(p, sizeof(p), "%s/SystemConfiguration.plist", sub);
	unlink(p);
	rmdir(sub);
}

/* Can uid/gid `id` open `path` for reading? (a child that drops to it) */
static bool readable_as(const char *path, uid_t id)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		if (setgid(id) || setuid(id))
			_exit(2);
		FILE *f = fopen(path, "rb");
		_exit(f ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Run as root (sudo, or udev-started tools) into a directory another user
 * owns - usbmuxd's /var/lib/lockdown, usbmux:usbmux 02775: the daemon reads
 * records as that user. Records stay 0600 but belong to the directory's
 * owner and group, or usbmuxd cannot read them ("Failed to read
 * .../<UDID>.plist") nor rewrite SystemConfiguration.plist. */
static void test_files_owned_by_dir_owner(void **state)
{
	struct fixture *fx = *state;
	const uid_t nobody = 65534;
	char sub[128], rec[256], conf[256];
	char buid[37];
	struct stat st;

	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(fx->dir, 0711), 0); /* the other user may pass through */
	snprintf(sub, sizeof(sub), "%s/usbmux", fx->dir);
	assert_int_equal(mkdir(sub, 0775), 0);
	assert_int_equal(chown(sub, nobody, nobody), 0);
	assert_int_equal(chmod(sub, 02775), 0);
	assert_int_equal(pair_system_buid(sub, buid, NULL), 0);
	assert_int_equal(pair_record_save(sub, fx->rec, NULL), 0);
	snprintf(rec, sizeof(rec), "%s/%s.plist", sub, UDID);
	snprintf(conf, sizeof(conf), "%s/SystemConfiguration.plist", sub);
	assert_int_equal(stat(rec, &st), 0);
	assert_int_equal(st.st_uid, nobody);
	assert_int_equal(st.st_gid, nobody);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(conf, &st), 0);
	assert_int_equal(st.st_uid, nobody);
	assert_int_equal(st.st_gid, nobody);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true(readable_as(rec, nobody));
	assert_true(readable_as(conf, nobody));
	/* replaced (a second pairing): still the daemon's */
	assert_int_equal(pair_record_save(sub, fx->rec, NULL), 0);
	assert_int_equal(stat(rec, &st), 0);
	assert_int_equal(st.st_uid, nobody);
	/* the write probe leaves nothing behind */
	assert_int_equal(pair_store_check_writable(sub, NULL), 0);
	assert_int_equal(count_entries(sub), 2);

	/* a directory of root's own: root's files, as before */
	assert_int_equal(pair_record_save(fx->dir, fx->rec, NULL), 0);
	snprintf(rec, sizeof(rec), "%s/%s.plist", fx->dir, UDID);
	assert_int_equal(stat(rec, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_false(readable_as(rec, nobody));
	unlink(rec);
	rm_rf(sub);
	rmdir(sub);
}

static void test_system_buid(void **state)
{
	struct fixture *fx = *state;
	char a[37], b[37], path[512], cmd[700];
	struct lp_errinfo e = {0};
	static const char theirs[] =
		"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
		"<key>SystemBUID</key><string>12345678-ABCD-ABCD-ABCD-123456789ABC</string>"
		"</dict></plist>";

	assert_int_equal(pair_system_buid(fx->dir, a, &e), 0);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(pair_system_buid(fx->dir, b, &e), 0);
	assert_string_equal(a, b); /* stable across calls */
	snprintf(path, sizeof(path), "%s/SystemConfiguration.plist", fx->dir);
	snprintf(cmd, sizeof(cmd), "plistutil -i '%s' -o /dev/null", path);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(count_entries(fx->dir), 1);

	/* one written by usbmuxd is honoured */
	write_file(fx->dir, "SystemConfiguration.plist", theirs, sizeof(theirs) - 1);
	assert_int_equal(pair_system_buid(fx->dir, a, &e), 0);
	assert_string_equal(a, "12345678-ABCD-ABCD-ABCD-123456789ABC");

	/* a broken one is reported, not silently replaced */
	write_file(fx->dir, "SystemConfiguration.plist", "garbage", 7);
	assert_int_equal(pair_system_buid(fx->dir, a, &e), LP_EPLIST);
	assert_non_null(strstr(e.msg, "SystemConfiguration.plist"));
	unlink(path);
}

/* --- hostile files --------------------------------------------------------- */

static void load_expect(struct fixture *fx, const void *data, size_t len, int want,
			const char *needle)
{
	struct pair_record *got = NULL;
	struct lp_errinfo e = {0};

	write_file(fx->dir, UDID ".plist", data, len);
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), want);
	assert_null(got);
	assert_int_equal(e.code, want);
	if (needle && !strstr(e.msg, needle))
		fail_msg("error message \"%s\" lacks \"%s\"", e.msg, needle);
}

/* The good record with one key changed: value NULL removes it. */
static char *mutated(struct fixture *fx, const char *key, plist_t value, uint32_t *len)
{
	plist_t d = pair_record_to_plist(fx->rec);
	char *xml = NULL;

	if (value)
		plist_dict_set_item(d, key, value);
	else
		plist_dict_remove_item(d, key);
	plist_to_xml(d, &xml, len);
	plist_free(d);
	return xml;
}

static void test_hostile_files(void **state)
{
	struct fixture *fx = *state;
	static const char *const required[] = {
		"DeviceCertificate", "HostCertificate", "HostPrivateKey", "RootCertificate",
		"RootPrivateKey",    "HostID",		"SystemBUID"};
	uint32_t len;
	char *x;

	/* too big: refused from the size, before parsing */
	char *big = malloc(PAIR_RECORD_MAX_FILE + 1);
	memset(big, ' ', PAIR_RECORD_MAX_FILE + 1);
	load_expect(fx, big, PAIR_RECORD_MAX_FILE + 1, LP_ETOOBIG, "cap");
	free(big);

	load_expect(fx, "not a plist", 11, LP_EPLIST, "property list");
	load_expect(fx, "", 0, LP_EPLIST, NULL);
	static const char arr[] = "<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>";
	load_expect(fx, arr, sizeof(arr) - 1, LP_EPLIST, "dictionary");

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char want[64];

		x = mutated(fx, required[i], NULL, &len);
		snprintf(want, sizeof(want), "%s missing", required[i]);
		load_expect(fx, x, len, LP_EBADMSG, want);
		plist_to_xml_free(x);
	}
	x = mutated(fx, "HostID", plist_new_uint(7), &len);
	load_expect(fx, x, len, LP_EBADMSG, "HostID is integer, expected string");
	plist_to_xml_free(x);
	x = mutated(fx, "HostPrivateKey", plist_new_string("-----BEGIN"), &len);
	load_expect(fx, x, len, LP_EBADMSG, "HostPrivateKey is string, expected data");
	plist_to_xml_free(x);
	x = mutated(fx, "EscrowBag", plist_new_dict(), &len);
	load_expect(fx, x, len, LP_EBADMSG, "EscrowBag");
	plist_to_xml_free(x);
	x = mutated(fx, "SystemBUID", plist_new_string("caf\xc3\xa9"), &len);
	load_expect(fx, x, len, LP_EBADMSG, "SystemBUID");
	plist_to_xml_free(x);
	char *huge = calloc(1, PAIR_MAX_PEM + 2);
	x = mutated(fx, "RootCertificate", plist_new_data(huge, PAIR_MAX_PEM + 1), &len);
	load_expect(fx, x, len, LP_ETOOBIG, "RootCertificate");
	plist_to_xml_free(x);
	free(huge);

	/* optional keys may be absent; a binary plist loads too */
	plist_t d = pair_record_to_plist(fx->rec);
	plist_dict_remove_item(d, "EscrowBag");
	plist_dict_remove_item(d, "WiFiMACAddress");
	x = NULL; /* libplist 2.2 refuses to write into a non-NULL pointer */
	plist_to_bin(d, &x, &len);
	plist_free(d);
	struct pair_record *got = NULL;
	write_file(fx->dir, UDID ".plist", x, len);
	plist_to_bin_free(x);
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, NULL), 0);
	assert_null(got->wifi_mac_address);
	assert_int_equal(got->escrow_bag.len, 0);
	pair_record_free(got);

	/* a directory where the file should be: the host cannot read it
	 * (an access error, LP_EIO), not a damaged record (LP_EBADMSG) */
	char p[512];
	unlink(strcat(strcpy(p, fx->dir), "/" UDID ".plist"));
	assert_int_equal(mkdir(p, 0700), 0);
	struct lp_errinfo e = {0};
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), LP_EIO);
	assert_non_null(strstr(e.msg, "is not a regular file (a directory)"));
	rmdir(p);
	/* a directory whose path runs through a file: ENOTDIR, named */
	assert_int_equal(
		pair_record_load(strcat(strcpy(p, fx->dir), "/" UDID ".plist"), UDID, &got, &e),
		LP_ENOENT);
	write_file(fx->dir, "afile", "x", 1);
	assert_int_equal(pair_record_load(strcat(strcpy(p, fx->dir), "/afile"), UDID, &got, &e),
			 LP_EIO);
	assert_non_null(strstr(e.msg, "(ENOTDIR)"));
	assert_int_equal(pair_store_check_writable(p, &e), LP_EIO);
	assert_non_null(strstr(e.msg, "is not a directory (ENOTDIR)"));
	/* a writable directory passes the check and keeps no probe file */
	assert_int_equal(pair_store_check_writable(fx->dir, &e), 0);
	assert_int_equal(access(strcat(strcpy(p, fx->dir), "/.linkprobe-write-check"), F_OK), -1);
}

static void test_verify_detects_foreign_cert(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *other = make_record();
	struct lp_errinfo e = {0};

	assert_int_equal(pair_record_verify(fx->rec, &e), 0);
	/* swap in a host certificate from another pairing */
	struct pair_blob saved = fx->rec->host_certificate;
	fx->rec->host_certificate = other->host_certificate;
	assert_int_equal(pair_record_verify(fx->rec, &e), LP_ECRYPTO);
	assert_non_null(strstr(e.msg, "HostPrivateKey does not match"));
	fx->rec->host_certificate = saved;
	pair_record_free(other);
}

/* A write that fails half way (file size limit -> EFBIG) leaves the old
 * record intact and no temporary file behind. */
static void test_failed_write_keeps_old(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *got = NULL, *newer = make_record();
	struct lp_errinfo e = {0};
	struct rlimit old, lim;

	assert_int_equal(pair_record_save(fx->dir, fx->rec, &e), 0);
	assert_int_equal(count_entries(fx->dir), 1);
	assert_int_equal(pair_record_set_str(&newer->host_id, "NEWER"), 0);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int r = pair_record_save(fx->dir, newer, &e);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	assert_int_not_equal(r, 0);
	assert_non_null(strstr(e.msg, "cannot write"));
	assert_int_equal(count_entries(fx->dir), 1); /* no temp file left */
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), 0);
	assert_string_equal(got->host_id, fx->rec->host_id);
	pair_record_free(got);

	/* and a successful save replaces it */
	assert_int_equal(pair_record_save(fx->dir, newer, &e), 0);
	assert_int_equal(pair_record_load(fx->dir, UDID, &got, &e), 0);
	assert_string_equal(got->host_id, "NEWER");
	assert_int_equal(count_entries(fx->dir), 1);
	pair_record_free(got);
	pair_record_free(newer);
}

static void test_incomplete_record_not_saved(void **state)
{
	struct fixture *fx = *state;
	struct pair_record *rec = pair_record_new();
	struct lp_errinfo e = {0};

	assert_int_equal(pair_record_set_str(&rec->udid, "ABCDEF"), 0);
	assert_int_equal(pair_record_save(fx->dir, rec, &e), LP_EINVAL);
	assert_null(pair_record_to_pair_request(rec));
	pair_record_free(rec);
	assert_int_equal(count_entries(fx->dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_has_nine_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pair_request_has_no_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udid_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_creates_dir_0700, setup, teardown),
		cmocka_unit_test_setup_teardown(test_system_buid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_owned_by_dir_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_detects_foreign_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_keeps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incomplete_record_not_saved, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
