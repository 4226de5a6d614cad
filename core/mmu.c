/* The shadow MMU (arch/x86/kvm/mmu.c): shadow pages and their hash, reverse maps, page
 * tracking of shadowed guest tables, kvm_mmu_get_page, set_spte / mmu_set_spte, zapping,
 * roots, and the MMIO sptes. The guest-mode dependent parts of the fault path are in
 * paging_tmpl.h; the simulated CPU that walks the shadow tables is in vcpu_access.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmu.h"

/* ---- model errors and flushes ---- */

void kvm_model_error(struct kvm *kvm, const char *fmt, ...)
{
	va_list ap;

	if (kvm->error.set)
		return;
	kvm->error.set = true;
	va_start(ap, fmt);
	vsnprintf(kvm->error.what, sizeof(kvm->error.what), fmt, ap);
	va_end(ap);
}

void kvm_model_warn(struct kvm *kvm, enum kvm_warning_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (kvm->warning.set)
		return;
	kvm->warning.set = true;
	kvm->warning.kind = kind;
	va_start(ap, fmt);
	vsnprintf(kvm->warning.what, sizeof(kvm->warning.what), fmt, ap);
	va_end(ap);
}

void kvm_flush_remote_tlbs(struct kvm *kvm)
{
	/* KVM counts only flushes that kicked another CPU; the model's vCPUs are never in
	 * guest mode elsewhere, so every call counts. */
	kvm->stat.remote_tlb_flush++;
	trace_kvm_flush_remote_tlbs(kvm);
	for (int i = 0; i < kvm->nr_vcpus; i++)
		kvm->vcpus[i].requests |= KVM_REQ_TLB_FLUSH;
}

static void kvm_reload_remote_mmus(struct kvm *kvm)
{
	for (int i = 0; i < kvm->nr_vcpus; i++)
		kvm->vcpus[i].requests |= KVM_REQ_MMU_RELOAD;
}

/* ---- the shadow page arena ---- */

struct kvm_mmu_page *page_header(const struct kvm *kvm, hpa_t hpa)
{
	uint64_t index = (hpa - SHADOW_HPA_BASE) >> PAGE_SHIFT;

	if (hpa < SHADOW_HPA_BASE || index >= kvm->mmu->nr_pages)
		return NULL;
	return kvm->mmu->pages[index];
}

/* page_header(__pa(sptep)): shadow page tables are page-aligned, and an open-addressing
 * table maps each table's address to its page. NULL for a vCPU's pae_root. */
static size_t spt_slot(uintptr_t base, size_t cap)
{
	return (size_t)((base >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ull) & (cap - 1);
}

struct kvm_mmu_page *sptep_to_sp(const struct kvm *kvm, const uint64_t *sptep)
{
	const struct kvm_arch_mmu *arch = kvm->mmu;
	uintptr_t base = (uintptr_t)sptep & ~(uintptr_t)(PAGE_SIZE - 1);

	if (!arch->spt_index_cap)
		return NULL;
	for (size_t i = spt_slot(base, arch->spt_index_cap);; i = (i + 1) & (arch->spt_index_cap - 1)) {
		struct kvm_mmu_page *sp = arch->spt_index[i];

		if (!sp)
			return NULL;
		if ((uintptr_t)sp->spt == base)
			return sp;
	}
}

static void spt_index_insert(struct kvm_mmu_page **table, size_t cap, struct kvm_mmu_page *sp)
{
	size_t i = spt_slot((uintptr_t)sp->spt, cap);

	while (table[i])
		i = (i + 1) & (cap - 1);
	table[i] = sp;
}

/* Keep the index at most half full. */
static int spt_index_reserve(struct kvm_arch_mmu *arch, size_t pages)
{
	size_t cap = arch->spt_index_cap ? arch->spt_index_cap : 512;
	struct kvm_mmu_page **table;

	if (2 * pages <= arch->spt_index_cap)
		return 0;
	while (2 * pages > cap)
		cap *= 2;
	table = calloc(cap, sizeof(*table));
	if (!table)
		return -ENOMEM;
	for (size_t i = 0; i < arch->nr_pages; i++)
		spt_index_insert(table, cap, arch->pages[i]);
	free(arch->spt_index);
	arch->spt_index = table;
	arch->spt_index_cap = cap;
	return 0;
}

static struct kvm_mmu_page *arena_new_page(struct kvm_arch_mmu *arch)
{
	struct kvm_mmu_page *sp;

	if (spt_index_reserve(arch, arch->nr_pages + 1))
		return NULL;
	if (arch->nr_pages == arch->pages_cap) {
		size_t cap = arch->pages_cap ? 2 * arch->pages_cap : 256;
		struct kvm_mmu_page **grown = realloc(arch->pages, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		arch->pages = grown;
		arch->pages_cap = cap;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->spt = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	sp->gfns = calloc(SPTES_PER_PAGE, sizeof(*sp->gfns));
	if (!sp->spt || !sp->gfns) {
		free(sp->spt);
		free(sp->gfns);
		free(sp);
		return NULL;
	}
	sp->hpa = SHADOW_HPA_BASE + (hpa_t)arch->nr_pages * PAGE_SIZE;
	arch->pages[arch->nr_pages++] = sp;
	spt_index_insert(arch->spt_index, arch->spt_index_cap, sp);
	return sp;
}

/* kvm_mmu_alloc_page: a zeroed page at the head of active_mmu_pages. */
static struct kvm_mmu_page *kvm_mmu_alloc_page(struct kvm *kvm, bool direct)
{
	struct kvm_arch_mmu *arch = kvm->mmu;
	struct kvm_mmu_page *sp = TAILQ_FIRST(&arch->free_pages);
	uint64_t *spt;
	gfn_t *gfns;
	hpa_t hpa;

	if (sp)
		TAILQ_REMOVE(&arch->free_pages, sp, link);
	else
		sp = arena_new_page(arch);
	if (!sp) {
		kvm_model_error(kvm, "out of memory for shadow pages");
		return NULL;
	}
	spt = sp->spt;
	gfns = sp->gfns;
	hpa = sp->hpa;
	memset(sp, 0, sizeof(*sp));
	sp->spt = spt;
	sp->gfns = gfns;
	sp->hpa = hpa;
	memset(spt, 0, SPTES_PER_PAGE * sizeof(*spt));
	if (!direct)
		memset(gfns, 0, SPTES_PER_PAGE * sizeof(*gfns));
	TAILQ_INSERT_HEAD(&arch->active_mmu_pages, sp, link);
	arch->n_used_mmu_pages++; /* kvm_mod_used_mmu_pages */
	return sp;
}

static void kvm_mmu_free_page(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	TAILQ_REMOVE(&kvm->mmu->active_mmu_pages, sp, link);
	if (sp->on_hash)
		LIST_REMOVE(sp, hash_link);
	sp->on_hash = false;
	TAILQ_INSERT_TAIL(&kvm->mmu->free_pages, sp, link);
}

int kvm_mmu_create(struct kvm *kvm)
{
	kvm->mmu = calloc(1, sizeof(*kvm->mmu));
	if (!kvm->mmu)
		return -ENOMEM;
	TAILQ_INIT(&kvm->mmu->active_mmu_pages);
	TAILQ_INIT(&kvm->mmu->free_pages);
	pte_list_cache_init(&kvm->mmu->pte_cache);
	kvm_mmu_reset_vm(kvm);
	return 0;
}

void kvm_mmu_destroy(struct kvm *kvm)
{
	struct kvm_arch_mmu *arch = kvm->mmu;

	if (!arch)
		return;
	for (size_t i = 0; i < arch->nr_pages; i++) {
		free(arch->pages[i]->spt);
		free(arch->pages[i]->gfns);
		free(arch->pages[i]);
	}
	free(arch->pages);
	free(arch->spt_index);
	pte_list_cache_destroy(&arch->pte_cache);
	free(arch);
	kvm->mmu = NULL;
}

void init_vcpu_mmu(struct kvm *kvm, struct kvm_vcpu *vcpu)
{
	struct kvm_mmu *mmu = &vcpu->mmu;

	mmu->root_hpa = INVALID_PAGE;
	mmu->root_cr3 = 0;
	mmu->pae_root = kvm->mmu->pae_roots[vcpu->vcpu_id];
	mmu->pae_root_hpa = PAE_ROOT_HPA_BASE + (hpa_t)vcpu->vcpu_id * PAGE_SIZE;
	memset(mmu->pae_root, 0, 4 * sizeof(uint64_t));
	for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
		mmu->prev_roots[i] = (struct kvm_mmu_root_info){ 0, INVALID_PAGE };
}

void kvm_mmu_reset_vm(struct kvm *kvm)
{
	struct kvm_arch_mmu *arch = kvm->mmu;
	struct kvm_mmu_page *sp;

	while ((sp = TAILQ_FIRST(&arch->active_mmu_pages)))
		kvm_mmu_free_page(kvm, sp);
	for (int i = 0; i < KVM_NUM_MMU_PAGES; i++)
		LIST_INIT(&arch->mmu_page_hash[i]);
	pte_list_cache_reset(&arch->pte_cache);
	spte_params_init(&arch->spte, &kvm->config);
	arch->n_used_mmu_pages = 0;
	arch->n_max_mmu_pages = arch->n_requested_mmu_pages = 0;
	arch->indirect_shadow_pages = 0;
	arch->mmu_valid_gen = 0;
	arch->stat_pf_fixed = arch->stat_pf_emulate = arch->stat_enospc = 0;
	memset(&kvm->error, 0, sizeof(kvm->error));
	memset(&kvm->warning, 0, sizeof(kvm->warning));
	for (int i = 0; i < kvm->nr_vcpus; i++)
		init_vcpu_mmu(kvm, &kvm->vcpus[i]);
}

/* ---- hash and iteration ---- */

/* hash_64(gfn, KVM_MMU_HASH_SHIFT) (114df303a7ee). */
static unsigned kvm_page_table_hashfn(gfn_t gfn)
{
	return (unsigned)((gfn * 0x61c8864680b583ebull) >> (64 - KVM_MMU_HASH_SHIFT));
}

/* K420 and K53 keep fast invalidate: pages of an older mmu_valid_gen are obsolete. */
static bool profile_has_fast_invalidate(const struct kvm *kvm)
{
	return kvm->config.profile != KVM_PROFILE_5_1;
}

bool is_obsolete_sp(const struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	return profile_has_fast_invalidate(kvm) && sp->mmu_valid_gen != kvm->mmu->mmu_valid_gen;
}

/* for_each_valid_sp: skips invalid and (fast-invalidate profiles) obsolete pages. */
#define for_each_valid_sp(_kvm, _sp, _gfn)                                                  \
	LIST_FOREACH(_sp, &(_kvm)->mmu->mmu_page_hash[kvm_page_table_hashfn(_gfn)], hash_link) \
		if ((_sp)->role.invalid || is_obsolete_sp(_kvm, _sp)) {                      \
		} else

#define for_each_gfn_indirect_valid_sp(_kvm, _sp, _gfn) \
	for_each_valid_sp(_kvm, _sp, _gfn) if ((_sp)->gfn != (_gfn) || (_sp)->role.direct) { \
	} else

gfn_t kvm_mmu_page_get_gfn(const struct kvm_mmu_page *sp, int index)
{
	if (!sp->role.direct)
		return sp->gfns[index];
	return sp->gfn + ((gfn_t)index << ((sp->role.level - 1) * 9));
}

static void kvm_mmu_page_set_gfn(struct kvm *kvm, struct kvm_mmu_page *sp, int index, gfn_t gfn)
{
	if (!sp->role.direct) {
		sp->gfns[index] = gfn;
		return;
	}
	if (gfn != kvm_mmu_page_get_gfn(sp, index))
		kvm_model_error(kvm, "direct page gfn %#llx != expected at index %d",
				(unsigned long long)gfn, index);
}

/* ---- sptes and reverse maps ---- */

static bool present(const struct kvm *kvm, uint64_t spte)
{
	return is_shadow_present_pte(&kvm->mmu->spte, spte);
}

static struct kvm_memslots *kvm_memslots_for_spte_role(struct kvm *kvm, union kvm_mmu_page_role role)
{
	return kvm->memslots[role.smm ? 1 : 0];
}

/* An index past the slot's arrays (bug B17) is where KVM corrupts memory: a model error,
 * and a scratch entry so the model itself stays sound. */
static struct kvm_rmap_head *__gfn_to_rmap(struct kvm *kvm, gfn_t gfn, int level,
					   const struct kvm_memory_slot *slot)
{
	uint64_t idx = gfn_to_index(gfn, slot->base_gfn, level);

	if (idx >= slot->arch.nr_frames[level - 1]) {
		kvm_model_error(kvm, "rmap index %llu beyond the %llu entries of slot %d (level %d)",
				(unsigned long long)idx,
				(unsigned long long)slot->arch.nr_frames[level - 1], slot->id, level);
		kvm->mmu->scratch_rmap.val = 0;
		return &kvm->mmu->scratch_rmap;
	}
	return &slot->arch.rmap[level - PT_PAGE_TABLE_LEVEL][idx];
}

static struct kvm_lpage_info *lpage_info(struct kvm *kvm, gfn_t gfn, const struct kvm_memory_slot *slot,
					 int level)
{
	struct kvm_lpage_info *linfo = lpage_info_slot(gfn, slot, level);

	if (linfo)
		return linfo;
	kvm_model_error(kvm, "lpage_info index beyond the arrays of slot %d (level %d)", slot->id, level);
	kvm->mmu->scratch_lpage.disallow_lpage = 0;
	return &kvm->mmu->scratch_lpage;
}

/* gfn_to_rmap: through the *current* memslots of the page's address space. KVM would
 * dereference NULL when the gfn lost its slot (bug B9 variants): a model error here. */
static struct kvm_rmap_head *gfn_to_rmap(struct kvm *kvm, gfn_t gfn, const struct kvm_mmu_page *sp)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_memslots_for_spte_role(kvm, sp->role), gfn);

	if (!slot) {
		kvm_model_error(kvm, "rmap of gfn %#llx without a memslot (NULL dereference in KVM)",
				(unsigned long long)gfn);
		return NULL;
	}
	return __gfn_to_rmap(kvm, gfn, sp->role.level, slot);
}

static int rmap_add(struct kvm_vcpu *vcpu, uint64_t *sptep, gfn_t gfn)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_mmu_page *sp = sptep_to_sp(kvm, sptep);
	struct kvm_rmap_head *rmap_head;

	kvm_mmu_page_set_gfn(kvm, sp, (int)(sptep - sp->spt), gfn);
	rmap_head = gfn_to_rmap(kvm, gfn, sp);
	if (!rmap_head)
		return 0;
	return pte_list_add(&kvm->mmu->pte_cache, sptep, rmap_head);
}

