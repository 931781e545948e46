#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int kaf_error_set(struct kaf_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}
