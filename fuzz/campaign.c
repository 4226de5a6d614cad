/* shadowfuzz fuzz: a campaign. Starts the fuzzing engine on the campaign's queue, shows one
 * live progress line, replays every crash file the engine writes, keeps one finding per
 * divergence signature (fuzz/findings.h), and ends with a summary (also summary.json).
 * Ctrl-C stops the engine and still files everything found. Layout of the campaign
 * directory: queue/ (resumable corpus), crashes/ or afl/ (the engine's own files),
 * findings/<signature>/, fuzz.log (the engine's output), summary.json. */
#define _GNU_SOURCE
#include "campaign.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "campaign_engine.h"
#include "cli_common.h"
#include "findings.h"

/* Seconds past --time before the engine is told to stop, and then killed. */
#define OVERRUN_STOP_S 30
#define OVERRUN_KILL_S 60
#define STOP_GRACE_S 10.0
#define PROGRESS_TTY_S 1.0
#define PROGRESS_LOG_S 10.0
/* Crash files are replayed within a second, so time-to-detection is measured finely. */
#define SCAN_INTERVAL_S 1.0
#define MAX_CRASH_DIRS ENGINE_MAX_JOBS

static volatile sig_atomic_t interrupts;

static void on_interrupt(int sig) { interrupts++; }

struct seen_names {
	char **names;
	size_t n, cap;
};

struct campaign {
	struct common_options common;
	struct engine_plan plan;
	const char *out_dir;
	bool stop_on_finding;
	char findings_dir[4096];
	int log_fd;
	struct engine_run run;
	unsigned running; /* children not yet reaped */
	int worst_status; /* first abnormal engine exit status, 0 if none */
	struct engine_stats stats;
	struct finding_store *store;
	struct executor *replay;
	/* The model without the planted bugs (NULL when none are planted). */
	struct executor *baseline;
	struct seen_names seen;
	double start, last_progress, last_scan, first_finding_s, stop_sent_at;
	unsigned signals_sent;
	bool tty, io_error;
	char line[8192];
	size_t line_len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage_fuzz(FILE *out)
{
	fprintf(out,
		"usage: shadowfuzz fuzz [options] [SEED...]\n"
		"Runs a fuzzing campaign against the model: the engine fuzzes the campaign's queue\n"
		"(seeded with the SEED programs, text or binary, encoded into it), every crash it\n"
		"reports is replayed here and filed once per divergence signature in\n"
		"OUT/findings/<signature>/ (crash-input.bin, program.sfp, report.txt). Ctrl-C stops the\n"
		"engine and keeps everything found. Exit: 0 no divergence, 1 findings, 2 error.\n"
		"  --time S        seconds to fuzz (default 600)\n"
		"  --engine E      libfuzzer (default) or afl\n"
		"  --jobs N        parallel engine processes (default 1)\n"
		"  --out DIR       campaign directory (default campaigns/PROFILE[-BUG...])\n"
		"  --target PATH   the engine's fuzz target (default: the libfuzzer or afl build\n"
		"                  beside this program's build)\n"
		"  --cmplog PATH   AFL++: CmpLog build of the target for the secondaries\n"
		"  --dict FILE     dictionary for the engine\n"
		"  --mutator LIB   AFL++: custom mutator library\n"
		"  --engine-arg A  pass A to the engine (repeatable)\n"
		"  --stop-on-finding  end the campaign at its first new divergence\n");
	usage_common(out);
}

/* The default target: <build>/<preset>/fuzz/shadowfuzz_fuzzer beside the build this
 * program comes from (<build>/release/fuzz/shadowfuzz). */
static const char *default_target(enum engine_kind kind, const char *preset_override)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return NULL;
	self[n] = 0;
	for (int up = 0; up < 3; up++) {
		slash = strrchr(self, '/');
		if (!slash)
			return NULL;
		*slash = 0;
	}
	snprintf(path, sizeof(path), "%.3900s/%s/fuzz/shadowfuzz_fuzzer", self,
		 preset_override ? preset_override : kind == ENGINE_AFL ? "afl" : "libfuzzer");
	return path;
}