static void rmap_remove(struct kvm *kvm, uint64_t *sptep)
{
	struct kvm_mmu_page *sp = sptep_to_sp(kvm, sptep);
	gfn_t gfn = kvm_mmu_page_get_gfn(sp, (int)(sptep - sp->spt));
	struct kvm_rmap_head *rmap_head = gfn_to_rmap(kvm, gfn, sp);

	if (rmap_head && pte_list_remove(&kvm->mmu->pte_cache, sptep, rmap_head))
		kvm_model_error(kvm, "spte %p missing from the rmap of gfn %#llx", (void *)sptep,
				(unsigned long long)gfn);
}

/* mmu_spte_update: whether the change needs a remote TLB flush (spec §2.3 step 6). */
static bool mmu_spte_update(struct kvm *kvm, uint64_t *sptep, uint64_t new_spte)
{
	uint64_t old_spte = *sptep;

	*sptep = new_spte;
	if (!present(kvm, old_spte))
		return false;
	if (spte_can_locklessly_be_made_writable(old_spte) && !is_writable_pte(new_spte))
		return true;
	if (is_accessed_spte(old_spte) && !is_accessed_spte(new_spte))
		return true;
	return is_dirty_spte(old_spte) && !is_dirty_spte(new_spte);
}

/* mmu_spte_clear_track_bits: clear; true if a present spte was dropped. */
static bool mmu_spte_clear_track_bits(struct kvm *kvm, uint64_t *sptep)
{
	uint64_t old_spte = *sptep;

	*sptep = 0;
	return present(kvm, old_spte);
}

static void drop_spte(struct kvm *kvm, uint64_t *sptep)
{
	if (mmu_spte_clear_track_bits(kvm, sptep))
		rmap_remove(kvm, sptep);
}

void kvm_mmu_drop_spte(struct kvm *kvm, uint64_t *sptep)
{
	drop_spte(kvm, sptep);
}

/* spte_write_protect: clear W (and MMU_WRITEABLE with pt_protect); true if flush needed. */
static bool spte_write_protect(struct kvm *kvm, uint64_t *sptep, bool pt_protect)
{
	uint64_t spte = *sptep;

	if (!is_writable_pte(spte) && !(pt_protect && spte_can_locklessly_be_made_writable(spte)))
		return false;
	if (pt_protect)
		spte &= ~SPTE_MMU_WRITEABLE;
	spte &= ~PT_WRITABLE_MASK;
	return mmu_spte_update(kvm, sptep, spte);
}

static bool __rmap_write_protect(struct kvm *kvm, struct kvm_rmap_head *rmap_head, bool pt_protect)
{
	struct rmap_iterator iter;
	uint64_t *sptep;
	bool flush = false;

	for_each_rmap_spte(rmap_head, &iter, sptep)
		flush |= spte_write_protect(kvm, sptep, pt_protect);
	return flush;
}

/* kvm_mmu_slot_gfn_write_protect: every level's rmap of gfn. */
static bool kvm_mmu_slot_gfn_write_protect(struct kvm *kvm, struct kvm_memory_slot *slot, gfn_t gfn)
{
	bool write_protected = false;

	for (int level = PT_PAGE_TABLE_LEVEL; level <= PT_PDPE_LEVEL; level++)
		write_protected |= __rmap_write_protect(kvm, __gfn_to_rmap(kvm, gfn, level, slot), true);
	if (write_protected)
		trace_rmap_write_protect(kvm, gfn);
	return write_protected;
}

static bool rmap_write_protect(struct kvm_vcpu *vcpu, gfn_t gfn)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	return slot && kvm_mmu_slot_gfn_write_protect(vcpu->kvm, slot, gfn);
}

/* ---- parent links ---- */

static void mmu_page_add_parent_pte(struct kvm *kvm, struct kvm_mmu_page *sp, uint64_t *parent_pte)
{
	pte_list_add(&kvm->mmu->pte_cache, parent_pte, &sp->parent_ptes);
}

static void mmu_page_remove_parent_pte(struct kvm *kvm, struct kvm_mmu_page *sp, uint64_t *parent_pte)
{
	if (pte_list_remove(&kvm->mmu->pte_cache, parent_pte, &sp->parent_ptes))
		kvm_model_error(kvm, "parent pte %p not linked to page gfn %#llx", (void *)parent_pte,
				(unsigned long long)sp->gfn);
}

/* drop_parent_pte: unlink and clear (mmu_spte_clear_no_track). */
static void drop_parent_pte(struct kvm *kvm, struct kvm_mmu_page *sp, uint64_t *parent_pte)
{
	mmu_page_remove_parent_pte(kvm, sp, parent_pte);
	*parent_pte = 0;
}

static void mark_unsync(struct kvm *kvm, uint64_t *spte);

void link_shadow_page(struct kvm_vcpu *vcpu, uint64_t *sptep, struct kvm_mmu_page *sp)
{
	/* Links are fully permissive: permissions live in the leaves (spec §2.2). */
	*sptep = sp->hpa | PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK;
	mmu_page_add_parent_pte(vcpu->kvm, sp, sptep);
	if (sp->unsync_children || sp->unsync)
		mark_unsync(vcpu->kvm, sptep);
}

static struct kvm_mmu_page *child_of(const struct kvm *kvm, uint64_t spte)
{
	return page_header(kvm, spte & PT64_BASE_ADDR_MASK);
}

void drop_large_spte(struct kvm_vcpu *vcpu, uint64_t *sptep)
{
	if (!present(vcpu->kvm, *sptep) || !is_large_pte(*sptep))
		return;
	drop_spte(vcpu->kvm, sptep);
	kvm_flush_remote_tlbs(vcpu->kvm);
}

void validate_direct_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned direct_access)
{
	struct kvm_mmu_page *child;

	if (!present(vcpu->kvm, *sptep) || is_large_pte(*sptep))
		return;
	/* A guest pte that went from clean to dirty changes the access of the direct page
	 * below it: unlink the old one so a page with the right access is built. */
	child = child_of(vcpu->kvm, *sptep);
	if (!child || child->role.access == direct_access)
		return;
	drop_parent_pte(vcpu->kvm, child, sptep);
	kvm_flush_remote_tlbs(vcpu->kvm);
}

void clear_sp_write_flooding_count(struct kvm_vcpu *vcpu, uint64_t *sptep)
{
	struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, sptep);

	if (sp)
		sp->write_flooding_count = 0;
}

/* ---- page tracking of shadowed guest tables (page_track.c, account_shadowed) ---- */

static void update_gfn_track(struct kvm *kvm, struct kvm_memory_slot *slot, gfn_t gfn, int count)
{
	uint64_t index = gfn_to_index(gfn, slot->base_gfn, PT_PAGE_TABLE_LEVEL);
	int val = slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][index] + count;

	if (val < 0 || val > 0xffff) {
		kvm_model_error(kvm, "gfn_track of %#llx would become %d", (unsigned long long)gfn, val);
		return;
	}
	slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][index] = (uint16_t)val;
}

static void update_gfn_disallow_lpage(struct kvm *kvm, struct kvm_memory_slot *slot, gfn_t gfn, int count)
{
	for (int level = PT_DIRECTORY_LEVEL; level <= PT_PDPE_LEVEL; level++) {
		struct kvm_lpage_info *linfo = lpage_info(kvm, gfn, slot, level);

		linfo->disallow_lpage += count;
		if (linfo->disallow_lpage < 0)
			kvm_model_error(kvm, "disallow_lpage of %#llx went negative", (unsigned long long)gfn);
	}
}

static struct kvm_memory_slot *slot_for_sp(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_memslots_for_spte_role(kvm, sp->role), sp->gfn);

	if (!slot)
		kvm_model_error(kvm, "shadowed gfn %#llx has no memslot (NULL dereference in KVM)",
				(unsigned long long)sp->gfn);
	return slot;
}

/* account_shadowed: level > 1 tables become write-tracked (kvm_slot_page_track_add_page),
 * level-1 tables only stop large pages; spec §5.2. */
static void account_shadowed(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	struct kvm_memory_slot *slot;

	kvm->mmu->indirect_shadow_pages++;
	slot = slot_for_sp(kvm, sp);
	if (!slot)
		return;
	update_gfn_disallow_lpage(kvm, slot, sp->gfn, 1);
	if (sp->role.level == PT_PAGE_TABLE_LEVEL)
		return;
	update_gfn_track(kvm, slot, sp->gfn, 1);
	if (kvm_mmu_slot_gfn_write_protect(kvm, slot, sp->gfn))
		kvm_flush_remote_tlbs(kvm);
}

static void unaccount_shadowed(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	struct kvm_memory_slot *slot;

	kvm->mmu->indirect_shadow_pages--;
	slot = slot_for_sp(kvm, sp);
	if (!slot)
		return;
	update_gfn_disallow_lpage(kvm, slot, sp->gfn, -1);
	if (sp->role.level > PT_PAGE_TABLE_LEVEL)
		update_gfn_track(kvm, slot, sp->gfn, -1);
}

bool kvm_page_track_is_active(struct kvm_vcpu *vcpu, gfn_t gfn)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	if (!slot)
		return false;
	return slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][gfn_to_index(gfn, slot->base_gfn, 1)] != 0;
}

static bool mmu_gfn_lpage_is_disallowed(struct kvm_vcpu *vcpu, gfn_t gfn, int level)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	return !slot || lpage_info(vcpu->kvm, gfn, slot, level)->disallow_lpage;
}

/* ---- zapping ---- */

bool mmu_page_zap_pte(struct kvm *kvm, struct kvm_mmu_page *sp, uint64_t *spte)
{
	uint64_t pte = *spte;

	if (!present(kvm, pte)) {
		*spte = 0; /* MMIO spte */
		return false;
	}
	if (is_last_spte(pte, sp->role.level)) {
		drop_spte(kvm, spte);
		return true;
	}
	drop_parent_pte(kvm, child_of(kvm, pte), spte);
	return true;
}

static void kvm_mmu_page_unlink_children(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	for (int i = 0; i < SPTES_PER_PAGE; i++)
		mmu_page_zap_pte(kvm, sp, sp->spt + i);
}

static void kvm_mmu_unlink_parents(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	struct rmap_iterator iter;
	uint64_t *sptep;

	while ((sptep = rmap_get_first(&sp->parent_ptes, &iter)))
		drop_parent_pte(kvm, sp, sptep);
}

/* ---- unsync bookkeeping (spec §5.3, §5.5) ---- */

static void kvm_mmu_mark_parents_unsync(struct kvm *kvm, struct kvm_mmu_page *sp);

static bool test_and_set_unsync_bit(struct kvm_mmu_page *sp, unsigned index)
{
	uint64_t bit = 1ull << (index % 64), *word = &sp->unsync_child_bitmap[index / 64];
	bool was_set = *word & bit;

	*word |= bit;
	return was_set;
}

static bool unsync_bit(const struct kvm_mmu_page *sp, unsigned index)
{
	return (sp->unsync_child_bitmap[index / 64] >> (index % 64)) & 1;
}

/* mark_unsync: the parent spte's bit; a page's first unsync child marks its own parents. */
static void mark_unsync(struct kvm *kvm, uint64_t *spte)
{
	struct kvm_mmu_page *sp = sptep_to_sp(kvm, spte);

	if (!sp || test_and_set_unsync_bit(sp, (unsigned)(spte - sp->spt)))
		return;
	if (sp->unsync_children++)
		return;
	kvm_mmu_mark_parents_unsync(kvm, sp);
}

static void kvm_mmu_mark_parents_unsync(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	struct rmap_iterator iter;
	uint64_t *sptep;

	for_each_rmap_spte(&sp->parent_ptes, &iter, sptep)
		mark_unsync(kvm, sptep);
}

static void kvm_unsync_page(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	trace_kvm_mmu_unsync_page(kvm, sp);
	kvm->stat.mmu_unsync++;
	kvm->stat.mmu_unsync_total++;
	sp->unsync = true;
	kvm_mmu_mark_parents_unsync(kvm, sp);
}

static void kvm_unlink_unsync_page(struct kvm *kvm, struct kvm_mmu_page *sp)
{
	trace_kvm_mmu_sync_page(kvm, sp);
	sp->unsync = false;
	kvm->stat.mmu_unsync--;
}

/* struct kvm_mmu_pages: a batch of the unsync walk, parents before their children. */
#define KVM_PAGE_ARRAY_NR 16
#define INVALID_INDEX (-1)

