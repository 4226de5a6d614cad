/* The VM and vCPU objects of the model (include/linux/kvm_host.h, arch/x86/include/asm/
 * kvm_host.h). There is no global "current vCPU": every MMU function takes its vCPU. */
#ifndef SHADOWFUZZ_CORE_KVM_HOST_H
#define SHADOWFUZZ_CORE_KVM_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "host_memory.h"
#include "kvm_config.h"
#include "memslot.h"
#include "x86.h"

#define KVM_MAX_VCPUS 4
#define KVM_MMU_NUM_PREV_ROOTS 3
#define KVM_MMU_HASH_SHIFT 12
#define KVM_NUM_MMU_PAGES (1 << KVM_MMU_HASH_SHIFT)
#define SPTES_PER_PAGE 512

typedef uint64_t hpa_t;
#define INVALID_PAGE (~(hpa_t)0)
#define VALID_PAGE(x) ((x) != INVALID_PAGE)

/* union kvm_mmu_page_role (spec §3.2). K420 names bit 4 cr4_pae, K51+ gpte_is_8_bytes. */
union kvm_mmu_page_role {
	uint32_t word;
	struct {
		unsigned level : 4;
		unsigned gpte_is_8_bytes : 1;
		unsigned quadrant : 2;
		unsigned direct : 1;
		unsigned access : 3;
		unsigned invalid : 1;
		unsigned nxe : 1;
		unsigned cr0_wp : 1;
		unsigned smep_andnot_wp : 1;
		unsigned smap_andnot_wp : 1;
		unsigned ad_disabled : 1;
		unsigned guest_mode : 1;
		unsigned : 6;
		unsigned smm : 8;
	};
};

/* struct kvm_mmu_page: one shadow page table. */
struct kvm_mmu_page {
	TAILQ_ENTRY(kvm_mmu_page) link; /* kvm->arch.active_mmu_pages, or a zap list */
	LIST_ENTRY(kvm_mmu_page) hash_link;
	bool unsync;
	bool mmio_cached;
	bool on_hash; /* in mmu_page_hash (KVM: !hlist_unhashed) */
	union kvm_mmu_page_role role;
	gfn_t gfn;
	hpa_t hpa; /* "physical address" of spt, for link sptes and page_header() */
	uint64_t *spt;
	gfn_t *gfns; /* indirect pages: the gfn each spte maps */
	int root_count;
	unsigned unsync_children;
	struct kvm_rmap_head parent_ptes;
	uint64_t mmu_valid_gen; /* K420, K53 */
	uint64_t unsync_child_bitmap[SPTES_PER_PAGE / 64];
	int write_flooding_count;
};

TAILQ_HEAD(kvm_mmu_page_list, kvm_mmu_page);
LIST_HEAD(kvm_mmu_page_hash_head, kvm_mmu_page);

struct kvm_mmu_root_info {
	uint64_t cr3;
	hpa_t hpa;
};

/* Reserved-bit masks of guest paging entries (struct rsvd_bits_validate). Index [0] is for
 * entries with PS=0 (or 4K leaves), [1] for large leaves (PS=1). */
struct rsvd_bits_validate {
	uint64_t rsvd_bits_mask[2][PT64_ROOT_MAX_LEVEL];
};

