/* The structure-aware mutator: outputs are canonical encodings within the size limit,
 * deterministic per seed, each mutation kind changes what it says it changes, cross-over
 * mixes both parents, and the AFL++ glue keeps to its buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/mutator.h"
#include "../fuzz/program.h"

#define BUF_MAX 8192
#define SEEDS 400

void *afl_custom_init(void *afl, unsigned int seed);
size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf,
		       uint8_t *add_buf, size_t add_buf_size, size_t max_size);
const char *afl_custom_describe(void *data, size_t max_description_len);
void afl_custom_deinit(void *data);

/* Every op kind, in a 4-level program, so that every mutation kind has something to do. */
static const char rich_text[] =
	"memslot set as=0 slot=0 gpa=0x100000 size=0x400000 hva=0x100000100000 flags=0 hpage=4K\n"
	"memslot set as=0 slot=1 gpa=0x40000000 size=0x200000 hva=0x100040000000 flags=0 hpage=2M\n"
	"mode 4level\n"
	"control nxe=1 wp=1 smep=0 smap=0 pke=1 pse=0 ac=0\n"
	"pkru 0x4\n"
	"map 0x8000001000 -> 0x200000 size=4K leaf=P|W|U upper=P|W|U\n"
	"map 0x8000200000 -> 0x40000000 size=2M leaf=P|W|U|A|D upper=P|W|U\n"
	"pte T3[1] = 0x200067\n"
	"read 0x8000001234\n"
	"write 0x8000200010 user\n"
	"fetch 0x8000001000\n"
	"invlpg 0x8000001000\n"
	"memslot move as=0 slot=1 gpa=0x80000000\n"
	"memslot flags as=0 slot=1 flags=log\n"
	"generation as=0 jump=262142\n"
	"smm enter\n"
	"cr3 T5\n"
	"smm leave\n"
	"memslot delete as=0 slot=1\n"
	"read 0x8000001000 user\n";

static uint8_t rich[BUF_MAX];
static size_t rich_len;

static int setup_rich(void **state)
{
	static struct program prog;
	char err[256];

	if (program_parse(rich_text, "rich", &prog, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	rich_len = program_encode(&prog, rich, sizeof(rich));
	return 0;
}

static void assert_canonical(const uint8_t *bytes, size_t len)
{
	static struct program prog;
	static uint8_t again[BUF_MAX];

	program_decode(bytes, len, &prog);
	assert_int_equal(program_encode(&prog, again, sizeof(again)), len);
	assert_memory_equal(again, bytes, len);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random bytes (any bytes are a program), or the rich program. */
static size_t some_input(unsigned i, uint8_t *buf)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (i + 1);
	size_t len;

	if (i % 3 == 0) {
		memcpy(buf, rich, rich_len);
		return rich_len;
	}
	len = xorshift(&s) % 600;
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)xorshift(&s);
	return len;
}

static void test_outputs_canonical_and_bounded(void **state)
{
	static const size_t limits[] = { 1, 7, 40, 300, 4096, BUF_MAX };
	uint8_t buf[BUF_MAX];

	for (unsigned seed = 0; seed < SEEDS; seed++) {
		for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
			size_t len = some_input(seed, buf), max = limits[l];

			if (len > max)
				len = max;
			len = program_mutate(buf, len, max, seed);
			assert_true(len <= max);
			assert_canonical(buf, len);
		}
	}
}

static void test_every_kind_canonical_and_bounded(void **state)
{
	uint8_t buf[BUF_MAX];

	for (int kind = 0; kind < PM_COUNT; kind++) {
		for (unsigned seed = 0; seed < SEEDS / 4; seed++) {
			size_t len = some_input(seed, buf), max = seed % 2 ? 64 : BUF_MAX;

			if (len > max)
				len = max;
			len = program_mutate_as(kind, buf, len, max, seed);
			assert_true(len <= max);
			assert_canonical(buf, len);
		}
	}
}

static void test_deterministic(void **state)
{
	uint8_t a[BUF_MAX], b[BUF_MAX];

	for (unsigned seed = 0; seed < SEEDS; seed++) {
		size_t len = some_input(seed, a);
		size_t la, lb;

		memcpy(b, a, len);
		la = program_mutate(a, len, BUF_MAX, seed);
		lb = program_mutate(b, len, BUF_MAX, seed);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
	}
}

static void test_different_seeds_differ(void **state)
{
	uint8_t a[BUF_MAX], b[BUF_MAX];
	unsigned same = 0;

	for (unsigned seed = 0; seed < 100; seed++) {
		size_t la, lb;

		memcpy(a, rich, rich_len);
		memcpy(b, rich, rich_len);
		la = program_mutate(a, rich_len, BUF_MAX, seed);
		lb = program_mutate(b, rich_len, BUF_MAX, seed + 1000);
		same += la == lb && memcmp(a, b, la) == 0;
	}
	assert_true(same < 20);
}