struct kvm_mmu_pages {
	struct {
		struct kvm_mmu_page *sp;
		int idx; /* index of the spte linking sp in its parent */
	} page[KVM_PAGE_ARRAY_NR];
	int nr;
};

/* The path from the walk's top page to the current level-1 page: parent[l - 1] is the
 * level-(l + 1) page, idx[l - 1] the index of the level-l page in it. */
struct mmu_page_path {
	struct kvm_mmu_page *parent[PT64_ROOT_MAX_LEVEL];
	int idx[PT64_ROOT_MAX_LEVEL];
};

/* mmu_pages_add: true when the batch is full. An unsync page is added once. */
static bool mmu_pages_add(struct kvm_mmu_pages *pvec, struct kvm_mmu_page *sp, int idx)
{
	for (int i = 0; sp->unsync && i < pvec->nr; i++)
		if (pvec->page[i].sp == sp)
			return false;
	pvec->page[pvec->nr].sp = sp;
	pvec->page[pvec->nr].idx = idx;
	return ++pvec->nr == KVM_PAGE_ARRAY_NR;
}

static void clear_unsync_child_bit(struct kvm *kvm, struct kvm_mmu_page *sp, int idx)
{
	if (!sp->unsync_children)
		kvm_model_error(kvm, "unsync_children underflow in page gfn %#llx",
				(unsigned long long)sp->gfn);
	sp->unsync_children--;
	sp->unsync_child_bitmap[idx / 64] &= ~(1ull << (idx % 64));
}

/* __mmu_unsync_walk: the number of unsync level-1 pages below sp, or -ENOSPC when the
 * batch filled up. Bits whose subtree holds nothing unsync any more are cleared. */
static int __mmu_unsync_walk(struct kvm *kvm, struct kvm_mmu_page *sp, struct kvm_mmu_pages *pvec)
{
	int nr_unsync_leaf = 0;

	for (int i = 0; i < SPTES_PER_PAGE; i++) {
		struct kvm_mmu_page *child;
		uint64_t ent = sp->spt[i];
		int ret;

		if (!unsync_bit(sp, (unsigned)i))
			continue;
		if (!present(kvm, ent) || is_large_pte(ent)) {
			clear_unsync_child_bit(kvm, sp, i);
			continue;
		}
		child = child_of(kvm, ent);
		if (child->unsync_children) {
			if (mmu_pages_add(pvec, child, i))
				return -ENOSPC;
			ret = __mmu_unsync_walk(kvm, child, pvec);
			if (ret < 0)
				return ret;
			if (!ret)
				clear_unsync_child_bit(kvm, sp, i);
			nr_unsync_leaf += ret;
		} else if (child->unsync) {
			nr_unsync_leaf++;
			if (mmu_pages_add(pvec, child, i))
				return -ENOSPC;
		} else {
			clear_unsync_child_bit(kvm, sp, i);
		}
	}
	return nr_unsync_leaf;
}

/* mmu_unsync_walk: non-zero while sp has unsync descendants left to batch. */
static int mmu_unsync_walk(struct kvm *kvm, struct kvm_mmu_page *sp, struct kvm_mmu_pages *pvec)
{
	pvec->nr = 0;
	if (!sp->unsync_children)
		return 0;
	mmu_pages_add(pvec, sp, INVALID_INDEX);
	return __mmu_unsync_walk(kvm, sp, pvec);
}

/* mmu_pages_next: the batch's next level-1 page after entry i, recording the path. */
static int mmu_pages_next(const struct kvm_mmu_pages *pvec, struct mmu_page_path *parents, int i)
{
	int n;

	for (n = i + 1; n < pvec->nr; n++) {
		struct kvm_mmu_page *sp = pvec->page[n].sp;
		int level = sp->role.level;

		parents->idx[level - 1] = pvec->page[n].idx;
		if (level == PT_PAGE_TABLE_LEVEL)
			break;
		parents->parent[level - 2] = sp;
	}
	return n;
}

static int mmu_pages_first(const struct kvm_mmu_pages *pvec, struct mmu_page_path *parents)
{
	int level;

	if (!pvec->nr)
		return 0;
	level = pvec->page[0].sp->role.level;
	parents->parent[level - 2] = pvec->page[0].sp;
	parents->parent[level - 1] = NULL; /* the path ends above the walk's top page */
	return mmu_pages_next(pvec, parents, 0);
}

/* mmu_pages_clear_parents: the current level-1 page is done; clear its bit, and its
 * parent's bit for each page left with no unsync child. */
static void mmu_pages_clear_parents(struct kvm *kvm, const struct mmu_page_path *parents)
{
	struct kvm_mmu_page *sp;
	int level = 0;

	do {
		sp = parents->parent[level];
		if (!sp)
			return;
		clear_unsync_child_bit(kvm, sp, parents->idx[level]);
		level++;
	} while (!sp->unsync_children);
}

static int kvm_mmu_prepare_zap_page(struct kvm *kvm, struct kvm_mmu_page *sp,
				    struct kvm_mmu_page_list *invalid_list);

/* A batch of the unsync walk with no level-1 page in it: an unsync page above level 1
 * (only the WARN in mmu_need_write_protect makes one) is counted by every walk and handled
 * by none, so KVM's loop would never end. The model records it and stops the loop. */
static bool unsync_walk_stuck(struct kvm *kvm, const char *where, int handled)
{
	if (handled)
		return false;
	kvm_model_warn(kvm, KVM_WARN_UNEXPECTED, "%s would never finish: an unsync page above level 1",
		       where);
	return true;
}

/* mmu_zap_unsync_children: unsync pages below parent are reachable only through it. */
static int mmu_zap_unsync_children(struct kvm *kvm, struct kvm_mmu_page *parent,
				   struct kvm_mmu_page_list *invalid_list)
{
	struct mmu_page_path parents;
	struct kvm_mmu_pages pages;
	int zapped = 0;

	if (parent->role.level == PT_PAGE_TABLE_LEVEL)
		return 0;
	while (mmu_unsync_walk(kvm, parent, &pages)) {
		int handled = 0;

		for (int i = mmu_pages_first(&pages, &parents); i < pages.nr;
		     i = mmu_pages_next(&pages, &parents, i), handled++) {
			kvm_mmu_prepare_zap_page(kvm, pages.page[i].sp, invalid_list);
			mmu_pages_clear_parents(kvm, &parents);
		}
		if (unsync_walk_stuck(kvm, "mmu_zap_unsync_children", handled))
			break;
		zapped += handled;
	}
	return zapped;
}

/* kvm_mmu_prepare_zap_page: unsync children first. Returns the pages put on invalid_list:
 * a root in use stays on active_mmu_pages, still counted in n_used_mmu_pages, and counts 0
 * (v4.20..v5.4). */
static int kvm_mmu_prepare_zap_page(struct kvm *kvm, struct kvm_mmu_page *sp,
				    struct kvm_mmu_page_list *invalid_list)
{
	int zapped;

	trace_kvm_mmu_prepare_zap_page(kvm, sp);
	zapped = mmu_zap_unsync_children(kvm, sp, invalid_list);
	kvm_mmu_page_unlink_children(kvm, sp);
	kvm_mmu_unlink_parents(kvm, sp);
	if (!sp->role.invalid && !sp->role.direct &&
	    !kvm_bug(&kvm->config, KVM_BUG_S2_NO_UNACCOUNT_SHADOWED))
		unaccount_shadowed(kvm, sp);
	if (sp->unsync)
		kvm_unlink_unsync_page(kvm, sp);
	kvm->stat.mmu_shadow_zapped++;
	if (!sp->root_count) {
		zapped++;
		TAILQ_REMOVE(&kvm->mmu->active_mmu_pages, sp, link);
		TAILQ_INSERT_HEAD(invalid_list, sp, link);
		kvm->mmu->n_used_mmu_pages--; /* kvm_mod_used_mmu_pages */
	} else {
		TAILQ_REMOVE(&kvm->mmu->active_mmu_pages, sp, link);
		TAILQ_INSERT_HEAD(&kvm->mmu->active_mmu_pages, sp, link);
		/* K420 skips the reload for obsolete pages: the invalidation already sent it. */
		if (!sp->role.invalid && !(kvm->config.profile == KVM_PROFILE_4_20 && is_obsolete_sp(kvm, sp)))
			kvm_reload_remote_mmus(kvm);
	}
	sp->role.invalid = 1;
	return zapped;
}

/* kvm_mmu_commit_zap_page: flush every TLB before the pages can be reused. */
static void kvm_mmu_commit_zap_page(struct kvm *kvm, struct kvm_mmu_page_list *invalid_list)
{
	struct kvm_mmu_page *sp;

	if (TAILQ_EMPTY(invalid_list))
		return;
	if (!kvm_bug(&kvm->config, KVM_BUG_S9_NO_FLUSH_ON_COMMIT))
		kvm_flush_remote_tlbs(kvm);
	while ((sp = TAILQ_FIRST(invalid_list))) {
		TAILQ_REMOVE(invalid_list, sp, link);
		TAILQ_INSERT_HEAD(&kvm->mmu->active_mmu_pages, sp, link);
		kvm_mmu_free_page(kvm, sp);
	}
}

/* ---- the page budget (spec §6.5) ---- */

#define KVM_PERMILLE_MMU_PAGES 20
#define KVM_MIN_ALLOC_MMU_PAGES 64
#define KVM_MIN_FREE_MMU_PAGES 5
#define KVM_REFILL_PAGES 25

/* prepare_zap_oldest_mmu_page (v4.20..v5.4): the tail page, whatever it is. A root in use
 * zaps to nothing (it moves to the head), which ends the caller's loop; skipping roots
 * came with kvm_mmu_zap_oldest_mmu_pages in v5.10. */
static bool prepare_zap_oldest_mmu_page(struct kvm *kvm, struct kvm_mmu_page_list *invalid_list)
{
	struct kvm_mmu_page *sp = TAILQ_LAST(&kvm->mmu->active_mmu_pages, kvm_mmu_page_list);

	return sp && kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);
}

static unsigned long kvm_mmu_available_pages(const struct kvm *kvm)
{
	const struct kvm_arch_mmu *arch = kvm->mmu;

	return arch->n_max_mmu_pages > arch->n_used_mmu_pages ?
	       arch->n_max_mmu_pages - arch->n_used_mmu_pages : 0;
}

/* make_mmu_pages_available: below KVM_MIN_FREE_MMU_PAGES free, zap the oldest pages up to
 * KVM_REFILL_PAGES free; the commit flushes every TLB. Pages may still be allocated past
 * n_max_mmu_pages: only an empty budget fails. */
int make_mmu_pages_available(struct kvm_vcpu *vcpu)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_mmu_page_list invalid_list;

	if (kvm_mmu_available_pages(kvm) >= KVM_MIN_FREE_MMU_PAGES)
		return 0;
	TAILQ_INIT(&invalid_list);
	while (kvm_mmu_available_pages(kvm) < KVM_REFILL_PAGES &&
	       prepare_zap_oldest_mmu_page(kvm, &invalid_list))
		kvm->stat.mmu_recycled++;
	kvm_mmu_commit_zap_page(kvm, &invalid_list);
	trace_make_mmu_pages_available(kvm, kvm_mmu_available_pages(kvm), !kvm_mmu_available_pages(kvm));
	if (kvm_mmu_available_pages(kvm))
		return 0;
	kvm->mmu->stat_enospc++;
	return -ENOSPC;
}

/* kvm_mmu_change_mmu_pages: zap the oldest pages down to the goal; when a root in use stops
 * that, the budget becomes what is left. */
static void kvm_mmu_change_mmu_pages(struct kvm *kvm, unsigned long goal_nr_mmu_pages)
{
	struct kvm_arch_mmu *arch = kvm->mmu;
	struct kvm_mmu_page_list invalid_list;

	if (arch->n_used_mmu_pages > goal_nr_mmu_pages) {
		TAILQ_INIT(&invalid_list);
		while (arch->n_used_mmu_pages > goal_nr_mmu_pages &&
		       prepare_zap_oldest_mmu_page(kvm, &invalid_list))
			;
		kvm_mmu_commit_zap_page(kvm, &invalid_list);
		goal_nr_mmu_pages = arch->n_used_mmu_pages;
	}
	if (arch->n_max_mmu_pages != goal_nr_mmu_pages)
		trace_kvm_mmu_change_mmu_pages(kvm, goal_nr_mmu_pages);
	arch->n_max_mmu_pages = goal_nr_mmu_pages;
}

/* kvm_mmu_calculate_default_mmu_pages (v5.1; kvm_mmu_calculate_mmu_pages in v4.20): 20 per
 * mille of the pages of every slot of both address spaces, at least 64. */
static unsigned long kvm_mmu_calculate_default_mmu_pages(struct kvm *kvm)
{
	unsigned long nr_pages = 0, nr_mmu_pages;

	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++)
		for (int i = 0; i < kvm->memslots[as]->used_slots; i++)
			nr_pages += kvm->memslots[as]->memslots[i].npages;
	nr_mmu_pages = nr_pages * KVM_PERMILLE_MMU_PAGES / 1000;
	return nr_mmu_pages > KVM_MIN_ALLOC_MMU_PAGES ? nr_mmu_pages : KVM_MIN_ALLOC_MMU_PAGES;
}

int kvm_vm_ioctl_set_nr_mmu_pages(struct kvm *kvm, unsigned long nr_mmu_pages)
{
	if (nr_mmu_pages < KVM_MIN_ALLOC_MMU_PAGES)
		return -EINVAL;
	kvm_mmu_change_mmu_pages(kvm, nr_mmu_pages);
	kvm->mmu->n_requested_mmu_pages = nr_mmu_pages;
	return 0;
}

