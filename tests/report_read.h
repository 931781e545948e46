/*
 * report_read.h - reading what `kaf report` wrote, for the report's
 * tests: files of an output directory, fields of its CSV tables, a
 * database's analysis. Each reader fails the running cmocka test when
 * what it reads is missing; strings it returns are the caller's to free.
 */
#ifndef KAF_REPORT_READ_H
#define KAF_REPORT_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "analysis.h"

/* The whole file dir/name; fails the test if it was not written. */
char *read_out(const char *dir, const char *name);

/* Whether dir/name exists. */
bool exists(const char *dir, const char *name);

/*
 * Field col of line row (0 = header) of a CSV without quoted fields into
 * out; false if the line or the field is absent.
 */
bool csv_field(const char *csv, int row, int col, char *out, size_t size);

/* Data lines of a CSV: its lines after the header. */
int csv_rows(const char *csv);

/* The analysis of the latest sweep in db; fails the test if it fails. */
struct kaf_analysis *load(const char *db);

#endif
