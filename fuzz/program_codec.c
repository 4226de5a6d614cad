/* Binary form of programs. An op is one opcode byte and a fixed-size record whose size
 * depends only on the opcode, so a mutator can splice records without decoding them.
 * Opcodes map to (op kind, variant) through a weighted table: accesses, pte writes and
 * maps get most of the 256 values. Each kind has a compact "biased" variant whose fields
 * pick from values that make interesting programs likely (shared page-table indices,
 * gpas where memslots usually are, aligned memslots), and where that cannot express
 * every valid value, a "raw" variant with full-width fields. Decoding clamps every field
 * into the rules of program.h, so any byte string is a valid program; the clamps leave
 * valid values alone, which is what makes raw records encode any valid op. */
#include <string.h>

#include "program.h"
#include "../core/memslot.h"
#include "../oracle/harness_layout.h"

#define SZ_4K 0x1000ull
#define SZ_64K 0x10000ull
#define SZ_1M 0x100000ull
#define SZ_2M 0x200000ull
#define SZ_4M 0x400000ull
#define SZ_8M 0x800000ull
#define SZ_16M 0x1000000ull
#define SZ_64M 0x4000000ull
#define SZ_1G 0x40000000ull

/* What a record's fields depend on: the mode and CR3 table of the vCPU the op runs on. */
struct decode_ctx {
	enum paging_mode mode;
	unsigned cr3;
};

static struct decode_ctx ctx_of(const struct prog_state *state)
{
	return (struct decode_ctx){ prog_state_mode(state), prog_state_cr3(state) };
}

/* ---- little-endian record fields ---- */

static uint64_t take(const uint8_t **p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)(*p)[i] << (8 * i);
	*p += n;
	return v;
}

static void put(uint8_t **p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		(*p)[i] = (uint8_t)(v >> (8 * i));
	*p += n;
}

/* ---- rules of valid ops that several fields share ---- */

static unsigned clamp_map_level(enum paging_mode mode, unsigned level)
{
	return prog_map_page_size(mode, level) ? level : MAP_LEVEL_2M;
}

/* Any gva to one the mode can use: folded below 4 GiB where the mode cannot go above,
 * lifted out of the harness's range by its own size (page alignment survives both). */
static uint64_t clamp_gva(enum paging_mode mode, uint64_t gva)
{
	if (!gva_fits_mode(mode, gva))
		gva = (uint32_t)gva;
	if (gva_is_harness_reserved(mode, gva))
		gva += harness_reserved_gva_limit(mode);
	return gva;
}

static uint64_t clamp_map_gva(enum paging_mode mode, unsigned level, uint64_t gva)
{
	return clamp_gva(mode, gva) & ~(prog_map_page_size(mode, level) - 1);
}

/* A 4K leaf of a 32-bit table holds 32 address bits; 4M ones reach 40 through PSE-36. */
static uint64_t clamp_map_gpa(enum paging_mode mode, unsigned level, uint64_t gpa)
{
	uint64_t page = prog_map_page_size(mode, level);

	if (mode == PAGING_32 && level == MAP_LEVEL_4K)
		gpa = (uint32_t)gpa;
	gpa &= (PROG_GPA_LIMIT - 1) & ~(page - 1);
	if (gpa < HARNESS_GPA_LIMIT)
		gpa += page > HARNESS_GPA_LIMIT ? page : HARNESS_GPA_LIMIT;
	return gpa;
}

static uint64_t clamp_slot_gpa(uint64_t gpa)
{
	gpa &= PROG_GPA_LIMIT - 1;
	return gpa < HARNESS_GPA_LIMIT ? gpa + HARNESS_GPA_LIMIT : gpa;
}

static uint64_t clamp_slot_size(uint64_t gpa, uint64_t size)
{
	if (size > PROG_MAX_SLOT_SIZE)
		size = PROG_MAX_SLOT_SIZE;
	return size > PROG_GPA_LIMIT - gpa ? PROG_GPA_LIMIT - gpa : size;
}

/* Any hva that breaks the limit is at least 2^47 - 1 GiB - 4K, so moving it down by 2^46
 * puts it well inside. */
static uint64_t clamp_slot_hva(uint64_t hva, uint64_t size)
{
	hva &= (1ull << 47) - 1;
	return hva + size >= PROG_HVA_LIMIT ? hva - (1ull << 46) : hva;
}

static uint16_t clamp_pte_index(const struct decode_ctx *ctx, unsigned table, unsigned index)
{
	index &= prog_pte_index_limit(ctx->mode) - 1;
	if (table == ctx->cr3 && index == HARNESS_ROOT_INDEX)
		index = HARNESS_ROOT_INDEX + 1;
	return (uint16_t)index;
}

static uint64_t clamp_pte_value(enum paging_mode mode, uint64_t value)
{
	return prog_entries_are_4_bytes(mode) ? (uint32_t)value : value;
}

uint64_t prog_default_hva(unsigned slot_id, uint64_t gpa)
{
	return 0x100000000000ull + (uint64_t)slot_id * SZ_1G + (gpa & (SZ_1G - 1));
}

/* ---- biased field codings ---- */

/* Slot field (16 bits): bits 0-9 id, bits 10-12 == 7 selects the id as (bits 0-9 + 500)
 * mod 1024 (so small values land near 509..512, the user-slot limit), else the id is bits
 * 0-3; bits 13-14 == 3 selects address space 1. The harness's slot becomes the next id. */
