/* MMU events for `shadowfuzz trace`: the model's counterpart of KVM's tracepoints
 * (arch/x86/kvm/mmutrace.h, trace.h), named after them. A VM delivers each event to
 * kvm->trace_fn when one is set; with none set every trace_* call is a NULL check, and
 * events never change what the model does. */
#ifndef SHADOWFUZZ_CORE_MMU_TRACE_H
#define SHADOWFUZZ_CORE_MMU_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_host.h"

enum kvm_mmu_event {
	KVM_EV_PAGE_FAULT,             /* kvm_page_fault: addr, error_code */
	KVM_EV_PAGETABLE_WALK,         /* kvm_mmu_pagetable_walk: addr, error_code = access */
	KVM_EV_PAGING_ELEMENT,         /* kvm_mmu_paging_element: value = gpte, level */
	KVM_EV_WALKER_ERROR,           /* kvm_mmu_walker_error: error_code */
	KVM_EV_GET_PAGE,               /* kvm_mmu_get_page: the page, created */
	KVM_EV_PREPARE_ZAP_PAGE,       /* kvm_mmu_prepare_zap_page: the page */
	KVM_EV_ZAP_ALL_FAST,           /* kvm_mmu_zap_all_fast: value = new mmu_valid_gen */
	KVM_EV_SET_SPTE,               /* kvm_mmu_set_spte: addr = sptep, value = spte, gfn, level */
	KVM_EV_MARK_MMIO_SPTE,         /* mark_mmio_spte: addr = sptep, gfn, access, gen */
	KVM_EV_HANDLE_MMIO_PAGE_FAULT, /* handle_mmio_page_fault: addr, gfn, access */
	KVM_EV_CHECK_MMIO_SPTE,        /* check_mmio_spte failed: value = spte, gen = memslots' */
	KVM_EV_FLUSH_REMOTE_TLBS,      /* kvm_flush_remote_tlbs */
	KVM_EV_VCPU_FLUSH_TLB,         /* kvm_vcpu_flush_tlb: a TLB flush request served */
	KVM_EV_RMAP_WRITE_PROTECT,     /* rmap_write_protect: gfn (only when sptes lost W) */
	KVM_EV_PTE_WRITE,              /* kvm_mmu_pte_write: addr = gpa, level = bytes */
	KVM_EV_SYNC_ROOTS,             /* kvm_mmu_sync_roots */
	KVM_EV_EMULATE_INSN,           /* kvm_emulate_insn: addr = gva */
	KVM_EV_MMIO,                   /* kvm_mmio: addr = gpa, write */
	KVM_EV_INVALIDATE_MMIO_SPTES,  /* kvm_mmu_invalidate_mmio_sptes: as_id, gen (a wrap) */
	KVM_EV_INSTALL_NEW_MEMSLOTS,   /* install_new_memslots: as_id, gen, value = installs */
	KVM_EV_MAKE_MMU_PAGES_AVAILABLE, /* make_mmu_pages_available zapped: value = pages free
					  * after, level = 1 for -ENOSPC (no tracepoint in KVM) */
	KVM_EV_CHANGE_MMU_PAGES,       /* kvm_mmu_change_mmu_pages: value = n_max_mmu_pages */
	KVM_EV_UNSYNC_PAGE,            /* kvm_mmu_unsync_page: the page */
	KVM_EV_SYNC_PAGE,              /* kvm_mmu_sync_page: the page, no longer unsync */
	KVM_EV_COUNT
};

/* One event; the fields each kind uses are listed above. A shadow page is copied, since
 * pages are reused as soon as they are freed. */
struct kvm_mmu_trace_event {
	enum kvm_mmu_event event;
	uint64_t addr;
	uint64_t value;
	uint64_t gen;
	gfn_t gfn;
	uint32_t error_code;
	int level;
	int as_id;
	unsigned access;
	bool created; /* kvm_mmu_get_page: a new page, not one found in the hash */
	bool write;   /* kvm_mmio */
	struct {
		gfn_t gfn;
		hpa_t hpa;
		union kvm_mmu_page_role role;
		int root_count;
	} sp;
};

const char *kvm_mmu_event_name(enum kvm_mmu_event event);

static inline void kvm_mmu_trace(struct kvm *kvm, const struct kvm_mmu_trace_event *ev)
{
	kvm->trace_fn(kvm->trace_ctx, ev);
}

static inline void trace_kvm_mmu_page(struct kvm *kvm, enum kvm_mmu_event event,
				      const struct kvm_mmu_page *sp, bool created)
{
	struct kvm_mmu_trace_event ev = { .event = event, .created = created };

	ev.sp.gfn = sp->gfn;
	ev.sp.hpa = sp->hpa;
	ev.sp.role = sp->role;
	ev.sp.root_count = sp->root_count;
	kvm_mmu_trace(kvm, &ev);
}

static inline void trace_kvm_page_fault(struct kvm *kvm, gva_t addr, uint32_t error_code)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_PAGE_FAULT, .addr = addr, .error_code = error_code });
}

