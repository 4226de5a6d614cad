#define _GNU_SOURCE
#include "conform.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "campaign.h"
#include "cli_common.h"
#include "findings.h"
#include "minimize.h"
#include "program_dir.h"

#define MAX_CORPUS_DIRS 16
/* Seconds each divergence may spend being minimised. */
#define CONFORM_MINIMIZE_S 30.0

struct conform {
	struct common_options common;
	bool compare;
	enum kvm_profile against;
	unsigned seconds;
	const char *corpus[MAX_CORPUS_DIRS];
	unsigned n_corpus;
	const char *target; /* for the campaign; NULL: shadowfuzz fuzz's default */
	char out_dir[PATH_MAX];
	struct executor *ex, *other;
	struct executor *min_ex; /* minimising has its own, so ex's statistics count the check */
	unsigned programs, passed, diverged, differ, unreadable;
	uint64_t campaign_execs;
	bool campaign_ran;
	json_t *divergences, *differences, *errors;
	struct program prog;
	struct executor_log log_a, log_b;
};

static void usage_conform(FILE *out)
{
	fprintf(out,
		"usage: shadowfuzz conform [options]\n"
		"The pre-submission check: replays every program under the corpus directories\n"
		"(default ./corpus, with bugs/ and regressions/), then fuzzes for --time seconds,\n"
		"and writes report.txt and report.json, with a minimised reproducer for every\n"
		"divergence, to a new directory. With --against, every program must also give the\n"
		"same guest-visible results on both profiles (spec §9.2). Exit 0 only when clean.\n"
		"  --against P   second profile to compare with\n"
		"  --time S      campaign seconds (default 300; 0 skips the campaign)\n"
		"  --corpus DIR  program directory (repeatable; default ./corpus)\n"
		"  --target PATH the campaign's fuzz target (see shadowfuzz fuzz --help)\n"
		"  --out DIR     report directory; must not exist (default\n"
		"                conform-reports/PROFILE[-vs-P][-BUG...]-YYYYmmdd-HHMMSS)\n");
	usage_common(out);
}

enum { OPT_AGAINST = 256, OPT_TIME, OPT_CORPUS, OPT_TARGET };

static int parse_own_option(int opt, const char *arg, void *ctx)
{
	struct conform *c = ctx;
	char *end;
	unsigned long v;

	switch (opt) {
	case OPT_AGAINST:
		if (kvm_profile_parse(arg, &c->against)) {
			fprintf(stderr, "shadowfuzz conform: unknown profile '%s' (4.20, 5.1 or 5.3)\n", arg);
			return -1;
		}
		c->compare = true;
		return 0;
	case OPT_TIME:
		v = strtoul(arg, &end, 10);
		if (!*arg || *end || v > 7 * 24 * 3600) {
			fprintf(stderr, "shadowfuzz conform: --time wants whole seconds, not '%s'\n", arg);
			return -1;
		}
		c->seconds = (unsigned)v;
		return 0;
	case OPT_CORPUS:
		if (c->n_corpus == MAX_CORPUS_DIRS) {
			fprintf(stderr, "shadowfuzz conform: at most %d --corpus\n", MAX_CORPUS_DIRS);
			return -1;
		}
		c->corpus[c->n_corpus++] = arg;
		return 0;
	case OPT_TARGET:
		c->target = arg;
		return 0;
	case 'o':
		snprintf(c->out_dir, sizeof(c->out_dir), "%s", arg);
		return 0;
	default:
		return -1;
	}
}

