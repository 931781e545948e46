#include "doc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- building ---- */

static char *vformat(const char *fmt, va_list ap)
{
	va_list copy;
	int len;
	char *s;

	va_copy(copy, ap);
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0)
		return NULL;
	s = malloc((size_t)len + 1);
	if (s)
		vsnprintf(s, (size_t)len + 1, fmt, ap);
	return s;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct kaf_doc *kaf_doc_create(void)
{
	return calloc(1, sizeof(struct kaf_doc));
}

static void table_destroy(struct kaf_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	for (int c = 0; c < t->ncols; c++) {
		free(t->cols[c].head);
		free(t->cols[c].key);
	}
	free(t->cells);
	free(t->cols);
	free(t->name);
	free(t);
}

void kaf_doc_destroy(struct kaf_doc *doc)
{
	if (!doc)
		return;
	for (int i = 0; i < doc->nblocks; i++) {
		free(doc->blocks[i].text);
		free(doc->blocks[i].figure.stem);
		free(doc->blocks[i].figure.caption);
		table_destroy(doc->blocks[i].table);
	}
	free(doc->blocks);
	free(doc);
}

int kaf_doc_status(const struct kaf_doc *doc)
{
	return doc->status;
}

/* A new zeroed block, or NULL (and the doc marked failed). */
static struct kaf_block *add_block(struct kaf_doc *doc,
				   enum kaf_block_kind kind)
{
	if (doc->status)
		return NULL;
	if (doc->nblocks == doc->cap) {
		int cap = doc->cap ? 2 * doc->cap : 64;
		struct kaf_block *grown = realloc(doc->blocks, (size_t)cap *
						  sizeof(*grown));

		if (!grown) {
			doc->status = KAF_ENOMEM;
			return NULL;
		}
		doc->blocks = grown;
		doc->cap = cap;
	}
	doc->blocks[doc->nblocks] = (struct kaf_block){.kind = kind};
	return &doc->blocks[doc->nblocks++];
}

static void add_text(struct kaf_doc *doc, enum kaf_block_kind kind,
		     int level, const char *fmt, va_list ap)
{
	struct kaf_block *b = add_block(doc, kind);

	if (!b)
		return;
	b->level = level;
	b->text = vformat(fmt, ap);
	if (!b->text)
		doc->status = KAF_ENOMEM;
}

void kaf_doc_heading(struct kaf_doc *doc, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_text(doc, KAF_BLOCK_HEADING, level, fmt, ap);
	va_end(ap);
}

void kaf_doc_para(struct kaf_doc *doc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_text(doc, KAF_BLOCK_PARA, 0, fmt, ap);
	va_end(ap);
}

void kaf_doc_item(struct kaf_doc *doc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_text(doc, KAF_BLOCK_ITEM, 0, fmt, ap);
	va_end(ap);
}

static void add_figure(struct kaf_doc *doc, const char *stem, bool drawn,
		       bool animated, const char *fmt, va_list ap)
{
	struct kaf_block *b = add_block(doc, KAF_BLOCK_FIGURE);

	if (!b)
		return;
	b->figure = (struct kaf_figure){.stem = strdup(stem),
					.caption = vformat(fmt, ap),
					.drawn = drawn, .animated = animated};
	if (!b->figure.stem || !b->figure.caption)
		doc->status = KAF_ENOMEM;
}

void kaf_doc_figure(struct kaf_doc *doc, const char *stem, bool drawn,
		    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_figure(doc, stem, drawn, false, fmt, ap);
	va_end(ap);
}

void kaf_doc_animation(struct kaf_doc *doc, const char *stem, bool drawn,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_figure(doc, stem, drawn, true, fmt, ap);
	va_end(ap);
}

struct kaf_table *kaf_doc_table(struct kaf_doc *doc, const char *name)
{
	struct kaf_block *b = add_block(doc, KAF_BLOCK_TABLE);