static int parse_uint(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!*arg || *end || v < min || v > max) {
		fprintf(stderr, "shadowfuzz fuzz: %s wants a whole number in %u..%u, not '%s'\n", opt,
			min, max, arg);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

enum { OPT_TIME = 256, OPT_ENGINE, OPT_JOBS, OPT_TARGET, OPT_CMPLOG, OPT_DICT, OPT_MUTATOR,
       OPT_ENGINE_ARG, OPT_STOP };

static int parse_own_option(int opt, const char *arg, void *ctx)
{
	struct campaign *c = ctx;
	switch (opt) {
	case OPT_TIME:
		return parse_uint("--time", arg, 1, 30 * 24 * 3600, &c->plan.seconds);
	case OPT_JOBS:
		return parse_uint("--jobs", arg, 1, ENGINE_MAX_JOBS, &c->plan.jobs);
	case OPT_ENGINE:
		if (engine_parse_name(arg, &c->plan.kind) == 0)
			return 0;
		fprintf(stderr, "shadowfuzz fuzz: unknown engine '%s' (libfuzzer or afl)\n", arg);
		return -1;
	case 'o':
		c->out_dir = arg;
		return 0;
	case OPT_TARGET:
		c->plan.target = arg;
		return 0;
	case OPT_CMPLOG:
		c->plan.cmplog_target = arg;
		return 0;
	case OPT_DICT:
		c->plan.dict = arg;
		return 0;
	case OPT_MUTATOR:
		c->plan.mutator_lib = arg;
		return 0;
	case OPT_ENGINE_ARG:
		if (c->plan.n_extra_args == ENGINE_MAX_EXTRA_ARGS) {
			fprintf(stderr, "shadowfuzz fuzz: too many --engine-arg\n");
			return -1;
		}
		c->plan.extra_args[c->plan.n_extra_args++] = arg;
		return 0;
	case OPT_STOP:
		c->stop_on_finding = true;
		return 0;
	default:
		return -1;
	}
}

/* Returns -1 to exit with usage error, 1 for --help, 0 to go on. */
static int parse_options(int argc, char **argv, struct campaign *c)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "time", required_argument, NULL, OPT_TIME },
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ "out", required_argument, NULL, 'o' },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "cmplog", required_argument, NULL, OPT_CMPLOG },
		{ "dict", required_argument, NULL, OPT_DICT },
		{ "mutator", required_argument, NULL, OPT_MUTATOR },
		{ "engine-arg", required_argument, NULL, OPT_ENGINE_ARG },
		{ "stop-on-finding", no_argument, NULL, OPT_STOP },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	return parse_command_line(argc, argv, "p:b:H:o:h", longopts, &c->common, parse_own_option, c);
}

static int check_executable(const char *what, const char *path)
{
	if (path && access(path, X_OK) == 0)
		return 0;
	fprintf(stderr,
		"shadowfuzz fuzz: no %s at %s: build it first (cmake --preset libfuzzer && cmake "
		"--build --preset libfuzzer; scripts/fuzz does this) or name one with --target\n",
		what, path ? path : "(unknown)");
	return -1;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) == 0 || errno == EEXIST)
		return 0;
	fprintf(stderr, "shadowfuzz fuzz: cannot create %s: %s\n", path, strerror(errno));
	return -1;
}

