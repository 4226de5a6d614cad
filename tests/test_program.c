/* The program language: binary decoding is total and valid, encode/decode and print/parse
 * round-trip, the text syntax and its errors, and mode/CR3 tracking in both forms. The
 * validity checker here is written from the rules, independently of the code under test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fuzz/program.h"
#include "../oracle/harness_layout.h"

/* First opcode of each record variant (the layout documented in program_codec.c). */
enum {
	OPC_MODE = 0,
	OPC_CONTROL = 13,
	OPC_PKRU = 24,
	OPC_CR3 = 30,
	OPC_SLOT_SET = 44,
	OPC_SLOT_SET_RAW = 59,
	OPC_SLOT_DELETE = 63,
	OPC_SLOT_MOVE = 71,
	OPC_SLOT_MOVE_RAW = 77,
	OPC_SLOT_FLAGS = 79,
	OPC_SLOT_FLAGS_RAW = 87,
	OPC_PTE = 89,
	OPC_PTE_RAW = 125,
	OPC_MAP = 133,
	OPC_MAP_RAW = 177,
	OPC_ACCESS = 183,
	OPC_VCPU = 228,
	OPC_MMU_PAGES = 232,
	OPC_MMU_PAGES_RAW = 233,
	OPC_ACCESS_RAW = 234,
	OPC_INVLPG = 238,
	OPC_INVLPG_RAW = 246,
	OPC_GEN_JUMP = 248,
	OPC_GEN_JUMP_RAW = 251,
	OPC_SMM = 252,
	OPC_DIRTY_LOG = 254,
};

struct rng {
	uint64_t state;
};

static uint64_t rng_next(struct rng *r)
{
	r->state ^= r->state << 13;
	r->state ^= r->state >> 7;
	r->state ^= r->state << 17;
	return r->state;
}

/* Random bytes, a third of them zero: zero runs reach the decoders' default values. */
static void random_bytes(struct rng *r, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t v = rng_next(r);

		buf[i] = v % 3 == 0 ? 0 : (uint8_t)(v >> 8);
	}
}

/* ---- an independent statement of the rules ---- */

static uint64_t reserved_gva_limit(unsigned mode)
{
	static const uint64_t limits[PAGING_MODE_COUNT] = {
		1ull << 22, 1ull << 22, 1ull << 30, 1ull << 39, 1ull << 48,
	};
	return limits[mode];
}

static bool gva_ok(unsigned mode, uint64_t gva)
{
	if (mode < PAGING_4LEVEL && gva >> 32)
		return false;
	return gva >= reserved_gva_limit(mode);
}

static uint64_t page_bytes(unsigned mode, unsigned level)
{
	if (level == 1)
		return 4096;
	if (level == 2)
		return mode == PAGING_32 ? 4ull << 20 : 2ull << 20;
	return 1ull << 30;
}

static void check_memslot(const struct op *op)
{
	const uint64_t gpa = op->memslot.gpa, size = op->memslot.size, hva = op->memslot.hva;

	assert_true(op->memslot.as_id <= 1);
	assert_true(op->memslot.id <= 1023 && op->memslot.id != PROG_HARNESS_SLOT_ID);
	if (op->kind == OP_MEMSLOT_SET || op->kind == OP_MEMSLOT_MOVE)
		assert_true(gpa >= 0x100000 && gpa < (1ull << 40));
	else
		assert_int_equal(gpa, 0);
	if (op->kind != OP_MEMSLOT_SET) {
		assert_int_equal(size, 0);
		assert_int_equal(hva, 0);
		assert_int_equal(op->memslot.host_page_shift, 0);
		if (op->kind != OP_MEMSLOT_FLAGS)
			assert_int_equal(op->memslot.flags, 0);
		return;
	}
	assert_true(size <= (1ull << 30) && gpa + size <= (1ull << 40));
	assert_true(hva + size < 0x00007ffffffff000ull);
	assert_true(op->memslot.host_page_shift == 12 || op->memslot.host_page_shift == 21 ||
		    op->memslot.host_page_shift == 30);
}

/* Entry bits that are not address bits: the low 12 (and 52..63 in 8-byte entries), plus
 * in a large leaf the low bits of the frame field below the page size, except 4M leaves'
 * PSE-36 bits 13..20. */
static uint64_t leaf_flag_bits(unsigned mode, unsigned level)
{
	if (mode == PAGING_32)
		return level == 2 ? 0xfff | 1ull << 12 | 1ull << 21 : 0xfff;
	return 0xfff0000000000000ull | (page_bytes(mode, level) - 1);
}

/* Maps made while paging is off use 4-level tables and 4-level gvas. */
static void check_map(const struct op *op, unsigned current_mode)
{
	unsigned mode = current_mode == PAGING_NONE ? PAGING_4LEVEL : current_mode;
	uint64_t page, upper_bits = mode == PAGING_32 ? 0xfff : 0xfff0000000000fffull;

	assert_true(op->map.level >= 1 && op->map.level <= 3);
	if (op->map.level == 3)
		assert_true(mode == PAGING_4LEVEL || mode == PAGING_5LEVEL);
	page = page_bytes(mode, op->map.level);
	assert_int_equal(op->map.gva % page, 0);
	assert_int_equal(op->map.gpa % page, 0);
	assert_true(gva_ok(mode, op->map.gva));
	assert_true(op->map.gpa >= 0x100000 && op->map.gpa < (1ull << 40));
	if (mode == PAGING_32 && op->map.level == 1)
		assert_true(op->map.gpa < (1ull << 32));
	assert_int_equal(op->map.leaf_flags & ~leaf_flag_bits(mode, op->map.level), 0);
	assert_int_equal(op->map.upper_flags & ~upper_bits, 0);
}

/* Each vCPU has its own mode and CR3 table; ops follow the vCPU the last vcpu op chose. */
static void check_program(const struct program *prog)
{
	unsigned modes[4] = { PAGING_NONE }, cr3s[4] = { 0 }, vcpu = 0, mode = PAGING_NONE, cr3 = 0;

	assert_true(prog->n_ops <= PROG_MAX_OPS);
	for (uint32_t i = 0; i < prog->n_ops; i++) {
		const struct op *op = &prog->ops[i];

		switch (op->kind) {
		case OP_VCPU:
			assert_true(op->vcpu.id < 4);
			vcpu = op->vcpu.id;
			break;
		case OP_MODE:
			assert_true(op->mode.mode < PAGING_MODE_COUNT);
			modes[vcpu] = op->mode.mode;
			break;
		case OP_CONTROL:
			assert_int_equal(op->control.mask & ~0x7f, 0);
			assert_int_equal(op->control.value & ~op->control.mask, 0);
			break;
		case OP_PKRU:
			break;
		case OP_CR3:
			assert_true(op->cr3.table < 64);
			cr3s[vcpu] = op->cr3.table;
			break;
		case OP_MEMSLOT_SET:
		case OP_MEMSLOT_DELETE:
		case OP_MEMSLOT_MOVE:
		case OP_MEMSLOT_FLAGS:
			check_memslot(op);
			break;
		case OP_PTE:
			assert_true(op->pte.table < 64);
			assert_true(op->pte.index < (mode == PAGING_32 ? 1024 : 512));
			assert_false(op->pte.table == cr3 && op->pte.index == 0);
			if (mode == PAGING_32)
				assert_true(op->pte.value <= UINT32_MAX);
			break;
		case OP_MAP:
			check_map(op, mode);
			break;
		case OP_ACCESS:
			assert_true(op->access.kind < 3);
			assert_true(op->access.cpl == 0 || op->access.cpl == 3);
			assert_true(gva_ok(mode, op->access.gva));
			break;
		case OP_INVLPG:
			assert_true(gva_ok(mode, op->invlpg.gva));
			break;
		case OP_GEN_JUMP:
			assert_true(op->gen_jump.as_id <= 1);
			assert_true(op->gen_jump.count >= 1 && op->gen_jump.count <= (1u << 20));
			break;
		case OP_SMM:
			assert_true(op->smm.enter <= 1);
			break;
		case OP_DIRTY_LOG:
			assert_true(op->memslot.as_id <= 1 && op->memslot.id <= 1023);
			assert_int_not_equal(op->memslot.id, 508);
			break;
		case OP_MMU_PAGES:
			break;
		default:
			fail_msg("op %u has kind %u", i, op->kind);
		}
		mode = modes[vcpu];
		cr3 = cr3s[vcpu];
	}
}

static void assert_programs_equal(const struct program *a, const struct program *b)
{
	assert_int_equal(a->n_ops, b->n_ops);
	for (uint32_t i = 0; i < a->n_ops; i++) {
		char x[512], y[512];

		if (op_equal(&a->ops[i], &b->ops[i]))
			continue;
		op_format(&a->ops[i], x, sizeof(x));
		op_format(&b->ops[i], y, sizeof(y));
		fail_msg("op %u differs: '%s' vs '%s'", i, x, y);
	}
}

