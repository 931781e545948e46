/*
 * test_data.c - the CSV parser and the built-in datasets.
 *
 * Error cases compare whole messages: each malformed input must say what
 * is wrong and on which line, so a vague message is a failing test.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"


struct builtin_expect {
	const char *name;
	int n, d, e;
	enum kaf_task task;
	const char *first_feature;
	double x00;            /* first row, first feature */
	double y0;             /* first row's target value (class or MEDV) */
	int counts[10];        /* rows per class, classification only */
};

static const struct builtin_expect iris = {
	"iris", 150, 4, 3, KAF_TASK_CLASSIFICATION, "sepal length (cm)",
	5.1, 0, { 50, 50, 50 },
};
static const struct builtin_expect digits = {
	"digits", 1797, 64, 10, KAF_TASK_CLASSIFICATION, "pixel_0_0", 0, 0,
	{ 178, 182, 177, 183, 181, 182, 181, 179, 174, 180 },
};
static const struct builtin_expect wine = {
	"wine", 178, 13, 3, KAF_TASK_CLASSIFICATION, "alcohol", 14.23, 0,
	{ 59, 71, 48 },
};
static const struct builtin_expect boston = {
	"boston", 506, 13, 1, KAF_TASK_REGRESSION, "CRIM", 0.00632, 24,
	{ 0 },
};
static const struct builtin_expect breast_cancer = {
	"breast_cancer", 569, 30, 2, KAF_TASK_CLASSIFICATION, "mean radius",
	17.99, 0, { 212, 357 },
};

/*
 * Cells are decimal text converted once by strtod, so parsing must give
 * the same double bit for bit; no tolerance. (cmocka 1.1 compares only
 * floats, which would hide a wrong last digit.)
 */
static void expect_exact(double got, double want)
{
	if (got != want)
		fail_msg("got %.17g, want %.17g", got, want);
}

static int parse(const char *text, enum kaf_task task,
		 struct kaf_dataset **ds, struct kaf_error *err)
{
	return kaf_dataset_parse_csv(text, strlen(text), "data.csv", "target",
				     task, ds, err);
}

static void expect_invalid(const char *text, enum kaf_task task,
			   const char *msg)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	assert_int_equal(parse(text, task, &ds, &err), KAF_EINVAL);
	assert_null(ds);
	assert_string_equal(err.msg, msg);
}

static void check_class_counts(const struct kaf_dataset *ds,
			       const int *counts)
{
	int seen[10] = { 0 };
	int i, k;

	assert_true(ds->e <= 10);
	for (i = 0; i < ds->n; i++) {
		assert_in_range(ds->label[i], 0, ds->e - 1);
		seen[ds->label[i]]++;
		for (k = 0; k < ds->e; k++)
			expect_exact(ds->y[i * ds->e + k],
					    k == ds->label[i]);
	}
	for (k = 0; k < ds->e; k++)
		assert_int_equal(seen[k], counts[k]);
}

static void check_builtin(const struct builtin_expect *want)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	assert_int_equal(kaf_dataset_builtin(want->name, &ds, &err), 0);
	assert_string_equal(ds->name, want->name);
	assert_int_equal(ds->n, want->n);
	assert_int_equal(ds->d, want->d);
	assert_int_equal(ds->e, want->e);
	assert_int_equal(ds->task, want->task);
	assert_string_equal(ds->feature_names[0], want->first_feature);
	assert_string_equal(ds->target_name, "target");
	expect_exact(ds->x[0], want->x00);
	if (want->task == KAF_TASK_REGRESSION) {
		assert_null(ds->label);
		expect_exact(ds->y[0], want->y0);
	} else {
		assert_int_equal(ds->label[0], (int)want->y0);
		check_class_counts(ds, want->counts);
	}
	kaf_dataset_destroy(ds);
}

/* ---- built-in sets ---- */

static void test_builtin_iris_loads(void **state)
{
	(void)state;
	check_builtin(&iris);
}

static void test_builtin_digits_loads(void **state)
{
	(void)state;
	check_builtin(&digits);
}

static void test_builtin_wine_loads(void **state)
{
	(void)state;
	check_builtin(&wine);
}

