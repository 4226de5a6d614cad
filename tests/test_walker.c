/* The guest walker (FNAME(walk_addr_generic)) on hand-built tables. Every expected value is
 * worked out from the Intel SDM vol. 3 ch. 4 (translation, permissions §4.6, error code
 * §4.7, A/D §4.8), not from running either implementation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kvm_pool_fixture.h"
#include "mmu.h"
#include "paging.h"

#define P PT_PRESENT_MASK
#define W PT_WRITABLE_MASK
#define U PT_USER_MASK
#define A PT_ACCESSED_MASK
#define D PT_DIRTY_MASK
#define PS PT_PAGE_SIZE_MASK
#define NX PT64_NX_MASK
#define PFW PFERR_WRITE_MASK
#define PFU PFERR_USER_MASK
#define PFF PFERR_FETCH_MASK

/* 4-level indices 1/2/3/4 and offset 0x123. */
#define GVA4 (1ull << 39 | 2ull << 30 | 3ull << 21 | 4ull << 12 | 0x123)

static struct fixture *make(uint64_t bugs)
{
	struct kvm_config cfg;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	cfg.bugs = bugs;
	return fixture_new(&cfg);
}

static int setup(void **state)
{
	*state = make(0);
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static void put32(struct fixture *f, uint64_t gpa, uint32_t value)
{
	assert_int_equal(host_write(f->host, POOL_HVA + gpa - POOL, &value, 4), 0);
}


static void mode_4level(struct fixture *f, uint64_t extra_cr4)
{
	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	f->vcpu->arch.cr4 = X86_CR4_PAE | extra_cr4;
	f->vcpu->arch.efer = EFER_LME | EFER_LMA | EFER_NX;
	f->vcpu->arch.cr3 = T(0);
	kvm_init_mmu(f->vcpu);
}

/* T0[1] -> T1[2] -> T2[3] -> T3[4] -> 0x200000, with the given leaf and upper flags. */
static void tables_4level(struct fixture *f, uint64_t upper, uint64_t leaf)
{
	put64(f, T(0) + 1 * 8, T(1) | upper);
	put64(f, T(1) + 2 * 8, T(2) | upper);
	put64(f, T(2) + 3 * 8, T(3) | upper);
	put64(f, T(3) + 4 * 8, 0x200000 | leaf);
}

static bool walk(struct fixture *f, uint64_t gva, uint32_t access, int cpl, struct guest_walker *w)
{
	f->vcpu->arch.cpl = cpl;
	return kvm_walk_addr(w, f->vcpu, gva, access);
}

static void expect_fault(struct fixture *f, uint64_t gva, uint32_t access, int cpl, uint32_t ec)
{
	struct guest_walker w;

	assert_false(walk(f, gva, access, cpl, &w));
	assert_int_equal(w.fault.vector, 14);
	assert_int_equal(w.fault.error_code, ec);
	assert_int_equal(w.fault.address, gva);
}

static void expect_gpa(struct fixture *f, uint64_t gva, uint32_t access, int cpl, uint64_t gpa)
{
	struct guest_walker w;

	assert_true(walk(f, gva, access, cpl, &w));
	assert_int_equal(guest_walker_gpa(&w, gva), gpa);
}

static void read_translates_and_sets_accessed(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U);
	expect_gpa(f, GVA4, 0, 0, 0x200123);
	/* §4.8: A set in every entry used; D only on writes. */
	assert_int_equal(get64(f, T(0) + 8), T(1) | P | W | U | A);
	assert_int_equal(get64(f, T(2) + 24), T(3) | P | W | U | A);
	assert_int_equal(get64(f, T(3) + 32), 0x200000 | P | W | U | A);
}

static void write_sets_dirty_on_leaf_only(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U);
	expect_gpa(f, GVA4, PFW, 0, 0x200123);
	assert_int_equal(get64(f, T(3) + 32), 0x200000 | P | W | U | A | D);
	assert_int_equal(get64(f, T(2) + 24), T(3) | P | W | U | A);
}

