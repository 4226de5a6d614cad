/* MMU helpers shared by the MMU's own files (arch/x86/kvm/mmu.h). Not for the harness. */
#ifndef SHADOWFUZZ_CORE_MMU_H
#define SHADOWFUZZ_CORE_MMU_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_host.h"
#include "mmu_trace.h"
#include "paging.h"
#include "pte_list.h"
#include "spte.h"

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

/* The bits of a present spte at level that the shadow zero-bit check forbids. */
static inline uint64_t shadow_zero_bits(const struct kvm_mmu *mmu, uint64_t spte, int level)
{
	int large = (spte >> 7) & 1;

	return spte & mmu->shadow_zero_check.rsvd_bits_mask[large][level - 1];
}

/* is_shadow_zero_bits_set (no EPT, so no memory-type check). */
static inline bool is_shadow_zero_bits_set(const struct kvm_mmu *mmu, uint64_t spte, int level)
{
	return shadow_zero_bits(mmu, spte, level) != 0;
}

/* kvm_vcpu_gfn_to_hva_prot: hva of gfn in the vCPU's address space, KVM_HVA_ERR_BAD when
 * no usable slot holds it. */
hva_t kvm_vcpu_gfn_to_hva_prot(struct kvm_vcpu *vcpu, gfn_t gfn, bool *writable);

/* kvm_vcpu_mark_page_dirty: set gfn in its slot's dirty bitmap if the slot logs. */
void kvm_vcpu_mark_page_dirty(struct kvm_vcpu *vcpu, gfn_t gfn);

/* ---- shadow MMU (mmu.c) ---- */

/* "Physical" addresses of shadow pages: page i of the arena is at SHADOW_HPA_BASE + i
 * pages, above every host frame, so a spte's pfn says whether it links a shadow page. */
#define SHADOW_HPA_BASE (1ull << 50)
#define PAE_ROOT_HPA_BASE (SHADOW_HPA_BASE - KVM_MAX_VCPUS * PAGE_SIZE)

/* The VM's shadow-MMU state (struct kvm_arch, MMU part). */
struct kvm_arch_mmu {
	struct spte_params spte;
	struct kvm_mmu_page_list active_mmu_pages;
	struct kvm_mmu_page_hash_head mmu_page_hash[KVM_NUM_MMU_PAGES];
	unsigned long n_used_mmu_pages;
	/* The page budget (spec §6.5): n_max_mmu_pages, and the KVM_SET_NR_MMU_PAGES value
	 * (0: none, the default follows the memslots). */
	unsigned long n_max_mmu_pages, n_requested_mmu_pages;
	unsigned indirect_shadow_pages;
	uint64_t mmu_valid_gen; /* K420, K53: fast invalidate */
	struct pte_list_cache pte_cache;
	/* Shadow page arena: pages[i] lives at SHADOW_HPA_BASE + i * PAGE_SIZE. */
	struct kvm_mmu_page **pages;
	size_t nr_pages, pages_cap;
	struct kvm_mmu_page **spt_index; /* open addressing: spt address -> page */
	size_t spt_index_cap;
	struct kvm_mmu_page_list free_pages;
	uint64_t pae_roots[KVM_MAX_VCPUS][4];
	/* Where an out-of-bounds metadata index lands (bug B17) after the model error. */
	struct kvm_rmap_head scratch_rmap;
	struct kvm_lpage_info scratch_lpage;
	/* Statistics outside struct kvm_vm_stat: KVM's vCPU stats pf_fixed and pf_emulate, and
	 * the model's count of make_mmu_pages_available finding no page left. */
	uint64_t stat_pf_fixed, stat_pf_emulate, stat_enospc;
};

enum {
	RET_PF_RETRY = 0,
	RET_PF_EMULATE = 1,
	RET_PF_INVALID = 2,
};

#define SET_SPTE_WRITE_PROTECTED_PT (1 << 0)
#define SET_SPTE_NEED_REMOTE_TLB_FLUSH (1 << 1)

int kvm_mmu_create(struct kvm *kvm);
void kvm_mmu_destroy(struct kvm *kvm);
/* Forget every shadow page (between fuzz inputs); memslot metadata is reset separately. */
void kvm_mmu_reset_vm(struct kvm *kvm);
/* A vCPU's part of kvm_mmu_create (its pae_root) with no roots loaded. */
void init_vcpu_mmu(struct kvm *kvm, struct kvm_vcpu *vcpu);

struct kvm_mmu_page *page_header(const struct kvm *kvm, hpa_t hpa);
struct kvm_mmu_page *sptep_to_sp(const struct kvm *kvm, const uint64_t *sptep);
gfn_t kvm_mmu_page_get_gfn(const struct kvm_mmu_page *sp, int index);
bool is_obsolete_sp(const struct kvm *kvm, const struct kvm_mmu_page *sp);

/* kvm_flush_remote_tlbs: every vCPU flushes its TLB before it next runs the guest. */
void kvm_flush_remote_tlbs(struct kvm *kvm);
/* Record a model crash (where KVM would BUG or dereference NULL); the run reports it. */
void kvm_model_error(struct kvm *kvm, const char *fmt, ...);

/* make_mmu_pages_available: 0, or -ENOSPC when no page is left after zapping the oldest. */
int make_mmu_pages_available(struct kvm_vcpu *vcpu);

/* Roots and context. */
void kvm_mmu_reset_context(struct kvm_vcpu *vcpu);
int kvm_mmu_load(struct kvm_vcpu *vcpu);
void kvm_mmu_sync_roots(struct kvm_vcpu *vcpu);
void kvm_mmu_unload(struct kvm_vcpu *vcpu);
void kvm_mmu_new_cr3(struct kvm_vcpu *vcpu, uint64_t new_cr3, bool skip_tlb_flush);
void kvm_mmu_invlpg(struct kvm_vcpu *vcpu, gva_t gva);