static int parse_options(int argc, char **argv, struct conform *c)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "against", required_argument, NULL, OPT_AGAINST },
		{ "time", required_argument, NULL, OPT_TIME },
		{ "corpus", required_argument, NULL, OPT_CORPUS },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int r = parse_command_line(argc, argv, "p:b:H:o:h", longopts, &c->common, parse_own_option, c);

	if (r)
		return r;
	if (optind != argc) {
		fprintf(stderr, "shadowfuzz conform: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static void default_out_dir(struct conform *c)
{
	char stamp[32];
	time_t now = time(NULL);
	size_t used;

	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", gmtime(&now));
	used = (size_t)snprintf(c->out_dir, sizeof(c->out_dir), "conform-reports/%s",
				kvm_profile_name(c->common.profile));
	if (c->compare)
		used += (size_t)snprintf(c->out_dir + used, sizeof(c->out_dir) - used, "-vs-%s",
					 kvm_profile_name(c->against));
	for (int b = 0; b < KVM_BUG_COUNT; b++)
		if (c->common.bugs & (1ull << b))
			used += (size_t)snprintf(c->out_dir + used, sizeof(c->out_dir) - used, "-%s",
						 kvm_bug_info(b)->id);
	snprintf(c->out_dir + used, sizeof(c->out_dir) - used, "-%s", stamp);
	if (mkdir("conform-reports", 0755) && errno != EEXIST)
		fprintf(stderr, "shadowfuzz conform: cannot create conform-reports: %s\n", strerror(errno));
}

/* Saves a reproducer as OUT/NAME.min.sfp (NAME: the program's file name without its
 * extension), NAME-2.min.sfp ... when two programs share a name. */
static int save_reproducer(const struct conform *c, const char *source, const struct program *prog,
			   const char *header, char *path, size_t len, char *err, size_t errlen)
{
	const char *base = strrchr(source, '/') ? strrchr(source, '/') + 1 : source;
	char name[256];
	int r = 1;

	program_file_stem(source, name, sizeof(name));
	/* A campaign finding is DIR/findings/<signature>/crash-input.bin: name it by signature. */
	if (!strcmp(base, "crash-input.bin") && base - source > 1) {
		const char *end = base - 1, *start = end;

		while (start > source && start[-1] != '/')
			start--;
		snprintf(name, sizeof(name), "campaign-%.*s", (int)(end - start), start);
	}
	for (unsigned n = 1; r == 1 && n < 100; n++) {
		if (n == 1)
			snprintf(path, len, "%.3800s/%s.min.sfp", c->out_dir, name);
		else
			snprintf(path, len, "%.3800s/%s-%u.min.sfp", c->out_dir, name, n);
		r = program_save_new(path, prog, header, err, errlen);
	}
	return r;
}

static char *divergence_text(const struct divergence *div)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	divergence_print(div, f);
	fclose(f);
	return text;
}

static char *program_text(const struct program *prog)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	program_print(prog, f);
	fclose(f);
	return text;
}

/* Minimises the diverging c->prog into a reproducer file and records the divergence. */
static void record_divergence(struct conform *c, const char *source, const struct divergence *div)
{
	static struct program minimized;
	struct minimize_result result;
	static struct divergence min_div;
	char path[PATH_MAX], err[512], header[1024], signature[SIGNATURE_MAX], describe[512];
	char *original = divergence_text(div), *reduced = NULL, *text = NULL;
	json_t *entry;

	divergence_signature(div, signature, sizeof(signature));
	entry = json_pack("{s:s, s:s, s:i, s:s?}", "program", source, "signature", signature,
			  "op_index", (json_int_t)div->op_index, "divergence", original);
	minimized = c->prog;
	if (program_minimize(c->min_ex, &minimized, CONFORM_MINIMIZE_S, &result) == 0 &&
	    executor_run(c->min_ex, &minimized, &min_div) > 0) {
		common_describe(&c->common, describe, sizeof(describe));
		minimized_header(header, sizeof(header), &result, describe, source);
		if (save_reproducer(c, source, &minimized, header, path, sizeof(path), err,
				    sizeof(err)) == 0) {
			reduced = divergence_text(&min_div);
			text = program_text(&minimized);
			json_object_set_new(entry, "reproducer",
					    json_pack("{s:s, s:i, s:s?, s:s?}", "file", path, "ops",
						      (json_int_t)minimized.n_ops, "program", text,
						      "divergence", reduced));
		} else {
			json_array_append_new(c->errors, json_string(err));
		}
	}
	json_array_append_new(c->divergences, entry);
	free(original);
	free(reduced);
	free(text);
}

