#define _GNU_SOURCE
#include "minimize.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli_common.h"

struct minimizer {
	struct executor *ex;
	char signature[SIGNATURE_MAX];
	double deadline;
	unsigned runs;
	bool timed_out;
	int harness_error;
	uint8_t bytes[PROG_MAX_OPS * 64];
	struct divergence div;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool out_of_time(struct minimizer *m)
{
	if (now_s() > m->deadline)
		m->timed_out = true;
	return m->timed_out || m->harness_error;
}

/* Runs a candidate already in normal form; true when it diverges with the signature. */
static bool diverges_alike(struct minimizer *m, const struct program *candidate)
{
	char signature[SIGNATURE_MAX];
	int r = executor_run(m->ex, candidate, &m->div);

	m->runs++;
	if (r < 0)
		m->harness_error = 1;
	if (r <= 0)
		return false;
	divergence_signature(&m->div, signature, sizeof(signature));
	return !strcmp(signature, m->signature);
}

/* What the binary form makes of a program: the valid program a fuzzer would run. */
static void normalise(struct minimizer *m, struct program *prog)
{
	size_t len = program_encode(prog, m->bytes, sizeof(m->bytes));

	program_decode(m->bytes, len, prog);
}

/* Tries candidate; when it keeps the signature, it becomes *prog. */
static bool try_candidate(struct minimizer *m, struct program *prog, struct program *candidate)
{
	if (out_of_time(m))
		return false;
	normalise(m, candidate);
	if (!diverges_alike(m, candidate))
		return false;
	*prog = *candidate;
	return true;
}

static void copy_without(const struct program *prog, uint32_t from, uint32_t to,
			 struct program *out)
{
	out->n_ops = 0;
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (i < from || i >= to)
			out->ops[out->n_ops++] = prog->ops[i];
}

/* ddmin on ops, complements only: drop one of n chunks at a time, halving the chunks
 * when none can go. */
static void ddmin_ops(struct minimizer *m, struct program *prog)
{
	static struct program candidate;
	uint32_t n = 2;

	while (prog->n_ops >= 2 && !out_of_time(m)) {
		uint32_t chunk = (prog->n_ops + n - 1) / n;
		bool reduced = false;

		for (uint32_t start = 0; start < prog->n_ops && !reduced; start += chunk) {
			copy_without(prog, start, start + chunk, &candidate);
			reduced = try_candidate(m, prog, &candidate);
		}
		if (reduced) {
			n = n > 2 ? n - 1 : 2;
			continue;
		}
		if (n >= prog->n_ops)
			break;
		n = 2 * n < prog->n_ops ? 2 * n : prog->n_ops;
	}
}

/* Clears one set bit of *field at a time, keeping each clearing the divergence allows. */
static bool clear_bits(struct minimizer *m, struct program *prog, uint32_t index,
		       size_t field_offset, size_t field_size)
{
	static struct program candidate;
	bool changed = false;

	for (unsigned bit = 0; bit < 8 * field_size && !out_of_time(m); bit++) {
		uint64_t value = 0;

		memcpy(&value, (uint8_t *)&prog->ops[index] + field_offset, field_size);
		if (!(value & (1ull << bit)))
			continue;
		value &= ~(1ull << bit);
		candidate = *prog;
		memcpy((uint8_t *)&candidate.ops[index] + field_offset, &value, field_size);
		changed |= try_candidate(m, prog, &candidate);
	}
	return changed;
}

#define FIELD(member) offsetof(struct op, member), sizeof(((struct op *)0)->member)

/* Flag bits only: a pte's frame bits are not flags, so they are left alone. */
static bool clear_pte_flags(struct minimizer *m, struct program *prog, uint32_t index)
{
	static struct program candidate;
	const uint64_t flag_bits = 0xfff0000000000fffull;
	bool changed = false;

	for (unsigned bit = 0; bit < 64 && !out_of_time(m); bit++) {
		uint64_t mask = 1ull << bit;

		if (!(flag_bits & mask) || !(prog->ops[index].pte.value & mask))
			continue;
		candidate = *prog;
		candidate.ops[index].pte.value &= ~mask;
		changed |= try_candidate(m, prog, &candidate);
	}
	return changed;
}

/* One plainer version of an op, if it has one: user access to supervisor, write and fetch
 * to read, memslot flags and host large pages off, default hva, a generation jump of 1. */
static bool plainer_op(const struct op *op, struct op *out)
{
	*out = *op;
	switch (op->kind) {
	case OP_ACCESS:
		if (op->access.cpl)
			out->access.cpl = 0;
		else if (op->access.kind != ACCESS_READ)
			out->access.kind = ACCESS_READ;
		else
			return false;
		return true;
	case OP_MEMSLOT_SET:
		if (op->memslot.host_page_shift != 12)
			out->memslot.host_page_shift = 12;
		else if (op->memslot.hva != prog_default_hva(op->memslot.id, op->memslot.gpa))
			out->memslot.hva = prog_default_hva(op->memslot.id, op->memslot.gpa);
		else
			return false;
		return true;
	case OP_GEN_JUMP:
		if (op->gen_jump.count <= 1)
			return false;
		out->gen_jump.count = op->gen_jump.count / 2;
		return true;
	default:
		return false;
	}
}

static bool simplify_op(struct minimizer *m, struct program *prog, uint32_t index)
{
	static struct program candidate;
	struct op *op = &prog->ops[index];
	bool changed = false;

	switch (op->kind) {
	case OP_PTE:
		changed |= clear_pte_flags(m, prog, index);
		break;
	case OP_MAP:
		changed |= clear_bits(m, prog, index, FIELD(map.leaf_flags));
		changed |= clear_bits(m, prog, index, FIELD(map.upper_flags));
		break;
	case OP_CONTROL:
		changed |= clear_bits(m, prog, index, FIELD(control.mask));
		break;
	case OP_MEMSLOT_SET:
	case OP_MEMSLOT_FLAGS:
		changed |= clear_bits(m, prog, index, FIELD(memslot.flags));
		break;
	default:
		break;
	}
	for (unsigned step = 0; step < 32 && !out_of_time(m); step++) {
		candidate = *prog;
		if (!plainer_op(&prog->ops[index], &candidate.ops[index]) ||
		    !try_candidate(m, prog, &candidate))
			break;
		changed = true;
	}
	return changed;
}

static void simplify_values(struct minimizer *m, struct program *prog)
{
	bool changed = true;

	for (unsigned round = 0; changed && round < 4 && !out_of_time(m); round++) {
		changed = false;
		for (uint32_t i = 0; i < prog->n_ops && !out_of_time(m); i++)
			changed |= simplify_op(m, prog, i);
	}
}

/* Last pass, as libFuzzer's -minimize_crash would: delete or zero single bytes of the
 * binary form while the divergence stays and the program gets no longer. */
static void minimize_bytes(struct minimizer *m, struct program *prog)
{
	static uint8_t bytes[sizeof(((struct minimizer *)0)->bytes)], trial[sizeof(bytes)];
	static struct program candidate;
	size_t len = program_encode(prog, bytes, sizeof(bytes));

	for (size_t i = len; i-- > 0 && !out_of_time(m);) {
		memcpy(trial, bytes, len);
		memmove(trial + i, trial + i + 1, len - i - 1);
		program_decode(trial, len - 1, &candidate);
		if (candidate.n_ops <= prog->n_ops && diverges_alike(m, &candidate)) {
			memcpy(bytes, trial, --len);
			*prog = candidate;
			continue;
		}
		if (!bytes[i])
			continue;
		memcpy(trial, bytes, len);
		trial[i] = 0;
		program_decode(trial, len, &candidate);
		if (candidate.n_ops <= prog->n_ops && diverges_alike(m, &candidate)) {
			bytes[i] = 0;
			*prog = candidate;
		}
	}
}

int program_minimize(struct executor *ex, struct program *prog, double budget_s,
		     struct minimize_result *result)
{
	static struct minimizer m;
	int r;