	if (!b)
		return NULL;
	b->table = calloc(1, sizeof(*b->table));
	if (!b->table || !(b->table->name = strdup(name))) {
		doc->status = KAF_ENOMEM;
		return NULL;
	}
	b->table->status = &doc->status;
	return b->table;
}

void kaf_table_column(struct kaf_table *t, const char *head,
		      const char *key, unsigned flags)
{
	struct kaf_column *grown;

	if (!t || *t->status)
		return;
	/* Columns come before rows: the cell array is laid out by them. */
	if (t->nrows > 0) {
		*t->status = KAF_ENOMEM;
		return;
	}
	grown = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof(*grown));
	if (!grown) {
		*t->status = KAF_ENOMEM;
		return;
	}
	t->cols = grown;
	grown[t->ncols] = (struct kaf_column){dup_or_null(head),
					      dup_or_null(key), flags};
	if ((head && !grown[t->ncols].head) || (key && !grown[t->ncols].key))
		*t->status = KAF_ENOMEM;
	t->ncols++;
}

void kaf_table_row(struct kaf_table *t)
{
	if (!t || *t->status)
		return;
	if (t->nrows == t->cap) {
		int cap = t->cap ? 2 * t->cap : 16;
		char **grown = realloc(t->cells, (size_t)cap *
				       (size_t)t->ncols * sizeof(*grown));

		if (!grown) {
			*t->status = KAF_ENOMEM;
			return;
		}
		t->cells = grown;
		t->cap = cap;
	}
	/* Unfilled cells stay empty strings, never NULL pointers. */
	for (int c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = NULL;
	t->nrows++;
	t->filled = 0;
}

void kaf_table_cell(struct kaf_table *t, const char *fmt, ...)
{
	va_list ap;
	char **slot;

	if (!t || *t->status || t->nrows == 0 || t->filled == t->ncols)
		return;
	slot = &t->cells[(t->nrows - 1) * t->ncols + t->filled++];
	va_start(ap, fmt);
	*slot = vformat(fmt, ap);
	va_end(ap);
	if (!*slot)
		*t->status = KAF_ENOMEM;
}

const char *kaf_table_at(const struct kaf_table *t, int row, int col)
{
	const char *s;

	if (row < 0 || row >= t->nrows || col < 0 || col >= t->ncols)
		return NULL;
	s = t->cells[row * t->ncols + col];
	return s ? s : "";
}

/* ---- Markdown ---- */

/*
 * Escape only what would turn into markup: emphasis, table pipes, raw
 * HTML, link brackets. '_' inside words, "< 1e-9" and a lone "[lo, hi]"
 * stay as they are; backticks are left alone so texts may hold code.
 */
static bool md_special(const char *s, bool in_table)
{
	switch (s[0]) {
	case '\\':
	case '*':
		return true;
	case '|':
		return in_table;
	case '<':
		return isalpha((unsigned char)s[1]) || (s[1] && strchr("/!?",
								       s[1]));
	case ']':
		return s[1] == '(' || s[1] == '[' || s[1] == ':';
	default:
		return false;
	}
}

static void md_text(FILE *out, const char *s, bool in_table)
{
	for (; *s; s++) {
		if (md_special(s, in_table))
			fputc('\\', out);
		if (in_table && *s == '\n')
			fputc(' ', out);
		else
			fputc(*s, out);
	}
}

static void md_table(FILE *out, const struct kaf_table *t)
{
	for (int c = 0; c < t->ncols; c++) {
		if (!t->cols[c].head)
			continue;
		fputs("| ", out);
		md_text(out, t->cols[c].head, true);
		fputc(' ', out);
	}
	fputs("|\n", out);
	for (int c = 0; c < t->ncols; c++)
		if (t->cols[c].head)
			fputs(t->cols[c].flags & KAF_COL_RIGHT ? "|---:" :
			      "|:---", out);
	fputs("|\n", out);
	for (int r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			if (!t->cols[c].head)
				continue;
			fputs("| ", out);
			md_text(out, kaf_table_at(t, r, c), true);
			fputc(' ', out);
		}
		fputs("|\n", out);
	}
}

