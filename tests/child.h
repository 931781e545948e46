/*
 * child.h - running the real kaf binary from a test and reading what it
 * left: start it with a file size limit if asked, wait for it, read a
 * number from its database, hash or read a file. Failures of the
 * harness itself fail the running cmocka test.
 */
#ifndef KAF_TEST_CHILD_H
#define KAF_TEST_CHILD_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct child_opts {
	const char *err_path;   /* standard error goes here; NULL: dropped */
	rlim_t max_file;        /* RLIMIT_FSIZE in bytes; 0: no limit */
};

/*
 * Start the kaf binary bin with args (NULL-terminated), standard output
 * dropped. With a file size limit SIGXFSZ is ignored, as a shell's
 * `ulimit -f` user would see it: writes past the limit fail with EFBIG
 * instead of killing the process.
 */
pid_t child_spawn(const char *bin, const char *const *args,
		  const struct child_opts *o);

/* Exit status, or 128 + signal; *max_rss_kb (if given) from wait4. */
int child_wait(pid_t pid, long *max_rss_kb);

/*
 * The first column of the first row sql gives on the database at path,
 * in *out, waiting up to 5 s for a writer; an SQLite code.
 */
int try_query(const char *path, const char *sql, long *out);

/* As try_query; any failure fails the test. */
long query(const char *path, const char *sql);

/* A database file and its -wal and -shm companions, removed. */
void remove_db(const char *path);

/* The start of a text file (up to 16 KiB), "" if absent; one buffer. */
const char *slurp(const char *path);

/* A hash of every byte of a file; 0 if it cannot be read. */
uint64_t file_hash(const char *path);

#endif
