/* Memslots: KVM_SET_USER_MEMORY_REGION semantics (spec §1), the memslot generation of each
 * kernel profile (§1.4), per-slot x86 metadata (§1.5) and gfn -> hva/pfn lookups (§1.6).
 * Mirrors virt/kvm/kvm_main.c (__kvm_set_memory_region, install_new_memslots) and
 * arch/x86/kvm/x86.c (kvm_arch_create_memslot). */
#ifndef SHADOWFUZZ_CORE_MEMSLOT_H
#define SHADOWFUZZ_CORE_MEMSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86.h"

#define KVM_ADDRESS_SPACE_NUM 2
#define KVM_USER_MEM_SLOTS 509
#define KVM_PRIVATE_MEM_SLOTS 3
#define KVM_MEM_SLOTS_NUM (KVM_USER_MEM_SLOTS + KVM_PRIVATE_MEM_SLOTS)
#define KVM_MEM_MAX_NR_PAGES ((1ull << 31) - 1)

#define KVM_MEM_LOG_DIRTY_PAGES (1u << 0)
#define KVM_MEM_READONLY (1u << 1)
#define KVM_MEMSLOT_INVALID (1u << 16)

/* K51+: bit 63 of the generation marks an update in progress. */
#define KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS (1ull << 63)

#define KVM_NR_PAGE_SIZES 3 /* 4K, 2M, 1G */
#define KVM_HPAGE_GFN_SHIFT(level) (((level) - 1) * 9)
#define KVM_PAGES_PER_HPAGE(level) (1ull << KVM_HPAGE_GFN_SHIFT(level))

enum kvm_page_track_mode { KVM_PAGE_TRACK_WRITE, KVM_PAGE_TRACK_MAX };

struct kvm_rmap_head {
	uintptr_t val;
};

struct kvm_lpage_info {
	int disallow_lpage;
};

struct kvm_arch_memory_slot {
	struct kvm_rmap_head *rmap[KVM_NR_PAGE_SIZES];           /* [level - 1] */
	/* Entries the per-level arrays were allocated with (rmap and lpage_info alike): the
	 * model checks indexes against them, where KVM would run off the array (bug B17). */
	uint64_t nr_frames[KVM_NR_PAGE_SIZES];
	struct kvm_lpage_info *lpage_info[KVM_NR_PAGE_SIZES - 1]; /* [level - 2] */
	uint16_t *gfn_track[KVM_PAGE_TRACK_MAX];
};

struct kvm_memory_slot {
	gfn_t base_gfn;
	uint64_t npages;
	uint64_t *dirty_bitmap; /* 2 * bitmap words: second half is GET_DIRTY_LOG scratch */
	struct kvm_arch_memory_slot arch;
	hva_t userspace_addr;
	uint32_t flags;
	int16_t id;
	int16_t as_id;
};

struct kvm_memslots {
	uint64_t generation;
	/* Sorted by base_gfn, descending, as KVM keeps them; empty slots at the end. */
	struct kvm_memory_slot memslots[KVM_MEM_SLOTS_NUM];
	int16_t id_to_index[KVM_MEM_SLOTS_NUM];
	int used_slots;
};