static int run_program(struct conform *c, const char *path)
{
	static struct divergence div;
	char err[512], why[256];
	int r;

	c->programs++;
	if (program_load_file(path, &c->prog, err, sizeof(err))) {
		c->unreadable++;
		json_array_append_new(c->errors, json_string(err));
		return 0;
	}
	executor_set_log(c->ex, c->compare ? &c->log_a : NULL);
	r = executor_run(c->ex, &c->prog, &div);
	executor_set_log(c->ex, NULL);
	if (r < 0)
		return -1;
	if (r > 0) {
		c->diverged++;
		record_divergence(c, path, &div);
		return 0;
	}
	if (c->compare) {
		executor_set_log(c->other, &c->log_b);
		r = executor_run(c->other, &c->prog, &div);
		if (r < 0)
			return -1;
		if (r > 0 || !executor_logs_match(&c->log_a, &c->log_b, why, sizeof(why))) {
			c->differ++;
			json_array_append_new(c->differences,
					      json_pack("{s:s, s:s}", "program", path, "difference",
							r > 0 ? "diverges on the second profile" : why));
			return 0;
		}
	}
	c->passed++;
	return 0;
}

static int replay_corpus(struct conform *c)
{
	struct path_list files = { 0 };
	char err[512];
	int ret = 0;

	for (unsigned i = 0; i < c->n_corpus && !ret; i++)
		if (path_list_add(&files, c->corpus[i], err, sizeof(err))) {
			fprintf(stderr, "shadowfuzz conform: %s\n", err);
			ret = -1;
		}
	for (size_t i = 0; i < files.n && !ret; i++)
		if (run_program(c, files.paths[i])) {
			fprintf(stderr, "shadowfuzz conform: %s: harness error: %s\n", files.paths[i],
				executor_error(c->ex));
			ret = -1;
		}
	path_list_free(&files);
	return ret;
}

/* The campaign's seeds: the programs directly in each corpus directory (bugs/ and
 * regressions/ are written to expose something, not to start from). */
static void add_seed_args(const struct conform *c, char **argv, int *argc, int max)
{
	for (unsigned i = 0; i < c->n_corpus; i++) {
		struct path_list seeds = { 0 };
		char err[512];

		if (path_list_add_seeds(&seeds, c->corpus[i], err, sizeof(err)) == 0)
			for (size_t f = 0; f < seeds.n && *argc < max; f++)
				argv[(*argc)++] = strdup(seeds.paths[f]);
		path_list_free(&seeds);
	}
}

static int run_campaign_child(struct conform *c, const char *campaign_dir)
{
	char *args[600], number[16], seconds[16];
	int n = 0, first_seed, r;

	snprintf(seconds, sizeof(seconds), "%u", c->seconds);
	common_append_args(&c->common, args, &n, number);
	args[n++] = "--time";
	args[n++] = seconds;
	args[n++] = "--out";
	args[n++] = (char *)campaign_dir;
	if (c->target) {
		args[n++] = "--target";
		args[n++] = (char *)c->target;
	}
	first_seed = n;
	add_seed_args(c, args, &n, 590);
	args[n] = NULL;
	r = campaign_run_child(args, NULL);
	for (int i = first_seed; i < n; i++)
		free(args[i]);
	return r;
}

/* Files every campaign finding as a divergence, minimised like the corpus's. */
static int collect_campaign(struct conform *c, const char *campaign_dir)
{
	char path[PATH_MAX], err[512];
	json_error_t jerr;
	json_t *summary, *findings, *item;
	size_t i;

	snprintf(path, sizeof(path), "%.4000s/summary.json", campaign_dir);
	summary = json_load_file(path, 0, &jerr);
	if (!summary) {
		fprintf(stderr, "shadowfuzz conform: cannot read %s: %s\n", path, jerr.text);
		return -1;
	}
	c->campaign_execs = (uint64_t)json_integer_value(json_object_get(summary, "execs"));
	findings = json_object_get(summary, "findings");
	json_array_foreach(findings, i, item) {
		static struct divergence div;
		const char *sig = json_string_value(json_object_get(item, "signature"));
		int r;

		snprintf(path, sizeof(path), "%.3900s/findings/%.63s/crash-input.bin", campaign_dir, sig ? sig : "");
		if (program_load_file(path, &c->prog, err, sizeof(err))) {
			json_array_append_new(c->errors, json_string(err));
			continue;
		}
		c->diverged++;
		r = executor_run(c->ex, &c->prog, &div);
		if (r > 0)
			record_divergence(c, path, &div);
		else
			json_array_append_new(c->divergences,
					      json_pack("{s:s, s:s?}", "program", path, "signature", sig));
	}
	json_decref(summary);
	return 0;
}

