/*
 * report_read.c - reading what `kaf report` wrote; see report_read.h.
 */
#include "report_read.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "report_fixture.h"

char *read_out(const char *dir, const char *name)
{
	char path[1024];
	char *s;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	s = fixture_slurp(path);
	if (!s)
		fail_msg("%s was not written", path);
	return s;
}

bool exists(const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

bool csv_field(const char *csv, int row, int col, char *out, size_t size)
{
	const char *line = csv;

	for (int r = 0; r < row && line; r++) {
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (!line || !*line)
		return false;
	for (int c = 0; c < col; c++) {
		line += strcspn(line, ",\n");
		if (*line != ',')
			return false;
		line++;
	}
	snprintf(out, size, "%.*s", (int)strcspn(line, ",\n"), line);
	return true;
}

int csv_rows(const char *csv)
{
	int n = 0;

	for (const char *p = csv; *p; p++)
		n += *p == '\n';
	return n - 1;
}

struct kaf_analysis *load(const char *db)
{
	struct kaf_analysis *an = NULL;
	struct kaf_error err = {""};

	if (kaf_analysis_load(db, 0, &an, &err))
		fail_msg("loading %s failed: %s", db, err.msg);
	return an;
}
