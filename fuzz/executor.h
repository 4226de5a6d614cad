/* The executor: runs a program on the model (core/) and on the reference (oracle/) side by
 * side, playing the VMM (memslot ioctls, host memory) and the guest (control registers,
 * page-table writes, accesses), and has the checker judge every access. Long-lived: the
 * model's VM and the reference engines are created once and reset per program. */
#ifndef SHADOWFUZZ_FUZZ_EXECUTOR_H
#define SHADOWFUZZ_FUZZ_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/kvm_config.h"
#include "../core/mmu_observe.h"
#include "../core/mmu_trace.h"
#include "../core/vcpu_access.h"
#include "../oracle/checker.h"
#include "program.h"

struct executor;

/* What a program runs on: the whole shadow MMU with its simulated CPU (the default), or the
 * guest walker alone (walk-conformance: FNAME(walk_addr_generic) against the reference). */
enum exec_model { EXEC_SHADOW_MMU, EXEC_WALKER };

struct executor_stats {
	uint64_t programs;
	uint64_t ops;
	uint64_t accesses;
	uint64_t memslot_ioctls;
	uint64_t memslot_errors; /* ioctls the model rejected (an outcome, not a divergence) */
	uint64_t mmu_pages_errors; /* KVM_SET_NR_MMU_PAGES below 64 (-EINVAL) */
	uint64_t mmu_enospc;   /* make_mmu_pages_available found no page left */
	/* KVM's per-VM stats (struct kvm_vm_stat), summed over the programs run to their end:
	 * the VM is reset for every program. */
	struct kvm_vm_stat vm;
	uint64_t rule_hits[RULE_COUNT];
	/* Accesses and maps whose gva the harness reserves in the mode actually in force (a
	 * program's ops are valid for the mode its ops set, but a PAE switch that #GPs leaves
	 * the previous mode in place, where the reference cannot check every gva), and
	 * translations in that range under a root entry the program overwrote through
	 * another vCPU. */
	uint64_t harness_skips;
	uint64_t translations_checked;
	uint64_t shutdowns;     /* programs KVM shut down (root outside memory), by rule */
	uint64_t pke_ignored;   /* CR4.PKE requests: no PKU under shadow paging (#GP) */
	uint64_t physmap_fallbacks; /* table writes while the root could not reach the physmap */
	uint64_t dirty_logs_checked; /* KVM_GET_DIRTY_LOG bitmaps compared with the written pages */
	uint64_t dirty_pages_written; /* pages those bitmaps had to hold */
	uint64_t multi_vcpu_programs; /* programs that ran on two vCPUs or more */
	uint64_t other_vcpu_accesses; /* accesses made on a vCPU other than 0 */
	/* Time split (ns): the model's CPU and ioctls, the reference engines; the rest of a
	 * run is the checker and the harness. */
	uint64_t model_ns;
	uint64_t reference_ns;
};

#define DIVERGENCE_DETAIL_MAX 2048

struct divergence {
	uint32_t op_index;
	struct op op;
	enum paging_mode mode; /* paging mode the op ran in (for printing it) */
	unsigned vcpu;         /* the vCPU it ran on */
	enum check_id check;
	enum kvm_rule rule; /* rule that shaped the expected answer, if any */
	gva_t gva;
	struct model_access model;
	struct model_access expected;
	char detail[DIVERGENCE_DETAIL_MAX]; /* both walks, or the memory difference */
};

struct executor *executor_new(const struct kvm_config *cfg, enum exec_model model, char *err,
			      size_t errlen);
void executor_free(struct executor *ex);

/* Runs prog from a fresh VM. Returns 0 when every check passed, 1 on a divergence (div
 * filled), -1 on a harness failure (executor_error). */
int executor_run(struct executor *ex, const struct program *prog, struct divergence *div);

/* The same in steps, for drivers that generate ops as they go (walk-conformance): begin
 * resets the VM, step runs one op (same return values), finish compares all guest memory. */
int executor_begin(struct executor *ex);
int executor_step(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div);
int executor_finish(struct executor *ex, const struct program *prog, struct divergence *div);

/* Guest-visible results of a run, for comparing kernel profiles (spec §9.2): the model's
 * answer to every access in order, and a digest of guest memory at the end. */
