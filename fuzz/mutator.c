/* Structure-aware mutation (mutator.h). Mutations work on the decoded struct program and
 * need not respect the validity rules: the codec turns an out-of-rule field into a valid
 * neighbour, and a second decode/encode makes the bytes canonical. Values are chosen where
 * the shadow MMU has edges: entry bits it checks, gvas sharing tables with the program's
 * others, memslot boundaries at page and large-page steps, generations near a wrap. */
#include <string.h>

#include "mutator.h"
#include "program.h"
#include "../core/memslot.h"
#include "../oracle/harness_layout.h"

#define SZ_4K 0x1000ull
#define SZ_2M 0x200000ull
#define SZ_4M 0x400000ull
#define SZ_1G 0x40000000ull

/* Scratch for one encoding: the longest record is 26 bytes with its opcode. */
#define ENCODED_MAX (PROG_MAX_OPS * 32)
/* Op-level attempts before the byte-level fallback. */
#define MUTATE_ATTEMPTS 16
/* Longest run of ops deleted, duplicated or spliced at once. */
#define MAX_RUN 4

/* ---- splitmix64: small, fast, and the whole state is the seed ---- */

struct rng {
	uint64_t state;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rng_next(r) % n) : 0;
}

static bool rng_one_in(struct rng *r, uint32_t n)
{
	return rng_below(r, n) == 0;
}

static uint64_t rng_pick(struct rng *r, const uint64_t *values, size_t n)
{
	return values[rng_below(r, (uint32_t)n)];
}

#define PICK(r, array) rng_pick(r, array, sizeof(array) / sizeof(array[0]))

/* ---- encoding ---- */

/* The first encoding turns out-of-rule fields into valid neighbours; encoding what that
 * decodes to writes bytes that decode and encode to themselves. */
static size_t encode_canonical(const struct program *prog, uint8_t *out, size_t max_size)
{
	static struct program valid;
	uint8_t first[ENCODED_MAX];
	size_t n = program_encode(prog, first, max_size < sizeof(first) ? max_size : sizeof(first));

	program_decode(first, n, &valid);
	return program_encode(&valid, out, max_size);
}

/* ---- where ops sit ---- */

/* The vCPU op index runs on, and every vCPU's mode and CR3 table before it. */
static struct prog_state state_before(const struct program *prog, uint32_t index)
{
	struct prog_state state;

	prog_state_init(&state);
	for (uint32_t i = 0; i < index; i++)
		prog_state_after(&state, &prog->ops[i]);
	return state;
}

/* The paging mode of the vCPU op index runs on. */
static enum paging_mode mode_before(const struct program *prog, uint32_t index)
{
	struct prog_state state = state_before(prog, index);

	return prog_state_mode(&state);
}

typedef bool (*op_filter)(const struct op *op);

/* A random op that the filter accepts, or -1 if none does. */
static int pick_op(struct rng *r, const struct program *prog, op_filter accept)
{
	uint32_t matches = 0, chosen;

	for (uint32_t i = 0; i < prog->n_ops; i++)
		matches += accept(&prog->ops[i]);
	if (!matches)
		return -1;
	chosen = rng_below(r, matches);
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (accept(&prog->ops[i]) && chosen-- == 0)
			return (int)i;
	return -1;
}

static uint64_t *op_gva(struct op *op)
{
	switch (op->kind) {
	case OP_MAP:
		return &op->map.gva;
	case OP_ACCESS:
		return &op->access.gva;
	case OP_INVLPG:
		return &op->invlpg.gva;
	default:
		return NULL;
	}
}

static bool has_gva(const struct op *op)
{
	return op_gva((struct op *)op) != NULL;
}

/* A gva some op of the program uses, or 0 if none does. */
static uint64_t program_gva(struct rng *r, const struct program *prog)
{
	int i = pick_op(r, prog, has_gva);

	return i < 0 ? 0 : *op_gva((struct op *)&prog->ops[i]);
}

/* ---- op-level edits ---- */

static void remove_ops(struct program *prog, uint32_t at, uint32_t count)
{
	memmove(&prog->ops[at], &prog->ops[at + count],
		(prog->n_ops - at - count) * sizeof(struct op));
	prog->n_ops -= count;
}

/* Inserts count ops (fewer if the program would outgrow PROG_MAX_OPS); returns how many. */
static uint32_t insert_ops(struct program *prog, uint32_t at, const struct op *ops, uint32_t count)
{
	if (count > PROG_MAX_OPS - prog->n_ops)
		count = PROG_MAX_OPS - prog->n_ops;
	memmove(&prog->ops[at + count], &prog->ops[at], (prog->n_ops - at) * sizeof(struct op));
	memcpy(&prog->ops[at], ops, count * sizeof(struct op));
	prog->n_ops += count;
	return count;
}

/* A random op as the decoder makes it in this mode: random record bytes after a mode op
 * give the codec's own weighting of kinds and biased field values. */
