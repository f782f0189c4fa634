/* rules.h - the rules that turn evidence into a verdict, written once for
 * every command and for the capture analyzer: an error from a stage, the
 * device's USB mode, the end of a cable test.
 *
 * A live run and `analyze` on its capture must reach the same verdict from
 * the same facts, so neither side decides a verdict on its own: both hand
 * their facts to these functions (tests/t/65-parity.t holds them to it). */
#ifndef LP_DIAG_RULES_H
#define LP_DIAG_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "src/diag/diag.h"

/* The verdict an lp_err implies when it ends a stage after the device was
 * found: USB transfer errors, the device leaving the bus, permissions, a
 * held interface, TLS, and each lockdown refusal (PasswordProtected is
 * LOCKED in whatever stage it is answered). Errors that are this host's own
 * (out of memory, a bad argument, a key that does not load) are
 * DIAG_V_NONE: linkprobe could not finish, and nothing is blamed on the
 * device or the cable. */
enum diag_verdict diag_verdict_for_err(int err);

#endif
