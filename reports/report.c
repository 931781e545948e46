#include "report.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis.h"
#include "doc.h"
#include "log.h"
#include "plot.h"
#include "render.h"
#include "study_plot.h"

/* Extensions of a figure's files under plots/. */
enum { EXT_GP, EXT_DAT, EXT_PNG, EXT_SVG, EXT_GIF };

static const char *const plot_exts[] = {
	[EXT_GP] = "gp", [EXT_DAT] = "dat", [EXT_PNG] = "png",
	[EXT_SVG] = "svg", [EXT_GIF] = "gif",
};

#define NPLOT_EXTS (int)(sizeof(plot_exts) / sizeof(plot_exts[0]))

/* Every figure of a report: the fixed ones, then experiments 1 and 2. */
struct figures {
	struct kaf_plot fixed[KAF_PLOT_COUNT];
	struct kaf_study_plots study;
};

static int figures_count(const struct figures *f)
{
	return KAF_PLOT_COUNT + f->study.n;
}

static struct kaf_plot *figure_at(struct figures *f, int i)
{
	return i < KAF_PLOT_COUNT ? &f->fixed[i] :
		&f->study.all[i - KAF_PLOT_COUNT];
}

/* Whether a figure in its state has a file with extension e: script
 * and data always, a still's PNG and SVG or an animation's GIF when
 * drawn. */
static bool figure_has(const struct kaf_plot *pl, int e)
{
	if (e == EXT_GP || e == EXT_DAT)
		return true;
	if (pl->state != KAF_PLOT_DRAWN)
		return false;
	return pl->animated ? e == EXT_GIF : e == EXT_PNG || e == EXT_SVG;
}

/* Relative paths of the files a report wrote, in the order listed. */
struct names {
	int n, cap;
	char **v;               /* (n) */
};

static int names_add(struct names *nm, const char *fmt, const char *a,
		     const char *b)
{
	char path[256];

	if (nm->n == nm->cap) {
		int cap = nm->cap ? 2 * nm->cap : 32;
		char **grown = realloc(nm->v, (size_t)cap * sizeof(*grown));

		if (!grown)
			return KAF_ENOMEM;
		nm->v = grown;
		nm->cap = cap;
	}
	snprintf(path, sizeof(path), fmt, a, b);
	nm->v[nm->n] = strdup(path);
	return nm->v[nm->n] ? (nm->n++, KAF_OK) : KAF_ENOMEM;
}

static bool names_has(const struct names *nm, const char *path)
{
	for (int i = 0; i < nm->n; i++)
		if (strcmp(nm->v[i], path) == 0)
			return true;
	return false;
}

static void names_finish(struct names *nm)
{
	for (int i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	*nm = (struct names){0};
}

/* ---- directories ---- */

/*
 * Room that paths under the output directory need beyond its own name:
 * the staging directory, plots/ and a file name of up to 255 bytes.
 */
#define PATH_SLACK 512

/* dir/name into path (PATH_MAX); make_dirs keeps dir short enough. */
static void join(char *path, const char *dir, const char *name)
{
	int n = snprintf(path, PATH_MAX, "%s/%s", dir, name);

	assert(n > 0 && n < PATH_MAX);
	(void)n;
}

/* mkdir -p; *created tells whether the last component is new. */
static int make_dirs(const char *dir, bool *created, struct kaf_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	*created = false;
	if (strlen(dir) + PATH_SLACK >= sizeof(path))
		return kaf_error_set(err, KAF_EIO, "output directory \"%s\": "
				     "path too long", dir);
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0777) != 0 && errno != EEXIST)
			return kaf_error_set(err, KAF_EIO, "cannot create "
					     "output directory \"%s\": %s",
					     path, strerror(errno));
		*p = '/';
	}
	if (mkdir(path, 0777) == 0)
		*created = true;
	else if (errno != EEXIST)
		return kaf_error_set(err, KAF_EIO, "cannot create output "
				     "directory \"%s\": %s", dir,
				     strerror(errno));
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return kaf_error_set(err, KAF_EIO, "output directory \"%s\" "
				     "is not a directory", dir);
	return KAF_OK;
}