static void random_op(struct rng *r, enum paging_mode mode, struct op *out)
{
	static struct program decoded;
	struct program prefix = { .n_ops = 1, .ops = { { .kind = OP_MODE, .mode = { mode } } } };
	uint8_t bytes[64];
	size_t n = program_encode(&prefix, bytes, sizeof(bytes));

	for (size_t i = n; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)rng_next(r);
	program_decode(bytes, sizeof(bytes), &decoded);
	*out = decoded.ops[1];
}

static uint64_t move_gva(struct rng *r, uint64_t gva);

static bool mutate_insert(struct rng *r, struct program *prog)
{
	uint32_t at = rng_below(r, prog->n_ops + 1);
	uint64_t *gva, near;
	struct op op;

	if (prog->n_ops >= PROG_MAX_OPS)
		return false;
	random_op(r, mode_before(prog, at), &op);
	gva = op_gva(&op);
	near = program_gva(r, prog);
	/* Touching what the program already maps is what reaches shared shadow pages. */
	if (gva && near && !rng_one_in(r, 4))
		*gva = rng_one_in(r, 2) ? near : move_gva(r, near);
	return insert_ops(prog, at, &op, 1) == 1;
}

static uint32_t run_length(struct rng *r, uint32_t available)
{
	uint32_t len = rng_one_in(r, 2) ? 1 : 1 + rng_below(r, MAX_RUN);

	return len < available ? len : available;
}

static bool mutate_delete(struct rng *r, struct program *prog)
{
	uint32_t at, len;

	if (prog->n_ops < 2)
		return false;
	at = rng_below(r, prog->n_ops);
	len = run_length(r, prog->n_ops - at);
	if (len == prog->n_ops)
		len--;
	remove_ops(prog, at, len);
	return true;
}

static bool mutate_duplicate(struct rng *r, struct program *prog)
{
	struct op run[MAX_RUN];
	uint32_t from, len, to;

	if (prog->n_ops == 0 || prog->n_ops >= PROG_MAX_OPS)
		return false;
	from = rng_below(r, prog->n_ops);
	len = run_length(r, prog->n_ops - from);
	memcpy(run, &prog->ops[from], len * sizeof(struct op));
	to = rng_below(r, prog->n_ops + 1);
	return insert_ops(prog, to, run, len) > 0;
}

static bool mutate_swap(struct rng *r, struct program *prog)
{
	uint32_t a, b;
	struct op tmp;

	if (prog->n_ops < 2)
		return false;
	a = rng_below(r, prog->n_ops);
	b = (a + 1 + rng_below(r, prog->n_ops - 1)) % prog->n_ops;
	/* Neighbours most of the time: order matters most between adjacent ops. */
	if (rng_one_in(r, 2))
		b = a + 1 < prog->n_ops ? a + 1 : a - 1;
	tmp = prog->ops[a];
	prog->ops[a] = prog->ops[b];
	prog->ops[b] = tmp;
	return true;
}

/* ---- field tweaks ---- */

/* Entry bits the walker and the shadow MMU test: P, W, U, PWT, PCD, A, D, PS, G, PAT of a
 * large page, bit 13 (reserved in 2M/1G leaves), bit 21 (reserved in a 4M leaf), bits
 * above MAXPHYADDR 40, bit 51, the ignored bit 52, protection-key bits, NX. */
static const uint64_t entry_bits[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 21, 40, 51, 52, 59, 62, 63,
};

/* Low flag combinations programs commonly need: present or not, writable, user, A/D set,
 * a large page. */
static const uint64_t entry_combos[] = {
	0x0, 0x1, 0x3, 0x5, 0x7, 0x27, 0x67, 0x63, 0x87, 0xe7, 0x6,
};

static bool has_entry_flags(const struct op *op)
{
	return op->kind == OP_PTE || op->kind == OP_MAP;
}

static uint64_t tweak_entry(struct rng *r, uint64_t value)
{
	if (rng_one_in(r, 4))
		return (value & ~0xfffull) | PICK(r, entry_combos);
	return value ^ 1ull << PICK(r, entry_bits);
}

/* A pte pointing at another pool table links tables, making shared and cyclic walks. */
static uint64_t retarget_entry(struct rng *r, uint64_t value)
{
	return (value & ~PT64_BASE_ADDR_MASK) | table_pool_gpa(rng_below(r, 8));
}

static bool mutate_entry_flags(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, has_entry_flags);
	struct op *op;

	if (i < 0)
		return false;
	op = &prog->ops[i];
	if (op->kind == OP_PTE)
		op->pte.value = rng_one_in(r, 5) ? retarget_entry(r, op->pte.value)
						 : tweak_entry(r, op->pte.value);
	else if (rng_one_in(r, 3))
		op->map.upper_flags = tweak_entry(r, op->map.upper_flags);
	else
		op->map.leaf_flags = tweak_entry(r, op->map.leaf_flags);
	return true;
}

static uint64_t plus_or_minus(struct rng *r, uint64_t value, uint64_t step)
{
	return rng_one_in(r, 2) ? value + step : value - step;
}

/* A gva near another: same page (new offset), neighbouring page, same 2M or 1G region,
 * neighbouring large page, or the bit that makes a 4-level gva non-canonical. */
