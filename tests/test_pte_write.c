/* Emulated writes to shadowed guest tables (kvm_mmu_pte_write, spec §5.4) on hand-built
 * 32-bit, PAE and 4-level tables: which sptes a write reaches (quadrants, two sptes per
 * 32-bit pde), the misaligned and flooding zaps, when the spte is refilled, when the flood
 * count restarts, the remote flush, and the VM stats. Expected values follow v5.1's
 * kvm_mmu_pte_write and its helpers (the same in v4.20). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvm_pool_fixture.h"
#include "mmu.h"
#include "mmu_audit.h"
#include "paging.h"

#define PWU (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK)
#define A PT_ACCESSED_MASK
#define D PT_DIRTY_MASK

static struct fixture *make(enum paging_mode mode, uint64_t bugs)
{
	struct kvm_config cfg;
	struct fixture *f;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	cfg.bugs = bugs;
	f = fixture_new(&cfg);
	f->vcpu->arch.cr0 = X86_CR0_PG | X86_CR0_PE | X86_CR0_WP;
	f->vcpu->arch.cr4 = mode == PAGING_32 ? 0 : X86_CR4_PAE;
	f->vcpu->arch.efer = mode == PAGING_4LEVEL ? EFER_LME | EFER_LMA | EFER_NX :
			     mode == PAGING_PAE ? EFER_NX : 0;
	f->vcpu->arch.cr3 = T(0);
	kvm_init_mmu(f->vcpu);
	return f;
}

/* Roots for the tables built so far (PAE: the PDPTEs are loaded first). */
static void load(struct fixture *f)
{
	if (kvm_vcpu_paging_mode(f->vcpu) == PAGING_PAE)
		assert_true(load_pdptrs(f->vcpu, T(0)));
	assert_int_equal(kvm_mmu_load(f->vcpu), 0);
}

static void put32(struct fixture *f, uint64_t gpa, uint32_t value)
{
	assert_int_equal(host_write(f->host, POOL_HVA + gpa - POOL, &value, 4), 0);
}

static void fault(struct fixture *f, uint64_t gva, uint32_t error_code)
{
	struct x86_exception ex;

	kvm_mmu_page_fault(f->vcpu, gva, error_code, &ex);
	assert_int_equal(ex.vector, 0);
}

/* The guest writes bytes at gpa and KVM's page-track notifier sees it, as after an
 * emulated instruction. */
static void emulated_write(struct fixture *f, uint64_t gpa, const void *bytes, int len)
{
	assert_int_equal(host_write(f->host, POOL_HVA + gpa - POOL, bytes, (size_t)len), 0);
	kvm_mmu_pte_write(f->vcpu, gpa, bytes, len);
}

static void write32(struct fixture *f, uint64_t gpa, uint32_t value)
{
	emulated_write(f, gpa, &value, 4);
}

static void write64(struct fixture *f, uint64_t gpa, uint64_t value)
{
	emulated_write(f, gpa, &value, 8);
}

/* The spte at level on gva's shadow walk; 0 when the walk ends above it. */
static uint64_t spte_at(struct fixture *f, uint64_t gva, int level)
{
	struct kvm_shadow_walk_iterator it;

	for (shadow_walk_init(&it, f->vcpu, gva); shadow_walk_okay(&it, f->vcpu); shadow_walk_next(&it)) {
		if (it.level == level)
			return *it.sptep;
		if (!is_shadow_present_pte(&f->kvm->mmu->spte, *it.sptep))
			return 0;
	}
	return 0;
}

static bool present(struct fixture *f, uint64_t spte)
{
	return is_shadow_present_pte(&f->kvm->mmu->spte, spte);
}

static uint64_t host_pfn(struct fixture *f, uint64_t gpa)
{
	return host_hva_to_pfn(f->host, POOL_HVA + gpa - POOL);
}

/* The valid shadow page of guest table gpa at level (and quadrant), or NULL. */
static struct kvm_mmu_page *page_of(struct fixture *f, uint64_t gpa, unsigned level, unsigned quadrant)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &f->kvm->mmu->active_mmu_pages, link)
		if (sp->gfn == gpa >> PAGE_SHIFT && sp->role.level == level && !sp->role.direct &&
		    sp->role.quadrant == quadrant && !sp->role.invalid)
			return sp;
	return NULL;
}

