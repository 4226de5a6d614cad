/* Runs programs on the model and the reference and checks every access (DESIGN §1, §5). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/host_memory.h"
#include "../core/kvm_host.h"
#include "../core/memslot.h"
#include "../core/mmu.h"
#include "../core/mmu_audit.h"
#include "../core/mmu_observe.h"
#include "../core/paging.h"
#include "../core/vcpu_access.h"
#include "../oracle/harness_layout.h"
#include "../oracle/ref_memory.h"
#include "../oracle/reference.h"
#include "../oracle/translation_check.h"
#include "executor.h"
#include "guest_physmap.h"

/* The VMM's record of a slot it set, for delete/move/flags ops (as userspace keeps one). */
struct slot_record {
	bool valid;
	struct kvm_userspace_memory_region region;
	/* While the slot logs: the pages the guest wrote since the last KVM_GET_DIRTY_LOG of
	 * the slot (bit i = page i), the oracle's side of the dirty-log check. */
	uint64_t *written;
};

/* The harness's side of one vCPU; the program's vCPU number is KVM's vcpu_id. */
struct exec_vcpu {
	struct kvm_vcpu *vcpu; /* NULL until the program first selects it (KVM_CREATE_VCPU) */
	unsigned cr3_table;
	uint64_t ref_pdptrs[4]; /* the architectural PDPTE registers, loaded from reference memory */
	/* The vCPU's MMIO cache may hold an entry filled in SMM, tagged with address space
	 * 0's generation: set by an MMIO exit in SMM, cleared when that generation moves. */
	bool smm_mmio_cache_taint;
	uint64_t smm_taint_gen;
	/* The last access ended in an MMIO exit: KVM_RUN returned to the VMM, and the vCPU
	 * stays out of the guest, its requests pending, until its next guest action; other
	 * vCPUs and VM ioctls run meanwhile (spec §8 B14's window). */
	bool out_after_mmio_exit;
};
#define VERIFIED_SLOT_BITS 12

struct executor {
	struct kvm_config config;
	enum exec_model model;
	bool audit_every_op;
	uint64_t recycle_every, since_recycle; /* executor_set_recycle */
	struct executor_log *log;
	struct executor_tracer tracer;
	struct executor_harness_log *harness_log;
	struct translation_checker *translations;
	struct aliased_writes *aliased_writes; /* RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED */
	struct ad_updates *ad_updates;         /* RULE_KVM_WALKER_AD_WRITE_UNTRACKED */
	bool untracked_writes_oom;
	struct host_memory *host;
	struct kvm *kvm;
	struct ref_memory *ref_mem;
	struct ref_engine *engines[PAGING_MODE_COUNT];
	struct executor_stats stats;
	/* Per program. */
	struct slot_record slots[KVM_ADDRESS_SPACE_NUM][KVM_USER_MEM_SLOTS];
	uint16_t used_slots[KVM_ADDRESS_SPACE_NUM * KVM_USER_MEM_SLOTS];
	unsigned n_used_slots;
	struct exec_vcpu vcpus[PROG_MAX_VCPUS];
	unsigned cur; /* the vCPU ops run on */
	uint32_t op_index; /* the op running, for trace events */
	unsigned next_pool_table;
	bool shut_down;         /* KVM stopped the VM (RULE_KVM_ROOT_OUTSIDE_MEMSLOT) */
	/* A verified translation stays verified until the epoch moves (memslots, control
	 * state, CR3, invalidations, a rule rewriting the reference) or an entry its walk
	 * read is written. An access's A/D writes never make a valid translation invalid,
	 * but they count as writes so that the TLB history learns the D bit
	 * (note_access_writes). */
	uint64_t epoch;
	uint64_t guest_write_seq;
	/* By bucket of 8-byte unit of guest-physical memory: guest_write_seq of the last
	 * write. Units, not pages: a map op writes one entry of a table that many verified
	 * walks read, and only walks through that entry need checking again. */
	uint64_t unit_written_at[4096];
	struct verified_translation {
		uint64_t epoch;
		uint64_t verified_at; /* guest_write_seq when verified */
		unsigned n_units;
		/* the walk's entries, and in PAE mode the PDPTEs at CR3 */
		uint16_t unit_bucket[PT_MAX_FULL_LEVELS + 4];
		struct model_translation t;
	} verified[1u << VERIFIED_SLOT_BITS];
	char error[256];
};

static bool shadow_mmu(const struct executor *ex) { return ex->model == EXEC_SHADOW_MMU; }
static void forget_slots(struct executor *ex);

static int fail(struct executor *ex, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ex->error, sizeof(ex->error), fmt, ap);
	va_end(ap);
	return -1;
}

struct executor *executor_new(const struct kvm_config *cfg, enum exec_model model, char *err,
			      size_t errlen)
{
	struct executor *ex = calloc(1, sizeof(*ex));

	if (!ex) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ex->config = *cfg;
	ex->model = model;
	ex->host = host_memory_new();
	ex->ref_mem = ref_memory_new();
	if (ex->host)
		ex->kvm = kvm_create(cfg, ex->host);
	if (ex->ref_mem)
		ex->translations = translation_checker_new(ex->ref_mem);
	ex->aliased_writes = aliased_writes_new();
	ex->ad_updates = ad_updates_new();
	if (!ex->host || !ex->ref_mem || !ex->kvm || !ex->translations || !ex->aliased_writes ||
	    !ex->ad_updates) {
		snprintf(err, errlen, "out of memory creating the model");
		executor_free(ex);
		return NULL;
	}
	return ex;
}

void executor_free(struct executor *ex)
{
	if (!ex)
		return;
	forget_slots(ex);
	for (int mode = 0; mode < PAGING_MODE_COUNT; mode++)
		ref_engine_free(ex->engines[mode]);
	if (ex->kvm)
		kvm_destroy(ex->kvm);
	translation_checker_free(ex->translations);
	aliased_writes_free(ex->aliased_writes);
	ad_updates_free(ex->ad_updates);
	host_memory_free(ex->host);
	ref_memory_free(ex->ref_mem);
	free(ex);
}

const struct executor_stats *executor_stats(struct executor *ex)
{
	ex->stats.reference_ns = 0;
	for (int mode = 0; mode < PAGING_MODE_COUNT; mode++)
		ex->stats.reference_ns += ref_engine_busy_ns(ex->engines[mode]);
	return &ex->stats;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct exec_vcpu *cur(struct executor *ex) { return &ex->vcpus[ex->cur]; }
static struct kvm_vcpu *cur_vcpu(struct executor *ex) { return ex->vcpus[ex->cur].vcpu; }

/* The model's CPU, timed for executor_stats.model_ns. */
static void model_cpu_access(struct executor *ex, const struct cpu_access *acc,
			     struct cpu_access_result *res)
{
	uint64_t start = now_ns();

	kvm_vcpu_access(cur_vcpu(ex), acc, res);
	ex->stats.model_ns += now_ns() - start;
	cur(ex)->out_after_mmio_exit = res->outcome == CPU_MMIO_EXIT;
	/* vcpu_cache_mmio_info tags the entry with address space 0's generation even in SMM,
	 * and leaving SMM (kvm_smm_changed -> kvm_mmu_reset_context) keeps the cache: the
	 * entry stays usable until that generation moves
	 * (RULE_KVM_SMM_MMIO_CACHE_AS0_GENERATION). */
	if (res->outcome == CPU_MMIO_EXIT && cur_vcpu(ex)->arch.smm) {
		cur(ex)->smm_mmio_cache_taint = true;
		cur(ex)->smm_taint_gen = ex->kvm->memslots[0]->generation;
	}
}
void executor_set_audit(struct executor *ex, bool every_op) { ex->audit_every_op = every_op; }
void executor_set_log(struct executor *ex, struct executor_log *log) { ex->log = log; }
void executor_set_harness_log(struct executor *ex, struct executor_harness_log *log) { ex->harness_log = log; }

static void log_harness_event(struct executor *ex, const struct harness_event *event)
{
	struct executor_harness_log *log = ex->harness_log;

	if (!log)
		return;
	if (log->n >= EXECUTOR_HARNESS_LOG_MAX) {
		log->overflow = true;
		return;
	}
	log->events[log->n++] = *event;
}

/* The op a harness event belongs to: executor_step records it before running the op. */
static void log_table_write(struct executor *ex, gpa_t gpa, const void *src, size_t len, bool fallback)
{
	struct harness_event event = {
		.op_index = ex->op_index, .kind = HARNESS_EVENT_TABLE_WRITE, .fallback = fallback,
		.len = (uint8_t)len, .gpa = gpa,
	};

	memcpy(&event.value, src, len);
	log_harness_event(ex, &event);
}

void executor_set_tracer(struct executor *ex, const struct executor_tracer *tracer)
{
	memset(&ex->tracer, 0, sizeof(ex->tracer));
	if (tracer)
		ex->tracer = *tracer;
	ex->kvm->trace_fn = ex->tracer.kvm_event;
	ex->kvm->trace_ctx = ex->tracer.ctx;
}

enum paging_mode executor_paging_mode(struct executor *ex)
{
	return kvm_vcpu_paging_mode(cur_vcpu(ex));
}

unsigned executor_vcpu(const struct executor *ex) { return ex->cur; }

static void log_access(struct executor *ex, uint32_t index, const struct model_access *answer)
{
	struct executor_log *log = ex->log;

	if (!log || log->n >= EXECUTOR_LOG_MAX)
		return;
	log->accesses[log->n].op_index = index;
	log->accesses[log->n].answer = *answer;
	log->accesses[log->n].stale = false;
	log->n++;
}

/* The access just logged was answered from a stale translation; fresh is the other answer
 * the architecture allows. */
static void log_stale_access(struct executor *ex, uint32_t index, const struct model_access *fresh)
{
	struct executor_log *log = ex->log;

	if (!log || !log->n || log->accesses[log->n - 1].op_index != index)
		return;
	log->accesses[log->n - 1].stale = true;
	log->accesses[log->n - 1].fresh = *fresh;
}

/* An order-independent digest of guest memory (hva, contents) of the model. */
static void digest_page(void *ctx, hva_t hva, const uint8_t *page)
{
	uint64_t *digest = ctx, h = hva * 0x9e3779b97f4a7c15ull;
	bool zero = true;

	for (size_t i = 0; i < PAGE_SIZE; i += 8) {
		uint64_t word;

		memcpy(&word, page + i, 8);
		zero &= !word;
		h = (h ^ word) * 0x100000001b3ull;
	}
	/* A page of zeros reads like one never written. */
	if (!zero)
		*digest += h;
}
const char *executor_error(const struct executor *ex) { return ex->error; }

/* The address space the guest sees now: 1 in System Management Mode. */
static int guest_as(struct executor *ex) { return cur_vcpu(ex)->arch.smm ? 1 : 0; }

static struct ref_engine *engine_for(struct executor *ex, enum paging_mode mode)
{
	char err[256];

	if (!ex->engines[mode]) {
		ex->engines[mode] = ref_engine_new(mode, ex->ref_mem, err, sizeof(err));
		if (!ex->engines[mode])
			fail(ex, "reference engine for mode %s: %s", paging_mode_name(mode), err);
	}
	return ex->engines[mode];
}

/* ---- guest memory, written on both sides ---- */

/* Paging entries are 4 or 8 bytes at aligned addresses: an 8-byte unit holds whole ones. */
#define WRITE_UNIT_SHIFT 3

static unsigned unit_bucket(const struct executor *ex, gpa_t gpa)
{
	size_t n = sizeof(ex->unit_written_at) / sizeof(ex->unit_written_at[0]);

	return (unsigned)(((gpa >> WRITE_UNIT_SHIFT) * 0x9e3779b97f4a7c15ull >> 32) % n);
}

/* Every change of the reference's guest memory outside an access goes through here, so
 * the verified translations whose walks read an entry in [gpa, gpa + len) are checked
 * again. Units sharing a bucket only cost extra checks. */
static void note_guest_write(struct executor *ex, gpa_t gpa, size_t len)
{
	ex->guest_write_seq++;
	if (!len)
		return;
	for (gpa_t unit = gpa >> WRITE_UNIT_SHIFT; unit <= (gpa + len - 1) >> WRITE_UNIT_SHIFT; unit++)
		ex->unit_written_at[unit_bucket(ex, unit << WRITE_UNIT_SHIFT)] = ex->guest_write_seq;
}

/* A guest write that reached memory through gpa's gfn: KVM tracks it for that gfn only,
 * whatever other gfn maps the same host page (RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED);
 * KVM saw it, unlike the walkers' A/D updates before it
 * (RULE_KVM_WALKER_AD_WRITE_UNTRACKED). */
static void note_aliased_write(struct executor *ex, gpa_t gpa, size_t len)
{
	if (aliased_writes_note(ex->aliased_writes, ex->ref_mem, guest_as(ex), gpa, len))
		ex->untracked_writes_oom = true;
	ad_updates_guest_write(ex->ad_updates, ex->ref_mem, guest_as(ex), gpa, len);
}

/* A guest write reached gpa in address space as_id: its page belongs in the next
 * KVM_GET_DIRTY_LOG of a logging slot holding it (the VMM's records say which). */
static void note_guest_dirty(struct executor *ex, int as_id, gpa_t gpa)
{
	for (unsigned i = 0; i < ex->n_used_slots; i++) {
		unsigned as = ex->used_slots[i] / KVM_USER_MEM_SLOTS;
		struct slot_record *rec = &ex->slots[as][ex->used_slots[i] % KVM_USER_MEM_SLOTS];
		uint64_t page = (gpa - rec->region.guest_phys_addr) >> PAGE_SHIFT;

		if ((int)as != as_id || !rec->valid || gpa - rec->region.guest_phys_addr >= rec->region.memory_size)
			continue;
		if (rec->written && !(rec->region.flags & KVM_MEM_READONLY))
			rec->written[page / 64] |= 1ull << (page % 64);
		return;
	}
}

/* A guest write of guest-physical memory, as KVM's emulator does it (the harness's own
 * table writes): RAM slots take it on the model's side (and mark the page dirty, as
 * emulator_write_phys does), regions on the reference's; read-only memory and holes drop
 * it on both. */
static void guest_phys_write(struct executor *ex, gpa_t gpa, const void *src, size_t len)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(cur_vcpu(ex)), gpa >> PAGE_SHIFT);
	bool writable = false;
	hva_t hva = gfn_to_hva_memslot_prot(slot, gpa >> PAGE_SHIFT, &writable);

	if (hva != KVM_HVA_ERR_BAD && writable) {
		host_write(ex->host, hva + (gpa & ~PAGE_MASK), src, len);
		kvm_vcpu_mark_page_dirty(cur_vcpu(ex), gpa >> PAGE_SHIFT);
	}
	note_guest_write(ex, gpa, len);
	note_guest_dirty(ex, guest_as(ex), gpa);
	if (!ref_memory_write(ex->ref_mem, guest_as(ex), gpa, src, len))
		note_aliased_write(ex, gpa, len);
}

