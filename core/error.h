/*
 * error.h - error codes and the caller-supplied error record.
 *
 * Every fallible function in kaf returns an int: 0 on success or a negative
 * KAF_E* code, and fills a struct kaf_error with one human sentence that
 * names the bad value and where it came from (file and line, flag, axis).
 * The record is plain memory owned by the caller; nothing is allocated.
 * Thread-safe as long as each thread uses its own record.
 */
#ifndef KAF_ERROR_H
#define KAF_ERROR_H

#include <stddef.h>

enum {
	KAF_OK = 0,
	KAF_EINVAL = -1,   /* bad user input: flag, value, spec, CSV cell */
	KAF_ENOMEM = -2,   /* allocation failed */
	KAF_EIO = -3,      /* file could not be read or written */
	KAF_EDB = -4,      /* SQLite refused, or not a kaf database */
	KAF_EINTR = -5,    /* stopped by a signal; finished work is kept */
};

#define KAF_ERROR_MAX 512

struct kaf_error {
	char msg[KAF_ERROR_MAX];
};

/* Format a message into err (if err is not NULL) and return code. */
int kaf_error_set(struct kaf_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