/* program_mutate changes the program nearly every time (byte fallback included). */
static void test_mutate_changes_program(void **state)
{
	uint8_t buf[BUF_MAX];
	unsigned unchanged = 0;

	for (unsigned seed = 0; seed < SEEDS; seed++) {
		size_t len;

		memcpy(buf, rich, rich_len);
		len = program_mutate(buf, rich_len, BUF_MAX, seed);
		unchanged += len == rich_len && memcmp(buf, rich, len) == 0;
	}
	assert_true(unchanged < SEEDS / 50);
}

/* op_delta of mutate_rich: the op count may change either way. */
#define ANY_COUNT 2

/* Mutates the rich program with one kind; returns how many outputs differ and checks the
 * op count (op_delta: 0 same, +1 more, -1 fewer) and that only ops of the allowed kinds
 * changed (allowed_kinds == 0: any op may change). */
static unsigned mutate_rich(enum program_mutation kind, unsigned allowed_kinds, int op_delta)
{
	static struct program before, after;
	uint8_t buf[BUF_MAX];
	unsigned changed = 0;

	program_decode(rich, rich_len, &before);
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		size_t len;

		memcpy(buf, rich, rich_len);
		len = program_mutate_as(kind, buf, rich_len, BUF_MAX, seed);
		if (len == rich_len && memcmp(buf, rich, len) == 0)
			continue;
		changed++;
		program_decode(buf, len, &after);
		if (op_delta == 0 || allowed_kinds)
			assert_int_equal(after.n_ops, before.n_ops);
		else if (op_delta == 1)
			assert_true(after.n_ops > before.n_ops);
		else if (op_delta == -1)
			assert_true(after.n_ops < before.n_ops);
		if (!allowed_kinds)
			continue;
		for (uint32_t i = 0; i < after.n_ops; i++) {
			if (op_equal(&after.ops[i], &before.ops[i]))
				continue;
			assert_int_equal(after.ops[i].kind, before.ops[i].kind);
			assert_true(allowed_kinds & 1u << after.ops[i].kind);
		}
	}
	return changed;
}

#define KINDS(a) (1u << (a))

static void test_structural_kinds(void **state)
{
	assert_true(mutate_rich(PM_INSERT, 0, +1) > SEEDS * 9 / 10);
	assert_true(mutate_rich(PM_DELETE, 0, -1) > SEEDS * 9 / 10);
	assert_true(mutate_rich(PM_DUPLICATE, 0, +1) > SEEDS * 8 / 10);
	assert_true(mutate_rich(PM_SWAP, 0, 0) > SEEDS * 8 / 10);
}

static void test_field_kinds_touch_their_fields(void **state)
{
	assert_true(mutate_rich(PM_ENTRY_FLAGS, KINDS(OP_PTE) | KINDS(OP_MAP), 0) > SEEDS / 2);
	assert_true(mutate_rich(PM_GVA, KINDS(OP_MAP) | KINDS(OP_ACCESS) | KINDS(OP_INVLPG), 0) >
		    SEEDS / 2);
	assert_true(mutate_rich(PM_MEMSLOT, KINDS(OP_MEMSLOT_SET) | KINDS(OP_MEMSLOT_MOVE) |
					     KINDS(OP_MEMSLOT_FLAGS) | KINDS(OP_MEMSLOT_DELETE), 0) >
		    SEEDS / 2);
	assert_true(mutate_rich(PM_GEN_JUMP, KINDS(OP_GEN_JUMP), 0) > SEEDS / 2);
	assert_true(mutate_rich(PM_ACCESS, KINDS(OP_ACCESS), 0) > SEEDS * 9 / 10);
	/* A mode change moves later ops' clamps, so any op may change here. */
	assert_true(mutate_rich(PM_CONTROL, 0, 0) > SEEDS / 2);
	assert_true(mutate_rich(PM_BYTES, 0, ANY_COUNT) > SEEDS / 2);
}

/* A vCPU joins an access: it runs on another vCPU, in the same paging mode and CR3 table
 * as the access's own vCPU, and the program goes back to that vCPU afterwards. */
static void test_vcpu_join(void **state)
{
	static struct program before, after;
	uint8_t buf[BUF_MAX];
	unsigned joined = 0;

	program_decode(rich, rich_len, &before);
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		struct prog_state st;
		size_t len;
		bool other = false;

		memcpy(buf, rich, rich_len);
		len = program_mutate_as(PM_VCPU, buf, rich_len, BUF_MAX, seed);
		program_decode(buf, len, &after);
		assert_true(after.n_ops > before.n_ops);
		prog_state_init(&st);
		for (uint32_t i = 0; i < after.n_ops; i++) {
			if (st.vcpu != 0 && after.ops[i].kind == OP_ACCESS) {
				other = true;
				assert_int_equal(prog_state_mode(&st), PAGING_4LEVEL);
			}
			prog_state_after(&st, &after.ops[i]);
		}
		/* Every op of the original program still runs on vCPU 0. */
		assert_int_equal(st.vcpu, 0);
		joined += other;
	}
	assert_true(joined > SEEDS * 9 / 10);
}

