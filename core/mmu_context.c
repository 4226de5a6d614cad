/* The guest-walker half of the MMU context (mmu.c: init_kvm_softmmu and the helpers it
 * calls): root level, permission bitmap, PKRU bitmap, reserved-bit masks, PDPTE loading. */
#include <string.h>

#include "mmu.h"
#include "paging.h"

enum paging_mode kvm_vcpu_paging_mode(const struct kvm_vcpu *vcpu)
{
	if (!is_paging(vcpu))
		return PAGING_NONE;
	if (!is_pae(vcpu))
		return PAGING_32;
	if (!is_long_mode(vcpu))
		return PAGING_PAE;
	return is_la57_mode(vcpu) ? PAGING_5LEVEL : PAGING_4LEVEL;
}

bool is_noncanonical_address(gva_t addr, const struct kvm_vcpu *vcpu)
{
	int bits = is_la57_mode(vcpu) ? 57 : 48;
	int64_t sign_extended = (int64_t)(addr << (64 - bits)) >> (64 - bits);

	if (!is_long_mode(vcpu))
		return false;
	return (uint64_t)sign_extended != addr;
}

/* One permission-table bit: does an access with pfec (W/U/F, and the "SMAP suppressed"
 * slot in the RSVD position) fault on a translation with access acc? Spec §4.3, the rules
 * update_permission_bitmask encodes. */
static bool access_faults(const struct kvm_vcpu *vcpu, const struct kvm_mmu *mmu,
			  uint32_t pfec, unsigned acc)
{
	bool write = pfec & PFERR_WRITE_MASK;
	bool user = pfec & PFERR_USER_MASK;
	bool fetch = pfec & PFERR_FETCH_MASK;
	/* At lookup time the RSVD slot carries "CPL < 3 and EFLAGS.AC": SMAP suppressed. */
	bool smap_suppressed = pfec & PFERR_RSVD_MASK;
	bool user_page = acc & ACC_USER_MASK;
	const struct kvm_config *cfg = &vcpu->kvm->config;

	if (kvm_bug(cfg, KVM_BUG_W1_SMAP_IGNORES_AC))
		smap_suppressed = false;
	if (fetch && mmu->nx && !(acc & ACC_EXEC_MASK))
		return true;
	if (user && !user_page)
		return true;
	if (write && !(acc & ACC_WRITE_MASK) && (user || is_write_protection(vcpu)))
		return true;
	if ((vcpu->arch.cr4 & X86_CR4_SMEP) && fetch && !user && user_page)
		return true;
	if ((vcpu->arch.cr4 & X86_CR4_SMAP) && !user && !fetch && user_page && !smap_suppressed)
		return true;
	return false;
}

static void update_permission_bitmask(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu)
{
	for (unsigned index = 0; index < 16; index++) {
		uint32_t pfec = index << 1;
		uint8_t faults = 0;

		for (unsigned acc = 0; acc <= ACC_ALL; acc++)
			if (access_faults(vcpu, mmu, pfec, acc))
				faults |= 1u << acc;
		mmu->permissions[index] = faults;
	}
}

/* update_pkru_bitmask: per pfec (RSVD slot = "page is user"), two bits saying whether
 * PKRU.AD and PKRU.WD of the page's key apply. Only with CR4.PKE in long mode. */
static void update_pkru_bitmask(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu)
{
	mmu->pkru_mask = 0;
	if (!(vcpu->arch.cr4 & X86_CR4_PKE) || !is_long_mode(vcpu))
		return;
	for (unsigned index = 0; index < 16; index++) {
		uint32_t pfec = index << 1;
		bool fetch = pfec & PFERR_FETCH_MASK;
		bool user = pfec & PFERR_USER_MASK;
		bool write = pfec & PFERR_WRITE_MASK;
		bool user_page = pfec & PFERR_RSVD_MASK;
		bool check_pkey = !fetch && user_page;
		bool check_write = check_pkey && write && (user || is_write_protection(vcpu));
		uint32_t bits = (check_pkey ? 1u : 0) | (check_write ? 2u : 0);

		mmu->pkru_mask |= bits << pfec;
	}
}

uint32_t permission_fault(const struct kvm_vcpu *vcpu, const struct kvm_mmu *mmu,
			  unsigned pte_access, unsigned pte_pkey, uint32_t pfec)
{
	bool smap_suppressed = vcpu->arch.cpl < 3 && (vcpu->arch.rflags & X86_EFLAGS_AC);
	unsigned index = (pfec >> 1) | (smap_suppressed ? PFERR_RSVD_MASK >> 1 : 0);
	bool fault = (mmu->permissions[index] >> pte_access) & 1;
	uint32_t errcode = PFERR_PRESENT_MASK;

	if (mmu->pkru_mask) {
		uint32_t pkru_bits = (vcpu->arch.pkru >> (pte_pkey * 2)) & 3;
		/* The mask is indexed by pfec with P cleared and RSVD replaced by "user page". */
		uint32_t offset = (pfec & ~(PFERR_PRESENT_MASK | PFERR_RSVD_MASK)) |
				  ((pte_access & ACC_USER_MASK) ? PFERR_RSVD_MASK : 0);

		pkru_bits &= mmu->pkru_mask >> offset;
		if (pkru_bits) {
			errcode |= PFERR_PK_MASK;
			fault = true;
		}
	}
	return fault ? errcode : 0;
}

