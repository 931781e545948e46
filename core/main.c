/*
 * main.c - the kaf command: dispatch to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static const struct command commands[] = {
	{"train", kaf_cmd_train, "train one network and print its epochs"},
	{"sweep", kaf_cmd_sweep, "train a grid of runs on all cores into "
	 "SQLite"},
	{"report", kaf_cmd_report, "write a sweep's report: Markdown, HTML, "
	 "CSV tables, plots"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kaf COMMAND [flags]\n\n"
		"kaf studies when neural-network training explodes with the "
		"kernel activation\nfunction K-AF: single runs, grids of "
		"thousands of runs stored in SQLite, and\nreports.\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name,
			commands[i].help);
	fprintf(out, "\n`kaf COMMAND --help` lists a command's flags. "
		"Results go to standard output,\ndiagnostics to standard "
		"error. Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return KAF_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kaf %s\n", KAF_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	kaf_log_error("unknown command \"%s\" (valid: train, sweep, report; "
		      "see kaf --help)", argv[1]);
	return KAF_EXIT_USAGE;
}
