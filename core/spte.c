/* Spte masks and MMIO sptes (spec §2.4), arch/x86/kvm/mmu.c v4.20..v5.3:
 * kvm_mmu_reset_all_pte_masks, kvm_set_mmio_spte_mask, mark_mmio_spte, get_mmio_spte_*,
 * check_mmio_spte.
 *
 * Generation layout. Both layouts put the generation in spte bits 3..11 and 52..61; each
 * part is "(gen << shift) & mask" to store and "(spte & mask) >> shift" to load:
 *   K420: gen bits 1..9 -> 3..11 (low shift 2: bit 0 lands on bit 2, outside the mask, so
 *         it is never stored), gen bits 10..19 -> 52..61 (high shift 42).
 *   K51+: gen bits 0..8 -> 3..11 (low shift 3), gen bits 9..18 -> 52..61 (high shift 43).
 * B6 stores and loads the K51+ high part with shift 52: gen bits 0..9 go to 52..61 and come
 * back ORed onto the low part, bits 10..18 are lost (effective generation gen & 0x3ff).
 * A configured width below the kernel's only clears generation bits before they are
 * stored; the layout stays the kernel's. */
#include "spte.h"

#include "memslot.h"

/* Every spte bit either layout may use for the generation (generation_mmio_spte_mask of
 * the all-ones generation). */
#define MMIO_SPTE_GEN_MASK_ALL (MMIO_SPTE_GEN_LOW_MASK | MMIO_SPTE_GEN_HIGH_MASK)

static int kernel_mmio_gen_bits(enum kvm_profile profile)
{
	return profile == KVM_PROFILE_4_20 ? MMIO_GEN_BITS_K420 : MMIO_GEN_BITS_K51;
}

/* kvm_set_mmio_spte_mask: P plus reserved bit 51 makes the CPU fault with PFEC.RSVD. A
 * 52-bit host has no reserved physical bit, so P is dropped. kvm_mmu_set_mmio_spte_mask
 * adds SPTE_SPECIAL_MASK to both. */
static void set_mmio_spte_mask(struct spte_params *p)
{
	uint64_t mask = (1ull << 51) | PT_PRESENT_MASK;

	if (p->phys_bits == 52)
		mask &= ~PT_PRESENT_MASK;
	p->shadow_mmio_mask = mask | SPTE_SPECIAL_MASK;
	p->shadow_mmio_value = mask | SPTE_SPECIAL_MASK;
}

/* kvm_mmu_reset_all_pte_masks: an L1TF-affected host (assumed) with fewer than 47 physical
 * bits gets its 5 highest legal bits set in non-present sptes; the gfn keeps the bits
 * below them in place. */
static void reset_l1tf_masks(struct spte_params *p)
{
	int low_phys_bits = p->phys_bits;

	p->shadow_nonpresent_or_rsvd_mask = 0;
	if (p->phys_bits < 52 - SHADOW_NONPRESENT_OR_RSVD_MASK_LEN) {
		low_phys_bits -= SHADOW_NONPRESENT_OR_RSVD_MASK_LEN;
		p->shadow_nonpresent_or_rsvd_mask = rsvd_bits(low_phys_bits, p->phys_bits - 1);
	}
	p->shadow_nonpresent_or_rsvd_lower_gfn_mask = rsvd_bits(PAGE_SHIFT, low_phys_bits - 1);
}

void spte_params_init(struct spte_params *p, const struct kvm_config *cfg)
{
	int width = cfg->mmio_gen_bits;

	p->profile = cfg->profile;
	p->phys_bits = cfg->host_phys_bits;
	reset_l1tf_masks(p);
	set_mmio_spte_mask(p);
	if (width > kernel_mmio_gen_bits(cfg->profile))
		width = kernel_mmio_gen_bits(cfg->profile);
	p->mmio_gen_mask = rsvd_bits(0, width - 1);
	p->bug_b6 = kvm_bug(cfg, KVM_BUG_B6_MMIO_GEN_HIGH_SHIFT);
	p->bug_b8 = kvm_bug(cfg, KVM_BUG_B8_L1TF_GFN_MASK);
	p->bug_s8 = kvm_bug(cfg, KVM_BUG_S8_MMIO_ACCESS_UNMASKED);
}