static void test_builtin_boston_loads(void **state)
{
	(void)state;
	check_builtin(&boston);
}

static void test_builtin_breast_cancer_loads(void **state)
{
	(void)state;
	check_builtin(&breast_cancer);
}

static void test_builtin_unknown_lists_names(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(kaf_dataset_builtin("mnist", &ds, &err), KAF_EINVAL);
	assert_null(ds);
	assert_string_equal(err.msg, "unknown dataset \"mnist\" (built-in: "
			    "iris, digits, wine, boston, breast_cancer)");
}

static void test_builtin_names_in_protocol_order(void **state)
{
	static const char *const names[] = {
		"iris", "digits", "wine", "boston", "breast_cancer",
	};
	int i;

	(void)state;
	assert_int_equal(kaf_dataset_builtin_count(), 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(kaf_dataset_builtin_name(i), names[i]);
	assert_null(kaf_dataset_builtin_name(5));
	assert_null(kaf_dataset_builtin_name(-1));
}

static void test_builtin_hidden_widths(void **state)
{
	(void)state;
	assert_int_equal(kaf_dataset_builtin_hidden("iris"), 4);
	assert_int_equal(kaf_dataset_builtin_hidden("digits"), 100);
	assert_int_equal(kaf_dataset_builtin_hidden("wine"), 40);
	assert_int_equal(kaf_dataset_builtin_hidden("boston"), 20);
	assert_int_equal(kaf_dataset_builtin_hidden("breast_cancer"), 30);
	assert_int_equal(kaf_dataset_builtin_hidden("mnist"), 0);
	assert_int_equal(kaf_dataset_builtin_hidden(NULL), 0);
}

/* ---- well-formed CSV ---- */

static void test_parse_labels_remapped(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };
	static const double y[] = { 1, 0, 0, 1, 1, 0 };
	int i;

	(void)state;
	assert_int_equal(parse("a,target\n1,3\n2,7\n3,3\n",
			       KAF_TASK_CLASSIFICATION, &ds, &err), 0);
	assert_int_equal(ds->n, 3);
	assert_int_equal(ds->e, 2);
	assert_int_equal(ds->label[0], 0);
	assert_int_equal(ds->label[1], 1);
	assert_int_equal(ds->label[2], 0);
	for (i = 0; i < 6; i++)
		expect_exact(ds->y[i], y[i]);
	kaf_dataset_destroy(ds);
}

static void test_parse_integral_decimal_labels(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(parse("a,target\n1,2.0\n2,-1\n3,2\n",
			       KAF_TASK_CLASSIFICATION, &ds, &err), 0);
	assert_int_equal(ds->e, 2);
	assert_int_equal(ds->label[0], 1);
	assert_int_equal(ds->label[1], 0);
	assert_int_equal(ds->label[2], 1);
	kaf_dataset_destroy(ds);
}

static void test_parse_crlf_lines(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(parse("a,b,target\r\n1,2,0\r\n3,4,1\r\n",
			       KAF_TASK_CLASSIFICATION, &ds, &err), 0);
	assert_int_equal(ds->n, 2);
	assert_int_equal(ds->d, 2);
	assert_string_equal(ds->feature_names[1], "b");
	assert_string_equal(ds->target_name, "target");
	expect_exact(ds->x[3], 4);
	assert_int_equal(ds->label[1], 1);
	kaf_dataset_destroy(ds);
}

static void test_parse_target_column_anywhere(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(parse("\"a\", target ,\"c, d\"\n 1 ,0.5,\t2\n3,-4,5",
			       KAF_TASK_REGRESSION, &ds, &err), 0);
	assert_int_equal(ds->n, 2);
	assert_int_equal(ds->d, 2);
	assert_int_equal(ds->e, 1);
	assert_null(ds->label);
	assert_string_equal(ds->feature_names[0], "a");
	assert_string_equal(ds->feature_names[1], "c, d");
	expect_exact(ds->x[1], 2);
	expect_exact(ds->x[2], 3);
	expect_exact(ds->y[0], 0.5);
	expect_exact(ds->y[1], -4);
	kaf_dataset_destroy(ds);
}