/* The campaign directory and its parents (campaigns/ on a fresh clone). */
static int make_dirs(const char *path)
{
	char partial[4096];

	snprintf(partial, sizeof(partial), "%s", path);
	for (char *slash = strchr(partial + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		if (mkdir(partial, 0755) && errno != EEXIST) {
			fprintf(stderr, "shadowfuzz fuzz: cannot create %s: %s\n", partial, strerror(errno));
			return -1;
		}
		*slash = '/';
	}
	return make_dir(partial);
}

static int make_layout(struct campaign *c)
{
	char path[4096];

	if (make_dirs(c->out_dir))
		return -1;
	engine_queue_dir(&c->plan, path, sizeof(path));
	if (make_dir(path))
		return -1;
	snprintf(path, sizeof(path), "%s/crashes", c->out_dir);
	if (c->plan.kind == ENGINE_LIBFUZZER && make_dir(path))
		return -1;
	snprintf(c->findings_dir, sizeof(c->findings_dir), "%s/findings", c->out_dir);
	return make_dir(c->findings_dir);
}

/* Seeds go into the queue in binary form, NAME.bin; existing files are kept. */
static int encode_seed(struct campaign *c, const char *file, unsigned *added)
{
	char err[512], queue[4096];
	int r;

	engine_queue_dir(&c->plan, queue, sizeof(queue));
	r = program_encode_into(file, queue, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "shadowfuzz fuzz: seed %s\n", err);
		return -1;
	}
	*added += r == 0;
	return 0;
}

static bool dir_is_empty(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *entry;
	bool empty = true;

	if (!dir)
		return true;
	while (empty && (entry = readdir(dir)))
		empty = entry->d_name[0] == '.';
	closedir(dir);
	return empty;
}

/* AFL++ refuses an empty input directory: give it the empty program. */
static int ensure_queue_not_empty(struct campaign *c)
{
	char queue[4096], path[4200], err[512];

	engine_queue_dir(&c->plan, queue, sizeof(queue));
	if (!dir_is_empty(queue))
		return 0;
	snprintf(path, sizeof(path), "%s/empty.bin", queue);
	if (file_write_new(path, "", 0, err, sizeof(err)) < 0) {
		fprintf(stderr, "shadowfuzz fuzz: %s\n", err);
		return -1;
	}
	return 0;
}

static void set_engine_environment(const struct common_options *common)
{
	char bugs[512] = "";
	size_t used = 0;

	setenv("SHADOWFUZZ_PROFILE", kvm_profile_name(common->profile), 1);
	for (int b = 0; b < KVM_BUG_COUNT; b++)
		if (common->bugs & (1ull << b))
			used += (size_t)snprintf(bugs + used, sizeof(bugs) - used, "%s%s", used ? "," : "",
						 kvm_bug_info(b)->id);
	if (used)
		setenv("SHADOWFUZZ_BUGS", bugs, 1);
	else
		unsetenv("SHADOWFUZZ_BUGS");
	if (common->host_phys_bits) {
		char bits[16];

		snprintf(bits, sizeof(bits), "%d", common->host_phys_bits);
		setenv("SHADOWFUZZ_HOST_PHYS_BITS", bits, 1);
	} else {
		unsetenv("SHADOWFUZZ_HOST_PHYS_BITS");
	}
	if (common->no_prefetch)
		setenv("SHADOWFUZZ_NO_PREFETCH", "1", 1);
	else
		unsetenv("SHADOWFUZZ_NO_PREFETCH");
}

/* Every abort of the fuzz target appends its report to OUT/aborts.log (the engines keep
 * no stderr of AFL++'s targets or of libFuzzer's fork-mode children). */
static void set_abort_log(const struct campaign *c)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/aborts.log", c->out_dir);
	setenv("SHADOWFUZZ_ABORT_LOG", path, 1);
}

static bool seen_before(struct seen_names *seen, const char *name)
{
	char **grown;

	for (size_t i = 0; i < seen->n; i++)
		if (!strcmp(seen->names[i], name))
			return true;
	if (seen->n == seen->cap) {
		size_t cap = seen->cap ? 2 * seen->cap : 64;

		grown = realloc(seen->names, cap * sizeof(*grown));
		if (!grown)
			return true;
		seen->names = grown;
		seen->cap = cap;
	}
	seen->names[seen->n] = strdup(name);
	if (seen->names[seen->n])
		seen->n++;
	return false;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (data = malloc((size_t)size + 1)) && fread(data, 1, (size_t)size, f) == (size_t)size) {
		*len = (size_t)size;
	} else {
		free(data);
		data = NULL;
	}
	fclose(f);
	return data;
}

