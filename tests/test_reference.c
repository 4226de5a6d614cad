/* The Unicorn reference against expectations written by hand from the Intel SDM vol. 3
 * ch. 4 (paging) and §4.7 (#PF error code). Tests named quirk_* guard a workaround for a
 * Unicorn 2.0.1 quirk (see oracle/reference.c) and fail if it breaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../oracle/harness_layout.h"
#include "../oracle/reference.h"

#define P PT_PRESENT_MASK
#define W PT_WRITABLE_MASK
#define U PT_USER_MASK
#define A PT_ACCESSED_MASK
#define D PT_DIRTY_MASK
#define PS PT_PAGE_SIZE_MASK
#define NX PT64_NX_MASK
#define PRW (P | W)
#define PRWU (P | W | U)

#define POOL_HVA 0x7f0000000000ull
#define DATA_GPA 0x40000000ull
#define DATA_SIZE 0x40000000ull
#define DATA_HVA 0x7f4000000000ull
#define FRAME 0x40005000ull

/* 4-level: PML4 index 1, PDPT index 2, PD index 3, PT index 4, offset 0x567. */
#define G4 0x0000008080604567ull
/* 5-level: PML5 index 1, then as G4. */
#define G5 (0x0001000000000000ull | G4)
/* PAE: PDPTE index 1, PD index 3, PT index 4, offset 0x567. */
#define GPAE 0x40604567ull
/* 32-bit: PD index 0x101, PT index 4, offset 0x567. */
#define G32 0x40404567ull

struct fixture {
	struct ref_memory *mem;
	struct ref_engine *engine[PAGING_MODE_COUNT];
};

static struct fixture *fx;

static gpa_t T(unsigned n)
{
	return table_pool_gpa(n);
}

static int group_setup(void **state)
{
	char err[256];

	fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->mem = ref_memory_new();
	if (!fx->mem)
		return -1;
	for (int mode = PAGING_NONE; mode < PAGING_MODE_COUNT; mode++) {
		fx->engine[mode] = ref_engine_new(mode, fx->mem, err, sizeof(err));
		if (!fx->engine[mode]) {
			fprintf(stderr, "mode %d: %s\n", mode, err);
			return -1;
		}
	}
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	for (int mode = PAGING_NONE; mode < PAGING_MODE_COUNT; mode++)
		ref_engine_free(fx->engine[mode]);
	ref_memory_free(fx->mem);
	free(fx);
	return 0;
}

/* Fresh guest memory per test: the table pool and a data region. */
static int setup(void **state)
{
	ref_memory_reset(fx->mem);
	if (ref_memory_set_region(fx->mem, 0, 0, TABLE_POOL_BASE, TABLE_POOL_PAGES * PAGE_SIZE,
				  POOL_HVA, false))
		return -1;
	return ref_memory_set_region(fx->mem, 0, 1, DATA_GPA, DATA_SIZE, DATA_HVA, false);
}

static void set64(gpa_t gpa, uint64_t v)
{
	assert_int_equal(ref_memory_write(fx->mem, 0, gpa, &v, sizeof(v)), 0);
}

static uint64_t get64(gpa_t gpa)
{
	uint64_t v;

	assert_int_equal(ref_memory_read(fx->mem, 0, gpa, &v, sizeof(v)), 0);
	return v;
}

static void set32(gpa_t gpa, uint32_t v)
{
	assert_int_equal(ref_memory_write(fx->mem, 0, gpa, &v, sizeof(v)), 0);
}

static uint32_t get32(gpa_t gpa)
{
	uint32_t v;

	assert_int_equal(ref_memory_read(fx->mem, 0, gpa, &v, sizeof(v)), 0);
	return v;
}

static struct ref_cpu_state cpu_for(enum paging_mode mode)
{
	return (struct ref_cpu_state){ .mode = mode, .cr3 = T(0) };
}

static struct ref_result check(const struct ref_cpu_state *cpu, int cpl, enum ref_access_kind kind,
			       gva_t gva)
{
	struct ref_result r;
	struct ref_engine *e = fx->engine[cpu->mode];
	int rc = ref_check(e, cpu, cpl, kind, gva, &r);

	if (rc)
		fail_msg("ref_check(%#llx): %s", (unsigned long long)gva, ref_engine_error(e));
	return r;
}

static void expect_ok(const struct ref_cpu_state *cpu, int cpl, enum ref_access_kind kind,
		      gva_t gva, gpa_t gpa)
{
	struct ref_result r = check(cpu, cpl, kind, gva);

	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, gpa);
}

static void expect_pf(const struct ref_cpu_state *cpu, int cpl, enum ref_access_kind kind,
		      gva_t gva, uint32_t error_code)
{
	struct ref_result r = check(cpu, cpl, kind, gva);

	assert_int_equal(r.outcome, REF_PAGE_FAULT);
	assert_int_equal(r.error_code, error_code);
	assert_int_equal(r.cr2, gva);
	assert_int_equal(r.n_ad_writes, 0);
}

/* G4 through T0 (PML4) -> T1 -> T2 -> T3 (PT) -> leaf. */
static void map_g4(uint64_t upper, uint64_t leaf)
{
	set64(T(0) + 1 * 8, T(1) | upper);
	set64(T(1) + 2 * 8, T(2) | upper);
	set64(T(2) + 3 * 8, T(3) | upper);
	set64(T(3) + 4 * 8, leaf);
}

/* ---- 4-level ---- */