/* Generation jumps land a few installs short of each wrap the model knows. */
static void test_gen_jump_near_wraps(void **state)
{
	static struct program prog;
	uint8_t buf[BUF_MAX];
	bool seen[3] = { false, false, false };

	for (unsigned seed = 0; seed < SEEDS; seed++) {
		size_t len;

		memcpy(buf, rich, rich_len);
		len = program_mutate_as(PM_GEN_JUMP, buf, rich_len, BUF_MAX, seed);
		program_decode(buf, len, &prog);
		for (uint32_t i = 0; i < prog.n_ops; i++) {
			uint32_t count = prog.ops[i].gen_jump.count;

			if (prog.ops[i].kind != OP_GEN_JUMP)
				continue;
			for (int w = 0; w < 3; w++)
				seen[w] |= count <= 1u << (18 + w) && count > (1u << (18 + w)) - 4;
		}
	}
	assert_true(seen[0] && seen[1] && seen[2]);
}

static size_t program_of(const char *text, uint8_t *buf)
{
	static struct program prog;
	char err[256];

	assert_int_equal(program_parse(text, "parent", &prog, err, sizeof(err)), 0);
	return program_encode(&prog, buf, BUF_MAX);
}

static bool has_kind(const struct program *prog, enum op_kind kind)
{
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (prog->ops[i].kind == kind)
			return true;
	return false;
}

static void test_cross_over_mixes_parents(void **state)
{
	static struct program child;
	uint8_t a[BUF_MAX], b[BUF_MAX], out[BUF_MAX], again[BUF_MAX];
	size_t la = program_of("read 0x40000000\nwrite 0x40001000\nread 0x40002000 user\n"
			       "fetch 0x40003000\nread 0x40004000\nread 0x40005000\n", a);
	size_t lb = program_of("pte T1[1] = 0x200067\npte T1[2] = 0x201067\npte T2[3] = 0x7\n"
			       "pte T2[4] = 0x3\npte T3[5] = 0x1\n", b);
	unsigned mixed = 0;

	for (unsigned seed = 0; seed < SEEDS; seed++) {
		size_t n = program_cross_over(a, la, b, lb, out, BUF_MAX, seed);
		size_t m = program_cross_over(a, la, b, lb, again, BUF_MAX, seed);

		assert_int_equal(n, m);
		assert_memory_equal(out, again, n);
		assert_canonical(out, n);
		program_decode(out, n, &child);
		mixed += has_kind(&child, OP_ACCESS) && has_kind(&child, OP_PTE);
		assert_true(program_cross_over(a, la, b, lb, out, 12, seed) <= 12);
	}
	assert_true(mixed > SEEDS / 4);
}

static void test_empty_and_tiny_inputs(void **state)
{
	uint8_t buf[BUF_MAX] = { 0 };

	for (unsigned seed = 0; seed < 100; seed++) {
		size_t len = program_mutate(buf, 0, BUF_MAX, seed);

		assert_true(len > 0);
		assert_canonical(buf, len);
		assert_int_equal(program_mutate(buf, 0, 0, seed), 0);
		assert_int_equal(program_cross_over(buf, 0, buf, 0, buf, BUF_MAX, seed), 0);
	}
}

static void test_afl_glue(void **state)
{
	void *m = afl_custom_init(NULL, 7);
	uint8_t input[BUF_MAX], other[BUF_MAX];

	assert_non_null(m);
	for (unsigned i = 0; i < SEEDS; i++) {
		size_t len = some_input(i, input), other_len = some_input(i + 1, other);
		size_t max = i % 2 ? 50 : BUF_MAX;
		uint8_t *out = NULL;
		size_t n = afl_custom_fuzz(m, input, len, &out, i % 3 ? other : NULL, other_len, max);

		assert_non_null(out);
		assert_true(out != input && n <= max);
		assert_canonical(out, n);
		assert_true(strlen(afl_custom_describe(m, 8)) < 8);
	}
	afl_custom_deinit(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outputs_canonical_and_bounded),
		cmocka_unit_test(test_every_kind_canonical_and_bounded),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_different_seeds_differ),
		cmocka_unit_test(test_mutate_changes_program),
		cmocka_unit_test(test_structural_kinds),
		cmocka_unit_test(test_field_kinds_touch_their_fields),
		cmocka_unit_test(test_vcpu_join),
		cmocka_unit_test(test_gen_jump_near_wraps),
		cmocka_unit_test(test_cross_over_mixes_parents),
		cmocka_unit_test(test_empty_and_tiny_inputs),
		cmocka_unit_test(test_afl_glue),
	};

	return cmocka_run_group_tests(tests, setup_rich, NULL);
}