static void test_parse_trailing_blank_lines_ignored(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(parse("a,target\n1,0\n2,1\n\n  \r\n\n",
			       KAF_TASK_CLASSIFICATION, &ds, &err), 0);
	assert_int_equal(ds->n, 2);
	kaf_dataset_destroy(ds);
}

static void test_parse_source_becomes_name(void **state)
{
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(parse("a,target\n1,0\n2,1", KAF_TASK_CLASSIFICATION,
			       &ds, &err), 0);
	assert_string_equal(ds->name, "data.csv");
	kaf_dataset_destroy(ds);
}

/* ---- malformed CSV ---- */

static void test_parse_ragged_row_rejected(void **state)
{
	(void)state;
	expect_invalid("a,b,target\n1,2,0\n3,1\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:3: row has 2 cells, header has 3");
	expect_invalid("a,target\n1,0\n2,1,5\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:3: row has 3 cells, header has 2");
}

static void test_parse_non_numeric_cell_rejected(void **state)
{
	(void)state;
	expect_invalid("age,target\n1,0\n2,1\n3,0\nabc,1\n",
		       KAF_TASK_CLASSIFICATION,
		       "data.csv:5: column \"age\": cell \"abc\" is not a "
		       "number");
	expect_invalid("age,target\n1 2,0\n", KAF_TASK_REGRESSION,
		       "data.csv:2: column \"age\": cell \"1 2\" is not a "
		       "number");
}

static void test_parse_empty_cell_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\n1,0\n ,1\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:3: column \"a\": empty cell");
}

static void test_parse_non_finite_cell_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\nnan,0\n", KAF_TASK_REGRESSION,
		       "data.csv:2: column \"a\": cell \"nan\" is not finite");
	expect_invalid("a,target\n1,-inf\n", KAF_TASK_REGRESSION,
		       "data.csv:2: column \"target\": cell \"-inf\" is not "
		       "finite");
	expect_invalid("a,target\n1e999,1\n", KAF_TASK_REGRESSION,
		       "data.csv:2: column \"a\": cell \"1e999\" is not "
		       "finite");
}

static void test_parse_empty_file_rejected(void **state)
{
	(void)state;
	expect_invalid("", KAF_TASK_CLASSIFICATION, "data.csv: file is empty");
	expect_invalid("\n \r\n\n", KAF_TASK_CLASSIFICATION,
		       "data.csv: file is empty");
}

static void test_parse_missing_target_rejected(void **state)
{
	(void)state;
	expect_invalid("a,b,c\n1,2,3\n", KAF_TASK_REGRESSION,
		       "data.csv: no column named \"target\" (columns: a, b, "
		       "c)");
}

static void test_parse_non_integer_label_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\n1,0\n2,1\n3,1.5\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:4: column \"target\": class label \"1.5\" is "
		       "not an integer");
}

static void test_parse_duplicate_column_rejected(void **state)
{
	(void)state;
	expect_invalid("a,b,\"a\",target\n1,2,3,0\n", KAF_TASK_REGRESSION,
		       "data.csv:1: duplicate column name \"a\" (columns 1 and "
		       "3)");
}

static void test_parse_single_class_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\n1,3\n2,3\n", KAF_TASK_CLASSIFICATION,
		       "data.csv: column \"target\" holds one class (label 3); "
		       "classification needs at least two");
}

static void test_parse_no_data_rows_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:2: no data rows after the header");
	expect_invalid("a,target", KAF_TASK_REGRESSION,
		       "data.csv:2: no data rows after the header");
}

static void test_parse_blank_line_inside_rejected(void **state)
{
	(void)state;
	expect_invalid("a,target\n1,0\n\n2,1\n", KAF_TASK_CLASSIFICATION,
		       "data.csv:3: blank line before the end of the data");
}

static void test_parse_bad_header_rejected(void **state)
{
	(void)state;
	expect_invalid("a,,target\n1,2,3\n", KAF_TASK_REGRESSION,
		       "data.csv:1: column 2 has an empty name");
	expect_invalid("a,\"target\n1,2\n", KAF_TASK_REGRESSION,
		       "data.csv:1: column 2: quote not closed");
	expect_invalid("\"a\"x,target\n1,2\n", KAF_TASK_REGRESSION,
		       "data.csv:1: column 1: text after the closing quote");
	expect_invalid("target\n1\n", KAF_TASK_REGRESSION,
		       "data.csv:1: no feature columns besides \"target\"");
}

