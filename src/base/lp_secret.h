/* lp_secret.h - the one list of plist keys whose values are secrets.
 *
 * A pair record (doc/protocol.md 5) holds two private keys, the simulated
 * iPhone's state file a third, and the Pair reply (4.7) and StartService
 * (4.3) carry the EscrowBag, which unlocks the device's keybag. Every place
 * that must keep these out of sight uses this list and nothing else:
 *   - redaction of captured payloads   (src/capture/cap_tap.c)
 *   - wiping of decoded plists         (proto/pair_record.c,
 *                                       pair_plist_wipe_secrets)
 *   - logging of lockdown messages     (proto/pair_record.c,
 *                                       pair_plist_redact_secrets, used by
 *                                       the lockdown client's observer)
 * tests/unit/test_secrets.c checks that the three treat every key alike.
 * Adding a key here is all it takes to cover it everywhere. */
#ifndef LP_SECRET_H
#define LP_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* The keys, NULL-terminated. */
extern const char *const lp_secret_keys[];

/* Number of keys in lp_secret_keys (without the NULL). */
size_t lp_secret_key_count(void);

/* True if the `len` bytes at `name` (not NUL-terminated) spell a secret key
 * exactly. */
bool lp_secret_key_match(const char *name, size_t len);

#endif
