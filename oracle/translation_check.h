/* Checks every translation the model holds (DESIGN §5 rules 2 and 4): each present leaf
 * spte reachable from a root and each entry of a simulated hardware TLB, against what the
 * guest's tables say now (a side-effect-free walk by the reference) or, for TLB entries,
 * against what they said at some moment since the guest last invalidated that address
 * (the architectural TLB allowance, Intel SDM vol. 3 §4.10). Sees no model internals. */
#ifndef SHADOWFUZZ_ORACLE_TRANSLATION_CHECK_H
#define SHADOWFUZZ_ORACLE_TRANSLATION_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reference.h"

enum translation_source {
	TRANSLATION_SPTE, /* a present leaf spte (or MMIO spte) reachable from a root */
	TRANSLATION_TLB,  /* an entry of a vCPU's simulated hardware TLB */
};

/* One translation the model holds, in guest terms. */
struct model_translation {
	enum translation_source source;
	int vcpu_id;
	int as_id;     /* address space of the memslots behind gpa (1 = SMM) */
	uint64_t cr3;  /* the guest CR3 whose tables the root shadows / the TLB entry came from */
	gva_t gva;     /* start of the mapped range, aligned to its size */
	int level;     /* 1 = 4K, 2 = 2M, 3 = 1G */
	bool mmio;     /* MMIO spte: the model says gpa has no memslot */
	gpa_t gpa;     /* start of the gpa range the model maps */
	hva_t hva;     /* host page backing gpa (not for MMIO) */
	unsigned access; /* ACC_* the translation grants to the hardware: W, U, X */
	/* SPTE only: the spte lives in an unsync shadow page (KVM lets it lag the guest's
	 * table like a TLB entry, spec §5.5), and it is reached only from a cached root
	 * (prev_roots), which KVM syncs before it uses that root again. */
	bool unsync;
	bool cached_root;
	/* SPTE only: the vCPU has a sync pending (KVM_REQ_MMU_SYNC): it syncs every unsync
	 * page below its roots before it runs the guest again. */
	bool sync_pending;
	bool global;   /* TLB only: survives MOV CR3 (unused while no PGE) */
};

/* Why a translation is wrong (first failing rule). */
enum translation_fault {
	TRANSLATION_OK,
	TRANSLATION_NOT_MAPPED,   /* the guest maps nothing there (and no allowance) */
	TRANSLATION_WRONG_GPA,    /* maps another gpa (or a larger page than the guest's) */
	TRANSLATION_WRONG_FRAME,  /* hva is not the memslot backing of gpa, or MMIO-ness wrong */
	TRANSLATION_TOO_PERMISSIVE, /* grants W/U/X the guest does not (W needs the leaf's D) */
	TRANSLATION_NOT_ACCESSED, /* the guest's leaf has A=0: no processor caches that */
	/* No verdict: the reference failed, the translation is malformed, or no memory for
	 * the history. A harness failure, not a finding about the model. */
	TRANSLATION_CHECK_FAILED,
	TRANSLATION_FAULT_COUNT
};

struct translation_verdict {
	enum translation_fault fault;
	struct ref_result guest; /* the reference's walk for the translation's gva */
	char detail[256];
};

struct translation_checker;

/* mem: the reference's memory (for gpa -> hva of the backing). The reference engines are
 * the caller's (one per paging mode), passed per check. */
struct translation_checker *translation_checker_new(struct ref_memory *mem);
void translation_checker_free(struct translation_checker *tc);
/* Forget all TLB history (a new program). */
void translation_checker_reset(struct translation_checker *tc);

/* Guest invalidations that end the TLB allowance: INVLPG of one page, MOV CR3 (all
 * non-global), paging-mode / CR0.WP / CR4 changes (everything). Per vCPU. */
void translation_checker_invlpg(struct translation_checker *tc, int vcpu_id, gva_t gva);
void translation_checker_flush_all(struct translation_checker *tc, int vcpu_id);

/* Check one translation under the vCPU state cpu (cr3 replaced by t->cr3 for the walk;
 * in PAE mode cpu->pdptrs are the PDPTE registers of that CR3). engine is the reference
 * for cpu->mode (unused, may be NULL, in PAGING_NONE). Returns true if allowed; false
 * with verdict->fault TRANSLATION_CHECK_FAILED when no verdict could be reached.
 * Translations found valid are remembered as TLB history for (vcpu, gva) until the next
 * invalidation. */
bool translation_check(struct translation_checker *tc, struct ref_engine *engine,
		       const struct ref_cpu_state *cpu, const struct model_translation *t,
		       struct translation_verdict *verdict);

/* Whether an access (kind, cpl) of gva may be answered with gpa by a translation the
 * guest has not invalidated on vCPU vcpu_id since the checker saw it valid, with rights
 * that permit the access under cpu's controls now (the TLB allowance applied to the
 * access itself). mmio: the answer is an MMIO exit, whose write KVM emulates without
 * setting D. Marks the record used. */
bool translation_checker_allows_access(struct translation_checker *tc, const struct ref_cpu_state *cpu,
				       int vcpu_id, gva_t gva, gpa_t gpa, enum ref_access_kind kind, int cpl,
				       bool mmio);

const char *translation_fault_name(enum translation_fault fault);
int model_translation_format(const struct model_translation *t, char *buf, size_t len);

#endif
