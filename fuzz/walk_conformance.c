/* Exhaustive walker conformance. A case is one access under one combination of: flags of
 * the leaf entry and of one upper entry (P W U A D NX PS and a reserved bit), access kind,
 * CPL, CR0.WP, CR4.SMEP, CR4.SMAP with EFLAGS.AC, EFER.NXE and, in 4/5-level paging,
 * CR4.PKE with PKRU. Every other entry on the path is fully permissive. Cases run through
 * the executor, so each is checked exactly as a program's access is. */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "../oracle/harness_layout.h"
#include "executor.h"
#include "walk_conformance.h"

static const char *const mode_names[CONF_MODE_COUNT] = { "32", "pse", "pae", "4", "5" };

int conformance_mode_parse(const char *name)
{
	for (int m = 0; m < CONF_MODE_COUNT; m++)
		if (!strcmp(name, mode_names[m]))
			return m;
	return -1;
}

const char *conformance_mode_name(enum conformance_mode mode) { return mode_names[mode]; }

/* Flag indices of a varied entry. */
enum { F_P, F_W, F_U, F_A, F_D, F_NX, F_PS, F_RSVD, F_COUNT };

#define SLOT_HVA 0x100000100000ull
#define SMALL_FRAME 0x200000ull
#define LARGE_FRAME 0x40000000ull
/* 4 MiB frame above 4 GiB: exercises the PSE-36 address bits. */
#define PSE36_FRAME 0x140000000ull

struct conf_state {
	enum conformance_mode cmode;
	enum paging_mode mode;
	int root_level;
	gva_t gva;
	struct executor *ex;
	struct divergence div;
	uint32_t op_index;
	int ctrl_last, pk_last;
	uint64_t mismatches, cases, considered, total_cases;
	const struct walk_conformance_options *opts;
	FILE *out;
};

/* One case, as indices into each dimension. */
struct conf_case {
	int varied_level; /* 2 (PDE) or 3 (PDPTE) */
	unsigned upper, leaf;
	int kind, cpl;
	int ctrl; /* wp | smep << 1 | smap_ac (0 off, 1 on, 2 on with AC) << 2 | nxe << 4 */
	int pk;   /* 0 PKE off; 1..3 PKE on, PKRU = pk << 2 (key 1: AD, WD, both) */
};

static enum paging_mode paging_mode_of(enum conformance_mode cmode)
{
	static const enum paging_mode map[CONF_MODE_COUNT] = {
		PAGING_32, PAGING_32, PAGING_PAE, PAGING_4LEVEL, PAGING_5LEVEL,
	};
	return map[cmode];
}

static bool has_nx(enum conformance_mode cmode) { return cmode >= CONF_PAE; }
static bool has_pke(enum conformance_mode cmode) { return cmode >= CONF_4LEVEL; }

/* A reserved bit the entry can carry, or 0 where the format has none. */
static uint64_t reserved_bit(enum conformance_mode cmode, bool large)
{
	if (cmode == CONF_32)
		return 0;
	if (cmode == CONF_PSE)
		return large ? 1ull << 21 : 0;
	return 1ull << 51;
}

static uint64_t flags_value(enum conformance_mode cmode, unsigned flags, bool large)
{
	static const uint64_t bits[F_COUNT] = {
		[F_P] = PT_PRESENT_MASK, [F_W] = PT_WRITABLE_MASK, [F_U] = PT_USER_MASK,
		[F_A] = PT_ACCESSED_MASK, [F_D] = PT_DIRTY_MASK, [F_NX] = PT64_NX_MASK,
		[F_PS] = PT_PAGE_SIZE_MASK,
	};
	uint64_t value = 0;

	for (int f = 0; f < F_COUNT; f++) {
		if (!(flags & (1u << f)))
			continue;
		value |= f == F_RSVD ? reserved_bit(cmode, large) : bits[f];
	}
	return value;
}

/* PS makes the upper entry a leaf, except in 32-bit paging without CR4.PSE (ignored). */
static bool upper_is_large(const struct conf_state *st, const struct conf_case *c)
{
	return (c->upper & (1u << F_PS)) && st->cmode != CONF_32;
}

/* Cases that would repeat another one or ask for a bit the format lacks are skipped. */
static bool case_is_distinct(const struct conf_state *st, const struct conf_case *c)
{
	bool upper_large = upper_is_large(st, c);

	if (!has_nx(st->cmode) && ((c->upper | c->leaf) & (1u << F_NX)))
		return false;
	if ((c->upper & (1u << F_RSVD)) && !reserved_bit(st->cmode, upper_large))
		return false;
	if ((c->leaf & (1u << F_RSVD)) && !reserved_bit(st->cmode, false))
		return false;
	/* D means nothing in a non-leaf entry; below a large upper entry the leaf is unused. */
	if (!upper_large && (c->upper & (1u << F_D)))
		return false;
	if ((upper_large || c->varied_level == 3) && c->leaf)
		return false;
	return true;
}