/* Remove dir and the files in it and in its subdirectories. */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		join(path, dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(path);
		else
			unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* ---- writing the documents ---- */

struct writer {
	const char *stage;      /* staging directory */
	const char *out_dir;    /* for messages */
	struct names written;
};

static int open_out(struct writer *w, const char *name, FILE **f,
		    struct kaf_error *err)
{
	char path[PATH_MAX];

	join(path, w->stage, name);
	*f = fopen(path, "w");
	if (!*f)
		return kaf_error_set(err, KAF_EIO, "cannot write %s in output "
				     "directory \"%s\": %s", name, w->out_dir,
				     strerror(errno));
	return names_add(&w->written, "%s%s", name, "") ?
		kaf_error_set(err, KAF_ENOMEM, "report: out of memory") :
		KAF_OK;
}

static int close_out(struct writer *w, const char *name, FILE *f, int rc,
		     struct kaf_error *err)
{
	bool bad = ferror(f) != 0;

	bad |= fclose(f) != 0;
	if (!rc && bad)
		rc = kaf_error_set(err, KAF_EIO, "cannot write %s in output "
				   "directory \"%s\"", name, w->out_dir);
	return rc;
}

static int write_tables(struct writer *w, const struct kaf_doc *doc,
			struct kaf_error *err)
{
	for (int i = 0; i < doc->nblocks; i++) {
		const struct kaf_table *t = doc->blocks[i].table;
		char name[256];
		FILE *f;
		int rc;

		if (doc->blocks[i].kind != KAF_BLOCK_TABLE)
			continue;
		snprintf(name, sizeof(name), "%s.csv", t->name);
		rc = open_out(w, name, &f, err);
		if (rc)
			return rc;
		rc = close_out(w, name, f, kaf_table_write_csv(t, f), err);
		if (rc)
			return rc;
	}
	return KAF_OK;
}

static int write_docs(struct writer *w, const struct kaf_analysis *an,
		      const struct kaf_doc *doc, struct kaf_error *err)
{
	char title[128];
	FILE *f;
	int rc = open_out(w, "report.md", &f, err);

	if (rc)
		return rc;
	rc = close_out(w, "report.md", f, kaf_doc_write_md(doc, f), err);
	if (rc)
		return rc;
	rc = open_out(w, "report.html", &f, err);
	if (rc)
		return rc;
	snprintf(title, sizeof(title), "kaf report: sweep %lld",
		 an->sweep_id);
	rc = kaf_doc_write_html(doc, title, w->stage, f, err);
	rc = close_out(w, "report.html", f, rc, err);
	return rc ? rc : write_tables(w, doc, err);
}

/* ---- plots ---- */

/* One warning naming the figures gnuplot would have drawn. */
static void warn_skipped(struct figures *figs, const char *why,
			 const char *out_dir)
{
	char list[512] = "";
	size_t used = 0;

	for (int i = 0; i < figures_count(figs); i++) {
		const struct kaf_plot *pl = figure_at(figs, i);
		size_t len = strlen(pl->stem);

		if (pl->state != KAF_PLOT_NO_GNUPLOT)
			continue;
		if (used + len + 8 >= sizeof(list)) {
			snprintf(list + used, sizeof(list) - used, ", ...");
			break;
		}
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%s", used ? ", " : "", pl->stem);
	}
	if (used == 0)
		return;
	kaf_log_warn("plots skipped (%s): %s; install gnuplot with "
		     "`apt-get install gnuplot-nox` (or set KAF_GNUPLOT to "
		     "its path) and rerun kaf report, or run the scripts in "
		     "%s/plots", list, why, out_dir);
}

static int draw_plots(struct writer *w, const struct kaf_analysis *an,
		      bool no_plots, struct figures *figs,
		      struct kaf_error *why, struct kaf_error *err)
{
	char dir[PATH_MAX], gnuplot[PATH_MAX];
	bool found = false;
	int rc;

	join(dir, w->stage, "plots");
	if (mkdir(dir, 0777) != 0)
		return kaf_error_set(err, KAF_EIO, "cannot write to output "
				     "directory \"%s\": %s", w->out_dir,
				     strerror(errno));
	snprintf(why->msg, sizeof(why->msg), "plots were turned off");
	if (!no_plots)
		found = kaf_plot_find_gnuplot(gnuplot, sizeof(gnuplot),
					      why) == KAF_OK;
	rc = kaf_plot_all(an, dir, found ? gnuplot : NULL, figs->fixed, err);
	if (!rc)
		rc = kaf_study_plot_all(an, dir, found ? gnuplot : NULL,
					&figs->study, err);
	for (int i = 0; i < figures_count(figs) && !rc; i++) {
		struct kaf_plot *pl = figure_at(figs, i);

		if (pl->state == KAF_PLOT_NO_GNUPLOT)
			snprintf(pl->note, sizeof(pl->note), "%s", no_plots ?
				 "plots were turned off" :
				 "gnuplot was not found");
	}
	return rc;
}

/* The files of every figure: script and data, images when drawn. */
static int record_plots(struct writer *w, struct figures *figs,
			struct kaf_error *err)
{
	for (int i = 0; i < figures_count(figs); i++) {
		const struct kaf_plot *pl = figure_at(figs, i);

		if (pl->state == KAF_PLOT_NOT_APPLICABLE)
			continue;
		for (int e = 0; e < NPLOT_EXTS; e++)
			if (figure_has(pl, e) &&
			    names_add(&w->written, "plots/%s.%s", pl->stem,
				      plot_exts[e]))
				return kaf_error_set(err, KAF_ENOMEM,
						     "report: out of memory");
	}
	return KAF_OK;
}

/* ---- moving into place ---- */

/* Nothing is moved unless every target can be replaced. */
static int check_targets(const struct writer *w, struct kaf_error *err)
{
	for (int i = 0; i < w->written.n; i++) {
		char to[PATH_MAX];
		struct stat st;

		join(to, w->out_dir, w->written.v[i]);
		if (lstat(to, &st) == 0 && S_ISDIR(st.st_mode))
			return kaf_error_set(err, KAF_EIO, "cannot write \"%s\""
					     ": a directory is in the way", to);
	}
	return KAF_OK;
}

/* A file of an earlier report this one did not write. */
static void remove_stale(const struct writer *w, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (names_has(&w->written, name))
		return;
	join(path, w->out_dir, name);
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
		unlink(path);
}

/* Whether a file under plots/ is one a study figure may have left. */
static bool study_file(const char *name)
{
	const char *dot = strrchr(name, '.');
	bool prefixed = false;

	for (int i = 0; kaf_study_plot_prefixes[i]; i++)
		prefixed |= strncmp(name, kaf_study_plot_prefixes[i],
				    strlen(kaf_study_plot_prefixes[i])) == 0;
	for (int e = 0; prefixed && dot && e < NPLOT_EXTS; e++)
		if (strcmp(dot + 1, plot_exts[e]) == 0)
			return true;
	return false;
}

/* The study's figures are named after the sweep's blocks: look. */
static void remove_stale_study(const struct writer *w)
{
	char dir[PATH_MAX], name[512];
	DIR *d;
	struct dirent *e;

	join(dir, w->out_dir, "plots");
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (!study_file(e->d_name) || strlen(e->d_name) > 256)
			continue;
		snprintf(name, sizeof(name), "plots/%s", e->d_name);
		remove_stale(w, name);
	}
	if (d)
		closedir(d);
}

