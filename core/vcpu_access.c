#include <errno.h>
#include <string.h>

#include "mmu.h"
#include "vcpu_access.h"

static uint64_t level_size(int level)
{
	return PAGE_SIZE << (9 * (level - 1));
}

/* One KVM_RUN up to guest entry: requests in KVM's order, then kvm_mmu_reload. */
static int vcpu_enter_guest_once(struct kvm_vcpu *vcpu)
{
	if (vcpu->requests & KVM_REQ_MMU_RELOAD)
		kvm_mmu_unload(vcpu);
	if (vcpu->requests & KVM_REQ_MMU_SYNC)
		kvm_mmu_sync_roots(vcpu);
	vcpu->requests &= ~(KVM_REQ_MMU_RELOAD | KVM_REQ_MMU_SYNC | KVM_REQ_LOAD_CR3);
	if (vcpu->requests & KVM_REQ_TLB_FLUSH) {
		trace_kvm_vcpu_flush_tlb(vcpu->kvm);
		vcpu->tlb.n = 0;
	}
	vcpu->requests &= ~KVM_REQ_TLB_FLUSH;
	if (!(vcpu->requests & KVM_REQ_TRIPLE_FAULT) && !VALID_PAGE(vcpu->mmu.root_hpa))
		return kvm_mmu_load(vcpu);
	return 0;
}

/* Requests that vcpu_enter_guest serves before the guest runs. */
#define KVM_REQS_BEFORE_ENTRY (KVM_REQ_MMU_RELOAD | KVM_REQ_MMU_SYNC | KVM_REQ_TLB_FLUSH)

/* vcpu_enter_guest: the requests in KVM's order, then kvm_mmu_reload. A request made on
 * the way (kvm_mmu_get_page finding a root with unsync children) cancels the entry, and
 * the next pass serves it (kvm_request_pending before the VM entry). A failed load
 * (-ENOSPC) fails KVM_RUN; the harness's VMM runs the vCPU again, which helps only if the
 * failed zap requested a reload (the root it hit is then freed). */
bool kvm_vcpu_enter_guest(struct kvm_vcpu *vcpu)
{
	int r, passes = 0;

	do {
		r = vcpu_enter_guest_once(vcpu);
	} while ((r == -ENOSPC && (vcpu->requests & KVM_REQ_MMU_RELOAD)) ||
		 (r == 0 && (vcpu->requests & KVM_REQS_BEFORE_ENTRY) && ++passes < 4));
	if (r == -ENOSPC)
		kvm_model_warn(vcpu->kvm, KVM_WARN_ROOTS_FILL_PAGE_BUDGET,
			       "kvm_mmu_load fails with -ENOSPC: no shadow page can be freed for a root");
	else if (r < 0)
		kvm_model_error(vcpu->kvm, "kvm_mmu_load failed (%d)", r);
	return r == 0 && !(vcpu->requests & KVM_REQ_TRIPLE_FAULT) && !vcpu->kvm->error.set;
}

/* Hardware permission check of a translation with access acc: shadow paging runs the guest
 * with CR0.WP=1 and EFER.NXE=1, and the guest's CR4.SMEP/SMAP, which vmx_set_cr4 clears
 * while the guest has paging off. 0 or the error-code bits. */
static uint32_t hw_permission_fault(const struct kvm_vcpu *vcpu, const struct cpu_access *a,
				    unsigned access)
{
	bool user = a->cpl == 3, user_page = access & ACC_USER_MASK;
	bool smap_ok = vcpu->arch.rflags & X86_EFLAGS_AC;
	uint64_t cr4 = (vcpu->arch.cr0 & X86_CR0_PG) ? vcpu->arch.cr4 : 0;

	if (user && !user_page)
		return PFERR_PRESENT_MASK;
	if (a->kind == CPU_WRITE && !(access & ACC_WRITE_MASK))
		return PFERR_PRESENT_MASK;
	if (a->kind == CPU_FETCH && !(access & ACC_EXEC_MASK))
		return PFERR_PRESENT_MASK;
	if (!user && user_page && a->kind == CPU_FETCH && (cr4 & X86_CR4_SMEP))
		return PFERR_PRESENT_MASK;
	if (!user && user_page && a->kind != CPU_FETCH && (cr4 & X86_CR4_SMAP) && !smap_ok)
		return PFERR_PRESENT_MASK;
	return 0;
}

static uint32_t access_bits(const struct cpu_access *a)
{
	return (a->kind == CPU_WRITE ? PFERR_WRITE_MASK : 0) | (a->cpl == 3 ? PFERR_USER_MASK : 0) |
	       (a->kind == CPU_FETCH ? PFERR_FETCH_MASK : 0);
}