/* program_print into a malloc'd string. */
static char *print_to_string(const struct program *prog)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	program_print(prog, f);
	fclose(f);
	return text;
}

static struct program *new_program(void)
{
	struct program *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	return p;
}

/* Parses text that must be valid. */
static void parse_ok(const char *text, struct program *out)
{
	char err[256] = "";

	if (program_parse(text, "t.txt", out, err, sizeof(err)))
		fail_msg("unexpected parse error: %s", err);
}

/* Parses text that must fail with exactly this message. */
static void parse_fails(const char *text, const char *message)
{
	struct program *p = new_program();
	char err[256] = "";

	if (program_parse(text, "t.txt", p, err, sizeof(err)) != -1)
		fail_msg("'%s' parsed, expected '%s'", text, message);
	assert_string_equal(err, message);
	free(p);
}

/* ---- binary form ---- */

static void test_decode_empty(void **state)
{
	struct program *p = new_program();
	uint8_t byte = 0;

	p->n_ops = 7;
	program_decode(NULL, 0, p);
	assert_int_equal(p->n_ops, 0);
	program_decode(&byte, 0, p);
	assert_int_equal(p->n_ops, 0);
	free(p);
}

static void test_decode_is_total(void **state)
{
	struct program *p = new_program();
	struct rng r = { 0x5eed0001 };

	for (size_t len = 0; len <= 4096; len++) {
		uint8_t *data = malloc(len ? len : 1); /* exact size: ASan sees any overread */

		assert_non_null(data);
		random_bytes(&r, data, len);
		program_decode(data, len, p);
		assert_true(len == 0 ? p->n_ops == 0 : p->n_ops >= 1);
		check_program(p);
		free(data);
	}
	free(p);
}

/* A record cut short decodes as if the missing bytes were zero. */
static void test_decode_pads_with_zeros(void **state)
{
	struct program *a = new_program(), *b = new_program();
	const uint8_t cut[] = { OPC_MAP_RAW, 0x02, 0x34, 0x12 };
	uint8_t full[21] = { OPC_MAP_RAW, 0x02, 0x34, 0x12 };

	program_decode(cut, sizeof(cut), a);
	program_decode(full, sizeof(full), b);
	assert_int_equal(a->n_ops, 1);
	assert_programs_equal(a, b);
	free(a);
	free(b);
}

static void test_decode_stops_at_max_ops(void **state)
{
	struct program *p = new_program();
	uint8_t data[PROG_MAX_OPS * 2 + 10];

	memset(data, 0, sizeof(data)); /* "mode none" is 2 bytes */
	program_decode(data, sizeof(data), p);
	assert_int_equal(p->n_ops, PROG_MAX_OPS);
	free(p);
}

/* Hand-computed records pin the layout down. */
static void test_decode_layout(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_SLOT_SET, 0, 0, 0, 0, 0, 0, 0, 0,   /* all defaults */
		OPC_SLOT_DELETE, 0x09, 0x1c,            /* id (9 + 500) % 1024 */
		OPC_SLOT_DELETE, 0x05, 0x60,            /* address space 1, id 5 */
		OPC_ACCESS, 0, 0, 0, 0, 0,              /* mode none: first gva above 4M */
		OPC_PTE_RAW, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* T0[0] while cr3 is T0 */
		OPC_MODE, 3,
		OPC_MAP, 0, 0, 0, 0, 0, 0, 0, 0,        /* 4level: gva root index 1, pool T0 */
		OPC_CONTROL, 0xff, 0xff,
		OPC_CR3, 64 + 5,
		OPC_PTE_RAW, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* T0[0] is fine with cr3 = T5 */
		OPC_MODE, 2,
		OPC_ACCESS_RAW, 4, 0x00, 0x10,          /* pae: gva 0x1000 lifted by 1 GiB */
	};

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 12);
	assert_int_equal(p->ops[0].kind, OP_MEMSLOT_SET);
	assert_int_equal(p->ops[0].memslot.id, 0);
	assert_int_equal(p->ops[0].memslot.gpa, 0x100000);
	assert_int_equal(p->ops[0].memslot.size, 0x400000);
	assert_int_equal(p->ops[0].memslot.hva, 0x100000100000ull);
	assert_int_equal(p->ops[0].memslot.flags, 0);
	assert_int_equal(p->ops[0].memslot.host_page_shift, 12);
	assert_int_equal(p->ops[1].memslot.id, 509);
	assert_int_equal(p->ops[1].memslot.as_id, 0);
	assert_int_equal(p->ops[2].memslot.id, 5);
	assert_int_equal(p->ops[2].memslot.as_id, 1);
	assert_int_equal(p->ops[3].kind, OP_ACCESS);
	assert_int_equal(p->ops[3].access.kind, ACCESS_READ);
	assert_int_equal(p->ops[3].access.gva, 0x400000);
	assert_int_equal(p->ops[4].pte.table, 0);
	assert_int_equal(p->ops[4].pte.index, 1);
	assert_int_equal(p->ops[4].pte.value, 1);
	assert_int_equal(p->ops[6].kind, OP_MAP);
	assert_int_equal(p->ops[6].map.gva, 0x8000000000ull);
	assert_int_equal(p->ops[6].map.gpa, 0x100000);
	assert_int_equal(p->ops[6].map.level, 1);
	assert_int_equal(p->ops[6].map.leaf_flags, 7);
	assert_int_equal(p->ops[6].map.upper_flags, 7);
	assert_int_equal(p->ops[7].control.mask, 0x7f);
	assert_int_equal(p->ops[7].control.value, 0x7f);
	assert_int_equal(p->ops[8].cr3.table, 5);
	assert_int_equal(p->ops[9].pte.index, 0);
	assert_int_equal(p->ops[9].pte.value, 0);
	assert_int_equal(p->ops[11].access.cpl, 3);
	assert_int_equal(p->ops[11].access.gva, 0x40001000);
	free(p);
}

/* Hand-computed records of invlpg, generation jumps and SMM. */
static void test_decode_layout_invlpg_generation_smm(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_INVLPG, 0, 0, 0, 0,                 /* mode none: first gva above 4M */
		OPC_GEN_JUMP, 0,                        /* as 0, 1 update */
		OPC_GEN_JUMP + 2, 0x80 | 63,            /* as 1, 64 updates */
		OPC_GEN_JUMP, 64,                       /* 2^8 - 2 */
		OPC_GEN_JUMP, 64 + 5 * 11 + 2,          /* 2^19 */
		OPC_GEN_JUMP, 64 + 5 * 12 + 1,          /* 2^20 - 1 */
		OPC_GEN_JUMP, 127,                      /* 2^20 + 1 capped at 2^20 */
		OPC_GEN_JUMP_RAW, 0x03, 0x00, 0x00, 0x08, /* as 1 (bit 0), 2^19 */
		OPC_GEN_JUMP_RAW, 0, 0, 0, 0,           /* 0 is the maximum */
		OPC_GEN_JUMP_RAW, 0, 0x01, 0x00, 0x10,  /* 2^20 + 1 folds to 1 */
		OPC_SMM, 1,
		OPC_SMM + 1, 0xfe,                      /* bit 0 only: leave */
		OPC_MODE, 3,
		OPC_INVLPG + 7, 0, 0, 0x23, 0xf1,       /* offset 0x123, non-canonical */
		OPC_INVLPG_RAW, 0, 0, 0, 0, 0, 0, 0, 0, /* lifted out of the harness's range */
		OPC_INVLPG_RAW + 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 16);
	assert_int_equal(p->ops[0].kind, OP_INVLPG);
	assert_int_equal(p->ops[0].invlpg.gva, 0x400000);
	assert_int_equal(p->ops[1].kind, OP_GEN_JUMP);
	assert_int_equal(p->ops[1].gen_jump.as_id, 0);
	assert_int_equal(p->ops[1].gen_jump.count, 1);
	assert_int_equal(p->ops[2].gen_jump.as_id, 1);
	assert_int_equal(p->ops[2].gen_jump.count, 64);
	assert_int_equal(p->ops[3].gen_jump.count, 254);
	assert_int_equal(p->ops[4].gen_jump.count, 1u << 19);
	assert_int_equal(p->ops[5].gen_jump.count, (1u << 20) - 1);
	assert_int_equal(p->ops[6].gen_jump.count, 1u << 20);
	assert_int_equal(p->ops[7].kind, OP_GEN_JUMP);
	assert_int_equal(p->ops[7].gen_jump.as_id, 1);
	assert_int_equal(p->ops[7].gen_jump.count, 1u << 19);
	assert_int_equal(p->ops[8].gen_jump.as_id, 0);
	assert_int_equal(p->ops[8].gen_jump.count, 1u << 20);
	assert_int_equal(p->ops[9].gen_jump.count, 1);
	assert_int_equal(p->ops[10].kind, OP_SMM);
	assert_int_equal(p->ops[10].smm.enter, 1);
	assert_int_equal(p->ops[11].kind, OP_SMM);
	assert_int_equal(p->ops[11].smm.enter, 0);
	assert_int_equal(p->ops[13].kind, OP_INVLPG);
	assert_int_equal(p->ops[13].invlpg.gva, 0x1008000000123ull);
	assert_int_equal(p->ops[14].invlpg.gva, 0x8000000000ull);
	assert_int_equal(p->ops[15].invlpg.gva, UINT64_MAX);
	free(p);
}