static void kvm_mmu_flush_or_zap(struct kvm *kvm, struct kvm_vcpu *vcpu,
				 struct kvm_mmu_page_list *invalid_list, bool remote_flush,
				 bool local_flush)
{
	if (!TAILQ_EMPTY(invalid_list)) {
		kvm_mmu_commit_zap_page(kvm, invalid_list);
		return;
	}
	if (remote_flush)
		kvm_flush_remote_tlbs(kvm);
	else if (local_flush && vcpu)
		vcpu->requests |= KVM_REQ_TLB_FLUSH;
}

/* ---- syncing unsync pages (spec §5.5) ---- */

/* __kvm_sync_page: refresh sp from the guest table (the gfn is write-protected by the
 * caller); a page built for the other gpte size, or left with nothing present, is zapped.
 * K420 names the role bit cr4_pae, K51+ gpte_is_8_bytes. */
static bool __kvm_sync_page(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp,
			    struct kvm_mmu_page_list *invalid_list)
{
	if (sp->role.gpte_is_8_bytes != is_pae(vcpu) || !kvm_mmu_sync_page(vcpu, sp)) {
		kvm_mmu_prepare_zap_page(vcpu->kvm, sp, invalid_list);
		return false;
	}
	return true;
}

static bool kvm_sync_page(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp,
			  struct kvm_mmu_page_list *invalid_list)
{
	kvm_unlink_unsync_page(vcpu->kvm, sp);
	return __kvm_sync_page(vcpu, sp, invalid_list);
}

/* kvm_sync_pages: every unsync page of gfn (write-protected by the caller), whatever its
 * role: v4.20..v5.4 sync a page of the other address space by reading the gptes from the
 * vCPU's own (found by shadowfuzz, RULE_KVM_SYNC_IN_OTHER_CONTEXT; FNAME(sync_page) flags
 * the EFER.NXE case). */
static bool kvm_sync_pages(struct kvm_vcpu *vcpu, gfn_t gfn, struct kvm_mmu_page_list *invalid_list)
{
	struct kvm_mmu_page *sp;
	bool flush = false;

	for_each_gfn_indirect_valid_sp(vcpu->kvm, sp, gfn) {
		if (!sp->unsync)
			continue;
		if (sp->role.smm != vcpu->arch.smm)
			kvm_model_warn(vcpu->kvm, KVM_WARN_SYNC_IN_OTHER_CONTEXT,
				       "kvm_sync_pages syncs gfn %#llx of address space %d from address space %d",
				       (unsigned long long)gfn, sp->role.smm ? 1 : 0, vcpu->arch.smm ? 1 : 0);
		flush |= kvm_sync_page(vcpu, sp, invalid_list);
	}
	return flush;
}

/* mmu_sync_children: batch by batch, write-protect the unsync pages below parent (one
 * remote flush if that took W from any spte), then sync them and clear their path bits.
 * KVM may break the lock between batches; the model has nobody to yield to. */
void mmu_sync_children(struct kvm_vcpu *vcpu, struct kvm_mmu_page *parent)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_mmu_page_list invalid_list;
	struct mmu_page_path parents;
	struct kvm_mmu_pages pages;
	bool flush = false;

	TAILQ_INIT(&invalid_list);
	while (mmu_unsync_walk(kvm, parent, &pages)) {
		bool protected = false;
		int i, handled = 0;

		for (i = mmu_pages_first(&pages, &parents); i < pages.nr;
		     i = mmu_pages_next(&pages, &parents, i), handled++)
			protected |= rmap_write_protect(vcpu, pages.page[i].sp->gfn);
		if (unsync_walk_stuck(kvm, "mmu_sync_children", handled))
			break;
		if (protected) {
			kvm_flush_remote_tlbs(kvm);
			flush = false;
		}
		for (i = mmu_pages_first(&pages, &parents); i < pages.nr; i = mmu_pages_next(&pages, &parents, i)) {
			flush |= kvm_sync_page(vcpu, pages.page[i].sp, &invalid_list);
			mmu_pages_clear_parents(kvm, &parents);
		}
	}
	kvm_mmu_flush_or_zap(kvm, vcpu, &invalid_list, false, flush);
}

/* __kvm_mmu_zap_all (K51; mmio_only: pages that ever held an MMIO spte). Invalid roots that
 * are still in use are skipped (5.1 "skip over invalid root pages"). */
static void __kvm_mmu_zap_all(struct kvm *kvm, bool mmio_only)
{
	struct kvm_mmu_page_list invalid_list = TAILQ_HEAD_INITIALIZER(invalid_list);
	struct kvm_mmu_page *sp, *next;

	TAILQ_INIT(&invalid_list);
restart:
	for (sp = TAILQ_FIRST(&kvm->mmu->active_mmu_pages); sp; sp = next) {
		next = TAILQ_NEXT(sp, link);
		if (mmio_only && !sp->mmio_cached)
			continue;
		if (sp->role.invalid && sp->root_count)
			continue;
		kvm_mmu_prepare_zap_page(kvm, sp, &invalid_list);
		goto restart;
	}
	kvm_mmu_commit_zap_page(kvm, &invalid_list);
}

/* kvm_zap_obsolete_pages (K420, K53): from the tail (oldest) while pages are obsolete. */
static void kvm_zap_obsolete_pages(struct kvm *kvm)
{
	struct kvm_mmu_page_list invalid_list;
	struct kvm_mmu_page *sp, *prev;

	TAILQ_INIT(&invalid_list);
restart:
	for (sp = TAILQ_LAST(&kvm->mmu->active_mmu_pages, kvm_mmu_page_list); sp; sp = prev) {
		prev = TAILQ_PREV(sp, kvm_mmu_page_list, link);
		if (!is_obsolete_sp(kvm, sp))
			break;
		if (sp->role.invalid)
			continue;
		kvm_mmu_prepare_zap_page(kvm, sp, &invalid_list);
		goto restart;
	}
	kvm_mmu_commit_zap_page(kvm, &invalid_list);
}

/* Fast invalidate (kvm_mmu_invalidate_zap_all_pages K420 / kvm_mmu_zap_all_fast K53): every
 * page becomes obsolete at once, then the obsolete pages are zapped. */
static void kvm_mmu_zap_all_fast(struct kvm *kvm)
{
	kvm->mmu->mmu_valid_gen++;
	trace_kvm_mmu_zap_all_fast(kvm, kvm->mmu->mmu_valid_gen);
	if (kvm->config.profile == KVM_PROFILE_4_20)
		kvm_reload_remote_mmus(kvm);
	kvm_zap_obsolete_pages(kvm);
}

/* K51 "zap only the relevant pages" (4e103134b862): leaf sptes through the slot's rmaps,
 * then every valid page whose gfn lies in the slot. */
static void kvm_mmu_zap_memslot_pages(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	struct kvm_mmu_page_list invalid_list;
	bool flush = false;

	TAILQ_INIT(&invalid_list);
	for (int level = PT_PAGE_TABLE_LEVEL; level <= PT_PDPE_LEVEL; level++) {
		uint64_t n = gfn_to_index(slot->base_gfn + slot->npages - 1, slot->base_gfn, level) + 1;

		if (kvm_bug(&kvm->config, KVM_BUG_B9_ZAP_MEMSLOT_WITHOUT_RMAPS))
			break;
		for (uint64_t i = 0; i < n; i++) {
			struct kvm_rmap_head *head = &slot->arch.rmap[level - 1][i];
			struct rmap_iterator iter;
			uint64_t *sptep;

			while ((sptep = rmap_get_first(head, &iter))) {
				rmap_iter_remove(&kvm->mmu->pte_cache, &iter);
				*sptep = 0;
				flush = true;
			}
		}
	}
	for (gfn_t gfn = slot->base_gfn; gfn < slot->base_gfn + slot->npages; gfn++) {
		struct kvm_mmu_page *sp, *next;

restart:
		for (sp = LIST_FIRST(&kvm->mmu->mmu_page_hash[kvm_page_table_hashfn(gfn)]); sp; sp = next) {
			next = LIST_NEXT(sp, hash_link);
			if (sp->role.invalid || sp->gfn != gfn)
				continue;
			kvm_mmu_prepare_zap_page(kvm, sp, &invalid_list);
			goto restart;
		}
	}
	kvm_mmu_flush_or_zap(kvm, NULL, &invalid_list, flush, false);
}

/* kvm_arch_flush_shadow_memslot per profile (spec §6.3). */
static void kvm_mmu_flush_shadow_memslot(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	if (kvm->config.profile == KVM_PROFILE_5_1)
		kvm_mmu_zap_memslot_pages(kvm, slot);
	else
		kvm_mmu_zap_all_fast(kvm);
}

/* The generation bits that are all clear on an MMIO generation wrap. */
static uint64_t mmio_gen_wrap_mask(const struct kvm *kvm)
{
	uint64_t mask = kvm->mmu->spte.mmio_gen_mask;
	/* The bits that tell address spaces apart: bit 1 in K420 (bit 0 is "update in
	 * progress", installs add 4), bit 0 in K51+ (installs add 2). */
	uint64_t as_bits = kvm->config.profile == KVM_PROFILE_4_20 ? 3 : KVM_ADDRESS_SPACE_NUM - 1;

	/* B1 fix: a wrap counts in any address space, whatever its generation offset. */
	if (!kvm_bug(&kvm->config, KVM_BUG_B1_WRAP_IN_ONE_AS_ONLY))
		mask &= ~as_bits;
	return mask;
}

/* kvm_mmu_invalidate_mmio_sptes: on an MMIO generation wrap (spec §1.4, §6.4). */
static void kvm_mmu_memslots_updated(struct kvm *kvm, int as_id, uint64_t gen)
{
	if (gen & mmio_gen_wrap_mask(kvm))
		return;
	trace_kvm_mmu_invalidate_mmio_sptes(kvm, as_id, gen);
	if (kvm->config.profile == KVM_PROFILE_4_20)
		kvm_mmu_zap_all_fast(kvm);
	else
		__kvm_mmu_zap_all(kvm, true);
}

/* ---- dirty logging and read-only slots (spec §6.7) ---- */

typedef bool (*slot_level_handler)(struct kvm *kvm, struct kvm_rmap_head *rmap_head);

/* slot_handle_level: fn on the rmap of every level-sized frame of the slot, for levels
 * min_level..max_level; true if any call asked for a TLB flush. */
static bool slot_handle_level(struct kvm *kvm, struct kvm_memory_slot *slot, slot_level_handler fn,
			      int min_level, int max_level)
{
	gfn_t last = slot->base_gfn + slot->npages - 1;
	bool flush = false;

	for (int level = min_level; level <= max_level; level++) {
		unsigned shift = KVM_HPAGE_GFN_SHIFT(level);

		for (gfn_t frame = slot->base_gfn >> shift; frame <= last >> shift; frame++) {
			gfn_t gfn = frame << shift < slot->base_gfn ? slot->base_gfn : frame << shift;

			flush |= fn(kvm, __gfn_to_rmap(kvm, gfn, level, slot));
		}
	}
	return flush;
}

/* slot_rmap_write_protect: dirty logging keeps SPTE_MMU_WRITEABLE, so fast_page_fault may
 * give W back (and mark the page dirty). */
static bool slot_rmap_write_protect(struct kvm *kvm, struct kvm_rmap_head *rmap_head)
{
	return __rmap_write_protect(kvm, rmap_head, false);
}

/* kvm_mmu_slot_remove_write_access: every level, flushed after the rmap walk. */
static void kvm_mmu_slot_remove_write_access(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	if (slot_handle_level(kvm, slot, slot_rmap_write_protect, PT_PAGE_TABLE_LEVEL, PT_PDPE_LEVEL))
		kvm_flush_remote_tlbs(kvm);
}

/* kvm_mmu_zap_collapsible_spte: 4K sptes of direct pages whose host page is huge go, so the
 * next fault maps the page large again. Indirect level-1 pages shadow a guest 4K table and
 * stay. The model's huge host pages stand for KVM's PageTransCompoundMap. */
static bool kvm_mmu_zap_collapsible_spte(struct kvm *kvm, struct kvm_rmap_head *rmap_head)
{
	struct rmap_iterator iter;
	uint64_t *sptep;
	bool flush = false;

restart:
	for_each_rmap_spte(rmap_head, &iter, sptep) {
		struct kvm_mmu_page *sp = sptep_to_sp(kvm, sptep);
		hva_t hva = host_pfn_to_hva(kvm->host, spte_to_pfn(*sptep));

		if (sp->role.direct && host_page_shift(kvm->host, hva) > PAGE_SHIFT) {
			drop_spte(kvm, sptep);
			flush = true;
			goto restart;
		}
	}
	return flush;
}

static void kvm_mmu_zap_collapsible_sptes(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	if (slot_handle_level(kvm, slot, kvm_mmu_zap_collapsible_spte, PT_PAGE_TABLE_LEVEL,
			      PT_PAGE_TABLE_LEVEL))
		kvm_flush_remote_tlbs(kvm);
}

/* kvm_mmu_slot_apply_flags without PML (shadow paging): read-only and logging slots lose W
 * on every spte. */
static void kvm_mmu_slot_apply_flags(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	if (slot->flags & (KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES))
		kvm_mmu_slot_remove_write_access(kvm, slot);
}

/* kvm_arch_commit_memory_region (v4.20..v5.3): the default budget follows the memslots
 * unless userspace set one; when logging stops (FLAGS_ONLY or MOVE), 4K sptes that could be
 * large again are zapped; then the new flags apply. */
