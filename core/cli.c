#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int find_flag(const struct kaf_flag *flags, int count,
		     const char *name, size_t len)
{
	for (int f = 0; f < count; f++)
		if (strlen(flags[f].name) == len &&
		    strncmp(flags[f].name, name, len) == 0)
			return f;
	return -1;
}

static int unknown_flag(const struct kaf_flag *flags, int count,
			const char *cmd, const char *arg,
			struct kaf_error *err)
{
	char list[1024];
	int used = 0;

	list[0] = '\0';
	for (int f = 0; f < count && used < (int)sizeof(list); f++)
		used += snprintf(list + used, sizeof(list) - (size_t)used,
				 "%s--%s", f ? ", " : "", flags[f].name);
	kaf_error_set(err, KAF_EINVAL, "kaf %s: unknown flag \"%s\" (valid: %s)",
		      cmd, arg, list);
	return KAF_CLI_ERROR;
}

int kaf_cli_next(int argc, char **argv, int *i, const struct kaf_flag *flags,
		 int count, const char *cmd, const char **value,
		 struct kaf_error *err)
{
	const char *arg, *eq;
	int f;

	if (*i >= argc)
		return KAF_CLI_END;
	arg = argv[(*i)++];
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		kaf_error_set(err, KAF_EINVAL,
			      "kaf %s: unexpected argument \"%s\" (flags "
			      "start with --; see kaf %s --help)", cmd, arg,
			      cmd);
		return KAF_CLI_ERROR;
	}
	eq = strchr(arg + 2, '=');
	f = find_flag(flags, count, arg + 2,
		      eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
	if (f < 0)
		return unknown_flag(flags, count, cmd, arg, err);
	*value = NULL;
	if (!flags[f].arg) {
		if (eq) {
			kaf_error_set(err, KAF_EINVAL,
				      "kaf %s: flag --%s takes no value",
				      cmd, flags[f].name);
			return KAF_CLI_ERROR;
		}
		return f;
	}
	if (eq) {
		*value = eq + 1;
	} else if (*i < argc) {
		*value = argv[(*i)++];
	} else {
		kaf_error_set(err, KAF_EINVAL, "kaf %s: flag --%s needs a "
			      "value (%s)", cmd, flags[f].name, flags[f].arg);
		return KAF_CLI_ERROR;
	}
	return f;
}

void kaf_cli_help(FILE *out, const struct kaf_flag *flags, int count)
{
	for (int f = 0; f < count; f++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", flags[f].name,
			 flags[f].arg ? " " : "",
			 flags[f].arg ? flags[f].arg : "");
		fprintf(out, "  %-26s %s\n", left, flags[f].help);
	}
}

int kaf_cli_double(const char *s, const char *what, double *out,
		   struct kaf_error *err)
{
	char *end;
	double v = 0;

	errno = 0;
	v = strtod(s, &end);
	while (*end == ' ')
		end++;
	if (end == s || *end != '\0' || !isfinite(v) || errno == ERANGE)
		return kaf_error_set(err, KAF_EINVAL,
				     "%s: \"%s\" is not a finite number",
				     what, s);
	*out = v;
	return KAF_OK;
}

int kaf_cli_int(const char *s, const char *what, long min, long max,
		long *out, struct kaf_error *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE)
		return kaf_error_set(err, KAF_EINVAL,
				     "%s: \"%s\" is not an integer", what, s);
	if (v < min || v > max)
		return kaf_error_set(err, KAF_EINVAL,
				     "%s: %ld is out of range %ld..%ld", what,
				     v, min, max);
	*out = v;
	return KAF_OK;
}

int kaf_cli_u64(const char *s, const char *what, uint64_t *out,
		struct kaf_error *err)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE || s[0] == '-')
		return kaf_error_set(err, KAF_EINVAL,
				     "%s: \"%s\" is not a non-negative "
				     "integer", what, s);
	*out = v;
	return KAF_OK;
}

