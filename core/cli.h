/*
 * cli.h - command-line flags shared by the kaf subcommands.
 *
 * Flags are long options only: `--name value`, `--name=value`, or a bare
 * `--name` for booleans. Parsing never prints and never exits: it returns
 * KAF_EINVAL with a message naming the flag and listing the valid ones,
 * and main() turns that into exit status 2.
 */
#ifndef KAF_CLI_H
#define KAF_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "model.h"

#define KAF_EXIT_USAGE 2

struct kaf_flag {
	const char *name;       /* without the leading dashes */
	const char *arg;        /* metavariable, NULL for a boolean flag */
	const char *help;       /* one line */
};

/*
 * Next flag of argv from *i on. Returns its index in flags and sets *value
 * (NULL for booleans), -1 at the end, or KAF_EINVAL-style error codes
 * below -1 (use kaf_cli_failed) with err filled. cmd names the subcommand.
 */
int kaf_cli_next(int argc, char **argv, int *i, const struct kaf_flag *flags,
		 int count, const char *cmd, const char **value,
		 struct kaf_error *err);

#define KAF_CLI_END (-1)
#define KAF_CLI_ERROR (-2)

void kaf_cli_help(FILE *out, const struct kaf_flag *flags, int count);

/* Strict number parsing: the whole string, finite; what names the flag. */
int kaf_cli_double(const char *s, const char *what, double *out,
		   struct kaf_error *err);
int kaf_cli_int(const char *s, const char *what, long min, long max,
		long *out, struct kaf_error *err);
int kaf_cli_u64(const char *s, const char *what, uint64_t *out,
		struct kaf_error *err);
int kaf_cli_bool(const char *s, const char *what, bool *out,
		 struct kaf_error *err);

/*
 * Set one field of a run config by its axis name (dataset excluded):
 * activation, init, reg, lambda, opt, lr, epochs, hidden, calc_num,
 * precision, kernel, standardize, grad_limit, bandwidth, seed. what names
 * where the value came from in errors. KAF_EINVAL for an unknown axis.
 */
int kaf_cli_set_axis(struct kaf_config *cfg, const char *axis,
		     const char *value, const char *what,
		     struct kaf_error *err);

/* ---- subcommands: argv[0] is the subcommand; return the exit status ---- */

int kaf_cmd_train(int argc, char **argv);
int kaf_cmd_sweep(int argc, char **argv);
int kaf_cmd_report(int argc, char **argv);

#endif