static void test_4level_read_sets_accessed(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;
	const gpa_t entry_gpa[4] = { T(0) + 8, T(1) + 16, T(2) + 24, T(3) + 32 };
	const uint64_t entry[4] = { T(1) | PRWU, T(2) | PRWU, T(3) | PRWU, FRAME | PRWU };

	map_g4(PRWU, FRAME | PRWU);
	r = check(&cpu, 0, REF_READ, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_false(r.read_unbacked);
	assert_int_equal(r.n_entries, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.entries[i].gpa, entry_gpa[i]);
		assert_int_equal(r.entries[i].value, entry[i]);
		assert_true(r.entries[i].backed);
		/* §4.8: A set in every entry used; D only on a write. */
		assert_int_equal(get64(entry_gpa[i]), entry[i] | A);
	}
	assert_int_equal(r.n_ad_writes, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.ad_writes[i].gpa, entry_gpa[i]);
		assert_int_equal(r.ad_writes[i].value, (uint32_t)(entry[i] | A));
	}
}

static void test_4level_write_sets_dirty(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	map_g4(PRWU | A, FRAME | PRWU | A);
	r = check(&cpu, 0, REF_WRITE, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(get64(T(3) + 32), FRAME | PRWU | A | D);
	assert_int_equal(get64(T(2) + 24), T(3) | PRWU | A);
	assert_int_equal(r.n_ad_writes, 1);
	assert_int_equal(r.ad_writes[0].gpa, T(3) + 32);
	assert_int_equal(r.ad_writes[0].value, (uint32_t)(FRAME | PRWU | A | D));
	/* Reads and fetches never set D. */
	set64(T(3) + 32, FRAME | PRWU | A);
	r = check(&cpu, 0, REF_FETCH, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.n_ad_writes, 0);
	assert_int_equal(get64(T(3) + 32), FRAME | PRWU | A);
}

static void test_4level_not_present(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | W | U);
	expect_pf(&cpu, 0, REF_READ, G4, 0);
	expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_WRITE_MASK);
	expect_pf(&cpu, 3, REF_READ, G4, PFERR_USER_MASK);
	expect_pf(&cpu, 3, REF_WRITE, G4, PFERR_USER_MASK | PFERR_WRITE_MASK);
	/* I/D is reported only with NXE or SMEP (§4.7). */
	expect_pf(&cpu, 0, REF_FETCH, G4, 0);
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_FETCH_MASK);
	/* A not-present upper level faults the same way. */
	cpu.efer_nxe = false;
	set64(T(1) + 16, T(2) | W | U);
	expect_pf(&cpu, 0, REF_READ, G4, 0);
}

static void test_4level_user_access_to_supervisor_page(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRW);
	expect_pf(&cpu, 3, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_USER_MASK);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	/* U must be set at every level (§4.6.1). */
	map_g4(PRW, FRAME | PRWU);
	set64(T(0) + 8, T(1) | PRWU);
	expect_pf(&cpu, 3, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_USER_MASK);
}

static void test_4level_read_only_and_wp(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | P | U);
	cpu.cr0_wp = true;
	expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	cpu.cr0_wp = false;
	expect_ok(&cpu, 0, REF_WRITE, G4, FRAME | 0x567);
	expect_pf(&cpu, 3, REF_WRITE, G4,
		  PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK);
	/* R/W clear at an upper level counts too. */
	map_g4(P | U, FRAME | PRWU);
	cpu.cr0_wp = true;
	expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
}

static void test_4level_nx(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	map_g4(PRWU, FRAME | PRWU | NX);
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	expect_pf(&cpu, 3, REF_FETCH, G4,
		  PFERR_PRESENT_MASK | PFERR_FETCH_MASK | PFERR_USER_MASK);
	r = check(&cpu, 0, REF_READ, G4);
	assert_int_equal(r.outcome, REF_OK);
	/* The traced leaf is the whole 8-byte entry, NX included. */
	assert_int_equal(r.entries[3].value, FRAME | PRWU | NX);
	/* Without NXE, bit 63 is reserved (§4.5.4). */
	cpu.efer_nxe = false;
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	/* XD in an upper level applies to the whole range. */
	map_g4(PRWU, FRAME | PRWU);
	set64(T(1) + 16, T(2) | PRWU | NX);
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
}

static void test_4level_reserved_address_bit(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	const uint32_t rsvd = PFERR_PRESENT_MASK | PFERR_RSVD_MASK;

	/* MAXPHYADDR 40: bits 51:40 are reserved. */
	map_g4(PRWU, FRAME | PRWU | (1ull << 51));
	expect_pf(&cpu, 0, REF_READ, G4, rsvd);
	expect_pf(&cpu, 0, REF_WRITE, G4, rsvd | PFERR_WRITE_MASK);
	expect_pf(&cpu, 3, REF_READ, G4, rsvd | PFERR_USER_MASK);
	/* Bit 39 is an address bit. */
	map_g4(PRWU, FRAME | PRWU | (1ull << 39));
	expect_ok(&cpu, 0, REF_READ, G4, (1ull << 39) | FRAME | 0x567);
	/* PS is reserved in a PML4E. */
	map_g4(PRWU, FRAME | PRWU);
	set64(T(0) + 8, T(1) | PRWU | PS);
	expect_pf(&cpu, 0, REF_READ, G4, rsvd);
}

static void test_4level_smep(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU);
	cpu.cr4_smep = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	expect_ok(&cpu, 3, REF_FETCH, G4, FRAME | 0x567);
	map_g4(PRWU, FRAME | PRW);
	expect_ok(&cpu, 0, REF_FETCH, G4, FRAME | 0x567);
}