static int campaign(struct conform *c)
{
	char campaign_dir[PATH_MAX];
	int r;

	if (!c->seconds)
		return 0;
	snprintf(campaign_dir, sizeof(campaign_dir), "%.4000s/campaign", c->out_dir);
	printf("== campaign: %u s\n", c->seconds);
	r = run_campaign_child(c, campaign_dir);
	if (r != 0 && r != 1) {
		fprintf(stderr, "shadowfuzz conform: the campaign failed (exit %d); see %s\n", r,
			campaign_dir);
		return -1;
	}
	c->campaign_ran = true;
	return collect_campaign(c, campaign_dir);
}

static bool is_clean(const struct conform *c)
{
	return !c->diverged && !c->differ && !c->unreadable && !json_array_size(c->errors);
}

static json_t *report_json(const struct conform *c)
{
	const struct executor_stats *st = executor_stats(c->ex);
	char describe[512];

	common_describe(&c->common, describe, sizeof(describe));
	return json_pack("{s:s, s:s?, s:b, s:{s:i, s:i, s:i, s:i, s:i}, s:i, s:i, s:{s:b, s:i, s:i}, "
			 "s:O, s:O, s:O}",
			 "model", describe, "against", c->compare ? kvm_profile_name(c->against) : NULL,
			 "clean", is_clean(c), "programs", "run", (json_int_t)c->programs, "passed",
			 (json_int_t)c->passed, "diverged", (json_int_t)c->diverged, "different",
			 (json_int_t)c->differ, "unreadable", (json_int_t)c->unreadable,
			 "translations_checked", (json_int_t)st->translations_checked,
			 "accesses_checked", (json_int_t)st->accesses, "campaign", "ran",
			 c->campaign_ran, "seconds", (json_int_t)c->seconds, "execs",
			 (json_int_t)c->campaign_execs, "divergences", c->divergences,
			 "differences", c->differences, "errors", c->errors);
}

static void report_text(FILE *f, const struct conform *c, json_t *report)
{
	json_t *item;
	size_t i;

	fprintf(f, "shadowfuzz conform: %s%s%s\n", json_string_value(json_object_get(report, "model")),
		c->compare ? " against " : "", c->compare ? kvm_profile_name(c->against) : "");
	fprintf(f, "verdict:  %s\n", is_clean(c) ? "CLEAN" : "NOT CLEAN");
	fprintf(f, "programs: %u run, %u passed, %u diverged, %u with different results, %u unreadable\n",
		c->programs, c->passed, c->diverged, c->differ, c->unreadable);
	fprintf(f, "checked:  %llu accesses, %llu translations\n",
		(unsigned long long)executor_stats(c->ex)->accesses,
		(unsigned long long)executor_stats(c->ex)->translations_checked);
	if (c->campaign_ran)
		fprintf(f, "campaign: %u s, %llu execs\n", c->seconds, (unsigned long long)c->campaign_execs);
	else
		fprintf(f, "campaign: not run (--time 0)\n");
	json_array_foreach(c->divergences, i, item) {
		json_t *repro = json_object_get(item, "reproducer");

		fprintf(f, "\nDIVERGENCE %s in %s\n", json_string_value(json_object_get(item, "signature")),
			json_string_value(json_object_get(item, "program")));
		if (!repro) {
			fprintf(f, "%s", json_string_value(json_object_get(item, "divergence")) ?: "");
			continue;
		}
		fprintf(f, "minimised reproducer (%lld ops): %s\n",
			(long long)json_integer_value(json_object_get(repro, "ops")),
			json_string_value(json_object_get(repro, "file")));
		fprintf(f, "%s\n%s", json_string_value(json_object_get(repro, "program")) ?: "",
			json_string_value(json_object_get(repro, "divergence")) ?: "");
	}
	json_array_foreach(c->differences, i, item)
		fprintf(f, "\nDIFFERENT %s: %s\n", json_string_value(json_object_get(item, "program")),
			json_string_value(json_object_get(item, "difference")));
	json_array_foreach(c->errors, i, item)
		fprintf(f, "\nERROR %s\n", json_string_value(item));
}

