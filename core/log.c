#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum kaf_log_level max_level = KAF_LOG_INFO;

static const char *const level_names[] = {
	[KAF_LOG_ERROR] = "error",
	[KAF_LOG_WARN] = "warning",
	[KAF_LOG_INFO] = "info",
	[KAF_LOG_DEBUG] = "debug",
};

void kaf_log_set_level(enum kaf_log_level level)
{
	max_level = level;
}

void kaf_log(enum kaf_log_level level, const char *fmt, ...)
{
	char msg[1024];
	char stamp[16];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level > max_level)
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s kaf %s: %s\n", stamp, level_names[level], msg);
}
