#include <string.h>

#include "mmu.h"
#include "mmu_observe.h"

struct observe_walk {
	struct kvm *kvm;
	struct kvm_vcpu *vcpu;
	uint64_t cr3;
	bool cached_root;
	bool reload_pending;
	bool sync_pending;
	int va_bits; /* 48 or 57: sign-extension of the gva in 64-bit shadows; 32 otherwise */
	void (*fn)(void *ctx, const struct kvm_translation *t);
	void *ctx;
};

static gva_t canonical(const struct observe_walk *w, uint64_t gva)
{
	if (w->va_bits == 32)
		return gva;
	return (uint64_t)((int64_t)(gva << (64 - w->va_bits)) >> (64 - w->va_bits));
}

static void report_leaf(struct observe_walk *w, struct kvm_mmu_page *sp, int index, uint64_t gva)
{
	const struct spte_params *p = &w->kvm->mmu->spte;
	uint64_t spte = sp->spt[index];
	struct kvm_translation t = {
		.vcpu_id = w->vcpu->vcpu_id,
		.as_id = sp->role.smm ? 1 : 0,
		.cr3 = w->cr3,
		.gva = canonical(w, gva),
		.level = sp->role.level,
		.unsync = sp->unsync,
		.cached_root = w->cached_root,
		.reload_pending = w->reload_pending,
		.sync_pending = w->sync_pending,
	};

	if (is_mmio_spte(p, spte) && shadow_mmio_sptes_fault_rsvd(p)) {
		/* An MMIO spte of an older generation is not a translation: the MMIO fault path
		 * rechecks it on use (check_mmio_spte) and rebuilds it. */
		if (!check_mmio_spte(p, spte, w->kvm->memslots[t.as_id]->generation))
			return;
		t.mmio = true;
		t.gpa = get_mmio_spte_gfn(p, spte) << PAGE_SHIFT;
		t.access = get_mmio_spte_access(p, spte);
	} else {
		t.gpa = kvm_mmu_page_get_gfn(sp, index) << PAGE_SHIFT;
		t.pfn = spte_to_pfn(spte);
		t.access = spte_access(spte);
	}
	w->fn(w->ctx, &t);
}

/* What the hardware (or KVM's MMIO fast path) can use at a leaf position: an MMIO spte
 * that faults with RSVD, or any entry with the present bit, even one KVM meant as MMIO
 * (on a 52-bit host MMIO sptes have no present bit and fault as not present). */
static bool hardware_leaf(const struct spte_params *p, uint64_t spte, int level)
{
	if (is_mmio_spte(p, spte))
		return shadow_mmio_sptes_fault_rsvd(p) || (spte & PT_PRESENT_MASK);
	return is_shadow_present_pte(p, spte) && is_last_spte(spte, level);
}

static void walk_page(struct observe_walk *w, struct kvm_mmu_page *sp, uint64_t base);

static void visit_spte(struct observe_walk *w, struct kvm_mmu_page *sp, int i, uint64_t base)
{
	const struct spte_params *p = &w->kvm->mmu->spte;
	uint64_t spte = sp->spt[i];
	uint64_t gva = base + ((uint64_t)i << (PAGE_SHIFT + 9 * (sp->role.level - 1)));

	if (hardware_leaf(p, spte, sp->role.level)) {
		report_leaf(w, sp, i, gva);
		return;
	}
	if (is_shadow_present_pte(p, spte)) {
		struct kvm_mmu_page *child = page_header(w->kvm, spte & PT64_BASE_ADDR_MASK);

		if (child)
			walk_page(w, child, gva);
	}
}

/* Whether the 8 sptes from spt on are all zero: not present, and no MMIO spte (the MMIO
 * value always has SPTE_SPECIAL_MASK), so there is nothing to report or descend into.
 * Most of a shadow page is zero; one test per 8 skips it quickly. */
static bool zero_block(const uint64_t *spt)
{
	uint64_t any = 0;

	for (int i = 0; i < 8; i++)
		any |= spt[i];
	return !any;
}

static void walk_page(struct observe_walk *w, struct kvm_mmu_page *sp, uint64_t base)
{
	for (int block = 0; block < SPTES_PER_PAGE; block += 8) {
		if (zero_block(&sp->spt[block]))
			continue;
		for (int i = block; i < block + 8; i++)
			visit_spte(w, sp, i, base);
	}
}

static void walk_root(struct observe_walk *w, hpa_t root, uint64_t cr3, bool cached)
{
	struct kvm_mmu *mmu = &w->vcpu->mmu;

	if (!VALID_PAGE(root))
		return;
	w->cr3 = cr3;
	w->cached_root = cached;
	if (root == mmu->pae_root_hpa) {
		w->va_bits = 32;
		for (int i = 0; i < 4; i++) {
			struct kvm_mmu_page *sp;

			if (!(mmu->pae_root[i] & PT_PRESENT_MASK) || !VALID_PAGE(mmu->pae_root[i]))
				continue;
			sp = page_header(w->kvm, mmu->pae_root[i] & PT64_BASE_ADDR_MASK);
			if (sp)
				walk_page(w, sp, (uint64_t)i << 30);
		}
		return;
	}
	{
		struct kvm_mmu_page *sp = page_header(w->kvm, root);

		if (!sp)
			return;
		w->va_bits = sp->role.level == PT64_ROOT_5LEVEL ? 57 : 48;
		walk_page(w, sp, 0);
	}
}