/* Also guards Unicorn issue #1273: CR4.SMAP written by uc_reg_write is not enforced;
 * the engine sets it by a guest MOV CR4. */
static void test_4level_smap(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU);
	cpu.cr4_smap = true;
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK);
	expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	/* SMAP does not restrict fetches, nor user-mode accesses. */
	expect_ok(&cpu, 0, REF_FETCH, G4, FRAME | 0x567);
	expect_ok(&cpu, 3, REF_READ, G4, FRAME | 0x567);
	cpu.rflags_ac = true;
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	expect_ok(&cpu, 0, REF_WRITE, G4, FRAME | 0x567);
	/* Supervisor pages are not affected. */
	cpu.rflags_ac = false;
	map_g4(PRWU, FRAME | PRW);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
}

/* Also guards the Icelake-Server CPU model: the default model drops CR4.PKE. */
static void test_4level_protection_keys(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	const uint64_t key5 = 5ull << PT64_PKEY_SHIFT;

	map_g4(PRWU, FRAME | PRWU | key5);
	cpu.cr4_pke = true;
	cpu.pkru = 1u << (2 * 5); /* AD for key 5 */
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PK_MASK | PFERR_PRESENT_MASK);
	expect_pf(&cpu, 3, REF_READ, G4, PFERR_PK_MASK | PFERR_PRESENT_MASK | PFERR_USER_MASK);
	/* Keys do not apply to fetches (§4.6.2). */
	expect_ok(&cpu, 3, REF_FETCH, G4, FRAME | 0x567);
	cpu.pkru = 1u << (2 * 5 + 1); /* WD for key 5 */
	cpu.cr0_wp = true;
	expect_pf(&cpu, 0, REF_WRITE, G4,
		  PFERR_PK_MASK | PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	expect_pf(&cpu, 3, REF_WRITE, G4,
		  PFERR_PK_MASK | PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	/* WD binds supervisor writes only with CR0.WP. */
	cpu.cr0_wp = false;
	expect_ok(&cpu, 0, REF_WRITE, G4, FRAME | 0x567);
	/* Other keys, supervisor pages and PKE=0 are unaffected. */
	cpu.pkru = ~(3u << (2 * 5));
	expect_ok(&cpu, 3, REF_WRITE, G4, FRAME | 0x567);
	cpu.pkru = 3u << (2 * 5);
	map_g4(PRWU, FRAME | PRW | key5);
	expect_ok(&cpu, 0, REF_WRITE, G4, FRAME | 0x567);
	map_g4(PRWU, FRAME | PRWU | key5);
	cpu.cr4_pke = false;
	expect_ok(&cpu, 3, REF_WRITE, G4, FRAME | 0x567);
}

static void test_4level_large_pages(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	/* 2 MiB: PDE with PS; offset is gva bits 20:0; bit 12 is PAT, not address. */
	map_g4(PRWU, 0);
	set64(T(2) + 24, 0x40200000ull | PRWU | PS | (1ull << 12));
	r = check(&cpu, 0, REF_WRITE, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, 0x40200000ull + (G4 & 0x1fffff));
	assert_int_equal(r.leaf_level, PT_DIRECTORY_LEVEL);
	assert_int_equal(r.n_entries, 3);
	assert_int_equal(get64(T(2) + 24), 0x40200000ull | PRWU | PS | (1ull << 12) | A | D);
	/* Bits 20:13 of a 2 MiB PDE are reserved. */
	set64(T(2) + 24, 0x40200000ull | PRWU | PS | (1ull << 13));
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	/* 1 GiB: PDPTE with PS; offset is gva bits 29:0. */
	set64(T(1) + 16, 0x80000000ull | PRWU | PS);
	r = check(&cpu, 0, REF_READ, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, 0x80000000ull + (G4 & 0x3fffffff));
	assert_int_equal(r.leaf_level, PT_PDPE_LEVEL);
	assert_int_equal(r.n_entries, 2);
	set64(T(1) + 16, 0x80000000ull | PRWU | PS | (1ull << 20));
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
}

/* Also guards Unicorn issues #439/#441 (an unmapped gva number is rejected before the
 * walk): the engine's MMIO region must cover non-canonical gvas and the top page. */
static void test_4level_canonical(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;
	const gva_t top = 0xfffffffffffff123ull;

	r = check(&cpu, 0, REF_READ, 0x0000800000000000ull);
	assert_int_equal(r.outcome, REF_GP_FAULT);
	assert_int_equal(r.n_entries, 0);
	r = check(&cpu, 3, REF_WRITE, 0xffff7fffffffffffull);
	assert_int_equal(r.outcome, REF_GP_FAULT);
	r = check(&cpu, 0, REF_FETCH, 0x8000000000000000ull);
	assert_int_equal(r.outcome, REF_GP_FAULT);
	set64(T(0) + 511 * 8, T(1) | PRWU);
	set64(T(1) + 511 * 8, T(2) | PRWU);
	set64(T(2) + 511 * 8, T(3) | PRWU);
	set64(T(3) + 511 * 8, FRAME | PRWU);
	expect_ok(&cpu, 0, REF_READ, top, FRAME | 0x123);
	expect_ok(&cpu, 3, REF_WRITE, top, FRAME | 0x123);
	expect_ok(&cpu, 0, REF_FETCH, top, FRAME | 0x123);
}

static void test_4level_self_referencing_table(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	/* PML4 index 1, PDPT index 1, PD index 3, PT index 4. */
	const gva_t gva = (1ull << 39) | (1ull << 30) | (3ull << 21) | (4ull << 12) | 0x567;
	struct ref_result r;

	/* PML4[1] points back at the PML4, which is then read again as the PDPT. */
	set64(T(0) + 8, T(0) | PRWU);
	set64(T(0) + 24, T(3) | PRWU);
	set64(T(3) + 32, FRAME | PRWU);
	r = check(&cpu, 0, REF_READ, gva);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.n_entries, 4);
	assert_int_equal(r.entries[0].gpa, T(0) + 8);
	assert_int_equal(r.entries[1].gpa, T(0) + 8);
	assert_int_equal(r.entries[2].gpa, T(0) + 24);
	assert_int_equal(r.entries[3].gpa, T(3) + 32);
	assert_int_equal(r.entries[1].value & ~A, T(0) | PRWU);
	assert_int_equal(get64(T(0) + 8), T(0) | PRWU | A);
}