static void not_present_error_codes(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, W | U);
	expect_fault(f, GVA4, 0, 0, 0);
	expect_fault(f, GVA4, PFW, 0, PFERR_WRITE_MASK);
	expect_fault(f, GVA4, PFU, 3, PFERR_USER_MASK);
	/* §4.7: I/D is set for fetches when NX paging (EFER.NXE=1 here) is on. */
	expect_fault(f, GVA4, PFF, 0, PFERR_FETCH_MASK);
	/* A faulting walk sets no A bit (KVM's walker updates A/D only after all checks). */
	assert_int_equal(get64(f, T(0) + 8), T(1) | P | W | U);
}

static void user_and_write_protection(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W);
	expect_fault(f, GVA4, PFU, 3, PFERR_PRESENT_MASK | PFERR_USER_MASK);
	tables_4level(f, P | W | U, P | U | A | D);
	expect_fault(f, GVA4, PFW, 0, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	expect_fault(f, GVA4, PFW | PFU, 3, PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK);
	/* CR0.WP=0: supervisor writes ignore R/W; user writes still fault. */
	f->vcpu->arch.cr0 &= ~X86_CR0_WP;
	kvm_init_mmu(f->vcpu);
	expect_gpa(f, GVA4, PFW, 0, 0x200123);
	expect_fault(f, GVA4, PFW | PFU, 3, PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK);
	/* An upper-level R/W=0 protects the whole subtree too. */
	f->vcpu->arch.cr0 |= X86_CR0_WP;
	kvm_init_mmu(f->vcpu);
	tables_4level(f, P | U, P | W | U);
	expect_fault(f, GVA4, PFW, 0, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
}

static void nx_and_reserved_bits(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U | NX);
	expect_fault(f, GVA4, PFF, 0, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	expect_gpa(f, GVA4, 0, 0, 0x200123);
	/* EFER.NXE=0: bit 63 is reserved (§4.5 table 4-20): RSVD|P, I/D not set. */
	f->vcpu->arch.efer &= ~EFER_NX;
	kvm_init_mmu(f->vcpu);
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	expect_fault(f, GVA4, PFF, 0, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	/* Bit 51 is above MAXPHYADDR 40: reserved in every entry. */
	f->vcpu->arch.efer |= EFER_NX;
	kvm_init_mmu(f->vcpu);
	tables_4level(f, P | W | U, P | W | U | (1ull << 51));
	expect_fault(f, GVA4, PFW | PFU, 3,
		     PFERR_PRESENT_MASK | PFERR_RSVD_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK);
	/* PS in a PML4E is reserved. */
	tables_4level(f, P | W | U, P | W | U);
	put64(f, T(0) + 8, T(1) | P | W | U | PS);
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
}

static void smep_and_smap(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, X86_CR4_SMEP | X86_CR4_SMAP);
	tables_4level(f, P | W | U, P | W | U);
	expect_fault(f, GVA4, PFF, 0, PFERR_PRESENT_MASK | PFERR_FETCH_MASK);
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK);
	expect_fault(f, GVA4, PFW, 0, PFERR_PRESENT_MASK | PFERR_WRITE_MASK);
	expect_gpa(f, GVA4, PFU, 3, 0x200123);
	/* EFLAGS.AC=1 at CPL0 suspends SMAP for data accesses (§4.6.1). */
	f->vcpu->arch.rflags |= X86_EFLAGS_AC;
	expect_gpa(f, GVA4, 0, 0, 0x200123);
	expect_gpa(f, GVA4, PFW, 0, 0x200123);
	/* Supervisor pages are fine for supervisor accesses. */
	tables_4level(f, P | W | U, P | W);
	f->vcpu->arch.rflags = 0;
	expect_gpa(f, GVA4, PFF, 0, 0x200123);
}