static void clear_progress(struct campaign *c)
{
	if (c->tty)
		fprintf(stderr, "\r\033[K");
}

static void file_crash(struct campaign *c, const char *path)
{
	struct finding_result result;
	char err[512];
	size_t len;
	uint8_t *data = read_whole(path, &len);

	if (!data) {
		fprintf(stderr, "shadowfuzz fuzz: cannot read %s: %s\n", path, strerror(errno));
		c->io_error = true;
		return;
	}
	if (finding_store_add(c->store, c->replay, data, len, path, &result, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz fuzz: %s\n", err);
		c->io_error = true;
	} else if (result.is_new) {
		/* With planted bugs only a divergence the unmodified model does not show counts
		 * as the campaign's first (bench bugs measures it). */
		bool counts = c->baseline ? result.planted : strcmp(result.signature, SIGNATURE_UNREPRODUCED);

		if (c->first_finding_s < 0 && counts)
			c->first_finding_s = now_s() - c->start;
		clear_progress(c);
		fprintf(stderr, "NEW FINDING %s: %s/%s/report.txt\n", result.signature,
			c->findings_dir, result.signature);
	}
	free(data);
}

/* Files crash inputs not seen yet. While the engine runs, a file younger than a second
 * may still be being written; the last scan (final) takes everything. */
static void scan_crashes(struct campaign *c, bool final)
{
	char dirs[MAX_CRASH_DIRS][4096];
	unsigned n = engine_crash_dirs(&c->plan, dirs, MAX_CRASH_DIRS);
	time_t now = time(NULL);

	for (unsigned d = 0; d < n; d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *entry;

		while (dir && (entry = readdir(dir))) {
			char path[8192];
			struct stat st;

			if (!engine_is_crash_file(&c->plan, entry->d_name))
				continue;
			snprintf(path, sizeof(path), "%.4000s/%.255s", dirs[d], entry->d_name);
			if (stat(path, &st) || (!final && st.st_mtime >= now))
				continue;
			if (!seen_before(&c->seen, path))
				file_crash(c, path);
		}
		if (dir)
			closedir(dir);
	}
}

static void format_duration(double s, char *buf, size_t len)
{
	unsigned t = (unsigned)s;

	snprintf(buf, len, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
}

static void print_progress(struct campaign *c, double now)
{
	char elapsed[32], total[32];
	double t = now - c->start;

	format_duration(t, elapsed, sizeof(elapsed));
	format_duration(c->plan.seconds, total, sizeof(total));
	fprintf(stderr, "%s[%s/%s] execs %llu (%.0f/s)  cov %llu  corpus %llu  findings %u (%u inputs)%s",
		c->tty ? "\r\033[K" : "", elapsed, total, (unsigned long long)c->stats.execs,
		t > 0 ? c->stats.execs / t : 0.0, (unsigned long long)c->stats.coverage,
		(unsigned long long)c->stats.corpus, finding_store_unique(c->store),
		finding_store_inputs(c->store), c->tty ? "" : "\n");
	c->last_progress = now;
}

static void take_output(struct campaign *c, const char *data, size_t len)
{
	if (write(c->log_fd, data, len) != (ssize_t)len)
		c->io_error = true;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n' && c->line_len + 1 < sizeof(c->line)) {
			c->line[c->line_len++] = data[i];
			continue;
		}
		c->line[c->line_len] = 0;
		engine_parse_line(&c->plan, c->line, &c->stats);
		c->line_len = 0;
	}
}

/* Reads engine output for up to timeout_ms; returns false once the output is closed. */
static bool pump_output(struct campaign *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->run.output_fd, .events = POLLIN };
	char buf[16384];
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return true;
	n = read(c->run.output_fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	take_output(c, buf, (size_t)n);
	return true;
}