static void test_4level_unbacked_tables(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	/* A PD outside every region reads as all-ones: P=1 with reserved bits 51:40. */
	map_g4(PRWU, FRAME | PRWU);
	set64(T(1) + 16, 0x90000000ull | PRWU);
	r = check(&cpu, 0, REF_READ, G4);
	assert_int_equal(r.outcome, REF_PAGE_FAULT);
	assert_int_equal(r.error_code, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	assert_int_equal(r.n_entries, 3);
	assert_int_equal(r.entries[2].gpa, 0x90000000ull + 24);
	assert_int_equal(r.entries[2].value, ~0ull);
	assert_false(r.entries[2].backed);
	assert_true(r.entries[1].backed);
	assert_true(r.read_unbacked);
	/* A table in the harness's low memory is outside every memslot too. */
	set64(T(1) + 16, 0x5000ull | PRWU);
	r = check(&cpu, 0, REF_READ, G4);
	assert_true(r.read_unbacked);
	assert_int_equal(r.n_entries, 2);
	set64(T(1) + 16, 0x11000ull | PRWU);
	r = check(&cpu, 0, REF_READ, G4);
	assert_true(r.read_unbacked);
	assert_false(r.entries[2].backed);
	/* Backed again: nothing unbacked is reported. */
	set64(T(1) + 16, T(2) | PRWU);
	r = check(&cpu, 0, REF_READ, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_false(r.read_unbacked);
}

/* Guards the roll-back of QEMU's A bits on faulting walks (it sets non-leaf A while
 * descending, and A on a 1 GiB leaf before checking it); KVM sets none. */
static void test_4level_faulting_walk_keeps_memory(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | W | U);
	expect_pf(&cpu, 0, REF_READ, G4, 0);
	assert_int_equal(get64(T(0) + 8), T(1) | PRWU);
	assert_int_equal(get64(T(1) + 16), T(2) | PRWU);
	assert_int_equal(get64(T(2) + 24), T(3) | PRWU);
	assert_int_equal(get64(T(3) + 32), FRAME | W | U);
	set64(T(1) + 16, 0x80000000ull | P | U | PS);
	cpu.cr0_wp = true;
	expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	assert_int_equal(get64(T(1) + 16), 0x80000000ull | P | U | PS);
	assert_int_equal(get64(T(0) + 8), T(1) | PRWU);
}

/* KVM's walker skips A/D updates to entries in read-only memory. */
static void test_4level_read_only_tables_get_no_ad(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	map_g4(PRWU, FRAME | PRWU);
	assert_int_equal(ref_memory_set_region(fx->mem, 0, 0, TABLE_POOL_BASE,
					       TABLE_POOL_PAGES * PAGE_SIZE, POOL_HVA, true),
			 0);
	r = check(&cpu, 0, REF_WRITE, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.n_ad_writes, 0);
	assert_int_equal(get64(T(3) + 32), FRAME | PRWU);
}

/* ---- 5-level ---- */

static void test_5level_walk(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_5LEVEL);
	struct ref_result r;

	set64(T(0) + 8, T(4) | PRWU);
	set64(T(4) + 8, T(1) | PRWU);
	set64(T(1) + 16, T(2) | PRWU);
	set64(T(2) + 24, T(3) | PRWU);
	set64(T(3) + 32, FRAME | PRWU);
	r = check(&cpu, 0, REF_READ, G5);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.n_entries, 5);
	assert_int_equal(r.entries[0].gpa, T(0) + 8);
	assert_int_equal(r.entries[1].gpa, T(4) + 8);
	assert_int_equal(r.entries[4].gpa, T(3) + 32);
	assert_int_equal(get64(T(0) + 8), T(4) | PRWU | A);
	expect_pf(&cpu, 3, REF_WRITE, G5 + 0x1000,
		  PFERR_USER_MASK | PFERR_WRITE_MASK);
	/* 57-bit canonical: bits 63:57 copy bit 56. */
	r = check(&cpu, 0, REF_READ, 0x0100000000000000ull);
	assert_int_equal(r.outcome, REF_GP_FAULT);
	/* PS is reserved in a PML5E. */
	set64(T(0) + 8, T(4) | PRWU | PS);
	expect_pf(&cpu, 0, REF_READ, G5, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
}

/* ---- PAE ---- */

/* Guards the PDPTE-register model: QEMU 5.0 re-reads PDPTEs from memory on every walk;
 * the engine must answer from ref_cpu_state.pdptrs. */