static void slot_decode(uint16_t w, struct op *op)
{
	unsigned bits = w & 0x3ff;

	op->memslot.id = ((w >> 10) & 7) == 7 ? (bits + 500) % 1024 : bits & 15;
	if (op->memslot.id == PROG_HARNESS_SLOT_ID)
		op->memslot.id++;
	op->memslot.as_id = ((w >> 13) & 3) == 3;
}

static uint16_t slot_encode(const struct op *op)
{
	unsigned id = op->memslot.id;
	unsigned w = id < 16 ? id : (7u << 10) | ((id + 524) % 1024);

	return (uint16_t)(w | (op->memslot.as_id ? 3u << 13 : 0));
}

/* Where memslots usually go: the table pool (twice as likely: without a slot there no
 * program table can be read), the low megabytes, 1 GiB-aligned areas below and above
 * 4 GiB. */
static const uint64_t gpa_anchors[8] = {
	SZ_1M, SZ_1M, SZ_2M, SZ_4M, SZ_16M, SZ_1G, 3 * SZ_1G, 512 * SZ_1G,
};

#define ANCHOR_MAX_STEPS 0x7f

/* A 16-bit field with an anchor in bits 0-2, a step byte in bits 3-10 and, when bits
 * 11-14 are all set (1 in 16), a half-page misalignment that KVM rejects. Step bytes
 * below 0x80 mean no step, so half of all fields sit exactly on their anchor. */
static uint64_t anchored_decode(uint16_t w, const uint64_t bases[8], uint64_t step)
{
	unsigned steps_byte = (w >> 3) & 0xff;
	uint64_t steps = steps_byte < 0x80 ? 0 : steps_byte - 0x80;
	uint64_t v = bases[w & 7] + steps * step;

	return ((w >> 11) & 0xf) == 0xf ? v + 0x800 : v;
}

static bool anchored_encode(uint64_t v, const uint64_t bases[8], uint64_t step, uint16_t *w)
{
	uint64_t misalign = v & 0xfff, aligned = v - misalign;

	if (misalign != 0 && misalign != 0x800)
		return false;
	for (unsigned i = 0; i < 8; i++) {
		uint64_t steps = (aligned - bases[i]) / step;

		if (aligned < bases[i] || (aligned - bases[i]) % step || steps > ANCHOR_MAX_STEPS)
			continue;
		*w = (uint16_t)(i | (steps ? steps + 0x80 : 0) << 3 | (misalign ? 0xfu << 11 : 0));
		return true;
	}
	return false;
}

/* All-zero bytes give a 4 MiB slot at 1 MiB: the table pool and the pages after it. */
static const uint64_t size_classes[8] = { SZ_4M, SZ_2M, SZ_1M, SZ_4K, SZ_64K, SZ_64M, SZ_1G, 0 };

static const uint32_t unknown_slot_flags[4] = { 1u << 2, 1u << 3, KVM_MEMSLOT_INVALID, 1u << 31 };

/* Flags byte: bits 0-1 LOG_DIRTY and READONLY; bits 2-5 all set add the unknown flag that
 * bits 6-7 pick. */
static uint32_t slot_flags_decode(uint8_t f)
{
	uint32_t flags = f & (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY);

	return ((f >> 2) & 0xf) == 0xf ? flags | unknown_slot_flags[f >> 6] : flags;
}

static bool slot_flags_encode(uint32_t flags, uint8_t *f)
{
	uint32_t known = flags & (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY);
	uint32_t unknown = flags ^ known;

	if (!unknown) {
		*f = (uint8_t)known;
		return true;
	}
	for (unsigned i = 0; i < 4; i++) {
		if (unknown == unknown_slot_flags[i]) {
			*f = (uint8_t)(known | 0x3c | i << 6);
			return true;
		}
	}
	return false;
}

static const uint8_t host_page_shifts[4] = { 12, 21, 30, 21 };

/* Host byte: bits 0-1 the host page size; bits 2-5 == 14 shift the hva off congruence by
 * 1..4 pages (bits 6-7), == 15 misalign it; else the default layout. */
static void slot_host_decode(uint8_t h, struct op *op)
{
	unsigned variant = (h >> 2) & 0xf;
	uint64_t hva = prog_default_hva(op->memslot.id, op->memslot.gpa);

	op->memslot.host_page_shift = host_page_shifts[h & 3];
	if (variant == 14)
		hva += ((h >> 6) + 1) * SZ_4K;
	else if (variant == 15)
		hva += 0x800;
	op->memslot.hva = hva;
}

static bool slot_host_encode(const struct op *op, uint8_t *h)
{
	uint64_t delta = op->memslot.hva - prog_default_hva(op->memslot.id, op->memslot.gpa);
	unsigned shift_bits;

	for (shift_bits = 0; shift_bits < 3; shift_bits++)
		if (host_page_shifts[shift_bits] == op->memslot.host_page_shift)
			break;
	if (delta == 0)
		*h = (uint8_t)shift_bits;
	else if (delta == 0x800)
		*h = (uint8_t)(shift_bits | 15 << 2);
	else if (delta % SZ_4K == 0 && delta >= SZ_4K && delta <= 4 * SZ_4K)
		*h = (uint8_t)(shift_bits | 14 << 2 | (delta / SZ_4K - 1) << 6);
	else
		return false;
	return true;
}

/* Indices the biased gva and pte fields pick from at every level of an n-bit table:
 * the first few, the middle (the kernel half of a 4/5-level root) and the last. */