/* KVM_GET_DIRTY_LOG records: the slot field of the memslot records; the harness's slot
 * becomes the next id. */
static void test_decode_dirty_log(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_DIRTY_LOG, 0x05, 0x60,     /* address space 1, id 5 */
		OPC_DIRTY_LOG + 1, 0x08, 0x1c, /* id (8 + 500) % 1024 is the harness's: 509 */
		OPC_DIRTY_LOG,                 /* missing bytes read as zero: as 0, id 0 */
	};

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 3);
	assert_int_equal(p->ops[0].kind, OP_DIRTY_LOG);
	assert_int_equal(p->ops[0].memslot.as_id, 1);
	assert_int_equal(p->ops[0].memslot.id, 5);
	assert_int_equal(p->ops[1].kind, OP_DIRTY_LOG);
	assert_int_equal(p->ops[1].memslot.id, 509);
	assert_int_equal(p->ops[2].memslot.as_id, 0);
	assert_int_equal(p->ops[2].memslot.id, 0);
	free(p);
}

/* KVM_SET_NR_MMU_PAGES records: a byte above 56 (budgets near 64, a few -EINVAL), or a
 * raw 32-bit count; both encode back byte for byte. */
static void test_decode_mmu_pages(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_MMU_PAGES, 0x08,                       /* 64 */
		OPC_MMU_PAGES_RAW, 0xa0, 0x86, 0x01, 0x00, /* 100000 */
		OPC_MMU_PAGES_RAW, 0x00, 0x00, 0x00, 0x00, /* 0: -EINVAL, raw only */
		OPC_MMU_PAGES,                             /* missing byte reads as zero: 56 */
	};
	uint8_t buf[32];

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 4);
	assert_int_equal(p->ops[0].kind, OP_MMU_PAGES);
	assert_int_equal(p->ops[0].mmu_pages.count, 64);
	assert_int_equal(p->ops[1].mmu_pages.count, 100000);
	assert_int_equal(p->ops[2].mmu_pages.count, 0);
	assert_int_equal(p->ops[3].mmu_pages.count, 56);
	p->n_ops = 3;
	assert_int_equal(program_encode(p, buf, sizeof(buf)), sizeof(bytes) - 1);
	assert_memory_equal(buf, bytes, sizeof(bytes) - 1);
	free(p);
}

/* The decoder follows the mode: index and value width of pte writes. */
static void test_decode_tracks_mode(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_PTE_RAW, 1, 0xe8, 0x03, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0,
		OPC_MODE, 1,
		OPC_SMM, 1, /* SMM keeps the mode */
		OPC_PTE_RAW, 1, 0xe8, 0x03, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0,
		OPC_MAP, 2, 0, 0, 0, 0, 0, 0, 0,
		OPC_MAP, 3, 0, 0, 0, 0, 0, 0, 0,
	};

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 6);
	assert_int_equal(p->ops[0].pte.index, 1000 & 511);
	assert_int_equal(p->ops[0].pte.value, 0x1ffffffffull);
	assert_int_equal(p->ops[3].pte.index, 1000);
	assert_int_equal(p->ops[3].pte.value, 0xffffffffull);
	/* 4M pages in 32-bit mode; a 1G request becomes 4M there */
	assert_int_equal(p->ops[4].map.level, 2);
	assert_int_equal(p->ops[4].map.gva, 0x400000);
	assert_int_equal(p->ops[4].map.gpa, 0x400000);
	assert_int_equal(p->ops[5].map.level, 2);
	free(p);
}

/* All-ones raw records are as far out of range as a record gets. */
static void test_decode_clamps_raw_fields(void **state)
{
	static const struct {
		uint8_t opcode, size;
	} raw[] = {
		{ OPC_SLOT_SET_RAW, 22 }, { OPC_SLOT_MOVE_RAW, 7 }, { OPC_SLOT_FLAGS_RAW, 6 },
		{ OPC_PTE_RAW, 11 },      { OPC_MAP_RAW, 25 },      { OPC_ACCESS_RAW, 9 },
		{ OPC_INVLPG_RAW, 8 },    { OPC_GEN_JUMP_RAW, 4 },
	};
	struct program *p = new_program();
	uint8_t bytes[2 + sizeof(raw) / sizeof(raw[0]) * 26];

	for (unsigned mode = 0; mode < PAGING_MODE_COUNT; mode++) {
		size_t n = 0;

		bytes[n++] = OPC_MODE;
		bytes[n++] = (uint8_t)mode;
		for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
			bytes[n++] = raw[i].opcode;
			memset(bytes + n, 0xff, raw[i].size);
			n += raw[i].size;
		}
		program_decode(bytes, n, p);
		check_program(p);
		assert_int_equal(p->n_ops, 9);
		assert_int_equal(p->ops[6].kind, OP_ACCESS);
		assert_int_equal(p->ops[7].kind, OP_INVLPG);
		assert_int_equal(p->ops[8].kind, OP_GEN_JUMP);
		assert_int_equal(p->ops[8].gen_jump.as_id, 1);
		assert_int_equal(p->ops[8].gen_jump.count, 0xfffff);
		assert_int_equal(p->ops[1].kind, OP_MEMSLOT_SET);
		assert_int_equal(p->ops[1].memslot.gpa, 0xffffffffffull);
		assert_int_equal(p->ops[1].memslot.size, 1);
		assert_int_equal(p->ops[1].memslot.hva, 0x3fffffffffffull);
	}
	free(p);
}

/* Every opcode value means something, and most mean accesses, pte writes and maps. */
static void test_opcode_weights(void **state)
{
	struct program *p = new_program();
	unsigned count[OP_KIND_COUNT] = { 0 };

	for (unsigned b = 0; b < 256; b++) {
		uint8_t byte = (uint8_t)b;

		program_decode(&byte, 1, p);
		assert_int_equal(p->n_ops, 1);
		count[p->ops[0].kind]++;
	}
	for (unsigned k = 0; k < OP_KIND_COUNT; k++)
		assert_true(count[k] > 0);
	assert_true(count[OP_ACCESS] + count[OP_PTE] + count[OP_MAP] >= 128);
	/* a few percent for invlpg, about 2 for generation jumps, about 1 for SMM */
	assert_true(count[OP_INVLPG] >= 6 && count[OP_INVLPG] <= 13);
	assert_true(count[OP_GEN_JUMP] >= 4 && count[OP_GEN_JUMP] <= 7);
	assert_true(count[OP_SMM] >= 2 && count[OP_SMM] <= 4);
	assert_true(count[OP_DIRTY_LOG] >= 1 && count[OP_DIRTY_LOG] <= 3);
	assert_int_equal(count[OP_MMU_PAGES], 2);
	assert_int_equal(count[OP_VCPU], 4);
	free(p);
}

/* What random inputs reach: the rare and invalid paths the decoder promises. */
struct reach {
	unsigned large_slot, private_slot, small_slot, as1, misaligned_gpa, misaligned_size,
		misaligned_hva, incongruent_hva, unknown_flag, hpage_1g, noncanonical, map_1g,
		map_4m, large_leaf_reserved_bit, pte_to_pool, invlpg, invlpg_noncanonical,
		gen_jump_small, gen_jump_near_power, gen_jump_other, gen_jump_as1, smm_enter,
		smm_leave, dirty_log, dirty_log_invalid_slot;
};

/* Within 2 of a power of two from 2^8 on: a jump that lands next to a generation wrap. */
static bool near_power_of_two(uint32_t count)
{
	for (unsigned k = 8; k <= 20; k++)
		if (count + 2 >= (1u << k) && count <= (1u << k) + 2)
			return true;
	return false;
}

