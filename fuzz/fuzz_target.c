/* The fuzz entry point shared by libFuzzer and AFL++ (afl-clang-fast links its own driver
 * for -fsanitize=fuzzer): one input is one binary program, run with full checking. A
 * divergence prints its report and aborts, so both engines record the input as a crash.
 * SHADOWFUZZ_PROFILE (4.20, 5.1, 5.3), SHADOWFUZZ_BUGS (comma-separated ids),
 * SHADOWFUZZ_HOST_PHYS_BITS (32..52) and SHADOWFUZZ_NO_PREFETCH (set: prefetch off)
 * choose the model, as --profile, --bug, --host-phys-bits and --no-prefetch do for the
 * shadowfuzz commands. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct program prog;
	struct divergence div;
	int ret;

	program_decode(data, size, &prog);
	ret = executor_run(executor, &prog, &div);
	if (ret == 0)
		return 0;
	if (ret < 0) {
		fprintf(stderr, "shadowfuzz: harness error: %s\n", executor_error(executor));
	} else {
		program_print(&prog, stderr);
		divergence_print(&div, stderr);
	}
	abort();
}