static void protection_keys(void **state)
{
	struct fixture *f = *state;
	uint64_t key1 = 1ull << PT64_PKEY_SHIFT;

	mode_4level(f, X86_CR4_PKE);
	tables_4level(f, P | W | U, P | W | U | key1);
	f->vcpu->arch.pkru = 1u << 2; /* AD for key 1 */
	expect_fault(f, GVA4, PFU, 3, PFERR_PRESENT_MASK | PFERR_USER_MASK | PFERR_PK_MASK);
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK | PFERR_PK_MASK);
	/* Fetches are not subject to protection keys. */
	expect_gpa(f, GVA4, PFF | PFU, 3, 0x200123);
	f->vcpu->arch.pkru = 2u << 2; /* WD for key 1 */
	expect_gpa(f, GVA4, PFU, 3, 0x200123);
	expect_fault(f, GVA4, PFW | PFU, 3,
		     PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_USER_MASK | PFERR_PK_MASK);
	/* WD binds supervisor writes only with CR0.WP=1. */
	expect_fault(f, GVA4, PFW, 0, PFERR_PRESENT_MASK | PFERR_WRITE_MASK | PFERR_PK_MASK);
	f->vcpu->arch.cr0 &= ~X86_CR0_WP;
	kvm_init_mmu(f->vcpu);
	expect_gpa(f, GVA4, PFW, 0, 0x200123);
	/* Supervisor pages ignore PKRU. */
	tables_4level(f, P | W | U, P | W | key1);
	f->vcpu->arch.pkru = 3u << 2;
	expect_gpa(f, GVA4, 0, 0, 0x200123);
}

static void large_pages(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U);
	put64(f, T(2) + 3 * 8, 0x40000000 | P | W | U | PS);
	expect_gpa(f, GVA4, 0, 0, 0x40000000 | 4ull << 12 | 0x123);
	put64(f, T(1) + 2 * 8, 0x80000000 | P | W | U | PS);
	expect_gpa(f, GVA4, 0, 0, 0x80000000 | 3ull << 21 | 4ull << 12 | 0x123);
	/* A 2M frame address with bit 13 set uses a reserved bit (§4.5 table 4-18). */
	put64(f, T(1) + 2 * 8, T(2) | P | W | U);
	put64(f, T(2) + 3 * 8, 0x40002000 | P | W | U | PS);
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
}

static void canonical_and_5level(void **state)
{
	struct fixture *f = *state;
	uint64_t gva5 = 1ull << 48 | GVA4;

	mode_4level(f, 0);
	assert_true(is_noncanonical_address(0x0000800000000000ull, f->vcpu));
	assert_false(is_noncanonical_address(0xffff800000000000ull, f->vcpu));
	mode_4level(f, X86_CR4_LA57);
	assert_false(is_noncanonical_address(0x0000800000000000ull, f->vcpu));
	assert_true(is_noncanonical_address(0x0100000000000000ull, f->vcpu));
	put64(f, T(4) + 1 * 8, T(0) | P | W | U);
	f->vcpu->arch.cr3 = T(4);
	tables_4level(f, P | W | U, P | W | U);
	expect_gpa(f, gva5, 0, 0, 0x200123);
	assert_int_equal(get64(f, T(4) + 8), T(0) | P | W | U | A);
}

static void pae_uses_pdpte_registers(void **state)
{
	struct fixture *f = *state;
	uint64_t gva = 1ull << 30 | 3ull << 21 | 4ull << 12 | 0x123;

	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	f->vcpu->arch.cr4 = X86_CR4_PAE;
	f->vcpu->arch.efer = EFER_NX;
	kvm_init_mmu(f->vcpu);
	put64(f, T(0) + 8, T(1) | P);
	put64(f, T(1) + 3 * 8, T(2) | P | W | U);
	put64(f, T(2) + 4 * 8, 0x300000 | P | W | U);
	assert_true(load_pdptrs(f->vcpu, T(0)));
	f->vcpu->arch.cr3 = T(0);
	expect_gpa(f, gva, 0, 0, 0x300123);
	/* The PDPTE registers hold until the next load: a memory change is not seen. */
	put64(f, T(0) + 8, 0);
	expect_gpa(f, gva, 0, 0, 0x300123);
	assert_true(load_pdptrs(f->vcpu, T(0)));
	expect_fault(f, gva, 0, 0, 0);
	/* A present PDPTE with R/W (bit 1, reserved in PAE PDPTEs) makes the load fail. */
	put64(f, T(0) + 8, T(1) | P | W);
	assert_false(load_pdptrs(f->vcpu, T(0)));
	/* A failed load keeps the previous registers (PDPTE 1 not present). */
	expect_fault(f, gva, 0, 0, 0);
}