static int model_phys_read(struct executor *ex, gpa_t gpa, void *dst, size_t len)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(cur_vcpu(ex)), gpa >> PAGE_SHIFT);
	hva_t hva = gfn_to_hva_memslot_prot(slot, gpa >> PAGE_SHIFT, NULL);

	if (hva == KVM_HVA_ERR_BAD)
		return -EFAULT;
	return host_read(ex->host, hva + (gpa & ~PAGE_MASK), dst, len);
}

/* ---- vCPU state ---- */

static void ref_cpu_of(const struct exec_vcpu *v, struct ref_cpu_state *cpu)
{
	const struct kvm_vcpu *vcpu = v->vcpu;
	enum paging_mode mode = kvm_vcpu_paging_mode(vcpu);

	*cpu = (struct ref_cpu_state){
		.mode = mode,
		.cr3 = vcpu->arch.cr3,
		.cr0_wp = vcpu->arch.cr0 & X86_CR0_WP,
		.cr4_pse = vcpu->arch.cr4 & X86_CR4_PSE,
		.cr4_smep = vcpu->arch.cr4 & X86_CR4_SMEP,
		.cr4_smap = vcpu->arch.cr4 & X86_CR4_SMAP,
		/* Protection keys exist only in IA-32e paging. */
		.cr4_pke = (vcpu->arch.cr4 & X86_CR4_PKE) && mode >= PAGING_4LEVEL,
		.efer_nxe = vcpu->arch.efer & EFER_NX,
		.rflags_ac = vcpu->arch.rflags & X86_EFLAGS_AC,
		.pkru = vcpu->arch.pkru,
		.as_id = vcpu->arch.smm ? 1 : 0,
	};
	memcpy(cpu->pdptrs, v->ref_pdptrs, sizeof(cpu->pdptrs));
}

static void ref_cpu_from_vcpu(struct executor *ex, struct ref_cpu_state *cpu)
{
	ref_cpu_of(cur(ex), cpu);
}

/* The architectural PDPTE load: read from the reference's memory (a hole reads as
 * all-ones, which is never a valid PDPTE). */
static bool ref_load_pdptrs(struct executor *ex, uint64_t cr3, uint64_t pdptrs[4])
{
	if (ref_memory_read(ex->ref_mem, guest_as(ex), cr3 & 0xffffffe0ull, pdptrs, 4 * sizeof(uint64_t)))
		memset(pdptrs, 0xff, 4 * sizeof(uint64_t));
	return checker_pdptes_valid(pdptrs, ex->config.maxphyaddr);
}

static void set_divergence(struct divergence *div, uint32_t op_index, const struct op *op,
			   enum check_id check)
{
	memset(div, 0, sizeof(*div));
	div->op_index = op_index;
	div->op = *op;
	div->check = check;
}

/* A PAE CR3 load on both sides (MOV CR3, or enabling PAE paging): 1 on a divergence in
 * whether it #GPs, else 0 with *loaded telling whether the load succeeded. */
static int load_cr3_pae(struct executor *ex, uint64_t cr3, uint32_t op_index,
			const struct op *op, struct divergence *div, bool *loaded)
{
	uint64_t pdptrs[4];
	bool arch_ok = ref_load_pdptrs(ex, cr3, pdptrs);
	bool model_ok = load_pdptrs(cur_vcpu(ex), cr3);

	if (arch_ok != model_ok) {
		set_divergence(div, op_index, op, CHECK_PDPTE_LOAD);
		snprintf(div->detail, sizeof(div->detail),
			 "MOV CR3 %#llx: model %s, architecture %s (PDPTEs %#llx %#llx %#llx %#llx)",
			 (unsigned long long)cr3, model_ok ? "loaded" : "#GP",
			 arch_ok ? "loads" : "#GP", (unsigned long long)pdptrs[0],
			 (unsigned long long)pdptrs[1], (unsigned long long)pdptrs[2],
			 (unsigned long long)pdptrs[3]);
		return 1;
	}
	if (arch_ok)
		memcpy(cur(ex)->ref_pdptrs, pdptrs, sizeof(pdptrs));
	*loaded = arch_ok;
	return 0;
}

/* ---- the shadow MMU's CPU ---- */

static uint64_t entry_value_size(enum paging_mode mode) { return mode == PAGING_32 ? 4 : 8; }

/* A model error a rule expects (the model "crashed" where KVM would): the run ends. */
static bool model_error_is_known(struct executor *ex, const struct ref_cpu_state *cpu)
{
	if (!checker_smm_root_only_in_as0(ex->ref_mem, cpu))
		return false;
	ex->stats.rule_hits[RULE_KVM_SMM_ROOT_CHECKED_IN_AS0]++;
	ex->stats.shutdowns++;
	ex->shut_down = true;
	return true;
}

static bool smm_cache_may_be_stale(struct executor *ex)
{
	return cur(ex)->smm_mmio_cache_taint && ex->kvm->memslots[0]->generation == cur(ex)->smm_taint_gen;
}

/* An MMIO exit is right only where the guest-physical address has no memory the access
 * could use (none, or read-only for a write); in SMM KVM's MMIO cache may be stale
 * (RULE_KVM_SMM_MMIO_CACHE_AS0_GENERATION). */
static bool mmio_exit_allowed(struct executor *ex, bool write, const struct cpu_access_result *res)
{
	bool readonly = false;

	if (res->outcome != CPU_MMIO_EXIT)
		return true;
	if (!ref_memory_backing(ex->ref_mem, guest_as(ex), res->gpa, NULL, &readonly))
		return true;
	if (write && readonly)
		return true;
	if (!cur_vcpu(ex)->arch.smm && !smm_cache_may_be_stale(ex))
		return false;
	ex->stats.rule_hits[RULE_KVM_SMM_MMIO_CACHE_AS0_GENERATION]++;
	return true;
}

/* RULE_KVM_READONLY_WRITE_IS_MMIO: a write that completes on read-only memory (the
 * model's accepted answer, which a stale translation may have given, and no other rule's)
 * must have exited to userspace. False if the model completed it instead. */
static bool readonly_write_exited(struct executor *ex, const struct access_check *check,
				  const struct model_access *model, enum kvm_rule rule,
				  const struct cpu_access_result *cpu)
{
	bool readonly = false;

	if (check->kind != REF_WRITE || model->outcome != REF_OK || rule != RULE_NONE ||
	    !ref_memory_backing(ex->ref_mem, guest_as(ex), model->gpa, NULL, &readonly) || !readonly)
		return true;
	ex->stats.rule_hits[RULE_KVM_READONLY_WRITE_IS_MMIO]++;
	return cpu->outcome == CPU_MMIO_EXIT;
}

/* A CPU outcome that is not an answer to compare: shutdown (a rule may allow it), livelock
 * or a model crash. Returns 1 with div filled, 0 if a rule allowed it. */
static int kvm_warning(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div);

static int cpu_failure(struct executor *ex, uint32_t index, const struct op *op, gva_t gva,
		       const struct cpu_access_result *res, struct divergence *div)
{
	struct ref_cpu_state cpu;

	/* KVM_RUN failed on a state a rule knows (the vCPU could not load its roots). */
	if (shadow_mmu(ex) && ex->kvm->warning.set)
		return kvm_warning(ex, index, op, div);
	ref_cpu_from_vcpu(ex, &cpu);
	if (res->outcome == CPU_SHUTDOWN && checker_root_unbacked(ex->ref_mem, &cpu)) {
		ex->stats.rule_hits[RULE_KVM_ROOT_OUTSIDE_MEMSLOT]++;
		ex->stats.shutdowns++;
		ex->shut_down = true;
		return 0;
	}
	if (res->outcome == CPU_MODEL_ERROR && model_error_is_known(ex, &cpu))
		return 0;
	set_divergence(div, index, op, res->outcome == CPU_LIVELOCK ? CHECK_LIVENESS :
				       res->outcome == CPU_MODEL_ERROR ? CHECK_MODEL_ERROR : CHECK_OUTCOME);
	div->gva = gva;
	if (res->outcome == CPU_MODEL_ERROR)
		snprintf(div->detail, sizeof(div->detail), "model error: %s", ex->kvm->error.what);
	else if (res->outcome == CPU_LIVELOCK)
		snprintf(div->detail, sizeof(div->detail), "access did not complete after %d faults",
			 res->faults);
	else if (res->outcome == CPU_SHUTDOWN)
		snprintf(div->detail, sizeof(div->detail),
			 "model shut the VM down although its root tables are backed (mode %s, cr3 %#llx)",
			 paging_mode_name(cpu.mode), (unsigned long long)cpu.cr3);
	else
		snprintf(div->detail, sizeof(div->detail),
			 "the harness's own write through the physmap failed (outcome %d, error %#x)",
			 res->outcome, res->error_code);
	return 1;
}

/* Whether a vCPU's root reaches the physmap: the program may have made its tables
 * read-only or unbacked before the harness could install the entry, or written the entry
 * through another vCPU, for which the table is no root. */
static bool root_holds_physmap(struct executor *ex, const struct ref_cpu_state *cpu)
{
	uint64_t want = physmap_root_entry(cpu->mode), have = 0;

	if (cpu->mode == PAGING_NONE)
		return true;
	/* The physmap's tables are in address space 0 only. */
	if (cpu->as_id)
		return false;
	if (cpu->mode == PAGING_PAE)
		return cpu->pdptrs[HARNESS_ROOT_INDEX] == want;
	ref_memory_read(ex->ref_mem, 0, (cpu->cr3 & PAGE_MASK) + HARNESS_ROOT_INDEX * entry_value_size(cpu->mode),
			&have, entry_value_size(cpu->mode));
	return have == want;
}

static bool physmap_usable(struct executor *ex)
{
	struct ref_cpu_state cpu;

	ref_cpu_from_vcpu(ex, &cpu);
	return root_holds_physmap(ex, &cpu);
}

/* A guest write of guest-physical memory through the harness's physmap, as a CPL0 write
 * on the model's CPU, so it traps where KVM write-protects; plain on the reference. Without
 * a usable physmap the write is delivered as KVM delivers an emulated one (memory, then
 * kvm_page_track_write), counted in physmap_fallbacks. */
static int physmap_write(struct executor *ex, uint32_t index, const struct op *op, gpa_t gpa,
			 const void *src, size_t len, struct divergence *div)
{
	struct cpu_access acc = { .gva = gpa, .kind = CPU_WRITE, .cpl = 0, .size = (unsigned)len, .data = src };
	struct cpu_access_result res;
	int saved_cpl = cur_vcpu(ex)->arch.cpl;

	if (ex->shut_down)
		return 0;
	if (!physmap_usable(ex)) {
		ex->stats.physmap_fallbacks++;
		log_table_write(ex, gpa, src, len, true);
		guest_phys_write(ex, gpa, src, len);
		kvm_mmu_pte_write(cur_vcpu(ex), gpa, src, (int)len);
		return 0;
	}
	log_table_write(ex, gpa, src, len, false);
	uint64_t before = 0;
	bool backed = ref_memory_read(ex->ref_mem, guest_as(ex), gpa, &before, len) == 0;

	note_guest_write(ex, gpa, len);
	if (!ref_memory_write(ex->ref_mem, guest_as(ex), gpa, src, len))
		note_aliased_write(ex, gpa, len);
	model_cpu_access(ex, &acc, &res);
	cur_vcpu(ex)->arch.cpl = saved_cpl;
	if (res.outcome == CPU_OK) {
		note_guest_dirty(ex, guest_as(ex), gpa);
		return 0;
	}
	if (res.outcome != CPU_MMIO_EXIT)
		return cpu_failure(ex, index, op, gpa, &res, div);
	if (!mmio_exit_allowed(ex, true, &res)) {
		set_divergence(div, index, op, CHECK_MMIO);
		div->gva = gpa;
		snprintf(div->detail, sizeof(div->detail),
			 "the harness's table write to gpa %#llx exited as MMIO, but it has memory",
			 (unsigned long long)gpa);
		return 1;
	}
	/* KVM dropped the write (stale MMIO cache in SMM): so does the reference. */
	if (backed)
		ref_memory_write(ex->ref_mem, guest_as(ex), gpa, &before, len);
	return 0;
}

