/* shadowfuzz: the command-line entry point. Each subcommand lives in its own function and
 * takes the common options --profile P and --bug ID. Exit codes: 0 clean, 1 divergence,
 * 2 bad usage or bad input. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "bench.h"
#include "campaign.h"
#include "cli_common.h"
#include "conform.h"
#include "export.h"
#include "executor.h"
#include "minimize.h"
#include "program.h"
#include "program_dir.h"
#include "smoke.h"
#include "trace.h"
#include "walk_conformance.h"

/* ---- run ---- */

static void usage_run(FILE *out)
{
	fprintf(out, "usage: shadowfuzz run [options] FILE|DIR...\n"
		     "Runs each program (text or binary; directories recursively) on the model and\n"
		     "on the reference and checks every access, every translation and (core's\n"
		     "auditor) the MMU's invariants after every op. Prints a verdict per file.\n"
		     "  -q, --quiet   print only failures and the summary\n"
		     "  --against P   also run each program on profile P and require the same\n"
		     "                guest-visible results (every access's answer, final memory)\n"
		     "With --bug, each program also runs on the same profile without the planted\n"
		     "bugs and must give the same guest-visible results: a planted bug is a patch,\n"
		     "and a change a guest can see is reported (DIFFERENT) even where the\n"
		     "architecture allows both answers (a TLB entry one kernel flushes and the\n"
		     "other keeps).\n");
	usage_common(out);
}

/* A second model every program also runs on, whose guest-visible results must match. */
struct comparison {
	struct executor *ex;
	char label[64]; /* "profile 4.20", "profile 5.1 without the planted bugs" */
	unsigned differ;
};

struct run_totals {
	unsigned files, passed, diverged, bad;
	bool quiet;
	struct comparison against[2]; /* --against P; the model without --bug's bugs */
	int n_against;
};

/* Runs prog on every comparison model and compares its log with first's: 2 with the
 * verdict printed when one differs, 1 with div filled and *failed_on naming the model
 * when one diverges, -1 on a harness error, else 0. */
static int compare_runs(struct run_totals *totals, const char *path, const struct program *prog,
			const struct executor_log *first, struct divergence *div, const char **failed_on)
{
	static struct executor_log second;

	for (int i = 0; i < totals->n_against; i++) {
		struct comparison *c = &totals->against[i];
		char why[256];
		int ret;

		executor_set_log(c->ex, &second);
		ret = executor_run(c->ex, prog, div);
		if (ret < 0) {
			fprintf(stderr, "%s: harness error: %s\n", path, executor_error(c->ex));
			return -1;
		}
		if (ret) {
			*failed_on = c->label;
			return 1;
		}
		if (!executor_logs_match(first, &second, why, sizeof(why))) {
			c->differ++;
			printf("DIFFERENT %s: %s (on %s)\n", path, why, c->label);
			return 2;
		}
	}
	return 0;
}