static void test_pae_pdpte_registers_win(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_PAE);
	struct ref_result r;

	/* Memory says PDPTE 1 -> T5 -> T6 -> 0x50000000; the register says T1. */
	set64(T(0) + 8, T(5) | P);
	set64(T(5) + 24, T(6) | PRWU);
	set64(T(6) + 32, 0x50000000ull | PRWU);
	cpu.pdptrs[1] = T(1) | P;
	set64(T(1) + 24, T(2) | PRWU);
	set64(T(2) + 32, FRAME | PRWU);
	r = check(&cpu, 0, REF_READ, GPAE);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_int_equal(r.n_entries, 3);
	assert_int_equal(r.entries[0].gpa, T(0) + 8);
	assert_int_equal(r.entries[0].value, T(1) | P);
	assert_int_equal(r.entries[1].gpa, T(1) + 24);
	/* PDPTEs have no A bit; the PDE and PTE get theirs. */
	assert_int_equal(get64(T(0) + 8), T(5) | P);
	assert_int_equal(get64(T(1) + 24), T(2) | PRWU | A);
	/* A not-present register faults although memory has a present PDPTE. */
	cpu.pdptrs[1] = T(1);
	expect_pf(&cpu, 0, REF_READ, GPAE, 0);
}

static void test_pae_paging(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_PAE);
	struct ref_result r;

	cpu.pdptrs[1] = T(1) | P;
	set64(T(1) + 24, T(2) | PRWU);
	set64(T(2) + 32, FRAME | PRWU | NX);
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, GPAE, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	cpu.efer_nxe = false;
	expect_pf(&cpu, 0, REF_READ, GPAE, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	/* 2 MiB page: gva bits 20:0 are the offset. */
	set64(T(1) + 24, 0x40400000ull | PRWU | PS);
	r = check(&cpu, 3, REF_WRITE, GPAE);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, 0x40400000ull + (GPAE & 0x1fffff));
	assert_int_equal(r.leaf_level, PT_DIRECTORY_LEVEL);
	assert_int_equal(get64(T(1) + 24), 0x40400000ull | PRWU | PS | A | D);
}

/* ---- 32-bit ---- */

static void test_32bit_4k(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_32);
	struct ref_result r;

	set32(T(0) + 0x101 * 4, (uint32_t)(T(1) | PRWU));
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | PRWU));
	r = check(&cpu, 0, REF_WRITE, G32);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_int_equal(r.n_entries, 2);
	assert_int_equal(r.entries[0].gpa, T(0) + 0x101 * 4);
	assert_int_equal(r.entries[0].value, T(1) | PRWU);
	assert_int_equal(r.entries[1].value, FRAME | PRWU);
	assert_int_equal(get32(T(0) + 0x101 * 4), T(1) | PRWU | A);
	assert_int_equal(get32(T(1) + 4 * 4), FRAME | PRWU | A | D);
	expect_pf(&cpu, 3, REF_READ, G32 + 0x1000, PFERR_USER_MASK);
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | P));
	cpu.cr0_wp = true;
	expect_pf(&cpu, 0, REF_WRITE, G32, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	/* No NX in 32-bit paging: a fetch fault has no I/D bit without SMEP. */
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | W));
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, G32, 0);
	cpu.cr4_smep = true;
	expect_pf(&cpu, 0, REF_FETCH, G32, PFERR_FETCH_MASK);
}

static void test_32bit_pse(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_32);
	struct ref_result r;
	/* A PDE with PS whose address field is the PT T1 = 0x101000: as a 4 MiB page its
	 * frame bits 31:22 are 0 and bits 20:13 (PSE-36) are 0x80, i.e. gpa bit 39. */
	const uint32_t pde = (uint32_t)(T(1) | PRWU | PS);

	set32(T(0) + 0x101 * 4, pde);
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | PRWU));
	/* CR4.PSE = 0: PS is ignored, the PDE points to a page table. */
	r = check(&cpu, 0, REF_READ, G32);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_int_equal(r.n_entries, 2);
	cpu.cr4_pse = true;
	r = check(&cpu, 0, REF_READ, G32);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, (1ull << 39) | (G32 & 0x3fffff));
	assert_int_equal(r.leaf_level, PT_DIRECTORY_LEVEL);
	assert_int_equal(r.n_entries, 1);
	/* PSE-36 bits 20:13 = 0x12 -> gpa bits 39:32 = 0x12. */
	set32(T(0) + 0x101 * 4, 0x40000000u | (0x12u << 13) | PRWU | PS);
	expect_ok(&cpu, 3, REF_WRITE, G32, 0x1240000000ull | (G32 & 0x3fffff));
	/* Bit 21 of a 4 MiB PDE is reserved. */
	set32(T(0) + 0x101 * 4, 0x40000000u | (1u << 21) | PRWU | PS);
	expect_pf(&cpu, 0, REF_READ, G32, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
}

/* ---- no paging ---- */

static void test_nonpaging_identity(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_NONE);
	struct ref_result r;

	cpu.cr3 = 0;
	for (int kind = REF_READ; kind <= REF_FETCH; kind++) {
		r = check(&cpu, 0, kind, G32);
		assert_int_equal(r.outcome, REF_OK);
		assert_int_equal(r.gpa, G32);
		assert_int_equal(r.n_entries, 0);
		assert_int_equal(r.leaf_level, 0);
		expect_ok(&cpu, 3, kind, 0xfffffffful, 0xfffffffful);
	}
}

/* ---- side-effect-free probe ---- */

