/* The reference: what the x86 architecture says for one access, decided by executing a
 * real access instruction in Unicorn 2.0.1 under the guest's paging mode and control bits
 * (DESIGN §4, research/unicorn-oracle.md). One engine per paging mode, created once and
 * reset from snapshots per check; guest memory is the reference's own copy (ref_memory). */
#ifndef SHADOWFUZZ_ORACLE_REFERENCE_H
#define SHADOWFUZZ_ORACLE_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/x86.h"
#include "ref_memory.h"

struct ref_cpu_state {
	enum paging_mode mode;
	uint64_t cr3;
	bool cr0_wp, cr4_pse, cr4_smep, cr4_smap, cr4_pke, efer_nxe, rflags_ac;
	uint32_t pkru;
	uint64_t pdptrs[4]; /* PAE: the PDPTE registers, as loaded at MOV CR3 */
	int as_id;          /* address space of guest memory (1 in System Management Mode) */
};

enum ref_access_kind { REF_READ, REF_WRITE, REF_FETCH };
enum ref_outcome { REF_OK, REF_PAGE_FAULT, REF_GP_FAULT };

struct ref_walk_entry {
	gpa_t gpa;
	uint64_t value;
	bool backed; /* false: no region behind gpa; the value read was all-ones */
};

#define REF_MAX_AD_WRITES 16

struct ref_result {
	enum ref_outcome outcome;
	uint32_t error_code; /* #PF only */
	uint64_t cr2;        /* #PF only */
	gpa_t gpa;           /* REF_OK: the guest-physical address accessed */
	int leaf_level;      /* REF_OK: 1 = 4K, 2 = 2M/4M, 3 = 1G; 0 = PAGING_NONE (gpa = gva) */
	int n_entries;       /* paging entries read, root to leaf (or to the faulting one) */
	struct ref_walk_entry entries[PT_MAX_FULL_LEVELS];
	/* Some table read had no memory behind it: the answer is not authoritative (if the
	 * walk went through the engine's own low memory, gpa and leaf_level may be 0). */
	bool read_unbacked;
	int n_ad_writes;    /* A/D write-backs kept (successful accesses only) */
	struct {
		gpa_t gpa;
		uint32_t value;     /* low dword written */
		uint32_t old_value; /* low dword before */
	} ad_writes[REF_MAX_AD_WRITES];
	uint64_t insn_gva; /* address of the access instruction executed (for traces) */
};

struct ref_engine;

/* mem is not owned. Returns NULL and a message in err on failure. */
struct ref_engine *ref_engine_new(enum paging_mode mode, struct ref_memory *mem, char *err,
				  size_t errlen);
void ref_engine_free(struct ref_engine *engine);

/* One access, in cpu->as_id's guest memory. Returns 0, or -1 on an engine failure (message from
 * ref_engine_error); the result is valid only on 0. A/D writes of successful accesses are
 * applied to the reference's memory; faulting accesses leave memory untouched. */
int ref_check(struct ref_engine *engine, const struct ref_cpu_state *cpu, int cpl,
	      enum ref_access_kind kind, gva_t gva, struct ref_result *out);

/* The guest's translation of gva with no side effect: ref_check of a CPL0 read under a
 * copy of cpu with CR0.WP, CR4.SMEP/SMAP/PKE (and PKRU, EFLAGS.AC) cleared, so the only
 * faults left are not present, reserved bit and non-canonical (#GP), and with the walk's
 * A/D write-backs undone even on success: n_ad_writes is 0 and memory is unchanged.
 * For checking translations the model holds rather than accesses the guest makes.
 * Returns 0, or -1 on an engine failure (as ref_check). */
int ref_probe(struct ref_engine *engine, const struct ref_cpu_state *cpu, gva_t gva,
	      struct ref_result *out);

/* Undo the A/D writes of a successful check (newest first): for a checker rule under which
 * KVM faults where the architecture succeeds, since faulting walks leave memory alone. */
void ref_revert_ad_writes(struct ref_engine *engine, const struct ref_result *result);
/* Puts back the A/D updates ref_revert_ad_writes undid. */
void ref_redo_ad_writes(struct ref_engine *engine, const struct ref_result *result);

/* Nanoseconds the engine spent in ref_check (and ref_probe), for time splits. */
uint64_t ref_engine_busy_ns(const struct ref_engine *engine);

const char *ref_engine_error(const struct ref_engine *engine);

/* Machine code of the access instruction ref_check runs for kind/cpl in mode (for
 * Capstone traces). */
const uint8_t *ref_access_insn(enum paging_mode mode, enum ref_access_kind kind, size_t *len);

#endif