static void remove_stale_all(const struct writer *w)
{
	char name[256];

	for (int i = 0; kaf_render_tables[i]; i++) {
		snprintf(name, sizeof(name), "%s.csv", kaf_render_tables[i]);
		remove_stale(w, name);
	}
	for (int i = 0; i < KAF_PLOT_COUNT; i++) {
		for (int e = 0; e < NPLOT_EXTS; e++) {
			snprintf(name, sizeof(name), "plots/%s.%s",
				 kaf_plot_stems[i], plot_exts[e]);
			remove_stale(w, name);
		}
	}
	remove_stale_study(w);
}

/*
 * rename(2) within one file system: each file appears whole. The set
 * is not atomic: a crash between two renames leaves old and new files
 * side by side (swapping whole directories would avoid it, at the cost
 * of replacing files the user put in the directory).
 */
static int commit(const struct writer *w, struct kaf_error *err)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	int rc = check_targets(w, err);

	if (rc)
		return rc;
	join(to, w->out_dir, "plots");
	if ((mkdir(to, 0777) != 0 && errno != EEXIST) || stat(to, &st) != 0 ||
	    !S_ISDIR(st.st_mode))
		return kaf_error_set(err, KAF_EIO, "cannot create directory "
				     "\"%s\"", to);
	for (int i = 0; i < w->written.n; i++) {
		join(from, w->stage, w->written.v[i]);
		join(to, w->out_dir, w->written.v[i]);
		if (rename(from, to) != 0)
			return kaf_error_set(err, KAF_EIO, "cannot move the "
					     "report into \"%s\": %s", to,
					     strerror(errno));
	}
	remove_stale_all(w);
	return KAF_OK;
}

/* ---- the API ---- */

static int make_stage(const char *out_dir, char *stage, bool *created,
		      struct kaf_error *err)
{
	int rc = make_dirs(out_dir, created, err);

