/* Benchmarks of the two halves of a check, each alone, and of a whole differential access
 * check through the executor: CPL0 4-level reads over 16 mapped pages. Figures are medians
 * of --runs runs, so one noisy run on a shared machine does not move them. */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/host_memory.h"
#include "../core/kvm_host.h"
#include "../core/paging.h"
#include "../oracle/harness_layout.h"
#include "../oracle/reference.h"
#include "bench.h"
#include "bench_bugs.h"
#include "executor.h"
#include "program.h"
#include "smoke.h"

#define BENCH_PAGES 16
#define BENCH_HVA 0x100000100000ull
#define BENCH_GVA (1ull << 39)
#define BENCH_DATA_GPA 0x200000ull

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), compare_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The 4-level tables mapping BENCH_GVA.. to BENCH_DATA_GPA.., as (gpa, value) writes. */
static int bench_tables(uint64_t gpas[], uint64_t values[])
{
	const uint64_t flags = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK;
	int n = 0;

	for (int level = 4; level > 1; level--) {
		gpas[n] = table_pool_gpa(4 - level) + ((BENCH_GVA >> (12 + 9 * (level - 1))) & 511) * 8;
		values[n++] = table_pool_gpa(5 - level) | flags;
	}
	for (int page = 0; page < BENCH_PAGES; page++) {
		gpas[n] = table_pool_gpa(3) + page * 8;
		values[n++] = (BENCH_DATA_GPA + page * PAGE_SIZE) | flags | PT_DIRTY_MASK;
	}
	return n;
}

static const struct ref_cpu_state bench_cpu = {
	.mode = PAGING_4LEVEL, .cr3 = TABLE_POOL_BASE, .cr0_wp = true,
};

static int bench_reference(long checks, double *rate)
{
	uint64_t gpas[3 + BENCH_PAGES], values[3 + BENCH_PAGES];
	struct ref_memory *mem = ref_memory_new();
	struct ref_engine *engine;
	struct ref_result result;
	char err[256];
	double start;

	ref_memory_set_region(mem, 0, 0, TABLE_POOL_BASE, TABLE_POOL_PAGES * PAGE_SIZE, BENCH_HVA, false);
	for (int i = bench_tables(gpas, values) - 1; i >= 0; i--)
		ref_memory_write(mem, 0, gpas[i], &values[i], 8);
	engine = ref_engine_new(PAGING_4LEVEL, mem, err, sizeof(err));
	if (!engine) {
		fprintf(stderr, "shadowfuzz bench: %s\n", err);
		ref_memory_free(mem);
		return -1;
	}
	start = now();
	for (long i = 0; i < checks; i++) {
		gva_t gva = BENCH_GVA + (i % BENCH_PAGES) * PAGE_SIZE + (i & 0xfff);

		if (ref_check(engine, &bench_cpu, 0, REF_READ, gva, &result) || result.outcome != REF_OK) {
			fprintf(stderr, "shadowfuzz bench: reference check failed\n");
			break;
		}
	}
	*rate = checks / (now() - start);
	ref_engine_free(engine);
	ref_memory_free(mem);
	return 0;
}

static int bench_walker(long checks, double *rate)
{
	uint64_t gpas[3 + BENCH_PAGES], values[3 + BENCH_PAGES];
	struct kvm_userspace_memory_region region = {
		.guest_phys_addr = TABLE_POOL_BASE, .memory_size = TABLE_POOL_PAGES * PAGE_SIZE,
		.userspace_addr = BENCH_HVA,
	};
	struct host_memory *host = host_memory_new();
	struct kvm_config cfg;
	struct kvm *kvm;
	struct kvm_vcpu *vcpu;
	struct guest_walker walker;
	double start;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	kvm = kvm_create(&cfg, host);
	host_mmap(host, BENCH_HVA, region.memory_size, PAGE_SHIFT);
	kvm_set_memory_region(kvm, &region, NULL);
	for (int i = bench_tables(gpas, values) - 1; i >= 0; i--)
		host_write(host, BENCH_HVA + gpas[i] - TABLE_POOL_BASE, &values[i], 8);
	vcpu = &kvm->vcpus[0];
	vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	vcpu->arch.cr4 = X86_CR4_PAE;
	vcpu->arch.efer = EFER_LME | EFER_LMA;
	vcpu->arch.cr3 = TABLE_POOL_BASE;
	kvm_init_mmu(vcpu);
	start = now();
	for (long i = 0; i < checks; i++)
		if (!kvm_walk_addr(&walker, vcpu, BENCH_GVA + (i % BENCH_PAGES) * PAGE_SIZE, 0))
			break;
	*rate = checks / (now() - start);
	kvm_destroy(kvm);
	host_memory_free(host);
	return 0;
}