static unsigned level_index(unsigned choice, unsigned bits)
{
	if (choice < 6)
		return choice & ((1u << bits) - 1);
	return choice == 6 ? 1u << (bits - 1) : (1u << bits) - 1;
}

/* Index bits of each table level, leaf first, for the gvas a mode translates. */
static unsigned gva_levels(enum paging_mode mode, unsigned bits[5])
{
	switch (mode) {
	case PAGING_NONE:
	case PAGING_32:
		bits[0] = bits[1] = 10;
		return 2;
	case PAGING_PAE:
		bits[0] = bits[1] = 9;
		bits[2] = 2;
		return 3;
	default:
		for (unsigned i = 0; i < 5; i++)
			bits[i] = 9;
		return mode == PAGING_5LEVEL ? 5 : 4;
	}
}

/* Gva field (16 bits): 3 bits per level, leaf level first, each picking a level_index().
 * The root index is never the harness's entry 0 (it becomes 1), so every result is legal;
 * 4/5-level results are canonical. Gvas made this way share tables often. */
static uint64_t gva_decode(enum paging_mode mode, uint16_t w)
{
	unsigned bits[5], levels = gva_levels(mode, bits), shift = PAGE_SHIFT;
	uint64_t gva = 0;

	for (unsigned level = 0; level < levels; level++) {
		uint64_t index = level_index((w >> (3 * level)) & 7, bits[level]);

		if (level == levels - 1 && index == HARNESS_ROOT_INDEX)
			index = HARNESS_ROOT_INDEX + 1;
		gva |= index << shift;
		shift += bits[level];
	}
	if (mode >= PAGING_4LEVEL && (gva >> (shift - 1)) & 1)
		gva |= ~0ull << shift;
	return gva;
}

static bool gva_encode(enum paging_mode mode, uint64_t gva, uint16_t *w)
{
	unsigned bits[5], levels = gva_levels(mode, bits), shift = PAGE_SHIFT;
	unsigned code = 0;

	for (unsigned level = 0; level < levels; level++) {
		unsigned want = (gva >> shift) & ((1u << bits[level]) - 1), choice;

		for (choice = 0; choice < 8; choice++)
			if (level_index(choice, bits[level]) == want)
				break;
		if (choice == 8)
			return false;
		code |= choice << (3 * level);
		shift += bits[level];
	}
	*w = (uint16_t)code;
	return gva_decode(mode, *w) == gva;
}

/* Frame field (16 bits), a 4K-aligned gpa; bits 14-15 pick the region:
 * 0: a table-pool page (bits 0-5), so pte writes link tables;
 * 1: one of the 16384 pages from the pool on, where small slots usually are;
 * 2: up to 2047 pages past a memslot anchor (bits 11-13), so data is backed;
 * 3: a 64 MiB multiple below 2^40 (bits 0-13, 0 read as 1). */
static uint64_t frame_decode(uint16_t f)
{
	switch (f >> 14) {
	case 0:
		return table_pool_gpa(f & 63);
	case 1:
		return TABLE_POOL_BASE + (f & 0x3fff) * SZ_4K;
	case 2:
		return gpa_anchors[(f >> 11) & 7] + (f & 0x7ff) * SZ_4K;
	default:
		return (f & 0x3fff ? f & 0x3fff : 1) * SZ_64M;
	}
}

static bool frame_encode(uint64_t gpa, uint16_t *f)
{
	if (gpa % SZ_4K || gpa < TABLE_POOL_BASE)
		return false;
	if (gpa < table_pool_gpa(TABLE_POOL_PAGES)) {
		*f = (uint16_t)((gpa - TABLE_POOL_BASE) / SZ_4K);
		return true;
	}
	if ((gpa - TABLE_POOL_BASE) / SZ_4K <= 0x3fff) {
		*f = (uint16_t)(1u << 14 | (gpa - TABLE_POOL_BASE) / SZ_4K);
		return true;
	}
	for (unsigned i = 0; i < 8; i++) {
		if (gpa >= gpa_anchors[i] && (gpa - gpa_anchors[i]) / SZ_4K <= 0x7ff) {
			*f = (uint16_t)(2u << 14 | i << 11 | (gpa - gpa_anchors[i]) / SZ_4K);
			return true;
		}
	}
	if (gpa % SZ_64M || gpa / SZ_64M > 0x3fff)
		return false;
	*f = (uint16_t)(3u << 14 | gpa / SZ_64M);
	return true;
}

#define PKEY(n) ((uint64_t)(n) << PT64_PKEY_SHIFT)

/* Entry bits above the low 12 the biased flags can add: most of the time none. Bit 13 is
 * reserved in a 2M or 1G leaf (and part of the frame elsewhere), bit 51 is above
 * MAXPHYADDR; bit 52 is ignored by the walk. */
static const uint64_t high_entry_bits[16] = {
	0, 0, 0, 0, 0, 0, 0, 1ull << 13,
	PT64_NX_MASK, PT64_NX_MASK, PKEY(1), PKEY(2), PKEY(15), PT64_NX_MASK | PKEY(1),
	1ull << 52, 1ull << 51,
};

/* Zero bytes give a present, writable, user entry: the entry most programs want. */
#define ENTRY_FLAGS_DEFAULT (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK)

/* Flags field (16 bits): bits 0-11 are entry bits 0-11 XOR the default, bits 12-15 pick
 * high_entry_bits. */
static uint64_t entry_flags_decode(uint16_t g)
{
	return ((g & 0xfffu) ^ ENTRY_FLAGS_DEFAULT) | high_entry_bits[g >> 12];
}