/* ---- 32-bit: PD T0; pde p(q) = q * 256 + 5 -> PT T(1 + q), whose gptes 1 and 513 map
 * frames T(20 + 2q) and T(21 + 2q). ---- */

static unsigned pde_index(int q) { return (unsigned)q * 256 + 5; }

/* gva through pde p(q) and gpte half * 512 + 1 of its table. */
static uint64_t gva32(int q, int half)
{
	return (uint64_t)pde_index(q) << 22 | (uint64_t)half << 21 | 1u << 12;
}

static struct fixture *make32(uint64_t bugs)
{
	struct fixture *f = make(PAGING_32, bugs);

	for (int q = 0; q < 4; q++) {
		put32(f, T(0) + pde_index(q) * 4, (uint32_t)(T(1 + q) | PWU | A));
		put32(f, T(1 + q) + 1 * 4, (uint32_t)(T(20 + 2 * q) | PWU | A | D));
		put32(f, T(1 + q) + 513 * 4, (uint32_t)(T(21 + 2 * q) | PWU | A | D));
	}
	load(f);
	for (int q = 0; q < 4; q++)
		for (int half = 0; half < 2; half++)
			fault(f, gva32(q, half), 0);
	return f;
}

/* A 32-bit pde maps 4 MiB, the shadow pdes 2 MiB: the write reaches both sptes of the pde,
 * in the quadrant page only (the other three count the write but skip it). */
static void pd32_write_reaches_both_sptes_of_its_quadrant(void **state)
{
	(void)state;
	for (int q = 0; q < 4; q++) {
		struct fixture *f = make32(0);

		write32(f, T(0) + pde_index(q) * 4, (uint32_t)(T(1 + q) | PWU | A));
		for (int other = 0; other < 4; other++)
			for (int half = 0; half < 2; half++)
				assert_int_equal(present(f, spte_at(f, gva32(other, half), PT_DIRECTORY_LEVEL)),
						 other != q);
		assert_int_equal(f->kvm->stat.mmu_pte_write, 1);
		assert_int_equal(f->kvm->stat.mmu_pde_zapped, 2);
		assert_int_equal(f->kvm->stat.mmu_pte_updated, 0);
		assert_int_equal(f->kvm->stat.mmu_flooded, 0);
		for (int other = 0; other < 4; other++)
			assert_int_equal(page_of(f, T(0), PT32_ROOT_LEVEL, (unsigned)other)->write_flooding_count, 1);
		fixture_free(f);
	}
}

/* A 1024-entry page table is two level-1 pages: gpte 513 lives in the quadrant-1 page and
 * is refilled there from the new gpte (speculatively: A clear); gpte 1's spte stays. */
static void pt32_write_refills_the_spte_in_its_half(void **state)
{
	struct fixture *f = make32(0);
	uint64_t kept = spte_at(f, gva32(2, 0), PT_PAGE_TABLE_LEVEL), spte;

	(void)state;
	write32(f, T(3) + 513 * 4, (uint32_t)(T(30) | PWU | A | D));
	spte = spte_at(f, gva32(2, 1), PT_PAGE_TABLE_LEVEL);
	assert_true(present(f, spte));
	assert_int_equal(spte_to_pfn(spte), host_pfn(f, T(30)));
	assert_false(spte & A);
	assert_int_equal(spte_at(f, gva32(2, 0), PT_PAGE_TABLE_LEVEL), kept);
	assert_int_equal(f->kvm->stat.mmu_pte_updated, 1);
	assert_int_equal(f->kvm->stat.mmu_pde_zapped, 0);
	fixture_free(f);
}

/* Shorter than 4 bytes, or across two gptes: every page of the gfn goes (each counted as
 * flooded), both halves of the table, whichever the write falls in. */
static void misaligned_writes_zap_the_page(void **state)
{
	static const struct { unsigned offset; int len; } writes[] = {
		{ 513 * 4 + 1, 1 }, /* inside a gpte */
		{ 513 * 4, 2 },     /* aligned, but a 2-byte write */
		{ 513 * 4 + 3, 2 }, /* across gptes 513 and 514 */
		{ 513 * 4, 8 },     /* two 4-byte gptes at once */
	};
	uint64_t zero = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		struct fixture *f = make32(0);

		emulated_write(f, T(3) + writes[i].offset, &zero, writes[i].len);
		assert_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 0));
		assert_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 1));
		assert_non_null(page_of(f, T(4), PT_PAGE_TABLE_LEVEL, 1));
		assert_false(present(f, spte_at(f, gva32(2, 0), PT_PAGE_TABLE_LEVEL)));
		assert_int_equal(f->kvm->stat.mmu_flooded, 2);
		fixture_free(f);
	}
}