static void kvm_arch_commit_memory_region(struct kvm *kvm, const struct kvm_memory_slot *old,
					  const struct kvm_memory_slot *new, enum kvm_mr_change change)
{
	struct kvm_memory_slot *slot = (struct kvm_memory_slot *)new;

	if (!kvm->mmu->n_requested_mmu_pages)
		kvm_mmu_change_mmu_pages(kvm, kvm_mmu_calculate_default_mmu_pages(kvm));
	if (change == KVM_MR_DELETE)
		return;
	if ((old->flags & KVM_MEM_LOG_DIRTY_PAGES) && !(new->flags & KVM_MEM_LOG_DIRTY_PAGES))
		kvm_mmu_zap_collapsible_sptes(kvm, slot);
	kvm_mmu_slot_apply_flags(kvm, slot);
}

/* kvm_arch_mmu_enable_log_dirty_pt_masked -> kvm_mmu_write_protect_pt_masked: the pages of
 * one bitmap word lose W again (level 1 only: logging maps 4K). */
void kvm_arch_mmu_enable_log_dirty_pt_masked(struct kvm *kvm, struct kvm_memory_slot *slot,
					     gfn_t gfn_offset, uint64_t mask)
{
	for (; mask; mask &= mask - 1) {
		gfn_t gfn = slot->base_gfn + gfn_offset + (gfn_t)__builtin_ctzll(mask);

		__rmap_write_protect(kvm, __gfn_to_rmap(kvm, gfn, PT_PAGE_TABLE_LEVEL, slot), false);
	}
}

void kvm_mmu_install_memslot_hooks(struct kvm *kvm)
{
	kvm->arch_ops.flush_shadow_memslot = kvm_mmu_flush_shadow_memslot;
	kvm->arch_ops.memslots_updated = kvm_mmu_memslots_updated;
	kvm->arch_ops.memslots_wrap_mask = mmio_gen_wrap_mask;
	kvm->arch_ops.commit_memory_region = kvm_arch_commit_memory_region;
}

/* ---- kvm_mmu_get_page ---- */

static union kvm_mmu_page_role page_role(struct kvm_vcpu *vcpu, gva_t gaddr, unsigned level,
					 bool direct, unsigned access)
{
	union kvm_mmu_page_role role = vcpu->mmu.base_role;

	role.level = level;
	role.direct = direct;
	/* K420's cr4_pae is 0 for direct pages; K51+'s gpte_is_8_bytes is 1 (spec §3.2). */
	if (direct)
		role.gpte_is_8_bytes = vcpu->kvm->config.profile != KVM_PROFILE_4_20;
	role.access = access;
	if (!vcpu->mmu.direct_map && vcpu->mmu.root_level <= PT32_ROOT_LEVEL) {
		/* A 32-bit guest table spans 2 (level 1) or 4 (level 2) shadow pages. */
		unsigned quadrant = (unsigned)(gaddr >> (PAGE_SHIFT + 9 * level));

		role.quadrant = quadrant & ((1u << level) - 1);
	}
	return role;
}

/* A page found in the hash (an unsync one was just synced in place and stays unsync,
 * v4.20..v5.4): the sync needs a TLB flush; unsync children make the vCPU sync its roots
 * before it enters the guest (bug B16: a TLB flush instead). */
static struct kvm_mmu_page *get_page_hit(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp)
{
	if (sp->unsync)
		vcpu->requests |= KVM_REQ_TLB_FLUSH;
	if (sp->unsync_children)
		vcpu->requests |= kvm_bug(&vcpu->kvm->config, KVM_BUG_B16_FLUSH_INSTEAD_OF_SYNC) ?
					  KVM_REQ_TLB_FLUSH : KVM_REQ_MMU_SYNC;
	sp->write_flooding_count = 0;
	trace_kvm_mmu_get_page(vcpu->kvm, sp, false);
	return sp;
}

struct kvm_mmu_page *kvm_mmu_get_page(struct kvm_vcpu *vcpu, gfn_t gfn, gva_t gaddr,
				      unsigned level, bool direct, unsigned access)
{
	struct kvm *kvm = vcpu->kvm;
	union kvm_mmu_page_role role = page_role(vcpu, gaddr, level, direct, access);
	struct kvm_mmu_page_list invalid_list;
	struct kvm_mmu_page *sp;
	bool need_sync = false, flush = false;

	TAILQ_INIT(&invalid_list);
	for_each_valid_sp(kvm, sp, gfn) {
		if (sp->gfn != gfn)
			continue;
		need_sync |= sp->unsync;
		if (sp->role.word != role.word)
			continue;
		if (sp->unsync && !__kvm_sync_page(vcpu, sp, &invalid_list))
			break; /* zapped: build a new one */
		return get_page_hit(vcpu, sp);
	}
	kvm->stat.mmu_cache_miss++;
	sp = kvm_mmu_alloc_page(kvm, direct);
	if (!sp) {
		kvm_mmu_commit_zap_page(kvm, &invalid_list);
		return NULL;
	}
	sp->gfn = gfn;
	sp->role = role;
	sp->mmu_valid_gen = kvm->mmu->mmu_valid_gen;
	LIST_INSERT_HEAD(&kvm->mmu->mmu_page_hash[kvm_page_table_hashfn(gfn)], sp, hash_link);
	sp->on_hash = true;
	trace_kvm_mmu_get_page(kvm, sp, true);
	if (!direct) {
		/* Write-protect before syncing, so synced contents match the guest table. */
		account_shadowed(kvm, sp);
		if (level == PT_PAGE_TABLE_LEVEL &&
		    !kvm_bug(&kvm->config, KVM_BUG_S1_NO_LEVEL1_WRITE_PROTECT) && rmap_write_protect(vcpu, gfn))
			kvm_flush_remote_tlbs(kvm);
		/* The gfn is now a higher-level table: its unsync level-1 pages resync. */
		if (level > PT_PAGE_TABLE_LEVEL && need_sync)
			flush |= kvm_sync_pages(vcpu, gfn, &invalid_list);
	}
	kvm_mmu_flush_or_zap(kvm, vcpu, &invalid_list, false, flush);
	return sp;
}

/* ---- set_spte / mmu_set_spte ---- */

/* mmu_need_write_protect: a write-tracked gfn (a higher-level table) stays read-only; a
 * level-1 table may be mapped writable when can_unsync, its pages going unsync so the
 * guest writes it directly until its next TLB flush or INVLPG (spec §5.3). */
static bool mmu_need_write_protect(struct kvm_vcpu *vcpu, gfn_t gfn, bool can_unsync)
{
	struct kvm_mmu_page *sp;

	if (kvm_page_track_is_active(vcpu, gfn))
		return true;
	for_each_gfn_indirect_valid_sp(vcpu->kvm, sp, gfn) {
		if (!can_unsync)
			return true;
		if (sp->unsync)
			continue;
		/* KVM WARNs and unsyncs it anyway. Tracking is looked up in the vCPU's address
		 * space, the pages in all of them: a table of the other one gets here (found by
		 * shadowfuzz, RULE_KVM_SMM_UNSYNC_OTHER_AS_TABLE). */
		if (sp->role.level != PT_PAGE_TABLE_LEVEL)
			kvm_model_warn(vcpu->kvm,
				       sp->role.smm != vcpu->arch.smm ? KVM_WARN_UNSYNC_OTHER_AS_TABLE :
									KVM_WARN_UNEXPECTED,
				       "WARN in mmu_need_write_protect: unsync of a level-%d page (gfn %#llx, "
				       "address space %d) on a write in address space %d", sp->role.level,
				       (unsigned long long)gfn, sp->role.smm ? 1 : 0, vcpu->arch.smm ? 1 : 0);
		kvm_unsync_page(vcpu->kvm, sp);
	}
	return false;
}

static void mark_mmio_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, gfn_t gfn, unsigned access)
{
	struct kvm *kvm = vcpu->kvm;
	uint64_t gen = kvm_vcpu_memslots(vcpu)->generation;

	*sptep = make_mmio_spte(&kvm->mmu->spte, gfn, access, gen);
	trace_mark_mmio_spte(kvm, sptep, gfn, access, gen);
	/* K51-K53 zap only pages that ever held an MMIO spte on a wrap. */
	sptep_to_sp(kvm, sptep)->mmio_cached = true;
}

static bool set_mmio_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, gfn_t gfn, kvm_pfn_t pfn,
			  unsigned access)
{
	if (!is_noslot_pfn(pfn))
		return false;
	mark_mmio_spte(vcpu, sptep, gfn, access);
	return true;
}

/* sync_mmio_spte (FNAME(sync_page)): an MMIO spte whose gfn the guest changed is cleared,
 * one that still matches is stamped with the current generation, even when the gfn has
 * gained a memslot since (v4.20..v5.4): the stale spte is valid again, and accesses
 * through it exit to userspace as MMIO for a gpa with memory (found by shadowfuzz). */
bool sync_mmio_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, gfn_t gfn, unsigned access,
		    int *nr_present)
{
	if (!is_mmio_spte(&vcpu->kvm->mmu->spte, *sptep))
		return false;
	if (gfn != get_mmio_spte_gfn(&vcpu->kvm->mmu->spte, *sptep)) {
		*sptep = 0;
		return true;
	}
	(*nr_present)++;
	if (kvm_is_visible_gfn(kvm_vcpu_memslots(vcpu), gfn))
		kvm_model_warn(vcpu->kvm, KVM_WARN_SYNC_REVIVES_MMIO_SPTE,
			       "sync_mmio_spte revives an MMIO spte of gfn %#llx, which has a memslot",
			       (unsigned long long)gfn);
	mark_mmio_spte(vcpu, sptep, gfn, access);
	return true;
}

int set_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned pte_access, int level, gfn_t gfn,
	     kvm_pfn_t pfn, bool speculative, bool can_unsync, bool host_writable)
{
	uint64_t spte = PT_PRESENT_MASK;
	int ret = 0;

	if (set_mmio_spte(vcpu, sptep, gfn, pfn, pte_access))
		return 0;
	if (!speculative)
		spte |= PT_ACCESSED_MASK;
	if (!(pte_access & ACC_EXEC_MASK))
		spte |= PT64_NX_MASK;
	if (pte_access & ACC_USER_MASK)
		spte |= PT_USER_MASK;
	if (level > PT_PAGE_TABLE_LEVEL)
		spte |= PT_PAGE_SIZE_MASK;
	if (host_writable)
		spte |= SPTE_HOST_WRITEABLE;
	else
		pte_access &= ~ACC_WRITE_MASK;
	spte |= pfn << PAGE_SHIFT;
	if (pte_access & ACC_WRITE_MASK) {
		/* Another vCPU may have shadowed a table in the frame since mapping_level: leave
		 * the spte alone and let the guest fault again. */
		if (level > PT_PAGE_TABLE_LEVEL && mmu_gfn_lpage_is_disallowed(vcpu, gfn, level))
			return 0;
		spte |= PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE;
		/* A sync (can_unsync false) keeps W on a spte that has it: the page's own
		 * write protection is get_page's and the sync's business. */
		if (!can_unsync && is_writable_pte(*sptep))
			goto set_pte;
		if (mmu_need_write_protect(vcpu, gfn, can_unsync)) {
			ret |= SET_SPTE_WRITE_PROTECTED_PT;
			pte_access &= ~ACC_WRITE_MASK;
			spte &= ~(PT_WRITABLE_MASK | SPTE_MMU_WRITEABLE);
		}
	}
	if (pte_access & ACC_WRITE_MASK) {
		kvm_vcpu_mark_page_dirty(vcpu, gfn);
		spte |= PT_DIRTY_MASK;
	}
	if (speculative)
		spte &= ~PT_ACCESSED_MASK; /* mark_spte_for_access_track with A/D bits */
set_pte:
	if (mmu_spte_update(vcpu->kvm, sptep, spte))
		ret |= SET_SPTE_NEED_REMOTE_TLB_FLUSH;
	return ret;
}

int mmu_set_spte(struct kvm_vcpu *vcpu, uint64_t *sptep, unsigned pte_access, bool write_fault,
		 int level, gfn_t gfn, kvm_pfn_t pfn, bool speculative, bool host_writable)
{
	struct kvm *kvm = vcpu->kvm;
	bool was_rmapped = false, flush = false;
	int ret = RET_PF_RETRY, set_spte_ret;

	if (present(kvm, *sptep)) {
		if (level > PT_PAGE_TABLE_LEVEL && !is_large_pte(*sptep)) {
			/* A 2M/1G leaf replaces a link: unlink the page table below. */
			drop_parent_pte(kvm, child_of(kvm, *sptep), sptep);
			flush = true;
		} else if (pfn != spte_to_pfn(*sptep)) {
			drop_spte(kvm, sptep);
			flush = true;
		} else {
			was_rmapped = true;
		}
	}
	set_spte_ret = set_spte(vcpu, sptep, pte_access, level, gfn, pfn, speculative, true, host_writable);
	trace_kvm_mmu_set_spte(kvm, level, gfn, sptep);
	if (set_spte_ret & SET_SPTE_WRITE_PROTECTED_PT) {
		if (write_fault)
			ret = RET_PF_EMULATE;
		vcpu->requests |= KVM_REQ_TLB_FLUSH;
	}
	if ((set_spte_ret & SET_SPTE_NEED_REMOTE_TLB_FLUSH) || flush)
		kvm_flush_remote_tlbs(kvm);
	if (is_mmio_spte(&kvm->mmu->spte, *sptep))
		ret = RET_PF_EMULATE;
	if (present(kvm, *sptep) && !was_rmapped)
		rmap_add(vcpu, sptep, gfn);
	return ret;
}

