/* The VM and vCPU objects of the model (include/linux/kvm_host.h, arch/x86/include/asm/
 * kvm_host.h). There is no global "current vCPU": every MMU function takes its vCPU. */
#ifndef SHADOWFUZZ_CORE_KVM_HOST_H
#define SHADOWFUZZ_CORE_KVM_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "host_memory.h"
#include "kvm_config.h"
#include "memslot.h"
#include "x86.h"

#define KVM_MAX_VCPUS 4

/* Reserved-bit masks of guest paging entries (struct rsvd_bits_validate). Index [0] is for
 * entries with PS=0 (or 4K leaves), [1] for large leaves (PS=1). */
struct rsvd_bits_validate {
	uint64_t rsvd_bits_mask[2][PT64_ROOT_MAX_LEVEL];
};

/* struct kvm_mmu, guest-walker part (what init_kvm_softmmu computes). */
struct kvm_mmu {
	int root_level; /* guest walk root level; 0 when paging is off */
	bool nx;        /* EFER.NX: bit 63 is NX, not reserved */
	uint8_t last_nonleaf_level;
	uint8_t permissions[16]; /* update_permission_bitmask */
	uint32_t pkru_mask;      /* update_pkru_bitmask */
	struct rsvd_bits_validate guest_rsvd_check;
	uint64_t pdptrs[4]; /* PAE: loaded at MOV CR3 / paging enable (load_pdptrs) */
};

/* Architectural vCPU state the MMU reads (kvm_read_cr0 ... kvm_x86_ops->get_cpl). */
struct kvm_vcpu_arch {
	uint64_t cr0, cr3, cr4, efer, rflags;
	uint32_t pkru;
	int cpl;
	bool smm; /* selects address space 1 */
};

struct kvm;

struct kvm_vcpu {
	struct kvm *kvm;
	int vcpu_id;
	struct kvm_vcpu_arch arch;
	struct kvm_mmu mmu;
};

struct kvm {
	struct kvm_config config;
	struct host_memory *host; /* not owned */
	struct kvm_memslots *memslots[KVM_ADDRESS_SPACE_NUM];
	struct kvm_memslots *memslots_spare[KVM_ADDRESS_SPACE_NUM]; /* install double buffer */
	struct kvm_memslot_arch_ops arch_ops;
	struct kvm_vcpu vcpus[KVM_MAX_VCPUS];
	int nr_vcpus;
};

/* Create / destroy / reset a VM with one vCPU in the reset state (paging off). The host
 * memory is the caller's. Return NULL / negative errno on allocation failure. */
struct kvm *kvm_create(const struct kvm_config *cfg, struct host_memory *host);
void kvm_destroy(struct kvm *kvm);
int kvm_reset(struct kvm *kvm, const struct kvm_config *cfg);

static inline struct kvm_memslots *kvm_vcpu_memslots(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm->memslots[vcpu->arch.smm ? 1 : 0];
}

#endif