static void md_block(FILE *out, const struct kaf_block *b, bool in_list)
{
	if (b->kind != KAF_BLOCK_ITEM && in_list)
		fputc('\n', out);
	switch (b->kind) {
	case KAF_BLOCK_HEADING:
		fprintf(out, "%.*s ", b->level, "######");
		md_text(out, b->text, false);
		fputs("\n\n", out);
		break;
	case KAF_BLOCK_PARA:
		md_text(out, b->text, false);
		fputs("\n\n", out);
		break;
	case KAF_BLOCK_ITEM:
		fputs("- ", out);
		md_text(out, b->text, false);
		fputc('\n', out);
		break;
	case KAF_BLOCK_TABLE:
		md_table(out, b->table);
		fprintf(out, "\n(CSV: %s.csv)\n\n", b->table->name);
		break;
	case KAF_BLOCK_FIGURE:
		if (b->figure.drawn && b->figure.animated)
			fprintf(out, "![%s](plots/%s.gif)\n\n", b->figure.stem,
				b->figure.stem);
		else if (b->figure.drawn)
			fprintf(out, "![%s](plots/%s.png)\n\n"
				"(vector: plots/%s.svg)\n\n", b->figure.stem,
				b->figure.stem, b->figure.stem);
		md_text(out, b->figure.caption, false);
		fputs("\n\n", out);
		break;
	}
}

int kaf_doc_write_md(const struct kaf_doc *doc, FILE *out)
{
	bool in_list = false;

	for (int i = 0; i < doc->nblocks; i++) {
		md_block(out, &doc->blocks[i], in_list);
		in_list = doc->blocks[i].kind == KAF_BLOCK_ITEM;
	}
	if (in_list)
		fputc('\n', out);
	return ferror(out) ? KAF_EIO : KAF_OK;
}

/* ---- HTML ---- */

static void html_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '&':
			fputs("&amp;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

static const char html_style[] =
	"body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem "
	"auto;padding:0 1rem;line-height:1.45;color:#111}\n"
	"table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}\n"
	"th,td{border:1px solid #bbb;padding:.2rem .5rem}\n"
	"th{background:#eee;text-align:left}\n"
	"td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
	"figure{margin:1rem 0}img{max-width:100%;height:auto}\n"
	"figcaption,.csv{font-size:.9rem;color:#444}\n"
	"@media print{body{max-width:none}figure,table{break-inside:avoid}}\n";

static void html_table(FILE *out, const struct kaf_table *t)
{
	fputs("<table>\n<thead><tr>", out);
	for (int c = 0; c < t->ncols; c++) {
		if (!t->cols[c].head)
			continue;
		fputs("<th>", out);
		html_text(out, t->cols[c].head);
		fputs("</th>", out);
	}
	fputs("</tr></thead>\n<tbody>\n", out);
	for (int r = 0; r < t->nrows; r++) {
		fputs("<tr>", out);
		for (int c = 0; c < t->ncols; c++) {
			if (!t->cols[c].head)
				continue;
			fputs(t->cols[c].flags & KAF_COL_RIGHT ?
			      "<td class=\"num\">" : "<td>", out);
			html_text(out, kaf_table_at(t, r, c));
			fputs("</td>", out);
		}
		fputs("</tr>\n", out);
	}
	fprintf(out, "</tbody></table>\n<p class=\"csv\">CSV: <a href=\""
		"%s.csv\">%s.csv</a></p>\n", t->name, t->name);
}

static const char base64_digits[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(FILE *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		fputc(base64_digits[v >> 18 & 63], out);
		fputc(base64_digits[v >> 12 & 63], out);
		fputc(i + 1 < n ? base64_digits[v >> 6 & 63] : '=', out);
		fputc(i + 2 < n ? base64_digits[v & 63] : '=', out);
	}
}

static int read_file(const char *path, unsigned char **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	long len;

	*data = NULL;
	if (!f)
		return KAF_EIO;
	if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return KAF_EIO;
	}
	*data = malloc((size_t)len + 1);
	*size = *data ? fread(*data, 1, (size_t)len, f) : 0;
	fclose(f);
	if (!*data)
		return KAF_ENOMEM;
	return *size == (size_t)len ? KAF_OK : KAF_EIO;
}