/* ---- large pages ---- */

static int host_mapping_level(struct kvm *kvm, const struct kvm_memory_slot *slot, gfn_t gfn)
{
	hva_t hva = gfn_to_hva_memslot_prot(slot, gfn, NULL);
	unsigned shift = hva == KVM_HVA_ERR_BAD ? 0 : host_page_shift(kvm->host, hva);

	if (shift >= 30)
		return PT_PDPE_LEVEL;
	return shift >= 21 ? PT_DIRECTORY_LEVEL : PT_PAGE_TABLE_LEVEL;
}

int mapping_level(struct kvm_vcpu *vcpu, gfn_t large_gfn, bool *force_pt_level)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), large_gfn);
	int host_level, level;

	/* memslot_valid_for_gpte: no slot, an INVALID slot or dirty logging force 4K. */
	*force_pt_level = !slot || (slot->flags & KVM_MEMSLOT_INVALID) || slot->dirty_bitmap;
	if (*force_pt_level)
		return PT_PAGE_TABLE_LEVEL;
	host_level = host_mapping_level(vcpu->kvm, slot, large_gfn);
	if (host_level == PT_PAGE_TABLE_LEVEL)
		return host_level;
	for (level = PT_DIRECTORY_LEVEL; level <= host_level; level++)
		if (lpage_info(vcpu->kvm, large_gfn, slot, level)->disallow_lpage)
			break;
	return level - 1;
}

/* ---- the shadow walk iterator ---- */

uint64_t *hpa_to_sptes(struct kvm_vcpu *vcpu, hpa_t hpa)
{
	struct kvm_mmu_page *sp;

	if (hpa == vcpu->mmu.pae_root_hpa)
		return vcpu->mmu.pae_root;
	sp = page_header(vcpu->kvm, hpa);
	return sp ? sp->spt : NULL;
}

/* shadow_walk_init_using_root: a PAE-shaped root can only be the current one (prev_roots
 * exist for 4/5-level shadow roots only). */
void shadow_walk_init_using_root(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu,
				 hpa_t root, uint64_t addr)
{
	it->addr = addr;
	it->shadow_addr = root;
	it->level = vcpu->mmu.shadow_root_level;
	if (!VALID_PAGE(it->shadow_addr)) {
		it->level = 0;
		return;
	}
	if (it->level == PT32E_ROOT_LEVEL) {
		it->shadow_addr = vcpu->mmu.pae_root[(addr >> 30) & 3] & PT64_BASE_ADDR_MASK;
		it->level--;
		if (!it->shadow_addr)
			it->level = 0;
	}
}

void shadow_walk_init(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu, uint64_t addr)
{
	shadow_walk_init_using_root(it, vcpu, vcpu->mmu.root_hpa, addr);
}

bool shadow_walk_okay(struct kvm_shadow_walk_iterator *it, struct kvm_vcpu *vcpu)
{
	uint64_t *sptes;

	if (it->level < PT_PAGE_TABLE_LEVEL)
		return false;
	sptes = hpa_to_sptes(vcpu, it->shadow_addr);
	if (!sptes)
		return false;
	it->index = (it->addr >> (PAGE_SHIFT + 9 * (it->level - 1))) & 511;
	it->sptep = sptes + it->index;
	return true;
}

void shadow_walk_next(struct kvm_shadow_walk_iterator *it)
{
	uint64_t spte = *it->sptep;

	if (is_last_spte(spte, it->level)) {
		it->level = 0;
		return;
	}
	it->shadow_addr = spte & PT64_BASE_ADDR_MASK;
	it->level--;
}

/* ---- roots ---- */

/* mmu_check_root: a root outside every visible memslot makes KVM shut the VM down. */
static bool mmu_check_root(struct kvm_vcpu *vcpu, gfn_t root_gfn)
{
	if (kvm_is_visible_gfn(vcpu->kvm->memslots[0], root_gfn))
		return false;
	vcpu->requests |= KVM_REQ_TRIPLE_FAULT;
	return true;
}

/* One root page; INVALID_PAGE when the budget is empty (make_mmu_pages_available before
 * each root, as mmu_alloc_direct_roots / mmu_alloc_shadow_roots do in v4.20..v5.4). */
static hpa_t root_page(struct kvm_vcpu *vcpu, gfn_t gfn, gva_t gaddr, int level, bool direct)
{
	struct kvm_mmu_page *sp;

	if (make_mmu_pages_available(vcpu) < 0)
		return INVALID_PAGE;
	sp = kvm_mmu_get_page(vcpu, gfn, gaddr, level, direct, ACC_ALL);
	if (!sp)
		return INVALID_PAGE;
	sp->root_count++;
	return sp->hpa;
}

/* A PAE root allocation that ran out of pages returns -ENOSPC with root_hpa invalid, so
 * kvm_mmu_free_roots never drops the references the roots before it took, and the next
 * kvm_mmu_load takes them again (v4.20..v5.4; found by shadowfuzz,
 * RULE_KVM_ENOSPC_LEAKS_PAE_ROOTS). */
static int pae_roots_enospc(struct kvm_vcpu *vcpu, int failed_root)
{
	bool taken = false;

	for (int i = 0; i < failed_root; i++)
		taken |= vcpu->mmu.pae_root[i] != 0;
	if (taken)
		kvm_model_warn(vcpu->kvm, KVM_WARN_ENOSPC_LEAKS_PAE_ROOTS,
			       "PAE root %d: no page available, the roots before it keep a root_count "
			       "nothing drops", failed_root);
	return -ENOSPC;
}

/* mmu_alloc_direct_roots for nonpaging: four PAE-shaped direct roots cover 4 GiB. */
static int mmu_alloc_direct_roots(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu *mmu = &vcpu->mmu;

	for (int i = 0; i < 4; i++) {
		hpa_t root = root_page(vcpu, (gfn_t)i << (30 - PAGE_SHIFT), (gva_t)i << 30,
				       PT32_ROOT_LEVEL, true);

		if (!VALID_PAGE(root))
			return pae_roots_enospc(vcpu, i);
		mmu->pae_root[i] = root | PT_PRESENT_MASK;
	}
	mmu->root_hpa = mmu->pae_root_hpa;
	return 0;
}

static int mmu_alloc_shadow_roots(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu *mmu = &vcpu->mmu;
	uint64_t cr3 = vcpu->arch.cr3;
	gfn_t root_gfn = cr3 >> PAGE_SHIFT;

	if (mmu_check_root(vcpu, root_gfn))
		return 1;
	if (mmu->root_level >= PT64_ROOT_4LEVEL) {
		mmu->root_hpa = root_page(vcpu, root_gfn, 0, mmu->shadow_root_level, false);
		if (!VALID_PAGE(mmu->root_hpa))
			return -ENOSPC;
		mmu->root_cr3 = cr3;
		return 0;
	}
	/* A 32-bit guest's PD is shadowed by four level-2 pages (quadrants); a PAE guest's
	 * PDPTEs each get one. */
	for (int i = 0; i < 4; i++) {
		hpa_t root;

		if (mmu->root_level == PT32E_ROOT_LEVEL) {
			uint64_t pdptr = mmu->pdptrs[i];

			if (!(pdptr & PT_PRESENT_MASK)) {
				mmu->pae_root[i] = 0;
				continue;
			}
			root_gfn = (pdptr & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT;
			if (mmu_check_root(vcpu, root_gfn))
				return 1;
		}
		root = root_page(vcpu, root_gfn, (gva_t)i << 30, PT32_ROOT_LEVEL, false);
		if (!VALID_PAGE(root))
			return pae_roots_enospc(vcpu, i);
		mmu->pae_root[i] = root | PT_PRESENT_MASK;
	}
	mmu->root_hpa = mmu->pae_root_hpa;
	mmu->root_cr3 = cr3;
	return 0;
}

static void mmu_free_root_page(struct kvm *kvm, hpa_t *root_hpa, struct kvm_mmu_page_list *invalid_list)
{
	struct kvm_mmu_page *sp;

	if (!VALID_PAGE(*root_hpa))
		return;
	sp = page_header(kvm, *root_hpa & PT64_BASE_ADDR_MASK);
	if (sp) {
		sp->root_count--;
		if (!sp->root_count && sp->role.invalid)
			kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);
	}
	*root_hpa = INVALID_PAGE;
}

static bool mmu_has_single_root(const struct kvm_mmu *mmu)
{
	return mmu->shadow_root_level >= PT64_ROOT_4LEVEL;
}

/* kvm_mmu_free_roots: the current root, and with free_prev the cached previous ones. */
static void kvm_mmu_free_roots(struct kvm_vcpu *vcpu, bool free_current, bool free_prev)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_mmu *mmu = &vcpu->mmu;
	struct kvm_mmu_page_list invalid_list;

	TAILQ_INIT(&invalid_list);
	for (int i = 0; free_prev && i < KVM_MMU_NUM_PREV_ROOTS; i++)
		mmu_free_root_page(kvm, &mmu->prev_roots[i].hpa, &invalid_list);
	if (free_current && VALID_PAGE(mmu->root_hpa)) {
		if (mmu_has_single_root(mmu)) {
			mmu_free_root_page(kvm, &mmu->root_hpa, &invalid_list);
		} else {
			for (int i = 0; i < 4; i++)
				if (mmu->pae_root[i])
					mmu_free_root_page(kvm, &mmu->pae_root[i], &invalid_list);
			mmu->root_hpa = INVALID_PAGE;
		}
		mmu->root_cr3 = 0;
	}
	kvm_mmu_commit_zap_page(kvm, &invalid_list);
}

void kvm_mmu_unload(struct kvm_vcpu *vcpu)
{
	kvm_mmu_free_roots(vcpu, true, true);
}

/* kvm_mmu_sync_roots (shadow MMU with a root): drop the whole MMIO cache, then sync the
 * unsync pages below the root, or below each PAE root. */
void kvm_mmu_sync_roots(struct kvm_vcpu *vcpu)
{
	struct kvm_mmu *mmu = &vcpu->mmu;
	struct kvm_mmu_page *sp;

	if (mmu->direct_map || !VALID_PAGE(mmu->root_hpa))
		return;
	trace_kvm_mmu_sync_roots(vcpu->kvm);
	vcpu->mmio_gva = 0;
	vcpu->mmio_gfn = 0;
	if (mmu_has_single_root(mmu)) {
		sp = page_header(vcpu->kvm, mmu->root_hpa);
		if (sp && (sp->unsync || sp->unsync_children))
			mmu_sync_children(vcpu, sp);
		return;
	}
	for (int i = 0; i < 4; i++) {
		if (!mmu->pae_root[i] || !VALID_PAGE(mmu->pae_root[i]))
			continue;
		sp = page_header(vcpu->kvm, mmu->pae_root[i] & PT64_BASE_ADDR_MASK);
		if (sp)
			mmu_sync_children(vcpu, sp);
	}
}

/* kvm_mmu_load: allocate roots, sync them, flush the TLB; 1 if the VM shut down. */
int kvm_mmu_load(struct kvm_vcpu *vcpu)
{
	int r = vcpu->mmu.direct_map ? mmu_alloc_direct_roots(vcpu) : mmu_alloc_shadow_roots(vcpu);

	kvm_mmu_sync_roots(vcpu);
	if (r)
		return r;
	vcpu->tlb.n = 0;
	return 0;
}

void kvm_mmu_reset_context(struct kvm_vcpu *vcpu)
{
	kvm_mmu_unload(vcpu);
	kvm_init_mmu(vcpu);
}

/* cached_root_available (fast CR3 switch, 64-bit shadow only): rotate the current root
 * into prev_roots and pick a cached root for new_cr3 with the current role. */
static bool cached_root_available(struct kvm_vcpu *vcpu, uint64_t new_cr3)
{
	struct kvm_mmu *mmu = &vcpu->mmu;
	struct kvm_mmu_root_info root = { mmu->root_cr3, mmu->root_hpa };
	int i;

	for (i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
		struct kvm_mmu_root_info tmp = mmu->prev_roots[i];
		struct kvm_mmu_page *sp;

		mmu->prev_roots[i] = root;
		root = tmp;
		sp = VALID_PAGE(root.hpa) ? page_header(vcpu->kvm, root.hpa) : NULL;
		if (new_cr3 == root.cr3 && sp && sp->role.word == vcpu->mmu.base_role.word)
			break;
	}
	mmu->root_hpa = root.hpa;
	mmu->root_cr3 = root.cr3;
	return i < KVM_MMU_NUM_PREV_ROOTS;
}

/* kvm_mmu_new_cr3 (v4.19+, all profiles): MOV CR3 to a new value. */
void kvm_mmu_new_cr3(struct kvm_vcpu *vcpu, uint64_t new_cr3, bool skip_tlb_flush)
{
	struct kvm_mmu *mmu = &vcpu->mmu;

	if (mmu->root_level >= PT64_ROOT_4LEVEL && mmu_has_single_root(mmu) && !mmu->direct_map &&
	    VALID_PAGE(mmu->root_hpa)) {
		if (mmu_check_root(vcpu, new_cr3 >> PAGE_SHIFT))
			return;
		if (cached_root_available(vcpu, new_cr3)) {
			struct kvm_mmu_page *sp = page_header(vcpu->kvm, mmu->root_hpa);

			vcpu->requests |= KVM_REQ_LOAD_CR3;
			if (!skip_tlb_flush)
				vcpu->requests |= KVM_REQ_MMU_SYNC | KVM_REQ_TLB_FLUSH;
			vcpu->mmio_gva = 0;
			sp->write_flooding_count = 0;
			return;
		}
	}
	kvm_mmu_free_roots(vcpu, true, false);
}

