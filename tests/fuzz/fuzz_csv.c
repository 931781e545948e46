/*
 * fuzz_csv.c - libFuzzer harness for kaf_dataset_parse_csv.
 *
 * The first byte picks the task (bit 0: regression) and where the target
 * name comes from (bit 1: the bytes up to the first newline, otherwise
 * "target"); the rest is the CSV text, passed without a terminating NUL
 * so that any read past its end is caught. A dataset that comes back must
 * keep the promises of data.h: finite features, one-hot targets whose
 * labels are in range, the target's name as asked. Built and run by
 * .ci/fuzz.sh.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define TARGET_MAX 64

static void check_classes(const struct kaf_dataset *ds)
{
	if (ds->e < 2 || ds->e > KAF_DATA_MAX_CLASSES || !ds->label)
		abort();
	for (int i = 0; i < ds->n; i++) {
		double sum = 0;

		if (ds->label[i] < 0 || ds->label[i] >= ds->e ||
		    ds->y[(size_t)i * ds->e + ds->label[i]] != 1.0)
			abort();
		for (int k = 0; k < ds->e; k++)
			sum += ds->y[(size_t)i * ds->e + k];
		if (sum != 1.0)
			abort();
	}
}

static void check_dataset(const struct kaf_dataset *ds, const char *target,
			  enum kaf_task task)
{
	if (ds->task != task || ds->n < 1 || ds->d < 1 ||
	    ds->d >= KAF_DATA_MAX_COLUMNS || strcmp(ds->target_name, target))
		abort();
	for (size_t i = 0; i < (size_t)ds->n * ds->d; i++)
		if (!isfinite(ds->x[i]))
			abort();
	for (int j = 0; j < ds->d; j++)
		if (!ds->feature_names[j] || !ds->feature_names[j][0])
			abort();
	if (task == KAF_TASK_CLASSIFICATION) {
		check_classes(ds);
	} else {
		if (ds->e != 1 || ds->label)
			abort();
		for (int i = 0; i < ds->n; i++)
			if (!isfinite(ds->y[i]))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum kaf_task task;
	char target[TARGET_MAX + 1] = "target";
	struct kaf_dataset *ds = (struct kaf_dataset *)1;
	struct kaf_error err = {{0}};
	size_t at = 1;
	int rc;

	if (size < 1)
		return 0;
	task = data[0] & 1 ? KAF_TASK_REGRESSION : KAF_TASK_CLASSIFICATION;
	if (data[0] & 2) {
		const uint8_t *nl = memchr(data + 1, '\n', size - 1);
		size_t len = nl ? (size_t)(nl - data - 1) : size - 1;

		if (len > TARGET_MAX)
			return 0;
		memcpy(target, data + 1, len);
		target[len] = '\0';
		at = nl ? len + 2 : size;
	}
	rc = kaf_dataset_parse_csv((const char *)data + at, size - at,
				   "fuzz.csv", target, task, &ds, &err);
	if (rc > 0 || (rc < 0 && (err.msg[0] == '\0' || ds)))
		abort();
	if (rc == 0)
		check_dataset(ds, target, task);
	kaf_dataset_destroy(ds);
	return 0;
}
