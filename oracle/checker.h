/* The checker: decides whether the model's answer for an access is one the architecture
 * allows, given the reference's answer. Where KVM deliberately (or knowingly) differs from
 * the architecture, the difference is a named rule here, counted and documented in
 * docs/checking-rules.md, never a silent skip. The checker sees only observable state:
 * outcomes, walks and guest memory, never the model's internals. */
#ifndef SHADOWFUZZ_ORACLE_CHECKER_H
#define SHADOWFUZZ_ORACLE_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reference.h"

enum check_id {
	CHECK_OUTCOME,     /* success / #PF / #GP */
	CHECK_ERROR_CODE,  /* #PF error code */
	CHECK_CR2,         /* #PF address */
	CHECK_GPA,         /* translation of a successful access */
	CHECK_MEMORY,      /* guest memory (A/D bits included) */
	CHECK_PDPTE_LOAD,  /* MOV CR3 / paging enable in PAE mode: #GP or not */
	CHECK_TRANSLATION, /* a spte or TLB entry the guest's tables do not allow */
	CHECK_MMIO,        /* an MMIO exit for backed memory, or none for a hole */
	CHECK_LIVENESS,    /* an access that never completes */
	CHECK_MODEL_ERROR, /* the model reached a state where KVM would crash */
	CHECK_INVARIANT,   /* core's auditor: a structural invariant of spec §7 broke */
	CHECK_DIRTY_LOG,   /* KVM_GET_DIRTY_LOG missed a page the guest wrote, or failed */
	CHECK_COUNT
};

