/* The fuzzing engines a campaign drives as child processes: libFuzzer (fork mode, so it
 * goes on after a crash) and AFL++ (a main instance plus secondaries). This file knows each
 * engine's command line, where it puts crash files and how it reports progress. */
#ifndef SHADOWFUZZ_FUZZ_CAMPAIGN_ENGINE_H
#define SHADOWFUZZ_FUZZ_CAMPAIGN_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum engine_kind { ENGINE_LIBFUZZER, ENGINE_AFL };

#define ENGINE_MAX_JOBS 64
#define ENGINE_MAX_EXTRA_ARGS 32
/* libFuzzer -max_len for campaigns. */
#define ENGINE_MAX_LEN 512

struct engine_plan {
	enum engine_kind kind;
	const char *target;        /* the fuzz target binary */
	const char *cmplog_target; /* AFL++ only: CmpLog build for secondaries, or NULL */
	const char *out_dir;       /* campaign directory: queue/, crashes/ or afl/ below it */
	const char *dict;          /* dictionary file or NULL */
	const char *mutator_lib;   /* AFL++ custom mutator library or NULL */
	unsigned jobs;
	unsigned seconds;
	const char *extra_args[ENGINE_MAX_EXTRA_ARGS]; /* passed through to the engine */
	unsigned n_extra_args;
};

struct engine_stats {
	uint64_t execs;
	uint64_t coverage; /* libFuzzer: "cov" features; AFL++: edges found */
	uint64_t corpus;
	uint64_t engine_crashes; /* crashes the engine counted (not yet replayed) */
};

struct engine_run {
	pid_t pids[ENGINE_MAX_JOBS];
	unsigned n_pids;
	pid_t group; /* all children share it, for forwarding Ctrl-C */
	int output_fd; /* the children's stdout and stderr, merged */
};

const char *engine_name(enum engine_kind kind);
int engine_parse_name(const char *name, enum engine_kind *kind);

/* Starts the engine; children see env SHADOWFUZZ_PROFILE/SHADOWFUZZ_BUGS as the caller
 * sets them. Returns 0, or -1 with a message in err. */
int engine_start(const struct engine_plan *plan, struct engine_run *run, char *err, size_t errlen);
/* Updates stats from one line of engine output (libFuzzer) or from the engine's files
 * (AFL++: fuzzer_stats of every instance). */
void engine_parse_line(const struct engine_plan *plan, const char *line, struct engine_stats *stats);
void engine_poll_files(const struct engine_plan *plan, struct engine_stats *stats);
/* Directories the engine writes crash files to (at most max); returns how many. */
unsigned engine_crash_dirs(const struct engine_plan *plan, char dirs[][4096], unsigned max);
/* Is this file in a crash directory a crash input (not a README or a temporary)? */
bool engine_is_crash_file(const struct engine_plan *plan, const char *name);
/* Where the engine reads its starting corpus: the campaign's queue. */
void engine_queue_dir(const struct engine_plan *plan, char *buf, size_t len);

#endif