static bool entry_flags_encode(uint64_t flags, uint16_t *g)
{
	for (unsigned i = 0; i < 16; i++) {
		if ((flags & ~0xfffull) == high_entry_bits[i]) {
			*g = (uint16_t)(i << 12 | ((flags & 0xfff) ^ ENTRY_FLAGS_DEFAULT));
			return true;
		}
	}
	return false;
}

/* Upper-flags byte: bits 0-6 are entry bits 0-6 XOR the default, bit 7 is NX. */
static uint64_t upper_flags_decode(uint8_t u)
{
	return ((u & 0x7fu) ^ ENTRY_FLAGS_DEFAULT) | (u & 0x80 ? PT64_NX_MASK : 0);
}

static bool upper_flags_encode(uint64_t flags, uint8_t *u)
{
	if (flags & ~(0x7full | PT64_NX_MASK))
		return false;
	*u = (uint8_t)(((flags & 0x7f) ^ ENTRY_FLAGS_DEFAULT) | (flags & PT64_NX_MASK ? 0x80 : 0));
	return true;
}

/* Raw upper flags (24 bits): entry bits 0-11, then 52-63. */
static uint64_t flags24_decode(uint64_t v)
{
	return (v & 0xfff) | (v >> 12) << 52;
}

static uint64_t flags24_encode(uint64_t flags)
{
	return (flags & 0xfff) | (flags >> 52) << 12;
}

/* Access byte: bits 0-1 the kind (3 reads as read), bit 2 CPL 3. */
static void access_kind_decode(uint8_t b, struct op *op)
{
	op->access.kind = (b & 3) % 3;
	op->access.cpl = b & 4 ? 3 : 0;
}

static uint8_t access_kind_encode(const struct op *op)
{
	return (uint8_t)(op->access.kind | (op->access.cpl ? 4 : 0));
}

/* The bit whose flip makes a canonical 4/5-level gva non-canonical (and never reserved). */
static uint64_t noncanonical_bit(enum paging_mode mode)
{
	return mode == PAGING_5LEVEL ? 1ull << 57 : 1ull << 48;
}

/* Gva of an access or invlpg (4 bytes): a gva field for the page, then an offset field
 * whose bits 0-11 are the byte in the page and whose bits 12-15, all set, make a 4/5-level
 * gva non-canonical. */
static uint64_t paged_gva_decode(enum paging_mode mode, const uint8_t *r)
{
	uint16_t page = (uint16_t)take(&r, 2), offset = (uint16_t)take(&r, 2);
	uint64_t gva = gva_decode(mode, page) | (offset & 0xfff);

	if (mode >= PAGING_4LEVEL && offset >> 12 == 0xf)
		gva ^= noncanonical_bit(mode);
	return gva;
}

static bool paged_gva_encode(enum paging_mode mode, uint64_t gva, uint8_t *r)
{
	uint64_t page = gva & PAGE_MASK, offset = gva & ~PAGE_MASK;
	uint16_t w;

	if (mode >= PAGING_4LEVEL && !gva_encode(mode, page, &w)) {
		page ^= noncanonical_bit(mode);
		offset |= 0xf000;
	}
	if (!gva_encode(mode, page, &w))
		return false;
	put(&r, w, 2);
	put(&r, offset, 2);
	return true;
}

#define GEN_JUMP_SMALL 64
#define GEN_JUMP_CHOICES 128

/* Generation-jump choice (7 bits): below 64 a count of 1..64, else one of the five counts
 * within 2 of 2^8 .. 2^20, capped at PROG_MAX_GEN_JUMP. The MMIO generation wraps at a
 * power of two and starts a few dozen installs before a wrap in K420; a big jump then a
 * small one lands on any install near a wrap. */
static uint32_t gen_jump_count_decode(unsigned choice)
{
	unsigned near;
	uint64_t count;

	if (choice < GEN_JUMP_SMALL)
		return choice + 1;
	near = choice - GEN_JUMP_SMALL;
	count = (1ull << (8 + near / 5)) + near % 5 - 2;
	return count < PROG_MAX_GEN_JUMP ? (uint32_t)count : PROG_MAX_GEN_JUMP;
}

static bool gen_jump_count_encode(uint32_t count, unsigned *choice)
{
	for (*choice = 0; *choice < GEN_JUMP_CHOICES; (*choice)++)
		if (gen_jump_count_decode(*choice) == count)
			return true;
	return false;
}

/* Any count to 1..PROG_MAX_GEN_JUMP: 0 becomes the maximum, larger ones fold. */
static uint32_t clamp_gen_jump_count(uint64_t count)
{
	return (uint32_t)((count - 1) % PROG_MAX_GEN_JUMP + 1);
}

/* ---- records, one decoder and one encoder per opcode variant ---- */

/* MODE [mode % 5] */
static void mode_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->mode.mode = r[0] % PAGING_MODE_COUNT;
}

static bool mode_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->mode.mode;
	return true;
}

/* CONTROL [mask & 0x7f][value & mask] */
static void control_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->control.mask = r[0] & CTRL_ALL;
	op->control.value = r[1] & op->control.mask;
}

static bool control_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->control.mask;
	r[1] = op->control.value;
	return true;
}

/* PKRU [value:4] */
static void pkru_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->pkru.value = (uint32_t)take(&r, 4);
}

static bool pkru_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, op->pkru.value, 4);
	return true;
}

