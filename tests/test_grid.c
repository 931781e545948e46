/*
 * test_grid.c - grid enumeration, --set and spec files, seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "grid.h"

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_grid_defaults_are_experiment_3(void **st)
{
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;

	(void)st;
	assert_int_equal(kaf_grid_init(&g, &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 24);
	assert_int_equal(g.base.runs, 1000);
	assert_int_equal(g.seeding, KAF_SEEDING_PAIRED);
	/* The last axis varies fastest: opt, then reg, then init. */
	kaf_grid_cell(&g, 0, &cell);
	assert_string_equal(cell.dataset, "boston");
	assert_int_equal(cell.cfg.init, KAF_INIT_XAVIER_UNIFORM);
	assert_int_equal(cell.cfg.reg, KAF_REG_NONE);
	assert_int_equal(cell.cfg.opt, KAF_OPT_SGD);
	kaf_grid_cell(&g, 1, &cell);
	assert_int_equal(cell.cfg.opt, KAF_OPT_RMSPROP);
	kaf_grid_cell(&g, 4, &cell);
	assert_int_equal(cell.cfg.reg, KAF_REG_L1);
	assert_int_equal(cell.cfg.opt, KAF_OPT_SGD);
	kaf_grid_cell(&g, 23, &cell);
	assert_int_equal(cell.cfg.init, KAF_INIT_KAIMING_UNIFORM);
	assert_int_equal(cell.cfg.reg, KAF_REG_L2);
	assert_int_equal(cell.cfg.opt, KAF_OPT_ADAM);
	assert_int_equal(cell.cfg.activation, KAF_ACT_KAF);
	assert_int_equal(cell.cfg.kernel, KAF_KERNEL_NAIVE);
	assert_int_equal(cell.cfg.precision, KAF_PREC_F32);
	assert_int_equal(cell.cfg.epochs, 5);
	assert_int_equal(cell.cfg.hidden, 20);
	assert_int_equal(cell.cfg.calc_num, 50);
	assert_true(cell.cfg.lr == 1e-5);
	assert_true(cell.cfg.lambda == 1e-4);
	kaf_grid_finish(&g);
}