/* Whole differential checks: executor ops (model walk + reference + checker). */
static int bench_executor(long checks, double *rate)
{
	struct kvm_config cfg;
	struct executor *ex;
	struct divergence div;
	struct op op = { .kind = OP_MEMSLOT_SET };
	char err[256];
	double start;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	ex = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex || executor_begin(ex))
		goto fail;
	op.memslot.gpa = TABLE_POOL_BASE;
	op.memslot.size = TABLE_POOL_PAGES * PAGE_SIZE;
	op.memslot.hva = BENCH_HVA;
	op.memslot.host_page_shift = PAGE_SHIFT;
	if (executor_step(ex, 0, &op, &div))
		goto fail;
	op = (struct op){ .kind = OP_MODE, .mode = { .mode = PAGING_4LEVEL } };
	if (executor_step(ex, 1, &op, &div))
		goto fail;
	for (int page = 0; page < BENCH_PAGES; page++) {
		op = (struct op){ .kind = OP_MAP };
		op.map.gva = BENCH_GVA + page * PAGE_SIZE;
		op.map.gpa = BENCH_DATA_GPA + page * PAGE_SIZE;
		op.map.level = MAP_LEVEL_4K;
		op.map.leaf_flags = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK | PT_DIRTY_MASK;
		op.map.upper_flags = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK;
		if (executor_step(ex, 2, &op, &div))
			goto fail;
	}
	start = now();
	for (long i = 0; i < checks; i++) {
		op = (struct op){ .kind = OP_ACCESS };
		op.access.gva = BENCH_GVA + (i % BENCH_PAGES) * PAGE_SIZE + (i & 0xfff);
		if (executor_step(ex, 3, &op, &div))
			goto fail;
	}
	*rate = checks / (now() - start);
	executor_free(ex);
	return 0;
fail:
	fprintf(stderr, "shadowfuzz bench: executor failed: %s\n", ex ? executor_error(ex) : err);
	executor_free(ex);
	return -1;
}

/* Whole programs with full checking, audited at the end of each (shadowfuzz smoke's
 * setting): the corpus's programs again and again, and typical fuzzer inputs from smoke's
 * generator. Rates are per second of this process's CPU time, which other jobs on a shared
 * machine do not inflate; the split between model, reference and the rest (checker and
 * harness) is of wall-clock time, as the executor measures it. */
#define BENCH_CORPUS_MAX 256
#define BENCH_RANDOM_MAX_BYTES 512 /* campaigns' -max_len: about 30 ops a program */
#define BENCH_RANDOM_SEED 1

static struct program bench_corpus[BENCH_CORPUS_MAX];
static int bench_corpus_n;

static int load_bench_corpus(const char *dir)
{
	char cmd[512], path[1024], err[512];
	FILE *list;

	snprintf(cmd, sizeof(cmd), "find '%s' -maxdepth 1 -name '*.sfp' | sort", dir);
	list = popen(cmd, "r");
	if (!list)
		return -1;
	while (bench_corpus_n < BENCH_CORPUS_MAX && fgets(path, sizeof(path), list)) {
		path[strcspn(path, "\n")] = 0;
		if (program_load_file(path, &bench_corpus[bench_corpus_n], err, sizeof(err)) == 0)
			bench_corpus_n++;
	}
	pclose(list);
	return bench_corpus_n ? 0 : -1;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The program a batch runs i-th: the corpus in turn, or the next random input decoded. */
struct batch_source {
	bool random;
	uint64_t seed;
	struct program scratch;
};

static const struct program *batch_program(struct batch_source *src, long i)
{
	uint8_t input[BENCH_RANDOM_MAX_BYTES];
	size_t len;

	if (!src->random)
		return &bench_corpus[i % bench_corpus_n];
	smoke_random_input(&src->seed, input, sizeof(input), &len);
	program_decode(input, len, &src->scratch);
	return &src->scratch;
}

struct batch_figures {
	double programs_per_s, checks_per_s, ops_per_program, checks_per_program;
	double model_pct, reference_pct;
};

static int run_batch(bool random, long programs, struct batch_figures *f)
{
	static struct batch_source src;
	struct kvm_config cfg;
	struct executor *ex;
	struct divergence div;
	const struct executor_stats *st;
	uint64_t ops = 0, checks;
	char err[256];
	double cpu, wall;

	src = (struct batch_source){ .random = random, .seed = BENCH_RANDOM_SEED };
	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	ex = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex)
		return -1;
	cpu = cpu_now();
	wall = now();
	for (long i = 0; i < programs; i++) {
		const struct program *prog = batch_program(&src, i);

		if (executor_run(ex, prog, &div) < 0) {
			fprintf(stderr, "shadowfuzz bench: program %ld failed: %s\n", i, executor_error(ex));
			executor_free(ex);
			return -1;
		}
		ops += prog->n_ops;
	}
	cpu = cpu_now() - cpu;
	wall = now() - wall;
	st = executor_stats(ex);
	checks = st->accesses + st->translations_checked;
	*f = (struct batch_figures){
		.programs_per_s = programs / cpu,
		.checks_per_s = checks / cpu,
		.ops_per_program = (double)ops / programs,
		.checks_per_program = (double)checks / programs,
		.model_pct = 100.0 * st->model_ns / 1e9 / wall,
		.reference_pct = 100.0 * st->reference_ns / 1e9 / wall,
	};
	executor_free(ex);
	return 0;
}

