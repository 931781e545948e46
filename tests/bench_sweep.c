/*
 * bench_sweep.c - the whole experiment-3 preset, start to finish with
 * storage, on 1 and 2 threads; and the peak memory of a sweep of 10^5
 * runs against one of 10^6 runs (which must not grow with the run count).
 * Runs the real kaf binary and measures it with wait4().
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KAF_BIN
#error "KAF_BIN must name the kaf binary"
#endif

struct usage {
	double seconds;
	long max_rss_kb;
	int status;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct usage run(const char *db, const char *const *extra)
{
	const char *argv[32] = {KAF_BIN, "sweep", "--db", db, "--quiet",
				"--no-report"};
	struct usage u = {0};
	struct rusage ru;
	int n = 6, status;
	double t0 = now();
	pid_t pid;

	for (; *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	unlink(db);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execv(KAF_BIN, (char *const *)argv);
		_exit(127);
	}
	wait4(pid, &status, 0, &ru);
	u.seconds = now() - t0;
	u.max_rss_kb = ru.ru_maxrss;
	u.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	unlink(db);
	return u;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/kaf_bench_XXXXXX", db[128];
	const char *one[] = {"--preset", "exp3", "--threads", "1", NULL};
	const char *two[] = {"--preset", "exp3", "--threads", "2", NULL};
	/* Cheap runs, so that a million of them take a minute. */
	const char *small[] = {"--set", "dataset=iris", "--set", "hidden=4",
			       "--set", "calc_num=30", "--set", "epochs=1",
			       "--runs", "4167", NULL};
	const char *large[] = {"--set", "dataset=iris", "--set", "hidden=4",
			       "--set", "calc_num=30", "--set", "epochs=1",
			       "--runs", "41667", NULL};
	bool memory = argc < 2 || strcmp(argv[1], "--no-memory");
	struct usage a, b;

	if (!mkdtemp(dir))
		return 1;
	snprintf(db, sizeof(db), "%s/bench.db", dir);
	a = run(db, one);
	b = run(db, two);
	if (a.status || b.status)
		return 1;
	printf("exp3 (24000 runs): %.2f s on 1 thread, %.2f s on 2 threads, "
	       "speed-up %.2fx\n", a.seconds, b.seconds, a.seconds / b.seconds);
	if (memory) {
		a = run(db, small);
		b = run(db, large);
		if (a.status || b.status)
			return 1;
		printf("peak memory: %ld KiB for 10^5 runs, %ld KiB for 10^6 "
		       "runs (ratio %.2f; %.1f s)\n", a.max_rss_kb,
		       b.max_rss_kb, (double)b.max_rss_kb / a.max_rss_kb,
		       b.seconds);
	}
	rmdir(dir);
	return 0;
}
