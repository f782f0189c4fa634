/* plist_depth.h - refuse over-nested plists before libplist sees them.
 *
 * libplist 2.2 parses binary plists and frees every plist recursively, with no
 * depth limit: 100 000 nested arrays (a 900 KB bplist) overflow the stack while
 * parsing, 200 000 nested XML <array>s while freeing. Both fit under
 * LKD_MAX_MESSAGE. Real lockdown messages, pair records and usbmuxd replies are
 * a few containers deep, so every plist from untrusted bytes is first scanned
 * here, iteratively and with bounds checks, and refused if it nests deeper than
 * LKD_MAX_DEPTH containers. A binary plist whose shared references would make
 * libplist build more than LKD_MAX_NODES objects (a "billion laughs" DAG) is
 * refused too, and so is a binary string with a NUL character in it (libplist
 * keeps the length of a UTF-16 one, later compares it with strlen() in an
 * assert(), and aborts; its XML parser measures strings with strlen()).
 * lkd_plist_decode() (proto/lockdown_frame.h) calls this, and every plist
 * entry point (lockdown framer, usbmuxd client, pair records,
 * analyzer, replay and simulated device) decodes through it.
 */
#ifndef LP_PLIST_DEPTH_H
#define LP_PLIST_DEPTH_H

#include <stddef.h>
#include <stdint.h>

/* Containers (dict/array) inside one another, the outermost counting 1. The
 * deepest message seen from a real device (GetValue of a whole domain) is 4. */
#define LKD_MAX_DEPTH 32
/* Objects a binary plist may expand to once shared references are copied. */
#define LKD_MAX_NODES (1u << 20)

/* Scan `len` bytes (borrowed) of "bplist00" or XML plist. 0 if nested at most
 * max_depth containers deep; LP_ETOOBIG if deeper, or if a binary plist
 * expands to more than LKD_MAX_NODES objects; LP_EPLIST if a binary plist has
 * a reference cycle or an offset or container that points outside its object
 * area (libplist refuses those too), or a string holding a NUL character
 * (libplist 2.2 aborts on an assertion when such a key or string is read).
 * XML is only scanned for element nesting (the plist wrapper and a leaf
 * element are allowed on top of max_depth); its validity is libplist's to
 * judge. */
int lkd_plist_check_depth(const uint8_t *body, size_t len, unsigned max_depth);

#endif