/* struct kvm_mmu (what init_kvm_softmmu computes): guest walker and shadow roots. */
struct kvm_mmu {
	hpa_t root_hpa;
	uint64_t root_cr3;
	union kvm_mmu_page_role base_role; /* mmu_role.base */
	int shadow_root_level;
	bool direct_map; /* nonpaging: shadow pages map gpa = gva */
	uint64_t *pae_root; /* 4 entries: PAE and 32-bit guests, and nonpaging */
	hpa_t pae_root_hpa;
	struct kvm_mmu_root_info prev_roots[KVM_MMU_NUM_PREV_ROOTS];
	int root_level; /* guest walk root level; 0 when paging is off */
	bool nx;        /* EFER.NX: bit 63 is NX, not reserved */
	uint8_t last_nonleaf_level;
	uint8_t permissions[16]; /* update_permission_bitmask */
	uint32_t pkru_mask;      /* update_pkru_bitmask */
	struct rsvd_bits_validate guest_rsvd_check;
	/* Bits no spte of this context may have (reset_shadow_zero_bits_mask). */
	struct rsvd_bits_validate shadow_zero_check;
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
struct kvm_mmu_trace_event;

/* KVM_REQ_* the model honours at guest entry (vcpu_enter_guest). */
enum kvm_request {
	KVM_REQ_TLB_FLUSH = 1 << 0,
	KVM_REQ_MMU_RELOAD = 1 << 1,
	KVM_REQ_MMU_SYNC = 1 << 2,
	KVM_REQ_LOAD_CR3 = 1 << 3,
	KVM_REQ_TRIPLE_FAULT = 1 << 4,
};

/* One entry of the simulated hardware TLB: what the CPU loaded from the shadow tables. */
struct hw_tlb_entry {
	gva_t gva;  /* aligned to the mapping size */
	int level;  /* 1, 2, 3 */
	kvm_pfn_t pfn;
	gfn_t gfn;  /* gfn of the page at gva (from the spte's shadow page) */
	unsigned access; /* ACC_* the spte allowed */
	bool dirty; /* loaded by a write (hardware sets the spte's D) */
	uint64_t cr3; /* guest CR3 when it was loaded */
};

#define HW_TLB_ENTRIES 512

struct hw_tlb {
	int n;
	struct hw_tlb_entry entries[HW_TLB_ENTRIES];
};

struct kvm_vcpu {
	struct kvm *kvm;
	int vcpu_id;
	struct kvm_vcpu_arch arch;
	struct kvm_mmu mmu;
	unsigned requests; /* enum kvm_request bits */
	struct hw_tlb tlb;
	bool write_fault_to_shadow_pgtable;
	/* Per-vCPU MMIO cache (vcpu_cache_mmio_info, spec §2.5). */
	gva_t mmio_gva;
	gfn_t mmio_gfn;
	unsigned mmio_access;
	uint64_t mmio_gen;
};

/* struct kvm_vm_stat (arch/x86/include/asm/kvm_host.h, K420..K53): the per-VM counters KVM
 * exports in debugfs, incremented where v5.0 increments them; zeroed by kvm_reset. */
struct kvm_vm_stat {
	uint64_t mmu_shadow_zapped;
	uint64_t mmu_pte_write;
	uint64_t mmu_pte_updated;
	uint64_t mmu_pde_zapped;
	uint64_t mmu_flooded;
	uint64_t mmu_recycled;
	uint64_t mmu_cache_miss;
	uint64_t mmu_unsync;
	uint64_t remote_tlb_flush;
	/* Model only, KVM has no such stats: KVM_GET_DIRTY_LOG calls that returned a bitmap,
	 * and kvm_unsync_page calls (mmu_unsync counts the pages unsync now). */
	uint64_t dirty_log_reads;
	uint64_t mmu_unsync_total;
};

/* Where the model would have crashed (BUG_ON, NULL rmap...): a finding. */
struct kvm_model_error {
	bool set;
	char what[160];
};

/* A WARN KVM would print and go on from, or a state KVM reaches that it should not: the
 * model goes on as KVM does, and the harness judges it after the op. The kind names the
 * cases a checker rule knows to be KVM's own. */
enum kvm_warning_kind {
	KVM_WARN_UNEXPECTED,
	/* mmu_need_write_protect unsyncs a higher-level page of another address space
	 * (RULE_KVM_SMM_UNSYNC_OTHER_AS_TABLE). */
	KVM_WARN_UNSYNC_OTHER_AS_TABLE,
	/* Not a WARN in KVM: sync_mmio_spte stamps an MMIO spte of a gfn that has gained a
	 * memslot with the current generation (RULE_KVM_SYNC_REVIVES_MMIO_SPTE). */
	KVM_WARN_SYNC_REVIVES_MMIO_SPTE,
	/* Not a WARN in v4.20..v5.4: kvm_sync_pages syncs a page shadowed for another context
	 * (EFER.NXE, SMM) with the syncing vCPU's (RULE_KVM_SYNC_IN_OTHER_CONTEXT). */
	KVM_WARN_SYNC_IN_OTHER_CONTEXT,
	/* Not a WARN: mmu_alloc_direct_roots / mmu_alloc_shadow_roots fail with -ENOSPC after
	 * taking references on the first PAE roots, which nothing drops
	 * (RULE_KVM_ENOSPC_LEAKS_PAE_ROOTS). */
	KVM_WARN_ENOSPC_LEAKS_PAE_ROOTS,
	/* Not a WARN: kvm_mmu_load keeps failing with -ENOSPC because the page budget is
	 * full of pages make_mmu_pages_available cannot free (roots in use), so KVM_RUN fails
	 * (RULE_KVM_ROOTS_FILL_PAGE_BUDGET). */
	KVM_WARN_ROOTS_FILL_PAGE_BUDGET,
};

struct kvm_model_warning {
	bool set;
	enum kvm_warning_kind kind;
	char what[160];
};

struct kvm {
	struct kvm_config config;
	struct host_memory *host; /* not owned */
	struct kvm_memslots *memslots[KVM_ADDRESS_SPACE_NUM];
	struct kvm_memslots *memslots_spare[KVM_ADDRESS_SPACE_NUM]; /* install double buffer */
	struct kvm_memslot_arch_ops arch_ops;
	struct kvm_vcpu vcpus[KVM_MAX_VCPUS];
	int nr_vcpus;
	struct kvm_arch_mmu *mmu; /* shadow-MMU state of the VM (mmu.c) */
	struct kvm_model_error error;
	struct kvm_model_warning warning; /* the first WARN since the reset */
	struct kvm_vm_stat stat;
	/* MMU event hook (mmu_trace.h): NULL unless a tracer is attached; kept across
	 * kvm_reset. */
	void (*trace_fn)(void *ctx, const struct kvm_mmu_trace_event *ev);
	void *trace_ctx;
};

/* Create / destroy / reset a VM with one vCPU in the reset state (paging off). The host
 * memory is the caller's. Return NULL / negative errno on allocation failure. */
struct kvm *kvm_create(const struct kvm_config *cfg, struct host_memory *host);
void kvm_destroy(struct kvm *kvm);
int kvm_reset(struct kvm *kvm, const struct kvm_config *cfg);
/* KVM_CREATE_VCPU: vCPU vcpu_id (below KVM_MAX_VCPUS, not yet created) joins the VM at
 * index nr_vcpus in the reset state, with no roots until it first enters the guest.
 * Returns NULL if it exists or no index is left. */
struct kvm_vcpu *kvm_create_vcpu(struct kvm *kvm, int vcpu_id);

/* KVM_SET_NR_MMU_PAGES (kvm_vm_ioctl_set_nr_mmu_pages): 0, or -EINVAL below
 * KVM_MIN_ALLOC_MMU_PAGES. */
int kvm_vm_ioctl_set_nr_mmu_pages(struct kvm *kvm, unsigned long nr_mmu_pages);

static inline struct kvm_memslots *kvm_vcpu_memslots(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm->memslots[vcpu->arch.smm ? 1 : 0];
}

#endif
