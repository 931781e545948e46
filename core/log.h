/*
 * log.h - levelled diagnostics on standard error.
 *
 * Standard output carries results only; everything meant for a person
 * watching (progress, warnings, errors) goes through here, prefixed with
 * the local time and the level. The level is process-wide and set once
 * from main() before threads start; logging itself is thread-safe because
 * each message is written with a single fprintf.
 */
#ifndef KAF_LOG_H
#define KAF_LOG_H

enum kaf_log_level {
	KAF_LOG_ERROR,
	KAF_LOG_WARN,
	KAF_LOG_INFO,
	KAF_LOG_DEBUG,
};

void kaf_log_set_level(enum kaf_log_level level);

void kaf_log(enum kaf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define kaf_log_error(...) kaf_log(KAF_LOG_ERROR, __VA_ARGS__)
#define kaf_log_warn(...) kaf_log(KAF_LOG_WARN, __VA_ARGS__)
#define kaf_log_info(...) kaf_log(KAF_LOG_INFO, __VA_ARGS__)

#endif
