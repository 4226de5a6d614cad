/* The translation checker against verdicts worked out by hand from real guest tables
 * (walked by a real reference engine), the rules in oracle/translation_check.c and the
 * TLB allowance of the Intel SDM vol. 3 §4.10.4. Every allowed case has a rejected
 * sibling, so no rule passes vacuously. */
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
#include "../oracle/translation_check.h"

/* Entries are accessed unless a test says otherwise: the checker wants A on the leaf. */
#define A PT_ACCESSED_MASK
#define P (PT_PRESENT_MASK | A)
#define W PT_WRITABLE_MASK
#define U PT_USER_MASK
#define D PT_DIRTY_MASK
#define PS PT_PAGE_SIZE_MASK
#define NX PT64_NX_MASK
#define PRW (P | W)
#define PRWU (P | W | U)

#define AW ACC_WRITE_MASK
#define AU ACC_USER_MASK
#define AX ACC_EXEC_MASK

#define POOL_HVA 0x7f0000000000ull
#define DATA_GPA 0x40000000ull
#define DATA_SIZE 0x40000000ull
#define DATA_HVA 0x7f4000000000ull
#define MOVED_DATA_HVA 0x7f6000000000ull
/* 1 MiB of read-only memory right after the data region; nothing behind it. */
#define RO_GPA 0x80000000ull
#define RO_SIZE 0x100000ull
#define RO_HVA 0x7f8000000000ull
#define MMIO_GPA 0x90000000ull

#define FRAME 0x40005000ull
#define FRAME2 0x40009000ull

/* 4-level: PML4 index 1, PDPT index 2, PD index 3, PT index 4. */
#define G4 0x0000008080604000ull
#define G4_2M 0x0000008080600000ull
#define G4_1G 0x0000008080000000ull
/* PAE: PDPTE index 1, PD index 3, PT index 4. */
#define GPAE 0x40604000ull
/* 32-bit: PD index 0x101, PT index 4. */
#define G32 0x40404000ull

struct fixture {
	struct ref_memory *mem;
	struct ref_engine *engine[PAGING_MODE_COUNT];
	struct translation_checker *tc;
};

static struct fixture *fx;

static gpa_t T(unsigned n)
{
	return table_pool_gpa(n);
}

static int group_setup(void **state)
{
	static const enum paging_mode modes[] = { PAGING_32, PAGING_PAE, PAGING_4LEVEL };
	char err[256];

	fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->mem = ref_memory_new();
	if (!fx->mem)
		return -1;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		fx->engine[modes[i]] = ref_engine_new(modes[i], fx->mem, err, sizeof(err));
		if (!fx->engine[modes[i]]) {
			fprintf(stderr, "mode %d: %s\n", (int)modes[i], err);
			return -1;
		}
	}
	fx->tc = translation_checker_new(fx->mem);
	*state = fx;
	return fx->tc ? 0 : -1;
}

static int group_teardown(void **state)
{
	translation_checker_free(fx->tc);
	for (int mode = PAGING_NONE; mode < PAGING_MODE_COUNT; mode++)
		ref_engine_free(fx->engine[mode]);
	ref_memory_free(fx->mem);
	free(fx);
	return 0;
}