static int mmio_gen_low_shift(enum kvm_profile profile)
{
	return profile == KVM_PROFILE_4_20 ? 2 : 3;
}

/* Branch point of B6 (K51/K53 only; K420 predates the refactor that introduced it):
 * cae7ed3c2cb0 used the spte position of the high part (52) as its shift instead of 52
 * minus the 9 bits stored low; fixed by 34c0f6f2695a. */
static int mmio_gen_high_shift(enum kvm_profile profile, bool b6)
{
	if (profile == KVM_PROFILE_4_20)
		return 42;
	return b6 ? 52 : 43;
}

static uint64_t generation_mmio_spte_mask(const struct spte_params *p, uint64_t gen)
{
	uint64_t mask;

	mask = (gen << mmio_gen_low_shift(p->profile)) & MMIO_SPTE_GEN_LOW_MASK;
	mask |= (gen << mmio_gen_high_shift(p->profile, p->bug_b6)) & MMIO_SPTE_GEN_HIGH_MASK;
	return mask;
}

uint64_t get_mmio_spte_generation(const struct spte_params *p, uint64_t spte)
{
	uint64_t gen;

	spte &= ~p->shadow_mmio_mask;
	gen = (spte & MMIO_SPTE_GEN_LOW_MASK) >> mmio_gen_low_shift(p->profile);
	gen |= (spte & MMIO_SPTE_GEN_HIGH_MASK) >> mmio_gen_high_shift(p->profile, p->bug_b6);
	return gen;
}

uint64_t make_mmio_spte(const struct spte_params *p, gfn_t gfn, unsigned access, uint64_t gen)
{
	uint64_t gpa = gfn << PAGE_SHIFT;
	uint64_t spte;

	spte = generation_mmio_spte_mask(p, gen & p->mmio_gen_mask);
	/* mark_mmio_spte keeps only W and U; S8 lets X through into bit 0. */
	if (!p->bug_s8)
		access &= ACC_WRITE_MASK | ACC_USER_MASK;
	spte |= p->shadow_mmio_value | access;
	spte |= gpa | p->shadow_nonpresent_or_rsvd_mask;
	spte |= (gpa & p->shadow_nonpresent_or_rsvd_mask) << SHADOW_NONPRESENT_OR_RSVD_MASK_LEN;
	return spte;
}

/* Branch point of B8: before daa07cbc9ae3 the low part was "everything but the marker,
 * generation and L1TF bits", which still holds the copy of the high gpa bits stored 5 bits
 * up. */
static uint64_t mmio_spte_gfn_low_mask(const struct spte_params *p, bool b8)
{
	if (b8)
		return ~(MMIO_SPTE_GEN_MASK_ALL | p->shadow_mmio_mask |
			 p->shadow_nonpresent_or_rsvd_mask);
	return p->shadow_nonpresent_or_rsvd_lower_gfn_mask;
}

gfn_t get_mmio_spte_gfn(const struct spte_params *p, uint64_t spte)
{
	uint64_t gpa = spte & mmio_spte_gfn_low_mask(p, p->bug_b8);

	gpa |= (spte >> SHADOW_NONPRESENT_OR_RSVD_MASK_LEN) & p->shadow_nonpresent_or_rsvd_mask;
	return gpa >> PAGE_SHIFT;
}

unsigned get_mmio_spte_access(const struct spte_params *p, uint64_t spte)
{
	return (unsigned)(spte & ~(MMIO_SPTE_GEN_MASK_ALL | p->shadow_mmio_mask) & ~PAGE_MASK);
}

bool check_mmio_spte(const struct spte_params *p, uint64_t spte, uint64_t gen)
{
	if (p->profile != KVM_PROFILE_4_20 && (gen & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS))
		return false;
	return get_mmio_spte_generation(p, spte) == (gen & p->mmio_gen_mask);
}