/* The physmap entry in root entry HARNESS_ROOT_INDEX of the table about to become the root
 * in mode: written by the harness's guest kernel before it loads CR3, which KVM sees as an
 * emulated write when the table is write-tracked (kvm_page_track_write). */
static void install_physmap_root(struct executor *ex, gpa_t root, enum paging_mode mode)
{
	uint64_t value = physmap_root_entry(mode), current = 0;
	size_t len = entry_value_size(mode);
	gpa_t gpa = root + HARNESS_ROOT_INDEX * len;

	if (!shadow_mmu(ex) || mode == PAGING_NONE || cur_vcpu(ex)->arch.smm)
		return;
	ref_memory_read(ex->ref_mem, 0, gpa, &current, len);
	if (current == value)
		return;
	log_table_write(ex, gpa, &value, len, !physmap_usable(ex));
	guest_phys_write(ex, gpa, &value, len);
	kvm_mmu_pte_write(cur_vcpu(ex), gpa, (const uint8_t *)&value, (int)len);
}

static void set_paging_regs(struct kvm_vcpu *vcpu, enum paging_mode mode)
{
	struct kvm_vcpu_arch *arch = &vcpu->arch;

	arch->cr0 &= ~X86_CR0_PG;
	arch->cr4 &= ~(X86_CR4_PAE | X86_CR4_LA57);
	arch->efer &= ~(EFER_LME | EFER_LMA);
	if (mode == PAGING_NONE)
		return;
	arch->cr0 |= X86_CR0_PG | X86_CR0_PE;
	if (mode >= PAGING_PAE)
		arch->cr4 |= X86_CR4_PAE;
	if (mode >= PAGING_4LEVEL)
		arch->efer |= EFER_LME | EFER_LMA;
	if (mode == PAGING_5LEVEL)
		arch->cr4 |= X86_CR4_LA57;
}

/* A mode switch as one architectural step; entering PAE paging loads the PDPTEs and a
 * #GP leaves the previous mode in place. The shadow MMU unloads its roots first, with the
 * old context (kvm_mmu_reset_context), and the guest's TLB is flushed. */
static int op_mode(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	struct kvm_vcpu *vcpu = cur_vcpu(ex);
	struct kvm_vcpu_arch saved = vcpu->arch;
	bool loaded = true;

	install_physmap_root(ex, vcpu->arch.cr3 & PAGE_MASK, op->mode.mode);
	if (shadow_mmu(ex))
		kvm_mmu_unload(vcpu);
	set_paging_regs(vcpu, op->mode.mode);
	kvm_init_mmu(vcpu);
	if (op->mode.mode == PAGING_PAE && load_cr3_pae(ex, vcpu->arch.cr3, index, op, div, &loaded))
		return 1;
	if (!loaded) {
		vcpu->arch = saved;
		kvm_init_mmu(vcpu);
	}
	translation_checker_flush_all(ex->translations, vcpu->vcpu_id);
	return 0;
}

static void op_control(struct executor *ex, const struct op *op)
{
	static const struct {
		enum control_bit bit;
		size_t reg; /* offset in struct kvm_vcpu_arch */
		uint64_t mask;
	} map[] = {
		{ CTRL_CR0_WP, offsetof(struct kvm_vcpu_arch, cr0), X86_CR0_WP },
		{ CTRL_CR4_PSE, offsetof(struct kvm_vcpu_arch, cr4), X86_CR4_PSE },
		{ CTRL_CR4_SMEP, offsetof(struct kvm_vcpu_arch, cr4), X86_CR4_SMEP },
		{ CTRL_CR4_SMAP, offsetof(struct kvm_vcpu_arch, cr4), X86_CR4_SMAP },
		{ CTRL_CR4_PKE, offsetof(struct kvm_vcpu_arch, cr4), X86_CR4_PKE },
		{ CTRL_EFER_NXE, offsetof(struct kvm_vcpu_arch, efer), EFER_NX },
		{ CTRL_RFLAGS_AC, offsetof(struct kvm_vcpu_arch, rflags), X86_EFLAGS_AC },
	};
	struct kvm_vcpu *vcpu = cur_vcpu(ex);
	uint8_t mask = op->control.mask;

	/* KVM hides PKU from shadow-paging guests: MOV CR4 with PKE #GPs, on both sides. */
	if (shadow_mmu(ex) && (mask & op->control.value & CTRL_CR4_PKE)) {
		ex->stats.pke_ignored++;
		mask &= ~CTRL_CR4_PKE;
	}
	/* Paging-relevant bits reset the MMU context and flush the TLB; AC alone does not. */
	if (mask & ~CTRL_RFLAGS_AC) {
		if (shadow_mmu(ex))
			kvm_mmu_unload(vcpu);
		translation_checker_flush_all(ex->translations, vcpu->vcpu_id);
	}
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		uint64_t *reg = (uint64_t *)((char *)&vcpu->arch + map[i].reg);

		if (!(mask & map[i].bit))
			continue;
		if (op->control.value & map[i].bit)
			*reg |= map[i].mask;
		else
			*reg &= ~map[i].mask;
	}
	kvm_init_mmu(vcpu);
}

/* kvm_set_cr3: the same value syncs and flushes; a new one goes to kvm_mmu_new_cr3 (PAE
 * loads the PDPTEs first and #GPs on a bad one). Every MOV CR3 flushes the guest's TLB. */
static int op_cr3(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	struct kvm_vcpu *vcpu = cur_vcpu(ex);
	enum paging_mode mode = kvm_vcpu_paging_mode(vcpu);
	uint64_t cr3 = table_pool_gpa(op->cr3.table);
	bool loaded = true;

	uint64_t old_pdptrs[4];
	bool same;

	memcpy(old_pdptrs, vcpu->mmu.pdptrs, sizeof(old_pdptrs));
	install_physmap_root(ex, cr3, mode);
	if (mode == PAGING_PAE && load_cr3_pae(ex, cr3, index, op, div, &loaded))
		return 1;
	if (!loaded)
		return 0;
	/* New PDPTE registers and no TLB allowance: verdicts so far no longer hold (also for
	 * op_map's PAE reload, which is not an epoch-moving op). */
	ex->epoch++;
	translation_checker_flush_all(ex->translations, vcpu->vcpu_id);
	/* The same CR3 with the same PDPTEs only syncs and flushes (pdptrs_changed). */
	same = cr3 == vcpu->arch.cr3 && !memcmp(old_pdptrs, vcpu->mmu.pdptrs, sizeof(old_pdptrs));
	if (shadow_mmu(ex)) {
		if (same)
			vcpu->requests |= KVM_REQ_MMU_SYNC | KVM_REQ_TLB_FLUSH;
		else
			kvm_mmu_new_cr3(vcpu, cr3, false);
	}
	vcpu->arch.cr3 = cr3;
	cur(ex)->cr3_table = op->cr3.table;
	return 0;
}

/* ---- memslots ---- */

static struct slot_record *slot_record(struct executor *ex, unsigned as_id, unsigned id)
{
	if (as_id >= KVM_ADDRESS_SPACE_NUM || id >= KVM_USER_MEM_SLOTS)
		return NULL;
	return &ex->slots[as_id][id];
}

static bool slot_logs(const struct slot_record *rec)
{
	return rec->valid && (rec->region.flags & KVM_MEM_LOG_DIRTY_PAGES);
}

static uint64_t slot_bitmap_words(const struct slot_record *rec)
{
	return ((rec->region.memory_size >> PAGE_SHIFT) + 63) / 64;
}

/* The record of written pages lives as KVM's dirty bitmap does (kvm_create_dirty_bitmap,
 * kvm_free_memslot): new when logging starts, kept by MOVE and flag-neutral updates, gone
 * when logging stops or the slot is deleted. Returns -1 when out of memory. */
static int remember_slot(struct executor *ex, const struct kvm_userspace_memory_region *region)
{
	unsigned as_id = region->slot >> 16, id = region->slot & 0xffff;
	struct slot_record *rec = slot_record(ex, as_id, id);
	bool was_logging = slot_logs(rec);

	if (!rec->valid)
		ex->used_slots[ex->n_used_slots++] = as_id * KVM_USER_MEM_SLOTS + id;
	rec->valid = region->memory_size != 0;
	rec->region = *region;
	if (was_logging && slot_logs(rec))
		return 0;
	free(rec->written);
	rec->written = slot_logs(rec) ? calloc(slot_bitmap_words(rec), sizeof(uint64_t)) : NULL;
	return slot_logs(rec) && !rec->written ? fail(ex, "out of memory for a dirty log") : 0;
}

static void forget_slots(struct executor *ex)
{
	for (unsigned i = 0; i < ex->n_used_slots; i++) {
		unsigned as_id = ex->used_slots[i] / KVM_USER_MEM_SLOTS;
		struct slot_record *rec = &ex->slots[as_id][ex->used_slots[i] % KVM_USER_MEM_SLOTS];

		rec->valid = false;
		free(rec->written);
		rec->written = NULL;
	}
	ex->n_used_slots = 0;
}

/* The region an op passes to KVM_SET_USER_MEMORY_REGION: set passes its fields; delete,
 * move and flags start from the VMM's record of the slot (zeros if it has none). */
static void region_for_op(struct executor *ex, const struct op *op,
			  struct kvm_userspace_memory_region *region)
{
	const struct slot_record *rec = slot_record(ex, op->memslot.as_id, op->memslot.id);

	memset(region, 0, sizeof(*region));
	if (rec && rec->valid)
		*region = rec->region;
	region->slot = (uint32_t)op->memslot.as_id << 16 | op->memslot.id;
	switch (op->kind) {
	case OP_MEMSLOT_SET:
		region->flags = op->memslot.flags;
		region->guest_phys_addr = op->memslot.gpa;
		region->memory_size = op->memslot.size;
		region->userspace_addr = op->memslot.hva;
		break;
	case OP_MEMSLOT_DELETE:
		region->memory_size = 0;
		break;
	case OP_MEMSLOT_MOVE:
		region->guest_phys_addr = op->memslot.gpa;
		break;
	default:
		region->flags = op->memslot.flags;
		break;
	}
}

static int op_memslot(struct executor *ex, const struct op *op)
{
	struct kvm_userspace_memory_region region;
	unsigned as_id = op->memslot.as_id;
	uint64_t start;
	int ret;

	region_for_op(ex, op, &region);
	/* The VMM mmaps the backing first; a range KVM then rejects stays mapped, harmlessly. */
	if (op->kind == OP_MEMSLOT_SET && region.memory_size)
		host_mmap(ex->host, region.userspace_addr & PAGE_MASK,
			  (region.memory_size + PAGE_SIZE - 1) & PAGE_MASK, op->memslot.host_page_shift);
	ex->stats.memslot_ioctls++;
	start = now_ns();
	ret = kvm_set_memory_region(ex->kvm, &region, NULL);
	ex->stats.model_ns += now_ns() - start;
	log_harness_event(ex, &(struct harness_event){ .op_index = ex->op_index, .kind = HARNESS_EVENT_MEMSLOT,
						  .ret = ret });
	if (ret) {
		ex->stats.memslot_errors++;
		return 0;
	}
	ref_memory_set_region(ex->ref_mem, (int)as_id, region.slot & 0xffff, region.guest_phys_addr,
			      region.memory_size, region.userspace_addr,
			      region.flags & KVM_MEM_READONLY);
	return remember_slot(ex, &region);
}

/* The return value KVM_GET_DIRTY_LOG must give for a slot (kvm_get_dirty_log_protect). */
static int expected_dirty_log_ret(const struct slot_record *rec)
{
	if (!rec)
		return -EINVAL;
	return slot_logs(rec) ? 0 : -ENOENT;
}

/* KVM_GET_DIRTY_LOG: KVM's bitmap may hold pages the guest never wrote (it marks a page
 * when it makes its spte writable, e.g. for a read of a dirty gpte), but never miss one
 * the guest wrote since the last get. */
/* KVM_SET_NR_MMU_PAGES runs on the model alone: the reference has no shadow pages, and
 * the zaps a smaller budget causes are invisible to the guest (every later access is
 * still checked). */