	if (rc)
		return rc;
	join(stage, out_dir, ".kaf-report-XXXXXX");
	if (!mkdtemp(stage)) {
		rc = kaf_error_set(err, KAF_EIO, "cannot write to output "
				   "directory \"%s\": %s", out_dir,
				   strerror(errno));
		if (*created)
			rmdir(out_dir);
	}
	return rc;
}

static int fill_result(const struct writer *w, struct figures *figs,
		       long long sweep_id, struct kaf_report_result *res)
{
	res->sweep_id = sweep_id;
	res->files = calloc((size_t)w->written.n, sizeof(*res->files));
	if (!res->files && w->written.n)
		return KAF_ENOMEM;
	for (int i = 0; i < w->written.n; i++) {
		size_t len = strlen(w->out_dir) + strlen(w->written.v[i]) + 2;

		res->files[i] = malloc(len);
		if (!res->files[i])
			return KAF_ENOMEM;
		snprintf(res->files[i], len, "%s/%s", w->out_dir,
			 w->written.v[i]);
		res->nfiles++;
	}
	for (int i = 0; i < figures_count(figs); i++)
		res->plots_drawn += figure_at(figs, i)->state ==
				    KAF_PLOT_DRAWN;
	return KAF_OK;
}

static void warn_failed(struct figures *figs)
{
	for (int i = 0; i < figures_count(figs); i++) {
		const struct kaf_plot *pl = figure_at(figs, i);

		if (pl->state == KAF_PLOT_FAILED)
			kaf_log_warn("plot %s not drawn: %s", pl->stem,
				     pl->note);
	}
}

/* Everything between the analysis and the move into place. */
static int generate(struct writer *w, const struct kaf_analysis *an,
		    bool no_plots, struct figures *figs,
		    struct kaf_error *why, struct kaf_error *err)
{
	struct kaf_doc *doc = kaf_doc_create();
	int rc;

	if (!doc)
		return kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	rc = draw_plots(w, an, no_plots, figs, why, err);
	if (!rc && kaf_render_report(an, figs->fixed, &figs->study, doc))
		rc = kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	if (!rc)
		rc = write_docs(w, an, doc, err);
	if (!rc)
		rc = record_plots(w, figs, err);
	kaf_doc_destroy(doc);
	return rc;
}

int kaf_report_run(const struct kaf_report_opts *opts,
		   struct kaf_report_result *res, struct kaf_error *err)
{
	const char *db = opts->db_path ? opts->db_path : KAF_REPORT_DEFAULT_DB;
	struct writer w = {.out_dir = opts->out_dir ? opts->out_dir :
			   KAF_REPORT_DEFAULT_DIR};
	struct figures figs = {0};
	struct kaf_analysis *an = NULL;
	struct kaf_error why = {""};
	char stage[PATH_MAX];
	bool created = false;
	int rc;

	if (res)
		*res = (struct kaf_report_result){0};
	rc = kaf_analysis_load(db, opts->sweep_id, &an, err);
	if (!rc)
		rc = make_stage(w.out_dir, stage, &created, err);
	if (rc) {
		kaf_analysis_destroy(an);
		return rc;
	}
	w.stage = stage;
	rc = generate(&w, an, opts->no_plots, &figs, &why, err);
	if (!rc)
		rc = commit(&w, err);
	remove_tree(stage);
	if (rc && created)
		rmdir(w.out_dir);
	if (!rc && !opts->no_plots)
		warn_skipped(&figs, why.msg, w.out_dir);
	if (!rc)
		warn_failed(&figs);
	if (!rc && res && fill_result(&w, &figs, an->sweep_id, res)) {
		kaf_report_result_finish(res);
		rc = kaf_error_set(err, KAF_ENOMEM, "report: out of memory");
	}
	names_finish(&w.written);
	kaf_study_plots_finish(&figs.study);
	kaf_analysis_destroy(an);
	return rc;
}

void kaf_report_result_finish(struct kaf_report_result *res)
{
	for (int i = 0; i < res->nfiles; i++)
		free(res->files[i]);
	free(res->files);
	*res = (struct kaf_report_result){0};
}

int kaf_report_write(const char *db_path, long long sweep_id,
		     const char *out_dir, struct kaf_error *err)
{
	struct kaf_report_opts opts = {
		.db_path = db_path,
		.sweep_id = sweep_id,
		.out_dir = out_dir,
	};

	return kaf_report_run(&opts, NULL, err);
}