int kaf_cli_bool(const char *s, const char *what, bool *out,
		 struct kaf_error *err)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, yes[i]) || !strcmp(s, no[i])) {
			*out = !strcmp(s, yes[i]);
			return KAF_OK;
		}
	}
	return kaf_error_set(err, KAF_EINVAL,
			     "%s: \"%s\" is not a boolean (valid: true, "
			     "false, 1, 0, yes, no)", what, s);
}

/* ---- axes ---- */

static int set_enum(int *field, const char *const *names, int count,
		    const char *value, const char *what,
		    struct kaf_error *err)
{
	int v = kaf_name_parse(names, count, value, what, err);

	if (v < 0)
		return v;
	*field = v;
	return KAF_OK;
}

static int set_int(int *field, const char *value, const char *what,
		   long min, long max, struct kaf_error *err)
{
	long v;
	int rc = kaf_cli_int(value, what, min, max, &v, err);

	if (rc == KAF_OK)
		*field = (int)v;
	return rc;
}

static int set_positive(double *field, const char *value, const char *what,
			bool zero_ok, struct kaf_error *err)
{
	double v = 0;
	int rc = kaf_cli_double(value, what, &v, err);

	if (rc)
		return rc;
	if (v < 0 || (v == 0 && !zero_ok))
		return kaf_error_set(err, KAF_EINVAL, "%s: %s must be %s",
				     what, value,
				     zero_ok ? "0 or more" : "positive");
	*field = v;
	return KAF_OK;
}

int kaf_cli_set_axis(struct kaf_config *cfg, const char *axis,
		     const char *value, const char *what,
		     struct kaf_error *err)
{
	if (!strcmp(axis, "activation"))
		return set_enum((int *)&cfg->activation, kaf_activation_names,
				KAF_ACT_COUNT, value, what, err);
	if (!strcmp(axis, "init"))
		return set_enum((int *)&cfg->init, kaf_init_names,
				KAF_INIT_COUNT, value, what, err);
	if (!strcmp(axis, "reg"))
		return set_enum((int *)&cfg->reg, kaf_reg_names,
				KAF_REG_COUNT, value, what, err);
	if (!strcmp(axis, "opt"))
		return set_enum((int *)&cfg->opt, kaf_opt_names,
				KAF_OPT_COUNT, value, what, err);
	if (!strcmp(axis, "precision"))
		return set_enum((int *)&cfg->precision, kaf_precision_names,
				KAF_PREC_COUNT, value, what, err);
	if (!strcmp(axis, "kernel"))
		return set_enum((int *)&cfg->kernel, kaf_kernel_names,
				KAF_KERNEL_COUNT, value, what, err);
	if (!strcmp(axis, "lambda"))
		return set_positive(&cfg->lambda, value, what, true, err);
	if (!strcmp(axis, "lr"))
		return set_positive(&cfg->lr, value, what, false, err);
	if (!strcmp(axis, "grad_limit"))
		return set_positive(&cfg->grad_limit, value, what, true, err);
	if (!strcmp(axis, "bandwidth"))
		return set_positive(&cfg->bandwidth, value, what, false, err);
	if (!strcmp(axis, "epochs"))
		return set_int(&cfg->epochs, value, what, 1, 100000000, err);
	if (!strcmp(axis, "hidden"))
		return set_int(&cfg->hidden, value, what, 1, 100000, err);
	if (!strcmp(axis, "calc_num"))
		return set_int(&cfg->calc_num, value, what, 2, 1000000, err);
	if (!strcmp(axis, "standardize"))
		return kaf_cli_bool(value, what, &cfg->standardize, err);
	if (!strcmp(axis, "seed"))
		return kaf_cli_u64(value, what, &cfg->seed, err);
	return kaf_error_set(err, KAF_EINVAL, "%s: unknown axis \"%s\"", what,
			     axis);
}