/* ---- kvm_mmu_pte_write: the page-track notifier for emulated guest writes (§5.4) ---- */

/* mmu_pte_write_fetch_gpte: the gpte as guest memory holds it now (re-read under mmu_lock
 * since 0e0fee5c539b, B12's fix). A PAE or long-mode vCPU writing 4 bytes gets the whole
 * aligned 8-byte gpte; sizes other than 4 and 8 give 0, which refills nothing. */
static uint64_t mmu_pte_write_fetch_gpte(struct kvm_vcpu *vcpu, gpa_t *gpa, int *bytes)
{
	uint64_t gentry = 0;
	hva_t hva;

	if (is_pae(vcpu) && *bytes == 4) {
		*gpa &= ~(gpa_t)7;
		*bytes = 8;
	}
	if (*bytes != 4 && *bytes != 8)
		return 0;
	hva = kvm_vcpu_gfn_to_hva_prot(vcpu, *gpa >> PAGE_SHIFT, NULL);
	if (hva == KVM_HVA_ERR_BAD || host_read(vcpu->kvm->host, hva + (*gpa & ~PAGE_MASK), &gentry, *bytes))
		return 0;
	return gentry;
}

/* detect_write_misaligned: a write that crosses a gpte of the page's size, or is shorter
 * than 4 bytes. A 1-byte write at a gpte boundary is not misaligned (guests clear status
 * bits of a gpte with byte-wide instructions); S4 (synthetic) forgets that exception. */
static bool detect_write_misaligned(const struct kvm *kvm, const struct kvm_mmu_page *sp, gpa_t gpa,
				    int bytes)
{
	unsigned offset = gpa & (PAGE_SIZE - 1);
	unsigned pte_size = sp->role.gpte_is_8_bytes ? 8 : 4;

	if (!(offset & (pte_size - 1)) && bytes == 1 &&
	    !kvm_bug(&kvm->config, KVM_BUG_S4_MISALIGNED_NO_BYTE_EXCEPTION))
		return false;
	return ((offset ^ (offset + bytes - 1)) & ~(pte_size - 1)) || bytes < 4;
}

/* detect_write_flooding: level-1 pages never flood; a higher page floods at the
 * WRITE_FLOODING_LIMIT-th emulated write since it was last used. S3 (synthetic) lets one
 * more write through. */
static bool detect_write_flooding(const struct kvm *kvm, struct kvm_mmu_page *sp)
{
	int limit = WRITE_FLOODING_LIMIT + kvm_bug(&kvm->config, KVM_BUG_S3_FLOODING_OFF_BY_ONE);

	if (sp->role.level == PT_PAGE_TABLE_LEVEL)
		return false;
	return ++sp->write_flooding_count >= limit;
}

/* get_written_sptes: the sptes a write at gpa covers (32-bit guests double the offset and
 * pick the quadrant; their level-2 pages cover two sptes per gpte). */
static uint64_t *get_written_sptes(struct kvm_mmu_page *sp, gpa_t gpa, int *nspte)
{
	unsigned page_offset = gpa & (PAGE_SIZE - 1), quadrant;
	int level = sp->role.level;

	*nspte = 1;
	if (!sp->role.gpte_is_8_bytes) {
		page_offset <<= 1;
		if (level == PT32_ROOT_LEVEL) {
			page_offset &= ~7u;
			page_offset <<= 1;
			*nspte = 2;
		}
		quadrant = page_offset >> PAGE_SHIFT;
		page_offset &= PAGE_SIZE - 1;
		if (quadrant != sp->role.quadrant)
			return NULL;
	}
	return &sp->spt[page_offset / sizeof(uint64_t)];
}

/* need_remote_flush: the old translation lost permissions or its frame. */
static bool need_remote_flush(const struct kvm *kvm, uint64_t old, uint64_t new)
{
	if (!present(kvm, old))
		return false;
	if (!present(kvm, new))
		return true;
	if ((old ^ new) & PT64_BASE_ADDR_MASK)
		return true;
	/* S5: NX compared like the other bits, so gaining it counts as no loss. */
	if (kvm_bug(&kvm->config, KVM_BUG_S5_REMOTE_FLUSH_IGNORES_NX))
		return (old & ~new & (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK)) != 0;
	old ^= PT64_NX_MASK;
	new ^= PT64_NX_MASK;
	return (old & ~new & (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT64_NX_MASK)) != 0;
}

/* mmu_base_role_mask: the role bits a page must share with the vCPU's current context
 * before an emulated write refills its sptes (the same bits in K420, cr4_pae for
 * gpte_is_8_bytes). */
static const union kvm_mmu_page_role mmu_base_role_mask = {
	.cr0_wp = 1,
	.gpte_is_8_bytes = 1,
	.nxe = 1,
	.smep_andnot_wp = 1,
	.smap_andnot_wp = 1,
	.smm = 1,
	.guest_mode = 1,
	.ad_disabled = 1,
};

/* mmu_pte_write_new_pte: a level-1 spte is refilled from the new gpte (mmu->update_pte);
 * a written pde's spte stays zapped, only counted. */
static void mmu_pte_write_new_pte(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *spte,
				  uint64_t gentry)
{
	if (sp->role.level != PT_PAGE_TABLE_LEVEL) {
		vcpu->kvm->stat.mmu_pde_zapped++;
		return;
	}
	vcpu->kvm->stat.mmu_pte_updated++;
	kvm_mmu_update_pte(vcpu, sp, spte, gentry);
}

/* The write as seen by one shadow page of the gfn: misaligned or flooded zaps the page,
 * otherwise the sptes the gpte covers are zapped and, when the gpte was read and the page
 * has the vCPU's role, refilled (rmap_can_add always holds: the model's caches never run
 * dry). Returns whether a remote flush is due; sets *local_flush when sptes were hit. */
static bool pte_write_page(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, gpa_t gpa, int bytes,
			   uint64_t gentry, struct kvm_mmu_page_list *invalid_list, bool *local_flush)
{
	struct kvm *kvm = vcpu->kvm;
	bool refill, remote_flush = false;
	uint64_t *spte;
	int npte;

	if (detect_write_misaligned(kvm, sp, gpa, bytes) || detect_write_flooding(kvm, sp)) {
		kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);
		kvm->stat.mmu_flooded++;
		return false;
	}
	spte = get_written_sptes(sp, gpa, &npte);
	if (!spte)
		return false;
	*local_flush = true;
	refill = gentry && !((sp->role.word ^ vcpu->mmu.base_role.word) & mmu_base_role_mask.word);
	for (int i = 0; i < npte; i++, spte++) {
		uint64_t entry = *spte;

		mmu_page_zap_pte(kvm, sp, spte);
		if (refill)
			mmu_pte_write_new_pte(vcpu, sp, spte, gentry);
		remote_flush |= need_remote_flush(kvm, entry, *spte);
	}
	return remote_flush;
}

void kvm_mmu_pte_write(struct kvm_vcpu *vcpu, gpa_t gpa, const uint8_t *new, int bytes)
{
	struct kvm *kvm = vcpu->kvm;
	struct kvm_mmu_page_list invalid_list;
	struct kvm_mmu_page *sp, *next;
	gfn_t gfn = gpa >> PAGE_SHIFT;
	bool remote_flush = false, local_flush = false;
	uint64_t gentry;

	(void)new; /* re-read from guest memory since 0e0fee5c539b (B12 fix) */
	if (!kvm->mmu->indirect_shadow_pages)
		return;
	trace_kvm_mmu_pte_write(kvm, gpa, bytes);
	TAILQ_INIT(&invalid_list);
	gentry = mmu_pte_write_fetch_gpte(vcpu, &gpa, &bytes);
	kvm->stat.mmu_pte_write++;
	/* for_each_gfn_indirect_valid_sp: a zapped page stays hashed until the commit. */
	for (sp = LIST_FIRST(&kvm->mmu->mmu_page_hash[kvm_page_table_hashfn(gfn)]); sp; sp = next) {
		next = LIST_NEXT(sp, hash_link);
		if (sp->gfn != gfn || sp->role.direct || sp->role.invalid || is_obsolete_sp(kvm, sp))
			continue;
		remote_flush |= pte_write_page(vcpu, sp, gpa, bytes, gentry, &invalid_list, &local_flush);
	}
	kvm_mmu_flush_or_zap(kvm, vcpu, &invalid_list, remote_flush, local_flush);
}

/* shadow_page_table_clear_flood (K420..K53): a write fault on a write-tracked gfn goes to
 * the emulator without FNAME(fetch), so the pages on the faulting gva's shadow walk, which
 * the guest is still using, restart their flood count here instead. */
void shadow_page_table_clear_flood(struct kvm_vcpu *vcpu, gva_t addr)
{
	struct kvm_shadow_walk_iterator it;

	if (!VALID_PAGE(vcpu->mmu.root_hpa))
		return;
	for (shadow_walk_init(&it, vcpu, addr); shadow_walk_okay(&it, vcpu); shadow_walk_next(&it)) {
		clear_sp_write_flooding_count(vcpu, it.sptep);
		if (!present(vcpu->kvm, *it.sptep))
			break;
	}
}

/* ---- INVLPG (kvm_mmu_invlpg, spec §5.6) ---- */

/* mmu->invlpg for the vCPU's mode: nonpaging_invlpg does nothing. */
static void mmu_invlpg_root(struct kvm_vcpu *vcpu, gva_t gva, hpa_t root)
{
	if (vcpu->mmu.direct_map || !VALID_PAGE(root))
		return;
	if ((vcpu->mmio_gva & PAGE_MASK) == (gva & PAGE_MASK))
		vcpu->mmio_gva = 0; /* vcpu_clear_mmio_info(vcpu, gva) */
	kvm_mmu_invlpg_root(vcpu, gva, root);
}

/* The caller has dropped non-canonical addresses (INVLPG of one is a no-op). Synced pages
 * need nothing: the guest could not change them without KVM seeing it. */
void kvm_mmu_invlpg(struct kvm_vcpu *vcpu, gva_t gva)
{
	mmu_invlpg_root(vcpu, gva, vcpu->mmu.root_hpa);
	for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
		mmu_invlpg_root(vcpu, gva, vcpu->mmu.prev_roots[i].hpa);
	for (int i = 0; i < vcpu->tlb.n;) {
		struct hw_tlb_entry *e = &vcpu->tlb.entries[i];
		uint64_t size = PAGE_SIZE << (9 * (e->level - 1));

		if (gva - e->gva < size) {
			*e = vcpu->tlb.entries[--vcpu->tlb.n];
			continue;
		}
		i++;
	}
}

/* ---- MMIO ---- */

/* vcpu_cache_mmio_info: K51+ refuses while memslots are in flux (B3 fix). */
void vcpu_cache_mmio_info(struct kvm_vcpu *vcpu, gva_t gva, gfn_t gfn, unsigned access)
{
	uint64_t gen = vcpu->kvm->memslots[0]->generation;

	if (vcpu->kvm->config.profile != KVM_PROFILE_4_20 && (gen & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS))
		return;
	vcpu->mmio_gva = gva & PAGE_MASK;
	vcpu->mmio_gfn = gfn;
	vcpu->mmio_access = access;
	vcpu->mmio_gen = gen;
}

static bool vcpu_match_mmio_gen(const struct kvm_vcpu *vcpu)
{
	if (kvm_bug(&vcpu->kvm->config, KVM_BUG_B4_MMIO_CACHE_NO_GENERATION))
		return true;
	return vcpu->mmio_gen == vcpu->kvm->memslots[0]->generation;
}

bool vcpu_match_mmio_gva(const struct kvm_vcpu *vcpu, gva_t gva)
{
	return vcpu_match_mmio_gen(vcpu) && vcpu->mmio_gva && vcpu->mmio_gva == (gva & PAGE_MASK);
}

bool vcpu_match_mmio_gpa(const struct kvm_vcpu *vcpu, gpa_t gpa)
{
	return vcpu_match_mmio_gen(vcpu) && vcpu->mmio_gfn && vcpu->mmio_gfn == gpa >> PAGE_SHIFT;
}

/* walk_shadow_page_get_mmio_spte: the terminal spte for addr; true if a present spte on
 * the way has bits the shadow zero-bit check forbids. */
static bool walk_shadow_page_get_mmio_spte(struct kvm_vcpu *vcpu, uint64_t addr, uint64_t *sptep)
{
	struct kvm_shadow_walk_iterator it;
	uint64_t spte = 0;
	bool reserved = false;

	for (shadow_walk_init(&it, vcpu, addr); shadow_walk_okay(&it, vcpu); shadow_walk_next(&it)) {
		spte = *it.sptep;
		if (!present(vcpu->kvm, spte))
			break;
		uint64_t bad = shadow_zero_bits(&vcpu->mmu, spte, it.level);

		if (bad && !reserved)
			kvm_model_error(vcpu->kvm, "reserved bits %#llx in level-%d spte %#llx on the "
					"MMIO walk of %#llx (handle_mmio_page_fault WARN)",
					(unsigned long long)bad, it.level, (unsigned long long)spte,
					(unsigned long long)addr);
		reserved |= bad != 0;
	}
	*sptep = spte;
	return reserved;
}