static uint64_t move_gva(struct rng *r, uint64_t gva)
{
	switch (rng_below(r, 7)) {
	case 0:
		return (gva & ~0xfffull) | (rng_one_in(r, 2) ? rng_below(r, 0x1000) : 0xffc + rng_below(r, 4));
	case 1:
		return plus_or_minus(r, gva, SZ_4K);
	case 2:
		return (gva & ~(SZ_2M - 1)) | (uint64_t)rng_below(r, 512) << 12;
	case 3:
		return (gva & ~(SZ_1G - 1)) | (uint64_t)rng_below(r, 512) << 21;
	case 4:
		return plus_or_minus(r, gva, rng_one_in(r, 2) ? SZ_2M : SZ_4M);
	case 5:
		return plus_or_minus(r, gva, SZ_1G);
	default:
		return gva ^ 1ull << 47;
	}
}

static bool mutate_gva(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, has_gva);
	uint64_t *gva, base;

	if (i < 0)
		return false;
	gva = op_gva(&prog->ops[i]);
	/* Half the time start from another op's gva, so ops come to share tables. */
	base = rng_one_in(r, 2) ? program_gva(r, prog) : *gva;
	*gva = move_gva(r, base);
	return true;
}

static bool is_memslot_op(const struct op *op)
{
	return op->kind >= OP_MEMSLOT_SET && op->kind <= OP_MEMSLOT_FLAGS;
}

static const uint64_t slot_steps[] = { SZ_4K, SZ_4K, SZ_2M, SZ_4M, SZ_1G };
/* Ids around the limit of user slots (509) and the harness's own (508, never named). */
static const uint64_t slot_ids[] = { 0, 1, 2, 3, 507, 509, 510, 511, 512 };
static const uint64_t host_page_shifts[] = { 12, 21, 30 };
/* Access- and write-disable bits of the keys the biased entries use (0, 1, 2, 15). */
static const uint64_t pkru_bits[] = { 0, 1, 2, 3, 4, 5, 30, 31 };

static void tweak_slot_gpa(struct rng *r, struct op *op)
{
	uint64_t old = op->memslot.gpa;

	op->memslot.gpa = plus_or_minus(r, old, PICK(r, slot_steps));
	/* Keep the default host layout when the op had it, so large pages stay possible. */
	if (op->kind == OP_MEMSLOT_SET && op->memslot.hva == prog_default_hva(op->memslot.id, old))
		op->memslot.hva = prog_default_hva(op->memslot.id, op->memslot.gpa);
}

static void tweak_slot_size(struct rng *r, struct op *op)
{
	uint64_t step = PICK(r, slot_steps);

	if (rng_one_in(r, 3))
		op->memslot.size = step * (1 + rng_below(r, 4));
	else
		op->memslot.size = plus_or_minus(r, op->memslot.size, step);
}

static void tweak_slot_identity(struct rng *r, struct op *op)
{
	switch (rng_below(r, 4)) {
	case 0:
		op->memslot.id = (uint16_t)PICK(r, slot_ids);
		break;
	case 1:
		op->memslot.as_id ^= 1;
		break;
	case 2:
		op->memslot.flags ^= rng_one_in(r, 2) ? KVM_MEM_LOG_DIRTY_PAGES : KVM_MEM_READONLY;
		break;
	default:
		op->memslot.flags ^= rng_one_in(r, 2) ? 1u << 2 : KVM_MEMSLOT_INVALID;
	}
}

static void tweak_slot_host(struct rng *r, struct op *op)
{
	if (rng_one_in(r, 2))
		op->memslot.host_page_shift = (uint8_t)PICK(r, host_page_shifts);
	else
		op->memslot.hva = prog_default_hva(op->memslot.id, op->memslot.gpa) + rng_below(r, 3) * SZ_4K;
}

static bool mutate_memslot(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, is_memslot_op);
	struct op *op;
	uint32_t fields;

	if (i < 0)
		return false;
	op = &prog->ops[i];
	fields = op->kind == OP_MEMSLOT_SET ? 4 : op->kind == OP_MEMSLOT_MOVE ? 2 : 1;
	switch (rng_below(r, fields)) {
	case 0:
		tweak_slot_identity(r, op);
		break;
	case 1:
		tweak_slot_gpa(r, op);
		break;
	case 2:
		tweak_slot_size(r, op);
		break;
	default:
		tweak_slot_host(r, op);
	}
	return true;
}

static bool is_gen_jump(const struct op *op)
{
	return op->kind == OP_GEN_JUMP;
}

/* Counts a few installs short of the MMIO generation's wraps (2^18 installs in K51+, the
 * wider fields of K420 at 2^19 and 2^20), or a small step to finish a wrap. */
static uint32_t gen_jump_count(struct rng *r, uint32_t old)
{
	switch (rng_below(r, 4)) {
	case 0:
		return (1u << (18 + rng_below(r, 3))) - rng_below(r, 4);
	case 1:
		return 1 + rng_below(r, 64);
	case 2:
		return old + 1;
	default:
		return old > 1 ? old - 1 : old + 2;
	}
}

static bool mutate_gen_jump(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, is_gen_jump);
	struct op *op;

	if (i < 0)
		return false;
	op = &prog->ops[i];
	if (rng_one_in(r, 5))
		op->gen_jump.as_id ^= 1;
	else
		op->gen_jump.count = gen_jump_count(r, op->gen_jump.count);
	return true;
}