enum kvm_rule {
	RULE_NONE,
	/* walk_addr_generic: a guest table in no usable memslot reads as a failed copy and
	 * faults as not present; the bus would return whatever backs the address. */
	RULE_KVM_TABLE_OUTSIDE_MEMSLOT,
	/* KVM's 32-bit walker implements PSE-36 with 36 physical bits: 4 MiB PDE bits 17..20
	 * are reserved for KVM, address bits on a MAXPHYADDR-40 CPU. */
	RULE_KVM_PSE36_IS_36_BITS,
	/* mmu_check_root: a root table outside every visible memslot makes KVM shut the VM
	 * down (KVM_REQ_TRIPLE_FAULT); the architecture would read whatever is there. */
	RULE_KVM_ROOT_OUTSIDE_MEMSLOT,
	/* handle_mmio_page_fault / vcpu_mmio_gva_to_gpa: a write that KVM emulates as MMIO
	 * from its MMIO cache or MMIO spte never walks the guest tables, so the leaf's D bit
	 * stays clear where the processor would set it. */
	RULE_KVM_MMIO_WRITE_SKIPS_DIRTY,
	/* kvm_set_cr4 -> kvm_mmu_reset_context: a CR4.PSE change only reloads the roots, and
	 * the page role has no PSE bit, so a 32-bit guest's shadow pages built under the other
	 * PSE setting are found again and their sptes keep translating (found by shadowfuzz;
	 * see docs/findings.md). Allowed: answers right under the other CR4.PSE value. */
	RULE_KVM_PSE_CHANGE_KEEPS_SHADOW,
	/* mmu_check_root looks the root up in address space 0 (kvm_is_visible_gfn) but
	 * account_shadowed in the vCPU's (SMM: 1): a root present only in AS0 passes the check
	 * and KVM dereferences a NULL memslot (found by shadowfuzz; docs/findings.md). The run
	 * ends there, as the host would. */
	RULE_KVM_SMM_ROOT_CHECKED_IN_AS0,
	/* vcpu_cache_mmio_info / vcpu_match_mmio_gen tag the per-vCPU MMIO cache with address
	 * space 0's generation, so in SMM an update of address space 1 alone leaves a gva
	 * cached as MMIO after its gfn got memory: KVM exits as MMIO (found by shadowfuzz). */
	RULE_KVM_SMM_MMIO_CACHE_AS0_GENERATION,
	/* account_shadowed, rmap_write_protect and mmu_need_write_protect write-protect a
	 * shadowed table per memslot and gfn, and __kvm_set_memory_region rejects only
	 * overlapping gpa ranges: a guest table in a host page that a second gfn (or the other
	 * address space) also maps is written there untrapped, and the table's shadow page
	 * keeps the old entry (found by shadowfuzz; docs/findings.md). Allowed: a translation
	 * built from an entry on the guest's walk that was last written through another gfn
	 * or address space, with the frame of its gpa. */
	RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED,
	/* FNAME(update_accessed_dirty_bits) sets A/D with FNAME(cmpxchg_gpte), outside write
	 * tracking (kvm_mmu_pte_write never sees it), since A/D bits do not shape shadow pages.
	 * A table that vCPUs walk in two formats breaks that: a 32-bit walk's A bit in the
	 * high half of a 64-bit entry is an address or reserved bit there, and the 64-bit
	 * shadow keeps the old entry (found by shadowfuzz). Allowed: a translation built from
	 * an entry whose bits, other than its own A and D, only such updates changed since the
	 * guest wrote it, with the frame of its gpa. */
	RULE_KVM_WALKER_AD_WRITE_UNTRACKED,
	/* FNAME(page_fault)'s CR0.WP=0 trick turns a user page a supervisor write hits into a
	 * supervisor page. Documentation/virtual/kvm/mmu.txt: with CR4.SMAP on, "KVM will
	 * directly inject #PF" for that write, so the trick never meets SMAP; but EFLAGS.AC=1
	 * lets the write through, and once AC is clear again supervisor accesses to the page
	 * hit a supervisor spte where SMAP faults (found by shadowfuzz). Allowed: a supervisor
	 * data access the architecture faults for SMAP, answered as with AC=1, through a leaf
	 * spte without U whose guest leaf has U. */
	RULE_KVM_SMAP_AC_WP0_SUPERVISOR_PAGE,
	/* __gfn_to_pfn_memslot gives RO_FAULT for a write to a KVM_MEM_READONLY slot: KVM
	 * emulates the write and exits to userspace as MMIO, where the processor would drop
	 * the write to ROM and go on. The write must exit; the guest sees no difference. */
	RULE_KVM_READONLY_WRITE_IS_MMIO,
	/* SDM vol. 3 §4.10.4.3: until the guest invalidates a translation it changed, the
	 * processor may go on using the old one. With unsync pages (mmu_need_write_protect,
	 * can_unsync) KVM sees a guest's level-1 table writes only at its next INVLPG or
	 * flush, so its sptes lag like a TLB. Allowed: an access answered by a translation the
	 * checker saw valid on that vCPU since the guest last invalidated the address. */
	RULE_ARCH_STALE_TRANSLATION,
	/* An access KVM turned into a page fault walks the guest's current tables and sets
	 * their A/D bits (FNAME(walk_addr_generic)); the emulator then translates the gva again
	 * and vcpu_mmio_gva_to_gpa answers from the vCPU's MMIO cache, which may still hold an
	 * older translation (v4.20..v5.4; found by shadowfuzz, docs/findings.md). A stale answer
	 * so allowed comes with the current walk's A/D updates, D on a leaf whose page the
	 * write never reached: a processor sets no A/D for a translation it did not use. */
	RULE_KVM_MMIO_CACHE_AFTER_WALK,
	/* mmu_need_write_protect looks write tracking up in the vCPU's address space but
	 * unsyncs the gfn's shadow pages of every address space: a write in SMM to a gfn that
	 * outside SMM is a shadowed page directory (or the reverse) unsyncs that higher-level
	 * page. KVM WARNs (v4.20..v5.4), and a later mmu_sync_children above it would find the
	 * page on every pass without syncing it (found by shadowfuzz; docs/findings.md). The
	 * run ends there. */
	RULE_KVM_SMM_UNSYNC_OTHER_AS_TABLE,
	/* FNAME(sync_page) -> sync_mmio_spte stamps an MMIO spte whose gfn the gpte still names
	 * with the current MMIO generation, without asking whether the gfn has gained a
	 * memslot since the spte was made: a stale MMIO spte becomes valid again, and the
	 * guest's accesses through it exit to userspace as MMIO for a gpa that has memory
	 * (v4.20..v5.4; found by shadowfuzz, docs/findings.md). The run ends there. */
	RULE_KVM_SYNC_REVIVES_MMIO_SPTE,
	/* kvm_sync_pages syncs every unsync page of a gfn with the syncing vCPU's context, not
	 * the one the page was shadowed for (v4.20..v5.4 compare only the gpte size): a vCPU
	 * with EFER.NXE keeps an NX gpte's spte in a page of a vCPU without it, which then
	 * translates where its walk faults on a reserved bit even after it invalidates; a vCPU
	 * syncs a page of the other address space from its own (found by shadowfuzz;
	 * docs/findings.md). The run ends there. */
	RULE_KVM_SYNC_IN_OTHER_CONTEXT,
	/* mmu_alloc_direct_roots / mmu_alloc_shadow_roots return -ENOSPC when the page budget
	 * runs out between PAE roots, leaving root_hpa invalid: the roots already taken keep a
	 * root_count that kvm_mmu_free_roots never drops, and the next kvm_mmu_load counts
	 * them again (v4.20..v5.4; found by shadowfuzz, docs/findings.md). Core's auditor
	 * would see root_count above the references. The run ends there. */
	RULE_KVM_ENOSPC_LEAKS_PAE_ROOTS,
	/* make_mmu_pages_available cannot free pages that are roots in use: with several
	 * vCPUs (four PAE roots each) the page budget can fill with them, and kvm_mmu_load
	 * fails with -ENOSPC on every KVM_RUN (v4.20..v5.4). The run ends there. */
	RULE_KVM_ROOTS_FILL_PAGE_BUDGET,
	/* kvm_mmu_page_role has no long-mode bit (v4.20..v5.4): a PAE root finds a page
	 * directory or table shadowed under 4/5-level paging for the same gfn and level, whose
	 * sptes were built where bits 52..62 of PDEs and PTEs are ignored; PAE reserves them
	 * (found by shadowfuzz; docs/findings.md). Allowed: a translation or an access that the
	 * guest's tables give when the PAE walk reads those bits as 4-level paging does. */
	RULE_KVM_LONG_MODE_SHADOW_IN_PAE,
	RULE_COUNT
};

