/* The fuzz entry point shared by libFuzzer and AFL++ (afl-clang-fast links its own driver
 * for -fsanitize=fuzzer): one input is one binary program, run with full checking. A
 * divergence prints its report and aborts, so both engines record the input as a crash.
 * SHADOWFUZZ_PROFILE (4.20, 5.1, 5.3), SHADOWFUZZ_BUGS (comma-separated ids),
 * SHADOWFUZZ_HOST_PHYS_BITS (32..52) and SHADOWFUZZ_NO_PREFETCH (set: prefetch off)
 * choose the model, as --profile, --bug, --host-phys-bits and --no-prefetch do for the
 * shadowfuzz commands; SHADOWFUZZ_ABORT_LOG names a file each abort's report goes to. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "program.h"

/* Inputs between fresh reference engines: memory stays flat over millions of inputs. */
#define RECYCLE_EVERY 10000

static struct executor *executor;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "shadowfuzz fuzz target: %s%s\n", what, detail);
	exit(2);
}

static void configure(struct kvm_config *cfg)
{
	const char *profile_name = getenv("SHADOWFUZZ_PROFILE");
	const char *bugs = getenv("SHADOWFUZZ_BUGS");
	const char *phys_bits = getenv("SHADOWFUZZ_HOST_PHYS_BITS");
	enum kvm_profile profile = KVM_PROFILE_5_1;
	char list[256], *save = NULL, *end;

	if (profile_name && kvm_profile_parse(profile_name, &profile))
		die("unknown SHADOWFUZZ_PROFILE ", profile_name);
	kvm_config_init(cfg, profile);
	if (phys_bits) {
		long bits = strtol(phys_bits, &end, 10);

		if (!*phys_bits || *end || bits < 32 || bits > 52)
			die("SHADOWFUZZ_HOST_PHYS_BITS wants 32..52, not ", phys_bits);
		cfg->host_phys_bits = (int)bits;
	}
	if (getenv("SHADOWFUZZ_NO_PREFETCH"))
		cfg->prefetch = false;
	if (!bugs)
		return;
	snprintf(list, sizeof(list), "%s", bugs);
	for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
		int bug = kvm_bug_parse(id);

		if (bug < 0)
			die("unknown bug in SHADOWFUZZ_BUGS: ", id);
		cfg->bugs |= 1ull << bug;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kvm_config cfg;
	char err[256];

	configure(&cfg);
	executor = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!executor)
		die("", err);
	executor_set_recycle(executor, RECYCLE_EVERY);
	return 0;
}

/* Why the input aborts, on out: the harness error, or the program and its divergence. */
static void report(FILE *out, int ret, const struct program *prog, const struct divergence *div)
{
	if (ret < 0) {
		fprintf(out, "shadowfuzz: harness error: %s\n", executor_error(executor));
		return;
	}
	program_print(prog, out);
	divergence_print(div, out);
}

/* SHADOWFUZZ_ABORT_LOG (set by `shadowfuzz fuzz`): a file every abort appends its report
 * to, with how many programs this process ran before, since the engines keep no stderr
 * of AFL++'s targets or libFuzzer's fork-mode children, and an abort that a replay alone
 * does not reproduce needs that record. */
static void log_abort(int ret, const struct program *prog, const struct divergence *div, size_t size)
{
	const char *path = getenv("SHADOWFUZZ_ABORT_LOG");
	FILE *log = path ? fopen(path, "a") : NULL;

	if (!log)
		return;
	fprintf(log, "== abort in pid %ld: input of %zu bytes, program %llu of this process\n",
		(long)getpid(), size, (unsigned long long)executor_stats(executor)->programs);
	report(log, ret, prog, div);
	fclose(log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct program prog;
	struct divergence div;
	int ret;

	program_decode(data, size, &prog);
	ret = executor_run(executor, &prog, &div);
	if (ret == 0)
		return 0;
	report(stderr, ret, &prog, &div);
	log_abort(ret, &prog, &div, size);
	abort();
}