static struct hw_tlb_entry *tlb_lookup(struct kvm_vcpu *vcpu, gva_t gva)
{
	for (int i = 0; i < vcpu->tlb.n; i++) {
		struct hw_tlb_entry *e = &vcpu->tlb.entries[i];

		if (gva - e->gva < level_size(e->level))
			return e;
	}
	return NULL;
}

static void tlb_drop(struct kvm_vcpu *vcpu, struct hw_tlb_entry *e)
{
	*e = vcpu->tlb.entries[--vcpu->tlb.n];
}

/* The hardware walk of the shadow tables; on success fills the TLB entry (and sets the
 * sptes' A, and D for writes, as the host MMU does). False with the #PF error code (which
 * may be 0: a not-present fault of a supervisor read). */
static bool hw_walk(struct kvm_vcpu *vcpu, const struct cpu_access *a, struct hw_tlb_entry *out,
		    uint32_t *error_code)
{
	const struct spte_params *p = &vcpu->kvm->mmu->spte;
	struct kvm_shadow_walk_iterator it;
	uint64_t *leaf = NULL;
	int leaf_level = 0;
	uint32_t fault;

	for (shadow_walk_init(&it, vcpu, a->gva); shadow_walk_okay(&it, vcpu); shadow_walk_next(&it)) {
		uint64_t spte = *it.sptep;

		if (is_mmio_spte(p, spte) && shadow_mmio_sptes_fault_rsvd(p)) {
			*error_code = PFERR_PRESENT_MASK | PFERR_RSVD_MASK | access_bits(a);
			return false;
		}
		if (!(spte & PT_PRESENT_MASK)) {
			*error_code = access_bits(a);
			return false;
		}
		if (is_last_spte(spte, it.level)) {
			leaf = it.sptep;
			leaf_level = it.level;
			break;
		}
	}
	*error_code = access_bits(a);
	if (!leaf)
		return false;
	fault = hw_permission_fault(vcpu, a, spte_access(*leaf));
	if (fault) {
		*error_code |= fault;
		return false;
	}
	*leaf |= PT_ACCESSED_MASK | (a->kind == CPU_WRITE ? PT_DIRTY_MASK : 0);
	{
		struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, leaf);
		uint64_t size = level_size(leaf_level);

		*out = (struct hw_tlb_entry){
			.gva = a->gva & ~(size - 1),
			.level = leaf_level,
			.pfn = spte_to_pfn(*leaf) & ~((size >> PAGE_SHIFT) - 1),
			.gfn = sp ? kvm_mmu_page_get_gfn(sp, (int)(leaf - sp->spt)) : 0,
			.access = spte_access(*leaf),
			.dirty = a->kind == CPU_WRITE,
			.cr3 = vcpu->arch.cr3,
		};
	}
	return true;
}

/* Data access through a translation: writes reach host memory; reads change nothing. */
static void hw_data_access(struct kvm_vcpu *vcpu, const struct cpu_access *a, const struct hw_tlb_entry *e)
{
	uint8_t *page;
	kvm_pfn_t pfn = e->pfn + ((a->gva - e->gva) >> PAGE_SHIFT);

	if (a->kind != CPU_WRITE || !a->data)
		return;
	page = host_pfn_page(vcpu->kvm->host, pfn, true);
	if (page)
		memcpy(page + (a->gva & ~PAGE_MASK), a->data, a->size);
}

static void hw_success(struct kvm_vcpu *vcpu, const struct cpu_access *a, const struct hw_tlb_entry *e,
		       struct cpu_access_result *res)
{
	hw_data_access(vcpu, a, e);
	res->outcome = CPU_OK;
	res->gpa = (e->gfn << PAGE_SHIFT) + (a->gva - e->gva);
}

/* The hardware part of one try: true on success, else false with the error code of the
 * #PF it raises. A TLB hit without the needed rights faults and drops the entry (SDM
 * §4.10.4.1). */
static bool hw_access(struct kvm_vcpu *vcpu, const struct cpu_access *a, struct cpu_access_result *res,
		      uint32_t *error_code)
{
	struct hw_tlb_entry *hit = tlb_lookup(vcpu, a->gva), entry;
	uint32_t fault;

	if (hit) {
		fault = hw_permission_fault(vcpu, a, hit->access);
		if (!fault) {
			hw_success(vcpu, a, hit, res);
			return true;
		}
		tlb_drop(vcpu, hit);
		*error_code = fault | access_bits(a);
		return false;
	}
	if (!hw_walk(vcpu, a, &entry, error_code))
		return false;
	if (vcpu->tlb.n < HW_TLB_ENTRIES)
		vcpu->tlb.entries[vcpu->tlb.n++] = entry;
	hw_success(vcpu, a, &entry, res);
	return true;
}

