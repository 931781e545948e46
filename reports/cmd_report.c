/*
 * cmd_report.c - `kaf report`: write the report of one sweep.
 */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "log.h"
#include "report.h"

enum {
	F_DB, F_SWEEP, F_OUT, F_NO_PLOTS, F_HELP, F_COUNT,
};

static const struct kaf_flag report_flags[F_COUNT] = {
	[F_DB] = {"db", "FILE", "the kaf database (default "
		  KAF_REPORT_DEFAULT_DB ")"},
	[F_SWEEP] = {"sweep", "ID", "the sweep to report (default: the "
		     "latest, largest id)"},
	[F_OUT] = {"out", "DIR", "output directory, created if missing "
		   "(default " KAF_REPORT_DEFAULT_DIR ")"},
	[F_NO_PLOTS] = {"no-plots", NULL, "write the plot scripts but do "
			"not run gnuplot"},
	[F_HELP] = {"help", NULL, "this help"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: kaf report [flags]\n\n"
		"Write the report of one sweep of a kaf database: report.md, "
		"a self-contained\nreport.html, one CSV file per table, and "
		"the plots as PNG and SVG in plots/\n(drawn by gnuplot). "
		"Lists the files written on standard output. The\n"
		"database is only read.\n\nflags:\n");
	kaf_cli_help(out, report_flags, F_COUNT);
	fprintf(out, "\nenvironment:\n  KAF_GNUPLOT                "
		"the gnuplot program (default: gnuplot on PATH)\n");
}

static int parse_args(int argc, char **argv, struct kaf_report_opts *o,
		      bool *help, struct kaf_error *err)
{
	int i = 1, f, rc = KAF_OK;
	const char *v;
	long id;

	while (!rc && (f = kaf_cli_next(argc, argv, &i, report_flags,
					F_COUNT, "report", &v, err)) >= 0) {
		switch (f) {
		case F_DB:
			o->db_path = v;
			break;
		case F_SWEEP:
			rc = kaf_cli_int(v, "--sweep", 1, LONG_MAX, &id, err);
			o->sweep_id = id;
			break;
		case F_OUT:
			o->out_dir = v;
			break;
		case F_NO_PLOTS:
			o->no_plots = true;
			break;
		case F_HELP:
			*help = true;
			break;
		}
	}
	if (!rc && f == KAF_CLI_ERROR)
		rc = KAF_EINVAL;
	return rc;
}

int kaf_cmd_report(int argc, char **argv)
{
	struct kaf_report_opts opts = {0};
	struct kaf_report_result res;
	struct kaf_error err;
	bool help = false;
	int rc;

	if (parse_args(argc, argv, &opts, &help, &err)) {
		kaf_log_error("%s", err.msg);
		return KAF_EXIT_USAGE;
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	rc = kaf_report_run(&opts, &res, &err);
	if (rc) {
		kaf_log_error("kaf report: %s", err.msg);
		/* Bad input, a bad file or directory: the caller's to fix. */
		return rc == KAF_ENOMEM ? 1 : KAF_EXIT_USAGE;
	}
	for (int i = 0; i < res.nfiles; i++)
		printf("%s\n", res.files[i]);
	kaf_report_result_finish(&res);
	return fflush(stdout) == 0 ? 0 : 1;
}
