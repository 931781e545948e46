/*
 * child.c - running the real kaf binary from a test; see child.h.
 */
#include "child.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

pid_t child_spawn(const char *bin, const char *const *args,
		  const struct child_opts *o)
{
	const char *argv[64] = {bin};
	int n = 1;
	pid_t pid;

	for (; args[n - 1]; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int out = open("/dev/null", O_WRONLY);
		int err = open(o && o->err_path ? o->err_path : "/dev/null",
			       O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		if (o && o->max_file) {
			struct rlimit rl = {o->max_file, o->max_file};

			signal(SIGXFSZ, SIG_IGN);
			setrlimit(RLIMIT_FSIZE, &rl);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int child_wait(pid_t pid, long *max_rss_kb)
{
	struct rusage ru;
	int status;

	assert_int_equal(wait4(pid, &status, 0, &ru), pid);
	if (max_rss_kb)
		*max_rss_kb = ru.ru_maxrss;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int try_query(const char *path, const char *sql, long *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(stmt, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return rc;
}

long query(const char *path, const char *sql)
{
	long v = -1;
	int rc = try_query(path, sql, &v);

	if (rc != SQLITE_OK)
		fail_msg("%s on %s: %s", sql, path, sqlite3_errstr(rc));
	return v;
}

void remove_db(const char *path)
{
	char other[300];

	unlink(path);
	snprintf(other, sizeof(other), "%.255s-wal", path);
	unlink(other);
	snprintf(other, sizeof(other), "%.255s-shm", path);
	unlink(other);
}

const char *slurp(const char *path)
{
	static char buf[16384];
	FILE *fp = fopen(path, "r");
	size_t len = 0;

	if (fp) {
		len = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
	}
	buf[len] = '\0';
	return buf;
}

uint64_t file_hash(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint64_t h = 14695981039346656037u;
	int c;

	if (!fp)
		return 0;
	while ((c = getc(fp)) != EOF)
		h = (h ^ (uint64_t)c) * 1099511628211u;
	fclose(fp);
	return h;
}