/* Fresh guest memory and no history per test. */
static int setup(void **state)
{
	ref_memory_reset(fx->mem);
	translation_checker_reset(fx->tc);
	if (ref_memory_set_region(fx->mem, 0, 0, TABLE_POOL_BASE, TABLE_POOL_PAGES * PAGE_SIZE,
				  POOL_HVA, false) ||
	    ref_memory_set_region(fx->mem, 0, 1, DATA_GPA, DATA_SIZE, DATA_HVA, false))
		return -1;
	return ref_memory_set_region(fx->mem, 0, 2, RO_GPA, RO_SIZE, RO_HVA, true);
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

/* G4 through T0 (PML4) -> T1 -> T2 -> T3 (PT) -> leaf. */
static void map_g4(uint64_t upper, uint64_t leaf)
{
	set64(T(0) + 1 * 8, T(1) | upper);
	set64(T(1) + 2 * 8, T(2) | upper);
	set64(T(2) + 3 * 8, T(3) | upper);
	set64(T(3) + 4 * 8, leaf);
}

/* The 2 MiB guest page at G4_2M, through T0 -> T1 -> T2. */
static void map_g4_2m(gpa_t frame)
{
	set64(T(0) + 1 * 8, T(1) | PRWU);
	set64(T(1) + 2 * 8, T(2) | PRWU);
	set64(T(2) + 3 * 8, frame | PRWU | PS | D);
}

static struct ref_cpu_state cpu_for(enum paging_mode mode)
{
	return (struct ref_cpu_state){ .mode = mode, .cr3 = T(0), .cr0_wp = true };
}

static hva_t hva_of(gpa_t gpa)
{
	if (gpa >= RO_GPA)
		return RO_HVA + (gpa - RO_GPA);
	return DATA_HVA + (gpa - DATA_GPA);
}

static struct model_translation translation(enum translation_source source, gva_t gva, int level,
					    gpa_t gpa, unsigned access)
{
	return (struct model_translation){
		.source = source,
		.cr3 = T(0),
		.gva = gva,
		.level = level,
		.gpa = gpa,
		.hva = hva_of(gpa),
		.access = access,
	};
}

static struct model_translation spte(gva_t gva, int level, gpa_t gpa, unsigned access)
{
	return translation(TRANSLATION_SPTE, gva, level, gpa, access);
}

static struct model_translation tlb(gva_t gva, int level, gpa_t gpa, unsigned access)
{
	return translation(TRANSLATION_TLB, gva, level, gpa, access);
}

static struct model_translation mmio(gva_t gva, gpa_t gpa, unsigned access)
{
	struct model_translation t = spte(gva, 1, gpa, access);

	t.mmio = true;
	t.hva = 0;
	return t;
}

static struct translation_verdict expect(const struct ref_cpu_state *cpu,
					 const struct model_translation *t,
					 enum translation_fault fault)
{
	struct translation_verdict v;
	bool allowed = translation_check(fx->tc, fx->engine[cpu->mode], cpu, t, &v);
	char text[160];

	if (v.fault != fault) {
		model_translation_format(t, text, sizeof(text));
		fail_msg("%s: %s, expected %s (%s)", text, translation_fault_name(v.fault),
			 translation_fault_name(fault), v.detail);
	}
	assert_int_equal(allowed, fault == TRANSLATION_OK);
	if (!allowed)
		assert_true(v.detail[0] != '\0');
	return v;
}

static struct translation_verdict expect_verdict(const struct ref_cpu_state *cpu,
						 struct model_translation t,
						 enum translation_fault fault)
{
	return expect(cpu, &t, fault);
}

static void expect_ok(const struct ref_cpu_state *cpu, struct model_translation t)
{
	expect(cpu, &t, TRANSLATION_OK);
}

static void expect_fault(const struct ref_cpu_state *cpu, struct model_translation t,
			 enum translation_fault fault)
{
	expect(cpu, &t, fault);
}

/* Allowed only through the TLB allowance. */
static void expect_stale_ok(const struct ref_cpu_state *cpu, struct model_translation t)
{
	struct translation_verdict v = expect(cpu, &t, TRANSLATION_OK);

	assert_non_null(strstr(v.detail, "stale"));
}

/* ---- the current guest tables ---- */

static void test_4k_translation_matches_guest(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation t = spte(G4, 1, FRAME, AW | AU | AX);
	struct translation_verdict v;

	map_g4(PRWU & ~A, FRAME | PRWU | D);
	v = expect(&cpu, &t, TRANSLATION_OK);
	assert_int_equal(v.guest.outcome, REF_OK);
	assert_int_equal(v.guest.gpa, FRAME);
	assert_int_equal(v.guest.leaf_level, PT_PAGE_TABLE_LEVEL);
	assert_int_equal(v.guest.n_entries, 4);
	assert_int_equal(v.guest.entries[3].gpa, T(3) + 32);
	/* The walk set no A bit. */
	assert_int_equal(get64(T(0) + 8), T(1) | (PRWU & ~A));
	assert_int_equal(get64(T(3) + 32), FRAME | PRWU | D);
	expect_fault(&cpu, spte(G4, 1, FRAME + PAGE_SIZE, AW | AU | AX), TRANSLATION_WRONG_GPA);
	expect_fault(&cpu, spte(G4 + PAGE_SIZE, 1, FRAME, 0), TRANSLATION_NOT_MAPPED);
}

static void test_large_translation_over_guest_4k_page(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU | D);
	set64(T(3), 0x40200000ull | PRWU | D); /* PT index 0: G4_2M -> 0x40200000 */
	expect_ok(&cpu, spte(G4_2M, 1, 0x40200000ull, AW | AU | AX));
	expect_fault(&cpu, spte(G4_2M, 2, 0x40200000ull, AW | AU | AX), TRANSLATION_WRONG_GPA);
}

static void test_translation_inside_guest_large_page(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4_2m(0x40200000ull);
	/* G4 is 0x4000 into the 2 MiB page. */
	expect_ok(&cpu, spte(G4, 1, 0x40204000ull, AW | AU | AX));
	expect_ok(&cpu, spte(G4_2M, 2, 0x40200000ull, AW | AU | AX));
	expect_fault(&cpu, spte(G4, 1, 0x40205000ull, AW | AU | AX), TRANSLATION_WRONG_GPA);
	/* A 1 GiB translation over the guest's 2 MiB page at PD index 0. */
	set64(T(2), 0x40000000ull | PRWU | PS | D);
	expect_ok(&cpu, spte(G4_1G, 2, 0x40000000ull, AW | AU | AX));
	expect_fault(&cpu, spte(G4_1G, 3, 0x40000000ull, AW | AU | AX), TRANSLATION_WRONG_GPA);
}