/* CR3 [table % 64] */
static void cr3_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->cr3.table = r[0] % TABLE_POOL_PAGES;
}

static bool cr3_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->cr3.table;
	return true;
}

/* MEMSLOT_SET [slot:2][gpa:2 anchored, 2M steps][size:2 class, 4K steps][flags:1][host:1] */
static void slot_set_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	uint64_t size;

	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.gpa = anchored_decode((uint16_t)take(&r, 2), gpa_anchors, SZ_2M);
	size = anchored_decode((uint16_t)take(&r, 2), size_classes, SZ_4K);
	op->memslot.size = clamp_slot_size(op->memslot.gpa, size);
	op->memslot.flags = slot_flags_decode(r[0]);
	slot_host_decode(r[1], op);
}

static bool slot_set_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	uint16_t gpa, size;

	if (!anchored_encode(op->memslot.gpa, gpa_anchors, SZ_2M, &gpa) ||
	    !anchored_encode(op->memslot.size, size_classes, SZ_4K, &size) ||
	    !slot_flags_encode(op->memslot.flags, &r[6]) || !slot_host_encode(op, &r[7]))
		return false;
	put(&r, slot_encode(op), 2);
	put(&r, gpa, 2);
	put(&r, size, 2);
	return true;
}

/* MEMSLOT_SET raw [slot:2][gpa:5][size:4][flags:4][hva:6][host page shift index % 3:1] */
static void slot_set_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.gpa = clamp_slot_gpa(take(&r, 5));
	op->memslot.size = clamp_slot_size(op->memslot.gpa, take(&r, 4));
	op->memslot.flags = (uint32_t)take(&r, 4);
	op->memslot.hva = clamp_slot_hva(take(&r, 6), op->memslot.size);
	op->memslot.host_page_shift = host_page_shifts[r[0] % 3];
}

static bool slot_set_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, slot_encode(op), 2);
	put(&r, op->memslot.gpa, 5);
	put(&r, op->memslot.size, 4);
	put(&r, op->memslot.flags, 4);
	put(&r, op->memslot.hva, 6);
	r[0] = op->memslot.host_page_shift == 21 ? 1 : op->memslot.host_page_shift == 30 ? 2 : 0;
	return true;
}

/* MEMSLOT_DELETE [slot:2] */
static void slot_delete_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
}

static bool slot_delete_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, slot_encode(op), 2);
	return true;
}

/* MEMSLOT_MOVE [slot:2][gpa:2 anchored, 2M steps] */
static void slot_move_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.gpa = anchored_decode((uint16_t)take(&r, 2), gpa_anchors, SZ_2M);
}

static bool slot_move_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	uint16_t gpa;

	if (!anchored_encode(op->memslot.gpa, gpa_anchors, SZ_2M, &gpa))
		return false;
	put(&r, slot_encode(op), 2);
	put(&r, gpa, 2);
	return true;
}

/* MEMSLOT_MOVE raw [slot:2][gpa:5] */
static void slot_move_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.gpa = clamp_slot_gpa(take(&r, 5));
}

static bool slot_move_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, slot_encode(op), 2);
	put(&r, op->memslot.gpa, 5);
	return true;
}

/* MEMSLOT_FLAGS [slot:2][flags:1] */
static void slot_flags_op_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.flags = slot_flags_decode(r[0]);
}

static bool slot_flags_op_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	if (!slot_flags_encode(op->memslot.flags, &r[2]))
		return false;
	put(&r, slot_encode(op), 2);
	return true;
}

/* MEMSLOT_FLAGS raw [slot:2][flags:4] */
static void slot_flags_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
	op->memslot.flags = (uint32_t)take(&r, 4);
}

static bool slot_flags_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, slot_encode(op), 2);
	put(&r, op->memslot.flags, 4);
	return true;
}

/* Pte index field (16 bits): bit 15 set picks level_index(bits 0-2), else bits 0-9. */
static unsigned pte_index_decode(enum paging_mode mode, uint16_t w)
{
	if (w & 0x8000)
		return level_index(w & 7, prog_entries_are_4_bytes(mode) ? 10 : 9);
	return w & 0x3ff;
}

/* PTE [table % 64][index:2][frame:2][flags:2] */
static void pte_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	unsigned table = r[0] % TABLE_POOL_PAGES;
	uint16_t index, frame, flags;

	r++;
	index = (uint16_t)take(&r, 2);
	frame = (uint16_t)take(&r, 2);
	flags = (uint16_t)take(&r, 2);
	op->pte.table = (uint8_t)table;
	op->pte.index = clamp_pte_index(ctx, table, pte_index_decode(ctx->mode, index));
	op->pte.value = clamp_pte_value(ctx->mode, frame_decode(frame) | entry_flags_decode(flags));
}

static bool pte_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	uint64_t high = 0xfff0000000000000ull | 1ull << 51;
	uint16_t frame, flags;

	if (!frame_encode(op->pte.value & ~high & ~0xfffull, &frame) ||
	    !entry_flags_encode(op->pte.value & (high | 0xfff), &flags))
		return false;
	r[0] = op->pte.table;
	r++;
	put(&r, op->pte.index, 2);
	put(&r, frame, 2);
	put(&r, flags, 2);
	return true;
}

/* PTE raw [table % 64][index:2, bits 0-9][value:8] */
static void pte_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	unsigned table = r[0] % TABLE_POOL_PAGES;

	r++;
	op->pte.table = (uint8_t)table;
	op->pte.index = clamp_pte_index(ctx, table, (unsigned)take(&r, 2));
	op->pte.value = clamp_pte_value(ctx->mode, take(&r, 8));
}

