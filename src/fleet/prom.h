/* prom.h - the watch registry (src/fleet/watch.h) as a Prometheus text
 * exposition file, for node_exporter's textfile collector (one watch per
 * host, scraped centrally; README "Watching a fleet").
 *
 * Format: Prometheus text exposition format 0.0.4 - "# HELP" and "# TYPE"
 * lines before each metric family, one sample per line, label values
 * escaped (backslash, double quote, newline). Per-phone families carry the
 * labels udid, port_path and product_type. The file is replaced atomically
 * (a temporary name in the same directory not ending in .prom, fsync,
 * rename), so the collector never reads half a file; mode 0644, so the
 * collector's user can read it. */
#ifndef LP_PROM_H
#define LP_PROM_H

#include <stdbool.h>

#include "src/base/lp_error.h"
#include "src/fleet/watch.h"

/* Write the registry to `path`. `running` is the value of linkprobe_watch_up
 * (0 in the file written when the watch stops). */
int prom_write(const struct watch *w, const char *path, bool running, struct lp_errinfo *e);

#endif
