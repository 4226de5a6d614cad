/* The guest page walker: KVM's FNAME(walk_addr_generic) (arch/x86/kvm/paging_tmpl.h) for
 * 32-bit (PTTYPE 32) and PAE/4-level/5-level (PTTYPE 64) guests, and the MMU context that
 * feeds it (mmu.c: update_permission_bitmask, update_pkru_bitmask, reset_rsvds_bits_mask). */
#ifndef SHADOWFUZZ_CORE_PAGING_H
#define SHADOWFUZZ_CORE_PAGING_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_host.h"

struct x86_exception {
	uint8_t vector;
	uint32_t error_code;
	uint64_t address; /* CR2 */
};

struct guest_walker {
	int level;     /* level of the leaf, or of the entry that faulted */
	int max_level; /* level the walk started at */
	gfn_t table_gfn[PT_MAX_FULL_LEVELS];
	uint64_t ptes[PT_MAX_FULL_LEVELS];
	uint64_t prefetch_ptes[8];
	gpa_t pte_gpa[PT_MAX_FULL_LEVELS];
	bool pte_writable[PT_MAX_FULL_LEVELS];
	unsigned pt_access;  /* access of the last non-leaf accumulation (ACC_*) */
	/* [level - 1]: access of the path above the entry at level, i.e. what a table below
	 * that entry inherits (b1bd5cba3306; bug B13 used pt_access for every level). */
	unsigned pt_access_level[PT_MAX_FULL_LEVELS];
	unsigned pte_access; /* full accumulation (ACC_*) */
	gfn_t gfn;
	struct x86_exception fault;
};

/* The mode the vCPU's control registers select. */
enum paging_mode kvm_vcpu_paging_mode(const struct kvm_vcpu *vcpu);

/* Recompute the walker context (root level, permission and PKRU bitmaps, reserved masks)
 * from the vCPU's CR0/CR4/EFER: KVM's kvm_init_mmu for a shadow-paging vCPU. */
void kvm_init_mmu(struct kvm_vcpu *vcpu);

/* load_pdptrs: read the four PDPTEs at cr3 into mmu.pdptrs. Returns false (and leaves
 * them alone) when one is present with reserved bits set or cannot be read: MOV CR3 then
 * raises #GP. */
bool load_pdptrs(struct kvm_vcpu *vcpu, uint64_t cr3);

/* Walk the guest tables for addr with access = PFERR_{WRITE,USER,FETCH}_MASK bits. On
 * success returns true and fills the walker (A/D bits set in guest memory as KVM does);
 * on failure returns false with walker->fault the #PF to inject. */
bool kvm_walk_addr(struct guest_walker *walker, struct kvm_vcpu *vcpu, gva_t addr,
		   uint32_t access);

/* Page-frame-relative guest physical address of a successful walk. */
gpa_t guest_walker_gpa(const struct guest_walker *walker, gva_t addr);

/* is_noncanonical_address for the vCPU's current mode (48 or 57 bits). */
bool is_noncanonical_address(gva_t addr, const struct kvm_vcpu *vcpu);

#endif