static bool is_access(const struct op *op)
{
	return op->kind == OP_ACCESS;
}

static bool mutate_access(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, is_access);
	struct op *op;
	uint32_t choice;

	if (i < 0)
		return false;
	op = &prog->ops[i];
	choice = rng_below(r, 3);
	if (choice != 1)
		op->access.kind = (uint8_t)((op->access.kind + 1 + rng_below(r, 2)) % 3);
	if (choice != 0)
		op->access.cpl ^= 3;
	return true;
}

static bool is_state_op(const struct op *op)
{
	return op->kind == OP_CONTROL || op->kind == OP_MODE || op->kind == OP_CR3 ||
	       op->kind == OP_PKRU || op->kind == OP_SMM || op->kind == OP_MMU_PAGES;
}

/* A page budget near KVM_MIN_ALLOC_MMU_PAGES (64), where zaps hit roots, or one page
 * below it (-EINVAL), or a step from the old one. */
static uint32_t mmu_pages_count(struct rng *r, uint32_t old)
{
	switch (rng_below(r, 4)) {
	case 0:
		return 64 + rng_below(r, 16);
	case 1:
		return 63;
	case 2:
		return old + 1 + rng_below(r, 8);
	default:
		return old > 64 ? old - 1 - rng_below(r, old - 64 < 8 ? old - 64 : 8) : 64;
	}
}

static void tweak_control(struct rng *r, struct op *op)
{
	uint8_t bit = (uint8_t)(1u << rng_below(r, 7));

	/* Either the bit changes what it is set to, or the op starts/stops touching it. */
	if (op->control.mask & bit && rng_one_in(r, 2)) {
		op->control.value ^= bit;
	} else {
		op->control.mask ^= bit;
		op->control.value = (op->control.value & ~bit) | (rng_one_in(r, 2) ? bit : 0);
	}
	op->control.value &= op->control.mask;
}

static bool mutate_control(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, is_state_op);
	struct op *op;

	if (i < 0)
		return false;
	op = &prog->ops[i];
	switch (op->kind) {
	case OP_CONTROL:
		tweak_control(r, op);
		break;
	case OP_MODE:
		op->mode.mode = (uint8_t)((op->mode.mode + 1 + rng_below(r, PAGING_MODE_COUNT - 1)) %
					  PAGING_MODE_COUNT);
		break;
	case OP_CR3:
		op->cr3.table = (uint8_t)((op->cr3.table + 1 + rng_below(r, 7)) % TABLE_POOL_PAGES);
		break;
	case OP_PKRU:
		op->pkru.value ^= 1u << PICK(r, pkru_bits);
		break;
	case OP_MMU_PAGES:
		op->mmu_pages.count = mmu_pages_count(r, op->mmu_pages.count);
		break;
	default:
		op->smm.enter ^= 1;
	}
	return true;
}

/* ---- aliasing a table ---- */

/* The program's 64-bit page tables as the executor builds them (fuzz/executor.c op_map:
 * maps follow present non-leaf entries and take fresh pool tables, round robin from T1,
 * for missing ones; pte ops write entries), so a mutation can name the tables an access
 * walks through. Entries are 8 bytes here: only 4- and 5-level walks are aliased. */
struct table_sim {
	uint64_t entry[TABLE_POOL_PAGES][512];
	unsigned next_table;
	struct prog_state state; /* the vCPU running, and each vCPU's mode and CR3 table */
};

static enum paging_mode sim_mode(const struct table_sim *t) { return prog_state_mode(&t->state); }
static unsigned sim_cr3(const struct table_sim *t) { return prog_state_cr3(&t->state); }

struct walk_step {
	unsigned table, index;
	uint64_t value;
};

static bool sim_links(uint64_t entry, unsigned *table)
{
	uint64_t frame = entry & PT64_BASE_ADDR_MASK;

	if (!(entry & PT_PRESENT_MASK) || (entry & PT_PAGE_SIZE_MASK) || frame < TABLE_POOL_BASE ||
	    frame >= table_pool_gpa(TABLE_POOL_PAGES))
		return false;
	*table = (unsigned)((frame - TABLE_POOL_BASE) >> 12);
	return true;
}

static unsigned sim_index(uint64_t gva, unsigned level)
{
	return (unsigned)(gva >> (12 + 9 * (level - 1))) & 511;
}

static unsigned sim_root_level(enum paging_mode mode) { return mode == PAGING_5LEVEL ? 5 : 4; }

static unsigned sim_alloc(struct table_sim *t)
{
	unsigned table = prog_next_pool_table(&t->next_table, prog_state_roots(&t->state));

	memset(t->entry[table], 0, sizeof(t->entry[table]));
	return table;
}