/* A 1-byte write at a gpte boundary is not misaligned: only the spte goes, and it is not
 * refilled (a 1-byte write reads no gentry). Bug S4 zaps both pages of the table instead. */
static void byte_write_at_a_boundary_drops_only_the_spte(void **state)
{
	uint8_t low = (uint8_t)(PWU | A | D);

	(void)state;
	for (int bug = 0; bug < 2; bug++) {
		struct fixture *f = make32(bug ? 1ull << KVM_BUG_S4_MISALIGNED_NO_BYTE_EXCEPTION : 0);

		emulated_write(f, T(3) + 513 * 4, &low, 1);
		assert_false(present(f, spte_at(f, gva32(2, 1), PT_PAGE_TABLE_LEVEL)));
		assert_int_equal(present(f, spte_at(f, gva32(2, 0), PT_PAGE_TABLE_LEVEL)), !bug);
		assert_int_equal(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 1) != NULL, !bug);
		assert_int_equal(f->kvm->stat.mmu_flooded, 2 * bug);
		assert_int_equal(f->kvm->stat.mmu_pte_updated, 0);
		fixture_free(f);
	}
}

/* A PAE vCPU's 4-byte write is widened to the aligned 8 bytes before the misaligned test:
 * on the pages a 32-bit guest left, it spans two gptes and zaps them. */
static void pae_vcpu_widens_a_write_to_a_32bit_table(void **state)
{
	struct fixture *f = make32(0);

	(void)state;
	f->vcpu->arch.cr4 |= X86_CR4_PAE;
	kvm_mmu_reset_context(f->vcpu);
	write32(f, T(3) + 1 * 4, (uint32_t)(T(30) | PWU | A | D));
	assert_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 0));
	assert_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 1));
	assert_int_equal(f->kvm->stat.mmu_flooded, 2);
	fixture_free(f);
}

/* Every write to the PD counts against all four quadrant pages, whichever it reaches: the
 * third floods them all. */
static void pd32_third_write_floods_every_quadrant(void **state)
{
	struct fixture *f = make32(0);

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_non_null(page_of(f, T(0), PT32_ROOT_LEVEL, 3));
		write32(f, T(0) + (pde_index(1) + 1 + (unsigned)i) * 4, 0);
	}
	for (unsigned q = 0; q < 4; q++)
		assert_null(page_of(f, T(0), PT32_ROOT_LEVEL, q));
	assert_int_equal(f->kvm->stat.mmu_flooded, 4);
	fixture_free(f);
}

/* ---- PAE: PDPT T0 (PDPTEs 0..3 -> PDs T1..T4); PD T2's pde 3 -> PT T5, gptes i map
 * T(10 + i). ---- */

#define PAE_GVA(i) (1ull << 30 | 3ull << 21 | (uint64_t)(i) << 12)

static struct fixture *make_pae(void)
{
	struct fixture *f = make(PAGING_PAE, 0);

	for (int i = 0; i < 4; i++)
		put64(f, T(0) + (uint64_t)i * 8, T(1 + i) | PT_PRESENT_MASK);
	put64(f, T(2) + 3 * 8, T(5) | PWU | A);
	put64(f, T(5) + 1 * 8, T(11) | PWU | A | D);
	load(f);
	fault(f, PAE_GVA(1), 0);
	return f;
}

/* A 4-byte write to the high half of a PAE gpte re-reads the whole gpte: the refilled spte
 * gets its NX bit and keeps the frame of the low half. */
static void pae_half_write_refills_from_the_whole_gpte(void **state)
{
	struct fixture *f = make_pae();
	uint32_t high = 1u << 31;
	uint64_t spte;

	(void)state;
	assert_true(present(f, spte_at(f, PAE_GVA(1), PT_PAGE_TABLE_LEVEL)));
	emulated_write(f, T(5) + 1 * 8 + 4, &high, 4);
	spte = spte_at(f, PAE_GVA(1), PT_PAGE_TABLE_LEVEL);
	assert_true(present(f, spte));
	assert_true(spte & PT64_NX_MASK);
	assert_int_equal(spte_to_pfn(spte), host_pfn(f, T(11)));
	assert_int_equal(f->kvm->stat.mmu_pte_updated, 1);
	assert_int_equal(f->kvm->stat.mmu_flooded, 0);
	fixture_free(f);
}