static void count_reach_new_kinds(const struct op *op, unsigned mode, struct reach *r)
{
	if (op->kind == OP_INVLPG) {
		uint64_t top = op->invlpg.gva >> 47;

		r->invlpg++;
		r->invlpg_noncanonical += mode == PAGING_4LEVEL && top != 0 && top != 0x1ffff;
	}
	if (op->kind == OP_GEN_JUMP) {
		bool small = op->gen_jump.count <= 64, near = near_power_of_two(op->gen_jump.count);

		r->gen_jump_small += small;
		r->gen_jump_near_power += near;
		r->gen_jump_other += !small && !near;
		r->gen_jump_as1 += op->gen_jump.as_id;
	}
	if (op->kind == OP_SMM) {
		r->smm_enter += op->smm.enter;
		r->smm_leave += !op->smm.enter;
	}
	if (op->kind == OP_DIRTY_LOG) {
		r->dirty_log++;
		r->dirty_log_invalid_slot += op->memslot.id >= 509;
	}
}

static void count_reach(const struct program *p, struct reach *r)
{
	unsigned mode = PAGING_NONE;

	for (uint32_t i = 0; i < p->n_ops; i++) {
		const struct op *op = &p->ops[i];

		if (op->kind == OP_MODE)
			mode = op->mode.mode;
		count_reach_new_kinds(op, mode, r);
		if (op->kind >= OP_MEMSLOT_SET && op->kind <= OP_MEMSLOT_FLAGS) {
			r->large_slot += op->memslot.id >= 512;
			r->private_slot += op->memslot.id >= 509 && op->memslot.id < 512;
			r->small_slot += op->memslot.id < 16;
			r->as1 += op->memslot.as_id;
			r->unknown_flag += (op->memslot.flags & ~3u) != 0;
		}
		if (op->kind == OP_MEMSLOT_SET) {
			uint64_t congruent = prog_default_hva(op->memslot.id, op->memslot.gpa);
			bool aligned_hva = !(op->memslot.hva & 0xfff);

			r->misaligned_gpa += (op->memslot.gpa & 0xfff) != 0;
			r->misaligned_size += (op->memslot.size & 0xfff) != 0;
			r->misaligned_hva += (op->memslot.hva & 0xfff) != 0;
			r->incongruent_hva += op->memslot.hva != congruent && aligned_hva;
			r->hpage_1g += op->memslot.host_page_shift == 30;
		}
		if (op->kind == OP_ACCESS && mode == PAGING_4LEVEL) {
			uint64_t top = op->access.gva >> 47;

			r->noncanonical += top != 0 && top != 0x1ffff;
		}
		if (op->kind == OP_MAP) {
			r->map_1g += op->map.level == 3;
			r->map_4m += op->map.level == 2 && mode == PAGING_32;
			r->large_leaf_reserved_bit +=
				op->map.level > 1 && (op->map.leaf_flags & 0x2000);
		}
		if (op->kind == OP_PTE) {
			uint64_t frame = op->pte.value & 0xffffffffff000ull;

			r->pte_to_pool += frame >= TABLE_POOL_BASE && frame < table_pool_gpa(64);
		}
	}
}

static void test_decode_reaches_rare_paths(void **state)
{
	struct program *p = new_program();
	struct reach r = { 0 };
	struct rng g = { 0x5eed0002 };
	uint8_t data[1024];

	for (int i = 0; i < 3000; i++) {
		random_bytes(&g, data, sizeof(data));
		program_decode(data, sizeof(data), p);
		count_reach(p, &r);
	}
	assert_true(r.large_slot > 0 && r.private_slot > 0 && r.as1 > 0);
	assert_true(r.small_slot > 4 * r.large_slot);
	assert_true(r.misaligned_gpa > 0 && r.misaligned_size > 0 && r.misaligned_hva > 0);
	assert_true(r.incongruent_hva > 0 && r.unknown_flag > 0 && r.hpage_1g > 0);
	assert_true(r.noncanonical > 0 && r.map_1g > 0 && r.map_4m > 0 && r.pte_to_pool > 0);
	assert_true(r.large_leaf_reserved_bit > 0);
	assert_true(r.invlpg > 0 && r.invlpg_noncanonical > 0);
	/* the biased record makes most jumps small or next to a wrap */
	assert_true(r.gen_jump_small > 0 && r.gen_jump_near_power > 0 && r.gen_jump_other > 0);
	assert_true(r.gen_jump_small + r.gen_jump_near_power > 2 * r.gen_jump_other);
	assert_true(r.gen_jump_as1 > 0 && r.smm_enter > 0 && r.smm_leave > 0);
	assert_true(r.dirty_log > 4 * r.dirty_log_invalid_slot && r.dirty_log_invalid_slot > 0);
	free(p);
}

static void test_codec_round_trip(void **state)
{
	struct program *p = new_program(), *q = new_program();
	size_t max = program_encoded_size_max();
	uint8_t *buf = malloc(max), data[2048];
	struct rng r = { 0x5eed0003 };

	assert_non_null(buf);
	for (int i = 0; i < 3000; i++) {
		size_t len = rng_next(&r) % sizeof(data), n;

		random_bytes(&r, data, len);
		program_decode(data, len, p);
		n = program_encode(p, buf, max);
		assert_true(n <= max);
		program_decode(buf, n, q);
		assert_programs_equal(p, q);
	}
	free(buf);
	free(p);
	free(q);
}

/* 256 ops that only the largest record (a raw map) can carry fit program_encoded_size_max. */
static void test_encode_worst_case(void **state)
{
	struct program *p = new_program(), *q = new_program();
	size_t max = program_encoded_size_max();
	uint8_t *buf = malloc(max + 1);

	assert_non_null(buf);
	p->n_ops = PROG_MAX_OPS;
	for (unsigned i = 0; i < PROG_MAX_OPS; i++) {
		struct op *op = &p->ops[i];

		op->kind = OP_MAP;
		op->map.gva = 0x8012345000ull + i * 0x1000;
		op->map.gpa = 0x200000ull + i * 0x1000;
		op->map.level = 1;
		op->map.leaf_flags = 0x803;
		op->map.upper_flags = 0x807;
	}
	check_program(p);
	assert_int_equal(program_encode(p, buf, max + 1), max);
	program_decode(buf, max, q);
	assert_programs_equal(p, q);
	free(buf);
	free(p);
	free(q);
}

/* A short buffer gets the ops that fit, whole. */
static void test_encode_respects_cap(void **state)
{
	struct program *p = new_program(), *q = new_program();
	uint8_t buf[16];
	size_t n;

	parse_ok("mode 4level\nread 0x8000000000\npkru 0xc\nwrite 0x8000001000\n", p);
	n = program_encode(p, buf, 10);
	assert_true(n <= 10);
	program_decode(buf, n, q);
	assert_int_equal(q->n_ops, 2);
	assert_true(op_equal(&p->ops[0], &q->ops[0]) && op_equal(&p->ops[1], &q->ops[1]));
	assert_int_equal(program_encode(p, buf, 0), 0);
	free(p);
	free(q);
}

/* Ops the compact records can carry are written with them: opcode plus record bytes. */
static void test_encode_prefers_compact_records(void **state)
{
	static const struct {
		const char *line;
		size_t bytes;
	} ops[] = {
		{ "mode 4level", 2 },
		{ "control wp=1", 3 },
		{ "pkru 0x12345678", 5 },
		{ "cr3 T3", 2 },
		{ "memslot set slot=1 gpa=0x100800 size=0x400000 flags=log hpage=2M", 9 },
		{ "memslot set as=1 slot=600 gpa=0x40200000 size=0x201000 hva=0x109600202000 flags=0x10000 hpage=1G", 9 },
		{ "memslot delete as=1 slot=511", 3 },
		{ "memslot move slot=2 gpa=0x8000000000", 5 },
		{ "memslot flags slot=3 flags=ro|0x80000000", 4 },
		{ "pte T5[1] = 0x8000000000102063", 8 },
		{ "pte T6[511] = 0x0800000040000087", 8 },
		{ "map 0xffff800000000000 -> 0x300000 size=4K leaf=P|W upper=P|NX", 9 },
		{ "map 0xffffff8040000000 -> 0x40000000 size=1G leaf=P|PS upper=P|W|U", 9 },
		{ "read 0xffffff8040000123 user", 6 },
		{ "fetch 0x1008000000abc", 6 },
		{ "invlpg 0xffffff8040000fff", 5 },
		{ "invlpg 0x1008000000abc", 5 },
		{ "generation as=1 jump=524287", 2 },
		{ "generation jump=37", 2 },
		{ "generation jump=1048576", 2 },
		{ "smm enter", 2 },
		{ "smm leave", 2 },
	};
	struct program *p = new_program(), *q = new_program();
	char text[2048] = "";
	uint8_t buf[256];
	size_t want = 0;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		strcat(strcat(text, ops[i].line), "\n");
		want += ops[i].bytes;
	}
	parse_ok(text, p);
	assert_int_equal(program_encode(p, buf, sizeof(buf)), want);
	program_decode(buf, want, q);
	assert_programs_equal(p, q);
	free(p);
	free(q);
}

