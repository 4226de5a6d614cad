/* PTE prefetch after a shadow page fault (FNAME(pte_prefetch), spec §4.7) on hand-built
 * 4-level tables: which sptes of the faulting one's aligned group of 8 appear, with which
 * bits, and what config.prefetch and bug S7 change. Expected values follow v5.1's
 * FNAME(pte_prefetch) / FNAME(prefetch_gpte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kvm_pool_fixture.h"
#include "mmu.h"
#include "paging.h"

#define PWU (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK)
#define A PT_ACCESSED_MASK
#define D PT_DIRTY_MASK

/* 4-level indices 1/2/3 and PT index i. */
#define GVA(i) (1ull << 39 | 2ull << 30 | 3ull << 21 | (uint64_t)(i) << 12)
#define FAULTING 4

/* T0[1] -> T1[2] -> T2[3] -> T3; T3[i] -> T(10 + i) with leaf[i]. */
static struct fixture *make(bool prefetch, uint64_t bugs, const uint64_t leaf[8])
{
	struct kvm_config cfg;
	struct fixture *f;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	cfg.prefetch = prefetch;
	cfg.bugs = bugs;
	f = fixture_new(&cfg);
	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	f->vcpu->arch.cr4 = X86_CR4_PAE;
	f->vcpu->arch.efer = EFER_LME | EFER_LMA | EFER_NX;
	f->vcpu->arch.cr3 = T(0);
	kvm_init_mmu(f->vcpu);
	put64(f, T(0) + 1 * 8, T(1) | PWU | A);
	put64(f, T(1) + 2 * 8, T(2) | PWU | A);
	put64(f, T(2) + 3 * 8, T(3) | PWU | A);
	for (int i = 0; i < 8; i++)
		put64(f, T(3) + (uint64_t)i * 8, leaf[i] ? T(10 + i) | leaf[i] : 0);
	assert_int_equal(kvm_mmu_load(f->vcpu), 0);
	return f;
}

/* A read of GVA(FAULTING), as the CPU's #PF would deliver it. */
static void read_fault(struct fixture *f)
{
	struct x86_exception fault;

	kvm_mmu_page_fault(f->vcpu, GVA(FAULTING), 0, &fault);
	assert_int_equal(fault.vector, 0);
}

/* The level-1 spte for GVA(i), or 0 when the walk ends above it. */
static uint64_t leaf_spte(struct fixture *f, int i)
{
	struct kvm_shadow_walk_iterator it;

	for (shadow_walk_init(&it, f->vcpu, GVA(i)); shadow_walk_okay(&it, f->vcpu);
	     shadow_walk_next(&it)) {
		if (it.level == PT_PAGE_TABLE_LEVEL)
			return *it.sptep;
		if (!is_shadow_present_pte(&f->kvm->mmu->spte, *it.sptep))
			return 0;
	}
	return 0;
}

/* A speculative spte (A clear) for the host page behind guest frame gpa. */
static bool prefetched(struct fixture *f, uint64_t spte, uint64_t gpa)
{
	return (spte & PT_PRESENT_MASK) && !(spte & A) &&
	       spte_to_pfn(spte) == host_hva_to_pfn(f->host, POOL_HVA + gpa - POOL);
}

/* Gptes 0..3 valid (1 clean, 2 dirty), the faulting 4, 5 valid, 6 with A=0, 7 valid. */
static const uint64_t group[8] = {
	PWU | A, PWU | A, PWU | A | D, PWU | A, PWU, PWU | A, PWU, PWU | A,
};

static void prefetch_stops_at_first_gpte_without_accessed(void **state)
{
	struct fixture *f = make(true, 0, group);

	(void)state;
	read_fault(f);
	assert_true(leaf_spte(f, FAULTING) & A);
	for (int i = 0; i < 6; i++) {
		if (i != FAULTING)
			assert_true(prefetched(f, leaf_spte(f, i), T(10 + i)));
	}
	/* protect_clean_gpte: only the dirty gpte gives a writable spte. */
	assert_false(leaf_spte(f, 1) & PT_WRITABLE_MASK);
	assert_true(leaf_spte(f, 2) & PT_WRITABLE_MASK);
	assert_int_equal(leaf_spte(f, 6), 0);
	assert_int_equal(leaf_spte(f, 7), 0);
	/* Prefetch writes no guest memory. */
	assert_int_equal(get64(f, T(3) + 5 * 8), T(15) | PWU | A);
	fixture_free(f);
}

static void prefetch_switch_off_maps_only_the_fault(void **state)
{
	struct fixture *f = make(false, 0, group);

	(void)state;
	read_fault(f);
	assert_true(leaf_spte(f, FAULTING) & PT_PRESENT_MASK);
	for (int i = 0; i < 8; i++) {
		if (i != FAULTING)
			assert_int_equal(leaf_spte(f, i), 0);
	}
	fixture_free(f);
}

static void bug_s7_prefetches_gptes_without_accessed(void **state)
{
	struct fixture *f = make(true, 1ull << KVM_BUG_S7_PREFETCH_IGNORES_ACCESSED, group);

	(void)state;
	read_fault(f);
	assert_true(prefetched(f, leaf_spte(f, 6), T(16)));
	assert_true(prefetched(f, leaf_spte(f, 7), T(17)));
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prefetch_stops_at_first_gpte_without_accessed),
		cmocka_unit_test(prefetch_switch_off_maps_only_the_fault),
		cmocka_unit_test(bug_s7_prefetches_gptes_without_accessed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
