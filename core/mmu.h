/* MMU helpers shared by the MMU's own files (arch/x86/kvm/mmu.h). Not for the harness. */
#ifndef SHADOWFUZZ_CORE_MMU_H
#define SHADOWFUZZ_CORE_MMU_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_host.h"

static inline bool is_paging(const struct kvm_vcpu *vcpu) { return vcpu->arch.cr0 & X86_CR0_PG; }
static inline bool is_pae(const struct kvm_vcpu *vcpu) { return vcpu->arch.cr4 & X86_CR4_PAE; }
static inline bool is_pse(const struct kvm_vcpu *vcpu) { return vcpu->arch.cr4 & X86_CR4_PSE; }
static inline bool is_long_mode(const struct kvm_vcpu *vcpu) { return vcpu->arch.efer & EFER_LMA; }
static inline bool is_la57_mode(const struct kvm_vcpu *vcpu)
{
	return is_long_mode(vcpu) && (vcpu->arch.cr4 & X86_CR4_LA57);
}
static inline bool is_nx(const struct kvm_vcpu *vcpu) { return vcpu->arch.efer & EFER_NX; }
static inline bool is_write_protection(const struct kvm_vcpu *vcpu) { return vcpu->arch.cr0 & X86_CR0_WP; }

/* permission_fault: 0 if an access with error-code bits pfec (W/U/F) may use a translation
 * with accumulated access pte_access (ACC_*) and protection key pte_pkey; else the #PF
 * error code bits it earns (P, and PK for a protection-key fault). */
uint32_t permission_fault(const struct kvm_vcpu *vcpu, const struct kvm_mmu *mmu,
			  unsigned pte_access, unsigned pte_pkey, uint32_t pfec);

/* __is_rsvd_bits_set for a guest entry at level. */
static inline bool is_rsvd_bits_set(const struct kvm_mmu *mmu, uint64_t gpte, int level)
{
	int large = (gpte >> 7) & 1;

	return gpte & mmu->guest_rsvd_check.rsvd_bits_mask[large][level - 1];
}

/* kvm_vcpu_gfn_to_hva_prot: hva of gfn in the vCPU's address space, KVM_HVA_ERR_BAD when
 * no usable slot holds it. */
hva_t kvm_vcpu_gfn_to_hva_prot(struct kvm_vcpu *vcpu, gfn_t gfn, bool *writable);

/* kvm_vcpu_mark_page_dirty: set gfn in its slot's dirty bitmap if the slot logs. */
void kvm_vcpu_mark_page_dirty(struct kvm_vcpu *vcpu, gfn_t gfn);

#endif