/* A PAE PD is a root page of its own: three writes in a row flood it. */
static void pae_third_write_floods_the_directory(void **state)
{
	struct fixture *f = make_pae();

	(void)state;
	write64(f, T(2) + 5 * 8, 0);
	write64(f, T(2) + 6 * 8, 0);
	assert_non_null(page_of(f, T(2), PT_DIRECTORY_LEVEL, 0));
	write64(f, T(2) + 7 * 8, 0);
	assert_null(page_of(f, T(2), PT_DIRECTORY_LEVEL, 0));
	assert_non_null(page_of(f, T(1), PT_DIRECTORY_LEVEL, 0));
	assert_int_equal(f->kvm->stat.mmu_flooded, 1);
	assert_true(f->vcpu->requests & KVM_REQ_MMU_RELOAD);
	fixture_free(f);
}

/* ---- 4-level: T0[1] -> T1[2] -> T2[3] -> PT T3, gptes i map T(10 + i); T3's gpte 9 maps
 * the PD T2 itself at GVA(9). ---- */

#define GVA(i) (1ull << 39 | 2ull << 30 | 3ull << 21 | (uint64_t)(i) << 12)

static struct fixture *make64(uint64_t bugs)
{
	struct fixture *f = make(PAGING_4LEVEL, bugs);

	put64(f, T(0) + 1 * 8, T(1) | PWU | A);
	put64(f, T(1) + 2 * 8, T(2) | PWU | A);
	put64(f, T(2) + 3 * 8, T(3) | PWU | A);
	for (int i = 0; i < 4; i++)
		put64(f, T(3) + (uint64_t)i * 8, T(10 + i) | PWU | A | D);
	put64(f, T(3) + 9 * 8, T(2) | PWU | A | D);
	load(f);
	fault(f, GVA(1), 0);
	return f;
}

static struct kvm_mmu_page *pd_page(struct fixture *f) { return page_of(f, T(2), PT_DIRECTORY_LEVEL, 0); }

/* Level-1 pages never flood; a directory floods at the third write since its last use, or
 * at the fourth with bug S3, which leaves a valid page the auditor reports. */
static void third_write_floods_a_directory_not_a_table(void **state)
{
	char msg[256];

	(void)state;
	for (int bug = 0; bug < 2; bug++) {
		struct fixture *f = make64(bug ? 1ull << KVM_BUG_S3_FLOODING_OFF_BY_ONE : 0);

		for (int i = 0; i < 5; i++)
			write64(f, T(3) + 1 * 8, T(10 + i) | PWU | A | D);
		assert_non_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 0));
		write64(f, T(2) + 5 * 8, 0);
		write64(f, T(2) + 6 * 8, 0);
		assert_true(kvm_mmu_audit(f->kvm, msg, sizeof(msg)));
		write64(f, T(2) + 7 * 8, 0);
		assert_int_equal(pd_page(f) != NULL, bug);
		assert_int_equal(kvm_mmu_audit(f->kvm, msg, sizeof(msg)), !bug);
		if (bug)
			assert_non_null(strstr(msg, "write flooding"));
		write64(f, T(2) + 8 * 8, 0);
		assert_null(pd_page(f));
		assert_true(kvm_mmu_audit(f->kvm, msg, sizeof(msg)));
		assert_int_equal(f->kvm->stat.mmu_flooded, 1);
		assert_int_equal(f->kvm->stat.mmu_pte_updated, 5);
		fixture_free(f);
	}
}

/* A fault whose FNAME(fetch) walks through the page restarts its count. */
static void a_fault_through_the_page_restarts_the_count(void **state)
{
	struct fixture *f = make64(0);

	(void)state;
	write64(f, T(2) + 5 * 8, 0);
	write64(f, T(2) + 6 * 8, 0);
	fault(f, GVA(2), 0);
	assert_int_equal(pd_page(f)->write_flooding_count, 0);
	write64(f, T(2) + 7 * 8, 0);
	write64(f, T(2) + 8 * 8, 0);
	assert_non_null(pd_page(f));
	fixture_free(f);
}

