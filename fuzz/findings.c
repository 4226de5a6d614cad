#define _GNU_SOURCE
#include "findings.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "minimize.h"

/* Seconds a finding may spend being minimised before it is filed. */
#define FINDING_MINIMIZE_S 10.0

struct known_signature {
	char name[SIGNATURE_MAX];
	unsigned inputs; /* inputs with this signature in this run */
};

struct finding_store {
	char *dir;
	char *describe;
	struct known_signature *known;
	unsigned n_known, cap_known;
	unsigned inputs;
	/* Scratch: programs are too big for the stack. */
	struct program prog, minimized;
	struct minimize_result min_result;
	struct divergence min_div;
	bool have_minimized;
	struct executor *baseline; /* not owned */
};

void divergence_signature(const struct divergence *div, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%s", check_name(div->check), op_kind_name(div->op.kind));
}

static struct known_signature *find_known(struct finding_store *store, const char *name)
{
	for (unsigned i = 0; i < store->n_known; i++)
		if (!strcmp(store->known[i].name, name))
			return &store->known[i];
	return NULL;
}

static struct known_signature *add_known(struct finding_store *store, const char *name)
{
	if (store->n_known == store->cap_known) {
		unsigned cap = store->cap_known ? 2 * store->cap_known : 16;
		struct known_signature *grown = realloc(store->known, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		store->known = grown;
		store->cap_known = cap;
	}
	snprintf(store->known[store->n_known].name, SIGNATURE_MAX, "%s", name);
	store->known[store->n_known].inputs = 0;
	return &store->known[store->n_known++];
}

/* Finding directories left by an earlier run; temporaries (".tmp.") are not findings. */
static int load_existing(struct finding_store *store, char *err, size_t errlen)
{
	DIR *dir = opendir(store->dir);
	struct dirent *entry;

	if (!dir) {
		snprintf(err, errlen, "cannot open findings directory %s: %s", store->dir, strerror(errno));
		return -1;
	}
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.' || strstr(entry->d_name, ".tmp.") ||
		    strlen(entry->d_name) >= SIGNATURE_MAX || entry->d_type != DT_DIR)
			continue;
		if (!add_known(store, entry->d_name)) {
			closedir(dir);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	closedir(dir);
	return 0;
}

struct finding_store *finding_store_open(const char *dir, const char *describe, char *err,
					 size_t errlen)
{
	struct finding_store *store = calloc(1, sizeof(*store));

	if (!store || !(store->dir = strdup(dir)) || !(store->describe = strdup(describe))) {
		snprintf(err, errlen, "out of memory");
		finding_store_free(store);
		return NULL;
	}
	if (load_existing(store, err, errlen)) {
		finding_store_free(store);
		return NULL;
	}
	return store;
}

void finding_store_set_baseline(struct finding_store *store, struct executor *baseline)
{
	store->baseline = baseline;
}

/* Whether a diverging input diverges on the baseline too (or cannot be replayed there):
 * then the planted bugs are not what it found. */
static bool diverges_without_bugs(struct finding_store *store)
{
	static struct divergence div;

	return store->baseline && executor_run(store->baseline, &store->prog, &div) != 0;
}

void finding_store_free(struct finding_store *store)
{
	if (!store)
		return;
	free(store->dir);
	free(store->describe);
	free(store->known);
	free(store);
}

static int write_text_file(const char *dir, const char *name, void (*fill)(FILE *, const void *),
			   const void *arg, char *err, size_t errlen)
{
	char *path;
	FILE *f;
	int bad;

	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f = fopen(path, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	fill(f, arg);
	bad = ferror(f) | fclose(f);
	if (bad)
		snprintf(err, errlen, "cannot write %s", path);
	free(path);
	return bad ? -1 : 0;
}

static void fill_program(FILE *f, const void *prog) { program_print(prog, f); }

/* A finding's minimised form, with the header that says what it reproduces. */
static void fill_minimized(FILE *f, const void *arg)
{
	const struct finding_store *store = arg;
	char header[1024];

	minimized_header(header, sizeof(header), &store->min_result, store->describe,
			 "crash-input.bin");
	fputs(header, f);
	program_print(&store->minimized, f);
}

struct report_args {
	const struct finding_store *store;
	const char *signature, *source, *final_dir;
	size_t len;
	uint32_t n_ops;
	int replay; /* executor_run's result */
	const struct divergence *div;
	const char *harness_error;
};

static void fill_report(FILE *f, const void *arg)
{
	const struct report_args *r = arg;
	char when[64];
	time_t now = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	fprintf(f, "finding:  %s\n", r->signature);
	fprintf(f, "model:    %s\n", r->store->describe);
	fprintf(f, "input:    %s (%zu bytes, %u ops)\n", r->source, r->len, r->n_ops);
	fprintf(f, "found:    %s\n", when);
	if (!strncmp(r->signature, SIGNATURE_UNPLANTED_PREFIX, strlen(SIGNATURE_UNPLANTED_PREFIX)))
		fprintf(f, "note:     the input diverges without the planted bugs too: a finding of the\n"
			   "          unmodified model (replay it without --bug)\n");
	fprintf(f, "replay:   shadowfuzz run %s %s/crash-input.bin\n", r->store->describe, r->final_dir);
	if (r->store->have_minimized) {
		fprintf(f, "trace:    shadowfuzz trace %s %s/minimized.sfp\n", r->store->describe,
			r->final_dir);
		fprintf(f, "\nminimised to %u ops (minimized.sfp):\n", r->store->minimized.n_ops);
		program_print(&r->store->minimized, f);
		fprintf(f, "\n");
		divergence_print(&r->store->min_div, f);
		fprintf(f, "\ncrash-input.bin (%u ops) diverges at op %u:\n", r->n_ops, r->div->op_index);
	}
	fprintf(f, "\n");
	if (r->replay > 0)
		divergence_print(r->div, f);
	else if (r->replay < 0)
		fprintf(f, "The replay stopped on a harness error: %s\n", r->harness_error);
	else
		fprintf(f, "The engine reported this input, but its replay passes every check: the\n"
			   "engine's log (fuzz.log beside the findings) has its sanitizer, timeout or\n"
			   "out-of-memory report, and aborts.log there the fuzz target's own report of\n"
			   "each abort (with how many programs its process had run before).\n");
}

static int write_finding(struct finding_store *store, const struct report_args *report,
			 const uint8_t *input, char *err, size_t errlen)
{
	char tmp[4096], *path;
	int r;

	if (dir_make_temp(report->final_dir, tmp, sizeof(tmp), err, errlen))
		return -1;
	if (asprintf(&path, "%s/crash-input.bin", tmp) < 0) {
		dir_remove_temp(tmp);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = file_write_new(path, input, report->len, err, errlen);
	free(path);
	if (r || write_text_file(tmp, "program.sfp", fill_program, &store->prog, err, errlen) ||
	    (store->have_minimized &&
	     write_text_file(tmp, "minimized.sfp", fill_minimized, store, err, errlen)) ||
	    write_text_file(tmp, "report.txt", fill_report, report, err, errlen)) {
		dir_remove_temp(tmp);
		return -1;
	}
	return dir_publish_new(tmp, report->final_dir, err, errlen);
}

int finding_store_add(struct finding_store *store, struct executor *ex, const uint8_t *input,
		      size_t len, const char *source, struct finding_result *result, char *err,
		      size_t errlen)
{
	static struct divergence div;
	struct report_args report = { .store = store, .source = source, .len = len, .div = &div };
	struct known_signature *known;
	char *final_dir;
	int r;

	program_decode(input, len, &store->prog);
	report.n_ops = store->prog.n_ops;
	report.replay = executor_run(ex, &store->prog, &div);
	result->planted = false;
	if (report.replay > 0 && diverges_without_bugs(store)) {
		char plain[SIGNATURE_MAX - sizeof(SIGNATURE_UNPLANTED_PREFIX) + 1];

		divergence_signature(&div, plain, sizeof(plain));
		snprintf(result->signature, sizeof(result->signature), SIGNATURE_UNPLANTED_PREFIX "%s", plain);
	} else if (report.replay > 0) {
		result->planted = store->baseline != NULL;
		divergence_signature(&div, result->signature, sizeof(result->signature));
	} else
		snprintf(result->signature, sizeof(result->signature), "%s",
			 report.replay < 0 ? "harness-error" : SIGNATURE_UNREPRODUCED);
	report.harness_error = report.replay < 0 ? executor_error(ex) : NULL;
	report.signature = result->signature;
	store->inputs++;
	known = find_known(store, result->signature);
	result->is_new = !known;
	if (!known && !(known = add_known(store, result->signature))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	known->inputs++;
	if (!result->is_new)
		return 0;
	/* The report's divergence is the original input's; minimising runs the executor
	 * again, so it works on a copy after the replay. */
	store->minimized = store->prog;
	store->have_minimized = report.replay > 0 &&
				program_minimize(ex, &store->minimized, FINDING_MINIMIZE_S,
						 &store->min_result) == 0 &&
				executor_run(ex, &store->minimized, &store->min_div) > 0;
	if (asprintf(&final_dir, "%s/%s", store->dir, result->signature) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	report.final_dir = final_dir;
	r = write_finding(store, &report, input, err, errlen);
	free(final_dir);
	if (r == 1)
		result->is_new = false;
	return r < 0 ? -1 : 0;
}

unsigned finding_store_unique(const struct finding_store *store)
{
	unsigned n = 0;

	for (unsigned i = 0; i < store->n_known; i++)
		n += store->known[i].inputs > 0;
	return n;
}

unsigned finding_store_inputs(const struct finding_store *store) { return store->inputs; }

const char *finding_store_signature(const struct finding_store *store, unsigned i,
				    unsigned *inputs)
{
	if (i >= store->n_known)
		return NULL;
	*inputs = store->known[i].inputs;
	return store->known[i].name;
}