	memset(&m, 0, sizeof(m));
	m.ex = ex;
	m.deadline = now_s() + budget_s;
	memset(result, 0, sizeof(*result));
	result->ops_before = prog->n_ops;
	result->bytes_before = program_encode(prog, m.bytes, sizeof(m.bytes));
	normalise(&m, prog);
	r = executor_run(ex, prog, &m.div);
	if (r <= 0)
		return r < 0 ? -1 : 1;
	divergence_signature(&m.div, m.signature, sizeof(m.signature));
	ddmin_ops(&m, prog);
	simplify_values(&m, prog);
	ddmin_ops(&m, prog);
	minimize_bytes(&m, prog);
	snprintf(result->signature, sizeof(result->signature), "%s", m.signature);
	result->ops_after = prog->n_ops;
	result->bytes_after = program_encode(prog, m.bytes, sizeof(m.bytes));
	result->runs = m.runs + 1;
	result->timed_out = m.timed_out;
	return m.harness_error ? -1 : 0;
}

/* ---- shadowfuzz minimize ---- */

static void usage_minimize(FILE *out)
{
	fprintf(out, "usage: shadowfuzz minimize [options] FILE -o OUT\n"
		     "Shrinks a diverging program (text or binary) while it keeps its divergence\n"
		     "signature, and writes it to OUT: text if OUT ends in .sfp, binary otherwise.\n"
		     "OUT must not exist (nothing is overwritten). Use the same --profile/--bug as\n"
		     "the campaign that found it (see the finding's report.txt).\n"
		     "  -o, --out OUT  where the minimised program goes (required)\n"
		     "  --time S       give up refining after S seconds (default 60)\n");
	usage_common(out);
}

void minimized_header(char *buf, size_t len, const struct minimize_result *result,
		      const char *model, const char *source)
{
	char when[32];
	time_t now = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%d", gmtime(&now));
	snprintf(buf, len, "# signature: %s\n# model: %s\n# minimised from: %s (%u ops) on %s\n",
		 result->signature, model, source, result->ops_before, when);
}

int cmd_minimize(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "out", required_argument, NULL, 'o' },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct common_options common = COMMON_OPTIONS_INIT;
	static struct program prog;
	struct minimize_result result;
	const char *out = NULL;
	double budget = 60;
	struct executor *ex;
	char err[512], header[1024], describe[256];
	int opt, r;