/* Medians over runs of each figure of a batch (a program that diverges is still a run
 * with full checking: random inputs are not expected to diverge, the corpus never does). */
static int bench_batch(const char *name, bool random, long runs, long programs)
{
	double rate[99], checks[99], model[99], reference[99], rest[99], mid_rate, mid_checks;
	struct batch_figures f = { 0 };

	for (long r = 0; r < runs; r++) {
		if (run_batch(random, programs, &f))
			return -1;
		rate[r] = f.programs_per_s;
		checks[r] = f.checks_per_s;
		model[r] = f.model_pct;
		reference[r] = f.reference_pct;
		rest[r] = 100.0 - f.model_pct - f.reference_pct;
	}
	/* median sorts its array: take it before reading the ends */
	mid_rate = median(rate, (int)runs);
	mid_checks = median(checks, (int)runs);
	printf("%s: %ld programs a run, %.1f ops and %.0f checks (accesses + translations) each\n",
	       name, programs, f.ops_per_program, f.checks_per_program);
	printf("  programs/s (CPU time)   median %10.0f  (min %.0f, max %.0f, %ld runs)\n", mid_rate,
	       rate[0], rate[runs - 1], runs);
	printf("  checks/s (CPU time)     median %10.0f  (min %.0f, max %.0f)\n", mid_checks, checks[0],
	       checks[runs - 1]);
	printf("  time split (wall clock) median model %.0f%%, reference %.0f%%, checker and harness %.0f%%\n",
	       median(model, (int)runs), median(reference, (int)runs), median(rest, (int)runs));
	return 0;
}

static int bench_programs(long runs, long programs)
{
	if (load_bench_corpus("corpus")) {
		fprintf(stderr, "shadowfuzz bench: no programs in ./corpus\n");
		return -1;
	}
	if (bench_batch("corpus programs, full checking", false, runs, programs))
		return -1;
	return bench_batch("random programs (smoke's generator, inputs up to 512 bytes), full checking",
			   true, runs, programs);
}

static void usage_bench(FILE *out)
{
	fprintf(out, "usage: shadowfuzz bench [programs] [--runs R] [--checks N]\n"
		     "       shadowfuzz bench bugs --help   (time to detect the planted bugs)\n"
		     "Prints reference checks/s, walker checks/s and differential access checks/s\n"
		     "(CPL0 4-level reads), the median of R runs of N checks each (default 7 x 200000);\n"
		     "then, with full checking, programs/s and checks/s (per second of CPU time) and\n"
		     "the model/reference/checker time split for ./corpus and for random programs,\n"
		     "N/100 programs a run. `bench programs` prints only the program figures.\n");
}

int cmd_bench(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' }, { "checks", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },       { 0 },
	};
	static const struct {
		const char *name;
		int (*fn)(long checks, double *rate);
	} benches[] = {
		{ "reference checks/s (Unicorn, CPL0 4-level read)", bench_reference },
		{ "walker checks/s (FNAME(walk_addr), same access)", bench_walker },
		{ "differential access checks/s (executor: both + checker)", bench_executor },
	};
	long runs = 7, checks = 200000;
	bool programs_only = false;
	int opt;

	if (argc > 1 && !strcmp(argv[1], "bugs"))
		return cmd_bench_bugs(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "programs")) {
		programs_only = true;
		argc--;
		argv++;
	}
	while ((opt = getopt_long(argc, argv, "r:n:h", longopts, NULL)) != -1) {
		char *end;
		long value;

		if (opt == 'h') {
			usage_bench(stdout);
			return 0;
		}
		if (opt != 'r' && opt != 'n') {
			usage_bench(stderr);
			return 2;
		}
		errno = 0;
		value = strtol(optarg, &end, 0);
		if (errno || *end || value <= 0 || value > 1000000000) {
			fprintf(stderr, "shadowfuzz bench: '%s' is not a positive number\n", optarg);
			return 2;
		}
		if (opt == 'r')
			runs = value > 99 ? 99 : value;
		else
			checks = value;
	}
	for (size_t b = 0; !programs_only && b < sizeof(benches) / sizeof(benches[0]); b++) {
		double rates[99], mid;

		for (long r = 0; r < runs; r++)
			if (benches[b].fn(checks, &rates[r]))
				return 2;
		mid = median(rates, (int)runs); /* sorts rates */
		printf("%-58s median %12.0f  (min %.0f, max %.0f, %ld runs x %ld)\n", benches[b].name,
		       mid, rates[0], rates[runs - 1], runs, checks);
	}
	return bench_programs(runs, checks / 100 ? checks / 100 : 1) ? 2 : 0;
}