/* Fault path. */
int kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gva_t cr2, uint32_t error_code,
		       struct x86_exception *fault);
int kvm_mmu_shadow_fault(struct kvm_vcpu *vcpu, gva_t addr, uint32_t error_code,
			 struct x86_exception *fault);

/* Helpers paging_tmpl.h's fault path uses. */
struct kvm_mmu_page *kvm_mmu_get_page(struct kvm_vcpu *vcpu, gfn_t gfn, gva_t gaddr,
				      unsigned level, bool direct, unsigned access);
void link_shadow_page(struct kvm_vcpu *vcpu, uint64_t *sptep, struct kvm_mmu_page *sp);
void drop_large_spte(struct kvm_vcpu *vcpu, uint64_t *sptep);
void validate_direct_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned direct_access);
int mmu_set_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned pte_access, bool write_fault,
		 int level, gfn_t gfn, kvm_pfn_t pfn, bool speculative, bool host_writable);
int mapping_level(struct kvm_vcpu *vcpu, gfn_t large_gfn, bool *force_pt_level);
/* Prefetch (spec §4.7). */
#define PTE_PREFETCH_NUM 8
kvm_pfn_t pte_prefetch_gfn_to_pfn(struct kvm_vcpu *vcpu, gfn_t gfn, bool no_dirty_log);
void __direct_pte_prefetch(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *sptep);
bool kvm_page_track_is_active(struct kvm_vcpu *vcpu, gfn_t gfn);
/* Write flooding (spec §5.4): the emulated write that brings a level>1 page's
 * write_flooding_count to this many zaps it (detect_write_flooding); using the page resets
 * the count. */
#define WRITE_FLOODING_LIMIT 3
void clear_sp_write_flooding_count(struct kvm_vcpu *vcpu, uint64_t *sptep);
/* The write-tracked fault path's reset of the counts along addr's shadow walk. */
void shadow_page_table_clear_flood(struct kvm_vcpu *vcpu, gva_t addr);

/* The shadow walk iterator (for_each_shadow_entry). */
struct kvm_shadow_walk_iterator {
	uint64_t addr;
	hpa_t shadow_addr;
	uint64_t *sptep;
	int level;
	unsigned index;
};
void shadow_walk_init(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu, uint64_t addr);
void shadow_walk_init_using_root(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu,
				 hpa_t root, uint64_t addr);
bool shadow_walk_okay(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu);
void shadow_walk_next(struct kvm_shadow_walk_iterator *it);
uint64_t *hpa_to_sptes(struct kvm_vcpu *vcpu, hpa_t hpa);

/* MMIO cache and pfn lookups shared with paging_tmpl.h and the emulator. */
void vcpu_cache_mmio_info(struct kvm_vcpu *vcpu, gva_t gva, gfn_t gfn, unsigned access);
bool vcpu_match_mmio_gva(const struct kvm_vcpu *vcpu, gva_t gva);
bool vcpu_match_mmio_gpa(const struct kvm_vcpu *vcpu, gpa_t gpa);
bool handle_abnormal_pfn(struct kvm_vcpu *vcpu, gva_t gva, gfn_t gfn, kvm_pfn_t pfn,
			 unsigned access, int *ret);
kvm_pfn_t kvm_vcpu_gfn_to_pfn(struct kvm_vcpu *vcpu, gfn_t gfn, bool write, bool *writable);
bool page_fault_handle_page_track(struct kvm_vcpu *vcpu, uint32_t error_code, gfn_t gfn);

/* mmu->update_pte: refill a level-1 spte from a new gpte (paging_tmpl.h). */
void kvm_mmu_update_pte(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *spte, uint64_t gentry);
void kvm_mmu_drop_spte(struct kvm *kvm, uint64_t *sptep);
/* Record a WARN KVM would print (or a state it should not reach); the first one counts. */
void kvm_model_warn(struct kvm *kvm, enum kvm_warning_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool mmu_page_zap_pte(struct kvm *kvm, struct kvm_mmu_page *sp, uint64_t *spte);
void mmu_sync_children(struct kvm_vcpu *vcpu, struct kvm_mmu_page *parent);
int set_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned pte_access, int level, gfn_t gfn,
	     kvm_pfn_t pfn, bool speculative, bool can_unsync, bool host_writable);
bool sync_mmio_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, gfn_t gfn, unsigned access,
		    int *nr_present);
/* mmu->sync_page and mmu->invlpg of the vCPU's mode (paging_tmpl.h). */
int kvm_mmu_sync_page(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp);
void kvm_mmu_invlpg_root(struct kvm_vcpu *vcpu, gva_t gva, hpa_t root);

/* Emulated guest writes reach the MMU through page tracking (kvm_page_track_write). */
void kvm_mmu_pte_write(struct kvm_vcpu *vcpu, gpa_t gpa, const uint8_t *new, int bytes);

/* KVM_GET_DIRTY_LOG's re-protection of the pages of one bitmap word (bit i = gfn
 * base_gfn + gfn_offset + i). */
void kvm_arch_mmu_enable_log_dirty_pt_masked(struct kvm *kvm, struct kvm_memory_slot *slot,
					     gfn_t gfn_offset, uint64_t mask);

/* Memslot hooks (kvm_arch_flush_shadow_memslot, kvm_arch_memslots_updated,
 * kvm_arch_commit_memory_region). */
void kvm_mmu_install_memslot_hooks(struct kvm *kvm);

#endif