/* What the model answered for one access (fields as in struct ref_result). */
struct model_access {
	enum ref_outcome outcome;
	uint32_t error_code;
	uint64_t cr2;
	gpa_t gpa;
};

struct access_check {
	struct ref_cpu_state cpu;
	int cpl;
	enum ref_access_kind kind;
	gva_t gva;
	int maxphyaddr;
};

/* The answer KVM must give: the reference's, or the one a rule prescribes. */
void checker_expected(const struct access_check *check, const struct ref_result *ref,
		      struct model_access *expected, enum kvm_rule *rule);

/* Compare model with expected; on a mismatch return false and the first failing check. */
bool checker_compare(const struct model_access *expected, const struct model_access *model,
		     enum check_id *failed);

/* Architectural MOV CR3 in PAE mode (SDM vol. 3 §4.4.1): #GP when a present PDPTE has a
 * reserved bit (63:MAXPHYADDR, 8:5, 2:1). */
bool checker_pdptes_valid(const uint64_t pdpte[4], int maxphyaddr);

/* RULE_KVM_ROOT_OUTSIDE_MEMSLOT's condition: the CR3 page, or (PAE) a table a present
 * PDPTE points at, has no memory behind it in address space 0. */
bool checker_root_unbacked(struct ref_memory *mem, const struct ref_cpu_state *cpu);

/* RULE_KVM_SMM_ROOT_CHECKED_IN_AS0's condition: in SMM, a root table (the CR3 page; in PAE
 * the tables the PDPTEs point at) has memory in address space 0 but none in 1. */
bool checker_smm_root_only_in_as0(struct ref_memory *mem, const struct ref_cpu_state *cpu);

/* RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED's record: per 4-byte granule of a host page that
 * backs two gpas (in one address space or across both), the address space and gfn of the
 * guest's last write to it. */
struct aliased_writes;

struct aliased_writes *aliased_writes_new(void);
void aliased_writes_free(struct aliased_writes *w);
void aliased_writes_reset(struct aliased_writes *w);
/* A guest write of [gpa, gpa + len) in address space as_id (after it reached mem). Returns
 * 0, or -1 when out of memory. */
int aliased_writes_note(struct aliased_writes *w, const struct ref_memory *mem, int as_id,
			gpa_t gpa, size_t len);

/* The rule's condition: an entry the walk read (a PAE PDPTE excepted: the registers are
 * loaded at MOV CR3) was last written through a gfn other than the one the walk reads it
 * through (or in the other address space), in a host page that another gpa mapped at that
 * time. */
bool checker_aliased_table_write(const struct aliased_writes *w, const struct ref_memory *mem,
				 const struct ref_cpu_state *cpu, const struct ref_result *walk);
/* RULE_KVM_WALKER_AD_WRITE_UNTRACKED's record: per 4-byte granule (by host address) that
 * a 32-bit walk's A/D update hit at the high half of an 8-byte-aligned qword, the bits
 * walkers' A/D updates changed there since the guest last wrote it. */
struct ad_updates;

struct ad_updates *ad_updates_new(void);
void ad_updates_free(struct ad_updates *u);
void ad_updates_reset(struct ad_updates *u);
/* A walk's A/D update of the dword at gpa in address space as_id changed bits (old ^ new).
 * Returns 0, or -1 when out of memory. */
int ad_updates_note(struct ad_updates *u, const struct ref_memory *mem, int as_id, gpa_t gpa,
		    uint32_t bits);
/* A guest write of [gpa, gpa + len) in address space as_id: the granules' records end. */
void ad_updates_guest_write(struct ad_updates *u, const struct ref_memory *mem, int as_id,
			    gpa_t gpa, size_t len);
/* The rule's condition: an entry the walk read (a PAE PDPTE excepted) holds a bit other
 * than its own A and D that only walkers' A/D updates changed since the guest wrote it. */
bool checker_ad_update_changed_entry(const struct ad_updates *u, const struct ref_memory *mem,
				     const struct ref_cpu_state *cpu, const struct ref_result *walk);

/* KVM_GET_DIRTY_LOG against the pages the guest wrote (bit i = page i of the slot, npages
 * pages): the reported bitmap may be a superset, as KVM's is, but must hold every written
 * page. Returns the first written page missing from reported, or -1; *missing counts them. */
int64_t checker_dirty_log_missing(const uint64_t *written, const uint64_t *reported,
				  uint64_t npages, uint64_t *missing);

const char *check_name(enum check_id check);
const char *kvm_rule_name(enum kvm_rule rule);
int model_access_format(const struct model_access *answer, char *buf, size_t len);

#endif