static int write_reports(const struct conform *c)
{
	json_t *report = report_json(c);
	char path[PATH_MAX], err[512], *text = NULL, *json = json_dumps(report, JSON_INDENT(2));
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int bad = !json || !f;

	if (f) {
		report_text(f, c, report);
		fclose(f);
		fputs(text, stdout);
		snprintf(path, sizeof(path), "%.4000s/report.txt", c->out_dir);
		bad |= file_write_new(path, text, len, err, sizeof(err)) != 0;
		snprintf(path, sizeof(path), "%.4000s/report.json", c->out_dir);
		bad |= json && file_write_new(path, json, strlen(json), err, sizeof(err)) != 0;
	}
	if (bad)
		fprintf(stderr, "shadowfuzz conform: cannot write the report in %s\n", c->out_dir);
	else
		printf("\nreport: %s/report.txt, %s/report.json\n", c->out_dir, c->out_dir);
	free(text);
	free(json);
	json_decref(report);
	return bad ? -1 : 0;
}

static int setup(struct conform *c)
{
	struct kvm_config other;
	char err[512];

	if (!c->out_dir[0])
		default_out_dir(c);
	if (mkdir(c->out_dir, 0755)) {
		fprintf(stderr, "shadowfuzz conform: cannot create the report directory %s: %s\n",
			c->out_dir, errno == EEXIST ? "it exists (reports are never overwritten)" : strerror(errno));
		return -1;
	}
	c->ex = executor_new(&c->common.config, EXEC_SHADOW_MMU, err, sizeof(err));
	c->min_ex = c->ex ? executor_new(&c->common.config, EXEC_SHADOW_MMU, err, sizeof(err)) : NULL;
	if (c->min_ex && c->compare) {
		other = c->common.config;
		kvm_config_init(&other, c->against);
		other.bugs = c->common.config.bugs;
		other.host_phys_bits = c->common.config.host_phys_bits;
		other.prefetch = c->common.config.prefetch;
		c->other = executor_new(&other, EXEC_SHADOW_MMU, err, sizeof(err));
	}
	if (!c->min_ex || (c->compare && !c->other)) {
		fprintf(stderr, "shadowfuzz conform: %s\n", err);
		return -1;
	}
	/* Checked as `shadowfuzz run` checks: core's auditor after every op. */
	executor_set_audit(c->ex, true);
	executor_set_audit(c->min_ex, true);
	if (c->other)
		executor_set_audit(c->other, true);
	c->divergences = json_array();
	c->differences = json_array();
	c->errors = json_array();
	return 0;
}

int cmd_conform(int argc, char **argv)
{
	static struct conform c;
	int r;

	memset(&c, 0, sizeof(c));
	c.common = (struct common_options)COMMON_OPTIONS_INIT;
	c.seconds = 300;
	r = parse_options(argc, argv, &c);
	if (r) {
		usage_conform(r > 0 ? stdout : stderr);
		return r > 0 ? EXIT_CLEAN : EXIT_USAGE;
	}
	if (!c.n_corpus)
		c.corpus[c.n_corpus++] = "corpus";
	finish_common(&c.common);
	r = setup(&c);
	if (!r) {
		printf("== replaying %u corpus director%s into %s\n", c.n_corpus,
		       c.n_corpus == 1 ? "y" : "ies", c.out_dir);
		r = replay_corpus(&c);
	}
	if (!r)
		r = campaign(&c);
	if (!r)
		r = write_reports(&c);
	if (!r)
		r = is_clean(&c) ? EXIT_CLEAN : EXIT_DIVERGENCE;
	else
		r = EXIT_USAGE;
	executor_free(c.ex);
	executor_free(c.min_ex);
	executor_free(c.other);
	json_decref(c.divergences);
	json_decref(c.differences);
	json_decref(c.errors);
	return r;
}