static int table_for_level(const struct conf_state *st, int level)
{
	return st->root_level - level; /* root T0, next level T1, ... */
}

static unsigned level_index(const struct conf_state *st, int level)
{
	if (st->mode == PAGING_32)
		return (st->gva >> (PAGE_SHIFT + 10 * (level - 1))) & 1023;
	if (st->mode == PAGING_PAE && level == 3)
		return (st->gva >> 30) & 3;
	return (st->gva >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

static int step(struct conf_state *st, const struct op *op)
{
	int ret = executor_step(st->ex, st->op_index++, op, &st->div);

	if (ret < 0)
		return -1;
	if (ret > 0) {
		st->mismatches++;
		if (st->mismatches <= st->opts->max_reports)
			divergence_print(&st->div, st->out);
	}
	return 0;
}

static int write_entry(struct conf_state *st, int level, uint64_t value)
{
	struct op op = { .kind = OP_PTE };

	op.pte.table = (uint8_t)table_for_level(st, level);
	op.pte.index = (uint16_t)level_index(st, level);
	op.pte.value = value;
	return step(st, &op);
}

static uint64_t permissive_entry(const struct conf_state *st, int level)
{
	uint64_t flags = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK;

	if (level == 1)
		return SMALL_FRAME | flags | PT_DIRTY_MASK;
	if (st->mode == PAGING_PAE && level == 3)
		return table_pool_gpa(table_for_level(st, level - 1)) | PT_PRESENT_MASK;
	return table_pool_gpa(table_for_level(st, level - 1)) | flags;
}

static uint64_t large_frame(const struct conf_state *st)
{
	return st->cmode == CONF_PSE ? (PSE36_FRAME & 0xffc00000ull) | (1ull << PT32_PSE36_SHIFT) : LARGE_FRAME;
}

/* Rewrites the whole path for a case (successful accesses set A/D bits). */
static int write_path(struct conf_state *st, const struct conf_case *c)
{
	bool upper_large = upper_is_large(st, c);
	uint64_t pkey = c->pk ? 1ull << PT64_PKEY_SHIFT : 0;
	int bottom = upper_large ? c->varied_level : 1;

	for (int level = st->mode == PAGING_PAE ? 2 : st->root_level; level >= bottom; level--) {
		uint64_t value = permissive_entry(st, level);

		if (level == c->varied_level) {
			uint64_t base = upper_large ? large_frame(st)
						    : table_pool_gpa(table_for_level(st, level - 1));
			value = base | flags_value(st->cmode, c->upper, upper_large);
		} else if (level == 1 && c->varied_level == 2) {
			value = SMALL_FRAME | flags_value(st->cmode, c->leaf, false);
		}
		if (level == bottom)
			value |= pkey;
		if (write_entry(st, level, value))
			return -1;
	}
	return 0;
}

static int set_controls(struct conf_state *st, const struct conf_case *c)
{
	struct op op = { .kind = OP_CONTROL };
	int smap_ac = (c->ctrl >> 2) & 3;

	if (c->ctrl != st->ctrl_last) {
		op.control.mask = CTRL_CR0_WP | CTRL_CR4_SMEP | CTRL_CR4_SMAP | CTRL_RFLAGS_AC | CTRL_EFER_NXE;
		op.control.value = (c->ctrl & 1 ? CTRL_CR0_WP : 0) | (c->ctrl & 2 ? CTRL_CR4_SMEP : 0) |
				   (smap_ac ? CTRL_CR4_SMAP : 0) | (smap_ac == 2 ? CTRL_RFLAGS_AC : 0) |
				   (c->ctrl >> 4 ? CTRL_EFER_NXE : 0);
		st->ctrl_last = c->ctrl;
		if (step(st, &op))
			return -1;
	}
	if (c->pk == st->pk_last)
		return 0;
	st->pk_last = c->pk;
	op = (struct op){ .kind = OP_CONTROL, .control = { .mask = CTRL_CR4_PKE, .value = c->pk ? CTRL_CR4_PKE : 0 } };
	if (step(st, &op))
		return -1;
	op = (struct op){ .kind = OP_PKRU, .pkru = { .value = (uint32_t)c->pk << 2 } };
	return step(st, &op);
}

static int run_case(struct conf_state *st, const struct conf_case *c)
{
	struct op access = { .kind = OP_ACCESS };

	if (set_controls(st, c) || write_path(st, c))
		return -1;
	access.access.kind = (uint8_t)c->kind;
	access.access.cpl = (uint8_t)c->cpl;
	access.access.gva = st->gva;
	st->cases++;
	return step(st, &access);
}

/* splitmix64: a fixed, well-mixed hash so a sample is the same on every run. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static bool sampled(struct conf_state *st)
{
	uint64_t n = st->considered++;

	if (!st->opts->sample || st->opts->sample >= st->total_cases)
		return true;
	return mix(n ^ st->opts->seed) % st->total_cases < st->opts->sample;
}

/* Visits every distinct case; with run false it only counts them. */
static int for_each_case(struct conf_state *st, bool run)
{
	int top = has_pke(st->cmode) ? 3 : 2;
	int pk_states = has_pke(st->cmode) ? 4 : 1;
	struct conf_case c;

	for (c.varied_level = 2; c.varied_level <= top; c.varied_level++)
	for (c.upper = 0; c.upper < 1u << F_COUNT; c.upper++)
	for (c.leaf = 0; c.leaf < 1u << F_COUNT; c.leaf++) {
		if (c.leaf & (1u << F_PS))
			continue;
		for (c.pk = 0; c.pk < pk_states; c.pk++)
		for (c.ctrl = 0; c.ctrl < 32; c.ctrl++)
		for (c.cpl = 0; c.cpl <= 3; c.cpl += 3)
		for (c.kind = ACCESS_READ; c.kind <= ACCESS_FETCH; c.kind++) {
			if (((c.ctrl >> 2) & 3) == 3 || !case_is_distinct(st, &c))
				continue;
			if (!run) {
				st->total_cases++;
				continue;
			}
			if (sampled(st) && run_case(st, &c))
				return -1;
		}
	}
	return 0;
}

static gva_t case_gva(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_32:
		return 5ull << 22 | 6ull << 12 | 0x123;
	case PAGING_PAE:
		return 1ull << 30 | 3ull << 21 | 4ull << 12 | 0x123;
	case PAGING_4LEVEL:
		return 1ull << 39 | 2ull << 30 | 3ull << 21 | 4ull << 12 | 0x123;
	default:
		return 1ull << 48 | 1ull << 39 | 2ull << 30 | 3ull << 21 | 4ull << 12 | 0x123;
	}
}

/* Memslot over the table pool, the permissive path, then paging on. */
static int prepare_mode(struct conf_state *st)
{
	struct op slot = { .kind = OP_MEMSLOT_SET };
	struct op mode = { .kind = OP_MODE };
	struct op pse = { .kind = OP_CONTROL, .control = { .mask = CTRL_CR4_PSE } };

	if (executor_begin(st->ex))
		return -1;
	slot.memslot.gpa = TABLE_POOL_BASE;
	slot.memslot.size = TABLE_POOL_PAGES * PAGE_SIZE;
	slot.memslot.hva = SLOT_HVA;
	slot.memslot.host_page_shift = PAGE_SHIFT;
	mode.mode.mode = (uint8_t)st->mode;
	pse.control.value = st->cmode == CONF_PSE ? CTRL_CR4_PSE : 0;
	if (step(st, &slot) || step(st, &pse))
		return -1;
	/* Entries are written in the mode's format, so enter the mode first; a PAE PDPTE
	 * needs a CR3 reload afterwards to reach the PDPTE registers. */
	if (st->mode != PAGING_PAE && step(st, &mode))
		return -1;
	for (int level = st->root_level; level >= 1; level--)
		if (write_entry(st, level, permissive_entry(st, level)))
			return -1;
	return st->mode == PAGING_PAE ? step(st, &mode) : 0;
}

static int run_mode(struct conf_state *st)
{
	st->ctrl_last = -1;
	st->pk_last = 0;
	if (prepare_mode(st))
		return -1;
	if (st->mismatches)
		return 0;
	for_each_case(st, false);
	return for_each_case(st, true);
}

int walk_conformance_run(const struct kvm_config *cfg, const struct walk_conformance_options *opts,
			 FILE *out, struct walk_conformance_result *total, char *err, size_t errlen)
{
	struct executor *ex = executor_new(cfg, EXEC_WALKER, err, errlen);

	memset(total, 0, sizeof(*total));
	if (!ex)
		return -1;
	for (int m = 0; m < CONF_MODE_COUNT; m++) {
		struct conf_state st = { .cmode = m, .ex = ex, .opts = opts, .out = out };
		clock_t start = clock();

		if (!(opts->mode_mask & (1u << m)))
			continue;
		st.mode = paging_mode_of(m);
		st.root_level = st.mode == PAGING_32 ? 2 : st.mode == PAGING_PAE ? 3 : st.mode == PAGING_4LEVEL ? 4 : 5;
		st.gva = case_gva(st.mode);
		if (run_mode(&st)) {
			snprintf(err, errlen, "mode %s: %s", mode_names[m], executor_error(ex));
			executor_free(ex);
			return -1;
		}
		fprintf(out, "mode %-3s: %llu cases, %llu mismatches (%.1f s)\n", mode_names[m],
			(unsigned long long)st.cases, (unsigned long long)st.mismatches,
			(double)(clock() - start) / CLOCKS_PER_SEC);
		fflush(out);
		total->cases += st.cases;
		total->mismatches += st.mismatches;
	}
	fprintf(out, "total: %llu cases, %llu mismatches\n", (unsigned long long)total->cases,
		(unsigned long long)total->mismatches);
	executor_free(ex);
	return 0;
}