static void two_level_paging(void **state)
{
	struct fixture *f = *state;
	uint64_t gva = 5ull << 22 | 6ull << 12 | 0x123;

	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	f->vcpu->arch.cr4 = 0;
	f->vcpu->arch.efer = 0;
	f->vcpu->arch.cr3 = T(0);
	kvm_init_mmu(f->vcpu);
	put32(f, T(0) + 5 * 4, (uint32_t)(T(1) | P | W | U));
	put32(f, T(1) + 6 * 4, 0x00500000 | P | W | U);
	expect_gpa(f, gva, 0, 0, 0x500123);
	/* Without CR4.PSE, PS in a PDE is ignored: the walk still uses the page table. */
	put32(f, T(0) + 5 * 4, (uint32_t)(T(1) | P | W | U | PS));
	expect_gpa(f, gva, 0, 0, 0x500123);
	/* With PSE: a 4 MiB page; PDE bit 13 is gpa bit 32 (PSE-36). */
	f->vcpu->arch.cr4 = X86_CR4_PSE;
	kvm_init_mmu(f->vcpu);
	put32(f, T(0) + 5 * 4, 0x40000000 | 1u << 13 | P | W | U | PS);
	expect_gpa(f, gva, 0, 0, 0x140000000ull | 6ull << 12 | 0x123);
	/* Bit 21 is reserved in a 4 MiB PDE. */
	put32(f, T(0) + 5 * 4, 0x40000000 | 1u << 21 | P | W | U | PS);
	expect_fault(f, gva, 0, 0, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);
	/* No NX in 32-bit paging: fetch faults carry I/D only with SMEP. */
	put32(f, T(0) + 5 * 4, (uint32_t)(T(1) | P | W | U));
	put32(f, T(1) + 6 * 4, 0);
	expect_fault(f, gva, PFF, 0, 0);
	f->vcpu->arch.cr4 |= X86_CR4_SMEP;
	kvm_init_mmu(f->vcpu);
	expect_fault(f, gva, PFF, 0, PFERR_FETCH_MASK);
}

static void nonpaging_is_identity(void **state)
{
	struct fixture *f = *state;

	f->vcpu->arch.cr0 = X86_CR0_PE;
	kvm_init_mmu(f->vcpu);
	expect_gpa(f, 0x12345678, PFW | PFU, 3, 0x12345678);
}

static void table_outside_memslot_is_not_present(void **state)
{
	struct fixture *f = *state;

	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U);
	put64(f, T(2) + 3 * 8, 0x10000000 | P | W | U);
	expect_fault(f, GVA4, PFW, 0, PFERR_WRITE_MASK);
}

/* reset_shadow_zero_bits_mask: with EFER.NX=0, spte bit 63 is allowed only when KVM sets
 * NX itself (CR0.WP=0 with SMEP); B18 forgets that case. */