static void test_parse_too_many_classes_rejected(void **state)
{
	size_t cap = 16 * (KAF_DATA_MAX_CLASSES + 2);
	char *text = malloc(cap);
	char msg[128];
	size_t used;
	int i;

	(void)state;
	assert_non_null(text);
	used = (size_t)snprintf(text, cap, "a,target\n");
	for (i = 0; i <= KAF_DATA_MAX_CLASSES; i++)
		used += (size_t)snprintf(text + used, cap - used, "0,%d\n", i);
	snprintf(msg, sizeof(msg), "data.csv: column \"target\" holds %d "
		 "classes, more than the limit of %d",
		 KAF_DATA_MAX_CLASSES + 1, KAF_DATA_MAX_CLASSES);
	expect_invalid(text, KAF_TASK_CLASSIFICATION, msg);
	free(text);
}

/* ---- files ---- */

static void test_load_reads_file(void **state)
{
	char path[] = "/tmp/kaf_test_data_XXXXXX";
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };
	int fd = mkstemp(path);
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("x,target\n0.25,1\n0.5,0\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(kaf_dataset_load_csv(path, "target",
					      KAF_TASK_CLASSIFICATION, &ds,
					      &err), 0);
	unlink(path);
	assert_string_equal(ds->name, path);
	assert_int_equal(ds->n, 2);
	expect_exact(ds->x[1], 0.5);
	assert_int_equal(ds->label[0], 1);
	kaf_dataset_destroy(ds);
}

static void test_load_missing_file_is_eio(void **state)
{
	const char *path = "/nonexistent/kaf/none.csv";
	struct kaf_dataset *ds = NULL;
	struct kaf_error err = { "" };

	(void)state;
	assert_int_equal(kaf_dataset_load_csv(path, "target",
					      KAF_TASK_REGRESSION, &ds, &err),
			 KAF_EIO);
	assert_null(ds);
	assert_string_equal(err.msg, "/nonexistent/kaf/none.csv: cannot "
			    "open: No such file or directory");
}

static void test_destroy_null_is_noop(void **state)
{
	(void)state;
	kaf_dataset_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_iris_loads),
		cmocka_unit_test(test_builtin_digits_loads),
		cmocka_unit_test(test_builtin_wine_loads),
		cmocka_unit_test(test_builtin_boston_loads),
		cmocka_unit_test(test_builtin_breast_cancer_loads),
		cmocka_unit_test(test_builtin_unknown_lists_names),
		cmocka_unit_test(test_builtin_names_in_protocol_order),
		cmocka_unit_test(test_builtin_hidden_widths),
		cmocka_unit_test(test_parse_labels_remapped),
		cmocka_unit_test(test_parse_integral_decimal_labels),
		cmocka_unit_test(test_parse_crlf_lines),
		cmocka_unit_test(test_parse_target_column_anywhere),
		cmocka_unit_test(test_parse_trailing_blank_lines_ignored),
		cmocka_unit_test(test_parse_source_becomes_name),
		cmocka_unit_test(test_parse_ragged_row_rejected),
		cmocka_unit_test(test_parse_non_numeric_cell_rejected),
		cmocka_unit_test(test_parse_empty_cell_rejected),
		cmocka_unit_test(test_parse_non_finite_cell_rejected),
		cmocka_unit_test(test_parse_empty_file_rejected),
		cmocka_unit_test(test_parse_missing_target_rejected),
		cmocka_unit_test(test_parse_non_integer_label_rejected),
		cmocka_unit_test(test_parse_duplicate_column_rejected),
		cmocka_unit_test(test_parse_single_class_rejected),
		cmocka_unit_test(test_parse_no_data_rows_rejected),
		cmocka_unit_test(test_parse_blank_line_inside_rejected),
		cmocka_unit_test(test_parse_bad_header_rejected),
		cmocka_unit_test(test_parse_too_many_classes_rejected),
		cmocka_unit_test(test_load_reads_file),
		cmocka_unit_test(test_load_missing_file_is_eio),
		cmocka_unit_test(test_destroy_null_is_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