static void sim_map(struct table_sim *t, const struct op *op)
{
	enum paging_mode mode = prog_map_mode(sim_mode(t));
	unsigned table = sim_cr3(t);

	if (mode != PAGING_4LEVEL && mode != PAGING_5LEVEL)
		return;
	for (unsigned level = sim_root_level(mode); level > op->map.level; level--) {
		uint64_t *entry = &t->entry[table][sim_index(op->map.gva, level)];
		unsigned next;

		if (!sim_links(*entry, &next)) {
			next = sim_alloc(t);
			*entry = table_pool_gpa(next) | op->map.upper_flags;
		}
		table = next;
	}
	t->entry[table][sim_index(op->map.gva, op->map.level)] =
		op->map.gpa | op->map.leaf_flags | (op->map.level > 1 ? PT_PAGE_SIZE_MASK : 0);
}

static void sim_op(struct table_sim *t, const struct op *op)
{
	switch (op->kind) {
	case OP_PTE:
		if (!prog_entries_are_4_bytes(sim_mode(t)) && op->pte.index < 512)
			t->entry[op->pte.table][op->pte.index] = op->pte.value;
		break;
	case OP_MAP:
		sim_map(t, op);
		break;
	default:
		break;
	}
	prog_state_after(&t->state, op);
}

/* The tables gva's walk reads, from the root down, while they link pool tables. */
static unsigned sim_walk(const struct table_sim *t, uint64_t gva, struct walk_step *steps)
{
	unsigned table = sim_cr3(t), n = 0;

	for (unsigned level = sim_root_level(sim_mode(t)); level >= 1; level--) {
		unsigned index = sim_index(gva, level), next;

		steps[n++] = (struct walk_step){ table, index, t->entry[table][index] };
		if (!sim_links(t->entry[table][index], &next))
			break;
		table = next;
	}
	return n;
}

static bool is_access_op(const struct op *op) { return op->kind == OP_ACCESS; }

/* The tables as the ops before index a leave them; false unless the running vCPU is then
 * in 4- or 5-level paging (the only walks simulated). */
static bool sim_tables_before(struct table_sim *sim, const struct program *prog, int a)
{
	memset(sim, 0, sizeof(*sim));
	sim->next_table = 1;
	prog_state_init(&sim->state);
	for (int i = 0; i < a; i++)
		sim_op(sim, &prog->ops[i]);
	return sim_mode(sim) == PAGING_4LEVEL || sim_mode(sim) == PAGING_5LEVEL;
}

/* gva with its index at level replaced. */
static uint64_t gva_with_index(uint64_t gva, unsigned level, unsigned index)
{
	unsigned shift = 12 + 9 * (level - 1);

	return (gva & ~(511ull << shift)) | (uint64_t)index << shift;
}

/* A present entry of table other than skip, or -1. */
static int other_present_entry(struct rng *r, const uint64_t *table, unsigned skip)
{
	unsigned start = rng_below(r, 512);

	for (unsigned k = 0; k < 512; k++) {
		unsigned index = (start + k) % 512;

		if (index != skip && (table[index] & PT_PRESENT_MASK))
			return (int)index;
	}
	return -1;
}

static void add_access_variant(struct rng *r, struct op *accesses, unsigned *n, uint64_t gva,
			       const struct op *model)
{
	accesses[*n] = *model;
	accesses[*n].access.gva = gva;
	accesses[*n].access.kind = (uint8_t)(rng_one_in(r, 2) ? ACCESS_WRITE : rng_below(r, 3));
	if (rng_one_in(r, 2))
		accesses[*n].access.cpl = 3;
	(*n)++;
}

/* Which path first builds a shared page decides what a role bug leaks, so the fan-out's
 * accesses come in a random order (after the entries they need are written). */
static void shuffle_accesses(struct rng *r, struct op *ops, unsigned n)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = rng_below(r, i);
		struct op tmp;

		tmp = ops[i - 1];
		ops[i - 1] = ops[j];
		ops[j] = tmp;
	}
}

/* Shadow pages are shared by role: a table reached through two entries with different
 * rights must still give each path its own (KVM's B13 and B21 live here). After an
 * access, a second entry to a table its walk links is written beside the first with W,
 * U or NX flipped; below it, the linked table gets another entry (an existing one, or a
 * copy of the walk's entry with a right flipped); accesses go through every pair of the
 * two entries at each level: the fan-out that makes a shared page's role matter. */
