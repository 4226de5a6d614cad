#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "executor.h"
#include "program.h"
#include "smoke.h"

#define SMOKE_MAX_BYTES 1024

/* xorshift64*: fixed and portable, so a seed names the same inputs everywhere. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* Every input starts with the compact memslot record whose zero fields mean "4 MiB at
 * 1 MiB" (fuzz/program_codec.c): the table pool is backed, so most programs get past
 * mmu_check_root instead of shutting the VM down at their first paging mode. */
static const uint8_t pool_slot_record[] = { 48, 0, 0, 0, 0, 0, 0, 0, 0 };

void smoke_random_input(uint64_t *state, uint8_t *buf, size_t max_len, size_t *len)
{
	memcpy(buf, pool_slot_record, sizeof(pool_slot_record));
	*len = sizeof(pool_slot_record) + next_random(state) % (max_len - sizeof(pool_slot_record));
	for (size_t i = sizeof(pool_slot_record); i < *len; i++)
		buf[i] = (uint8_t)(next_random(state) >> 56);
}

static void usage_smoke(FILE *out)
{
	fprintf(out, "usage: shadowfuzz smoke [--programs N] [--seed S] [--profile P] [--bug ID] [--audit]\n"
		     "                       [--host-phys-bits N] [--no-prefetch] [--recycle N]\n"
		     "                       [--rss-every N]\n"
		     "Decodes N random byte strings (default 10000, seed 1) and runs each program;\n"
		     "prints the first divergence with its program and exits 1 if any is found.\n"
		     "The MMU's invariants are audited after each program, with --audit after each op.\n"
		     "--recycle N replaces the reference engines every N programs, as the fuzz\n"
		     "target does (the output must not change). --rss-every N prints the resident\n"
		     "memory every N programs (memory must stay flat over millions).\n");
}

static int parse_u64(const char *arg, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 0);
	if (errno || *end || !*arg) {
		fprintf(stderr, "shadowfuzz smoke: '%s' is not a number\n", arg);
		return -1;
	}
	return 0;
}

/* VmRSS of this process, from /proc/self/status. */
static void print_rss(uint64_t done)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			printf("%llu programs: rss %s", (unsigned long long)done, line + 6 + strspn(line + 6, " \t"));
	if (f)
		fclose(f);
	fflush(stdout);
}

static void print_stats(const struct executor_stats *st, uint64_t divergences)
{
	printf("%llu programs, %llu ops, %llu accesses, %llu memslot ioctls (%llu rejected), "
	       "%llu divergences\n",
	       (unsigned long long)st->programs, (unsigned long long)st->ops,
	       (unsigned long long)st->accesses, (unsigned long long)st->memslot_ioctls,
	       (unsigned long long)st->memslot_errors, (unsigned long long)divergences);
	printf("  %llu accesses/maps/translations not checkable (harness-reserved gva)\n",
	       (unsigned long long)st->harness_skips);
	printf("  %llu translations checked, %llu VM shutdowns, %llu CR4.PKE requests refused, "
	       "%llu physmap fallbacks\n",
	       (unsigned long long)st->translations_checked, (unsigned long long)st->shutdowns,
	       (unsigned long long)st->pke_ignored, (unsigned long long)st->physmap_fallbacks);
	printf("  %llu times the page budget had no page left, %llu KVM_SET_NR_MMU_PAGES rejected\n",
	       (unsigned long long)st->mmu_enospc, (unsigned long long)st->mmu_pages_errors);
	printf("  VM stats: %llu pte writes, %llu ptes updated, %llu flooding zaps, %llu pages "
	       "recycled, %llu pages gone unsync, %llu dirty-log reads\n",
	       (unsigned long long)st->vm.mmu_pte_write, (unsigned long long)st->vm.mmu_pte_updated,
	       (unsigned long long)st->vm.mmu_flooded, (unsigned long long)st->vm.mmu_recycled,
	       (unsigned long long)st->vm.mmu_unsync_total, (unsigned long long)st->vm.dirty_log_reads);
	printf("  %llu dirty logs checked, holding %llu written pages\n",
	       (unsigned long long)st->dirty_logs_checked, (unsigned long long)st->dirty_pages_written);
	printf("  %llu programs on several vCPUs, %llu accesses on vCPUs other than 0\n",
	       (unsigned long long)st->multi_vcpu_programs, (unsigned long long)st->other_vcpu_accesses);
	for (int rule = 1; rule < RULE_COUNT; rule++)
		printf("  rule %s applied %llu times\n", kvm_rule_name(rule),
		       (unsigned long long)st->rule_hits[rule]);
}

int cmd_smoke(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "programs", required_argument, NULL, 'n' }, { "seed", required_argument, NULL, 's' },
		{ "audit", no_argument, NULL, 'a' },          { "help", no_argument, NULL, 'h' },
		{ "recycle", required_argument, NULL, 'r' }, { "rss-every", required_argument, NULL, 'R' },
		{ 0 },
	};
	struct common_options common = COMMON_OPTIONS_INIT;
	bool audit_every_op = false;
	uint64_t programs = 10000, seed = 1, divergences = 0, recycle = 0, rss_every = 0;
	static struct program prog;
	static uint8_t input[SMOKE_MAX_BYTES];
	struct executor *ex;
	struct divergence div;
	char err[256];
	int opt;

	while ((opt = getopt_long(argc, argv, "n:s:p:b:ahH:r:R:", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, &common);

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		switch (opt) {
		case 'a':
			audit_every_op = true;
			break;
		case 'n':
			if (parse_u64(optarg, &programs))
				return EXIT_USAGE;
			break;
		case 's':
			if (parse_u64(optarg, &seed))
				return EXIT_USAGE;
			break;
		case 'r':
			if (parse_u64(optarg, &recycle))
				return EXIT_USAGE;
			break;
		case 'R':
			if (parse_u64(optarg, &rss_every))
				return EXIT_USAGE;
			break;
		case 'h':
			usage_smoke(stdout);
			return EXIT_CLEAN;
		default:
			usage_smoke(stderr);
			return EXIT_USAGE;
		}
	}
	finish_common(&common);
	ex = executor_new(&common.config, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex) {
		fprintf(stderr, "shadowfuzz smoke: %s\n", err);
		return EXIT_USAGE;
	}
	executor_set_audit(ex, audit_every_op);
	executor_set_recycle(ex, recycle);
	seed = seed ? seed : 1;
	for (uint64_t i = 0; i < programs; i++) {
		size_t len;
		int ret;

		if (rss_every && i % rss_every == 0)
			print_rss(i);
		smoke_random_input(&seed, input, SMOKE_MAX_BYTES, &len);
		program_decode(input, len, &prog);
		ret = executor_run(ex, &prog, &div);
		if (ret < 0) {
			fprintf(stderr, "shadowfuzz smoke: program %llu: %s\n", (unsigned long long)i,
				executor_error(ex));
			program_print(&prog, stderr);
			executor_free(ex);
			return 2;
		}
		if (ret > 0 && divergences++ == 0) {
			printf("program %llu diverged:\n", (unsigned long long)i);
			program_print(&prog, stdout);
			divergence_print(&div, stdout);
		}
	}
	if (rss_every)
		print_rss(programs);
	print_stats(executor_stats(ex), divergences);
	executor_free(ex);
	return divergences ? 1 : 0;
}