static void test_frame_must_be_the_backing(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation t = spte(G4, 1, FRAME, AU);

	map_g4(PRWU, FRAME | PRWU | D);
	expect(&cpu, &t, TRANSLATION_OK);
	t.hva += PAGE_SIZE;
	expect(&cpu, &t, TRANSLATION_WRONG_FRAME);
	/* Address space 1 (SMM) has no memory at FRAME. */
	t.hva -= PAGE_SIZE;
	t.as_id = 1;
	expect(&cpu, &t, TRANSLATION_WRONG_FRAME);
	/* A 2 MiB page at RO_GPA runs past the 1 MiB region: only 4K fits. */
	map_g4_2m(RO_GPA);
	expect_ok(&cpu, spte(G4_2M, 1, RO_GPA, AU));
	expect_fault(&cpu, spte(G4_2M, 2, RO_GPA, AU), TRANSLATION_WRONG_FRAME);
}

static void test_mmio_exactly_where_no_memory(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation t;

	map_g4(PRWU, MMIO_GPA | PRWU | D);
	expect_ok(&cpu, mmio(G4, MMIO_GPA, AW | AU));
	t = spte(G4, 1, MMIO_GPA, AU);
	t.hva = DATA_HVA;
	expect(&cpu, &t, TRANSLATION_WRONG_FRAME);
	map_g4(PRWU, FRAME | PRWU | D);
	expect_fault(&cpu, mmio(G4, FRAME, AU), TRANSLATION_WRONG_FRAME);
	/* MMIO sptes keep W and U only: X means nothing, W and U follow the guest. */
	cpu.efer_nxe = true;
	map_g4(PRWU, MMIO_GPA | PRW | NX);
	expect_ok(&cpu, mmio(G4, MMIO_GPA, AX));
	expect_fault(&cpu, mmio(G4, MMIO_GPA, AW), TRANSLATION_TOO_PERMISSIVE);
	expect_fault(&cpu, mmio(G4, MMIO_GPA, AU), TRANSLATION_TOO_PERMISSIVE);
}

/* ---- rights ---- */

static void test_write_needs_guest_dirty(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU | D, FRAME | PRWU);
	expect_ok(&cpu, spte(G4, 1, FRAME, AU | AX));
	/* D in a non-leaf entry does not count. */
	expect_fault(&cpu, spte(G4, 1, FRAME, AW), TRANSLATION_TOO_PERMISSIVE);
	set64(T(3) + 32, FRAME | PRWU | D);
	expect_ok(&cpu, spte(G4, 1, FRAME, AW | AU | AX));
}

static void test_write_needs_writable_memory(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, RO_GPA | PRWU | D);
	expect_ok(&cpu, spte(G4, 1, RO_GPA, AU | AX));
	expect_fault(&cpu, spte(G4, 1, RO_GPA, AW), TRANSLATION_TOO_PERMISSIVE);
}

static void test_user_needs_guest_user_at_every_level(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRW | D);
	expect_ok(&cpu, spte(G4, 1, FRAME, AW | AX));
	expect_fault(&cpu, spte(G4, 1, FRAME, AU), TRANSLATION_TOO_PERMISSIVE);
	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, spte(G4, 1, FRAME, AU));
	set64(T(1) + 16, T(2) | PRW);
	expect_fault(&cpu, spte(G4, 1, FRAME, AU), TRANSLATION_TOO_PERMISSIVE);
	/* W too is the AND of every level. */
	set64(T(1) + 16, T(2) | P | U);
	expect_ok(&cpu, spte(G4, 1, FRAME, AU));
	expect_fault(&cpu, spte(G4, 1, FRAME, AW | AU), TRANSLATION_TOO_PERMISSIVE);
}

static void test_exec_and_nx(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	cpu.efer_nxe = true;
	map_g4(PRWU, FRAME | PRWU | D | NX);
	expect_ok(&cpu, spte(G4, 1, FRAME, AW | AU));
	expect_fault(&cpu, spte(G4, 1, FRAME, AX), TRANSLATION_TOO_PERMISSIVE);
	/* XD at an upper level covers the whole range. */
	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, spte(G4, 1, FRAME, AX));
	set64(T(1) + 16, T(2) | PRWU | NX);
	expect_fault(&cpu, spte(G4, 1, FRAME, AX), TRANSLATION_TOO_PERMISSIVE);
	/* Without NXE bit 63 is reserved: nothing is mapped. */
	cpu.efer_nxe = false;
	expect_fault(&cpu, spte(G4, 1, FRAME, AU), TRANSLATION_NOT_MAPPED);
	set64(T(1) + 16, T(2) | PRWU);
	expect_ok(&cpu, spte(G4, 1, FRAME, AX));
}

/* FNAME(page_fault), CR0.WP=0: a supervisor write to a read-only page gets W without U
 * (and without X under SMEP). */