static bool mutate_alias(struct rng *r, struct program *prog)
{
	/* W twice: most shadow-page role bugs are about writability. */
	static const uint64_t flipped[] = { PT_WRITABLE_MASK, PT_WRITABLE_MASK, PT_USER_MASK,
					    PT64_NX_MASK };
	static struct table_sim sim;
	struct walk_step steps[5], *upper, *lower;
	struct op ops[5];
	int a = pick_op(r, prog, is_access_op), k;
	unsigned n_steps, pick, n = 0, j, level, first_access;
	uint64_t gva, below, flip;

	if (a < 0 || prog->n_ops + 5 > PROG_MAX_OPS || !sim_tables_before(&sim, prog, a))
		return false;
	gva = prog->ops[a].access.gva;
	n_steps = sim_walk(&sim, gva, steps);
	if (n_steps < 2)
		return false;
	/* A linking step: every step but the last links the next table. Half the time the
	 * PDPT entry, whose directory is the page a role bug shares (B13's shape). */
	pick = rng_below(r, n_steps - 1);
	if (n_steps > 2 && rng_one_in(r, 2))
		pick = n_steps - 3;
	upper = &steps[pick];
	lower = &steps[pick + 1];
	level = sim_root_level(sim_mode(&sim)) - pick;
	j = (upper->index + 1 + rng_below(r, 511)) % 512;
	flip = PICK(r, flipped);
	ops[n++] = (struct op){ .kind = OP_PTE,
				.pte = { (uint8_t)upper->table, (uint16_t)j, upper->value ^ flip } };
	k = other_present_entry(r, sim.entry[lower->table], lower->index);
	if (k < 0 || rng_one_in(r, 2)) {
		k = (int)((lower->index + 1 + rng_below(r, 511)) % 512);
		/* The same right flipped below half the time: both levels then disagree on it. */
		if (rng_one_in(r, 2))
			flip = PICK(r, flipped);
		ops[n++] = (struct op){ .kind = OP_PTE,
					.pte = { (uint8_t)lower->table, (uint16_t)k, lower->value ^ flip } };
	}
	first_access = n;
	below = gva_with_index(gva, level - 1, (unsigned)k);
	add_access_variant(r, ops, &n, gva_with_index(gva, level, j), &prog->ops[a]);
	add_access_variant(r, ops, &n, below, &prog->ops[a]);
	add_access_variant(r, ops, &n, gva_with_index(below, level, j), &prog->ops[a]);
	shuffle_accesses(r, ops + first_access, n - first_access);
	return insert_ops(prog, (uint32_t)a + 1, ops, n) == n;
}

/* A leaf entry's new value: another frame, a right flipped, or cleared. */
static uint64_t rewrite_leaf(struct rng *r, uint64_t leaf)
{
	static const uint64_t rights[] = { PT_WRITABLE_MASK, PT_USER_MASK, PT64_NX_MASK, PT_ACCESSED_MASK,
					   PT_DIRTY_MASK, PT_PRESENT_MASK };

	switch (rng_below(r, 4)) {
	case 0:
		return leaf + (rng_one_in(r, 2) ? SZ_4K : -SZ_4K);
	case 1:
		return retarget_entry(r, leaf);
	case 2:
		return 0;
	default:
		return leaf ^ PICK(r, rights);
	}
}

/* Unsync pages (spec §5.3, §5.5, §5.6): the guest rewrites the 4K leaf entry of an access
 * it made, which goes to memory unseen once the table's shadow page is unsync; the gva is
 * used again (a stale translation may still be allowed), then invalidated by INVLPG or a
 * MOV CR3 to the same table, and used again (now only the new entry is). */
static bool mutate_unsync(struct rng *r, struct program *prog)
{
	static struct table_sim sim;
	struct walk_step steps[5], *leaf;
	struct op ops[4];
	int a = pick_op(r, prog, is_access_op);
	unsigned n_steps, n = 0;
	uint64_t gva;

	if (a < 0 || prog->n_ops + 4 > PROG_MAX_OPS || !sim_tables_before(&sim, prog, a))
		return false;
	gva = prog->ops[a].access.gva;
	n_steps = sim_walk(&sim, gva, steps);
	if (n_steps != sim_root_level(sim_mode(&sim)))
		return false; /* no 4K leaf: the walk ends in a large page or a hole */
	leaf = &steps[n_steps - 1];
	ops[n++] = (struct op){ .kind = OP_PTE,
				.pte = { (uint8_t)leaf->table, (uint16_t)leaf->index, rewrite_leaf(r, leaf->value) } };
	add_access_variant(r, ops, &n, gva, &prog->ops[a]);
	if (rng_one_in(r, 2))
		ops[n++] = (struct op){ .kind = OP_INVLPG, .invlpg = { gva } };
	else
		ops[n++] = (struct op){ .kind = OP_CR3, .cr3 = { (uint8_t)sim_cr3(&sim) } };
	add_access_variant(r, ops, &n, gva, &prog->ops[a]);
	return insert_ops(prog, (uint32_t)a + 1, ops, n) == n;
}

/* ---- several vCPUs ---- */

/* The registers an access's answer depends on, as vCPU `vcpu` has them before op index:
 * control bits, PKRU and SMM (mode and CR3 come from prog_state). */
struct vcpu_regs {
	uint8_t control;
	uint32_t pkru;
	uint8_t smm;
};

static struct vcpu_regs regs_before(const struct program *prog, uint32_t index, unsigned vcpu)
{
	struct vcpu_regs regs = { 0 };
	struct prog_state state;

	prog_state_init(&state);
	for (uint32_t i = 0; i < index; i++) {
		const struct op *op = &prog->ops[i];

		if (state.vcpu == vcpu && op->kind == OP_CONTROL)
			regs.control = (uint8_t)((regs.control & ~op->control.mask) | op->control.value);
		else if (state.vcpu == vcpu && op->kind == OP_PKRU)
			regs.pkru = op->pkru.value;
		else if (state.vcpu == vcpu && op->kind == OP_SMM)
			regs.smm = op->smm.enter;
		prog_state_after(&state, op);
	}
	return regs;
}

/* Ops that put the running vCPU into another's paging setup (mode last set, CR3 table,
 * control bits, PKRU, SMM), so both walk the same tables under the same roles. */