static void reap_children(struct campaign *c)
{
	int status;

	while (c->running && waitpid(-c->run.group, &status, WNOHANG) > 0) {
		c->running--;
		/* libFuzzer exits non-zero after it saw crashes; only a signal or failing to
		 * start (127) is abnormal. */
		if (!c->worst_status && (WIFSIGNALED(status) || WEXITSTATUS(status) == 127) &&
		    !(WIFSIGNALED(status) && c->signals_sent))
			c->worst_status = status;
	}
}

static void signal_engine(struct campaign *c, int sig)
{
	kill(-c->run.group, sig);
	c->signals_sent++;
}

/* Stops the engine when asked (Ctrl-C, first finding) or when it overruns --time.
 * SIGTERM, not SIGINT: libFuzzer's fork mode runs its jobs with system(), which ignores
 * SIGINT in the waiting parent; both engines stop cleanly on SIGTERM. One that has not
 * stopped STOP_GRACE_S later is killed. */
static void enforce_limits(struct campaign *c, double now)
{
	double over = now - c->start - c->plan.seconds;
	bool want_stop = interrupts > 0 || over > OVERRUN_STOP_S ||
			 (c->stop_on_finding && c->first_finding_s >= 0);

	if (want_stop && c->signals_sent == 0) {
		signal_engine(c, SIGTERM);
		c->stop_sent_at = now;
	}
	if (c->signals_sent == 1 &&
	    (interrupts > 1 || over > OVERRUN_KILL_S || now - c->stop_sent_at > STOP_GRACE_S))
		signal_engine(c, SIGKILL);
}

static void supervise(struct campaign *c)
{
	bool open = true;

	while (open || c->running) {
		double now;

		if (open)
			open = pump_output(c, 200);
		else
			usleep(200 * 1000);
		reap_children(c);
		now = now_s();
		enforce_limits(c, now);
		if (now - c->last_scan >= SCAN_INTERVAL_S) {
			engine_poll_files(&c->plan, &c->stats);
			scan_crashes(c, false);
			c->last_scan = now;
		}
		if (now - c->last_progress >= (c->tty ? PROGRESS_TTY_S : PROGRESS_LOG_S))
			print_progress(c, now);
	}
	engine_poll_files(&c->plan, &c->stats);
	scan_crashes(c, true);
	clear_progress(c);
}

/* The largest resident set of any engine process the campaign has waited for (ru_maxrss
 * of the children, grandchildren included once their parent reaped them), in MB. */
static json_int_t engine_peak_rss_mb(void)
{
	struct rusage usage;

	if (getrusage(RUSAGE_CHILDREN, &usage))
		return -1;
	return (json_int_t)(usage.ru_maxrss / 1024);
}

