/* launch.c - runs one command and reports its wall time, CPU time and peak
 * resident set size, for the side-by-side benchmark.
 *
 *     launch RESULT_FILE command [args...]
 *
 * writes "status wall_us user_us sys_us maxrss_kib" to RESULT_FILE once
 * the command has exited (status as the shell would give it).
 *
 * Why a launcher: Linux's ru_maxrss of a process counts the pages its
 * address space held before exec(), folded in when exec replaces it. A
 * child forked from Python starts with Python's pages (tens of MiB), so
 * wait4() in Python would report Python's size for a 2 MiB tool. This
 * launcher is built static and tiny; the command forked from it starts
 * with a few dozen KiB, below any real tool, so the ru_maxrss wait4()
 * reports here is the command's own peak (the largest of it and every
 * descendant it waited for: for a shell script, its largest curl or jq).
 * CPU time likewise covers the command and its waited-for descendants.
 * Wall time runs from just before fork() to wait4()'s return. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long t0, wall;
	int status, code;
	pid_t pid;
	FILE *out;

	if (argc < 3) {
		fprintf(stderr, "usage: launch RESULT_FILE command [args...]\n");
		return 2;
	}
	t0 = now_us();
	pid = fork();
	if (pid < 0) {
		perror("launch: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("launch: exec");
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("launch: wait4");
		return 2;
	}
	wall = now_us() - t0;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 2;
	}
	fprintf(out, "%d %lld %lld %lld %ld\n", code, wall,
		(long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
		ru.ru_maxrss);
	if (fclose(out) != 0) {
		perror(argv[1]);
		return 2;
	}
	return code;
}
