/* The guest page walker for every paging mode: paging_tmpl.h instantiated twice, as KVM
 * does, plus the nonpaging case (nonpaging_gva_to_gpa: gpa = gva). */
#include <errno.h>
#include <string.h>

#include "mmu.h"
#include "paging.h"

#define PTTYPE 64
#include "paging_tmpl.h"
#undef PTTYPE

#define PTTYPE 32
#include "paging_tmpl.h"
#undef PTTYPE

bool kvm_walk_addr(struct guest_walker *walker, struct kvm_vcpu *vcpu, gva_t addr,
		   uint32_t access)
{
	switch (kvm_vcpu_paging_mode(vcpu)) {
	case PAGING_32:
		return paging32_walk_addr_generic(walker, vcpu, &vcpu->mmu, addr, access);
	case PAGING_PAE:
	case PAGING_4LEVEL:
	case PAGING_5LEVEL:
		return paging64_walk_addr_generic(walker, vcpu, &vcpu->mmu, addr, access);
	default:
		memset(walker, 0, sizeof(*walker));
		walker->level = PT_PAGE_TABLE_LEVEL;
		walker->gfn = (addr & 0xffffffffull) >> PAGE_SHIFT;
		walker->pte_access = ACC_ALL;
		walker->pt_access = ACC_ALL;
		return true;
	}
}

int kvm_mmu_shadow_fault(struct kvm_vcpu *vcpu, gva_t addr, uint32_t error_code,
			 struct x86_exception *fault)
{
	if (vcpu->mmu.root_level == PT32_ROOT_LEVEL)
		return paging32_page_fault(vcpu, addr, error_code, fault);
	return paging64_page_fault(vcpu, addr, error_code, fault);
}

/* mmu->update_pte of the vCPU's current context: nonpaging_update_pte does nothing, so with
 * paging off a matching page only loses the written spte. */
void kvm_mmu_update_pte(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *spte, uint64_t gentry)
{
	if (vcpu->mmu.direct_map)
		return;
	if (vcpu->mmu.root_level == PT32_ROOT_LEVEL)
		paging32_update_pte(vcpu, sp, spte, gentry);
	else
		paging64_update_pte(vcpu, sp, spte, gentry);
}

/* mmu->sync_page: nonpaging_sync_page keeps nothing. */
int kvm_mmu_sync_page(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp)
{
	if (vcpu->mmu.direct_map)
		return 0;
	if (vcpu->mmu.root_level == PT32_ROOT_LEVEL)
		return paging32_sync_page(vcpu, sp);
	return paging64_sync_page(vcpu, sp);
}

void kvm_mmu_invlpg_root(struct kvm_vcpu *vcpu, gva_t gva, hpa_t root)
{
	if (vcpu->mmu.root_level == PT32_ROOT_LEVEL)
		paging32_invlpg(vcpu, gva, root);
	else
		paging64_invlpg(vcpu, gva, root);
}

gpa_t guest_walker_gpa(const struct guest_walker *walker, gva_t addr)
{
	return (walker->gfn << PAGE_SHIFT) | (addr & ~PAGE_MASK);
}