static unsigned copy_setup(const struct prog_vcpu_state *v, const struct vcpu_regs *regs, struct op *ops)
{
	unsigned n = 0;

	ops[n++] = (struct op){ .kind = OP_CONTROL, .control = { CTRL_ALL, regs->control } };
	ops[n++] = (struct op){ .kind = OP_MODE, .mode = { v->mode } };
	ops[n++] = (struct op){ .kind = OP_CR3, .cr3 = { v->cr3 } };
	if (regs->pkru)
		ops[n++] = (struct op){ .kind = OP_PKRU, .pkru = { regs->pkru } };
	if (regs->smm)
		ops[n++] = (struct op){ .kind = OP_SMM, .smm = { 1 } };
	return n;
}

static bool is_vcpu_op(const struct op *op) { return op->kind == OP_VCPU; }

static bool retarget_vcpu(struct rng *r, struct program *prog)
{
	int i = pick_op(r, prog, is_vcpu_op);

	if (i < 0)
		return false;
	prog->ops[i].vcpu.id = (uint8_t)((prog->ops[i].vcpu.id + 1 + rng_below(r, PROG_MAX_VCPUS - 1)) %
					 PROG_MAX_VCPUS);
	return true;
}

/* Another vCPU joins an access: it takes the access's vCPU's paging setup and makes the
 * same access first, so its TLB and roots hold the translation while the first vCPU goes
 * on; half the time it makes the access again later, after whatever the program changed
 * in between. That is where remote flushes (zaps, memslot changes, emulated gpte writes
 * that take rights away) must reach it. */
static bool vcpu_join(struct rng *r, struct program *prog)
{
	struct op ops[8], again[3];
	int a = pick_op(r, prog, is_access_op);
	struct prog_state state;
	struct vcpu_regs regs;
	unsigned n = 0, other;
	uint32_t later, inserted;

	if (a < 0)
		return false;
	state = state_before(prog, (uint32_t)a);
	regs = regs_before(prog, (uint32_t)a, state.vcpu);
	other = (state.vcpu + 1 + rng_below(r, PROG_MAX_VCPUS - 1)) % PROG_MAX_VCPUS;
	ops[n++] = (struct op){ .kind = OP_VCPU, .vcpu = { (uint8_t)other } };
	n += copy_setup(&state.vcpus[state.vcpu], &regs, ops + n);
	ops[n++] = prog->ops[a];
	ops[n++] = (struct op){ .kind = OP_VCPU, .vcpu = { (uint8_t)state.vcpu } };
	if (prog->n_ops + n > PROG_MAX_OPS)
		return false;
	inserted = insert_ops(prog, (uint32_t)a, ops, n);
	if (rng_one_in(r, 2) || prog->n_ops + 3 > PROG_MAX_OPS)
		return true;
	again[0] = ops[0];
	again[1] = prog->ops[a + inserted];
	again[2] = ops[n - 1];
	later = (uint32_t)a + inserted + 1 + rng_below(r, prog->n_ops - ((uint32_t)a + inserted));
	/* Only where the access's vCPU runs, so the vcpu ops around it restore the right one. */
	if (state_before(prog, later).vcpu == state.vcpu)
		insert_ops(prog, later, again, 3);
	return true;
}

static bool mutate_vcpu(struct rng *r, struct program *prog)
{
	if (rng_one_in(r, 3) && retarget_vcpu(r, prog))
		return true;
	return vcpu_join(r, prog);
}

static bool (*const mutations[PM_COUNT])(struct rng *r, struct program *prog) = {
	[PM_INSERT] = mutate_insert,
	[PM_DELETE] = mutate_delete,
	[PM_DUPLICATE] = mutate_duplicate,
	[PM_SWAP] = mutate_swap,
	[PM_ENTRY_FLAGS] = mutate_entry_flags,
	[PM_GVA] = mutate_gva,
	[PM_MEMSLOT] = mutate_memslot,
	[PM_GEN_JUMP] = mutate_gen_jump,
	[PM_ACCESS] = mutate_access,
	[PM_CONTROL] = mutate_control,
	[PM_ALIAS] = mutate_alias,
	[PM_UNSYNC] = mutate_unsync,
	[PM_VCPU] = mutate_vcpu,
};

static const char *const mutation_names[PM_COUNT] = {
	[PM_INSERT] = "insert",
	[PM_DELETE] = "delete",
	[PM_DUPLICATE] = "duplicate",
	[PM_SWAP] = "swap",
	[PM_ENTRY_FLAGS] = "entry-flags",
	[PM_GVA] = "gva",
	[PM_MEMSLOT] = "memslot",
	[PM_GEN_JUMP] = "generation-jump",
	[PM_ACCESS] = "access",
	[PM_CONTROL] = "control",
	[PM_ALIAS] = "alias",
	[PM_UNSYNC] = "unsync",
	[PM_VCPU] = "vcpu",
	[PM_BYTES] = "bytes",
};

const char *program_mutation_name(enum program_mutation kind)
{
	return kind < PM_COUNT ? mutation_names[kind] : "?";
}

