/* The model's observable translations, for the checker (DESIGN §5 rule 2): every present
 * leaf spte (and MMIO spte) reachable from a root of a vCPU, current or cached, and every
 * entry of the vCPUs' hardware TLBs, in guest terms. */
#ifndef SHADOWFUZZ_CORE_MMU_OBSERVE_H
#define SHADOWFUZZ_CORE_MMU_OBSERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_host.h"

struct kvm_translation {
	bool from_tlb;
	int vcpu_id;
	int as_id;
	uint64_t cr3;
	gva_t gva;   /* aligned to the mapping size */
	int level;   /* 1, 2, 3 */
	bool mmio;
	gpa_t gpa;
	kvm_pfn_t pfn;
	unsigned access; /* ACC_* */
};

void kvm_mmu_for_each_translation(struct kvm *kvm,
				  void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx);

#endif