	while ((opt = getopt_long(argc, argv, "p:b:H:o:t:h", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, &common);
		char *end;

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		if (opt == 'o') {
			out = optarg;
		} else if (opt == 't') {
			budget = strtod(optarg, &end);
			if (*end || !(budget > 0)) {
				fprintf(stderr, "shadowfuzz minimize: --time wants seconds, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
		} else {
			usage_minimize(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? EXIT_CLEAN : EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || !out) {
		fprintf(stderr, "shadowfuzz minimize: %s\n",
			!out ? "-o OUT is required" : "give exactly one program file");
		return EXIT_USAGE;
	}
	if (access(out, F_OK) == 0) {
		fprintf(stderr, "shadowfuzz minimize: %s exists; not overwriting it\n", out);
		return EXIT_USAGE;
	}
	if (program_load_file(argv[optind], &prog, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz minimize: %s\n", err);
		return EXIT_USAGE;
	}
	finish_common(&common);
	ex = executor_new(&common.config, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex) {
		fprintf(stderr, "shadowfuzz minimize: %s\n", err);
		return EXIT_USAGE;
	}
	executor_set_audit(ex, true); /* the signature `shadowfuzz run` shows */
	r = program_minimize(ex, &prog, budget, &result);
	if (r != 0) {
		fprintf(stderr, "shadowfuzz minimize: %s\n",
			r > 0 ? "the program does not diverge with these options: nothing to keep"
			      : executor_error(ex));
		executor_free(ex);
		return EXIT_USAGE;
	}
	executor_free(ex);
	common_describe(&common, describe, sizeof(describe));
	minimized_header(header, sizeof(header), &result, describe, argv[optind]);
	r = program_save_new(out, &prog, header, err, sizeof(err));
	if (r) {
		fprintf(stderr, "shadowfuzz minimize: %s\n", r > 0 ? "OUT appeared meanwhile; kept it" : err);
		return EXIT_USAGE;
	}
	printf("%s: %u -> %u ops, %zu -> %zu bytes, signature %s kept (%u runs%s); written to %s\n",
	       argv[optind], result.ops_before, result.ops_after, result.bytes_before,
	       result.bytes_after, result.signature, result.runs,
	       result.timed_out ? ", stopped by --time" : "", out);
	return EXIT_CLEAN;
}