static int add_comparison(struct run_totals *totals, const struct kvm_config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A comparison model with cfg, labelled by fmt; 0, or -1 with the reason printed. */
static int add_comparison(struct run_totals *totals, const struct kvm_config *cfg, const char *fmt, ...)
{
	struct comparison *c = &totals->against[totals->n_against];
	char err[256];
	va_list ap;

	c->ex = executor_new(cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!c->ex) {
		fprintf(stderr, "shadowfuzz: %s\n", err);
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(c->label, sizeof(c->label), fmt, ap);
	va_end(ap);
	totals->n_against++;
	return 0;
}

static void free_comparisons(struct run_totals *totals)
{
	for (int i = 0; i < totals->n_against; i++)
		executor_free(totals->against[i].ex);
}

static int run_file(struct executor *ex, const char *path, struct run_totals *totals)
{
	static struct program prog;
	struct divergence div;
	char err[512];
	int ret;

	totals->files++;
	if (program_load_file(path, &prog, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		totals->bad++;
		return 0;
	}
	static struct executor_log first;
	const char *failed_on = NULL;

	executor_set_log(ex, totals->n_against ? &first : NULL);
	ret = executor_run(ex, &prog, &div);
	if (ret < 0) {
		fprintf(stderr, "%s: harness error: %s\n", path, executor_error(ex));
		return -1;
	}
	if (ret == 0)
		ret = compare_runs(totals, path, &prog, &first, &div, &failed_on);
	if (ret < 0)
		return -1;
	if (ret == 2)
		return 0;
	if (ret == 0) {
		totals->passed++;
		if (!totals->quiet)
			printf("PASS %s (%u ops)\n", path, prog.n_ops);
		return 0;
	}
	totals->diverged++;
	if (failed_on)
		printf("FAIL %s (on %s)\n", path, failed_on);
	else
		printf("FAIL %s\n", path);
	divergence_print(&div, stdout);
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, 'p' }, { "bug", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },         { "help", no_argument, NULL, 'h' },
		{ "against", required_argument, NULL, 'A' }, { "host-phys-bits", required_argument, NULL, 'H' },
		{ "no-prefetch", no_argument, NULL, 'N' },   { 0 },
	};
	struct common_options common = COMMON_OPTIONS_INIT;
	struct run_totals totals = { 0 };
	struct path_list files = { 0 };
	enum kvm_profile against;
	bool compare = false;
	unsigned differ = 0;
	struct executor *ex;
	char err[256];
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "p:b:qhA:H:", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, &common);

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		if (opt == 'A') {
			if (kvm_profile_parse(optarg, &against)) {
				fprintf(stderr, "shadowfuzz: unknown profile '%s' (use 4.20, 5.1 or 5.3)\n", optarg);
				return EXIT_USAGE;
			}
			compare = true;
		} else if (opt == 'q') {
			totals.quiet = true;
		} else if (opt == 'h') {
			usage_run(stdout);
			return EXIT_CLEAN;
		} else {
			usage_run(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "shadowfuzz run: no program given\n");
		usage_run(stderr);
		return EXIT_USAGE;
	}
	finish_common(&common);
	ex = executor_new(&common.config, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex) {
		fprintf(stderr, "shadowfuzz: %s\n", err);
		return EXIT_USAGE;
	}
	executor_set_audit(ex, true);
	if (compare) {
		struct kvm_config other;

		kvm_config_init(&other, against);
		other.host_phys_bits = common.config.host_phys_bits;
		other.prefetch = common.config.prefetch;
		other.bugs = common.config.bugs;
		ret = add_comparison(&totals, &other, "profile %s", kvm_profile_name(against));
	}
	if (!ret && common.config.bugs) {
		struct kvm_config baseline = common.config;

		baseline.bugs = 0;
		ret = add_comparison(&totals, &baseline, "profile %s without the planted bugs",
				     kvm_profile_name(common.profile));
	}
	if (ret) {
		free_comparisons(&totals);
		executor_free(ex);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		if (path_list_add(&files, argv[i], err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			totals.bad++;
		}
	}
	for (size_t i = 0; i < files.n && !ret; i++)
		ret = run_file(ex, files.paths[i], &totals);
	path_list_free(&files);
	printf("%u programs: %u passed, %u diverged, %u unreadable (profile %s)", totals.files,
	       totals.passed, totals.diverged, totals.bad, kvm_profile_name(common.profile));
	for (int i = 0; i < totals.n_against; i++) {
		printf("; %u with different guest-visible results on %s", totals.against[i].differ,
		       totals.against[i].label);
		differ += totals.against[i].differ;
	}
	printf("\n");
	free_comparisons(&totals);
	executor_free(ex);
	if (ret || totals.bad)
		return EXIT_USAGE;
	return totals.diverged || differ ? EXIT_DIVERGENCE : EXIT_CLEAN;
}

/* ---- walk-conformance ---- */

static void usage_walk(FILE *out)
{
	fprintf(out, "usage: shadowfuzz walk-conformance [options]\n"
		     "Compares the guest walker with the reference over every combination of leaf and\n"
		     "upper entry flags, access kind, CPL and control bits; prints cases and\n"
		     "mismatches per mode.\n"
		     "  --mode M      32, pse, pae, 4, 5 or all (default all)\n"
		     "  --sample N    run about N cases per mode, chosen by --seed (default: all)\n"
		     "  --seed S      sample seed (default 1)\n"
		     "  --reports K   mismatches printed in full per mode (default 5)\n");
	usage_common(out);
}

static int cmd_walk_conformance(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, 'p' }, { "bug", required_argument, NULL, 'b' },
		{ "mode", required_argument, NULL, 'm' },    { "sample", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },    { "reports", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },          { 0 },
	};
	struct common_options common = COMMON_OPTIONS_INIT;
	struct walk_conformance_options opts = {
		.mode_mask = (1u << CONF_MODE_COUNT) - 1, .seed = 1, .max_reports = 5,
	};
	struct walk_conformance_result total;
	char err[256], *end;
	int opt, mode;

	while ((opt = getopt_long(argc, argv, "p:b:m:n:s:r:h", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, &common);

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		switch (opt) {
		case 'm':
			if (!strcmp(optarg, "all"))
				break;
			mode = conformance_mode_parse(optarg);
			if (mode < 0) {
				fprintf(stderr, "shadowfuzz: unknown mode '%s' (32, pse, pae, 4, 5, all)\n", optarg);
				return EXIT_USAGE;
			}
			opts.mode_mask = 1u << mode;
			break;
		case 'n':
		case 's':
		case 'r':
			errno = 0;
			unsigned long long value = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg) {
				fprintf(stderr, "shadowfuzz: '%s' is not a number\n", optarg);
				return EXIT_USAGE;
			}
			if (opt == 'n')
				opts.sample = value;
			else if (opt == 's')
				opts.seed = value;
			else
				opts.max_reports = (unsigned)value;
			break;
		case 'h':
			usage_walk(stdout);
			return EXIT_CLEAN;
		default:
			usage_walk(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shadowfuzz walk-conformance: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	finish_common(&common);
	if (walk_conformance_run(&common.config, &opts, stdout, &total, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz: %s\n", err);
		return EXIT_USAGE;
	}
	return total.mismatches ? EXIT_DIVERGENCE : EXIT_CLEAN;
}

/* ---- encode: text programs to the binary form fuzzers start from ---- */

static void usage_encode(FILE *out)
{
	fprintf(out, "usage: shadowfuzz encode --out DIR FILE...\n"
		     "Writes each program's binary form to DIR/NAME.bin (NAME: the file name without\n"
		     "its extension), e.g. to seed a fuzzing corpus. A DIR/NAME.bin that already\n"
		     "exists is kept, never overwritten; files appear whole (written, then renamed).\n");
}

static int encode_one(const char *dir, const char *file, unsigned *written, unsigned *kept)
{
	char err[512];
	int r = program_encode_into(file, dir, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "shadowfuzz encode: %s\n", err);
		return -1;
	}
	*(r ? kept : written) += 1;
	return 0;
}

static int cmd_encode(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "out", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *dir = NULL;
	unsigned written = 0, kept = 0;
	struct stat st;
	int c;

	while ((c = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
		if (c == 'o') {
			dir = optarg;
		} else if (c == 'h') {
			usage_encode(stdout);
			return EXIT_CLEAN;
		} else {
			usage_encode(stderr);
			return EXIT_USAGE;
		}
	}
	if (!dir || optind == argc) {
		fprintf(stderr, "shadowfuzz encode: %s\n", dir ? "no program files given" : "--out DIR is required");
		return EXIT_USAGE;
	}
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "shadowfuzz encode: '%s' is not a directory\n", dir);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++)
		if (encode_one(dir, argv[i], &written, &kept))
			return EXIT_USAGE;
	printf("%u programs encoded into %s, %u already there (kept)\n", written, dir, kept);
	return EXIT_CLEAN;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "run", cmd_run, "run programs on the model and the reference, report divergences" },
	{ "walk-conformance", cmd_walk_conformance, "exhaustive guest-walker conformance per paging mode" },
	{ "smoke", cmd_smoke, "random programs through the decoder and the executor" },
	{ "bench", cmd_bench, "throughput figures; `bench bugs`: time to detect each planted bug" },
	{ "fuzz", cmd_fuzz, "run a fuzzing campaign; file each divergence once per signature" },
	{ "minimize", cmd_minimize, "shrink a diverging program, keeping its divergence signature" },
	{ "conform", cmd_conform, "pre-submission check: corpus, regressions, a campaign, a report" },
	{ "export", cmd_export, "write a program as a C reproducer or a KVM selftest" },
	{ "encode", cmd_encode, "write programs in the binary form fuzzers start from" },
	{ "trace", cmd_trace, "replay one program op by op: walks, answers, KVM's MMU events" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: shadowfuzz COMMAND [options] [args]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'shadowfuzz COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_CLEAN;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "shadowfuzz: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