static struct ref_result probe(const struct ref_cpu_state *cpu, gva_t gva)
{
	struct ref_result r;
	struct ref_engine *e = fx->engine[cpu->mode];

	if (ref_probe(e, cpu, gva, &r))
		fail_msg("ref_probe(%#llx): %s", (unsigned long long)gva, ref_engine_error(e));
	return r;
}

static void test_probe_translates_without_ad_writes(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	const gpa_t entry_gpa[4] = { T(0) + 8, T(1) + 16, T(2) + 24, T(3) + 32 };
	const uint64_t entry[4] = { T(1) | PRWU, T(2) | PRWU, T(3) | PRWU, FRAME | PRWU };
	struct ref_result r;

	map_g4(PRWU, FRAME | PRWU);
	r = probe(&cpu, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_int_equal(r.n_entries, 4);
	assert_int_equal(r.n_ad_writes, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.entries[i].gpa, entry_gpa[i]);
		assert_int_equal(r.entries[i].value, entry[i]);
		assert_int_equal(get64(entry_gpa[i]), entry[i]);
	}
	/* A 2 MiB leaf and a PAE walk (PDPTE from the register) leave memory alone too. */
	set64(T(2) + 24, 0x40200000ull | PRWU | PS);
	r = probe(&cpu, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, 0x40200000ull + (G4 & 0x1fffff));
	assert_int_equal(r.leaf_level, PT_DIRECTORY_LEVEL);
	assert_int_equal(get64(T(2) + 24), 0x40200000ull | PRWU | PS);
	cpu = cpu_for(PAGING_PAE);
	cpu.pdptrs[1] = T(1) | P;
	set64(T(1) + 24, T(2) | PRWU);
	set64(T(2) + 32, FRAME | PRWU);
	r = probe(&cpu, GPAE);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, FRAME | 0x567);
	assert_int_equal(r.n_entries, 3);
	assert_int_equal(r.entries[0].value, T(1) | P);
	assert_int_equal(get64(T(1) + 24), T(2) | PRWU);
	assert_int_equal(get64(T(2) + 32), FRAME | PRWU);
	/* The same walk as an access does set A. */
	expect_ok(&cpu, 0, REF_READ, GPAE, FRAME | 0x567);
	assert_int_equal(get64(T(2) + 32), FRAME | PRWU | A);
}

static void test_probe_reports_walk_faults(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;

	map_g4(PRWU, FRAME | W | U);
	r = probe(&cpu, G4);
	assert_int_equal(r.outcome, REF_PAGE_FAULT);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.n_entries, 4);
	assert_int_equal(r.n_ad_writes, 0);
	assert_int_equal(get64(T(0) + 8), T(1) | PRWU);
	set64(T(3) + 32, FRAME | PRWU | (1ull << 51));
	r = probe(&cpu, G4);
	assert_int_equal(r.outcome, REF_PAGE_FAULT);
	assert_int_equal(r.error_code, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	r = probe(&cpu, 0x0000800000000000ull);
	assert_int_equal(r.outcome, REF_GP_FAULT);
	assert_int_equal(ref_probe(NULL, &cpu, G4, &r), -1);
	assert_int_equal(ref_probe(fx->engine[PAGING_4LEVEL], NULL, G4, &r), -1);
}

/* A user page with protection key 5 (access disabled) and no R/W: a supervisor read
 * faults under SMAP and under PKE, a fetch under SMEP; the probe sees the translation. */
static void test_probe_ignores_access_controls(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	const uint64_t key5 = 5ull << PT64_PKEY_SHIFT;
	struct ref_result plain, r;

	map_g4(PRWU, FRAME | P | U | key5);
	plain = probe(&cpu, G4);
	assert_int_equal(plain.outcome, REF_OK);
	cpu.cr0_wp = true;
	cpu.cr4_smap = true;
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK);
	cpu.cr4_smap = false;
	cpu.cr4_pke = true;
	cpu.pkru = 1u << (2 * 5);
	expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_PK_MASK);
	cpu.cr4_smap = true;
	cpu.cr4_smep = true;
	cpu.rflags_ac = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	r = probe(&cpu, G4);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.gpa, plain.gpa);
	assert_int_equal(r.leaf_level, plain.leaf_level);
	assert_int_equal(r.n_entries, plain.n_entries);
	assert_memory_equal(r.entries, plain.entries, sizeof(r.entries));
	assert_int_equal(get64(T(3) + 32), FRAME | P | U | key5);
}

/* ---- Unicorn quirks ---- */

/* Unicorn 2.0.1 issue #1883: old_exception is never cleared, so a second fault would
 * come back as #DF and a third as a silent stop. */
static void test_quirk_consecutive_faults(void **state)
{
	struct ref_cpu_state cpu64 = cpu_for(PAGING_4LEVEL);
	struct ref_cpu_state cpu32 = cpu_for(PAGING_32);
	struct ref_result r;

	map_g4(PRWU, FRAME | W | U);
	for (int i = 0; i < 3; i++) {
		expect_pf(&cpu64, 0, REF_READ, G4, 0);
		r = check(&cpu64, 0, REF_READ, 0x0000800000000000ull);
		assert_int_equal(r.outcome, REF_GP_FAULT);
		expect_pf(&cpu64, 3, REF_WRITE, G4, PFERR_USER_MASK | PFERR_WRITE_MASK);
		expect_pf(&cpu32, 0, REF_READ, G32, 0);
		expect_pf(&cpu32, 0, REF_WRITE, G32, PFERR_WRITE_MASK);
	}
}

