/* Kernel profiles, model parameters and the planted-bug table (spec §0.1, §0.2, §8). */
#include "kvm_config.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "x86.h"

static const char *const profile_names[KVM_PROFILE_COUNT] = {
	[KVM_PROFILE_4_20] = "4.20",
	[KVM_PROFILE_5_1] = "5.1",
	[KVM_PROFILE_5_3] = "5.3",
};

/* Synthetic walker mutants (W*) live in paging code; historical ones (B*) join this table
 * as they are planted. */
static const struct kvm_bug_info bug_table[KVM_BUG_COUNT] = {
	[KVM_BUG_W1_SMAP_IGNORES_AC] = {
		.id = "W1",
		.summary = "update_permission_bitmask ignores EFLAGS.AC: SMAP faults supervisor "
			   "data accesses even with AC=1",
		.origin = "synthetic",
		.caught_by = "walker vs reference outcome (walk conformance)",
	},
	[KVM_BUG_W2_PSE36_DROPPED] = {
		.id = "W2",
		.summary = "PSE-36 ignored: 4 MiB pages lose gpa bits 32..39",
		.origin = "synthetic",
		.caught_by = "walker vs reference gpa",
	},
	[KVM_BUG_W3_NO_UPPER_ACCESSED] = {
		.id = "W3",
		.summary = "A bits set on the leaf only, not on upper levels "
			   "(update_accessed_dirty_bits)",
		.origin = "synthetic",
		.caught_by = "guest memory comparison",
	},
	[KVM_BUG_W4_NX_NOT_RESERVED] = {
		.id = "W4",
		.summary = "EFER.NX=0 does not make bit 63 reserved (reset_rsvds_bits_mask exb)",
		.origin = "synthetic",
		.caught_by = "walker vs reference error code (RSVD)",
	},
};

void kvm_config_init(struct kvm_config *cfg, enum kvm_profile profile)
{
	cfg->profile = profile;
	/* K420 keeps 20 MMIO generation bits; the K51 series narrowed them to 19. */
	cfg->mmio_gen_bits = profile == KVM_PROFILE_4_20 ? 20 : 19;
	cfg->maxphyaddr = DEFAULT_MAXPHYADDR;
	cfg->host_phys_bits = 46;
	cfg->bugs = 0;
}

const char *kvm_profile_name(enum kvm_profile profile)
{
	if ((unsigned)profile >= KVM_PROFILE_COUNT)
		return NULL;
	return profile_names[profile];
}

int kvm_profile_parse(const char *name, enum kvm_profile *out)
{
	for (int i = 0; i < KVM_PROFILE_COUNT; i++) {
		if (strcmp(name, profile_names[i]) == 0) {
			*out = (enum kvm_profile)i;
			return 0;
		}
	}
	return -1;
}

const struct kvm_bug_info *kvm_bug_info(enum kvm_bug_id bug)
{
	if ((unsigned)bug >= KVM_BUG_COUNT)
		return NULL;
	return &bug_table[bug];
}

int kvm_bug_parse(const char *name)
{
	for (int i = 0; i < KVM_BUG_COUNT; i++) {
		if (strcasecmp(name, bug_table[i].id) == 0)
			return i;
	}
	return -1;
}