static bool pte_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->pte.table;
	r++;
	put(&r, op->pte.index, 2);
	put(&r, op->pte.value, 8);
	return true;
}

static const uint8_t map_levels[4] = { MAP_LEVEL_4K, MAP_LEVEL_4K, MAP_LEVEL_2M, MAP_LEVEL_1G };

/* MAP [level:1, bits 0-1][gva:2][frame:2][leaf flags:2][upper flags:1] */
static void map_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	unsigned level = clamp_map_level(prog_map_mode(ctx->mode), map_levels[r[0] & 3]);
	uint16_t gva, frame, leaf;

	r++;
	gva = (uint16_t)take(&r, 2);
	frame = (uint16_t)take(&r, 2);
	leaf = (uint16_t)take(&r, 2);
	op->map.level = (uint8_t)level;
	op->map.gva = clamp_map_gva(prog_map_mode(ctx->mode), level, gva_decode(prog_map_mode(ctx->mode), gva));
	op->map.gpa = clamp_map_gpa(prog_map_mode(ctx->mode), level, frame_decode(frame));
	op->map.leaf_flags = entry_flags_decode(leaf) & prog_map_leaf_flag_bits(prog_map_mode(ctx->mode), level);
	op->map.upper_flags = upper_flags_decode(r[0]) & prog_map_upper_flag_bits(prog_map_mode(ctx->mode));
}

static bool map_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	uint16_t gva, frame, leaf;

	if (!gva_encode(prog_map_mode(ctx->mode), op->map.gva, &gva) || !frame_encode(op->map.gpa, &frame) ||
	    !entry_flags_encode(op->map.leaf_flags, &leaf) ||
	    !upper_flags_encode(op->map.upper_flags, &r[7]))
		return false;
	r[0] = op->map.level == MAP_LEVEL_4K ? 0 : op->map.level;
	r++;
	put(&r, gva, 2);
	put(&r, frame, 2);
	put(&r, leaf, 2);
	return true;
}

/* MAP raw [level % 3 + 1][gva:8][gpa:5][leaf flags:8][upper flags:3] */
static void map_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	unsigned level = clamp_map_level(prog_map_mode(ctx->mode), r[0] % 3 + 1);

	r++;
	op->map.level = (uint8_t)level;
	op->map.gva = clamp_map_gva(prog_map_mode(ctx->mode), level, take(&r, 8));
	op->map.gpa = clamp_map_gpa(prog_map_mode(ctx->mode), level, take(&r, 5));
	op->map.leaf_flags = take(&r, 8) & prog_map_leaf_flag_bits(prog_map_mode(ctx->mode), level);
	op->map.upper_flags = flags24_decode(take(&r, 3)) & prog_map_upper_flag_bits(prog_map_mode(ctx->mode));
}

static bool map_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->map.level - 1;
	r++;
	put(&r, op->map.gva, 8);
	put(&r, op->map.gpa, 5);
	put(&r, op->map.leaf_flags, 8);
	put(&r, flags24_encode(op->map.upper_flags), 3);
	return true;
}

/* ACCESS [kind/cpl:1][gva:2][offset:2] (paged_gva_decode) */
static void access_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	access_kind_decode(r[0], op);
	op->access.gva = paged_gva_decode(ctx->mode, r + 1);
}

static bool access_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = access_kind_encode(op);
	return paged_gva_encode(ctx->mode, op->access.gva, r + 1);
}

/* ACCESS raw [kind/cpl:1][gva:8] */
static void access_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	access_kind_decode(r[0], op);
	r++;
	op->access.gva = clamp_gva(ctx->mode, take(&r, 8));
}

static bool access_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = access_kind_encode(op);
	r++;
	put(&r, op->access.gva, 8);
	return true;
}

/* INVLPG [gva:2][offset:2] (paged_gva_decode) */
static void invlpg_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->invlpg.gva = paged_gva_decode(ctx->mode, r);
}

static bool invlpg_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	return paged_gva_encode(ctx->mode, op->invlpg.gva, r);
}

/* INVLPG raw [gva:8] */
static void invlpg_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->invlpg.gva = clamp_gva(ctx->mode, take(&r, 8));
}

static bool invlpg_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, op->invlpg.gva, 8);
	return true;
}

/* GEN_JUMP [bits 0-6 count choice (gen_jump_count_decode), bit 7 address space] */
static void gen_jump_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->gen_jump.count = gen_jump_count_decode(r[0] % GEN_JUMP_CHOICES);
	op->gen_jump.as_id = r[0] >> 7;
}

static bool gen_jump_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	unsigned choice;

	if (!gen_jump_count_encode(op->gen_jump.count, &choice))
		return false;
	r[0] = (uint8_t)(choice | op->gen_jump.as_id << 7);
	return true;
}

/* GEN_JUMP raw [address space, bit 0][count:3] */
static void gen_jump_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->gen_jump.as_id = r[0] & 1;
	r++;
	op->gen_jump.count = clamp_gen_jump_count(take(&r, 3));
}

static bool gen_jump_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->gen_jump.as_id;
	r++;
	put(&r, op->gen_jump.count, 3);
	return true;
}

/* SMM [enter, bit 0] */
static void smm_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->smm.enter = r[0] & 1;
}

static bool smm_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->smm.enter;
	return true;
}