static void test_wp0_supervisor_write(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | P | U | D);
	expect_fault(&cpu, spte(G4, 1, FRAME, AW), TRANSLATION_TOO_PERMISSIVE);
	cpu.cr0_wp = false;
	expect_ok(&cpu, spte(G4, 1, FRAME, AW));
	expect_ok(&cpu, spte(G4, 1, FRAME, AW | AX));
	expect_fault(&cpu, spte(G4, 1, FRAME, AW | AU), TRANSLATION_TOO_PERMISSIVE);
	cpu.cr4_smep = true;
	expect_ok(&cpu, spte(G4, 1, FRAME, AW));
	expect_fault(&cpu, spte(G4, 1, FRAME, AW | AX), TRANSLATION_TOO_PERMISSIVE);
	/* Still needs D and writable memory. */
	set64(T(3) + 32, FRAME | P | U);
	expect_fault(&cpu, spte(G4, 1, FRAME, AW), TRANSLATION_TOO_PERMISSIVE);
	set64(T(3) + 32, RO_GPA | P | U | D);
	expect_ok(&cpu, spte(G4, 1, RO_GPA, 0));
	expect_fault(&cpu, spte(G4, 1, RO_GPA, AW), TRANSLATION_TOO_PERMISSIVE);
}

/* A processor caches no translation whose leaf has A=0 (SDM vol. 3 §4.8), so neither may
 * KVM (FNAME(prefetch_invalid_gpte)); a leaf in read-only memory counts as accessed, and
 * a TLB entry may outlive the A bit it was cached with. */
static void test_leaf_needs_accessed(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct translation_verdict v;

	map_g4(PRWU & ~A, FRAME | PRWU | D);
	expect_ok(&cpu, spte(G4, 1, FRAME, AW | AU | AX));
	expect_ok(&cpu, tlb(G4, 1, FRAME, AW | AU | AX));
	set64(T(3) + 32, FRAME | (PRWU & ~A) | D);
	v = expect_verdict(&cpu, spte(G4, 1, FRAME, AU), TRANSLATION_NOT_ACCESSED);
	assert_non_null(strstr(v.detail, "A=0"));
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AU));
	translation_checker_invlpg(fx->tc, 0, G4);
	expect_fault(&cpu, tlb(G4, 1, FRAME, AU), TRANSLATION_NOT_ACCESSED);
	/* The leaf in read-only memory: T3's entry moves to a table at RO_GPA (written while
	 * the region is writable; contents stay with the hva). */
	set64(T(2) + 3 * 8, RO_GPA | PRWU);
	assert_int_equal(ref_memory_set_region(fx->mem, 0, 2, RO_GPA, RO_SIZE, RO_HVA, false), 0);
	set64(RO_GPA + 4 * 8, FRAME | (PRWU & ~A));
	assert_int_equal(ref_memory_set_region(fx->mem, 0, 2, RO_GPA, RO_SIZE, RO_HVA, true), 0);
	expect_ok(&cpu, spte(G4, 1, FRAME, AU));
}

static void test_guest_walk_faults(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct translation_verdict v;
	struct model_translation t = spte(G4, 1, FRAME, 0);

	map_g4(PRWU, FRAME | W | U | D);
	v = expect(&cpu, &t, TRANSLATION_NOT_MAPPED);
	assert_int_equal(v.guest.outcome, REF_PAGE_FAULT);
	set64(T(3) + 32, FRAME | PRWU | D | (1ull << 51));
	expect(&cpu, &t, TRANSLATION_NOT_MAPPED);
	set64(T(3) + 32, FRAME | PRWU | D);
	expect(&cpu, &t, TRANSLATION_OK);
	/* KVM's walker fails on a table outside every memslot (KVM_TABLE_OUTSIDE_MEMSLOT). */
	set64(T(1) + 16, MMIO_GPA | PRWU);
	v = expect(&cpu, &t, TRANSLATION_NOT_MAPPED);
	assert_true(v.guest.read_unbacked);
	expect_fault(&cpu, spte(0x0000800000000000ull, 1, FRAME, 0), TRANSLATION_NOT_MAPPED);
}

/* ---- other paging modes ---- */

