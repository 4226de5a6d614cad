#define _GNU_SOURCE
#include "campaign_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Argument vectors are built in an arena of fixed strings: no allocation in the child. */
#define ARGV_MAX 64
#define ARG_LEN 4200

struct argv_builder {
	char text[ARGV_MAX][ARG_LEN];
	char *argv[ARGV_MAX + 1];
	unsigned n;
};

static void arg_add(struct argv_builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void arg_add(struct argv_builder *b, const char *fmt, ...)
{
	va_list ap;

	if (b->n == ARGV_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(b->text[b->n], ARG_LEN, fmt, ap);
	va_end(ap);
	b->argv[b->n] = b->text[b->n];
	b->argv[++b->n] = NULL;
}

const char *engine_name(enum engine_kind kind)
{
	return kind == ENGINE_AFL ? "afl" : "libfuzzer";
}

int engine_parse_name(const char *name, enum engine_kind *kind)
{
	if (!strcmp(name, "libfuzzer"))
		*kind = ENGINE_LIBFUZZER;
	else if (!strcmp(name, "afl"))
		*kind = ENGINE_AFL;
	else
		return -1;
	return 0;
}

void engine_queue_dir(const struct engine_plan *plan, char *buf, size_t len)
{
	snprintf(buf, len, "%s/queue", plan->out_dir);
}

/* libFuzzer's fork mode keeps fuzzing after a crash (-ignore_crashes) and writes each
 * crash input to the artifact prefix; new corpus entries go to the first directory. */
static void libfuzzer_argv(const struct engine_plan *plan, struct argv_builder *b)
{
	arg_add(b, "%s", plan->target);
	arg_add(b, "%s/queue", plan->out_dir);
	arg_add(b, "-fork=%u", plan->jobs);
	arg_add(b, "-ignore_crashes=1");
	arg_add(b, "-ignore_timeouts=1");
	arg_add(b, "-ignore_ooms=1");
	arg_add(b, "-artifact_prefix=%s/crashes/", plan->out_dir);
	arg_add(b, "-max_total_time=%u", plan->seconds);
	arg_add(b, "-timeout=10");
	arg_add(b, "-rss_limit_mb=2048");
	/* Programs that expose shadow-MMU bugs are short (corpus/bugs: at most 14 ops, about
	 * 100 bytes); capping inputs at ~60 ops keeps executions fast and mutations focused. */
	arg_add(b, "-max_len=%u", ENGINE_MAX_LEN);
	/* No comparison feedback (-use_value_profile): the libFuzzer presets build without
	 * trace-cmp, whose hooks cost a third of the executions and found the planted bugs no
	 * sooner; nor the entropic schedule, whose per-feature bookkeeping took half of all
	 * instructions (docs/benchmarks.md). */
	arg_add(b, "-entropic=0");
	arg_add(b, "-print_final_stats=1");
	if (plan->dict)
		arg_add(b, "-dict=%s", plan->dict);
	for (unsigned i = 0; i < plan->n_extra_args; i++)
		arg_add(b, "%s", plan->extra_args[i]);
}

/* Instance job of AFL++: 0 is the main (-M), the others secondaries (-S), which use the
 * CmpLog build when there is one. */
static void afl_argv(const struct engine_plan *plan, unsigned job, struct argv_builder *b)
{
	arg_add(b, "afl-fuzz");
	arg_add(b, "-i");
	arg_add(b, "%s/queue", plan->out_dir);
	arg_add(b, "-o");
	arg_add(b, "%s/afl", plan->out_dir);
	if (job == 0) {
		arg_add(b, "-M");
		arg_add(b, "main");
	} else {
		arg_add(b, "-S");
		arg_add(b, "secondary%u", job);
		if (plan->cmplog_target) {
			arg_add(b, "-c");
			arg_add(b, "%s", plan->cmplog_target);
		}
	}
	arg_add(b, "-V");
	arg_add(b, "%u", plan->seconds);
	arg_add(b, "-t");
	arg_add(b, "10000");
	if (plan->dict) {
		arg_add(b, "-x");
		arg_add(b, "%s", plan->dict);
	}
	for (unsigned i = 0; i < plan->n_extra_args; i++)
		arg_add(b, "%s", plan->extra_args[i]);
	arg_add(b, "--");
	arg_add(b, "%s", plan->target);
}

static void afl_environment(const struct engine_plan *plan)
{
	setenv("AFL_NO_UI", "1", 1);
	setenv("AFL_AUTORESUME", "1", 1);
	setenv("AFL_SKIP_CPUFREQ", "1", 1);
	setenv("AFL_IGNORE_UNKNOWN_ENVS", "1", 1);
	if (plan->mutator_lib)
		setenv("AFL_CUSTOM_MUTATOR_LIBRARY", plan->mutator_lib, 1);
}

/* In the child: join the engine's process group, send output to the pipe, exec. */
static void exec_child(pid_t group, int out_fd, char **argv, bool search_path)
{
	setpgid(0, group);
	dup2(out_fd, STDOUT_FILENO);
	dup2(out_fd, STDERR_FILENO);
	close(out_fd);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (search_path)
		execvp(argv[0], argv);
	else
		execv(argv[0], argv);
	dprintf(STDERR_FILENO, "shadowfuzz fuzz: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int spawn(struct engine_run *run, int out_fd, char **argv, bool search_path, char *err,
		 size_t errlen)
{
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		exec_child(run->group, out_fd, argv, search_path);
	if (!run->group)
		run->group = pid;
	/* Also from the parent, so a signal sent right after fork finds the group. */
	setpgid(pid, run->group);
	run->pids[run->n_pids++] = pid;
	return 0;
}

int engine_start(const struct engine_plan *plan, struct engine_run *run, char *err, size_t errlen)
{
	static struct argv_builder builder;
	int fds[2];
	int ret = 0;

	memset(run, 0, sizeof(*run));
	if (pipe2(fds, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	/* The write end must survive exec in the children (dup2 clears O_CLOEXEC there). */
	if (plan->kind == ENGINE_LIBFUZZER) {
		memset(&builder, 0, sizeof(builder));
		libfuzzer_argv(plan, &builder);
		ret = spawn(run, fds[1], builder.argv, false, err, errlen);
	} else {
		afl_environment(plan);
		for (unsigned job = 0; job < plan->jobs && !ret; job++) {
			memset(&builder, 0, sizeof(builder));
			afl_argv(plan, job, &builder);
			ret = spawn(run, fds[1], builder.argv, true, err, errlen);
		}
	}
	close(fds[1]);
	run->output_fd = fds[0];
	return ret;
}

static uint64_t number_after(const char *line, const char *key)
{
	const char *at = strstr(line, key);

	return at ? strtoull(at + strlen(key), NULL, 10) : 0;
}

/* libFuzzer prints "#4733: cov: 9066 ft: 10412 corp: 495 ... oom/timeout/crash: 0/0/4"
 * in fork mode and "#4733 NEW cov: 9066 ft: .. corp: 495/30Kb ..." otherwise. */
void engine_parse_line(const struct engine_plan *plan, const char *line, struct engine_stats *stats)
{
	const char *crash;

	if (plan->kind != ENGINE_LIBFUZZER || line[0] != '#' || !strstr(line, "cov: "))
		return;
	stats->execs = strtoull(line + 1, NULL, 10);
	stats->coverage = number_after(line, "cov: ");
	stats->corpus = number_after(line, "corp: ");
	crash = strstr(line, "oom/timeout/crash: ");
	if (crash) {
		crash = strrchr(crash, '/');
		stats->engine_crashes = strtoull(crash + 1, NULL, 10);
	}
}

/* AFL++'s fuzzer_stats: "key   : value" lines, one file per instance. */
static void afl_read_stats(const char *path, struct engine_stats *sum)
{
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		uint64_t value;

		if (!colon)
			continue;
		value = strtoull(colon + 1, NULL, 10);
		if (!strncmp(line, "execs_done ", 11))
			sum->execs += value;
		else if (!strncmp(line, "corpus_count ", 13))
			sum->corpus = value > sum->corpus ? value : sum->corpus;
		else if (!strncmp(line, "edges_found ", 12))
			sum->coverage = value > sum->coverage ? value : sum->coverage;
		else if (!strncmp(line, "saved_crashes ", 14) || !strncmp(line, "unique_crashes ", 15))
			sum->engine_crashes += value;
	}
	fclose(f);
}

static void afl_instance_dir(const struct engine_plan *plan, unsigned job, const char *leaf,
			     char *buf, size_t len)
{
	if (job == 0)
		snprintf(buf, len, "%s/afl/main/%s", plan->out_dir, leaf);
	else
		snprintf(buf, len, "%s/afl/secondary%u/%s", plan->out_dir, job, leaf);
}

void engine_poll_files(const struct engine_plan *plan, struct engine_stats *stats)
{
	struct engine_stats sum = { 0 };
	char path[4096];

	if (plan->kind != ENGINE_AFL)
		return;
	for (unsigned job = 0; job < plan->jobs; job++) {
		afl_instance_dir(plan, job, "fuzzer_stats", path, sizeof(path));
		afl_read_stats(path, &sum);
	}
	if (sum.execs)
		*stats = sum;
}

unsigned engine_crash_dirs(const struct engine_plan *plan, char dirs[][4096], unsigned max)
{
	unsigned n = 0;

	if (plan->kind == ENGINE_LIBFUZZER) {
		snprintf(dirs[n++], 4096, "%s/crashes", plan->out_dir);
		return n;
	}
	for (unsigned job = 0; job < plan->jobs && n < max; job++)
		afl_instance_dir(plan, job, "crashes", dirs[n++], 4096);
	return n;
}

bool engine_is_crash_file(const struct engine_plan *plan, const char *name)
{
	if (plan->kind == ENGINE_AFL)
		return !strncmp(name, "id:", 3);
	return !strncmp(name, "crash-", 6) || !strncmp(name, "timeout-", 8) ||
	       !strncmp(name, "oom-", 4) || !strncmp(name, "leak-", 5);
}