static int write_summary_json(struct campaign *c, double elapsed)
{
	json_t *root = json_object(), *findings = json_array();
	char path[4096], tmp[4200], describe[512];
	const char *sig;
	unsigned inputs;
	int bad;

	common_describe(&c->common, describe, sizeof(describe));
	json_object_set_new(root, "model", json_string(describe));
	json_object_set_new(root, "engine", json_string(engine_name(c->plan.kind)));
	json_object_set_new(root, "jobs", json_integer(c->plan.jobs));
	json_object_set_new(root, "seconds", json_real(elapsed));
	json_object_set_new(root, "execs", json_integer((json_int_t)c->stats.execs));
	json_object_set_new(root, "coverage", json_integer((json_int_t)c->stats.coverage));
	json_object_set_new(root, "corpus", json_integer((json_int_t)c->stats.corpus));
	json_object_set_new(root, "engine_peak_rss_mb", json_integer(engine_peak_rss_mb()));
	json_object_set_new(root, "first_divergence_seconds",
			    c->first_finding_s >= 0 ? json_real(c->first_finding_s) : json_null());
	for (unsigned i = 0; (sig = finding_store_signature(c->store, i, &inputs)); i++)
		if (inputs)
			json_array_append_new(findings, json_pack("{s:s, s:i}", "signature", sig,
								  "inputs", (json_int_t)inputs));
	json_object_set_new(root, "findings", findings);
	snprintf(path, sizeof(path), "%s/summary.json", c->out_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	bad = json_dump_file(root, tmp, JSON_INDENT(2)) || rename(tmp, path);
	json_decref(root);
	if (bad)
		fprintf(stderr, "shadowfuzz fuzz: cannot write %s\n", path);
	return bad ? -1 : 0;
}

static void print_summary(struct campaign *c, double elapsed)
{
	char duration[32];
	const char *sig;
	unsigned inputs;

	format_duration(elapsed, duration, sizeof(duration));
	printf("== campaign %s: %s, %llu execs (%.0f/s), coverage %llu, corpus %llu%s\n",
	       interrupts ? "interrupted"
	       : c->stop_on_finding && c->first_finding_s >= 0 ? "stopped at its first divergence"
							       : "done", duration, (unsigned long long)c->stats.execs,
	       elapsed > 0 ? c->stats.execs / elapsed : 0.0, (unsigned long long)c->stats.coverage,
	       (unsigned long long)c->stats.corpus, c->worst_status ? " (engine failed, see fuzz.log)" : "");
	printf("== findings: %u signature(s) from %u crash input(s) in %s\n",
	       finding_store_unique(c->store), finding_store_inputs(c->store), c->findings_dir);
	for (unsigned i = 0; (sig = finding_store_signature(c->store, i, &inputs)); i++)
		if (inputs)
			printf("   %-32s %4u input(s)  %s/%s/report.txt\n", sig, inputs,
			       c->findings_dir, sig);
	if (c->first_finding_s >= 0)
		printf("== first divergence after %.1f s\n", c->first_finding_s);
}

/* The unmodified model, to tell a planted bug's divergences from the model's own. */
static int open_baseline(struct campaign *c, char *err, size_t errlen)
{
	struct kvm_config clean = c->common.config;

	clean.bugs = 0;
	c->baseline = executor_new(&clean, EXEC_SHADOW_MMU, err, errlen);
	if (!c->baseline)
		return -1;
	executor_set_audit(c->baseline, true);
	finding_store_set_baseline(c->store, c->baseline);
	return 0;
}

static int prepare(struct campaign *c, int n_seeds, char **seeds)
{
	char path[4096], err[512], describe[512];
	unsigned added = 0;

	if (make_layout(c))
		return -1;
	for (int i = 0; i < n_seeds; i++)
		if (encode_seed(c, seeds[i], &added))
			return -1;
	if (c->plan.kind == ENGINE_AFL && ensure_queue_not_empty(c))
		return -1;
	snprintf(path, sizeof(path), "%s/fuzz.log", c->out_dir);
	c->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (c->log_fd < 0) {
		fprintf(stderr, "shadowfuzz fuzz: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	common_describe(&c->common, describe, sizeof(describe));
	c->store = finding_store_open(c->findings_dir, describe, err, sizeof(err));
	c->replay = c->store ? executor_new(&c->common.config, EXEC_SHADOW_MMU, err, sizeof(err)) : NULL;
	if (!c->replay) {
		fprintf(stderr, "shadowfuzz fuzz: %s\n", err);
		return -1;
	}
	/* Replays check as `shadowfuzz run` and `trace` do (core's auditor after every op),
	 * so a finding's signature is the one those commands show. */
	executor_set_audit(c->replay, true);
	if (c->common.config.bugs && open_baseline(c, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz fuzz: %s\n", err);
		return -1;
	}
	printf("== campaign %s: %s, engine %s x%u, %u s; %u new seed(s)\n", c->out_dir, describe,
	       engine_name(c->plan.kind), c->plan.jobs, c->plan.seconds, added);
	fflush(stdout);
	return 0;
}

static int start(struct campaign *c)
{
	struct sigaction sa = { .sa_handler = on_interrupt };
	char err[512];

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	set_engine_environment(&c->common);
	set_abort_log(c);
	if (engine_start(&c->plan, &c->run, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz fuzz: %s\n", err);
		return -1;
	}
	c->running = c->run.n_pids;
	c->start = c->last_progress = now_s();
	return 0;
}

static void release(struct campaign *c)
{
	for (size_t i = 0; i < c->seen.n; i++)
		free(c->seen.names[i]);
	free(c->seen.names);
	executor_free(c->replay);
	executor_free(c->baseline);
	finding_store_free(c->store);
	if (c->log_fd >= 0)
		close(c->log_fd);
	if (c->run.output_fd > 0)
		close(c->run.output_fd);
}

static int resolve_targets(struct campaign *c, char *out_default, size_t len)
{
	if (!c->plan.target)
		c->plan.target = default_target(c->plan.kind, NULL);
	if (check_executable(c->plan.kind == ENGINE_AFL ? "AFL++ target" : "libFuzzer target",
			     c->plan.target))
		return -1;
	if (c->plan.cmplog_target && check_executable("CmpLog target", c->plan.cmplog_target))
		return -1;
	if (c->plan.mutator_lib && access(c->plan.mutator_lib, R_OK)) {
		fprintf(stderr, "shadowfuzz fuzz: no mutator library at %s\n", c->plan.mutator_lib);
		return -1;
	}
	if (c->plan.dict && access(c->plan.dict, R_OK)) {
		fprintf(stderr, "shadowfuzz fuzz: no dictionary at %s\n", c->plan.dict);
		return -1;
	}
	if (!c->out_dir) {
		size_t used = (size_t)snprintf(out_default, len, "campaigns/%s",
					       kvm_profile_name(c->common.profile));

		for (int b = 0; b < KVM_BUG_COUNT && used < len; b++)
			if (c->common.bugs & (1ull << b))
				used += (size_t)snprintf(out_default + used, len - used, "-%s",
							 kvm_bug_info(b)->id);
		c->out_dir = out_default;
	}
	return 0;
}

int cmd_fuzz(int argc, char **argv)
{
	static struct campaign c;
	char out_default[1024];
	unsigned found;
	double elapsed;
	int r;

	memset(&c, 0, sizeof(c));
	c.common = (struct common_options)COMMON_OPTIONS_INIT;
	c.plan = (struct engine_plan){ .kind = ENGINE_LIBFUZZER, .jobs = 1, .seconds = 600 };
	c.log_fd = -1;
	c.first_finding_s = -1;
	c.tty = isatty(STDERR_FILENO);
	r = parse_options(argc, argv, &c);
	if (r) {
		usage_fuzz(r > 0 ? stdout : stderr);
		return r > 0 ? EXIT_CLEAN : EXIT_USAGE;
	}
	finish_common(&c.common);
	if (resolve_targets(&c, out_default, sizeof(out_default)))
		return EXIT_USAGE;
	c.plan.out_dir = c.out_dir;
	if (prepare(&c, argc - optind, argv + optind) || start(&c)) {
		release(&c);
		return EXIT_USAGE;
	}
	supervise(&c);
	elapsed = now_s() - c.start;
	print_summary(&c, elapsed);
	r = write_summary_json(&c, elapsed);
	found = finding_store_unique(c.store);
	release(&c);
	if (r || c.io_error || c.worst_status)
		return EXIT_USAGE;
	return found ? EXIT_DIVERGENCE : EXIT_CLEAN;
}

int campaign_run_child(char *const args[], const char *log_path)
{
	/* /proc/self/exe, not the path it links to: a rebuild while a long benchmark runs
	 * replaces the file, and the running binary stays reachable only through the link. */
	static char self[] = "/proc/self/exe";
	char *argv[600];
	int argc = 0, status;
	pid_t pid;

	argv[argc++] = self;
	argv[argc++] = "fuzz";
	for (int i = 0; args[i] && argc < 599; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execv(self, argv);
		dprintf(STDERR_FILENO, "shadowfuzz: cannot start a campaign: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