static void test_32bit_paging(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_32);
	struct translation_verdict v;
	struct model_translation t;

	set32(T(0) + 0x101 * 4, (uint32_t)(T(1) | PRWU));
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | PRWU | D));
	/* No XD in 32-bit paging: NXE changes nothing. */
	cpu.efer_nxe = true;
	expect_ok(&cpu, spte(G32, 1, FRAME, AW | AU | AX));
	expect_fault(&cpu, spte(G32, 1, FRAME2, AU), TRANSLATION_WRONG_GPA);
	set32(T(1) + 4 * 4, (uint32_t)(FRAME | PRW | D));
	expect_ok(&cpu, spte(G32, 1, FRAME, AW | AX));
	expect_fault(&cpu, spte(G32, 1, FRAME, AU), TRANSLATION_TOO_PERMISSIVE);
	/* A page table outside every memslot reads as all-ones: a present PTE for frame
	 * 0xfffff000 to the architecture, a failed walk to KVM. */
	set32(T(1) + 4 * 4, (uint32_t)(0xfffff000ull | PRWU | D));
	expect_ok(&cpu, mmio(G32, 0xfffff000ull, AU));
	set32(T(0) + 0x101 * 4, (uint32_t)(MMIO_GPA | PRWU));
	v = expect_verdict(&cpu, mmio(G32, 0xfffff000ull, AU), TRANSLATION_NOT_MAPPED);
	assert_int_equal(v.guest.outcome, REF_OK);
	assert_true(v.guest.read_unbacked);
	/* A 4 MiB page (PSE) holds two 2 MiB translations; its PDE lacks D. */
	cpu.cr4_pse = true;
	set32(T(0) + 0x101 * 4, (uint32_t)(0x40400000ull | PRWU | PS));
	t = spte(0x40600000ull, 2, 0x40600000ull, AU | AX);
	v = expect(&cpu, &t, TRANSLATION_OK);
	assert_int_equal(v.guest.leaf_level, PT_DIRECTORY_LEVEL);
	expect_fault(&cpu, spte(0x40400000ull, 2, 0x40600000ull, AU), TRANSLATION_WRONG_GPA);
	expect_fault(&cpu, spte(0x40600000ull, 2, 0x40600000ull, AW), TRANSLATION_TOO_PERMISSIVE);
}

/* The PDPTE has no R/W, U/S or XD bits and does not take part in the rights. */
static void test_pae_paging(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_PAE);

	cpu.pdptrs[1] = T(1) | P;
	set64(T(1) + 24, T(2) | PRWU);
	set64(T(2) + 32, FRAME | PRWU | D);
	cpu.efer_nxe = true;
	expect_ok(&cpu, spte(GPAE, 1, FRAME, AW | AU | AX));
	set64(T(1) + 24, T(2) | PRWU | NX);
	expect_ok(&cpu, spte(GPAE, 1, FRAME, AW | AU));
	expect_fault(&cpu, spte(GPAE, 1, FRAME, AX), TRANSLATION_TOO_PERMISSIVE);
	set64(T(1) + 24, T(2) | PRW);
	expect_fault(&cpu, spte(GPAE, 1, FRAME, AU), TRANSLATION_TOO_PERMISSIVE);
	cpu.pdptrs[1] = T(1);
	expect_fault(&cpu, spte(GPAE, 1, FRAME, 0), TRANSLATION_NOT_MAPPED);
}

static void test_nonpaging_identity(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_NONE);

	expect_ok(&cpu, spte(FRAME, 1, FRAME, AW | AU | AX));
	expect_ok(&cpu, spte(0x40200000ull, 2, 0x40200000ull, AW | AU | AX));
	expect_fault(&cpu, spte(FRAME, 1, FRAME2, AU), TRANSLATION_WRONG_GPA);
	expect_ok(&cpu, spte(RO_GPA, 1, RO_GPA, AU | AX));
	expect_fault(&cpu, spte(RO_GPA, 1, RO_GPA, AW), TRANSLATION_TOO_PERMISSIVE);
}

/* ---- the TLB allowance ---- */

static void test_stale_tlb_until_invlpg(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation other_vcpu = tlb(G4, 1, FRAME, AW | AU | AX);

	other_vcpu.vcpu_id = 1;
	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AW | AU | AX));
	set64(T(3) + 32, FRAME2 | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AW | AU | AX));
	expect_ok(&cpu, tlb(G4, 1, FRAME2, AW | AU | AX));
	/* A stale spte, a gpa never seen and another vCPU's history are not excused. */
	expect_fault(&cpu, spte(G4, 1, FRAME, AU), TRANSLATION_WRONG_GPA);
	expect_fault(&cpu, tlb(G4, 1, 0x4000a000ull, AU), TRANSLATION_WRONG_GPA);
	expect(&cpu, &other_vcpu, TRANSLATION_WRONG_GPA);
	/* Only INVLPG of an address in that page by that vCPU ends it. */
	translation_checker_invlpg(fx->tc, 1, G4);
	translation_checker_invlpg(fx->tc, 0, G4 + PAGE_SIZE);
	translation_checker_invlpg(fx->tc, 0, G4 - 1);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AW | AU | AX));
	translation_checker_invlpg(fx->tc, 0, G4 + 0xabc);
	expect_fault(&cpu, tlb(G4, 1, FRAME, AW | AU | AX), TRANSLATION_WRONG_GPA);
	expect_ok(&cpu, tlb(G4, 1, FRAME2, AW | AU | AX));
}

/* Fewer rights, then not present: the old entry stays usable until INVLPG. */
static void test_stale_tlb_keeps_old_rights(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AW | AU));
	set64(T(3) + 32, FRAME | P | U | D);
	expect_fault(&cpu, spte(G4, 1, FRAME, AW | AU), TRANSLATION_TOO_PERMISSIVE);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AW | AU));
	set64(T(3) + 32, 0);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AW | AU));
	translation_checker_invlpg(fx->tc, 0, G4);
	expect_fault(&cpu, tlb(G4, 1, FRAME, AW | AU), TRANSLATION_NOT_MAPPED);
}