/* Values no biased record makes still survive encoding. */
static void test_encode_parsed_program(void **state)
{
	struct program *p = new_program(), *q = new_program();
	uint8_t *buf = malloc(program_encoded_size_max());
	size_t n;

	assert_non_null(buf);
	parse_ok("memslot set as=1 slot=777 gpa=0x123457000 size=0x3000 hva=0x7fff00000000 flags=ro|0x100 hpage=1G\n"
		 "memslot move slot=3 gpa=0x100001\n"
		 "memslot flags slot=507 flags=0xdeadbeef\n"
		 "pte T7[300] = 0x8000000fedcba987\n"
		 "mode 5level\n"
		 "map 0xff00123456789000 -> 0xabcdef000 size=4K leaf=G|0x800|PK7|NX upper=P|0x1f0000000000000\n"
		 "map 0x1000000000000000 -> 0xc0000000 size=1G leaf=0 upper=0xfff\n"
		 "fetch 0x7fff000000000123 user\n"
		 "invlpg 0xff00123456789abc\n"
		 "invlpg 0x7fff000000000123\n"
		 "generation as=1 jump=1000\n"
		 "generation jump=0xfedcb\n"
		 "mode 32\n"
		 "map 0xffc00000 -> 0xff00400000 size=4M leaf=P|PS upper=0x800\n"
		 "pte T9[1023] = 0xffffffff\n"
		 "invlpg 0xfffff123\n",
		 p);
	n = program_encode(p, buf, program_encoded_size_max());
	program_decode(buf, n, q);
	check_program(q);
	assert_programs_equal(p, q);
	free(buf);
	free(p);
	free(q);
}

/* ---- text form ---- */

static void test_text_round_trip(void **state)
{
	struct program *p = new_program(), *q = new_program();
	struct rng r = { 0x5eed0004 };
	uint8_t data[1024];

	for (int i = 0; i < 1500; i++) {
		size_t len = rng_next(&r) % sizeof(data);
		char *text, *again;

		random_bytes(&r, data, len);
		program_decode(data, len, p);
		text = print_to_string(p);
		parse_ok(text, q);
		assert_programs_equal(p, q);
		again = print_to_string(q);
		assert_string_equal(text, again);
		free(text);
		free(again);
	}
	free(p);
	free(q);
}

static const char example_text[] =
	"# every op kind once\n"
	"mode 4level\n"
	"control wp=1 smep=0 pse=1 smap=1 pke=1 nxe=1 ac=0\n"
	"pkru 0x0000000c\n"
	"cr3 T0\n"
	"memslot set as=0 slot=1 gpa=0x100000 size=0x400000 hva=0x100000100000 flags=log|ro hpage=4K\n"
	"memslot delete as=0 slot=1\n"
	"memslot move as=0 slot=1 gpa=0x800000\n"
	"memslot flags as=0 slot=1 flags=log\n"
	"pte T1[5] = 0x200067\n"
	"map 0x8000001000 -> 0x200000 size=4K leaf=P|W|U|A|D upper=P|W|U\n"
	"read 0x8000001234\n"
	"write 0x8000001234 user\n"
	"fetch 0x8000001234\n"
	"memslot set slot=2 gpa=0x40200000 size=0x200000 flags=none hpage=2M\n"
	"map 0x8040000000 -> 0x40000000 size=1G leaf=P|NX|PK3|0x200 upper=7\n"
	"map 0x8000400000 -> 0x40200000 size=2M leaf=P|W|U|0x2000 upper=P|W|U\n"
	"mode 32\n"
	"map 0x800000 -> 0xff00400000 size=4M leaf=P|PS|0x201000 upper=P\n"
	"invlpg 0xffc00123\n"
	"generation jump=524288\n"
	"generation as=1 jump=0x7fffe\n"
	"smm enter\n"
	"smm leave\n"
	"dirty_log as=1 slot=7\n"
	"dirty_log slot=600\n"
	"mmu_pages 64\n";

static void test_parse_examples(void **state)
{
	struct program *p = new_program();
	const struct op *op = p->ops;

	parse_ok(example_text, p);
	check_program(p);
	assert_int_equal(p->n_ops, 26);
	assert_int_equal(op[0].kind, OP_MODE);
	assert_int_equal(op[0].mode.mode, PAGING_4LEVEL);
	assert_int_equal(op[1].kind, OP_CONTROL);
	assert_int_equal(op[1].control.mask, 0x7f);
	assert_int_equal(op[1].control.value,
			 CTRL_CR0_WP | CTRL_CR4_PSE | CTRL_CR4_SMAP | CTRL_CR4_PKE | CTRL_EFER_NXE);
	assert_int_equal(op[2].kind, OP_PKRU);
	assert_int_equal(op[2].pkru.value, 0xc);
	assert_int_equal(op[3].kind, OP_CR3);
	assert_int_equal(op[3].cr3.table, 0);
	assert_int_equal(op[4].kind, OP_MEMSLOT_SET);
	assert_int_equal(op[4].memslot.as_id, 0);
	assert_int_equal(op[4].memslot.id, 1);
	assert_int_equal(op[4].memslot.gpa, 0x100000);
	assert_int_equal(op[4].memslot.size, 0x400000);
	assert_int_equal(op[4].memslot.hva, 0x100000100000ull);
	assert_int_equal(op[4].memslot.flags, 3);
	assert_int_equal(op[4].memslot.host_page_shift, 12);
	assert_int_equal(op[5].kind, OP_MEMSLOT_DELETE);
	assert_int_equal(op[5].memslot.id, 1);
	assert_int_equal(op[6].kind, OP_MEMSLOT_MOVE);
	assert_int_equal(op[6].memslot.gpa, 0x800000);
	assert_int_equal(op[7].kind, OP_MEMSLOT_FLAGS);
	assert_int_equal(op[7].memslot.flags, 1);
	assert_int_equal(op[8].kind, OP_PTE);
	assert_int_equal(op[8].pte.table, 1);
	assert_int_equal(op[8].pte.index, 5);
	assert_int_equal(op[8].pte.value, 0x200067);
	assert_int_equal(op[9].kind, OP_MAP);
	assert_int_equal(op[9].map.gva, 0x8000001000ull);
	assert_int_equal(op[9].map.gpa, 0x200000);
	assert_int_equal(op[9].map.level, 1);
	assert_int_equal(op[9].map.leaf_flags, 0x67);
	assert_int_equal(op[9].map.upper_flags, 7);
	assert_int_equal(op[10].kind, OP_ACCESS);
	assert_int_equal(op[10].access.kind, ACCESS_READ);
	assert_int_equal(op[10].access.cpl, 0);
	assert_int_equal(op[10].access.gva, 0x8000001234ull);
	assert_int_equal(op[11].access.kind, ACCESS_WRITE);
	assert_int_equal(op[11].access.cpl, 3);
	assert_int_equal(op[12].access.kind, ACCESS_FETCH);
	/* as= and hva= left out: address space 0 and the default layout */
	assert_int_equal(op[13].memslot.as_id, 0);
	assert_int_equal(op[13].memslot.hva, 0x100000000000ull + 2 * 0x40000000ull + 0x200000);
	assert_int_equal(op[13].memslot.flags, 0);
	assert_int_equal(op[13].memslot.host_page_shift, 21);
	assert_int_equal(op[14].map.level, 3);
	assert_int_equal(op[14].map.leaf_flags, 0x8000000000000201ull | 3ull << 59);
	/* large leaves may set the reserved low bits of their frame field */
	assert_int_equal(op[15].map.leaf_flags, 0x2007);
	assert_int_equal(op[17].map.level, 2);
	assert_int_equal(op[17].map.gpa, 0xff00400000ull);
	assert_int_equal(op[17].map.leaf_flags, 0x201081);
	assert_int_equal(op[18].kind, OP_INVLPG);
	assert_int_equal(op[18].invlpg.gva, 0xffc00123);
	/* as= left out: address space 0 */
	assert_int_equal(op[19].kind, OP_GEN_JUMP);
	assert_int_equal(op[19].gen_jump.as_id, 0);
	assert_int_equal(op[19].gen_jump.count, 524288);
	assert_int_equal(op[20].gen_jump.as_id, 1);
	assert_int_equal(op[20].gen_jump.count, 0x7fffe);
	assert_int_equal(op[21].kind, OP_SMM);
	assert_int_equal(op[21].smm.enter, 1);
	assert_int_equal(op[22].kind, OP_SMM);
	assert_int_equal(op[22].smm.enter, 0);
	assert_int_equal(op[23].kind, OP_DIRTY_LOG);
	assert_int_equal(op[23].memslot.as_id, 1);
	assert_int_equal(op[23].memslot.id, 7);
	/* as= left out: address space 0; ids past the user slots reach the EINVAL path */
	assert_int_equal(op[24].memslot.as_id, 0);
	assert_int_equal(op[24].memslot.id, 600);
	assert_int_equal(op[25].kind, OP_MMU_PAGES);
	assert_int_equal(op[25].mmu_pages.count, 64);
	free(p);
}