#define EXECUTOR_LOG_MAX 1024

struct executor_log {
	uint32_t n;
	bool shut_down;
	struct {
		uint32_t op_index;
		struct model_access answer;
		/* RULE_ARCH_STALE_TRANSLATION allowed the answer: fresh is what the guest's
		 * tables give, which a processor that dropped the old translation gives. */
		bool stale;
		struct model_access fresh;
	} accesses[EXECUTOR_LOG_MAX];
	uint64_t memory_digest;
};

/* Record into log during executor_run (NULL stops recording). */
void executor_set_log(struct executor *ex, struct executor_log *log);
/* Spec §9.2: do two runs of one program give the same guest-visible results? If not, why
 * says where they part. */
bool executor_logs_match(const struct executor_log *a, const struct executor_log *b, char *why,
			 size_t len);

/* The harness's own side of a run, for replaying it on a real kernel (export --selftest):
 * every guest write the harness makes (pte and map entries, the root entries it installs
 * before loading a root) and every memslot ioctl's result, in the order they happen. */
#define EXECUTOR_HARNESS_LOG_MAX 8192

enum harness_event_kind { HARNESS_EVENT_TABLE_WRITE, HARNESS_EVENT_MEMSLOT };

struct harness_event {
	uint32_t op_index;
	enum harness_event_kind kind;
	/* Table write: delivered without the physmap (the root in force could not reach
	 * it), as KVM delivers an emulated write; a guest could not make it the same way. */
	bool fallback;
	uint8_t len;
	uint64_t gpa;
	uint64_t value;
	int ret; /* memslot: the ioctl's result, 0 or a negative errno */
};

struct executor_harness_log {
	uint32_t n;
	bool overflow; /* more events than EXECUTOR_HARNESS_LOG_MAX: the trace is incomplete */
	struct harness_event events[EXECUTOR_HARNESS_LOG_MAX];
};

/* Record into trace during executor_run (NULL stops recording). */
void executor_set_harness_log(struct executor *ex, struct executor_harness_log *trace);

/* Run core's auditor (spec §7 structural invariants) after every op, not only at the end
 * of each program. Costs time proportional to memslot sizes. */
void executor_set_audit(struct executor *ex, bool every_op);

/* Replace the reference engines every that many programs (0: never), for fuzzers that
 * run millions of inputs in one process. */
void executor_set_recycle(struct executor *ex, uint64_t programs);

/* Per-op details for `shadowfuzz trace`, delivered while a program runs. An access's
 * record comes after both sides ran it and before it is judged; pointers are valid only
 * during the call. */
struct executor_access_trace {
	uint32_t op_index;
	const struct access_check *check; /* the vCPU state, CPL, kind and gva */
	const struct ref_result *ref;     /* the architecture's answer and walk */
	struct model_access expected;     /* the answer KVM must give (ref's, or a rule's) */
	enum kvm_rule rule;
	const struct model_access *model; /* NULL: the model gave no answer (shutdown...) */
	const struct cpu_access_result *cpu; /* the simulated CPU's run; NULL in EXEC_WALKER */
	struct kvm_shadow_walk shadow;    /* the gva's shadow walk after the access */
};

struct executor_tracer {
	void *ctx;
	void (*access)(void *ctx, const struct executor_access_trace *trace); /* may be NULL */
	/* The model's MMU events (core/mmu_trace.h), including those of executor_begin. */
	void (*kvm_event)(void *ctx, const struct kvm_mmu_trace_event *ev);      /* may be NULL */
	/* A checker rule let the model's answer or translation differ from the architecture's
	 * during the op (after the access's own line). May be NULL. */
	void (*rule)(void *ctx, enum kvm_rule rule);
};

/* Attach a tracer (copied), or detach with NULL. Tracing changes no result. */
void executor_set_tracer(struct executor *ex, const struct executor_tracer *tracer);

/* The vCPU the next op runs on, and the paging mode it is in now. */
unsigned executor_vcpu(const struct executor *ex);
enum paging_mode executor_paging_mode(struct executor *ex);

const struct executor_stats *executor_stats(struct executor *ex);
const char *executor_error(const struct executor *ex);

/* A readable report: the op, the gva, the model's answer, the allowed one, both walks. */
void divergence_print(const struct divergence *div, FILE *out);

#endif
