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

/* Planted bugs: synthetic walker mutants (W*) live in paging code, historical (B*) and
 * synthetic (S*) shadow-MMU bugs in mmu.c and paging_tmpl.h, each at one branch point.
 * Every profile models its kernel with these fixed, even where the fix came later (B1 in
 * K420, B13 in all): the switch puts the kernel's original code back. */
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
	[KVM_BUG_B1_WRAP_IN_ONE_AS_ONLY] = {
		.id = "B1",
		.summary = "MMIO generation wrap detected only when (gen & mask) == 0: an address "
			   "space whose generations never reach 0 (K420 AS0 starts at -150; K51+ AS1's "
			   "are odd) never zaps, and old MMIO sptes match again after a wrap",
		.origin = "fixed by KVM: x86/mmu: Detect MMIO generation wrap in any address "
			  "space (v5.1)",
		.caught_by = "translation check (wrong-frame: MMIO spte for memory) / mmio check",
		.campaign_options = "--profile 4.20",
	},
	[KVM_BUG_B4_MMIO_CACHE_NO_GENERATION] = {
		.id = "B4",
		.summary = "vcpu_match_mmio_gva/gpa ignore the memslot generation: a gva cached as "
			   "MMIO stays MMIO after a memslot gives its gfn memory",
		.origin = "kvm: x86: fix stale mmio cache bug, 56f17dd3fbc4 (2014)",
		.caught_by = "mmio check (an MMIO exit for a gpa that has memory)",
	},
	[KVM_BUG_B6_MMIO_GEN_HIGH_SHIFT] = {
		.id = "B6",
		.summary = "MMIO spte generation: the high part is stored with shift 52 instead of "
			   "43 (K51/K53), so only 10 generation bits survive",
		.origin = "introduced by cae7ed3c2cb0 (the seed series), fixed 34c0f6f2695a (2020)",
		.caught_by = "core's auditor (invariant 13: an MMIO spte built for the current "
			     "generation fails check_mmio_spte once it is >= 1024; the guest sees "
			     "only the slow path), tests/test_spte (decode(encode(g)) != g)",
	},
	[KVM_BUG_B8_L1TF_GFN_MASK] = {
		.id = "B8",
		.summary = "MMIO spte gfn decode keeps the L1TF-shifted high bits in the low part: "
			   "a high MMIO gpa decodes wrong (needs host_phys_bits < 45)",
		.origin = "fixed by KVM: x86: fix L1TF's MMIO GFN calculation, daa07cbc9ae3 (2018)",
		.caught_by = "translation check (wrong-gpa: the MMIO spte decodes to another gpa), "
			     "then access gpa (an MMIO exit with the wrong gpa)",
		.campaign_options = "--host-phys-bits 42",
	},
	[KVM_BUG_B9_ZAP_MEMSLOT_WITHOUT_RMAPS] = {
		.id = "B9",
		.summary = "K51 memslot zap (4e103134b862) without the rmap step: leaf sptes in "
			   "pages whose gfn lies outside the slot keep mapping its frames (variant A)",
		.origin = "KVM: x86/mmu: Zap only the relevant pages when removing a memslot, "
			  "4e103134b862 (v5.1), reverted d012a06ab1d2",
		.caught_by = "core's auditor (a leaf spte of a gfn without a memslot, at the delete), "
			     "then translation check (wrong-frame)",
	},
	[KVM_BUG_B13_SINGLE_PT_ACCESS] = {
		.id = "B13",
		.summary = "FNAME(fetch) gives every indirect page walker->pt_access, the AND of all "
			   "non-leaf levels, instead of the access inherited above its own level",
		.origin = "fixed by b1bd5cba3306 (2021, stable to 4.9)",
		.caught_by = "access outcome / translation check (too-permissive)",
	},
	[KVM_BUG_B17_MOVE_KEEPS_METADATA] = {
		.id = "B17",
		.summary = "MOVE keeps the old slot's rmap and lpage_info arrays, sized and aligned "
			   "for the old base_gfn: indexes run past them, large pages cross slot ends",
		.origin = "fixed by KVM: x86: Allocate new rmap and large page tracking when "
			  "moving memslot (2020, stable)",
		.caught_by = "model error (metadata index out of bounds) / core's auditor",
	},
	[KVM_BUG_B18_SHADOW_NX_RESERVED] = {
		.id = "B18",
		.summary = "the shadow zero-bit check reserves spte bit 63 when the guest has no "
			   "NX, although KVM sets NX itself for CR0.WP=0 with SMEP "
			   "(reset_shadow_zero_bits_mask uses_nx): an MMIO walk through such an "
			   "spte WARNs and the fault fails with -EINVAL",
		.origin = "KVM: x86/mmu: Treat NX as used (not reserved) for all !TDP shadow "
			  "MMUs (2021, Fixes b8e8c8303ff2)",
		.caught_by = "core's auditor (invariant 15: an spte with bits its vCPU's zero-bit "
			     "check reserves; no MMIO walk reaches a leaf with KVM's own NX without "
			     "the NX-huge-page mitigation, so the WARN itself never fires here), "
			     "tests/test_walker (shadow_zero_check_follows_uses_nx)",
	},
	[KVM_BUG_B21_NO_SMAP_ANDNOT_WP] = {
		.id = "B21",
		.summary = "the page role lacks smap_andnot_wp: pages built under CR0.WP=0 (user "
			   "pages made supervisor) are reused after CR4.SMAP is set",
		.origin = "fixed by KVM: MMU: fix SMAP virtualization, 0be0226f07d1 (2015)",
		.caught_by = "access outcome (SMAP #PF missing)",
	},
	[KVM_BUG_S1_NO_LEVEL1_WRITE_PROTECT] = {
		.id = "S1",
		.summary = "kvm_mmu_get_page skips rmap_write_protect of a new level-1 page: "
			   "writable sptes to the guest table survive",
		.origin = "synthetic",
		.caught_by = "translation check (stale spte after an untrapped table write)",
	},
	[KVM_BUG_S2_NO_UNACCOUNT_SHADOWED] = {
		.id = "S2",
		.summary = "kvm_mmu_prepare_zap_page forgets unaccount_shadowed: a zapped table's "
			   "gfn stays write-tracked and blocks large pages",
		.origin = "synthetic",
		.caught_by = "core's auditor (gfn_track / disallow_lpage / indirect_shadow_pages)",
	},
	[KVM_BUG_S3_FLOODING_OFF_BY_ONE] = {
		.id = "S3",
		.summary = "detect_write_flooding counts to 4 instead of 3: a page directory (or "
			   "higher) written three times in a row without a use stays shadowed and "
			   "write-tracked",
		.origin = "synthetic",
		.caught_by = "core's auditor (write flooding: a valid page holds 3 emulated writes "
			     "since its last use); the other direction (flooding at 2) only zaps "
			     "sooner, which no guest and no invariant can tell",
	},
	[KVM_BUG_S4_MISALIGNED_NO_BYTE_EXCEPTION] = {
		.id = "S4",
		.summary = "detect_write_misaligned without the 1-byte exception: a 1-byte write at "
			   "a gpte boundary zaps every shadow page of the table instead of one spte",
		.origin = "synthetic",
		.caught_by = "run's comparison with the model without it (DIFFERENT: another vCPU "
			     "loses a TLB entry the architecture let it keep, since the zap's commit "
			     "flushes every TLB), tests/test_pte_write "
			     "(byte_write_at_a_boundary_drops_only_the_spte); no architectural check "
			     "or invariant breaks: a zapped page is rebuilt at the next fault",
		.architecture_allows = true,
	},
	[KVM_BUG_S6_NO_CR0_WP_ROLE] = {
		.id = "S6",
		.summary = "the page role drops cr0_wp: pages built under CR0.WP=0 are reused "
			   "after CR0.WP=1",
		.origin = "synthetic",
		.caught_by = "translation check (too-permissive: the WP=0 page keeps W after "
			     "CR0.WP=1), then access outcome (the supervisor write succeeds)",
	},
	[KVM_BUG_S7_PREFETCH_IGNORES_ACCESSED] = {
		.id = "S7",
		.summary = "FNAME(prefetch_invalid_gpte) ignores the gpte's A bit: gptes the guest "
			   "never used get sptes, and the A bit the processor would set on first "
			   "use stays clear",
		.origin = "synthetic",
		.caught_by = "translation check (not-accessed: a spte whose guest leaf has A=0)",
	},
	[KVM_BUG_S8_MMIO_ACCESS_UNMASKED] = {
		.id = "S8",
		.summary = "mark_mmio_spte does not mask the access to W|U: X lands in bit 0, which "
			   "makes the MMIO spte present on a host with 52 physical bits",
		.origin = "synthetic",
		.caught_by = "translation check (a present spte for a gpa without memory)",
		.campaign_options = "--host-phys-bits 52",
	},
	[KVM_BUG_S9_NO_FLUSH_ON_COMMIT] = {
		.id = "S9",
		.summary = "kvm_mmu_commit_zap_page frees zapped pages without the remote TLB flush",
		.origin = "synthetic",
		.caught_by = "translation check (TLB entry with a stale frame)",
	},
	[KVM_BUG_S11_GET_DIRTY_LOG_NO_REPROTECT] = {
		.id = "S11",
		.summary = "kvm_get_dirty_log_protect clears the dirty bitmap without "
			   "kvm_arch_mmu_enable_log_dirty_pt_masked: sptes stay writable, so pages "
			   "written after a KVM_GET_DIRTY_LOG are missing from the next one",
		.origin = "synthetic",
		.caught_by = "dirty-log check (a page the guest wrote is missing from the bitmap)",
	},
	[KVM_BUG_B16_FLUSH_INSTEAD_OF_SYNC] = {
		.id = "B16",
		.summary = "kvm_mmu_get_page requests a TLB flush instead of KVM_REQ_MMU_SYNC when "
			   "it finds a page with unsync children: a table linked at a new place "
			   "brings its stale unsync sptes to addresses the guest never had mapped "
			   "that way (the v5.8 regression, inverted into this model; v5.8 predates "
			   "the B14 fix, so B16 plants B14 too)",
		.origin = "f6f6195b888c (2020), regression from 8c8560b83390 (v5.8)",
		.caught_by = "translation check (a spte of an unsync page the guest's tables never "
			     "gave at that address since its last flush)",
	},
	[KVM_BUG_B14_LINK_UNSYNC_CHILDREN] = {
		.id = "B14",
		.summary = "FNAME(fetch) links a page with unsync children at a new place and only "
			   "requests KVM_REQ_MMU_SYNC, which the faulting vCPU serves at its next "
			   "entry: until then another vCPU walks the new link into stale unsync "
			   "sptes it already invalidated (the code of v4.20..v5.3; the model carries "
			   "the fix by default; B16 implies it)",
		.origin = "fixed by KVM: X86: Synchronize the shadow pagetable before link it, "
			  "65855ed8b034 (2021), Fixes 4731d4c7a077",
		.caught_by = "access outcome / translation check on the other vCPU (a stale unsync "
			     "spte after its own INVLPG), while the faulting vCPU is out of the "
			     "guest after an MMIO exit",
	},
	[KVM_BUG_S10_INVLPG_KEEPS_UNSYNC_SPTE] = {
		.id = "S10",
		.summary = "FNAME(invlpg) treats unsync pages as synced: the spte of the gva stays "
			   "as it was, so a gpte the guest changed and then INVLPGed keeps its old "
			   "translation",
		.origin = "synthetic",
		.caught_by = "translation check (a spte of an unsync page after the guest's INVLPG "
			     "of its address)",
	},
	[KVM_BUG_S12_SYNC_KEEPS_CHANGED_GFN] = {
		.id = "S12",
		.summary = "FNAME(sync_page) keeps the spte of a gpte that now names another gfn: "
			   "it gets the new access on the old frame",
		.origin = "synthetic",
		.caught_by = "translation check (wrong gpa after the guest's MOV CR3 synced the page)",
	},
	[KVM_BUG_S5_REMOTE_FLUSH_IGNORES_NX] = {
		.id = "S5",
		.summary = "need_remote_flush ignores NX: an emulated gpte write that only takes "
			   "execute away updates the spte without a remote TLB flush, so another "
			   "vCPU keeps executing through its TLB entry",
		.origin = "synthetic",
		.caught_by = "run's comparison with the model without it (DIFFERENT: the other vCPU "
			     "executes through its TLB where KVM flushed it), tests/test_pte_write.c; "
			     "no architectural check: that vCPU never invalidated the translation, so "
			     "the architecture lets it keep X, and KVM itself drops U and X without "
			     "a flush elsewhere (the CR0.WP=0 trick), so no invariant ties TLB to spte",
		.architecture_allows = true,
	},
};

void kvm_config_init(struct kvm_config *cfg, enum kvm_profile profile)
{
	cfg->profile = profile;
	/* K420 keeps 20 MMIO generation bits; the K51 series narrowed them to 19. */
	cfg->mmio_gen_bits = profile == KVM_PROFILE_4_20 ? 20 : 19;
	cfg->maxphyaddr = DEFAULT_MAXPHYADDR;
	cfg->host_phys_bits = 46;
	cfg->prefetch = true;
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