/* History holds what the guest granted, not what the entry had, and no more. */
static void test_stale_tlb_grants_no_more_than_seen(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | P | U);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	set64(T(3) + 32, FRAME2 | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AU | AX));
	expect_fault(&cpu, tlb(G4, 1, FRAME, AW | AU), TRANSLATION_WRONG_GPA);
	/* Under CR0.WP=0 a supervisor W needs the D bit the guest did not have. */
	cpu.cr0_wp = false;
	expect_fault(&cpu, tlb(G4, 1, FRAME, AW), TRANSLATION_WRONG_GPA);
	/* More rights, then D, for the same gpa are remembered too. */
	cpu.cr0_wp = true;
	set64(T(3) + 32, FRAME | PRWU);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	set64(T(3) + 32, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	set64(T(3) + 32, FRAME2 | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AW | AU));
}

static void test_stale_large_tlb_until_flush_all(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4_2m(0x40200000ull);
	expect_ok(&cpu, tlb(G4_2M, 2, 0x40200000ull, AW | AU | AX));
	/* The PDE becomes a table pointer; G4 now maps FRAME. */
	map_g4(PRWU, FRAME | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4_2M, 2, 0x40200000ull, AW | AU | AX));
	expect_stale_ok(&cpu, tlb(G4, 1, 0x40204000ull, AU));
	expect_fault(&cpu, tlb(G4, 1, 0x40205000ull, AU), TRANSLATION_WRONG_GPA);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	/* INVLPG anywhere in the 2 MiB page ends it. */
	translation_checker_invlpg(fx->tc, 0, G4_2M + 0x1ff000);
	expect_fault(&cpu, tlb(G4_2M, 2, 0x40200000ull, AU), TRANSLATION_NOT_MAPPED);
	expect_fault(&cpu, tlb(G4, 1, 0x40204000ull, AU), TRANSLATION_WRONG_GPA);
	/* Seen again; only this vCPU's flush ends it. */
	map_g4_2m(0x40200000ull);
	expect_ok(&cpu, tlb(G4_2M, 2, 0x40200000ull, AU));
	map_g4(PRWU, FRAME | PRWU | D);
	translation_checker_flush_all(fx->tc, 1);
	expect_stale_ok(&cpu, tlb(G4_2M, 2, 0x40200000ull, AU));
	expect_stale_ok(&cpu, tlb(G4, 1, 0x40204000ull, AU));
	translation_checker_flush_all(fx->tc, 0);
	expect_fault(&cpu, tlb(G4_2M, 2, 0x40200000ull, AU), TRANSLATION_NOT_MAPPED);
	expect_fault(&cpu, tlb(G4, 1, 0x40204000ull, AU), TRANSLATION_WRONG_GPA);
}

/* Sptes of unsync pages lag like TLB entries (spec §5.5); synced sptes never do, and an
 * unsync spte reached only from a cached root waits for the sync of that root. */
static void test_stale_unsync_spte_until_invlpg(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation unsync = spte(G4, 1, FRAME, AW | AU | AX);
	struct model_translation cached = unsync;

	unsync.unsync = true;
	cached.unsync = cached.cached_root = true;
	map_g4(PRWU, FRAME | PRWU | D);
	expect(&cpu, &unsync, TRANSLATION_OK);
	set64(T(3) + 32, FRAME2 | PRWU | D);
	assert_non_null(strstr(expect(&cpu, &unsync, TRANSLATION_OK).detail, "stale"));
	expect_fault(&cpu, spte(G4, 1, FRAME, AW | AU | AX), TRANSLATION_WRONG_GPA);
	translation_checker_invlpg(fx->tc, 0, G4);
	expect(&cpu, &unsync, TRANSLATION_WRONG_GPA);
	assert_non_null(strstr(expect(&cpu, &cached, TRANSLATION_OK).detail, "cached root"));
	cached.cached_root = false;
	expect(&cpu, &cached, TRANSLATION_WRONG_GPA);
}

/* An access answered by a stale translation: allowed with the rights seen, for that vCPU,
 * until its INVLPG of the page. */
static void test_stale_access_allowance(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	gva_t gva = G4 + 0x123;
	gpa_t gpa = FRAME + 0x123;

	map_g4(PRWU, FRAME | P | U | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU | AX));
	set64(T(3) + 32, 0);
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_READ, 3, false));
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_FETCH, 3, false));
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa + 1, REF_READ, 3, false));
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_WRITE, 3, false));
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 1, gva, gpa, REF_READ, 3, false));
	/* Supervisor accesses of the user page: SMAP and SMEP apply to stale rights too. */
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_READ, 0, false));
	cpu.cr4_smap = cpu.cr4_smep = true;
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_READ, 0, false));
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_FETCH, 0, false));
	cpu.rflags_ac = true;
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_READ, 0, false));
	/* CR0.WP=0: a supervisor write needs no W, but a D the guest had. */
	cpu.cr0_wp = false;
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_WRITE, 0, false));
	/* Seen clean: a write would have to set D, except as KVM's MMIO emulation does it. */
	translation_checker_flush_all(fx->tc, 0);
	set64(T(3) + 32, FRAME | P | U);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU | AX));
	set64(T(3) + 32, 0);
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_WRITE, 0, false));
	assert_true(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_WRITE, 0, true));
	translation_checker_invlpg(fx->tc, 0, G4);
	assert_false(translation_checker_allows_access(fx->tc, &cpu, 0, gva, gpa, REF_READ, 3, false));
}