/* kvm_mmu_get_page finding the page restarts its count. */
static void get_page_hit_restarts_the_count(void **state)
{
	struct fixture *f = make64(0);
	struct kvm_mmu_page *sp = pd_page(f);

	(void)state;
	write64(f, T(2) + 5 * 8, 0);
	write64(f, T(2) + 6 * 8, 0);
	assert_ptr_equal(kvm_mmu_get_page(f->vcpu, T(2) >> PAGE_SHIFT, GVA(1), PT_DIRECTORY_LEVEL, false,
					  sp->role.access), sp);
	assert_int_equal(sp->write_flooding_count, 0);
	fixture_free(f);
}

/* A write fault on a write-tracked gfn is emulated without FNAME(fetch): the pages on its
 * shadow walk restart their count there (shadow_page_table_clear_flood), the root too, so
 * the vCPU's own trapped writes never flood its current root. */
static void write_tracked_fault_restarts_the_counts_on_its_walk(void **state)
{
	struct fixture *f = make64(0);
	struct kvm_mmu_page *root = page_of(f, T(0), PT64_ROOT_4LEVEL, 0);
	struct x86_exception ex;

	(void)state;
	fault(f, GVA(9), 0);
	write64(f, T(0) + 5 * 8, 0);
	write64(f, T(0) + 6 * 8, 0);
	write64(f, T(2) + 5 * 8, 0);
	write64(f, T(2) + 6 * 8, 0);
	assert_int_equal(root->write_flooding_count, 2);
	assert_int_equal(kvm_mmu_page_fault(f->vcpu, GVA(9), PFERR_PRESENT_MASK | PFERR_WRITE_MASK, &ex),
			 RET_PF_EMULATE);
	assert_int_equal(root->write_flooding_count, 0);
	assert_int_equal(pd_page(f)->write_flooding_count, 0);
	fixture_free(f);
}

/* A fast CR3 switch restarts the count of the root it takes from prev_roots. */
static void fast_cr3_switch_restarts_the_root_count(void **state)
{
	struct fixture *f = make64(0);
	struct kvm_mmu_page *root = page_of(f, T(0), PT64_ROOT_4LEVEL, 0);

	(void)state;
	put64(f, T(6) + 1 * 8, T(1) | PWU | A);
	kvm_mmu_new_cr3(f->vcpu, T(6), false);
	f->vcpu->arch.cr3 = T(6);
	assert_int_equal(kvm_mmu_load(f->vcpu), 0);
	write64(f, T(0) + 5 * 8, 0);
	write64(f, T(0) + 6 * 8, 0);
	assert_int_equal(root->write_flooding_count, 2);
	kvm_mmu_new_cr3(f->vcpu, T(0), false);
	assert_int_equal(f->vcpu->mmu.root_hpa, root->hpa);
	assert_int_equal(root->write_flooding_count, 0);
	fixture_free(f);
}

/* The refill needs the page's role to match the vCPU's on mmu_base_role_mask: after
 * CR0.WP changes the old page only loses the spte. */
static void refill_needs_the_vcpus_role(void **state)
{
	struct fixture *f = make64(0);

	(void)state;
	f->vcpu->arch.cr0 &= ~X86_CR0_WP;
	kvm_mmu_reset_context(f->vcpu);
	write64(f, T(3) + 1 * 8, T(20) | PWU | A | D);
	assert_non_null(page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 0));
	assert_int_equal(f->kvm->stat.mmu_pte_write, 1);
	assert_int_equal(f->kvm->stat.mmu_pte_updated, 0);
	f->vcpu->arch.cr0 |= X86_CR0_WP;
	kvm_mmu_reset_context(f->vcpu);
	assert_int_equal(kvm_mmu_load(f->vcpu), 0);
	write64(f, T(3) + 1 * 8, T(20) | PWU | A | D);
	assert_int_equal(spte_to_pfn(spte_at(f, GVA(1), PT_PAGE_TABLE_LEVEL)), host_pfn(f, T(20)));
	assert_int_equal(f->kvm->stat.mmu_pte_updated, 1);
	fixture_free(f);
}

/* With paging off the context's update_pte is nonpaging_update_pte: a page whose role
 * matches (CR4.PAE still set) is counted as updated but its spte is not refilled. */
