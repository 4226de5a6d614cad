#define _GNU_SOURCE
#include "bench_bugs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "campaign.h"
#include "cli_common.h"
#include "program_dir.h"

#define MAX_TRIALS 50

struct bench_bugs {
	unsigned trials, seconds;
	uint64_t only; /* bug ids to run; 0: every guest-visible one */
	const char *seeds_dir;
	const char *target;
	char out_dir[PATH_MAX];
	struct path_list seeds;
	FILE *csv;
};

struct bug_result {
	unsigned detected;
	double times[MAX_TRIALS]; /* seconds to the first divergence; < 0 when not found */
};

static void usage_bench_bugs(FILE *out)
{
	fprintf(out,
		"usage: shadowfuzz bench bugs [--trials K] [--time T] [--bug ID]... [--out DIR]\n"
		"For every bug switch a campaign's checks can see (all but those whose answers\n"
		"the architecture also allows, S4 and S5; or each --bug), K campaigns of at most T\n"
		"seconds (default 3 x 600), each with its own seed, from the generic seed corpus\n"
		"(--seeds, default ./corpus: its top-level programs only, never corpus/bugs),\n"
		"stopping at the first divergence. Prints a table (bug, detected k/K, median and\n"
		"worst time) and writes DIR/bench-bugs.csv and DIR/bench-bugs.png (gnuplot).\n"
		"  --target PATH  the libFuzzer target (see shadowfuzz fuzz --help)\n"
		"  --out DIR      default bench-bugs/YYYYmmdd-HHMMSS; must not exist\n");
}