/* The TLB caches the guest's tables; KVM must flush when host memory changes. */
static void test_stale_tlb_with_changed_backing(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation moved = tlb(G4, 1, FRAME, AW | AU);
	struct model_translation t;
	struct translation_verdict v;

	moved.hva = MOVED_DATA_HVA + (FRAME - DATA_GPA);
	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AW | AU));
	assert_int_equal(ref_memory_set_region(fx->mem, 0, 1, DATA_GPA, DATA_SIZE,
					       MOVED_DATA_HVA, false),
			 0);
	expect_fault(&cpu, tlb(G4, 1, FRAME, AW | AU), TRANSLATION_WRONG_FRAME);
	expect(&cpu, &moved, TRANSLATION_OK);
	/* The guest moves on too: the old hva stays wrong, the new one is within the
	 * allowance. */
	set64(T(3) + 32, FRAME2 | PRWU | D);
	t = tlb(G4, 1, FRAME, AU);
	v = expect(&cpu, &t, TRANSLATION_WRONG_GPA);
	assert_non_null(strstr(v.detail, "frame changed"));
	expect_stale_ok(&cpu, moved);
	/* Memory that turns read-only takes W away at once. */
	assert_int_equal(ref_memory_set_region(fx->mem, 0, 1, DATA_GPA, DATA_SIZE,
					       MOVED_DATA_HVA, true),
			 0);
	moved.access = AW;
	expect(&cpu, &moved, TRANSLATION_WRONG_GPA);
	moved.access = AU;
	expect_stale_ok(&cpu, moved);
}

static void test_reset_forgets_history(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	set64(T(3) + 32, FRAME2 | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AU));
	translation_checker_reset(fx->tc);
	expect_fault(&cpu, tlb(G4, 1, FRAME, AU), TRANSLATION_WRONG_GPA);
}

/* The n-th frame a remapping loop gives G4. */
static gpa_t remap_frame(int n)
{
	return FRAME + (gpa_t)n * 0x10000;
}

static void remap_and_record(const struct ref_cpu_state *cpu, gpa_t frame)
{
	set64(T(3) + 32, frame | PRWU | D);
	expect_ok(cpu, tlb(G4, 1, frame, AU));
}

/* A range keeps 8 records and replaces the least recently used: a record counts as used
 * when it excuses an entry or when the same translation is seen valid again. */
static void test_history_keeps_recently_used(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, FRAME | PRWU | D);
	for (int n = 0; n < 8; n++)
		remap_and_record(&cpu, remap_frame(n));
	remap_and_record(&cpu, remap_frame(0));
	remap_and_record(&cpu, remap_frame(8));
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(0), AU));
	expect_fault(&cpu, tlb(G4, 1, remap_frame(1), AU), TRANSLATION_WRONG_GPA);
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(2), AU));
	remap_and_record(&cpu, remap_frame(9));
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(2), AU));
	expect_fault(&cpu, tlb(G4, 1, remap_frame(3), AU), TRANSLATION_WRONG_GPA);
}

/* More rights for a remembered gpa replace the weaker record instead of taking another
 * slot, where matches of the weaker record could leave the stronger one to age out. */
static void test_history_replaces_weaker_record(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);

	map_g4(PRWU, remap_frame(0) | P | U);
	expect_ok(&cpu, tlb(G4, 1, remap_frame(0), AU));
	set64(T(3) + 32, remap_frame(0) | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, remap_frame(0), AU));
	for (int n = 1; n < 7; n++)
		remap_and_record(&cpu, remap_frame(n));
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(0), AU));
	remap_and_record(&cpu, remap_frame(7));
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(0), AW | AU));
	expect_stale_ok(&cpu, tlb(G4, 1, remap_frame(1), AW | AU));
	remap_and_record(&cpu, remap_frame(8));
	expect_fault(&cpu, tlb(G4, 1, remap_frame(2), AU), TRANSLATION_WRONG_GPA);
}

/* An entry checked after every op keeps its record however often the guest remaps. */
static void test_history_is_bounded(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	const int remaps = 20;

	map_g4(PRWU, FRAME | PRWU | D);
	expect_ok(&cpu, tlb(G4, 1, FRAME, AU));
	for (int i = 1; i <= remaps; i++) {
		gpa_t frame = FRAME + (gpa_t)i * 0x10000;

		set64(T(3) + 32, frame | PRWU | D);
		expect_ok(&cpu, tlb(G4, 1, frame, AU));
		expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AU));
	}
	set64(T(3) + 32, FRAME2 | PRWU | D);
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME, AU));
	expect_stale_ok(&cpu, tlb(G4, 1, FRAME + (gpa_t)remaps * 0x10000, AU));
	expect_fault(&cpu, tlb(G4, 1, FRAME + 0x10000, AU), TRANSLATION_WRONG_GPA);
}