static void report_tlb(struct observe_walk *w, const struct hw_tlb_entry *e)
{
	struct kvm_translation t = {
		.from_tlb = true,
		.vcpu_id = w->vcpu->vcpu_id,
		.as_id = w->vcpu->arch.smm ? 1 : 0,
		.cr3 = e->cr3,
		.gva = e->gva,
		.level = e->level,
		.gpa = e->gfn << PAGE_SHIFT,
		.pfn = e->pfn,
		.access = e->access,
	};

	w->fn(w->ctx, &t);
}

/* A walk of vcpu's translations, flagged with the requests that decide how they count. */
static struct observe_walk vcpu_walk(struct kvm_vcpu *vcpu,
				     void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx)
{
	return (struct observe_walk){
		.kvm = vcpu->kvm,
		.vcpu = vcpu,
		.fn = fn,
		.ctx = ctx,
		.reload_pending = vcpu->requests & KVM_REQ_MMU_RELOAD,
		.sync_pending = vcpu->requests & KVM_REQ_MMU_SYNC,
	};
}

void kvm_mmu_for_each_root_translation(struct kvm_vcpu *vcpu,
				       void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx)
{
	struct observe_walk w = vcpu_walk(vcpu, fn, ctx);

	walk_root(&w, vcpu->mmu.root_hpa, vcpu->mmu.root_cr3, false);
}

void kvm_mmu_for_each_translation(struct kvm *kvm,
				  void (*fn)(void *ctx, const struct kvm_translation *t), void *ctx)
{
	for (int v = 0; v < kvm->nr_vcpus; v++) {
		struct observe_walk w = vcpu_walk(&kvm->vcpus[v], fn, ctx);
		struct kvm_mmu *mmu = &w.vcpu->mmu;

		walk_root(&w, mmu->root_hpa, mmu->root_cr3, false);
		/* A vCPU with a reload pending frees all its roots before it runs the guest
		 * again (vcpu_enter_guest -> kvm_mmu_unload); until then a root zapped under
		 * it may still gain sptes from another vCPU's fault path, which no hardware
		 * walk will see (found by shadowfuzz). Its current root is reported flagged,
		 * for the TLB history only; its cached roots and TLB not at all. */
		if (w.reload_pending)
			continue;
		for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
			walk_root(&w, mmu->prev_roots[i].hpa, mmu->prev_roots[i].cr3, true);
		/* A pending flush request makes the TLB unusable: KVM's remote flush kicks the
		 * vCPU, and it flushes before it runs the guest again (vcpu_enter_guest); so does
		 * a vCPU without a root, since kvm_mmu_load flushes. */
		if ((w.vcpu->requests & KVM_REQ_TLB_FLUSH) || !VALID_PAGE(mmu->root_hpa))
			continue;
		for (int i = 0; i < w.vcpu->tlb.n; i++)
			report_tlb(&w, &w.vcpu->tlb.entries[i]);
	}
}

static void add_walk_step(struct kvm_vcpu *vcpu, struct kvm_shadow_walk *out, int level,
			  unsigned index, const uint64_t *sptep)
{
	struct kvm_shadow_walk_step *step = &out->steps[out->n++];
	struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, sptep);

	*step = (struct kvm_shadow_walk_step){
		.level = level,
		.index = index,
		.spte = *sptep,
		.table_hpa = sp ? sp->hpa : vcpu->mmu.pae_root_hpa,
		.has_sp = sp != NULL,
	};
	if (sp) {
		step->gfn = sp->gfn;
		step->role = sp->role;
	}
}

void kvm_mmu_shadow_walk(struct kvm_vcpu *vcpu, gva_t gva, struct kvm_shadow_walk *out)
{
	const struct spte_params *p = &vcpu->kvm->mmu->spte;
	struct kvm_shadow_walk_iterator it;

	memset(out, 0, sizeof(*out));
	out->root_hpa = vcpu->mmu.root_hpa;
	if (!VALID_PAGE(out->root_hpa))
		return;
	/* shadow_walk_init reads the PAE root entry itself; show it as a step. */
	if (vcpu->mmu.shadow_root_level == PT32E_ROOT_LEVEL)
		add_walk_step(vcpu, out, PT32E_ROOT_LEVEL, (gva >> 30) & 3,
			      &vcpu->mmu.pae_root[(gva >> 30) & 3]);
	for (shadow_walk_init(&it, vcpu, gva); shadow_walk_okay(&it, vcpu); shadow_walk_next(&it)) {
		add_walk_step(vcpu, out, it.level, it.index, it.sptep);
		if (!is_shadow_present_pte(p, *it.sptep))
			break;
	}
}