/* DIRTY_LOG [slot:2] */
static void dirty_log_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	slot_decode((uint16_t)take(&r, 2), op);
}

static bool dirty_log_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, slot_encode(op), 2);
	return true;
}

/* MMU_PAGES [count - 56:1]: budgets near KVM_MIN_ALLOC_MMU_PAGES (64), a few below it */
#define MMU_PAGES_BIAS 56

static void mmu_pages_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->mmu_pages.count = MMU_PAGES_BIAS + r[0];
}

static bool mmu_pages_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	if (op->mmu_pages.count < MMU_PAGES_BIAS || op->mmu_pages.count > MMU_PAGES_BIAS + 0xff)
		return false;
	r[0] = (uint8_t)(op->mmu_pages.count - MMU_PAGES_BIAS);
	return true;
}

/* MMU_PAGES raw [count:4] */
static void mmu_pages_raw_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->mmu_pages.count = (uint32_t)take(&r, 4);
}

static bool mmu_pages_raw_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	put(&r, op->mmu_pages.count, 4);
	return true;
}

/* VCPU [id % PROG_MAX_VCPUS] */
static void vcpu_decode(const uint8_t *r, const struct decode_ctx *ctx, struct op *op)
{
	op->vcpu.id = r[0] % PROG_MAX_VCPUS;
}

static bool vcpu_encode(const struct op *op, const struct decode_ctx *ctx, uint8_t *r)
{
	r[0] = op->vcpu.id;
	return true;
}

/* ---- the opcode table ---- */

struct record_format {
	uint8_t kind;
	uint8_t weight; /* opcode values given to this variant; all weights sum to 256 */
	uint8_t size;   /* record bytes after the opcode */
	void (*decode)(const uint8_t *rec, const struct decode_ctx *ctx, struct op *op);
	/* false when the op cannot be written in this variant */
	bool (*encode)(const struct op *op, const struct decode_ctx *ctx, uint8_t *rec);
};

/* Biased variants come before the raw variant of the same kind: the encoder takes the
 * first that reproduces the op. The comments give each variant's opcode values, as the
 * table in docs/program-language.md does. */
static const struct record_format formats[] = {
	{ OP_MODE, 13, 1, mode_decode, mode_encode },                             /* 0-12 */
	{ OP_CONTROL, 11, 2, control_decode, control_encode },                    /* 13-23 */
	{ OP_PKRU, 6, 4, pkru_decode, pkru_encode },                              /* 24-29 */
	{ OP_CR3, 14, 1, cr3_decode, cr3_encode },                                /* 30-43 */
	{ OP_MEMSLOT_SET, 15, 8, slot_set_decode, slot_set_encode },              /* 44-58 */
	{ OP_MEMSLOT_SET, 4, 22, slot_set_raw_decode, slot_set_raw_encode },      /* 59-62 */
	{ OP_MEMSLOT_DELETE, 8, 2, slot_delete_decode, slot_delete_encode },      /* 63-70 */
	{ OP_MEMSLOT_MOVE, 6, 4, slot_move_decode, slot_move_encode },            /* 71-76 */
	{ OP_MEMSLOT_MOVE, 2, 7, slot_move_raw_decode, slot_move_raw_encode },    /* 77-78 */
	{ OP_MEMSLOT_FLAGS, 8, 3, slot_flags_op_decode, slot_flags_op_encode },   /* 79-86 */
	{ OP_MEMSLOT_FLAGS, 2, 6, slot_flags_raw_decode, slot_flags_raw_encode }, /* 87-88 */
	{ OP_PTE, 36, 7, pte_decode, pte_encode },                                /* 89-124 */
	{ OP_PTE, 8, 11, pte_raw_decode, pte_raw_encode },                        /* 125-132 */
	{ OP_MAP, 44, 8, map_decode, map_encode },                                /* 133-176 */
	{ OP_MAP, 6, 25, map_raw_decode, map_raw_encode },                        /* 177-182 */
	{ OP_ACCESS, 45, 5, access_decode, access_encode },                       /* 183-227 */
	/* The last four access opcodes until vCPUs came; the encoder never wrote them. */
	{ OP_VCPU, 4, 1, vcpu_decode, vcpu_encode },                              /* 228-231 */
	{ OP_MMU_PAGES, 1, 1, mmu_pages_decode, mmu_pages_encode },               /* 232 */
	{ OP_MMU_PAGES, 1, 4, mmu_pages_raw_decode, mmu_pages_raw_encode },       /* 233 */
	{ OP_ACCESS, 4, 9, access_raw_decode, access_raw_encode },                /* 234-237 */
	{ OP_INVLPG, 8, 4, invlpg_decode, invlpg_encode },                        /* 238-245 */
	{ OP_INVLPG, 2, 8, invlpg_raw_decode, invlpg_raw_encode },                /* 246-247 */
	{ OP_GEN_JUMP, 3, 1, gen_jump_decode, gen_jump_encode },                  /* 248-250 */
	{ OP_GEN_JUMP, 1, 4, gen_jump_raw_decode, gen_jump_raw_encode },          /* 251 */
	{ OP_SMM, 2, 1, smm_decode, smm_encode },                                 /* 252-253 */
	{ OP_DIRTY_LOG, 2, 2, dirty_log_decode, dirty_log_encode },               /* 254-255 */
};

#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))
#define MAX_RECORD 25

static const struct record_format *format_of_opcode(uint8_t opcode)
{
	unsigned start = 0;
	size_t i;

	for (i = 0; i + 1 < N_FORMATS; i++) {
		if (opcode < start + formats[i].weight)
			break;
		start += formats[i].weight;
	}
	return &formats[i];
}

