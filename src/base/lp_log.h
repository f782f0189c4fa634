/* lp_log.h - logging through a sink handed in by src/. Lower layers never
 * print: they call lp_logf() on the lp_log they were given (which may be
 * NULL: then nothing happens). Messages must never contain private keys or
 * EscrowBag bytes. */
#ifndef LP_LOG_H
#define LP_LOG_H

enum lp_log_level {
	LP_LOG_ERROR = 0,
	LP_LOG_WARN = 1,
	LP_LOG_INFO = 2,
	LP_LOG_DEBUG = 3,
	LP_LOG_TRACE = 4,
};

struct lp_log {
	void (*sink)(void *ud, enum lp_log_level level, const char *msg);
	void *ud;
	enum lp_log_level max; /* messages above this level are dropped */
};

void lp_logf(const struct lp_log *log, enum lp_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
