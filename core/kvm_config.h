/* Run-time configuration of the model: the kernel profile it mirrors (spec §0.1 tags K420, K51,
 * K53), model parameters (spec §0.2) and the planted-bug switches. */
#ifndef SHADOWFUZZ_CORE_KVM_CONFIG_H
#define SHADOWFUZZ_CORE_KVM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

enum kvm_profile {
	KVM_PROFILE_4_20, /* K420: v4.19, v4.20, v5.0 */
	KVM_PROFILE_5_1,  /* K51: v5.0 plus the seed series (the target) */
	KVM_PROFILE_5_3,  /* K53: fast invalidate reintroduced for memslot flush */
	KVM_PROFILE_COUNT
};

/* Planted bugs: each re-introduces a historical (B*) or synthetic (S*, W*) bug at the exact
 * place the kernel had it. The table in kvm_config.c documents each one. */
enum kvm_bug_id {
	KVM_BUG_W1_SMAP_IGNORES_AC,
	KVM_BUG_W2_PSE36_DROPPED,
	KVM_BUG_W3_NO_UPPER_ACCESSED,
	KVM_BUG_W4_NX_NOT_RESERVED,
	KVM_BUG_B1_WRAP_IN_ONE_AS_ONLY,
	KVM_BUG_B4_MMIO_CACHE_NO_GENERATION,
	KVM_BUG_B6_MMIO_GEN_HIGH_SHIFT,
	KVM_BUG_B8_L1TF_GFN_MASK,
	KVM_BUG_B9_ZAP_MEMSLOT_WITHOUT_RMAPS,
	KVM_BUG_B13_SINGLE_PT_ACCESS,
	KVM_BUG_B17_MOVE_KEEPS_METADATA,
	KVM_BUG_B18_SHADOW_NX_RESERVED,
	KVM_BUG_B21_NO_SMAP_ANDNOT_WP,
	KVM_BUG_S1_NO_LEVEL1_WRITE_PROTECT,
	KVM_BUG_S2_NO_UNACCOUNT_SHADOWED,
	KVM_BUG_S3_FLOODING_OFF_BY_ONE,
	KVM_BUG_S4_MISALIGNED_NO_BYTE_EXCEPTION,
	KVM_BUG_S6_NO_CR0_WP_ROLE,
	KVM_BUG_S7_PREFETCH_IGNORES_ACCESSED,
	KVM_BUG_S8_MMIO_ACCESS_UNMASKED,
	KVM_BUG_S9_NO_FLUSH_ON_COMMIT,
	KVM_BUG_S11_GET_DIRTY_LOG_NO_REPROTECT,
	KVM_BUG_B16_FLUSH_INSTEAD_OF_SYNC,
	KVM_BUG_S10_INVLPG_KEEPS_UNSYNC_SPTE,
	KVM_BUG_S12_SYNC_KEEPS_CHANGED_GFN,
	KVM_BUG_S5_REMOTE_FLUSH_IGNORES_NX,
	KVM_BUG_B14_LINK_UNSYNC_CHILDREN,
	KVM_BUG_COUNT
};

struct kvm_bug_info {
	const char *id;
	const char *summary;
	const char *origin; /* kernel commit, or "synthetic" */
	const char *caught_by;
	/* What a campaign against it needs besides --bug, as options (NULL: nothing), e.g. the
	 * profile whose code has the bug or the host it shows on. */
	const char *campaign_options;
	/* The guest sees only answers the architecture also allows (another vCPU keeps or
	 * loses a TLB entry it never invalidated), so neither the reference nor core's auditor
	 * can tell: only `run`'s comparison with the model without the bug (DIFFERENT) and a
	 * unit test catch it, and bug-finding campaigns skip it. */
	bool architecture_allows;
};

struct kvm_config {
	enum kvm_profile profile;
	int mmio_gen_bits; /* width of the MMIO generation (K420: 20, K51+: 19) */
	int maxphyaddr;    /* guest MAXPHYADDR (CPUID 0x80000008) */
	int host_phys_bits;
	/* PTE prefetch after a fault (spec §4.7; FNAME(pte_prefetch), direct_pte_prefetch).
	 * On in every profile, as in KVM; off only to isolate it. */
	bool prefetch;
	uint64_t bugs; /* bit i set = enum kvm_bug_id i planted */
};

void kvm_config_init(struct kvm_config *cfg, enum kvm_profile profile);

const char *kvm_profile_name(enum kvm_profile profile);
/* Accepts "4.20", "5.1", "5.3". Returns 0, or -1 for an unknown name. */
int kvm_profile_parse(const char *name, enum kvm_profile *out);

const struct kvm_bug_info *kvm_bug_info(enum kvm_bug_id bug);
/* Returns the bug id, or -1 for an unknown name (case-insensitive, "W1" etc.). */
int kvm_bug_parse(const char *name);

static inline bool kvm_bug(const struct kvm_config *cfg, enum kvm_bug_id bug)
{
	return (cfg->bugs >> bug) & 1;
}

#endif