/* Many ranges, vCPUs and flushes: nodes are reused, nothing leaks (ASan). */
static void test_history_reuse(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_NONE);
	const int pages = 3000;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < pages; i++) {
			gpa_t gpa = DATA_GPA + (gpa_t)i * PAGE_SIZE;
			struct model_translation t = tlb(gpa, 1, gpa, AU);

			t.vcpu_id = i % 3;
			expect(&cpu, &t, TRANSLATION_OK);
			if (i % 2)
				translation_checker_invlpg(fx->tc, t.vcpu_id, gpa);
		}
		for (int vcpu = 0; vcpu < 3; vcpu++)
			translation_checker_flush_all(fx->tc, vcpu);
	}
	translation_checker_invlpg(fx->tc, 7, DATA_GPA);
	translation_checker_flush_all(fx->tc, 7);
}

/* ---- failures, reports ---- */

static void test_no_verdict(void **state)
{
	struct ref_cpu_state cpu = cpu_for(PAGING_4LEVEL);
	struct model_translation t = spte(G4, 1, FRAME, AU);
	struct translation_verdict v;

	map_g4(PRWU, FRAME | PRWU | D);
	t.cr3 = 0x3000; /* inside the reference's own memory */
	v = expect(&cpu, &t, TRANSLATION_CHECK_FAILED);
	assert_non_null(strstr(v.detail, "harness"));
	t = spte(G4, 4, FRAME, AU);
	expect(&cpu, &t, TRANSLATION_CHECK_FAILED);
	t = spte(G4 + 0x800, 1, FRAME, AU);
	expect(&cpu, &t, TRANSLATION_CHECK_FAILED);
	t = spte(G4, 1, FRAME, AU);
	t.vcpu_id = -1;
	expect(&cpu, &t, TRANSLATION_CHECK_FAILED);
	t.vcpu_id = 0;
	assert_false(translation_check(fx->tc, NULL, &cpu, &t, &v));
	assert_int_equal(v.fault, TRANSLATION_CHECK_FAILED);
	assert_false(translation_check(fx->tc, fx->engine[PAGING_32], &cpu, &t, &v));
	assert_int_equal(v.fault, TRANSLATION_CHECK_FAILED);
	assert_null(translation_checker_new(NULL));
	expect(&cpu, &t, TRANSLATION_OK);
}

static void test_format(void **state)
{
	struct model_translation t = tlb(G4, 1, FRAME, AW | AU | AX);
	char buf[160];

	t.vcpu_id = 1;
	model_translation_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "tlb vcpu1 gva=0x8080604000 level=1 gpa=0x40005000 "
				 "hva=0x7f4000005000 access=WUX");
	t = mmio(G4_2M, MMIO_GPA, AU);
	model_translation_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "spte vcpu0 gva=0x8080600000 level=1 gpa=0x90000000 mmio "
				 "access=-U-");
	assert_string_equal(translation_fault_name(TRANSLATION_OK), "ok");
	assert_string_equal(translation_fault_name(TRANSLATION_TOO_PERMISSIVE), "too-permissive");
	assert_string_equal(translation_fault_name(TRANSLATION_NOT_ACCESSED), "not-accessed");
	assert_string_equal(translation_fault_name(TRANSLATION_FAULT_COUNT), "?");
}

#define T_(name) cmocka_unit_test_setup(name, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_(test_4k_translation_matches_guest),
		T_(test_large_translation_over_guest_4k_page),
		T_(test_translation_inside_guest_large_page),
		T_(test_frame_must_be_the_backing),
		T_(test_mmio_exactly_where_no_memory),
		T_(test_write_needs_guest_dirty),
		T_(test_write_needs_writable_memory),
		T_(test_user_needs_guest_user_at_every_level),
		T_(test_exec_and_nx),
		T_(test_wp0_supervisor_write),
		T_(test_leaf_needs_accessed),
		T_(test_guest_walk_faults),
		T_(test_32bit_paging),
		T_(test_pae_paging),
		T_(test_nonpaging_identity),
		T_(test_stale_tlb_until_invlpg),
		T_(test_stale_tlb_keeps_old_rights),
		T_(test_stale_tlb_grants_no_more_than_seen),
		T_(test_stale_large_tlb_until_flush_all),
		T_(test_stale_tlb_with_changed_backing),
		T_(test_stale_unsync_spte_until_invlpg),
		T_(test_stale_access_allowance),
		T_(test_reset_forgets_history),
		T_(test_history_keeps_recently_used),
		T_(test_history_replaces_weaker_record),
		T_(test_history_is_bounded),
		T_(test_history_reuse),
		T_(test_no_verdict),
		T_(test_format),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