static void test_grid_set_widens_and_replaces(void **st)
{
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;

	(void)st;
	kaf_grid_init(&g, &err);
	assert_int_equal(kaf_grid_set(&g, "init=xavier_uniform,"
				      "kaiming_uniform,kaiming_normal",
				      "--set", &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 36);
	assert_int_equal(kaf_grid_set(&g, "precision = f32, f64", "--set",
				      &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 72);
	assert_int_equal(kaf_grid_set(&g, "opt=adam", "--set", &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 18);
	kaf_grid_cell(&g, 17, &cell);
	assert_int_equal(cell.cfg.init, KAF_INIT_KAIMING_NORMAL);
	assert_int_equal(cell.cfg.precision, KAF_PREC_F64);
	assert_int_equal(cell.cfg.opt, KAF_OPT_ADAM);
	assert_int_equal(kaf_grid_set(&g, "runs=7", "--set", &err), 0);
	assert_int_equal(g.base.runs, 7);
	kaf_grid_finish(&g);
}

static void expect_set_error(const char *assignment, const char *needle)
{
	struct kaf_grid g;
	struct kaf_error err;
	char spec[4096];

	kaf_grid_init(&g, &err);
	kaf_grid_spec_text(&g, spec, sizeof(spec));
	assert_int_equal(kaf_grid_set(&g, assignment, "--set", &err),
			 KAF_EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("error for \"%s\" is \"%s\", lacks \"%s\"",
			 assignment, err.msg, needle);
	/* A failed --set leaves the grid as it was. */
	char after[4096];

	kaf_grid_spec_text(&g, after, sizeof(after));
	assert_string_equal(spec, after);
	kaf_grid_finish(&g);
}

static void test_grid_set_rejects_bad_input(void **st)
{
	(void)st;
	expect_set_error("optimizer=adam", "unknown axis \"optimizer\"");
	expect_set_error("opt=adamw", "\"adamw\"");
	expect_set_error("opt=adamw", "rmsprop");
	expect_set_error("opt=", "axis opt has no values");
	expect_set_error("opt=sgd,,adam", "empty value");
	expect_set_error("opt=sgd,sgd", "twice");
	expect_set_error("lr=fast", "\"fast\" is not a finite number");
	expect_set_error("lr=-1", "positive");
	expect_set_error("epochs=0", "out of range");
	expect_set_error("calc_num=1", "out of range");
	expect_set_error("dataset=mnist", "\"mnist\"");
	expect_set_error("runs=0", "out of range");
	expect_set_error("runs=-5", "out of range");
	expect_set_error("seeding=random", "\"random\"");
	expect_set_error("opt", "AXIS=V1,V2");
}

static void test_grid_numbers_are_canonical(void **st)
{
	struct kaf_grid a, b;
	struct kaf_error err;
	char ta[4096], tb[4096];

	(void)st;
	kaf_grid_init(&a, &err);
	kaf_grid_init(&b, &err);
	kaf_grid_set(&a, "lr=1e-5,0.001", "--set", &err);
	kaf_grid_set(&b, "lr=0.00001, 1E-3", "--set", &err);
	kaf_grid_spec_text(&a, ta, sizeof(ta));
	kaf_grid_spec_text(&b, tb, sizeof(tb));
	assert_string_equal(ta, tb);
	assert_non_null(strstr(ta, "lr = 1e-05, 0.001\n"));
	kaf_grid_finish(&a);
	kaf_grid_finish(&b);
}

static void test_grid_spec_file_reads_and_names_lines(void **st)
{
	char path[] = "/tmp/kaf_spec_XXXXXX";
	int fd = mkstemp(path);
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;

	(void)st;
	assert_true(fd >= 0);
	close(fd);
	write_file(path, "# a study\n\ndataset = iris   # small\n"
		   "calc_num = 30\nopt = adam, sgd\ninit = kaiming_normal\n"
		   "reg = none\nruns = 12\nseed = 99\n"
		   "seeding = independent\n");
	kaf_grid_init(&g, &err);
	assert_int_equal(kaf_grid_load_spec(&g, path, &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 2);
	assert_int_equal(g.base.runs, 12);
	assert_int_equal(g.seed, 99);
	assert_int_equal(g.seeding, KAF_SEEDING_INDEPENDENT);
	kaf_grid_cell(&g, 0, &cell);
	assert_string_equal(cell.dataset, "iris");
	assert_int_equal(cell.cfg.calc_num, 30);
	assert_int_equal(cell.cfg.opt, KAF_OPT_ADAM);

	write_file(path, "dataset = iris\n# fine so far\nopt = adam\n"
		   "reg: none\n");
	assert_int_equal(kaf_grid_load_spec(&g, path, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, ":4:"));
	write_file(path, "dataset = iris\nkernel = fast\n");
	assert_int_equal(kaf_grid_load_spec(&g, path, &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, ":2:"));
	assert_non_null(strstr(err.msg, "fast"));
	unlink(path);
	assert_int_equal(kaf_grid_load_spec(&g, path, &err), KAF_EIO);
	assert_non_null(strstr(err.msg, path));
	kaf_grid_finish(&g);
}

static void test_grid_seeds_paired_and_independent(void **st)
{
	struct kaf_grid g;
	struct kaf_error err;

	(void)st;
	kaf_grid_init(&g, &err);
	/* Paired: replicate r has one seed in every cell. */
	for (long c = 1; c < kaf_grid_cells(&g); c++)
		assert_true(kaf_grid_run_seed(&g, c, 5) ==
			    kaf_grid_run_seed(&g, 0, 5));
	assert_true(kaf_grid_run_seed(&g, 0, 5) !=
		    kaf_grid_run_seed(&g, 0, 6));
	g.seeding = KAF_SEEDING_INDEPENDENT;
	assert_true(kaf_grid_run_seed(&g, 1, 5) !=
		    kaf_grid_run_seed(&g, 0, 5));
	/* A cell's seeds follow its configuration, not its position. */
	uint64_t adam = kaf_grid_run_seed(&g, 3, 0);

	kaf_grid_set(&g, "opt=adam", "--set", &err);
	assert_true(kaf_grid_run_seed(&g, 0, 0) == adam);
	g.seed = 1;
	assert_true(kaf_grid_run_seed(&g, 0, 0) != adam);
	kaf_grid_finish(&g);
}

static void test_grid_kaf_only_axes_collapse(void **st)
{
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;

	(void)st;
	kaf_grid_init(&g, &err);
	kaf_grid_set(&g, "opt=sgd", "--set", &err);
	kaf_grid_set(&g, "init=xavier_uniform", "--set", &err);
	kaf_grid_set(&g, "reg=none", "--set", &err);
	kaf_grid_set(&g, "activation=relu,kaf", "--set", &err);
	kaf_grid_set(&g, "kernel=naive,stable", "--set", &err);
	kaf_grid_set(&g, "calc_num=20,50", "--set", &err);
	/* relu: one cell; kaf: 2 kernels x 2 calc sizes. */
	assert_int_equal(kaf_grid_cells(&g), 5);
	kaf_grid_cell(&g, 0, &cell);
	assert_int_equal(cell.cfg.activation, KAF_ACT_RELU);
	for (long i = 1; i < 5; i++) {
		kaf_grid_cell(&g, i, &cell);
		assert_int_equal(cell.cfg.activation, KAF_ACT_KAF);
	}
	assert_true(kaf_grid_varies(&g, KAF_AXIS_KERNEL));
	assert_false(kaf_grid_varies(&g, KAF_AXIS_OPT));
	kaf_grid_finish(&g);
}

static void test_grid_sections_make_blocks(void **st)
{
	static const char spec[] =
		"opt = adam\nruns = 4\n"
		"[small]\ndataset = iris\ncalc_num = 30\nruns = 2\n"
		"[large]\ndataset = digits\nhidden = 100\n";
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;
	char text[8192];

	(void)st;
	kaf_grid_init(&g, &err);
	assert_int_equal(kaf_grid_parse_spec(&g, spec, strlen(spec), "s",
					     &err), 0);
	/* Each block: 2 inits x 3 regs x 1 opt. */
	assert_int_equal(kaf_grid_cells(&g), 12);
	assert_int_equal(kaf_grid_total_runs(&g), 6 * 2 + 6 * 4);
	assert_int_equal(kaf_grid_max_runs(&g), 4);
	kaf_grid_cell(&g, 0, &cell);
	assert_string_equal(cell.block, "small");
	assert_string_equal(cell.dataset, "iris");
	assert_int_equal(cell.cfg.opt, KAF_OPT_ADAM);
	assert_int_equal(cell.runs, 2);
	kaf_grid_cell(&g, 6, &cell);
	assert_string_equal(cell.block, "large");
	assert_int_equal(cell.cfg.hidden, 100);
	assert_int_equal(cell.cfg.calc_num, 50);
	/* --set reaches every block. */
	assert_int_equal(kaf_grid_set(&g, "reg=l2", "--set", &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 4);
	kaf_grid_spec_text(&g, text, sizeof(text));
	assert_non_null(strstr(text, "[small]\ndataset = iris\n"));
	assert_non_null(strstr(text, "[large]\ndataset = digits\n"));
	assert_null(strstr(text, "runs"));
	static const char twice[] = "[a]\nopt = sgd\n[a]\n";

	assert_int_equal(kaf_grid_parse_spec(&g, twice, strlen(twice), "t",
					     &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "t:3:"));
	kaf_grid_finish(&g);
}

static void test_grid_presets_follow_the_protocol(void **st)
{
	struct kaf_grid g;
	struct kaf_error err;
	struct kaf_cell cell;
	int kaf_cells = 0;

	(void)st;
	kaf_grid_init(&g, &err);
	assert_int_equal(kaf_grid_preset(&g, "exp1", &err), 0);
	/* 10 dataset settings x (6 fixed activations + K-AF naive, stable) */
	assert_int_equal(kaf_grid_cells(&g), 80);
	assert_true(g.trace);
	/* exp_num: 3 runs for iris, digits, wine; 5 for the others. */
	assert_int_equal(kaf_grid_total_runs(&g), 6 * 8 * 3 + 4 * 8 * 5);
	for (long i = 0; i < 80; i++) {
		kaf_grid_cell(&g, i, &cell);
		kaf_cells += cell.cfg.activation == KAF_ACT_KAF;
		if (!strcmp(cell.block, "digits/2")) {
			assert_int_equal(cell.cfg.epochs, 10000);
			assert_true(cell.cfg.lr == 1e-3);
			assert_int_equal(cell.cfg.calc_num, 36);
			assert_int_equal(cell.cfg.hidden, 100);
		}
		if (!strcmp(cell.block, "boston/2")) {
			assert_int_equal(cell.cfg.init,
					 KAF_INIT_XAVIER_UNIFORM);
			assert_int_equal(cell.cfg.opt, KAF_OPT_ADAM);
		}
	}
	assert_int_equal(kaf_cells, 20);
	assert_int_equal(kaf_grid_preset(&g, "exp2", &err), 0);
	assert_int_equal(kaf_grid_cells(&g), 5);
	assert_int_equal(g.link_every, 50);
	kaf_grid_cell(&g, 4, &cell);
	assert_string_equal(cell.dataset, "breast_cancer");
	assert_int_equal(cell.cfg.calc_num, 285);
	assert_true(cell.cfg.lr == 1e-2);
	assert_int_equal(kaf_grid_preset(&g, "exp9", &err), KAF_EINVAL);
	assert_non_null(strstr(err.msg, "exp1, exp2, exp3"));
	kaf_grid_finish(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grid_defaults_are_experiment_3),
		cmocka_unit_test(test_grid_set_widens_and_replaces),
		cmocka_unit_test(test_grid_set_rejects_bad_input),
		cmocka_unit_test(test_grid_numbers_are_canonical),
		cmocka_unit_test(test_grid_spec_file_reads_and_names_lines),
		cmocka_unit_test(test_grid_seeds_paired_and_independent),
		cmocka_unit_test(test_grid_kaf_only_axes_collapse),
		cmocka_unit_test(test_grid_sections_make_blocks),
		cmocka_unit_test(test_grid_presets_follow_the_protocol),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