/* uc_context_restore and uc_ctl_flush_tlb leave QEMU's TLB alone (and uc_reg_write of
 * CR3 flushes nothing, #1273): the INVLPG in every stub must drop the previous
 * translation of the gva. */
static void test_quirk_no_stale_translation(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	expect_ok(&cpu, 3, REF_WRITE, G4, FRAME | 0x567);
	set64(T(3) + 32, 0x40009000ull | PRWU);
	expect_ok(&cpu, 0, REF_READ, G4, 0x40009567ull);
	expect_ok(&cpu, 3, REF_WRITE, G4, 0x40009567ull);
	set64(T(3) + 32, 0x40009000ull | PRW);
	expect_pf(&cpu, 3, REF_READ, G4, PFERR_PRESENT_MASK | PFERR_USER_MASK);
	set64(T(3) + 32, 0);
	expect_pf(&cpu, 0, REF_READ, G4, 0);
	/* A 2 MiB translation, then its PDE turned back into a table pointer. */
	set64(T(2) + 24, 0x40200000ull | PRWU | PS);
	expect_ok(&cpu, 0, REF_READ, G4, 0x40200000ull + (G4 & 0x1fffff));
	set64(T(2) + 24, T(3) | PRWU);
	set64(T(3) + 32, FRAME | PRWU);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
	/* A different root with the same gva. */
	cpu.cr3 = T(8);
	set64(T(8) + 8, T(1) | PRWU);
	set64(T(1) + 16, T(9) | PRWU);
	set64(T(9) + 24, T(10) | PRWU);
	set64(T(10) + 32, 0x4000b000ull | PRWU);
	expect_ok(&cpu, 0, REF_READ, G4, 0x4000b567ull);
}

/* Control bits come from guest MOVs in per-configuration snapshots (#1273): switching
 * back and forth between checks must always give that configuration's answer. */
static void test_quirk_configuration_switches(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | P | U);
	for (int i = 0; i < 3; i++) {
		cpu.cr0_wp = true;
		cpu.cr4_smap = false;
		expect_pf(&cpu, 0, REF_WRITE, G4, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
		cpu.cr0_wp = false;
		expect_ok(&cpu, 0, REF_WRITE, G4, FRAME | 0x567);
		cpu.cr4_smap = true;
		expect_pf(&cpu, 0, REF_READ, G4, PFERR_PRESENT_MASK);
		cpu.rflags_ac = true;
		expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
		cpu.rflags_ac = false;
	}
}

/* EFER.NXE cannot be set through WRMSR/uc_reg_write in 2.0.1; the snapshot is patched.
 * Without the patch a fetch of an XD page succeeds or reports RSVD. */
static void test_quirk_nxe_patched(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU | NX);
	for (int i = 0; i < 2; i++) {
		cpu.efer_nxe = true;
		expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
		cpu.efer_nxe = false;
		expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	}
}

/* The post-run lookup of `until` walks and may fault; CR2 and the error code must come
 * from the fault itself, and the trace must hold only the test walk. */
static void test_quirk_until_lookup(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_32);
	struct ref_result r;

	set32(T(0) + 0x101 * 4, (uint32_t)(T(1) | PRWU));
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | PRWU));
	r = check(&cpu, 3, REF_READ, G32);
	assert_int_equal(r.outcome, REF_OK);
	assert_int_equal(r.n_entries, 2);
	assert_int_equal(r.entries[1].gpa, T(1) + 16);
	expect_pf(&cpu, 3, REF_WRITE, G32 + 0x2000, PFERR_USER_MASK | PFERR_WRITE_MASK);
	r = check(&cpu, 0, REF_READ, G32 + 0x2000);
	assert_int_equal(r.n_entries, 2);
	assert_int_equal(r.entries[1].gpa, T(1) + 6 * 4);
}

/* Resident KiB of Unicorn's translated-code buffers: the writable and executable
 * mappings of about 1 GiB (measured apart from the heap, which ASan inflates). */
static long code_buffers_resident_kib(void)
{
	char line[256];
	long total = 0;
	bool code_buffer = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3)
			code_buffer = !strcmp(perms, "rwxp") && end - start >= (512ul << 20);
		else if (code_buffer && !strncmp(line, "Rss:", 4))
			total += atol(line + 4);
	}
	fclose(f);
	return total;
}

/* Each successful fetch leaves a throwaway translated block in Unicorn's 1 GiB code
 * buffer until it fills; the engine replaces its Unicorn instance before that. Without
 * it, 150000 fetches make ~28 MiB of the buffer resident. Answers stay right across
 * the replacements (snapshots are rebuilt). */
static void test_quirk_fetch_code_growth(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	long before;

	map_g4(PRWU, FRAME | PRWU);
	expect_ok(&cpu, 0, REF_FETCH, G4, FRAME | 0x567);
	before = code_buffers_resident_kib();
	for (int i = 0; i < 150000; i++) {
		gva_t offset = (gva_t)(i & 0xff);

		cpu.cr0_wp = i & 1;
		expect_ok(&cpu, i & 2 ? 3 : 0, REF_FETCH, G4 + offset, FRAME + 0x567 + offset);
	}
	assert_true(code_buffers_resident_kib() - before < 12 * 1024);
	map_g4(PRWU, FRAME | PRWU | NX);
	cpu.efer_nxe = true;
	expect_pf(&cpu, 0, REF_FETCH, G4, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
}

/* More configurations than the snapshot cache holds: eviction keeps answers right. */
static void test_snapshot_cache_eviction(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU);
	for (unsigned root = 16; root < 64; root++) {
		set64(T(root) + 8, T(1) | PRWU);
		for (unsigned bits = 0; bits < 8; bits++) {
			cpu.cr3 = T(root);
			cpu.cr0_wp = bits & 1;
			cpu.cr4_smep = bits & 2;
			cpu.efer_nxe = bits & 4;
			expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
		}
	}
}