static void nonpaging_context_refills_nothing(void **state)
{
	struct fixture *f = make64(0);
	struct kvm_mmu_page *pt = page_of(f, T(3), PT_PAGE_TABLE_LEVEL, 0);

	(void)state;
	f->vcpu->arch.cr0 &= ~X86_CR0_PG;
	f->vcpu->arch.efer &= ~EFER_LMA;
	kvm_mmu_reset_context(f->vcpu);
	write64(f, T(3) + 1 * 8, T(20) | PWU | A | D);
	assert_int_equal(f->kvm->stat.mmu_pte_updated, 1);
	assert_false(present(f, pt->spt[1]));
	fixture_free(f);
}

/* need_remote_flush: a refilled spte that keeps frame and rights needs the local flush
 * only; losing W, gaining NX or a new frame flush every vCPU. */
static void remote_flush_only_when_the_spte_loses_something(void **state)
{
	static const struct { uint64_t gpte; bool remote; } writes[] = {
		{ T(11) | PWU | A | D, false },
		{ T(11) | PT_PRESENT_MASK | PT_USER_MASK | A | D, true },
		{ T(11) | PWU | A | D | PT64_NX_MASK, true },
		{ T(12) | PWU | A | D, true },
		{ 0, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		struct fixture *f = make64(0);
		uint64_t before;

		fault(f, GVA(1), PFERR_WRITE_MASK);
		f->vcpu->requests = 0;
		before = f->kvm->stat.remote_tlb_flush;
		write64(f, T(3) + 1 * 8, writes[i].gpte);
		assert_int_equal(f->kvm->stat.remote_tlb_flush - before, writes[i].remote);
		assert_true(f->vcpu->requests & KVM_REQ_TLB_FLUSH);
		fixture_free(f);
	}
}

/* Bug S5: need_remote_flush ignores NX, so a gpte write that only sets NX flushes the
 * local TLB alone. */
static void s5_nx_write_flushes_no_remote_tlb(void **state)
{
	struct fixture *f = make64(1ull << KVM_BUG_S5_REMOTE_FLUSH_IGNORES_NX);
	uint64_t before;

	(void)state;
	fault(f, GVA(1), PFERR_WRITE_MASK);
	f->vcpu->requests = 0;
	before = f->kvm->stat.remote_tlb_flush;
	write64(f, T(3) + 1 * 8, T(11) | PWU | A | D | PT64_NX_MASK);
	assert_int_equal(f->kvm->stat.remote_tlb_flush, before);
	assert_true(f->vcpu->requests & KVM_REQ_TLB_FLUSH);
	fixture_free(f);
}

/* No shadow page tracks anything: the write is not even counted. */
static void no_indirect_pages_no_work(void **state)
{
	struct fixture *f = make(PAGING_4LEVEL, 0);

	(void)state;
	write64(f, T(3), T(10) | PWU | A);
	assert_int_equal(f->kvm->stat.mmu_pte_write, 0);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pd32_write_reaches_both_sptes_of_its_quadrant),
		cmocka_unit_test(pt32_write_refills_the_spte_in_its_half),
		cmocka_unit_test(misaligned_writes_zap_the_page),
		cmocka_unit_test(byte_write_at_a_boundary_drops_only_the_spte),
		cmocka_unit_test(pae_vcpu_widens_a_write_to_a_32bit_table),
		cmocka_unit_test(pd32_third_write_floods_every_quadrant),
		cmocka_unit_test(pae_half_write_refills_from_the_whole_gpte),
		cmocka_unit_test(pae_third_write_floods_the_directory),
		cmocka_unit_test(third_write_floods_a_directory_not_a_table),
		cmocka_unit_test(a_fault_through_the_page_restarts_the_count),
		cmocka_unit_test(get_page_hit_restarts_the_count),
		cmocka_unit_test(write_tracked_fault_restarts_the_counts_on_its_walk),
		cmocka_unit_test(fast_cr3_switch_restarts_the_root_count),
		cmocka_unit_test(refill_needs_the_vcpus_role),
		cmocka_unit_test(nonpaging_context_refills_nothing),
		cmocka_unit_test(remote_flush_only_when_the_spte_loses_something),
		cmocka_unit_test(s5_nx_write_flushes_no_remote_tlb),
		cmocka_unit_test(no_indirect_pages_no_work),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