static void op_mmu_pages(struct executor *ex, const struct op *op)
{
	uint64_t start = now_ns();

	if (kvm_vm_ioctl_set_nr_mmu_pages(ex->kvm, op->mmu_pages.count))
		ex->stats.mmu_pages_errors++;
	ex->stats.model_ns += now_ns() - start;
}

static int op_dirty_log(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	struct slot_record *rec = slot_record(ex, op->memslot.as_id, op->memslot.id);
	int expected = expected_dirty_log_ret(rec);
	uint64_t words = expected ? 1 : slot_bitmap_words(rec), missing = 0, start;
	uint64_t *bitmap = calloc(words, sizeof(*bitmap));
	int64_t first;
	int r;

	if (!bitmap)
		return fail(ex, "op %u: out of memory for a dirty log", index);
	start = now_ns();
	r = kvm_vm_ioctl_get_dirty_log(ex->kvm, (uint32_t)op->memslot.as_id << 16 | op->memslot.id,
				       bitmap, words);
	ex->stats.model_ns += now_ns() - start;
	first = expected || r ? -1 : checker_dirty_log_missing(rec->written, bitmap,
							       rec->region.memory_size >> PAGE_SHIFT,
							       &missing);
	free(bitmap);
	if (r != expected) {
		set_divergence(div, index, op, CHECK_DIRTY_LOG);
		snprintf(div->detail, sizeof(div->detail),
			 "KVM_GET_DIRTY_LOG returned %d where KVM returns %d (the slot %s)", r, expected,
			 expected == -EINVAL ? "is not a user slot" :
			 expected ? "does not log dirty pages" : "logs dirty pages");
		return 1;
	}
	if (expected)
		return 0;
	ex->stats.dirty_logs_checked++;
	for (uint64_t i = 0; i < words; i++)
		ex->stats.dirty_pages_written += (uint64_t)__builtin_popcountll(rec->written[i]);
	memset(rec->written, 0, words * sizeof(*rec->written));
	if (first < 0)
		return 0;
	set_divergence(div, index, op, CHECK_DIRTY_LOG);
	snprintf(div->detail, sizeof(div->detail),
		 "%llu page(s) the guest wrote since the last KVM_GET_DIRTY_LOG are missing from the "
		 "bitmap; the first is page %lld of the slot (gpa %#llx)", (unsigned long long)missing,
		 (long long)first,
		 (unsigned long long)(rec->region.guest_phys_addr + ((uint64_t)first << PAGE_SHIFT)));
	return 1;
}

/* ---- page tables ---- */

static unsigned entry_size(enum paging_mode mode) { return mode == PAGING_32 ? 4 : 8; }

/* A guest write of one paging entry (the program's or the map macro's). */
static int write_entry(struct executor *ex, uint32_t index, const struct op *op, enum paging_mode mode,
		       gpa_t gpa, uint64_t value, struct divergence *div)
{
	uint32_t narrow = (uint32_t)value;
	const void *src = entry_size(mode) == 4 ? (const void *)&narrow : (const void *)&value;

	if (shadow_mmu(ex))
		return physmap_write(ex, index, op, gpa, src, entry_size(mode), div);
	guest_phys_write(ex, gpa, src, entry_size(mode));
	return 0;
}

static int op_pte(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	enum paging_mode mode = kvm_vcpu_paging_mode(cur_vcpu(ex));
	gpa_t gpa = table_pool_gpa(op->pte.table) + (uint64_t)op->pte.index * entry_size(mode);

	/* Programs never write the root's harness entry, but after a CR3 load that #GPs the
	 * root in force is not the one the program chose. */
	if (shadow_mmu(ex) && op->pte.table == cur(ex)->cr3_table && op->pte.index == HARNESS_ROOT_INDEX &&
	    mode != PAGING_NONE) {
		ex->stats.harness_skips++;
		return 0;
	}

	return write_entry(ex, index, op, mode, gpa, op->pte.value, div);
}

/* Zero a pool table as a guest would, entry by entry; entries already zero are skipped. */
static int zero_table(struct executor *ex, uint32_t index, const struct op *op, gpa_t table,
		      struct divergence *div)
{
	uint64_t entries[PAGE_SIZE / 8];

	if (ref_memory_read(ex->ref_mem, guest_as(ex), table, entries, sizeof(entries)))
		memset(entries, 0, sizeof(entries));
	for (unsigned i = 0; i < PAGE_SIZE / 8; i++) {
		uint64_t zero = 0;
		int ret;

		if (!entries[i])
			continue;
		ret = write_entry(ex, index, op, PAGING_4LEVEL, table + i * 8, zero, div);
		if (ret)
			return ret;
	}
	return 0;
}

static int root_level_of(enum paging_mode mode)
{
	static const int levels[PAGING_MODE_COUNT] = {
		[PAGING_32] = 2, [PAGING_PAE] = 3, [PAGING_4LEVEL] = 4, [PAGING_5LEVEL] = 5,
	};
	return levels[mode];
}