/* x86_emulate_instruction for the access: the emulator translates gva itself (a direct
 * MMU's fault address, else the MMIO cache first, as vcpu_mmio_gva_to_gpa does), then reads
 * or writes guest memory; a write goes through page tracking (kvm_page_track_write ->
 * kvm_mmu_pte_write). */
static void emulate_access(struct kvm_vcpu *vcpu, const struct cpu_access *a, struct cpu_access_result *res)
{
	uint32_t pfec = access_bits(a);
	struct guest_walker walker;
	bool mmio, writable = false;
	gpa_t gpa;
	hva_t hva;

	res->emulated = true;
	trace_kvm_emulate_insn(vcpu->kvm, a->gva);
	if (vcpu->mmu.direct_map) {
		/* kvm_mmu_page_fault (v4.20..v5.4) hands a direct MMU's fault address to the
		 * emulator (gpa_available, gpa_val), and emulator_read_write_onepage uses it
		 * instead of the gva MMIO cache, which a paging mode may have left behind:
		 * vcpu_is_mmio_gpa. */
		gpa = a->gva;
		mmio = vcpu_match_mmio_gpa(vcpu, gpa);
	} else if (vcpu_match_mmio_gva(vcpu, a->gva) &&
		   !permission_fault(vcpu, &vcpu->mmu, vcpu->mmio_access, 0, pfec)) {
		gpa = (vcpu->mmio_gfn << PAGE_SHIFT) | (a->gva & ~PAGE_MASK);
		mmio = true;
	} else {
		if (!kvm_walk_addr(&walker, vcpu, a->gva, pfec)) {
			res->outcome = CPU_PAGE_FAULT;
			res->error_code = walker.fault.error_code;
			res->cr2 = walker.fault.address;
			return;
		}
		gpa = guest_walker_gpa(&walker, a->gva);
		mmio = vcpu_match_mmio_gpa(vcpu, gpa);
	}
	res->gpa = gpa;
	hva = mmio ? KVM_HVA_ERR_BAD : kvm_vcpu_gfn_to_hva_prot(vcpu, gpa >> PAGE_SHIFT, &writable);
	if (hva == KVM_HVA_ERR_BAD || (a->kind == CPU_WRITE && !writable)) {
		trace_kvm_mmio(vcpu->kvm, gpa, a->kind == CPU_WRITE);
		res->outcome = CPU_MMIO_EXIT;
		return;
	}
	res->outcome = CPU_OK;
	vcpu->kvm->mmu->stat_pf_emulate++;
	if (a->kind != CPU_WRITE)
		return;
	if (a->data)
		host_write(vcpu->kvm->host, hva + (gpa & ~PAGE_MASK), a->data, a->size);
	/* emulator_write_phys marks the page dirty even when the bytes do not change. */
	kvm_vcpu_mark_page_dirty(vcpu, gpa >> PAGE_SHIFT);
	kvm_mmu_pte_write(vcpu, gpa, a->data, (int)a->size);
}

void kvm_vcpu_access(struct kvm_vcpu *vcpu, const struct cpu_access *a, struct cpu_access_result *res)
{
	memset(res, 0, sizeof(*res));
	vcpu->arch.cpl = a->cpl;
	if (is_noncanonical_address(a->gva, vcpu)) {
		res->outcome = CPU_GP_FAULT;
		return;
	}
	for (res->faults = 0; res->faults < CPU_MAX_FAULTS; res->faults++) {
		struct x86_exception fault;
		uint32_t error_code;
		int r;

		if (!kvm_vcpu_enter_guest(vcpu)) {
			res->outcome = vcpu->kvm->error.set ? CPU_MODEL_ERROR : CPU_SHUTDOWN;
			return;
		}
		if (hw_access(vcpu, a, res, &error_code))
			return;
		r = kvm_mmu_page_fault(vcpu, a->gva, error_code, &fault);
		if (vcpu->kvm->error.set || r < 0) {
			res->outcome = CPU_MODEL_ERROR;
			return;
		}
		if (fault.vector == PF_VECTOR) {
			res->outcome = CPU_PAGE_FAULT;
			res->error_code = fault.error_code;
			res->cr2 = fault.address;
			return;
		}
		if (r == RET_PF_EMULATE) {
			emulate_access(vcpu, a, res);
			return;
		}
	}
	res->outcome = CPU_LIVELOCK;
}