/* Field tweaks get twice the weight of structural edits: the seeds already have the
 * structure, the planted bugs hide behind particular field values. */
static const uint8_t mutation_weights[PM_COUNT] = {
	[PM_INSERT] = 3, [PM_DELETE] = 2, [PM_DUPLICATE] = 2, [PM_SWAP] = 2,
	[PM_ENTRY_FLAGS] = 5, [PM_GVA] = 4, [PM_MEMSLOT] = 3, [PM_GEN_JUMP] = 2,
	[PM_ACCESS] = 3, [PM_CONTROL] = 3, [PM_ALIAS] = 5, [PM_UNSYNC] = 3, [PM_VCPU] = 3,
};

static enum program_mutation pick_mutation(struct rng *r)
{
	unsigned total = 0, choice;

	for (int m = 0; m < PM_COUNT; m++)
		total += mutation_weights[m];
	choice = rng_below(r, total);
	for (int m = 0; m < PM_COUNT; m++) {
		if (choice < mutation_weights[m])
			return (enum program_mutation)m;
		choice -= mutation_weights[m];
	}
	return PM_INSERT;
}

/* ---- byte level ---- */

/* A bit flip, a random byte or an opcode change in the encoding; the result is
 * re-canonicalised by the caller. */
static size_t mutate_bytes(struct rng *r, uint8_t *data, size_t size, size_t max_size)
{
	if (size == 0) {
		if (max_size == 0)
			return 0;
		data[0] = (uint8_t)rng_next(r);
		return 1;
	}
	switch (rng_below(r, 3)) {
	case 0:
		data[rng_below(r, (uint32_t)size)] ^= (uint8_t)(1u << rng_below(r, 8));
		break;
	case 1:
		data[rng_below(r, (uint32_t)size)] = (uint8_t)rng_next(r);
		break;
	default:
		data[rng_below(r, (uint32_t)size)] += (uint8_t)(1 + rng_below(r, 8));
	}
	return size;
}

/* ---- entry points ---- */

static struct program mutant;

static size_t bytes_then_canonical(struct rng *r, uint8_t *data, size_t size, size_t max_size)
{
	size = mutate_bytes(r, data, size < max_size ? size : max_size, max_size);
	program_decode(data, size, &mutant);
	return encode_canonical(&mutant, data, max_size);
}

size_t program_mutate_as(enum program_mutation kind, uint8_t *data, size_t size,
			 size_t max_size, unsigned seed)
{
	struct rng r = { seed };

	if (kind == PM_BYTES)
		return bytes_then_canonical(&r, data, size, max_size);
	program_decode(data, size, &mutant);
	if (kind < PM_COUNT)
		mutations[kind](&r, &mutant);
	return encode_canonical(&mutant, data, max_size);
}

size_t program_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	static struct program original;
	uint8_t before[ENCODED_MAX], after[ENCODED_MAX];
	/* Every program's encoding fits ENCODED_MAX, so this limit cuts nothing more. */
	size_t limit = max_size < ENCODED_MAX ? max_size : ENCODED_MAX;
	size_t before_len, after_len;
	struct rng r = { seed };

	program_decode(data, size, &original);
	before_len = encode_canonical(&original, before, limit);
	for (int attempt = 0; attempt < MUTATE_ATTEMPTS; attempt++) {
		mutant = original;
		if (!mutations[pick_mutation(&r)](&r, &mutant))
			continue;
		after_len = encode_canonical(&mutant, after, limit);
		/* A change the codec clamps away, or one past max_size, is no mutation. */
		if (after_len != before_len || memcmp(before, after, after_len)) {
			memcpy(data, after, after_len);
			return after_len;
		}
	}
	memcpy(data, before, before_len);
	return bytes_then_canonical(&r, data, before_len, max_size);
}

/* Ops of b that keep their meaning in a need b's mode: sometimes carry it along. */
static uint32_t splice_run(struct rng *r, struct program *out, uint32_t at, const struct program *b,
			   uint32_t from, uint32_t len)
{
	enum paging_mode b_mode = mode_before(b, from);
	uint32_t added = 0;

	if (b_mode != mode_before(out, at) && rng_one_in(r, 2)) {
		struct op mode_op = { .kind = OP_MODE, .mode = { b_mode } };

		added = insert_ops(out, at, &mode_op, 1);
	}
	return added + insert_ops(out, at + added, &b->ops[from], len);
}

size_t program_cross_over(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
			  uint8_t *out, size_t max_out, unsigned seed)
{
	static struct program other;
	struct rng r = { seed };
	uint32_t at, from, len;

	program_decode(a, a_len, &mutant);
	program_decode(b, b_len, &other);
	at = rng_below(&r, mutant.n_ops + 1);
	from = rng_below(&r, other.n_ops);
	if (rng_one_in(&r, 2)) {
		/* a's head, then b's tail. */
		mutant.n_ops = at;
		len = other.n_ops - from;
	} else {
		len = other.n_ops - from < MAX_RUN * 2 ? other.n_ops - from : 1 + rng_below(&r, MAX_RUN * 2);
	}
	splice_run(&r, &mutant, at, &other, from, len);
	return encode_canonical(&mutant, out, max_out);
}