static int handle_mmio_page_fault(struct kvm_vcpu *vcpu, uint64_t addr, bool direct)
{
	const struct spte_params *p = &vcpu->kvm->mmu->spte;
	uint64_t spte, gen = kvm_vcpu_memslots(vcpu)->generation;
	gfn_t gfn;
	unsigned access;

	if (direct ? vcpu_match_mmio_gpa(vcpu, addr) : vcpu_match_mmio_gva(vcpu, addr))
		return RET_PF_EMULATE;
	/* KVM WARNs and fails the fault: KVM_RUN returns -EINVAL. */
	if (walk_shadow_page_get_mmio_spte(vcpu, addr, &spte))
		return -EINVAL;
	if (!is_mmio_spte(p, spte))
		return RET_PF_RETRY; /* zapped meanwhile: let the CPU fault again */
	if (!check_mmio_spte(p, spte, gen)) {
		trace_check_mmio_spte(vcpu->kvm, spte, gen);
		return RET_PF_INVALID;
	}
	gfn = get_mmio_spte_gfn(p, spte);
	access = get_mmio_spte_access(p, spte);
	trace_handle_mmio_page_fault(vcpu->kvm, addr, gfn, access);
	vcpu_cache_mmio_info(vcpu, direct ? 0 : addr, gfn, access);
	return RET_PF_EMULATE;
}

/* handle_abnormal_pfn: RO_FAULT emulates; NOSLOT caches MMIO info and goes on to write an
 * MMIO spte. Returns true with *ret set when the fault ends here. */
bool handle_abnormal_pfn(struct kvm_vcpu *vcpu, gva_t gva, gfn_t gfn, kvm_pfn_t pfn,
			 unsigned access, int *ret)
{
	if (pfn == KVM_PFN_ERR_RO_FAULT) {
		*ret = RET_PF_EMULATE;
		return true;
	}
	if (pfn == KVM_PFN_ERR_FAULT) {
		kvm_model_error(vcpu->kvm, "gfn %#llx has a memslot but no host page (EFAULT)",
				(unsigned long long)gfn);
		*ret = -EFAULT;
		return true;
	}
	if (is_noslot_pfn(pfn))
		vcpu_cache_mmio_info(vcpu, gva, gfn, access & (ACC_WRITE_MASK | ACC_USER_MASK));
	return false;
}

kvm_pfn_t kvm_vcpu_gfn_to_pfn(struct kvm_vcpu *vcpu, gfn_t gfn, bool write, bool *writable)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	return __gfn_to_pfn_memslot(vcpu->kvm, slot, gfn, write, writable);
}

/* page_fault_handle_page_track: a write to a present translation of a write-tracked gfn
 * cannot be fixed by mapping: emulate it. */
bool page_fault_handle_page_track(struct kvm_vcpu *vcpu, uint32_t error_code, gfn_t gfn)
{
	if (error_code & PFERR_RSVD_MASK)
		return false;
	if (!(error_code & PFERR_PRESENT_MASK) || !(error_code & PFERR_WRITE_MASK))
		return false;
	return kvm_page_track_is_active(vcpu, gfn);
}

/* ---- PTE prefetch (spec §4.7) ---- */

/* gfn_to_memslot_dirty_bitmap: no slot for an INVALID slot, nor for a dirty-logged one
 * when the prefetched spte would be writable (its write must fault to be logged). */
static struct kvm_memory_slot *gfn_to_memslot_dirty_bitmap(struct kvm_vcpu *vcpu, gfn_t gfn,
							   bool no_dirty_log)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu), gfn);

	if (!slot || (slot->flags & KVM_MEMSLOT_INVALID) || (no_dirty_log && slot->dirty_bitmap))
		return NULL;
	return slot;
}

/* pte_prefetch_gfn_to_pfn: gfn_to_pfn_memslot_atomic asks for a writable page, so a
 * READONLY slot (RO_FAULT) is an error like a missing slot: no MMIO sptes either. */
kvm_pfn_t pte_prefetch_gfn_to_pfn(struct kvm_vcpu *vcpu, gfn_t gfn, bool no_dirty_log)
{
	struct kvm_memory_slot *slot = gfn_to_memslot_dirty_bitmap(vcpu, gfn, no_dirty_log);

	if (!slot)
		return KVM_PFN_ERR_FAULT;
	return __gfn_to_pfn_memslot(vcpu->kvm, slot, gfn, true, NULL);
}

/* direct_pte_prefetch_many: map the contiguous gfns behind [start, end) speculatively
 * with the page's access. -1 stops the caller's scan. */
static int direct_pte_prefetch_many(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp,
				    uint64_t *start, uint64_t *end)
{
	kvm_pfn_t pfns[PTE_PREFETCH_NUM];
	unsigned access = sp->role.access;
	gfn_t gfn = kvm_mmu_page_get_gfn(sp, (int)(start - sp->spt));
	struct kvm_memory_slot *slot = gfn_to_memslot_dirty_bitmap(vcpu, gfn, access & ACC_WRITE_MASK);
	int ret;

	if (!slot)
		return -1;
	ret = gfn_to_page_many_atomic(vcpu->kvm, slot, gfn, pfns, (int)(end - start));
	if (ret <= 0)
		return -1;
	for (int i = 0; i < ret; i++)
		mmu_set_spte(vcpu, start + i, access, false, sp->role.level, gfn + i, pfns[i], true,
			     true);
	return 0;
}

/* __direct_pte_prefetch (v5.1): runs of non-present sptes in sptep's aligned group of
 * PTE_PREFETCH_NUM, each closed by a present spte or sptep itself; a run still open at
 * the end of the group is left alone, as in KVM. */
void __direct_pte_prefetch(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *sptep)
{
	uint64_t *spte = sp->spt + ((sptep - sp->spt) & ~(PTE_PREFETCH_NUM - 1));
	uint64_t *start = NULL;

	for (int i = 0; i < PTE_PREFETCH_NUM; i++, spte++) {
		if (present(vcpu->kvm, *spte) || spte == sptep) {
			if (!start)
				continue;
			if (direct_pte_prefetch_many(vcpu, sp, start, spte) < 0)
				break;
			start = NULL;
		} else if (!start) {
			start = spte;
		}
	}
}

/* direct_pte_prefetch (v5.1): level-1 direct pages only. sp_ad_disabled never holds for
 * shadow paging (shadow_accessed_mask is the A bit). */
static void direct_pte_prefetch(struct kvm_vcpu *vcpu, uint64_t *sptep)
{
	struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, sptep);

	if (!vcpu->kvm->config.prefetch || sp->role.ad_disabled ||
	    sp->role.level > PT_PAGE_TABLE_LEVEL)
		return;
	__direct_pte_prefetch(vcpu, sp, sptep);
}

/* ---- the nonpaging fault path (nonpaging_page_fault, __direct_map) ---- */

static int __direct_map(struct kvm_vcpu *vcpu, bool write, bool map_writable, int level, gfn_t gfn,
			kvm_pfn_t pfn)
{
	struct kvm_shadow_walk_iterator it;
	int emulate = RET_PF_RETRY;

	for (shadow_walk_init(&it, vcpu, gfn << PAGE_SHIFT); shadow_walk_okay(&it, vcpu);
	     shadow_walk_next(&it)) {
		if (it.level == level) {
			emulate = mmu_set_spte(vcpu, it.sptep, ACC_ALL, write, level, gfn, pfn, false,
					       map_writable);
			direct_pte_prefetch(vcpu, it.sptep);
			vcpu->kvm->mmu->stat_pf_fixed++;
			break;
		}
		drop_large_spte(vcpu, it.sptep);
		if (!present(vcpu->kvm, *it.sptep)) {
			uint64_t base = it.addr & ~((PAGE_SIZE << (9 * (it.level - 1))) - 1);
			struct kvm_mmu_page *sp = kvm_mmu_get_page(vcpu, base >> PAGE_SHIFT, it.addr,
								   it.level - 1, true, ACC_ALL);

			if (!sp)
				return -ENOMEM;
			link_shadow_page(vcpu, it.sptep, sp);
		}
	}
	return emulate;
}

/* page_fault_can_be_fast without access tracking (shadow_acc_track_mask = 0): only a write
 * to a present spte; never an MMIO fault (RSVD) or an NX violation. */
static bool page_fault_can_be_fast(uint32_t error_code)
{
	const uint32_t fetch_present = PFERR_FETCH_MASK | PFERR_PRESENT_MASK;
	const uint32_t write_present = PFERR_WRITE_MASK | PFERR_PRESENT_MASK;

	if (error_code & PFERR_RSVD_MASK)
		return false;
	if ((error_code & fetch_present) == fetch_present)
		return false;
	return (error_code & write_present) == write_present;
}

/* is_access_allowed: would the faulting access pass this spte now? */
static bool is_access_allowed(uint32_t error_code, uint64_t spte)
{
	if (error_code & PFERR_FETCH_MASK)
		return is_executable_pte(spte);
	if (error_code & PFERR_WRITE_MASK)
		return is_writable_pte(spte);
	return spte & PT_PRESENT_MASK;
}

/* fast_pf_fix_direct_spte: the cmpxchg always wins with one vCPU; W coming back marks the
 * gfn dirty, as set_spte would. */
static void fast_pf_fix_direct_spte(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *sptep,
				    uint64_t old_spte, uint64_t new_spte)
{
	*sptep = new_spte;
	if (is_writable_pte(new_spte) && !is_writable_pte(old_spte))
		kvm_vcpu_mark_page_dirty(vcpu, kvm_mmu_page_get_gfn(sp, (int)(sptep - sp->spt)));
}

/* fast_page_fault (direct maps only, v4.20..v5.3): a write to a 4K spte that lost W only
 * for dirty logging (SPTE_HOST_WRITEABLE and SPTE_MMU_WRITEABLE still set) gets W back
 * without mmu_lock. True if the fault is handled (also when the spte already allows the
 * access: the TLB was stale). */
static bool fast_page_fault(struct kvm_vcpu *vcpu, gva_t gva, int level, uint32_t error_code)
{
	struct kvm_shadow_walk_iterator it;
	struct kvm_mmu_page *sp;
	uint64_t *sptep = NULL, spte = 0, new_spte;

	if (!VALID_PAGE(vcpu->mmu.root_hpa) || !page_fault_can_be_fast(error_code))
		return false;
	for (shadow_walk_init(&it, vcpu, gva); shadow_walk_okay(&it, vcpu); shadow_walk_next(&it)) {
		sptep = it.sptep;
		spte = *sptep;
		if (!present(vcpu->kvm, spte) || it.level < level)
			break;
	}
	sp = sptep ? sptep_to_sp(vcpu->kvm, sptep) : NULL;
	if (!sp || !is_last_spte(spte, sp->role.level))
		return false;
	if (is_access_allowed(error_code, spte))
		return true;
	new_spte = spte;
	if ((error_code & PFERR_WRITE_MASK) && spte_can_locklessly_be_made_writable(spte)) {
		new_spte |= PT_WRITABLE_MASK;
		/* Only the first gfn of a large spte would be marked dirty: slow path. */
		if (sp->role.level > PT_PAGE_TABLE_LEVEL)
			return false;
	}
	if (new_spte == spte || !is_access_allowed(error_code, new_spte))
		return false;
	fast_pf_fix_direct_spte(vcpu, sp, sptep, spte, new_spte);
	return true;
}

static int nonpaging_page_fault(struct kvm_vcpu *vcpu, gva_t gva, uint32_t error_code)
{
	bool write = error_code & PFERR_WRITE_MASK, force_pt_level = false, map_writable = false;
	gfn_t gfn = (gva & 0xffffffffull) >> PAGE_SHIFT;
	int level, r;
	kvm_pfn_t pfn;

	if (page_fault_handle_page_track(vcpu, error_code, gfn))
		return RET_PF_EMULATE;
	level = mapping_level(vcpu, gfn, &force_pt_level);
	if (!force_pt_level) {
		/* The direct roots are PAE-shaped: 2M mappings at most. */
		if (level > PT_DIRECTORY_LEVEL)
			level = PT_DIRECTORY_LEVEL;
		gfn &= ~(KVM_PAGES_PER_HPAGE(level) - 1);
	}
	if (fast_page_fault(vcpu, gva, level, error_code))
		return RET_PF_RETRY;
	pfn = kvm_vcpu_gfn_to_pfn(vcpu, gfn, write, &map_writable);
	if (handle_abnormal_pfn(vcpu, gva, gfn, pfn, ACC_ALL, &r))
		return r;
	/* nonpaging_map: no page left, the fault is retried (v4.20..v5.4). */
	if (make_mmu_pages_available(vcpu) < 0)
		return RET_PF_RETRY;
	return __direct_map(vcpu, write, map_writable, level, gfn, pfn);
}

/* kvm_mmu_page_fault: RSVD faults try the MMIO path first (spec §2.5, §4.1). */
int kvm_mmu_page_fault(struct kvm_vcpu *vcpu, gva_t cr2, uint32_t error_code,
		       struct x86_exception *fault)
{
	int r = RET_PF_INVALID;

	trace_kvm_page_fault(vcpu->kvm, cr2, error_code);
	fault->vector = 0;
	if (error_code & PFERR_RSVD_MASK) {
		r = handle_mmio_page_fault(vcpu, cr2, vcpu->mmu.direct_map);
		if (r == RET_PF_EMULATE || r == RET_PF_RETRY || r < 0)
			return r;
	}
	/* The direct map sees RSVD as KVM passes it on: fast_page_fault and page tracking
	 * leave MMIO faults alone. */
	if (vcpu->mmu.direct_map)
		return nonpaging_page_fault(vcpu, cr2, error_code);
	return kvm_mmu_shadow_fault(vcpu, cr2, error_code & ~PFERR_RSVD_MASK, fault);
}