/* What __reset_rsvds_bits_mask depends on. */
struct rsvd_bits_params {
	int physbits;
	int level;
	bool nx;
	bool pse;
	bool nonleaf_bit8; /* the "amd" argument: bit 8 of non-leaf entries is reserved */
};

/* __reset_rsvds_bits_mask for a CPU with GBPAGES and PSE-36. */
static void reset_rsvds(struct rsvd_bits_validate *rsvd, const struct rsvd_bits_params *p)
{
	uint64_t exb = p->nx ? 0 : rsvd_bits(63, 63);
	uint64_t high = rsvd_bits(p->physbits, 51);
	uint64_t bit8 = p->nonleaf_bit8 ? rsvd_bits(8, 8) : 0;

	memset(rsvd, 0, sizeof(*rsvd));
	switch (p->level) {
	case PT32_ROOT_LEVEL:
		/* KVM assumes 36-bit PSE-36: a 4 MiB PDE reserves bits 17..21 whatever MAXPHYADDR
		 * is (checker rule KVM_PSE36_IS_36_BITS). Without CR4.PSE, PS is ignored. */
		if (p->pse)
			rsvd->rsvd_bits_mask[1][1] = rsvd_bits(17, 21);
		break;
	case PT32E_ROOT_LEVEL:
		rsvd->rsvd_bits_mask[0][2] = rsvd_bits(p->physbits, 63) | rsvd_bits(5, 8) | rsvd_bits(1, 2);
		rsvd->rsvd_bits_mask[0][1] = exb | rsvd_bits(p->physbits, 62);
		rsvd->rsvd_bits_mask[0][0] = exb | rsvd_bits(p->physbits, 62);
		rsvd->rsvd_bits_mask[1][1] = exb | rsvd_bits(p->physbits, 62) | rsvd_bits(13, 20);
		rsvd->rsvd_bits_mask[1][0] = rsvd->rsvd_bits_mask[0][0];
		break;
	case PT64_ROOT_5LEVEL:
	case PT64_ROOT_4LEVEL:
		rsvd->rsvd_bits_mask[0][4] = exb | bit8 | rsvd_bits(7, 7) | high;
		rsvd->rsvd_bits_mask[0][3] = exb | bit8 | rsvd_bits(7, 7) | high;
		rsvd->rsvd_bits_mask[0][2] = exb | bit8 | high;
		rsvd->rsvd_bits_mask[0][1] = exb | high;
		rsvd->rsvd_bits_mask[0][0] = exb | high;
		rsvd->rsvd_bits_mask[1][4] = rsvd->rsvd_bits_mask[0][4];
		rsvd->rsvd_bits_mask[1][3] = rsvd->rsvd_bits_mask[0][3];
		rsvd->rsvd_bits_mask[1][2] = exb | high | rsvd_bits(13, 29);
		rsvd->rsvd_bits_mask[1][1] = exb | high | rsvd_bits(13, 20);
		rsvd->rsvd_bits_mask[1][0] = rsvd->rsvd_bits_mask[0][0];
		break;
	default:
		break;
	}
}

/* reset_rsvds_bits_mask: the guest's entries, an Intel guest. */
static void reset_rsvds_bits_mask(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu)
{
	struct rsvd_bits_params p = {
		.physbits = vcpu->kvm->config.maxphyaddr,
		.level = mmu->root_level,
		.nx = mmu->nx || kvm_bug(&vcpu->kvm->config, KVM_BUG_W4_NX_NOT_RESERVED),
		.pse = is_pse(vcpu),
	};

	reset_rsvds(&mmu->guest_rsvd_check, &p);
}

/* reset_shadow_zero_bits_mask (v4.20-v5.4): the shadow root level, and NX usable when the
 * guest has it or when KVM sets it itself for CR0.WP=0 with SMEP (role.smep_andnot_wp).
 * KVM passes amd=true. KVM also reserves the address bits from the host's width up; the
 * model's frames are synthetic (shadow pages sit at SHADOW_HPA_BASE, above any width), so
 * that part is left out (physbits 52). */
static void reset_shadow_zero_bits_mask(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu)
{
	bool uses_nx = mmu->nx || (mmu->base_role.smep_andnot_wp &&
				   !kvm_bug(&vcpu->kvm->config, KVM_BUG_B18_SHADOW_NX_RESERVED));
	struct rsvd_bits_params p = {
		.physbits = 52,
		.level = mmu->shadow_root_level,
		.nx = uses_nx,
		.pse = is_pse(vcpu),
		.nonleaf_bit8 = true,
	};

	reset_rsvds(&mmu->shadow_zero_check, &p);
}