static int html_figure(FILE *out, const struct kaf_figure *fig,
		       const char *dir, struct kaf_error *err)
{
	const char *ext = fig->animated ? "gif" : "png";
	char path[4096];
	unsigned char *image = NULL;
	size_t size = 0;
	int rc;

	fputs("<figure>\n", out);
	if (fig->drawn) {
		snprintf(path, sizeof(path), "%s/plots/%s.%s", dir, fig->stem,
			 ext);
		rc = read_file(path, &image, &size);
		if (rc) {
			free(image);
			return kaf_error_set(err, rc, "cannot embed plot "
					     "\"%s\"", path);
		}
		fputs("<img alt=\"", out);
		html_text(out, fig->stem);
		fprintf(out, "\" src=\"data:image/%s;base64,", ext);
		base64(out, image, size);
		free(image);
		fputs("\">\n", out);
	}
	fputs("<figcaption>", out);
	html_text(out, fig->caption);
	if (fig->drawn && !fig->animated)
		fprintf(out, " (<a href=\"plots/%s.svg\">SVG</a>)", fig->stem);
	fputs("</figcaption>\n</figure>\n", out);
	return KAF_OK;
}

static int html_block(FILE *out, const struct kaf_block *b, bool *in_list,
		      const char *dir, struct kaf_error *err)
{
	if (b->kind == KAF_BLOCK_ITEM && !*in_list)
		fputs("<ul>\n", out);
	if (b->kind != KAF_BLOCK_ITEM && *in_list)
		fputs("</ul>\n", out);
	*in_list = b->kind == KAF_BLOCK_ITEM;
	switch (b->kind) {
	case KAF_BLOCK_HEADING:
		fprintf(out, "<h%d>", b->level);
		html_text(out, b->text);
		fprintf(out, "</h%d>\n", b->level);
		break;
	case KAF_BLOCK_PARA:
	case KAF_BLOCK_ITEM:
		fputs(b->kind == KAF_BLOCK_PARA ? "<p>" : "<li>", out);
		html_text(out, b->text);
		fputs(b->kind == KAF_BLOCK_PARA ? "</p>\n" : "</li>\n", out);
		break;
	case KAF_BLOCK_TABLE:
		html_table(out, b->table);
		break;
	case KAF_BLOCK_FIGURE:
		return html_figure(out, &b->figure, dir, err);
	}
	return KAF_OK;
}

int kaf_doc_write_html(const struct kaf_doc *doc, const char *title,
		       const char *dir, FILE *out, struct kaf_error *err)
{
	bool in_list = false;
	int rc = KAF_OK;

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\""
	      "utf-8\">\n<meta name=\"viewport\" content=\"width=device-width"
	      "\">\n<title>", out);
	html_text(out, title);
	fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n",
		html_style);
	for (int i = 0; i < doc->nblocks && !rc; i++)
		rc = html_block(out, &doc->blocks[i], &in_list, dir, err);
	if (in_list)
		fputs("</ul>\n", out);
	fputs("</body>\n</html>\n", out);
	if (!rc && ferror(out))
		rc = kaf_error_set(err, KAF_EIO, "cannot write report.html");
	return rc;
}

/* ---- CSV ---- */

static void csv_field(FILE *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

int kaf_table_write_csv(const struct kaf_table *t, FILE *out)
{
	for (int r = -1; r < t->nrows; r++) {
		bool first = true;

		for (int c = 0; c < t->ncols; c++) {
			if (!t->cols[c].key)
				continue;
			if (!first)
				fputc(',', out);
			first = false;
			csv_field(out, r < 0 ? t->cols[c].key :
				  kaf_table_at(t, r, c));
		}
		fputc('\n', out);
	}
	return ferror(out) ? KAF_EIO : KAF_OK;
}
