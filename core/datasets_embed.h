/*
 * datasets_embed.h - the built-in CSV texts, compiled into the binary.
 *
 * Internal to the data module. The table is generated at build time by
 * core/datasets/embed.py so that kaf runs with no data files installed.
 * The texts are static, read-only and safe to share between threads.
 */
#ifndef KAF_DATASETS_EMBED_H
#define KAF_DATASETS_EMBED_H

#include <stddef.h>

struct kaf_builtin_csv {
	const char *name;  /* "iris", ...: the key kaf_dataset_builtin takes */
	const char *text;  /* CSV text; a NUL follows, but len is the length */
	size_t len;        /* bytes of text */
};

extern const struct kaf_builtin_csv kaf_builtin_csvs[];
extern const int kaf_builtin_csv_count;

#endif