static void test_print_canonical(void **state)
{
	struct program *p = new_program();
	char *text;

	parse_ok("mode 32\n"
		 "map 0x400000 -> 0x800000 size=4M leaf=P|W|PS upper=P\n"
		 "write 0x400123 user\n"
		 "memslot set slot=1 gpa=0x100000 size=0x1000 flags=0 hpage=4K\n"
		 "mode 4level\n"
		 "map 0x8000000000 -> 0x200000 size=2M leaf=P|0x800|PK2|NX upper=0\n"
		 "control\n"
		 "generation jump=0x40\n"
		 "smm   enter\n"
		 "invlpg 0x1008000000ABC\n"
		 "dirty_log  slot=3\n",
		 p);
	text = print_to_string(p);
	assert_string_equal(text, "mode 32\n"
				  "map 0x400000 -> 0x800000 size=4M leaf=P|W|PS upper=P\n"
				  "write 0x400123 user\n"
				  "memslot set as=0 slot=1 gpa=0x100000 size=0x1000 hva=0x100040100000 flags=0 hpage=4K\n"
				  "mode 4level\n"
				  "map 0x8000000000 -> 0x200000 size=2M leaf=P|0x800|PK2|NX upper=0\n"
				  "control\n"
				  "generation as=0 jump=64\n"
				  "smm enter\n"
				  "invlpg 0x1008000000abc\n"
				  "dirty_log as=0 slot=3\n");
	free(text);
	free(p);
}

static void test_op_format(void **state)
{
	struct op map = { .kind = OP_MAP,
			  .map = { .gva = 0x400000, .gpa = 0x400000, .level = 2, .leaf_flags = 1 } };
	struct op pte = { .kind = OP_PTE, .pte = { .table = 3, .index = 9, .value = 0x1003 } };
	struct op jump = { .kind = OP_GEN_JUMP, .gen_jump = { .as_id = 1, .count = 1u << 20 } };
	struct op invlpg = { .kind = OP_INVLPG, .invlpg = { .gva = 0xffffffffffe00000ull } };
	struct op smm = { .kind = OP_SMM, .smm = { .enter = 0 } };
	struct op log = { .kind = OP_DIRTY_LOG, .memslot = { .as_id = 1, .id = 12 } };
	struct op budget = { .kind = OP_MMU_PAGES, .mmu_pages = { .count = 4294967295u } };
	char small[8], buf[128];
	int n = op_format_in_mode(&map, PAGING_32, buf, sizeof(buf));

	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "map 0x400000 -> 0x400000 size=4M leaf=P upper=0");
	op_format(&map, buf, sizeof(buf));
	assert_string_equal(buf, "map 0x400000 -> 0x400000 size=2M leaf=P upper=0");
	assert_int_equal(op_format(&pte, small, sizeof(small)), (int)strlen("pte T3[9] = 0x1003"));
	assert_string_equal(small, "pte T3[");
	assert_int_equal(op_format(&pte, NULL, 0), (int)strlen("pte T3[9] = 0x1003"));
	op_format(&jump, buf, sizeof(buf));
	assert_string_equal(buf, "generation as=1 jump=1048576");
	op_format_in_mode(&invlpg, PAGING_5LEVEL, buf, sizeof(buf));
	assert_string_equal(buf, "invlpg 0xffffffffffe00000");
	op_format(&smm, buf, sizeof(buf));
	assert_string_equal(buf, "smm leave");
	op_format(&log, buf, sizeof(buf));
	assert_string_equal(buf, "dirty_log as=1 slot=12");
	assert_string_equal(op_kind_name(OP_DIRTY_LOG), "dirty_log");
	op_format(&budget, buf, sizeof(buf));
	assert_string_equal(buf, "mmu_pages 4294967295");
	assert_string_equal(op_kind_name(OP_MMU_PAGES), "mmu_pages");
	assert_string_equal(op_kind_name(OP_MEMSLOT_MOVE), "memslot_move");
	assert_string_equal(op_kind_name(OP_INVLPG), "invlpg");
	assert_string_equal(op_kind_name(OP_GEN_JUMP), "gen_jump");
	assert_string_equal(op_kind_name(OP_SMM), "smm");
	assert_string_equal(op_kind_name(OP_KIND_COUNT), "?");
	assert_string_equal(paging_mode_name(PAGING_PAE), "pae");
}