static void shadow_zero_check_follows_uses_nx(void **state)
{
	struct fixture *f;
	uint64_t nx_leaf = 0x200000 | P | W | NX;

	(void)state;
	for (int bug = 0; bug < 2; bug++) {
		f = make(bug ? 1ull << KVM_BUG_B18_SHADOW_NX_RESERVED : 0);
		mode_4level(f, X86_CR4_SMEP);
		f->vcpu->arch.efer &= ~EFER_NX;
		kvm_init_mmu(f->vcpu);
		/* WP=1: KVM never sets NX, so bit 63 is reserved. */
		assert_true(is_shadow_zero_bits_set(&f->vcpu->mmu, nx_leaf, 1));
		f->vcpu->arch.cr0 &= ~X86_CR0_WP;
		kvm_init_mmu(f->vcpu);
		assert_int_equal(is_shadow_zero_bits_set(&f->vcpu->mmu, nx_leaf, 1), bug);
		assert_false(is_shadow_zero_bits_set(&f->vcpu->mmu, 0x200000 | P | W, 1));
		/* PS in a level-4 spte and bit 8 of a non-leaf one (KVM passes amd=true). */
		assert_true(is_shadow_zero_bits_set(&f->vcpu->mmu, T(1) | P | PS, 4));
		assert_true(is_shadow_zero_bits_set(&f->vcpu->mmu, T(1) | P | 1ull << 8, 3));
		teardown((void **)&f);
	}
}

/* The planted walker bugs change exactly the answers their documentation names. */
static void planted_bugs_change_answers(void **state)
{
	struct fixture *f;
	uint64_t gva32 = 5ull << 22 | 6ull << 12 | 0x123;

	(void)state;
	f = make(1ull << KVM_BUG_W1_SMAP_IGNORES_AC);
	mode_4level(f, X86_CR4_SMAP);
	tables_4level(f, P | W | U, P | W | U);
	f->vcpu->arch.rflags = X86_EFLAGS_AC;
	expect_fault(f, GVA4, 0, 0, PFERR_PRESENT_MASK);
	teardown((void **)&f);

	f = make(1ull << KVM_BUG_W2_PSE36_DROPPED);
	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE;
	f->vcpu->arch.cr4 = X86_CR4_PSE;
	f->vcpu->arch.cr3 = T(0);
	kvm_init_mmu(f->vcpu);
	put32(f, T(0) + 5 * 4, 0x40000000 | 1u << 13 | P | W | U | PS);
	expect_gpa(f, gva32, 0, 0, 0x40000000ull | 6ull << 12 | 0x123);
	teardown((void **)&f);

	f = make(1ull << KVM_BUG_W3_NO_UPPER_ACCESSED);
	mode_4level(f, 0);
	tables_4level(f, P | W | U, P | W | U);
	expect_gpa(f, GVA4, 0, 0, 0x200123);
	assert_int_equal(get64(f, T(0) + 8), T(1) | P | W | U);
	assert_int_equal(get64(f, T(3) + 32), 0x200000 | P | W | U | A);
	teardown((void **)&f);

	f = make(1ull << KVM_BUG_W4_NX_NOT_RESERVED);
	mode_4level(f, 0);
	f->vcpu->arch.efer &= ~EFER_NX;
	kvm_init_mmu(f->vcpu);
	tables_4level(f, P | W | U, P | W | U | NX);
	expect_gpa(f, GVA4, 0, 0, 0x200123);
	teardown((void **)&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(read_translates_and_sets_accessed, setup, teardown),
		cmocka_unit_test_setup_teardown(write_sets_dirty_on_leaf_only, setup, teardown),
		cmocka_unit_test_setup_teardown(not_present_error_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(user_and_write_protection, setup, teardown),
		cmocka_unit_test_setup_teardown(nx_and_reserved_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(smep_and_smap, setup, teardown),
		cmocka_unit_test(shadow_zero_check_follows_uses_nx),
		cmocka_unit_test_setup_teardown(protection_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(large_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(canonical_and_5level, setup, teardown),
		cmocka_unit_test_setup_teardown(pae_uses_pdpte_registers, setup, teardown),
		cmocka_unit_test_setup_teardown(two_level_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(nonpaging_is_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(table_outside_memslot_is_not_present, setup, teardown),
		cmocka_unit_test(planted_bugs_change_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