static int parse_count(const char *opt, const char *arg, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!*arg || *end || v < 1 || v > max) {
		fprintf(stderr, "shadowfuzz bench bugs: %s wants 1..%u, not '%s'\n", opt, max, arg);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_options(int argc, char **argv, struct bench_bugs *b)
{
	static const struct option longopts[] = {
		{ "trials", required_argument, NULL, 'k' }, { "time", required_argument, NULL, 't' },
		{ "bug", required_argument, NULL, 'b' },    { "out", required_argument, NULL, 'o' },
		{ "seeds", required_argument, NULL, 's' },  { "target", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	int opt, bug;

	while ((opt = getopt_long(argc, argv, "k:t:b:o:s:T:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			if (parse_count("--trials", optarg, MAX_TRIALS, &b->trials))
				return -1;
			break;
		case 't':
			if (parse_count("--time", optarg, 24 * 3600, &b->seconds))
				return -1;
			break;
		case 'b':
			bug = kvm_bug_parse(optarg);
			if (bug < 0) {
				fprintf(stderr, "shadowfuzz bench bugs: unknown bug '%s'\n", optarg);
				return -1;
			}
			b->only |= 1ull << bug;
			break;
		case 'o':
			snprintf(b->out_dir, sizeof(b->out_dir), "%s", optarg);
			break;
		case 's':
			b->seeds_dir = optarg;
			break;
		case 'T':
			b->target = optarg;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static int collect_seeds(struct bench_bugs *b)
{
	char err[512];

	if (path_list_add_seeds(&b->seeds, b->seeds_dir, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz bench bugs: %s\n", err);
		return -1;
	}
	if (!b->seeds.n) {
		fprintf(stderr, "shadowfuzz bench bugs: no *.sfp seeds in %s\n", b->seeds_dir);
		return -1;
	}
	return 0;
}

/* Splits a bug's campaign_options ("--profile 4.20") into args; text is modified. */
static void split_options(char *text, char *args[], int *n)
{
	char *save = NULL;

	for (char *word = strtok_r(text, " ", &save); word; word = strtok_r(NULL, " ", &save))
		args[(*n)++] = word;
}

static double read_first_divergence(const char *campaign_dir)
{
	char path[PATH_MAX];
	json_error_t jerr;
	json_t *summary, *first;
	double t = -1;

	snprintf(path, sizeof(path), "%.4000s/summary.json", campaign_dir);
	summary = json_load_file(path, 0, &jerr);
	if (!summary)
		return -2;
	first = json_object_get(summary, "first_divergence_seconds");
	if (json_is_number(first))
		t = json_number_value(first);
	json_decref(summary);
	return t;
}

/* One campaign; returns seconds to the first divergence, -1 when none, -2 on failure. */
static double run_trial(struct bench_bugs *b, const struct kvm_bug_info *info, unsigned trial)
{
	char dir[PATH_MAX], log[PATH_MAX], seconds[16], seed[32], options[128];
	char *args[600];
	int n = 0, r;

	snprintf(dir, sizeof(dir), "%.4000s/%s-%u", b->out_dir, info->id, trial + 1);
	snprintf(log, sizeof(log), "%.4000s.log", dir);
	snprintf(seconds, sizeof(seconds), "%u", b->seconds);
	snprintf(seed, sizeof(seed), "-seed=%u", trial + 1);
	snprintf(options, sizeof(options), "%s", info->campaign_options ? info->campaign_options : "");
	args[n++] = "--bug";
	args[n++] = (char *)info->id;
	split_options(options, args, &n);
	args[n++] = "--time";
	args[n++] = seconds;
	args[n++] = "--stop-on-finding";
	args[n++] = "--engine-arg";
	args[n++] = seed;
	args[n++] = "--out";
	args[n++] = dir;
	if (b->target) {
		args[n++] = "--target";
		args[n++] = (char *)b->target;
	}
	for (size_t i = 0; i < b->seeds.n && n < 590; i++)
		args[n++] = b->seeds.paths[i];
	args[n] = NULL;
	r = campaign_run_child(args, log);
	if (r != 0 && r != 1)
		return -2;
	return read_first_divergence(dir);
}

static int compare_times(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void print_row(const struct bench_bugs *b, const char *id, const struct bug_result *res)
{
	double found[MAX_TRIALS];
	unsigned n = 0;

	for (unsigned t = 0; t < b->trials; t++)
		if (res->times[t] >= 0)
			found[n++] = res->times[t];
	qsort(found, n, sizeof(found[0]), compare_times);
	if (n == b->trials)
		printf("%-5s %4u/%-4u %10.1f %10.1f\n", id, n, b->trials,
		       n % 2 ? found[n / 2] : (found[n / 2 - 1] + found[n / 2]) / 2, found[n - 1]);
	else if (n)
		printf("%-5s %4u/%-4u %10s %10s   (found in %.1f..%.1f s when found)\n", id, n,
		       b->trials, "-", ">limit", found[0], found[n - 1]);
	else
		printf("%-5s %4u/%-4u %10s %10s\n", id, n, b->trials, "-", "-");
	fflush(stdout);
}

static int run_bug(struct bench_bugs *b, int bug)
{
	const struct kvm_bug_info *info = kvm_bug_info(bug);
	struct bug_result res = { 0 };

	for (unsigned t = 0; t < b->trials; t++) {
		res.times[t] = run_trial(b, info, t);
		if (res.times[t] < -1.5) {
			fprintf(stderr, "shadowfuzz bench bugs: campaign %s-%u failed; see %s/%s-%u.log\n",
				info->id, t + 1, b->out_dir, info->id, t + 1);
			return -1;
		}
		res.detected += res.times[t] >= 0;
		fprintf(b->csv, "%s,%u,%d,%.2f\n", info->id, t + 1, res.times[t] >= 0,
			res.times[t] >= 0 ? res.times[t] : (double)b->seconds);
		fflush(b->csv);
	}
	print_row(b, info->id, &res);
	return 0;
}

/* A point per trial at its time to detection; misses drawn at the limit. */
static void plot(const struct bench_bugs *b)
{
	char cmd[PATH_MAX * 2 + 1024];
	int r;

	snprintf(cmd, sizeof(cmd),
		 "gnuplot -e \"set terminal png size 900,500; set output '%s/bench-bugs.png'; "
		 "set datafile separator ','; set ylabel 'seconds to first divergence'; "
		 "set yrange [0:%u]; set title 'time to detection per bug (%u trials, limit %u s)'; "
		 "set xtics rotate; "
		 "plot '%s/bench-bugs.csv' using 0:(\\$3 > 0 ? \\$4 : 1/0):xtic(1) with points pt 7 title 'found', "
		 "'' using 0:(\\$3 > 0 ? 1/0 : \\$4):xtic(1) with points pt 2 title 'not found'\" 2>/dev/null",
		 b->out_dir, b->seconds + b->seconds / 10, b->trials, b->seconds, b->out_dir);
	r = system(cmd);
	if (r != 0)
		fprintf(stderr, "shadowfuzz bench bugs: gnuplot failed (is it installed?); the CSV is complete\n");
}

static int prepare(struct bench_bugs *b)
{
	char path[PATH_MAX];

	if (!b->out_dir[0]) {
		char stamp[32];
		time_t now = time(NULL);

		strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
		mkdir("bench-bugs", 0755);
		snprintf(b->out_dir, sizeof(b->out_dir), "bench-bugs/%s", stamp);
	}
	if (mkdir(b->out_dir, 0755)) {
		fprintf(stderr, "shadowfuzz bench bugs: cannot create %s: %s\n", b->out_dir,
			errno == EEXIST ? "it exists (results are never overwritten)" : strerror(errno));
		return -1;
	}
	if (collect_seeds(b))
		return -1;
	snprintf(path, sizeof(path), "%.4000s/bench-bugs.csv", b->out_dir);
	b->csv = fopen(path, "wx");
	if (!b->csv) {
		fprintf(stderr, "shadowfuzz bench bugs: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_bench_bugs(int argc, char **argv)
{
	static struct bench_bugs b;
	int r;

	memset(&b, 0, sizeof(b));
	b.trials = 3;
	b.seconds = 600;
	b.seeds_dir = "corpus";
	r = parse_options(argc, argv, &b);
	if (r) {
		usage_bench_bugs(r > 0 ? stdout : stderr);
		return r > 0 ? EXIT_CLEAN : EXIT_USAGE;
	}
	if (prepare(&b)) {
		path_list_free(&b.seeds);
		return EXIT_USAGE;
	}
	printf("bench bugs: %u trial(s) x at most %u s per bug, %zu seeds from %s, results in %s\n",
	       b.trials, b.seconds, b.seeds.n, b.seeds_dir, b.out_dir);
	printf("%-5s %9s %10s %10s\n", "bug", "detected", "median s", "worst s");
	for (int bug = 0; bug < KVM_BUG_COUNT && !r; bug++) {
		const struct kvm_bug_info *info = kvm_bug_info(bug);

		if (b.only ? !(b.only & (1ull << bug)) : info->architecture_allows)
			continue;
		r = run_bug(&b, bug);
	}
	fclose(b.csv);
	if (!r)
		plot(&b);
	path_list_free(&b.seeds);
	printf("csv: %s/bench-bugs.csv  plot: %s/bench-bugs.png\n", b.out_dir, b.out_dir);
	return r ? EXIT_USAGE : EXIT_CLEAN;
}