struct kvm_userspace_memory_region {
	uint32_t slot; /* as_id << 16 | id */
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

enum kvm_mr_change {
	KVM_MR_CREATE,
	KVM_MR_DELETE,
	KVM_MR_MOVE,
	KVM_MR_FLAGS_ONLY,
	KVM_MR_NONE /* accepted, nothing changed: no generation bump */
};

struct kvm;

/* Hooks the MMU layer installs (kvm_arch_* in x86.c); any may be NULL. */
struct kvm_memslot_arch_ops {
	/* After a new memslots array with generation gen is final (K420) or before it is
	 * stored (K51+): kvm_arch_memslots_updated -> kvm_mmu_invalidate_mmio_sptes. */
	void (*memslots_updated)(struct kvm *kvm, int as_id, uint64_t gen);
	/* The generation bits memslots_updated looks at: it acts only on a generation with
	 * all of them clear (an MMIO generation wrap). NULL: any generation may matter. */
	uint64_t (*memslots_wrap_mask)(const struct kvm *kvm);
	/* DELETE/MOVE after the INVALID copy is installed: kvm_arch_flush_shadow_memslot. */
	void (*flush_shadow_memslot)(struct kvm *kvm, struct kvm_memory_slot *slot);
	/* After the final memslots are installed: kvm_arch_commit_memory_region. */
	void (*commit_memory_region)(struct kvm *kvm, const struct kvm_memory_slot *old,
				     const struct kvm_memory_slot *new, enum kvm_mr_change change);
};

struct kvm_memslots *__kvm_memslots(struct kvm *kvm, int as_id);

/* KVM_SET_USER_MEMORY_REGION (kvm_vm_ioctl_set_memory_region). Returns 0 or a negative
 * errno (-EINVAL, -EEXIST, -ENOMEM) exactly where the kernel does. *change (may be NULL)
 * receives the classification of an accepted call. */
int kvm_set_memory_region(struct kvm *kvm, const struct kvm_userspace_memory_region *mem,
			  enum kvm_mr_change *change);

/* KVM_GET_DIRTY_LOG (kvm_vm_ioctl_get_dirty_log, core/dirty_log.c): the slot's dirty pages
 * since the last call (bit i = page i of the slot) into bitmap, which has room for
 * bitmap_words words; the bits are cleared and the pages write-protected again. Returns 0,
 * -EINVAL (not a user slot), -ENOENT (the slot does not log) or -EFAULT (bitmap too
 * small), as the kernel does. */
int kvm_vm_ioctl_get_dirty_log(struct kvm *kvm, uint32_t slot, uint64_t *bitmap, size_t bitmap_words);

/* Advance the generation of one address space as n_updates flag-neutral updates would,
 * running the memslots_updated hook for each install it can act on (memslots_wrap_mask):
 * the installs in between only move the generation, so they are skipped at once. */
void kvm_memslots_jump_generation(struct kvm *kvm, int as_id, uint64_t n_updates);

struct kvm_memory_slot *id_to_memslot(struct kvm_memslots *slots, int id);
/* Slot containing gfn (binary search as search_memslots), or NULL. INVALID slots are
 * returned too; callers decide. */
struct kvm_memory_slot *__gfn_to_memslot(struct kvm_memslots *slots, gfn_t gfn);

/* kvm_is_visible_gfn: a user slot, not INVALID. */
bool kvm_is_visible_gfn(struct kvm_memslots *slots, gfn_t gfn);

#define KVM_HVA_ERR_BAD (~0ull)
/* gfn_to_hva_memslot_prot: KVM_HVA_ERR_BAD for no slot or INVALID slot; *writable
 * (may be NULL) is false for READONLY slots. */
hva_t gfn_to_hva_memslot_prot(const struct kvm_memory_slot *slot, gfn_t gfn, bool *writable);

/* Outcomes of __gfn_to_pfn_memslot besides a real pfn (spec §1.6). */
#define KVM_PFN_NOSLOT (1ull << 62)
#define KVM_PFN_ERR_RO_FAULT ((1ull << 63) | 2)

static inline bool is_noslot_pfn(kvm_pfn_t pfn) { return pfn == KVM_PFN_NOSLOT; }
static inline bool is_error_pfn(kvm_pfn_t pfn) { return (pfn >> 63) != 0; }

/* __gfn_to_pfn_memslot: NOSLOT for no slot/INVALID, RO_FAULT for a write to a READONLY
 * slot, KVM_PFN_ERR_FAULT if the hva is not mapped, else the host pfn; *writable (may be
 * NULL) says whether the host mapping may be written. */
kvm_pfn_t __gfn_to_pfn_memslot(struct kvm *kvm, const struct kvm_memory_slot *slot, gfn_t gfn,
			       bool write_fault, bool *writable);

/* gfn_to_page_many_atomic as a pfn lookup: up to nr_pages frames from gfn on, for writing
 * (pinned with write = 1). Fills pfns; returns how many leading pages are mapped, 0 if the
 * run leaves the slot, -1 for an INVALID or READONLY slot. */
int gfn_to_page_many_atomic(struct kvm *kvm, const struct kvm_memory_slot *slot, gfn_t gfn,
			    kvm_pfn_t *pfns, int nr_pages);

/* Large-page metadata (spec §1.5): counter for the level-sized frame containing gfn, or NULL
 * if the index is beyond the slot's arrays (only with bug B17). */
struct kvm_lpage_info *lpage_info_slot(gfn_t gfn, const struct kvm_memory_slot *slot, int level);
/* The misalignment part of disallow_lpage (kvm_arch_create_memslot) for frame index. */
bool memslot_lpage_misaligned(const struct kvm_memory_slot *slot, uint64_t index, int level);
/* Index of gfn's level-sized frame in the slot's per-level arrays. */
uint64_t gfn_to_index(gfn_t gfn, gfn_t base_gfn, int level);

/* Lifetime of a VM's memslot sets (called by kvm_create/kvm_destroy). */
int kvm_memslots_init(struct kvm *kvm);
void kvm_memslots_destroy(struct kvm *kvm);

#endif
