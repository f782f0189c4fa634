/* lp_log.c - format and hand to the sink. */
#include "src/base/lp_log.h"

#include <stdarg.h>
#include <stdio.h>

void lp_logf(const struct lp_log *log, enum lp_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!log || !log->sink || level > log->max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log->sink(log->ud, level, msg);
}
