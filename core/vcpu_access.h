/* The simulated CPU (DESIGN §3): a guest access goes through the vCPU's hardware TLB, then
 * the shadow page tables from the root; a missing or insufficient spte exits to
 * kvm_mmu_page_fault, which retries, emulates, or injects a #PF, exactly as in KVM.
 * KVM's requests (TLB flush, MMU reload, triple fault) are honoured at guest entry. */
#ifndef SHADOWFUZZ_CORE_VCPU_ACCESS_H
#define SHADOWFUZZ_CORE_VCPU_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm_host.h"

/* Faults one access may take before it counts as a livelock (a finding). */
#define CPU_MAX_FAULTS 32

enum cpu_access_kind { CPU_READ, CPU_WRITE, CPU_FETCH };

enum cpu_outcome {
	CPU_OK,          /* done by the hardware or by emulation */
	CPU_MMIO_EXIT,   /* emulated access to a gpa without usable memory: exit to userspace */
	CPU_PAGE_FAULT,  /* #PF injected into the guest */
	CPU_GP_FAULT,    /* non-canonical address */
	CPU_SHUTDOWN,    /* KVM_REQ_TRIPLE_FAULT: the VM stopped */
	CPU_LIVELOCK,    /* CPU_MAX_FAULTS faults without progress */
	CPU_MODEL_ERROR, /* the model hit a state where KVM would crash (kvm->error) */
};

struct cpu_access {
	gva_t gva;
	enum cpu_access_kind kind;
	int cpl;
	unsigned size;       /* 1, 4 or 8 */
	const void *data;    /* bytes a write stores; NULL stores back what is there */
};

struct cpu_access_result {
	enum cpu_outcome outcome;
	uint32_t error_code; /* CPU_PAGE_FAULT */
	uint64_t cr2;
	gpa_t gpa;           /* CPU_OK, CPU_MMIO_EXIT */
	bool emulated;
	int faults;
};

/* Runs one access on vcpu (sets the vCPU's CPL to acc->cpl). */
void kvm_vcpu_access(struct kvm_vcpu *vcpu, const struct cpu_access *acc,
		     struct cpu_access_result *res);

/* vcpu_enter_guest's request processing and MMU reload, without an access. Returns false
 * if the VM shut down or the model failed. */
bool kvm_vcpu_enter_guest(struct kvm_vcpu *vcpu);

#endif