static unsigned map_index(enum paging_mode mode, gva_t gva, int level)
{
	if (mode == PAGING_32)
		return (gva >> (PAGE_SHIFT + 10 * (level - 1))) & 1023;
	if (mode == PAGING_PAE && level == 3)
		return (gva >> 30) & 3;
	return (gva >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

/* A gva the reference can check in the mode in force (see executor_stats.harness_skips). */
static bool gva_usable(enum paging_mode mode, gva_t gva)
{
	return gva_fits_mode(mode, gva) && !gva_is_harness_reserved(mode, gva);
}

/* Next pool table for the macro, round robin over T1..T(n-1), never a vCPU's root. */
static unsigned alloc_pool_table(struct executor *ex)
{
	uint64_t roots = 0;

	for (unsigned v = 0; v < PROG_MAX_VCPUS; v++)
		if (ex->vcpus[v].vcpu)
			roots |= 1ull << ex->vcpus[v].cr3_table;
	return prog_next_pool_table(&ex->next_pool_table, roots);
}

static bool is_pool_table(gpa_t gpa)
{
	return gpa >= TABLE_POOL_BASE && gpa < table_pool_gpa(TABLE_POOL_PAGES);
}

static uint64_t leaf_entry(enum paging_mode mode, const struct op *op)
{
	uint64_t value = op->map.leaf_flags;

	if (op->map.level > MAP_LEVEL_4K)
		value |= PT_PAGE_SIZE_MASK;
	if (mode != PAGING_32)
		return value | (op->map.gpa & PT64_BASE_ADDR_MASK);
	if (op->map.level == MAP_LEVEL_4K)
		return value | (op->map.gpa & PT32_BASE_ADDR_MASK);
	/* 4 MiB page: gpa bits 32..39 go to PSE-36 bits 13..20. */
	return value | (op->map.gpa & 0xffc00000ull) | (((op->map.gpa >> 32) & 0xff) << PT32_PSE36_SHIFT);
}

/* Writes the entries that make gva map gpa: existing pool tables are reused, missing ones
 * come from the pool (zeroed first), as a guest kernel's map function would. In PAE mode a
 * new PDPTE is followed by a CR3 reload so the PDPTE registers see it. */
static int op_map(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	enum paging_mode mode = prog_map_mode(kvm_vcpu_paging_mode(cur_vcpu(ex)));
	unsigned esz = entry_size(mode);
	gpa_t table = table_pool_gpa(cur(ex)->cr3_table);
	bool wrote_pdpte = false;
	int ret;

	if (!prog_map_page_size(mode, op->map.level) || !gva_usable(mode, op->map.gva)) {
		ex->stats.harness_skips++;
		return 0;
	}

	for (int level = root_level_of(mode); level > op->map.level; level--) {
		gpa_t entry_gpa = table + map_index(mode, op->map.gva, level) * esz;
		uint64_t entry = 0;
		gpa_t next;

		ref_memory_read(ex->ref_mem, guest_as(ex), entry_gpa, &entry, esz);
		next = entry & (esz == 4 ? PT32_BASE_ADDR_MASK : PT64_BASE_ADDR_MASK);
		if ((entry & PT_PRESENT_MASK) && !(entry & PT_PAGE_SIZE_MASK) && is_pool_table(next)) {
			table = next;
			continue;
		}
		next = table_pool_gpa(alloc_pool_table(ex));
		ret = zero_table(ex, index, op, next, div);
		if (ret)
			return ret;
		entry = next | op->map.upper_flags;
		if (mode == PAGING_PAE && level == 3) {
			entry = next | (op->map.upper_flags & (PT_PRESENT_MASK | PT_PWT_MASK | PT_PCD_MASK));
			wrote_pdpte = true;
		}
		ret = write_entry(ex, index, op, mode, entry_gpa, entry, div);
		if (ret)
			return ret;
		table = next;
	}
	ret = write_entry(ex, index, op, mode, table + map_index(mode, op->map.gva, op->map.level) * esz,
			  leaf_entry(mode, op), div);
	if (ret)
		return ret;
	if (wrote_pdpte && kvm_vcpu_paging_mode(cur_vcpu(ex)) == PAGING_PAE) {
		struct op reload = { .kind = OP_CR3, .cr3 = { .table = (uint8_t)cur(ex)->cr3_table } };

		return op_cr3(ex, index, &reload, div);
	}
	return 0;
}

/* SMM entry and RSM, as far as the MMU sees them: the vCPU's memslots become address space
 * 1 (0), the page role's smm bit changes, so KVM resets the MMU context (kvm_smm_changed),
 * and the guest's TLB is flushed. The control registers are kept, as if the SMM handler
 * went straight back to the interrupted paging setup (the program language's rule: smm
 * ops leave the mode and CR3 alone); the state-save area and real-mode start are not
 * modelled (KVM's save to SMBASE + 0xfe00 would miss every slot: guest-physical
 * [0, 1 MiB) is the harness's). PAE reloads its PDPTEs from the new address space. */
static int op_smm(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	struct kvm_vcpu *vcpu = cur_vcpu(ex);
	bool loaded = true;

	if (op->smm.enter == vcpu->arch.smm)
		return 0;
	if (shadow_mmu(ex))
		kvm_mmu_unload(vcpu);
	translation_checker_flush_all(ex->translations, vcpu->vcpu_id);
	vcpu->arch.smm = op->smm.enter;
	kvm_init_mmu(vcpu);
	if (kvm_vcpu_paging_mode(vcpu) == PAGING_PAE &&
	    load_cr3_pae(ex, vcpu->arch.cr3, index, op, div, &loaded))
		return 1;
	return 0;
}

/* INVLPG: the guest drops its translation of gva (the TLB allowance ends there); KVM's
 * kvm_mmu_invlpg (a no-op for a non-canonical address) flushes it from the hardware TLB. */
static void op_invlpg(struct executor *ex, const struct op *op)
{
	struct kvm_vcpu *vcpu = cur_vcpu(ex);

	if (is_noncanonical_address(op->invlpg.gva, vcpu))
		return;
	translation_checker_invlpg(ex->translations, vcpu->vcpu_id, op->invlpg.gva);
	if (shadow_mmu(ex))
		kvm_mmu_invlpg(vcpu, op->invlpg.gva);
}

/* ---- accesses ---- */

static enum ref_access_kind ref_kind(uint8_t kind)
{
	return kind == ACCESS_WRITE ? REF_WRITE : kind == ACCESS_FETCH ? REF_FETCH : REF_READ;
}

static uint32_t access_pfec(const struct op *op)
{
	uint32_t pfec = 0;

	if (op->access.kind == ACCESS_WRITE)
		pfec |= PFERR_WRITE_MASK;
	if (op->access.kind == ACCESS_FETCH)
		pfec |= PFERR_FETCH_MASK;
	if (op->access.cpl == 3)
		pfec |= PFERR_USER_MASK;
	return pfec;
}

/* The model's CPU: canonical check, then the guest walk. */
static void model_access(struct executor *ex, const struct op *op, struct guest_walker *walker,
			 struct model_access *answer)
{
	struct kvm_vcpu *vcpu = cur_vcpu(ex);
	gva_t gva = op->access.gva;

	memset(answer, 0, sizeof(*answer));
	memset(walker, 0, sizeof(*walker));
	vcpu->arch.cpl = op->access.cpl;
	if (is_noncanonical_address(gva, vcpu)) {
		answer->outcome = REF_GP_FAULT;
		return;
	}
	if (!kvm_walk_addr(walker, vcpu, gva, access_pfec(op))) {
		answer->outcome = REF_PAGE_FAULT;
		answer->error_code = walker->fault.error_code;
		answer->cr2 = walker->fault.address;
		return;
	}
	answer->outcome = REF_OK;
	answer->gpa = guest_walker_gpa(walker, gva);
}

/* snprintf that appends and never runs past the buffer. */
static void append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

static void format_walks(const struct guest_walker *walker, const struct ref_result *ref,
			 char *buf, size_t len)
{
	size_t used = strlen(buf);

	append(buf, len, &used, "model walk:");
	for (int level = walker->max_level; level >= walker->level && level > 0; level--)
		append(buf, len, &used, " L%d[%#llx]=%#llx", level,
		       (unsigned long long)walker->pte_gpa[level - 1],
		       (unsigned long long)walker->ptes[level - 1]);
	append(buf, len, &used, "\n  reference walk:");
	for (int i = 0; i < ref->n_entries; i++)
		append(buf, len, &used, " [%#llx]=%#llx%s", (unsigned long long)ref->entries[i].gpa,
		       (unsigned long long)ref->entries[i].value,
		       ref->entries[i].backed ? "" : "(unbacked)");
}

/* Paging entries either side touched must read the same on both sides (A/D included). */
static bool compare_walked_entries(struct executor *ex, const struct guest_walker *walker,
				   const struct ref_result *ref, enum paging_mode mode,
				   gpa_t *bad_gpa, uint64_t *model_value, uint64_t *arch_value)
{
	unsigned esz = entry_size(mode);
	gpa_t gpas[2 * PT_MAX_FULL_LEVELS];
	int n = 0;

	for (int level = walker->max_level; level >= walker->level && level > 0; level--)
		gpas[n++] = walker->pte_gpa[level - 1];
	for (int i = 0; i < ref->n_entries; i++)
		if (ref->entries[i].backed)
			gpas[n++] = ref->entries[i].gpa;
	for (int i = 0; i < n; i++) {
		uint64_t model = 0, arch = 0;
		bool model_ok = model_phys_read(ex, gpas[i], &model, esz) == 0;
		bool arch_ok = ref_memory_read(ex->ref_mem, guest_as(ex), gpas[i], &arch, esz) == 0;

		if (model_ok != arch_ok || model != arch) {
			*bad_gpa = gpas[i];
			*model_value = model;
			*arch_value = arch;
			return false;
		}
	}
	return true;
}

/* The access on the model's CPU. False for outcomes that are not an answer (shutdown,
 * livelock, model error): cpu_failure judges those. */
static bool mmu_model_access(struct executor *ex, const struct op *op, struct model_access *answer,
			     struct cpu_access_result *res)
{
	struct cpu_access acc = {
		.gva = op->access.gva,
		.kind = op->access.kind == ACCESS_WRITE ? CPU_WRITE :
			op->access.kind == ACCESS_FETCH ? CPU_FETCH : CPU_READ,
		.cpl = op->access.cpl,
		.size = 1,
	};

	memset(answer, 0, sizeof(*answer));
	model_cpu_access(ex, &acc, res);
	switch (res->outcome) {
	case CPU_OK:
	case CPU_MMIO_EXIT:
		answer->outcome = REF_OK;
		answer->gpa = res->gpa;
		return true;
	case CPU_PAGE_FAULT:
		answer->outcome = REF_PAGE_FAULT;
		answer->error_code = res->error_code;
		answer->cr2 = res->cr2;
		return true;
	case CPU_GP_FAULT:
		answer->outcome = REF_GP_FAULT;
		return true;
	default:
		return false;
	}
}

/* A rule allowed what the checks would refuse: counted, and shown by a tracer. */
static void rule_applied(struct executor *ex, enum kvm_rule rule)
{
	ex->stats.rule_hits[rule]++;
	if (ex->tracer.rule)
		ex->tracer.rule(ex->tracer.ctx, rule);
}

/* The reference's access under variant's registers (a rule's "as if"): false if the engine
 * failed; else other holds its walk, with the A/D writes of a success applied, and *same
 * says whether its answer is the model's. */
static bool reference_answer(struct ref_engine *engine, const struct access_check *variant,
			     const struct model_access *model, struct ref_result *other, bool *same)
{
	struct model_access expected;
	enum kvm_rule rule;
	enum check_id failed;

	if (ref_check(engine, &variant->cpu, variant->cpl, variant->kind, variant->gva, other))
		return false;
	checker_expected(variant, other, &expected, &rule);
	*same = checker_compare(&expected, model, &failed);
	return true;
}

/* RULE_KVM_PSE_CHANGE_KEEPS_SHADOW for an access of a 32-bit guest on the shadow MMU: the
 * answer is the reference's under the other CR4.PSE value. The model used a stale spte
 * and walked nothing, so neither reference walk keeps its A/D writes. */
static bool pse_change_allows_access(struct executor *ex, struct ref_engine *engine,
				     const struct access_check *check, const struct ref_result *ref,
				     const struct model_access *model)
{
	struct access_check flipped = *check;
	struct ref_result other;
	bool same;

	if (!shadow_mmu(ex) || check->cpu.mode != PAGING_32)
		return false;
	flipped.cpu.cr4_pse = !flipped.cpu.cr4_pse;
	if (!reference_answer(engine, &flipped, model, &other, &same))
		return false;
	ref_revert_ad_writes(engine, &other);
	if (!same)
		return false;
	ref_revert_ad_writes(engine, ref);
	ex->epoch++;
	rule_applied(ex, RULE_KVM_PSE_CHANGE_KEEPS_SHADOW);
	return true;
}

/* Whether the leaf spte the hardware walk of gva reaches on the current vCPU lacks U and
 * sits in a page built with CR4.SMAP on and CR0.WP off (role.smap_andnot_wp): the WP=0
 * trick made it under SMAP, not before SMAP was set (that page is not reused: bug B21). */
static bool leaf_spte_made_supervisor_under_smap(struct executor *ex, gva_t gva)
{
	struct kvm_shadow_walk walk;
	const struct kvm_shadow_walk_step *leaf;

	kvm_mmu_shadow_walk(cur_vcpu(ex), gva, &walk);
	if (!walk.n)
		return false;
	leaf = &walk.steps[walk.n - 1];
	return leaf->has_sp && leaf->role.smap_andnot_wp &&
	       is_shadow_present_pte(&ex->kvm->mmu->spte, leaf->spte) &&
	       is_last_spte(leaf->spte, leaf->level) && !(leaf->spte & PT_USER_MASK);
}

/* RULE_KVM_SMAP_AC_WP0_SUPERVISOR_PAGE: a supervisor data access that faulted for SMAP
 * alone (CR0.WP=0, EFLAGS.AC=0, a user leaf) may be answered as with AC=1 when the spte
 * KVM's CR0.WP=0 trick made lacks U while the guest's leaf has it. The model answered
 * from that spte and walked nothing, so the reference's AC=1 walk keeps no A/D writes. */
static bool smap_ac_trick_allows_access(struct executor *ex, struct ref_engine *engine,
					const struct access_check *check, const struct ref_result *ref,
					const struct model_access *model)
{
	struct access_check with_ac = *check;
	struct ref_result other;
	bool same;

	if (!shadow_mmu(ex) || model->outcome != REF_OK || ref->outcome != REF_PAGE_FAULT ||
	    check->cpl == 3 || check->kind == REF_FETCH || !check->cpu.cr4_smap ||
	    check->cpu.cr0_wp || check->cpu.rflags_ac ||
	    (ref->error_code & PFERR_RSVD_MASK) ||
	    !leaf_spte_made_supervisor_under_smap(ex, check->gva))
		return false;
	with_ac.cpu.rflags_ac = true;
	if (!reference_answer(engine, &with_ac, model, &other, &same))
		return false;
	ref_revert_ad_writes(engine, &other);
	if (!same || other.leaf_level == 0 || !(other.entries[other.n_entries - 1].value & PT_USER_MASK))
		return false;
	ex->epoch++;
	rule_applied(ex, RULE_KVM_SMAP_AC_WP0_SUPERVISOR_PAGE);
	return true;
}

/* Bits 52..62 of a PDE or PTE: reserved in PAE paging, ignored in 4- and 5-level paging
 * (__reset_rsvds_bits_mask). */
#define LONG_MODE_IGNORED_BITS (((1ull << 63) - 1) & ~((1ull << 52) - 1))

/* The PAE entries a walk read with those bits set, as they were in the reference. */
struct long_mode_bits {
	int n;
	gpa_t gpa[PT_MAX_FULL_LEVELS];
	uint64_t value[PT_MAX_FULL_LEVELS];
};

/* RULE_KVM_LONG_MODE_SHADOW_IN_PAE: when a PAE walk faulted on reserved bits, clear bits
 * 52..62 of its PDEs and PTEs in the reference's memory, so the walk reads them as 4-level
 * paging does (restore_long_mode_bits puts them back). False if it touched none. */
static bool ignore_long_mode_bits(struct executor *ex, const struct ref_cpu_state *cpu,
				  const struct ref_result *walk, struct long_mode_bits *saved)
{
	saved->n = 0;
	if (cpu->mode != PAGING_PAE || walk->outcome != REF_PAGE_FAULT || !(walk->error_code & PFERR_RSVD_MASK))
		return false;
	/* entries[0] is the PDPTE register, whose reserved bits KVM checks at MOV CR3. */
	for (int i = 1; i < walk->n_entries; i++) {
		uint64_t value = walk->entries[i].value & ~LONG_MODE_IGNORED_BITS;

		if (!walk->entries[i].backed || value == walk->entries[i].value)
			continue;
		saved->gpa[saved->n] = walk->entries[i].gpa;
		saved->value[saved->n++] = walk->entries[i].value;
		ref_memory_write(ex->ref_mem, cpu->as_id, walk->entries[i].gpa, &value, sizeof(value));
	}
	return saved->n > 0;
}

static void restore_long_mode_bits(struct executor *ex, const struct ref_cpu_state *cpu,
				   const struct long_mode_bits *saved)
{
	for (int i = 0; i < saved->n; i++)
		ref_memory_write(ex->ref_mem, cpu->as_id, saved->gpa[i], &saved->value[i], sizeof(saved->value[i]));
}

/* RULE_KVM_LONG_MODE_SHADOW_IN_PAE for an access: the model's answer is the reference's
 * once the walk reads bits 52..62 as 4-level paging does. */
static bool long_mode_shadow_allows_access(struct executor *ex, struct ref_engine *engine,
					   const struct access_check *check, const struct ref_result *ref,
					   const struct model_access *model)
{
	struct long_mode_bits saved;
	struct model_access expected;
	struct ref_result other;
	enum kvm_rule rule;
	enum check_id failed;
	bool walked;

	if (!shadow_mmu(ex) || !ignore_long_mode_bits(ex, &check->cpu, ref, &saved))
		return false;
	walked = !ref_check(engine, &check->cpu, check->cpl, check->kind, check->gva, &other);
	if (walked) {
		checker_expected(check, &other, &expected, &rule);
		ref_revert_ad_writes(engine, &other);
	}
	restore_long_mode_bits(ex, &check->cpu, &saved);
	if (!walked || !checker_compare(&expected, model, &failed))
		return false;
	ex->epoch++;
	rule_applied(ex, RULE_KVM_LONG_MODE_SHADOW_IN_PAE);
	return true;
}

/* The rule under which KVM missed a change of an entry the guest's walk read: written
 * through another gfn or address space, or changed by walkers' A/D updates only;
 * RULE_NONE if neither. */
static enum kvm_rule untracked_table_change(struct executor *ex, const struct ref_cpu_state *cpu,
					    const struct ref_result *walk)
{
	if (checker_aliased_table_write(ex->aliased_writes, ex->ref_mem, cpu, walk))
		return RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED;
	if (checker_ad_update_changed_entry(ex->ad_updates, ex->ref_mem, cpu, walk))
		return RULE_KVM_WALKER_AD_WRITE_UNTRACKED;
	return RULE_NONE;
}

/* RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED or RULE_KVM_WALKER_AD_WRITE_UNTRACKED for an
 * access: only a present spte kept from the old entry makes KVM answer other than the
 * guest's tables (a fault walks them afresh), so the model succeeded and walked nothing:
 * the reference keeps no A/D writes. */
static bool untracked_change_allows_access(struct executor *ex, struct ref_engine *engine,
					const struct access_check *check, const struct ref_result *ref,
					const struct model_access *expected,
					const struct model_access *model)
{
	enum kvm_rule rule;

	if (!shadow_mmu(ex) || model->outcome != REF_OK)
		return false;
	rule = untracked_table_change(ex, &check->cpu, ref);
	if (rule == RULE_NONE)
		return false;
	if (ref->outcome == REF_OK && expected->outcome == REF_OK)
		ref_revert_ad_writes(engine, ref);
	ex->epoch++;
	rule_applied(ex, rule);
	return true;
}

/* RULE_ARCH_STALE_TRANSLATION for an access: the model answered from a translation the
 * guest changed without invalidating it (a TLB entry, or a spte of an unsync page), with
 * another answer than the guest's tables give, or the same answer without the A/D writes
 * a walk would make. The processor walked nothing, so the reference keeps no A/D writes;
 * the other checks of the answer (MMIO exits, read-only writes) still apply. */
static bool stale_translation_allows_access(struct executor *ex, struct ref_engine *engine,
					    const struct access_check *check, const struct ref_result *ref,
					    const struct model_access *expected,
					    const struct model_access *model,
					    const struct cpu_access_result *cpu)
{
	if (!shadow_mmu(ex) || model->outcome != REF_OK ||
	    !translation_checker_allows_access(ex->translations, &check->cpu, cur_vcpu(ex)->vcpu_id, check->gva,
					       model->gpa, check->kind, check->cpl,
					       cpu->outcome == CPU_MMIO_EXIT))
		return false;
	if (ref->outcome == REF_OK && expected->outcome == REF_OK)
		ref_revert_ad_writes(engine, ref);
	ex->epoch++;
	rule_applied(ex, RULE_ARCH_STALE_TRANSLATION);
	log_stale_access(ex, ex->op_index, expected);
	return true;
}

/* RULE_KVM_MMIO_CACHE_AFTER_WALK: a stale MMIO answer after a fault (allowed as a stale
 * or an aliased-write translation) may come with the A/D updates of KVM's walk of the
 * current tables, which the allowance undid in the reference: put them back if the
 * guest's entries then agree. */
static bool mmio_cache_after_walk_allows_entries(struct executor *ex, struct ref_engine *engine,
						 const struct guest_walker *walker,
						 const struct access_check *check,
						 const struct ref_result *ref,
						 const struct cpu_access_result *cpu)
{
	gpa_t bad_gpa;
	uint64_t model_value, arch_value;

	if (cpu->outcome != CPU_MMIO_EXIT || ref->outcome != REF_OK)
		return false;
	ref_redo_ad_writes(engine, ref);
	if (compare_walked_entries(ex, walker, ref, check->cpu.mode, &bad_gpa, &model_value, &arch_value)) {
		rule_applied(ex, RULE_KVM_MMIO_CACHE_AFTER_WALK);
		return true;
	}
	ref_revert_ad_writes(engine, ref);
	return false;
}

/* Whether the reference's A/D write i of an access is still in its memory (a rule may have
 * undone it): the entry differs from what it held before the access's first write to it. */
static bool ad_write_kept(struct executor *ex, const struct ref_result *ref, int i)
{
	uint32_t now;
	int first = 0;

	while (ref->ad_writes[first].gpa != ref->ad_writes[i].gpa)
		first++;
	if (ref_memory_read(ex->ref_mem, guest_as(ex), ref->ad_writes[i].gpa, &now, sizeof(now)))
		return false;
	return now != ref->ad_writes[first].old_value;
}

/* What an access the checker accepted wrote, for the dirty-log check: the A/D updates of
 * its walk, and the data page of a write KVM did not turn into an MMIO exit. */
static void note_access_writes(struct executor *ex, const struct access_check *check,
			       const struct ref_result *ref, const struct cpu_access_result *cpu)
{
	/* A kept A/D write leaves the translations it serves valid, but the TLB allowance must
	 * learn what they grant now (a stale write needs the D it saw): verify them again. */
	for (int i = 0; i < ref->n_ad_writes; i++) {
		if (!ad_write_kept(ex, ref, i))
			continue;
		note_guest_dirty(ex, guest_as(ex), ref->ad_writes[i].gpa);
		note_guest_write(ex, ref->ad_writes[i].gpa, 4);
		if (ad_updates_note(ex->ad_updates, ex->ref_mem, guest_as(ex), ref->ad_writes[i].gpa,
				    ref->ad_writes[i].value ^ ref->ad_writes[i].old_value))
			ex->untracked_writes_oom = true;
	}
	if (check->kind == REF_WRITE && cpu->outcome == CPU_OK)
		note_guest_dirty(ex, guest_as(ex), cpu->gpa);
}

/* RULE_KVM_MMIO_WRITE_SKIPS_DIRTY: after an MMIO write, a leaf that differs from the
 * reference's only by the D bit the reference set is KVM's; the reference takes it. */
static void apply_mmio_dirty_rule(struct executor *ex, const struct access_check *check,
				  const struct ref_result *ref, const struct cpu_access_result *cpu)
{
	unsigned esz = entry_size(check->cpu.mode);
	uint64_t model = 0, arch = 0;
	gpa_t leaf;

	if (cpu->outcome != CPU_MMIO_EXIT || check->kind != REF_WRITE || ref->outcome != REF_OK ||
	    !ref->n_entries)
		return;
	leaf = ref->entries[ref->n_entries - 1].gpa;
	if (model_phys_read(ex, leaf, &model, esz) ||
	    ref_memory_read(ex->ref_mem, guest_as(ex), leaf, &arch, esz))
		return;
	if ((model ^ arch) != PT_DIRTY_MASK || !(arch & PT_DIRTY_MASK))
		return;
	ref_memory_write(ex->ref_mem, guest_as(ex), leaf, &model, esz);
	note_guest_write(ex, leaf, esz);
	ex->stats.rule_hits[RULE_KVM_MMIO_WRITE_SKIPS_DIRTY]++;
}

/* Hands an access's results to the tracer; model and cpu are NULL where there is none. */
static void trace_access(struct executor *ex, uint32_t index, const struct access_check *check,
			 const struct ref_result *ref, const struct model_access *model,
			 const struct cpu_access_result *cpu)
{
	struct executor_access_trace t;

	if (!ex->tracer.access)
		return;
	t = (struct executor_access_trace){
		.op_index = index, .check = check, .ref = ref, .model = model, .cpu = cpu,
	};
	checker_expected(check, ref, &t.expected, &t.rule);
	kvm_mmu_shadow_walk(cur_vcpu(ex), check->gva, &t.shadow);
	ex->tracer.access(ex->tracer.ctx, &t);
}

/* A WARN the model hit during the op: one a rule knows ends the run once the op is done
 * (KVM went on, and so did the model); any other is a finding. */
static int kvm_warning(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	static const enum kvm_rule known[] = {
		[KVM_WARN_UNSYNC_OTHER_AS_TABLE] = RULE_KVM_SMM_UNSYNC_OTHER_AS_TABLE,
		[KVM_WARN_SYNC_REVIVES_MMIO_SPTE] = RULE_KVM_SYNC_REVIVES_MMIO_SPTE,
		[KVM_WARN_SYNC_IN_OTHER_CONTEXT] = RULE_KVM_SYNC_IN_OTHER_CONTEXT,
		[KVM_WARN_ENOSPC_LEAKS_PAE_ROOTS] = RULE_KVM_ENOSPC_LEAKS_PAE_ROOTS,
		[KVM_WARN_ROOTS_FILL_PAGE_BUDGET] = RULE_KVM_ROOTS_FILL_PAGE_BUDGET,
	};
	enum kvm_warning_kind kind = ex->kvm->warning.kind;

	if (kind < sizeof(known) / sizeof(known[0]) && known[kind] != RULE_NONE) {
		ex->stats.rule_hits[known[kind]]++;
		ex->shut_down = true;
		return 0;
	}
	set_divergence(div, index, op, CHECK_MODEL_ERROR);
	snprintf(div->detail, sizeof(div->detail), "KVM would WARN: %s", ex->kvm->warning.what);
	return 1;
}

static int op_access(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	struct access_check check = {
		.cpl = op->access.cpl,
		.kind = ref_kind(op->access.kind),
		.gva = op->access.gva,
		.maxphyaddr = ex->config.maxphyaddr,
	};
	struct guest_walker walker;
	struct model_access model, expected;
	struct ref_result ref;
	struct ref_engine *engine;
	enum kvm_rule rule;
	enum check_id failed;
	gpa_t bad_gpa;
	uint64_t model_value = 0, arch_value = 0;
	struct cpu_access_result cpu;
	/* The stale-translation allowance, asked once: it undoes the reference's A/D writes and
	 * counts the rule. */
	bool stale = false;

	ref_cpu_from_vcpu(ex, &check.cpu);
	if (!gva_usable(check.cpu.mode, check.gva)) {
		ex->stats.harness_skips++;
		return 0;
	}
	engine = engine_for(ex, check.cpu.mode);
	if (!engine)
		return -1;
	if (ref_check(engine, &check.cpu, check.cpl, check.kind, check.gva, &ref))
		return fail(ex, "op %u: reference failed: %s", index, ref_engine_error(engine));
	memset(&walker, 0, sizeof(walker));
	if (!shadow_mmu(ex)) {
		model_access(ex, op, &walker, &model);
	} else if (!mmu_model_access(ex, op, &model, &cpu)) {
		if (ref.outcome == REF_OK)
			ref_revert_ad_writes(engine, &ref);
		trace_access(ex, index, &check, &ref, NULL, &cpu);
		return cpu_failure(ex, index, op, check.gva, &cpu, div);
	}
	trace_access(ex, index, &check, &ref, &model, shadow_mmu(ex) ? &cpu : NULL);
	/* A state KVM should not reach, met during the access (a sync in its fault path). */
	if (shadow_mmu(ex) && ex->kvm->warning.set)
		return kvm_warning(ex, index, op, div);
	log_access(ex, index, &model);
	checker_expected(&check, &ref, &expected, &rule);
	if (ref.outcome == REF_OK && expected.outcome != REF_OK)
		ref_revert_ad_writes(engine, &ref);
	if (shadow_mmu(ex))
		apply_mmio_dirty_rule(ex, &check, &ref, &cpu);
	ex->stats.accesses++;
	ex->stats.other_vcpu_accesses += ex->cur != 0;
	ex->stats.rule_hits[rule]++;
	if (!checker_compare(&expected, &model, &failed) &&
	    pse_change_allows_access(ex, engine, &check, &ref, &model)) {
		note_access_writes(ex, &check, &ref, &cpu);
		return 0;
	} else if (!checker_compare(&expected, &model, &failed) &&
		   long_mode_shadow_allows_access(ex, engine, &check, &ref, &model)) {
		return 0;
	} else if (!checker_compare(&expected, &model, &failed) &&
		   smap_ac_trick_allows_access(ex, engine, &check, &ref, &model)) {
		return 0;
	} else if (!checker_compare(&expected, &model, &failed) &&
		   untracked_change_allows_access(ex, engine, &check, &ref, &expected, &model)) {
		mmio_cache_after_walk_allows_entries(ex, engine, &walker, &check, &ref, &cpu);
		note_access_writes(ex, &check, &ref, &cpu);
		return 0;
	} else if (!checker_compare(&expected, &model, &failed) &&
		   !(stale = stale_translation_allows_access(ex, engine, &check, &ref, &expected, &model, &cpu))) {
		set_divergence(div, index, op, failed);
	} else if (shadow_mmu(ex) && !mmio_exit_allowed(ex, check.kind == REF_WRITE, &cpu)) {
		set_divergence(div, index, op, CHECK_MMIO);
		snprintf(div->detail, sizeof(div->detail),
			 "the model exited to userspace as MMIO for gpa %#llx, which has memory\n  ",
			 (unsigned long long)cpu.gpa);
	} else if (shadow_mmu(ex) && !readonly_write_exited(ex, &check, &model, rule, &cpu)) {
		set_divergence(div, index, op, CHECK_MMIO);
		rule = RULE_KVM_READONLY_WRITE_IS_MMIO;
		snprintf(div->detail, sizeof(div->detail),
			 "the model completed a write to read-only memory at gpa %#llx; KVM exits to "
			 "userspace as MMIO\n  ", (unsigned long long)cpu.gpa);
	} else if (!compare_walked_entries(ex, &walker, &ref, check.cpu.mode, &bad_gpa, &model_value,
					   &arch_value) &&
		   !((stale || stale_translation_allows_access(ex, engine, &check, &ref, &expected, &model, &cpu)) &&
		     (compare_walked_entries(ex, &walker, &ref, check.cpu.mode, &bad_gpa, &model_value,
					     &arch_value) ||
		      mmio_cache_after_walk_allows_entries(ex, engine, &walker, &check, &ref, &cpu)))) {
		set_divergence(div, index, op, CHECK_MEMORY);
		snprintf(div->detail, sizeof(div->detail),
			 "paging entry at gpa %#llx differs: model %#llx, reference %#llx\n  ",
			 (unsigned long long)bad_gpa, (unsigned long long)model_value,
			 (unsigned long long)arch_value);
	} else {
		if (shadow_mmu(ex))
			note_access_writes(ex, &check, &ref, &cpu);
		return 0;
	}
	div->rule = rule;
	div->gva = check.gva;
	div->model = model;
	div->expected = expected;
	format_walks(&walker, &ref, div->detail, sizeof(div->detail));
	return 1;
}

/* ---- every translation the model holds, after every op (DESIGN §5 rule 2) ---- */

struct translation_walk {
	struct executor *ex;
	/* Each vCPU's translations are judged under its own registers. */
	struct ref_engine *engines[PROG_MAX_VCPUS];
	struct ref_cpu_state cpus[PROG_MAX_VCPUS];
	/* The vCPU of the translation being checked. */
	struct ref_engine *engine;
	struct ref_cpu_state cpu;
	uint32_t index;
	const struct op *op;
	struct divergence *div;
	int ret;
};

static void translation_divergence(struct translation_walk *w, const struct model_translation *t,
				   const char *why)
{
	char text[160];

	model_translation_format(t, text, sizeof(text));
	set_divergence(w->div, w->index, w->op, CHECK_TRANSLATION);
	w->div->gva = t->gva;
	snprintf(w->div->detail, sizeof(w->div->detail), "%s: %s", why, text);
	w->ret = 1;
}

/* The harness's physmap (and the nonpaging direct map) translate gva = gpa. */
static void check_identity_translation(struct translation_walk *w, const struct model_translation *t)
{
	hva_t hva = 0;
	bool backed = ref_memory_backing(w->ex->ref_mem, t->as_id, t->gpa, &hva, NULL);

	if (t->gpa != t->gva)
		translation_divergence(w, t, "physmap translation maps another gpa");
	else if (backed == t->mmio || (backed && hva != t->hva))
		translation_divergence(w, t, "physmap translation has the wrong frame");
}

/* RULE_KVM_PSE_CHANGE_KEEPS_SHADOW for a translation of a 32-bit guest. */
static bool pse_change_allows_translation(struct translation_walk *w, const struct model_translation *t)
{
	struct ref_cpu_state flipped = w->cpu;
	struct translation_verdict verdict;

	if (w->cpu.mode != PAGING_32)
		return false;
	flipped.cr4_pse = !flipped.cr4_pse;
	if (!translation_check(w->ex->translations, w->engine, &flipped, t, &verdict))
		return false;
	w->ex->stats.rule_hits[RULE_KVM_PSE_CHANGE_KEEPS_SHADOW]++;
	return true;
}

/* RULE_KVM_LONG_MODE_SHADOW_IN_PAE for a translation: valid once the PAE walk reads bits
 * 52..62 as 4-level paging does. */
static bool long_mode_shadow_allows_translation(struct translation_walk *w, const struct model_translation *t,
						const struct translation_verdict *verdict)
{
	struct translation_verdict again;
	struct long_mode_bits saved;
	bool allowed;

	if (verdict->fault != TRANSLATION_NOT_MAPPED ||
	    !ignore_long_mode_bits(w->ex, &w->cpu, &verdict->guest, &saved))
		return false;
	allowed = translation_check(w->ex->translations, w->engine, &w->cpu, t, &again);
	restore_long_mode_bits(w->ex, &w->cpu, &saved);
	if (allowed)
		w->ex->stats.rule_hits[RULE_KVM_LONG_MODE_SHADOW_IN_PAE]++;
	return allowed;
}

/* RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED or RULE_KVM_WALKER_AD_WRITE_UNTRACKED for a
 * translation: the old entry may name another gpa or rights, but the frame must be the
 * memslot backing of the gpa it maps (memslot changes zap or re-check the spte). */
static bool untracked_change_allows_translation(struct translation_walk *w, const struct model_translation *t,
					     const struct translation_verdict *verdict)
{
	enum kvm_rule rule;
	hva_t hva = 0;
	bool backed;

	if (verdict->fault == TRANSLATION_WRONG_FRAME)
		return false;
	rule = untracked_table_change(w->ex, &w->cpu, &verdict->guest);
	if (rule == RULE_NONE)
		return false;
	backed = ref_memory_backing(w->ex->ref_mem, t->as_id, t->gpa, &hva, NULL);
	if (backed == t->mmio || (backed && hva != t->hva))
		return false;
	w->ex->stats.rule_hits[rule]++;
	return true;
}

/* The small fields go into the gva's page-offset bits before one multiply, so that they
 * reach the slot bits: an spte and the TLB entry made from it differ only in source and
 * must not evict each other after every op. */
static struct verified_translation *verified_slot(struct executor *ex, const struct model_translation *t)
{
	uint64_t key = t->gva ^ t->gpa * 0xc2b2ae3d27d4eb4full ^
		       ((uint64_t)t->access | (uint64_t)t->level << 4 | (uint64_t)t->source << 8 |
			(uint64_t)t->as_id << 10 | (uint64_t)t->vcpu_id << 11);

	return &ex->verified[(key * 0x9e3779b97f4a7c15ull) >> (64 - VERIFIED_SLOT_BITS)];
}

static bool still_verified(const struct executor *ex, const struct verified_translation *seen,
			   const struct model_translation *t)
{
	if (seen->epoch != ex->epoch || memcmp(&seen->t, t, sizeof(*t)))
		return false;
	for (unsigned i = 0; i < seen->n_units; i++)
		if (ex->unit_written_at[seen->unit_bucket[i]] > seen->verified_at)
			return false;
	return true;
}

/* The verdict read the entries of the walk and, in PAE mode, the PDPTE registers, loaded
 * from the 32 bytes at CR3 (a load moves the epoch too; the units keep this obvious). */
static void remember_verified(struct executor *ex, struct verified_translation *seen,
			      const struct model_translation *t, const struct ref_result *walk,
			      enum paging_mode mode)
{
	seen->epoch = ex->epoch;
	seen->verified_at = ex->guest_write_seq;
	seen->t = *t;
	seen->n_units = 0;
	for (int i = 0; mode == PAGING_PAE && i < 4; i++)
		seen->unit_bucket[seen->n_units++] = (uint16_t)unit_bucket(ex, (t->cr3 & ~31ull) + i * 8);
	for (int i = 0; i < walk->n_entries; i++)
		seen->unit_bucket[seen->n_units++] = (uint16_t)unit_bucket(ex, walk->entries[i].gpa);
}

/* root_holds_physmap for the guest root a translation came from (a cached root's CR3 is
 * not the vCPU's). */
static bool translation_root_holds_physmap(struct translation_walk *w, const struct model_translation *t)
{
	struct ref_cpu_state root = w->cpu;

	root.cr3 = t->cr3;
	return root_holds_physmap(w->ex, &root);
}

/* The model's translation kt in the oracle's terms, with w set to judge it under its
 * vCPU's registers; false (w->ret set) if the harness never created that vCPU. */
static bool translation_of(struct translation_walk *w, const struct kvm_translation *kt,
			   struct model_translation *t)
{
	struct executor *ex = w->ex;

	/* Field by field after a memset: verified translations are compared bytewise, so the
	 * padding must be zero too. */
	memset(t, 0, sizeof(*t));
	t->source = kt->from_tlb ? TRANSLATION_TLB : TRANSLATION_SPTE;
	t->vcpu_id = kt->vcpu_id;
	t->as_id = kt->as_id;
	t->cr3 = kt->cr3;
	t->gva = kt->gva;
	t->level = kt->level;
	t->mmio = kt->mmio;
	t->gpa = kt->gpa;
	t->hva = kt->mmio ? 0 : host_pfn_to_hva(ex->host, kt->pfn);
	t->access = kt->access;
	t->unsync = kt->unsync;
	t->cached_root = kt->cached_root;
	t->sync_pending = kt->sync_pending;
	if (kt->vcpu_id < 0 || kt->vcpu_id >= PROG_MAX_VCPUS || !ex->vcpus[kt->vcpu_id].vcpu) {
		w->ret = fail(ex, "op %u: a translation of vCPU %d, which the harness never created",
			      w->index, kt->vcpu_id);
		return false;
	}
	w->cpu = w->cpus[kt->vcpu_id];
	w->engine = w->engines[kt->vcpu_id];
	return true;
}

/* What the guest's tables give at a spte the vCPU does not use now (a reload is pending,
 * or it is about to run again) is still a translation its processor may cache, since to
 * the guest the vCPU runs all along: the TLB history learns it, as translation_check
 * remembers whatever it finds valid. Nothing is judged, and the verified-translation
 * cache is left alone: learning before an op's own invalidation (INVLPG, MOV CR3) in the
 * same epoch would mark as verified a translation whose history that op then drops. */
static void learn_guest_translation(struct translation_walk *w, const struct model_translation *t)
{
	struct translation_verdict verdict;

	if (gva_is_harness_reserved(w->cpu.mode, t->gva))
		return;
	if (!translation_check(w->ex->translations, w->engine, &w->cpu, t, &verdict) &&
	    verdict.fault == TRANSLATION_CHECK_FAILED)
		w->ret = fail(w->ex, "op %u: translation check failed: %s", w->index, verdict.detail);
}

static void learn_one_translation(void *ctx, const struct kvm_translation *kt)
{
	struct translation_walk *w = ctx;
	struct model_translation t;

	if (!w->ret && translation_of(w, kt, &t))
		learn_guest_translation(w, &t);
}

static void check_one_translation(void *ctx, const struct kvm_translation *kt)
{
	struct translation_walk *w = ctx;
	struct executor *ex = w->ex;
	struct translation_verdict verdict;
	struct model_translation t;

	if (w->ret || !translation_of(w, kt, &t))
		return;
	if (kt->reload_pending) {
		learn_guest_translation(w, &t);
		return;
	}
	ex->stats.translations_checked++;
	/* A root entry the program overwrote (through another vCPU, for which the table is
	 * no root, or while the root waited in prev_roots) maps the harness's range with the
	 * program's tables, which the reference cannot walk there: not checkable, counted. */
	if (gva_is_harness_reserved(w->cpu.mode, kt->gva) && !translation_root_holds_physmap(w, &t)) {
		ex->stats.harness_skips++;
		return;
	}
	if (gva_is_harness_reserved(w->cpu.mode, kt->gva)) {
		check_identity_translation(w, &t);
		return;
	}
	struct verified_translation *seen = verified_slot(ex, &t);

	if (still_verified(ex, seen, &t))
		return;
	if (translation_check(ex->translations, w->engine, &w->cpu, &t, &verdict)) {
		remember_verified(ex, seen, &t, &verdict.guest, w->cpu.mode);
		return;
	}
	if (verdict.fault == TRANSLATION_CHECK_FAILED) {
		w->ret = fail(ex, "op %u: translation check failed: %s", w->index, verdict.detail);
		return;
	}
	if (pse_change_allows_translation(w, &t) || long_mode_shadow_allows_translation(w, &t, &verdict) ||
	    untracked_change_allows_translation(w, &t, &verdict))
		return;
	translation_divergence(w, &t, translation_fault_name(verdict.fault));
	{
		size_t used = strlen(w->div->detail);

		snprintf(w->div->detail + used, sizeof(w->div->detail) - used, "\n  %s", verdict.detail);
	}
}

/* Each vCPU's registers and reference engine, for judging its translations; -1 if an
 * engine cannot be made. */
static int translation_walk_init(struct executor *ex, struct translation_walk *w)
{
	for (unsigned v = 0; v < PROG_MAX_VCPUS; v++) {
		if (!ex->vcpus[v].vcpu)
			continue;
		ref_cpu_of(&ex->vcpus[v], &w->cpus[v]);
		w->engines[v] = engine_for(ex, w->cpus[v].mode);
		if (!w->engines[v])
			return -1;
	}
	return 0;
}

static int check_translations(struct executor *ex, uint32_t index, const struct op *op,
			      struct divergence *div)
{
	struct translation_walk w = { .ex = ex, .index = index, .op = op, .div = div };

	if (translation_walk_init(ex, &w))
		return -1;
	kvm_mmu_for_each_translation(ex->kvm, check_one_translation, &w);
	return w.ret;
}

/* The current vCPU is about to run a guest action: the TLB history learns what its
 * current root reaches (learn_guest_translation). */
static int learn_current_root(struct executor *ex, uint32_t index, const struct op *op,
			      struct divergence *div)
{
	struct translation_walk w = { .ex = ex, .index = index, .op = op, .div = div };

	if (translation_walk_init(ex, &w))
		return -1;
	kvm_mmu_for_each_root_translation(cur_vcpu(ex), learn_one_translation, &w);
	return w.ret;
}

/* core's auditor; 1 with div filled on a broken invariant. */
static int audit(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	char what[sizeof(div->detail)];

	if (!shadow_mmu(ex) || kvm_mmu_audit(ex->kvm, what, sizeof(what)))
		return 0;
	set_divergence(div, index, op, CHECK_INVARIANT);
	snprintf(div->detail, sizeof(div->detail), "%s", what);
	return 1;
}

/* The current vCPU enters the guest (vcpu_enter_guest): its pending requests take effect.
 * 0, or what cpu_failure makes of a failed entry. */
static int enter_guest(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	uint64_t start = now_ns();
	bool entered = kvm_vcpu_enter_guest(cur_vcpu(ex));

	ex->stats.model_ns += now_ns() - start;
	cur(ex)->out_after_mmio_exit = false;
	if (!entered && !ex->kvm->error.set) {
		struct cpu_access_result res = { .outcome = CPU_SHUTDOWN };
		int ret = cpu_failure(ex, index, op, 0, &res, div);

		if (ret || ex->shut_down)
			return ret;
	}
	if (ex->kvm->error.set) {
		struct cpu_access_result res = { .outcome = CPU_MODEL_ERROR };

		return cpu_failure(ex, index, op, 0, &res, div);
	}
	return 0;
}

/* Ops the VMM makes while no vCPU runs (VM ioctls), and the vCPU switch. */
static bool vm_op(const struct op *op)
{
	switch (op->kind) {
	case OP_MEMSLOT_SET:
	case OP_MEMSLOT_DELETE:
	case OP_MEMSLOT_MOVE:
	case OP_MEMSLOT_FLAGS:
	case OP_GEN_JUMP:
	case OP_DIRTY_LOG:
	case OP_MMU_PAGES:
	case OP_VCPU:
		return true;
	default:
		return false;
	}
}

/* After every op on the shadow MMU: the vCPU re-enters the guest (the op was an exit, or
 * ran while the vCPU was out of the guest), so pending requests take effect now, unless
 * its last access left it in the VMM with an MMIO exit; then no model crash and every
 * translation allowed. */
static int after_op(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	int ret;

	if (!shadow_mmu(ex) || ex->shut_down)
		return 0;
	if (!cur(ex)->out_after_mmio_exit) {
		ret = enter_guest(ex, index, op, div);
		if (ret || ex->shut_down)
			return ret;
	}
	if (ex->kvm->warning.set)
		return kvm_warning(ex, index, op, div);
	if (ex->audit_every_op && audit(ex, index, op, div))
		return 1;
	return check_translations(ex, index, op, div);
}

/* ---- whole-memory comparison at the end of a program ---- */

struct memory_compare {
	struct executor *ex;
	bool model_side;
	bool differs;
	hva_t hva;
	uint64_t mine, theirs; /* the differing 8 bytes: model's, reference's */
};

static void compare_page(void *ctx, hva_t hva, const uint8_t *page)
{
	struct memory_compare *cmp = ctx;
	static const uint8_t zero_page[PAGE_SIZE];
	const uint8_t *other;

	if (cmp->differs)
		return;
	if (cmp->model_side) {
		other = ref_memory_hva_page(cmp->ex->ref_mem, hva);
	} else {
		kvm_pfn_t pfn = host_hva_to_pfn(cmp->ex->host, hva);

		other = pfn == KVM_PFN_ERR_FAULT ? NULL : host_pfn_page(cmp->ex->host, pfn, false);
	}
	if (memcmp(page, other ? other : zero_page, PAGE_SIZE)) {
		const uint8_t *theirs = other ? other : zero_page;
		unsigned off = 0;

		while (page[off] == theirs[off])
			off++;
		cmp->differs = true;
		cmp->hva = hva + (off & ~7u);
		memcpy(&cmp->mine, page + (off & ~7u), 8);
		memcpy(&cmp->theirs, theirs + (off & ~7u), 8);
		if (!cmp->model_side) {
			uint64_t t = cmp->mine;

			cmp->mine = cmp->theirs;
			cmp->theirs = t;
		}
	}
}

static bool compare_all_memory(struct executor *ex, struct memory_compare *cmp)
{
	*cmp = (struct memory_compare){ .ex = ex, .model_side = true };
	host_for_each_page(ex->host, compare_page, cmp);
	cmp->model_side = false;
	ref_memory_for_each_page(ex->ref_mem, compare_page, cmp);
	return !cmp->differs;
}

/* ---- driver ---- */

/* A vCPU in the reset state of the program language: paging off, CR3 = T0, outside SMM. */
static void start_vcpu(struct executor *ex, unsigned id, struct kvm_vcpu *vcpu)
{
	ex->vcpus[id] = (struct exec_vcpu){ .vcpu = vcpu };
	vcpu->arch.cr3 = table_pool_gpa(0);
	kvm_init_mmu(vcpu);
}

/* vcpu N: later ops run on vCPU N. A VMM creates a vCPU when it first needs it
 * (KVM_CREATE_VCPU), so nr_vcpus counts the vCPUs the program used; the vCPU that stops
 * running keeps its TLB and roots, and its pending requests wait for its next entry. */
static int op_vcpu(struct executor *ex, uint32_t index, const struct op *op)
{
	unsigned id = op->vcpu.id % PROG_MAX_VCPUS;

	if (!ex->vcpus[id].vcpu) {
		struct kvm_vcpu *vcpu = kvm_create_vcpu(ex->kvm, (int)id);

		if (!vcpu)
			return fail(ex, "op %u: KVM_CREATE_VCPU %u failed", index, id);
		start_vcpu(ex, id, vcpu);
	}
	ex->cur = id;
	return 0;
}

static int run_op(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	switch (op->kind) {
	case OP_MODE:
		return op_mode(ex, index, op, div);
	case OP_CONTROL:
		op_control(ex, op);
		return 0;
	case OP_PKRU:
		cur_vcpu(ex)->arch.pkru = op->pkru.value;
		return 0;
	case OP_CR3:
		return op_cr3(ex, index, op, div);
	case OP_MEMSLOT_SET:
	case OP_MEMSLOT_DELETE:
	case OP_MEMSLOT_MOVE:
	case OP_MEMSLOT_FLAGS:
		return op_memslot(ex, op);
	case OP_PTE:
		return op_pte(ex, index, op, div);
	case OP_MAP:
		return op_map(ex, index, op, div);
	case OP_ACCESS:
		return op_access(ex, index, op, div);
	case OP_INVLPG:
		op_invlpg(ex, op);
		return 0;
	case OP_GEN_JUMP:
		kvm_memslots_jump_generation(ex->kvm, op->gen_jump.as_id, op->gen_jump.count);
		return 0;
	case OP_SMM:
		return op_smm(ex, index, op, div);
	case OP_DIRTY_LOG:
		return op_dirty_log(ex, index, op, div);
	case OP_MMU_PAGES:
		op_mmu_pages(ex, op);
		return 0;
	case OP_VCPU:
		return op_vcpu(ex, index, op);
	default:
		return fail(ex, "op %u: unknown kind %u", index, op->kind);
	}
}

static int reset_for_program(struct executor *ex)
{
	host_memory_reset(ex->host);
	ref_memory_reset(ex->ref_mem);
	forget_slots(ex);
	if (kvm_reset(ex->kvm, &ex->config))
		return fail(ex, "cannot reset the model");
	memset(ex->vcpus, 0, sizeof(ex->vcpus));
	ex->cur = 0;
	ex->next_pool_table = 1;
	ex->shut_down = false;
	ex->epoch++;
	translation_checker_reset(ex->translations);
	aliased_writes_reset(ex->aliased_writes);
	ad_updates_reset(ex->ad_updates);
	ex->untracked_writes_oom = false;
	start_vcpu(ex, 0, &ex->kvm->vcpus[0]);
	if (shadow_mmu(ex) && physmap_install(ex->kvm, ex->host, ex->ref_mem))
		return fail(ex, "cannot install the harness's physmap");
	return 0;
}

/* Fresh reference engines every recycle_every programs, so whatever Unicorn keeps
 * between runs (translated blocks, its own allocations) cannot grow without bound. */
static void recycle_engines(struct executor *ex)
{
	if (!ex->recycle_every || ++ex->since_recycle < ex->recycle_every)
		return;
	ex->since_recycle = 0;
	for (int mode = 0; mode < PAGING_MODE_COUNT; mode++) {
		ref_engine_free(ex->engines[mode]);
		ex->engines[mode] = NULL;
	}
}

void executor_set_recycle(struct executor *ex, uint64_t programs) { ex->recycle_every = programs; }

int executor_begin(struct executor *ex)
{
	recycle_engines(ex);
	if (ex->log)
		memset(ex->log, 0, sizeof(*ex->log));
	if (ex->harness_log) {
		ex->harness_log->n = 0;
		ex->harness_log->overflow = false;
	}
	if (reset_for_program(ex))
		return -1;
	ex->stats.programs++;
	return 0;
}

int executor_step(struct executor *ex, uint32_t index, const struct op *op, struct divergence *div)
{
	enum paging_mode mode = kvm_vcpu_paging_mode(cur_vcpu(ex));
	unsigned vcpu = ex->cur;
	int ret;

	if (ex->shut_down)
		return 0;
	ex->stats.ops++;
	ex->op_index = index;
	if (op->kind != OP_ACCESS && op->kind != OP_PTE && op->kind != OP_MAP)
		ex->epoch++;
	/* A guest action of a vCPU the VMM left out after an MMIO exit: KVM_RUN again. Once in
	 * the guest, before the action, the processor may cache what its new roots reach. */
	ret = 0;
	if (shadow_mmu(ex) && cur(ex)->out_after_mmio_exit && !vm_op(op)) {
		ret = enter_guest(ex, index, op, div);
		if (!ret && !ex->shut_down)
			ret = learn_current_root(ex, index, op, div);
	}
	if (!ret && !ex->shut_down)
		ret = run_op(ex, index, op, div);
	if (!ret && ex->untracked_writes_oom)
		ret = fail(ex, "op %u: out of memory recording untracked table writes", index);
	if (!ret)
		ret = after_op(ex, index, op, div);
	if (ret > 0) {
		div->mode = mode;
		div->vcpu = vcpu;
	}
	return ret;
}

static void add_vm_stats(struct kvm_vm_stat *total, const struct kvm_vm_stat *vm)
{
	total->mmu_shadow_zapped += vm->mmu_shadow_zapped;
	total->mmu_pte_write += vm->mmu_pte_write;
	total->mmu_pte_updated += vm->mmu_pte_updated;
	total->mmu_pde_zapped += vm->mmu_pde_zapped;
	total->mmu_flooded += vm->mmu_flooded;
	total->mmu_recycled += vm->mmu_recycled;
	total->mmu_cache_miss += vm->mmu_cache_miss;
	total->mmu_unsync += vm->mmu_unsync;
	total->remote_tlb_flush += vm->remote_tlb_flush;
	total->dirty_log_reads += vm->dirty_log_reads;
	total->mmu_unsync_total += vm->mmu_unsync_total;
}

int executor_finish(struct executor *ex, const struct program *prog, struct divergence *div)
{
	static const struct op no_op;
	const struct op *last = prog->n_ops ? &prog->ops[prog->n_ops - 1] : &no_op;
	uint32_t last_index = prog->n_ops ? prog->n_ops - 1 : 0;
	struct memory_compare cmp;

	/* After a shutdown the model's state is dead: KVM left it as it was when it gave up
	 * (e.g. a PAE root half allocated by mmu_alloc_shadow_roots). */
	if (ex->log) {
		ex->log->shut_down = ex->shut_down;
		host_for_each_page(ex->host, digest_page, &ex->log->memory_digest);
	}
	add_vm_stats(&ex->stats.vm, &ex->kvm->stat);
	ex->stats.multi_vcpu_programs += ex->kvm->nr_vcpus > 1;
	ex->stats.mmu_enospc += ex->kvm->mmu->stat_enospc;
	if (!ex->shut_down && audit(ex, last_index, last, div))
		return 1;
	/* A warning a rule knows ended the run, maybe in the middle of an op: what that op
	 * left in memory is checked no further. */
	if ((shadow_mmu(ex) && ex->kvm->warning.set) || compare_all_memory(ex, &cmp))
		return 0;
	set_divergence(div, last_index, last, CHECK_MEMORY);
	snprintf(div->detail, sizeof(div->detail),
		 "guest memory differs at hva %#llx: model %#llx, reference %#llx (checked after "
		 "the last op)", (unsigned long long)cmp.hva, (unsigned long long)cmp.mine,
		 (unsigned long long)cmp.theirs);
	return 1;
}

int executor_run(struct executor *ex, const struct program *prog, struct divergence *div)
{
	if (executor_begin(ex))
		return -1;
	for (uint32_t i = 0; i < prog->n_ops; i++) {
		int ret = executor_step(ex, i, &prog->ops[i], div);

		if (ret)
			return ret;
	}
	return executor_finish(ex, prog, div);
}

/* Checks whose report compares the model's answer for an access with the allowed one. */
static bool check_compares_answers(enum check_id check)
{
	return check == CHECK_OUTCOME || check == CHECK_ERROR_CODE || check == CHECK_CR2 ||
	       check == CHECK_GPA || check == CHECK_MMIO;
}

bool executor_logs_match(const struct executor_log *a, const struct executor_log *b, char *why,
			 size_t len)
{
	uint32_t n = a->n < b->n ? a->n : b->n;

	for (uint32_t i = 0; i < n; i++) {
		char x[96], y[96];

		if (a->accesses[i].op_index == b->accesses[i].op_index &&
		    !memcmp(&a->accesses[i].answer, &b->accesses[i].answer, sizeof(a->accesses[i].answer)))
			continue;
		model_access_format(&a->accesses[i].answer, x, sizeof(x));
		model_access_format(&b->accesses[i].answer, y, sizeof(y));
		snprintf(why, len, "access %u (op %u): %s vs %s (op %u)", i, a->accesses[i].op_index, x, y,
			 b->accesses[i].op_index);
		return false;
	}
	if (a->n != b->n || a->shut_down != b->shut_down) {
		snprintf(why, len, "%u vs %u accesses, shutdown %d vs %d", a->n, b->n, a->shut_down,
			 b->shut_down);
		return false;
	}
	if (a->memory_digest != b->memory_digest) {
		snprintf(why, len, "guest memory differs at the end");
		return false;
	}
	return true;
}

void divergence_print(const struct divergence *div, FILE *out)
{
	char op_text[160], model[96], expected[96];

	op_format_in_mode(&div->op, div->mode, op_text, sizeof(op_text));
	fprintf(out, "DIVERGENCE (%s) at op %u: %s", check_name(div->check), div->op_index, op_text);
	fprintf(out, div->vcpu ? " (on vCPU %u)\n" : "\n", div->vcpu);
	if (div->gva)
		fprintf(out, "  gva:      %#llx\n", (unsigned long long)div->gva);
	if (check_compares_answers(div->check) && div->op.kind == OP_ACCESS) {
		model_access_format(&div->model, model, sizeof(model));
		model_access_format(&div->expected, expected, sizeof(expected));
		fprintf(out, "  model:    %s\n", model);
		fprintf(out, "  allowed:  %s%s%s\n", expected, div->rule ? " by rule " : "",
			div->rule ? kvm_rule_name(div->rule) : "");
	}
	if (div->detail[0])
		fprintf(out, "  %s\n", div->detail);
}