static inline void trace_kvm_mmu_pagetable_walk(struct kvm *kvm, gva_t addr, uint32_t access)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_PAGETABLE_WALK, .addr = addr, .error_code = access });
}

static inline void trace_kvm_mmu_paging_element(struct kvm *kvm, uint64_t gpte, int level)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_PAGING_ELEMENT, .value = gpte, .level = level });
}

static inline void trace_kvm_mmu_walker_error(struct kvm *kvm, uint32_t error_code)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_WALKER_ERROR, .error_code = error_code });
}

static inline void trace_kvm_mmu_get_page(struct kvm *kvm, const struct kvm_mmu_page *sp, bool created)
{
	if (kvm->trace_fn)
		trace_kvm_mmu_page(kvm, KVM_EV_GET_PAGE, sp, created);
}

static inline void trace_kvm_mmu_prepare_zap_page(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	if (kvm->trace_fn)
		trace_kvm_mmu_page(kvm, KVM_EV_PREPARE_ZAP_PAGE, sp, false);
}

static inline void trace_kvm_mmu_unsync_page(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	if (kvm->trace_fn)
		trace_kvm_mmu_page(kvm, KVM_EV_UNSYNC_PAGE, sp, false);
}

static inline void trace_kvm_mmu_sync_page(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	if (kvm->trace_fn)
		trace_kvm_mmu_page(kvm, KVM_EV_SYNC_PAGE, sp, false);
}

static inline void trace_make_mmu_pages_available(struct kvm *kvm, uint64_t available, bool enospc)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_MAKE_MMU_PAGES_AVAILABLE, .value = available, .level = enospc });
}

static inline void trace_kvm_mmu_change_mmu_pages(struct kvm *kvm, uint64_t n_max_mmu_pages)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_CHANGE_MMU_PAGES, .value = n_max_mmu_pages });
}

static inline void trace_kvm_mmu_zap_all_fast(struct kvm *kvm, uint64_t mmu_valid_gen)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_ZAP_ALL_FAST, .value = mmu_valid_gen });
}

static inline void trace_kvm_mmu_set_spte(struct kvm *kvm, int level, gfn_t gfn, const uint64_t *sptep)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_SET_SPTE, .addr = (uintptr_t)sptep, .value = *sptep,
			.gfn = gfn, .level = level });
}

static inline void trace_mark_mmio_spte(struct kvm *kvm, const uint64_t *sptep, gfn_t gfn,
					unsigned access, uint64_t gen)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_MARK_MMIO_SPTE, .addr = (uintptr_t)sptep, .value = *sptep,
			.gfn = gfn, .access = access, .gen = gen });
}

static inline void trace_handle_mmio_page_fault(struct kvm *kvm, uint64_t addr, gfn_t gfn,
						unsigned access)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_HANDLE_MMIO_PAGE_FAULT, .addr = addr, .gfn = gfn,
			.access = access });
}

static inline void trace_check_mmio_spte(struct kvm *kvm, uint64_t spte, uint64_t gen)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_CHECK_MMIO_SPTE, .value = spte, .gen = gen });
}

static inline void trace_kvm_event(struct kvm *kvm, enum kvm_mmu_event event)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){ .event = event });
}

static inline void trace_kvm_flush_remote_tlbs(struct kvm *kvm)
{
	trace_kvm_event(kvm, KVM_EV_FLUSH_REMOTE_TLBS);
}

static inline void trace_kvm_vcpu_flush_tlb(struct kvm *kvm)
{
	trace_kvm_event(kvm, KVM_EV_VCPU_FLUSH_TLB);
}

static inline void trace_kvm_mmu_sync_roots(struct kvm *kvm)
{
	trace_kvm_event(kvm, KVM_EV_SYNC_ROOTS);
}

static inline void trace_rmap_write_protect(struct kvm *kvm, gfn_t gfn)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_RMAP_WRITE_PROTECT, .gfn = gfn });
}

static inline void trace_kvm_mmu_pte_write(struct kvm *kvm, gpa_t gpa, int bytes)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_PTE_WRITE, .addr = gpa, .level = bytes });
}

static inline void trace_kvm_emulate_insn(struct kvm *kvm, gva_t addr)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_EMULATE_INSN, .addr = addr });
}

static inline void trace_kvm_mmio(struct kvm *kvm, gpa_t gpa, bool write)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_MMIO, .addr = gpa, .write = write });
}

static inline void trace_kvm_mmu_invalidate_mmio_sptes(struct kvm *kvm, int as_id, uint64_t gen)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_INVALIDATE_MMIO_SPTES, .as_id = as_id, .gen = gen });
}

static inline void trace_install_new_memslots(struct kvm *kvm, int as_id, uint64_t gen,
					      uint64_t installs)
{
	if (kvm->trace_fn)
		kvm_mmu_trace(kvm, &(struct kvm_mmu_trace_event){
			.event = KVM_EV_INSTALL_NEW_MEMSLOTS, .as_id = as_id, .gen = gen,
			.value = installs });
}

#endif
