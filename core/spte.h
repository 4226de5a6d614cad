/* The shadow page-table entry (spte) format of the shadow MMU (spec §2.1–2.4): bit masks and
 * predicates of arch/x86/kvm/mmu.c, and MMIO sptes with the generation encoding of each
 * kernel profile. Model assumptions (spec §0.2): 64-bit host, shadow paging only, A/D bits
 * enabled (no access-tracking sptes), no memory encryption (shadow_me_mask = 0). */
#ifndef SHADOWFUZZ_CORE_SPTE_H
#define SHADOWFUZZ_CORE_SPTE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_config.h"
#include "x86.h"

/* Software-available bits 10 and 11 (PT_FIRST_AVAIL_BITS_SHIFT). */
#define SPTE_HOST_WRITEABLE (1ull << 10)
#define SPTE_MMU_WRITEABLE (1ull << 11)
/* Bit 62 marks special sptes; in the model only MMIO sptes (no access tracking). */
#define SPTE_SPECIAL_MASK (1ull << 62)

/* kvm_mmu_set_mask_ptes as kvm_mmu_module_init calls it for shadow paging. */
static const uint64_t shadow_present_mask = PT_PRESENT_MASK;
static const uint64_t shadow_user_mask = PT_USER_MASK;
static const uint64_t shadow_accessed_mask = PT_ACCESSED_MASK;
static const uint64_t shadow_dirty_mask = PT_DIRTY_MASK;
static const uint64_t shadow_nx_mask = PT64_NX_MASK;
static const uint64_t shadow_x_mask = 0;

/* L1TF: the 5 highest legal physical-address bits are set in non-present/MMIO sptes. */
#define SHADOW_NONPRESENT_OR_RSVD_MASK_LEN 5

/* Where the MMIO generation lives in an MMIO spte, identical in K420 and K51+. */
#define MMIO_SPTE_GEN_LOW_MASK rsvd_bits(3, 11)
#define MMIO_SPTE_GEN_HIGH_MASK rsvd_bits(52, 61)
/* Generation widths the kernels store: K420 20 bits (bit 0 implicit), K51+ 19 bits. */
#define MMIO_GEN_BITS_K420 20
#define MMIO_GEN_BITS_K51 19

/* The masks KVM computes once at module load (kvm_mmu_reset_all_pte_masks,
 * kvm_set_mmio_spte_mask -> kvm_mmu_set_mmio_spte_mask) for one host, plus what the MMIO
 * generation encoding needs from the profile. Built by spte_params_init; read-only after. */
struct spte_params {
	enum kvm_profile profile;
	int phys_bits; /* host physical-address width (boot_cpu_data.x86_phys_bits) */
	uint64_t shadow_mmio_mask;
	uint64_t shadow_mmio_value;
	uint64_t shadow_nonpresent_or_rsvd_mask;
	uint64_t shadow_nonpresent_or_rsvd_lower_gfn_mask;
	/* Generation bits an MMIO spte keeps: the configured width (cfg->mmio_gen_bits, small
	 * in tests so wraps come quickly) capped at the kernel's width. */
	uint64_t mmio_gen_mask;
	/* Planted bugs, from the config's switches. */
	bool bug_b6; /* K51/K53 high generation part stored with shift 52 (cae7ed3c2cb0) */
	bool bug_b8; /* L1TF gfn decode keeps the shifted high part in the low part */
	bool bug_s8; /* MMIO spte access not masked to W|U (synthetic) */
};

void spte_params_init(struct spte_params *p, const struct kvm_config *cfg);

/* False when the host has 52 physical bits: no reserved bit is left, KVM drops the present
 * bit from the MMIO marker and MMIO sptes fault as not-present instead of with PFEC.RSVD,
 * so handle_mmio_page_fault (and the generation check) is never reached. */
static inline bool shadow_mmio_sptes_fault_rsvd(const struct spte_params *p)
{
	return p->shadow_mmio_value & shadow_present_mask;
}

static inline bool is_mmio_spte(const struct spte_params *p, uint64_t spte)
{
	return (spte & p->shadow_mmio_mask) == p->shadow_mmio_value;
}

static inline bool is_shadow_present_pte(const struct spte_params *p, uint64_t spte)
{
	return spte != 0 && !is_mmio_spte(p, spte);
}

static inline bool is_large_pte(uint64_t spte)
{
	return spte & PT_PAGE_SIZE_MASK;
}

static inline bool is_last_spte(uint64_t spte, int level)
{
	return level == PT_PAGE_TABLE_LEVEL || is_large_pte(spte);
}

static inline bool is_writable_pte(uint64_t spte)
{
	return spte & PT_WRITABLE_MASK;
}

/* The ACC_* rights a leaf spte gives the hardware. */
static inline unsigned spte_access(uint64_t spte)
{
	return (spte & PT_WRITABLE_MASK ? ACC_WRITE_MASK : 0) | (spte & PT_USER_MASK ? ACC_USER_MASK : 0) |
	       (spte & PT64_NX_MASK ? 0 : ACC_EXEC_MASK);
}

static inline bool is_executable_pte(uint64_t spte)
{
	return (spte & (shadow_x_mask | shadow_nx_mask)) == shadow_x_mask;
}

/* With A/D enabled (role.ad_disabled = 0) the A and D bits are authoritative. */
static inline bool is_accessed_spte(uint64_t spte)
{
	return spte & shadow_accessed_mask;
}

static inline bool is_dirty_spte(uint64_t spte)
{
	return spte & shadow_dirty_mask;
}

static inline kvm_pfn_t spte_to_pfn(uint64_t spte)
{
	return (spte & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT;
}

/* The fast page fault path may set W without mmu_lock only if both the host and the MMU
 * allow writes. */
static inline bool spte_can_locklessly_be_made_writable(uint64_t spte)
{
	return (spte & (SPTE_HOST_WRITEABLE | SPTE_MMU_WRITEABLE)) ==
	       (SPTE_HOST_WRITEABLE | SPTE_MMU_WRITEABLE);
}

/* mark_mmio_spte's value: marker, access & (W|U), gpa (with the L1TF split) and gen, the
 * memslots generation of the vCPU's address space, reduced to p->mmio_gen_mask first.
 * gfn must be below 2^(phys_bits - 12), as KVM assumes (guest MAXPHYADDR <= host's). */
uint64_t make_mmio_spte(const struct spte_params *p, gfn_t gfn, unsigned access, uint64_t gen);

gfn_t get_mmio_spte_gfn(const struct spte_params *p, uint64_t spte);
/* ACC_WRITE_MASK | ACC_USER_MASK subset; X is not stored. */
unsigned get_mmio_spte_access(const struct spte_params *p, uint64_t spte);
/* The stored generation: K420 always even (bit 0 is not stored); with B6 planted in K51+
 * only its low 10 bits survive. */
uint64_t get_mmio_spte_generation(const struct spte_params *p, uint64_t spte);

/* check_mmio_spte: does an MMIO spte still hold for gen, the current memslots generation
 * of the vCPU's address space? K420: equal generations, so an odd (in-flux) generation
 * never matches. K51+: never while KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS is set. */
bool check_mmio_spte(const struct spte_params *p, uint64_t spte, uint64_t gen);

#endif