static size_t decode_op(const uint8_t *data, size_t len, const struct decode_ctx *ctx,
			struct op *op)
{
	uint8_t rec[MAX_RECORD] = { 0 };
	const struct record_format *fmt = format_of_opcode(data[0]);
	size_t avail = len - 1 < fmt->size ? len - 1 : fmt->size;

	memcpy(rec, data + 1, avail);
	memset(op, 0, sizeof(*op));
	op->kind = fmt->kind;
	fmt->decode(rec, ctx, op);
	return 1 + avail;
}

size_t program_partial_tail(const uint8_t *data, size_t len)
{
	size_t pos = 0;

	for (uint32_t n = 0; pos < len && n < PROG_MAX_OPS; n++) {
		size_t size = 1 + format_of_opcode(data[pos])->size;

		if (size > len - pos)
			return len - pos;
		pos += size;
	}
	return 0;
}

void program_decode(const uint8_t *data, size_t len, struct program *out)
{
	struct prog_state state;
	size_t pos = 0;

	prog_state_init(&state);
	out->n_ops = 0;
	while (pos < len && out->n_ops < PROG_MAX_OPS) {
		struct op *op = &out->ops[out->n_ops++];
		struct decode_ctx ctx = ctx_of(&state);

		pos += decode_op(data + pos, len - pos, &ctx, op);
		prog_state_after(&state, op);
	}
}

bool op_equal(const struct op *a, const struct op *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case OP_MODE:
		return a->mode.mode == b->mode.mode;
	case OP_CONTROL:
		return a->control.mask == b->control.mask && a->control.value == b->control.value;
	case OP_PKRU:
		return a->pkru.value == b->pkru.value;
	case OP_CR3:
		return a->cr3.table == b->cr3.table;
	case OP_PTE:
		return a->pte.table == b->pte.table && a->pte.index == b->pte.index &&
		       a->pte.value == b->pte.value;
	case OP_MAP:
		return a->map.gva == b->map.gva && a->map.gpa == b->map.gpa &&
		       a->map.level == b->map.level && a->map.leaf_flags == b->map.leaf_flags &&
		       a->map.upper_flags == b->map.upper_flags;
	case OP_ACCESS:
		return a->access.kind == b->access.kind && a->access.cpl == b->access.cpl &&
		       a->access.gva == b->access.gva;
	case OP_INVLPG:
		return a->invlpg.gva == b->invlpg.gva;
	case OP_GEN_JUMP:
		return a->gen_jump.as_id == b->gen_jump.as_id &&
		       a->gen_jump.count == b->gen_jump.count;
	case OP_SMM:
		return a->smm.enter == b->smm.enter;
	case OP_DIRTY_LOG:
		return a->memslot.as_id == b->memslot.as_id && a->memslot.id == b->memslot.id;
	case OP_MMU_PAGES:
		return a->mmu_pages.count == b->mmu_pages.count;
	case OP_VCPU:
		return a->vcpu.id == b->vcpu.id;
	default:
		return a->memslot.as_id == b->memslot.as_id && a->memslot.id == b->memslot.id &&
		       a->memslot.flags == b->memslot.flags && a->memslot.gpa == b->memslot.gpa &&
		       a->memslot.size == b->memslot.size && a->memslot.hva == b->memslot.hva &&
		       a->memslot.host_page_shift == b->memslot.host_page_shift;
	}
}

/* Writes the first variant whose record decodes back to op; an op that breaks the rules
 * gets its kind's raw variant, which decodes to a valid neighbour. Returns the record
 * with its opcode in out, its length as the result (0 for an unknown kind), and what it
 * decodes to in decoded. */
static size_t encode_op(const struct op *op, const struct decode_ctx *ctx, uint8_t *out,
			struct op *decoded)
{
	size_t written = 0;
	unsigned start = 0;

	for (size_t i = 0; i < N_FORMATS; start += formats[i].weight, i++) {
		uint8_t rec[1 + MAX_RECORD] = { 0 };

		if (formats[i].kind != op->kind || !formats[i].encode(op, ctx, rec + 1))
			continue;
		rec[0] = (uint8_t)start;
		written = 1 + formats[i].size;
		memcpy(out, rec, written);
		decode_op(out, written, ctx, decoded);
		if (op_equal(op, decoded))
			break;
	}
	return written;
}

/* Stops before the first op that does not fit in cap, so the bytes always hold whole ops;
 * ops of unknown kind are left out. */
size_t program_encode(const struct program *prog, uint8_t *buf, size_t cap)
{
	struct prog_state state;
	size_t pos = 0;
	uint32_t n_ops = prog->n_ops < PROG_MAX_OPS ? prog->n_ops : PROG_MAX_OPS;

	prog_state_init(&state);
	for (uint32_t i = 0; i < n_ops; i++) {
		uint8_t rec[1 + MAX_RECORD];
		struct op decoded;
		struct decode_ctx ctx = ctx_of(&state);
		size_t n = encode_op(&prog->ops[i], &ctx, rec, &decoded);

		if (n == 0)
			continue;
		if (n > cap - pos)
			break;
		memcpy(buf + pos, rec, n);
		pos += n;
		prog_state_after(&state, &decoded);
	}
	return pos;
}

size_t program_encoded_size_max(void)
{
	return PROG_MAX_OPS * (1 + MAX_RECORD);
}