static void test_comments_and_blank_lines(void **state)
{
	struct program *p = new_program();

	parse_ok("", p);
	assert_int_equal(p->n_ops, 0);
	parse_ok("\n\n   # only a comment\n\t\n", p);
	assert_int_equal(p->n_ops, 0);
	parse_ok("# header\r\n\r\nmode   pae# no space needed\r\n\tread\t0x40000000   user  # tail\r\n", p);
	assert_int_equal(p->n_ops, 2);
	assert_int_equal(p->ops[0].mode.mode, PAGING_PAE);
	assert_int_equal(p->ops[1].access.gva, 0x40000000);
	assert_int_equal(p->ops[1].access.cpl, 3);
	parse_fails("# one\n\n# three\nmode pea\n", "t.txt:4: unknown mode 'pea' (none, 32, pae, 4level or 5level)");
	free(p);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *text, *message;
	} cases[] = {
		{ "mdoe 4level", "t.txt:1: unknown op 'mdoe'" },
		{ "Mode 4level", "t.txt:1: unknown op 'Mode'" },
		{ "mode 4level\nread 0x1000", "t.txt:2: gva 0x1000 is reserved for the harness in mode 4level" },
		{ "mode 4level\npte T1[600] = 0", "t.txt:2: pte index 600 out of range for 8-byte entries" },
		{ "mode pae\nmap 0x40000000 -> 0x40000000 size=1G leaf=P upper=P",
		  "t.txt:2: size=1G needs mode 4level or 5level" },
		{ "mode 4level\nmap 0x8000000000 -> 0x400000 size=4M leaf=P upper=P",
		  "t.txt:2: size=4M is not a page size of mode 4level" },
		{ "mode 32\nmap 0x400000 -> 0x400000 size=2M leaf=P upper=P", "t.txt:2: size=2M is not a page size of mode 32" },
		{ "mode 4level\nmap 0x8000001000 -> 0x200000 size=2M leaf=P upper=P",
		  "t.txt:2: gva 0x8000001000 is not aligned to size=2M" },
		{ "mode 4level\nmap 0x8000000000 -> 0x1000 size=4K leaf=P upper=P",
		  "t.txt:2: gpa 0x1000 is outside [0x100000, 0x10000000000) for size=4K in mode 4level" },
		{ "mode 32\nmap 0x400000 -> 0x100000000 size=4K leaf=P upper=P",
		  "t.txt:2: gpa 0x100000000 is outside [0x100000, 0x100000000) for size=4K in mode 32" },
		{ "mode 32\nmap 0x400000 -> 0x100000 size=4K leaf=P|NX upper=P",
		  "t.txt:2: leaf flags 0x8000000000000001 set address bits of a size=4K leaf" },
		{ "mode 32\nmap 0x400000 -> 0x100000 size=4K leaf=P upper=P|NX",
		  "t.txt:2: upper flags 0x8000000000000001 set address bits of 4-byte entries" },
		{ "mode 32\nmap 0x400000 -> 0x400000 size=4M leaf=P|0x2000 upper=P",
		  "t.txt:2: leaf flags 0x2001 set address bits of a size=4M leaf" },
		{ "mode 4level\nmap 0x8000000000 -> 0x200000 size=4K leaf=P|0x2000 upper=P",
		  "t.txt:2: leaf flags 0x2001 set address bits of a size=4K leaf" },
		{ "mode 4level\nmap 0x8000000000 -> 0x200000 size=2M leaf=P|0x200000 upper=P",
		  "t.txt:2: leaf flags 0x200001 set address bits of a size=2M leaf" },
		{ "mode 4level\nmap 0x8000000000 -> 0x200000 size=4K leaf=P upper=P|0x1000",
		  "t.txt:2: upper flags 0x1001 set address bits of 8-byte entries" },
		{ "map 0x400000 -> 0x100000 size=4K leaf=P|Q upper=P", "t.txt:1: unknown entry flag 'Q'" },
		{ "map 0x400000 -> 0x100000 size=4K leaf=P|PK16 upper=P", "t.txt:1: unknown entry flag 'PK16'" },
		{ "map 0x400000 -> 0x100000 size=4K leaf=P|PK0 upper=P", "t.txt:1: unknown entry flag 'PK0'" },
		{ "map 0x400000 -> 0x100000 size=4K leaf=P||W upper=P", "t.txt:1: empty term in entry flag" },
		{ "map 0x400000 -> 0x100000 size=4K leaf=P", "t.txt:1: map needs upper=" },
		{ "map 0x400000 0x100000 size=4K leaf=P upper=P", "t.txt:1: expected '->' after 0x400000" },
		{ "map 0x400000 -> 0x100000 size=8K leaf=P upper=P", "t.txt:1: unknown size '8K' (4K, 2M, 4M or 1G)" },
		{ "control wp=2", "t.txt:1: wp= must be 0 or 1" },
		{ "control foo=1", "t.txt:1: unknown field 'foo' for control" },
		{ "control wp=1 wp=0", "t.txt:1: duplicate field wp=" },
		{ "control wp", "t.txt:1: expected key=value, got 'wp'" },
		{ "control wp=", "t.txt:1: missing value after wp=" },
		{ "cr3 T64", "t.txt:1: table T64 out of range (T0..T63)" },
		{ "cr3 0", "t.txt:1: expected a table T0..T63, got '0'" },
		{ "pkru 0x100000000", "t.txt:1: pkru 0x100000000 out of range (at most 0xffffffff)" },
		{ "pkru 12abc", "t.txt:1: bad number '12abc' for pkru" },
		{ "pkru 0x", "t.txt:1: bad number '0x' for pkru" },
		{ "pkru 99999999999999999999", "t.txt:1: bad number '99999999999999999999' for pkru" },
		{ "read 0x500000 extra", "t.txt:1: unexpected 'extra' after 'read|write|fetch GVA [user]'" },
		{ "read", "t.txt:1: missing fields: expected 'read|write|fetch GVA [user]'" },
		{ "read 0x100000000", "t.txt:1: gva 0x100000000 is beyond 4 GiB in mode none" },
		{ "mode", "t.txt:1: missing fields: expected 'mode NAME'" },
		{ "mode 4level 5level", "t.txt:1: unexpected '5level' after 'mode NAME'" },
		{ "pte T1[5] 0x1", "t.txt:1: missing fields: expected 'pte Tn[index] = VALUE'" },
		{ "pte T1[5] := 0x1", "t.txt:1: expected '=' after T1[5]" },
		{ "pte T1(5) = 0x1", "t.txt:1: expected Tn[index], got 'T1(5)'" },
		{ "pte T0[0] = 0x1", "t.txt:1: T0[0] is the harness's root entry while cr3 is T0" },
		{ "mode 32\npte T1[5] = 0x100000000", "t.txt:2: pte value 0x100000000 does not fit 4-byte entries" },
		{ "memslot frob slot=1", "t.txt:1: unknown memslot op 'frob' (set, delete, move or flags)" },
		{ "memslot", "t.txt:1: missing fields: expected 'memslot set|delete|move|flags ...'" },
		{ "memslot set slot=1 gpa=0x100000 size=0x1000 flags=0", "t.txt:1: memslot set needs hpage=" },
		{ "memslot delete as=1", "t.txt:1: memslot delete needs slot=" },
		{ "memslot delete slot=1 gpa=0x100000", "t.txt:1: unknown field 'gpa' for memslot delete" },
		{ "memslot delete slot=1 slot=2", "t.txt:1: duplicate field slot=" },
		{ "memslot delete slot=1024", "t.txt:1: slot 1024 out of range (at most 0x3ff)" },
		{ "memslot delete as=2 slot=1", "t.txt:1: as 2 out of range (at most 0x1)" },
		{ "dirty_log as=1", "t.txt:1: dirty_log needs slot=" },
		{ "dirty_log slot=1 flags=log", "t.txt:1: unknown field 'flags' for dirty_log" },
		{ "dirty_log slot=508", "t.txt:1: slot 508 is reserved for the harness's physmap" },
		{ "mmu_pages", "t.txt:1: missing fields: expected 'mmu_pages COUNT'" },
		{ "mmu_pages 0x100000000", "t.txt:1: mmu_pages 0x100000000 out of range (at most 0xffffffff)" },
		{ "memslot flags slot=1 flags=log|dirty", "t.txt:1: unknown memslot flag 'dirty'" },
		{ "memslot flags slot=1 flags=0x100000000", "t.txt:1: memslot flags 0x100000000 do not fit 32 bits" },
		{ "memslot set slot=1 gpa=0x1000 size=0x1000 flags=0 hpage=4K",
		  "t.txt:1: gpa 0x1000 is outside [0x100000, 0x10000000000)" },
		{ "memslot set slot=1 gpa=0x100000 size=0x40001000 flags=0 hpage=4K",
		  "t.txt:1: size 0x40001000 is above 0x40000000" },
		{ "memslot set slot=1 gpa=0xfffff00000 size=0x200000 flags=0 hpage=4K",
		  "t.txt:1: gpa + size goes past 0x10000000000" },
		{ "memslot set slot=1 gpa=0x100000 size=0x1000 hva=0x7fffffffe000 flags=0 hpage=4K",
		  "t.txt:1: hva 0x7fffffffe000 + size reaches 0x7ffffffff000" },
		{ "memslot set slot=1 gpa=0x100000 size=0x1000 flags=0 hpage=8K",
		  "t.txt:1: unknown hpage '8K' (4K, 2M or 1G)" },
		{ "memslot move slot=1 gpa=0x10000000000", "t.txt:1: gpa 0x10000000000 is outside [0x100000, 0x10000000000)" },
		{ "read 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17", "t.txt:1: too many fields (at most 16)" },
		{ "invlpg", "t.txt:1: missing fields: expected 'invlpg GVA'" },
		{ "invlpg 0x500000 user", "t.txt:1: unexpected 'user' after 'invlpg GVA'" },
		{ "invlpg 0x100000000", "t.txt:1: gva 0x100000000 is beyond 4 GiB in mode none" },
		{ "invlpg 0x3ff000", "t.txt:1: gva 0x3ff000 is reserved for the harness in mode none" },
		{ "mode 4level\ninvlpg 0x7fffffffff", "t.txt:2: gva 0x7fffffffff is reserved for the harness in mode 4level" },
		{ "invlpg page", "t.txt:1: bad number 'page' for gva" },
		{ "generation as=0 jump=0", "t.txt:1: jump 0 out of range (at least 1)" },
		{ "generation jump=0x100001", "t.txt:1: jump 0x100001 out of range (at most 0x100000)" },
		{ "generation jump=-1", "t.txt:1: bad number '-1' for jump" },
		{ "generation as=2 jump=1", "t.txt:1: as 2 out of range (at most 0x1)" },
		{ "generation as=1", "t.txt:1: generation needs jump=" },
		{ "generation", "t.txt:1: generation needs jump=" },
		{ "generation jump=1 slot=1", "t.txt:1: unknown field 'slot' for generation" },
		{ "generation jump=1 jump=2", "t.txt:1: duplicate field jump=" },
		{ "generation 5", "t.txt:1: expected key=value, got '5'" },
		{ "smm sideways", "t.txt:1: unknown smm op 'sideways' (enter or leave)" },
		{ "smm Enter", "t.txt:1: unknown smm op 'Enter' (enter or leave)" },
		{ "smm", "t.txt:1: missing fields: expected 'smm enter|leave'" },
		{ "smm enter now", "t.txt:1: unexpected 'now' after 'smm enter|leave'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].text, cases[i].message);
}

static void test_parse_too_many_ops(void **state)
{
	struct program *p = new_program();
	size_t line = strlen("read 0x400000\n");
	char *text = malloc(line * (PROG_MAX_OPS + 1) + 1);

	assert_non_null(text);
	for (unsigned i = 0; i <= PROG_MAX_OPS; i++)
		memcpy(text + i * line, "read 0x400000\n", line);
	text[line * PROG_MAX_OPS] = '\0';
	parse_ok(text, p);
	assert_int_equal(p->n_ops, PROG_MAX_OPS);
	text[line * PROG_MAX_OPS] = 'r';
	text[line * (PROG_MAX_OPS + 1)] = '\0';
	parse_fails(text, "t.txt:257: more than 256 ops");
	free(text);
	free(p);
}

/* The rules follow the mode and CR3 set on earlier lines. */
static void test_parse_tracks_mode_and_cr3(void **state)
{
	struct program *p = new_program();

	parse_fails("pte T1[1000] = 0", "t.txt:1: pte index 1000 out of range for 8-byte entries");
	parse_ok("mode 32\npte T1[1000] = 0", p);
	parse_fails("mode 32\nmode pae\npte T1[1000] = 0", "t.txt:3: pte index 1000 out of range for 8-byte entries");

	parse_ok("read 0x500000\nmode 32\nread 0x500000", p);
	parse_fails("mode pae\nread 0x500000", "t.txt:2: gva 0x500000 is reserved for the harness in mode pae");
	parse_fails("mode 32\nread 0x8000000000", "t.txt:2: gva 0x8000000000 is beyond 4 GiB in mode 32");
	parse_ok("mode 4level\nread 0x8000000000\nread 0x800000000000", p);
	parse_fails("mode 5level\nread 0x800000000000",
		    "t.txt:2: gva 0x800000000000 is reserved for the harness in mode 5level");
	parse_ok("mode 5level\nmap 0x1000000000000 -> 0x40000000 size=1G leaf=P upper=P", p);
	parse_fails("mode 5level\nmode 32\nmap 0x1000000000000 -> 0x40000000 size=1G leaf=P upper=P",
		    "t.txt:3: size=1G needs mode 4level or 5level");

	parse_ok("invlpg 0x500000\nmode 32\ninvlpg 0x500000", p);
	parse_fails("mode pae\ninvlpg 0x500000", "t.txt:2: gva 0x500000 is reserved for the harness in mode pae");
	parse_fails("mode 32\ninvlpg 0x8000000000", "t.txt:2: gva 0x8000000000 is beyond 4 GiB in mode 32");
	parse_ok("mode 4level\ninvlpg 0x1008000000abc\nmode 5level\ninvlpg 0x7fff000000000123", p);
	/* SMM keeps the mode and CR3 the rules follow */
	parse_ok("mode 32\nsmm enter\npte T1[1000] = 0\nsmm leave\nread 0x500000", p);
	parse_fails("mode 4level\nsmm enter\nread 0x1000",
		    "t.txt:3: gva 0x1000 is reserved for the harness in mode 4level");

	parse_ok("cr3 T1\npte T0[0] = 0x1", p);
	parse_fails("cr3 T1\npte T1[0] = 0x1", "t.txt:2: T1[0] is the harness's root entry while cr3 is T1");
	parse_ok("cr3 T1\ncr3 T2\npte T1[0] = 0x1", p);
	free(p);
}

/* Each vCPU has its own mode and CR3 table, and starts in mode none with CR3 = T0. */
static void test_parse_tracks_vcpus(void **state)
{
	struct program *p = new_program();

	parse_ok("vcpu 3\nvcpu 0", p);
	assert_int_equal(p->n_ops, 2);
	assert_int_equal(p->ops[0].kind, OP_VCPU);
	assert_int_equal(p->ops[0].vcpu.id, 3);
	parse_fails("vcpu 4", "t.txt:1: vcpu 4 out of range (at most 0x3)");
	parse_fails("vcpu", "t.txt:1: missing fields: expected 'vcpu N'");
	parse_ok("mode 4level\nvcpu 1\nread 0x500000\nvcpu 0\nread 0x8000000000", p);
	parse_fails("mode 4level\nvcpu 1\nvcpu 0\nread 0x500000",
		    "t.txt:4: gva 0x500000 is reserved for the harness in mode 4level");
	parse_ok("mode 32\nvcpu 1\nmode 4level\nvcpu 0\npte T1[1000] = 0", p);
	parse_fails("mode 32\nvcpu 1\nmode 4level\npte T1[1000] = 0",
		    "t.txt:4: pte index 1000 out of range for 8-byte entries");
	/* The harness's root entry is the running vCPU's: vCPU 1 is still on T0. */
	parse_ok("cr3 T1\nvcpu 1\npte T1[0] = 0x1", p);
	parse_fails("cr3 T1\nvcpu 1\npte T0[0] = 0x1", "t.txt:3: T0[0] is the harness's root entry while cr3 is T0");
	free(p);
}

/* The same rules in the binary form: a gva field decodes for the running vCPU's mode. */
static void test_decode_tracks_vcpus(void **state)
{
	struct program *p = new_program();
	const uint8_t bytes[] = {
		OPC_MODE, 3,           /* vCPU 0: 4-level */
		OPC_VCPU, 5,           /* vCPU 1 (5 mod 4) */
		OPC_ACCESS, 0, 0, 0, 0, 0, /* mode none: above the harness's 4 MiB */
		OPC_VCPU + 3, 4,       /* vCPU 0 again (any vcpu opcode) */
		OPC_ACCESS, 0, 0, 0, 0, 0, /* 4-level: root index 1 */
		OPC_CR3, 7,
		OPC_VCPU, 2,
		OPC_PTE_RAW, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* vCPU 2's root is T0: index 1 */
		OPC_PTE_RAW, 7, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, /* T7 is vCPU 0's: index 0 stays */
	};

	program_decode(bytes, sizeof(bytes), p);
	check_program(p);
	assert_int_equal(p->n_ops, 9);
	assert_int_equal(p->ops[1].vcpu.id, 1);
	assert_int_equal(p->ops[2].access.gva, 0x400000);
	assert_int_equal(p->ops[3].kind, OP_VCPU);
	assert_int_equal(p->ops[3].vcpu.id, 0);
	assert_int_equal(p->ops[4].access.gva, 0x8000000000ull);
	assert_int_equal(p->ops[6].vcpu.id, 2);
	assert_int_equal(p->ops[7].pte.table, 0);
	assert_int_equal(p->ops[7].pte.index, 1);
	assert_int_equal(p->ops[8].pte.table, 7);
	assert_int_equal(p->ops[8].pte.index, 0);
	free(p);
}

/* ---- files ---- */

struct temp_dir {
	char path[64];
};

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void test_load_file(void **state)
{
	struct program *p = new_program(), *q = new_program();
	struct temp_dir dir = { "/tmp/test_program.XXXXXX" };
	char path[128], err[256], want[256];
	const uint8_t binary[] = { OPC_MODE, 3, OPC_ACCESS, 1, 0, 0, 0x34, 0x12, 0 };

	assert_non_null(mkdtemp(dir.path));

	snprintf(path, sizeof(path), "%s/seed.txt", dir.path);
	write_file(path, example_text, strlen(example_text));
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), 0);
	parse_ok(example_text, q);
	assert_programs_equal(p, q);
	unlink(path);

	/* A fuzzer's input may end inside a record... */
	snprintf(path, sizeof(path), "%s/crash-input.bin", dir.path);
	write_file(path, binary, sizeof(binary));
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), 0);
	program_decode(binary, sizeof(binary), q);
	assert_programs_equal(p, q);
	assert_int_equal(p->n_ops, 3);
	unlink(path);
	/* ...a NAME.bin shadowfuzz wrote may not. */
	snprintf(path, sizeof(path), "%s/seed.bin", dir.path);
	write_file(path, binary, sizeof(binary));
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "seed.bin: truncated"));
	unlink(path);

	snprintf(path, sizeof(path), "%s/empty", dir.path);
	write_file(path, "", 0);
	p->n_ops = 5;
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), 0);
	assert_int_equal(p->n_ops, 0);
	unlink(path);

	snprintf(path, sizeof(path), "%s/bad.txt", dir.path);
	write_file(path, "mode 4level\n\nread 0x10\n", strlen("mode 4level\n\nread 0x10\n"));
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: gva 0x10 is reserved for the harness in mode 4level", path);
	assert_string_equal(err, want);
	unlink(path);

	snprintf(path, sizeof(path), "%s/missing", dir.path);
	assert_int_equal(program_load_file(path, p, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);

	rmdir(dir.path);
	free(p);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_empty),
		cmocka_unit_test(test_decode_is_total),
		cmocka_unit_test(test_decode_pads_with_zeros),
		cmocka_unit_test(test_decode_stops_at_max_ops),
		cmocka_unit_test(test_decode_layout),
		cmocka_unit_test(test_decode_layout_invlpg_generation_smm),
		cmocka_unit_test(test_decode_tracks_mode),
		cmocka_unit_test(test_decode_tracks_vcpus),
		cmocka_unit_test(test_decode_clamps_raw_fields),
		cmocka_unit_test(test_opcode_weights),
		cmocka_unit_test(test_decode_reaches_rare_paths),
		cmocka_unit_test(test_decode_dirty_log),
		cmocka_unit_test(test_decode_mmu_pages),
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_encode_worst_case),
		cmocka_unit_test(test_encode_respects_cap),
		cmocka_unit_test(test_encode_prefers_compact_records),
		cmocka_unit_test(test_encode_parsed_program),
		cmocka_unit_test(test_text_round_trip),
		cmocka_unit_test(test_parse_examples),
		cmocka_unit_test(test_print_canonical),
		cmocka_unit_test(test_op_format),
		cmocka_unit_test(test_comments_and_blank_lines),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_too_many_ops),
		cmocka_unit_test(test_parse_tracks_mode_and_cr3),
		cmocka_unit_test(test_parse_tracks_vcpus),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