static void test_bad_input(void **state)
{
	struct ref_engine *e = fx->engine[PAGING_4LEVEL];
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r;
	char err[128] = "";

	assert_int_equal(ref_check(NULL, &cpu, 0, REF_READ, G4, &r), -1);
	assert_int_equal(ref_check(e, NULL, 0, REF_READ, G4, &r), -1);
	assert_int_equal(ref_check(e, &cpu, 0, REF_READ, G4, NULL), -1);
	assert_int_equal(ref_check(e, &cpu, 1, REF_READ, G4, &r), -1);
	assert_non_null(strstr(ref_engine_error(e), "CPL"));
	assert_int_equal(ref_check(e, &cpu, 0, (enum ref_access_kind)7, G4, &r), -1);
	assert_int_equal(ref_check(e, &cpu, 0, REF_READ, 0x1000, &r), -1);
	cpu.mode = PAGING_PAE;
	assert_int_equal(ref_check(e, &cpu, 0, REF_READ, G4, &r), -1);
	cpu = cpu_for(PAGING_4LEVEL);
	cpu.cr3 = 0x3000;
	assert_int_equal(ref_check(e, &cpu, 0, REF_READ, G4, &r), -1);
	cpu.cr3 = 1ull << 45;
	assert_int_equal(ref_check(e, &cpu, 0, REF_READ, G4, &r), -1);
	cpu = cpu_for(PAGING_32);
	assert_int_equal(ref_check(fx->engine[PAGING_32], &cpu, 0, REF_READ, 1ull << 32, &r), -1);
	assert_non_null(ref_engine_error(NULL));
	assert_null(ref_engine_new((enum paging_mode)9, fx->mem, err, sizeof(err)));
	assert_true(err[0] != 0);
	assert_null(ref_engine_new(PAGING_32, NULL, NULL, 0));
	/* The engine still works after refusing input. */
	map_g4(PRWU, FRAME | PRWU);
	cpu = cpu_for(PAGING_4LEVEL);
	expect_ok(&cpu, 0, REF_READ, G4, FRAME | 0x567);
}

static void test_access_instruction(void **state)
{
	static const uint8_t read[] = { 0x8a, 0x07 }, write[] = { 0x88, 0x17 },
			     fetch[] = { 0xff, 0xe7 };
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct ref_result r0, r3;
	size_t len;
	const uint8_t *insn;

	for (int mode = PAGING_NONE; mode < PAGING_MODE_COUNT; mode++) {
		insn = ref_access_insn(mode, REF_READ, &len);
		assert_int_equal(len, sizeof(read));
		assert_memory_equal(insn, read, len);
		insn = ref_access_insn(mode, REF_WRITE, &len);
		assert_int_equal(len, sizeof(write));
		assert_memory_equal(insn, write, len);
		insn = ref_access_insn(mode, REF_FETCH, &len);
		assert_int_equal(len, sizeof(fetch));
		assert_memory_equal(insn, fetch, len);
	}
	assert_null(ref_access_insn(PAGING_MODE_COUNT, REF_READ, &len));
	assert_int_equal(len, 0);
	map_g4(PRWU, FRAME | PRWU);
	r0 = check(&cpu, 0, REF_READ, G4);
	r3 = check(&cpu, 3, REF_READ, G4);
	assert_true(r0.insn_gva != 0 && r0.insn_gva < harness_reserved_gva_limit(PAGING_4LEVEL));
	assert_true(r3.insn_gva != 0 && r3.insn_gva != r0.insn_gva);
}

#define T_(name) cmocka_unit_test_setup(name, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_(test_4level_read_sets_accessed),
		T_(test_4level_write_sets_dirty),
		T_(test_4level_not_present),
		T_(test_4level_user_access_to_supervisor_page),
		T_(test_4level_read_only_and_wp),
		T_(test_4level_nx),
		T_(test_4level_reserved_address_bit),
		T_(test_4level_smep),
		T_(test_4level_smap),
		T_(test_4level_protection_keys),
		T_(test_4level_large_pages),
		T_(test_4level_canonical),
		T_(test_4level_self_referencing_table),
		T_(test_4level_unbacked_tables),
		T_(test_4level_faulting_walk_keeps_memory),
		T_(test_4level_read_only_tables_get_no_ad),
		T_(test_5level_walk),
		T_(test_pae_pdpte_registers_win),
		T_(test_pae_paging),
		T_(test_32bit_4k),
		T_(test_32bit_pse),
		T_(test_nonpaging_identity),
		T_(test_probe_translates_without_ad_writes),
		T_(test_probe_reports_walk_faults),
		T_(test_probe_ignores_access_controls),
		T_(test_quirk_consecutive_faults),
		T_(test_quirk_no_stale_translation),
		T_(test_quirk_configuration_switches),
		T_(test_quirk_nxe_patched),
		T_(test_quirk_until_lookup),
		T_(test_quirk_fetch_code_growth),
		T_(test_snapshot_cache_eviction),
		T_(test_bad_input),
		T_(test_access_instruction),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
