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
	bool unsync;      /* a spte of an unsync page: it may lag the guest's table (spec §5.5) */
	bool cached_root; /* reached from a prev_roots entry, not the vCPU's current root */
	/* The vCPU has a reload pending: it frees its roots before it runs the guest again,
	 * so the spte is none of its translations; what its tables give there now is still
	 * one its processor may cache, since to the guest it runs all along (the checker's
	 * TLB history). */
	bool reload_pending;
	/* The vCPU syncs every unsync page below its roots before it runs the guest again
	 * (KVM_REQ_MMU_SYNC pending): its unsync sptes may lag until then. */
	bool sync_pending;
};

void kvm_mmu_for_each_translation(struct kvm *kvm,
				  void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx);
/* The sptes reachable from vcpu's current root only. */
void kvm_mmu_for_each_root_translation(struct kvm_vcpu *vcpu,
				       void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx);

/* One spte the hardware walk of an address reads, root first, and the shadow page that
 * holds it (has_sp false for the vCPU's pae_root, which is no shadow page). */
struct kvm_shadow_walk_step {
	int level;
	unsigned index;
	uint64_t spte;
	hpa_t table_hpa;
	bool has_sp;
	gfn_t gfn;
	union kvm_mmu_page_role role;
};

struct kvm_shadow_walk {
	hpa_t root_hpa; /* INVALID_PAGE: no root loaded */
	int n;
	struct kvm_shadow_walk_step steps[PT64_ROOT_MAX_LEVEL + 1];
};

/* The shadow walk of gva from the vCPU's current root (for_each_shadow_entry) down to the
 * leaf or the first non-present spte; reads only. */
void kvm_mmu_shadow_walk(struct kvm_vcpu *vcpu, gva_t gva, struct kvm_shadow_walk *out);

#endif