static int guest_root_level(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_32:
		return PT32_ROOT_LEVEL;
	case PAGING_PAE:
		return PT32E_ROOT_LEVEL;
	case PAGING_4LEVEL:
		return PT64_ROOT_4LEVEL;
	case PAGING_5LEVEL:
		return PT64_ROOT_5LEVEL;
	default:
		return 0;
	}
}

/* kvm_calc_shadow_mmu_root_page_role: what every shadow page of this context shares. */
static union kvm_mmu_page_role shadow_base_role(const struct kvm_vcpu *vcpu, enum paging_mode mode)
{
	union kvm_mmu_page_role role = { .word = 0 };
	bool wp = is_write_protection(vcpu);

	role.access = ACC_ALL;
	role.nxe = is_nx(vcpu);
	role.cr0_wp = wp && !kvm_bug(&vcpu->kvm->config, KVM_BUG_S6_NO_CR0_WP_ROLE);
	role.smm = vcpu->arch.smm;
	role.smep_andnot_wp = (vcpu->arch.cr4 & X86_CR4_SMEP) && !wp;
	role.smap_andnot_wp = (vcpu->arch.cr4 & X86_CR4_SMAP) && !wp &&
			      !kvm_bug(&vcpu->kvm->config, KVM_BUG_B21_NO_SMAP_ANDNOT_WP);
	role.direct = mode == PAGING_NONE;
	role.gpte_is_8_bytes = is_pae(vcpu);
	if (mode == PAGING_5LEVEL)
		role.level = PT64_ROOT_5LEVEL;
	else if (mode == PAGING_4LEVEL)
		role.level = PT64_ROOT_4LEVEL;
	else
		role.level = PT32E_ROOT_LEVEL;
	return role;
}

void kvm_init_mmu(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu *mmu = &vcpu->mmu;
	enum paging_mode mode = kvm_vcpu_paging_mode(vcpu);

	mmu->base_role = shadow_base_role(vcpu, mode);
	mmu->direct_map = mode == PAGING_NONE;
	/* 32-bit, PAE and nonpaging guests run on PAE-shaped shadow tables (pae_root). */
	mmu->shadow_root_level = mode >= PAGING_4LEVEL ? (int)mmu->base_role.level : PT32E_ROOT_LEVEL;

	mmu->root_level = guest_root_level(mode);
	/* paging32_init_context: a 32-bit guest has no NX bit even with EFER.NX set. */
	mmu->nx = mode >= PAGING_PAE && is_nx(vcpu);
	/* update_last_nonleaf_level: PSE makes level 2 of a 32-bit guest able to be a leaf. */
	mmu->last_nonleaf_level = mmu->root_level + (mode == PAGING_32 && is_pse(vcpu) ? 1 : 0);
	reset_rsvds_bits_mask(vcpu, mmu);
	reset_shadow_zero_bits_mask(vcpu, mmu);
	update_permission_bitmask(vcpu, mmu);
	update_pkru_bitmask(vcpu, mmu);
}

hva_t kvm_vcpu_gfn_to_hva_prot(struct kvm_vcpu *vcpu, gfn_t gfn, bool *writable)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	return gfn_to_hva_memslot_prot(slot, gfn, writable);
}

void kvm_vcpu_mark_page_dirty(struct kvm_vcpu *vcpu, gfn_t gfn)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);
	uint64_t rel;

	if (!slot || !slot->dirty_bitmap)
		return;
	rel = gfn - slot->base_gfn;
	slot->dirty_bitmap[rel / 64] |= 1ull << (rel % 64);
}

bool load_pdptrs(struct kvm_vcpu *vcpu, uint64_t cr3)
{
	/* PAE CR3 holds a 32-byte aligned PDPT address (bits 5..31). */
	gpa_t pdpt_gpa = cr3 & 0xffffffe0ull;
	uint64_t pdpte[4];
	hva_t hva = kvm_vcpu_gfn_to_hva_prot(vcpu, pdpt_gpa >> PAGE_SHIFT, NULL);
	uint64_t rsvd = vcpu->mmu.guest_rsvd_check.rsvd_bits_mask[0][2];

	if (hva == KVM_HVA_ERR_BAD)
		return false;
	if (host_read(vcpu->kvm->host, hva + (pdpt_gpa & ~PAGE_MASK), pdpte, sizeof(pdpte)))
		return false;
	for (int i = 0; i < 4; i++)
		if ((pdpte[i] & PT_PRESENT_MASK) && (pdpte[i] & rsvd))
			return false;
	memcpy(vcpu->mmu.pdptrs, pdpte, sizeof(pdpte));
	return true;
}
