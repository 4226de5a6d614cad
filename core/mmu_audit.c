#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "mmu.h"
#include "mmu_audit.h"

struct audit {
	struct kvm *kvm;
	char *msg;
	size_t len;
	bool failed;
	uint64_t leaves, links;
};

static bool violation(struct audit *a, const char *fmt, ...)
{
	va_list ap;

	if (a->failed)
		return false;
	a->failed = true;
	va_start(ap, fmt);
	vsnprintf(a->msg, a->len, fmt, ap);
	va_end(ap);
	return false;
}

static bool present(const struct kvm *kvm, uint64_t spte)
{
	return is_shadow_present_pte(&kvm->mmu->spte, spte);
}

static unsigned occurrences(struct kvm_rmap_head *head, const uint64_t *sptep)
{
	struct rmap_iterator iter;
	uint64_t *entry;
	unsigned n = 0;

	for_each_rmap_spte(head, &iter, entry)
		n += entry == sptep;
	return n;
}

/* Invariant 1: each page hashed in its gfn's bucket; no two valid pages share gfn + role. */
static bool audit_hash(struct audit *a)
{
	struct kvm_arch_mmu *arch = a->kvm->mmu;
	struct kvm_mmu_page *sp, *other;

	TAILQ_FOREACH(sp, &arch->active_mmu_pages, link) {
		if (!sp->on_hash)
			return violation(a, "page gfn %#llx is not hashed", (unsigned long long)sp->gfn);
		if (sp->role.invalid || is_obsolete_sp(a->kvm, sp))
			continue;
		for (other = TAILQ_NEXT(sp, link); other; other = TAILQ_NEXT(other, link))
			if (!other->role.invalid && !is_obsolete_sp(a->kvm, other) && other->gfn == sp->gfn &&
			    other->role.word == sp->role.word)
				return violation(a, "two valid pages for gfn %#llx role %#x",
						 (unsigned long long)sp->gfn, sp->role.word);
	}
	return true;
}

/* Invariant 2 (one way): every present leaf spte is in its rmap exactly once. */
static bool audit_leaf(struct audit *a, struct kvm_mmu_page *sp, int i)
{
	struct kvm_memslots *slots = a->kvm->memslots[sp->role.smm ? 1 : 0];
	gfn_t gfn = kvm_mmu_page_get_gfn(sp, i);
	struct kvm_memory_slot *slot = __gfn_to_memslot(slots, gfn);
	struct kvm_rmap_head *head;

	a->leaves++;
	if (!slot)
		return violation(a, "leaf spte of gfn %#llx has no memslot", (unsigned long long)gfn);
	if (gfn_to_index(gfn, slot->base_gfn, sp->role.level) >= slot->arch.nr_frames[sp->role.level - 1])
		return violation(a, "gfn %#llx is beyond slot %d's rmap", (unsigned long long)gfn, slot->id);
	head = &slot->arch.rmap[sp->role.level - 1][gfn_to_index(gfn, slot->base_gfn, sp->role.level)];
	if (occurrences(head, &sp->spt[i]) != 1)
		return violation(a, "leaf spte %d of page gfn %#llx is in the rmap of gfn %#llx %u times",
				 i, (unsigned long long)sp->gfn, (unsigned long long)gfn,
				 occurrences(head, &sp->spt[i]));
	return true;
}

/* Invariant 3 (one way): a link is in its child's parent_ptes exactly once. */
static bool audit_link(struct audit *a, struct kvm_mmu_page *sp, int i)
{
	struct kvm_mmu_page *child = page_header(a->kvm, sp->spt[i] & PT64_BASE_ADDR_MASK);

	a->links++;
	if (!child)
		return violation(a, "link spte %d of page gfn %#llx points at no shadow page", i,
				 (unsigned long long)sp->gfn);
	if (child->role.invalid)
		return violation(a, "link to a zapped page (gfn %#llx)", (unsigned long long)child->gfn);
	if (occurrences(&child->parent_ptes, &sp->spt[i]) != 1)
		return violation(a, "link spte %d of page gfn %#llx not in its child's parent_ptes", i,
				 (unsigned long long)sp->gfn);
	return true;
}

static bool holders_reload(struct kvm *kvm, const struct kvm_mmu_page *sp);

/* A zapped page stays empty, except a root still in use: FNAME(fetch) (K420-K53) checks
 * only that root_hpa is valid, so a fault whose make_mmu_pages_available zapped the root
 * links new pages into it; they go when every vCPU holding it runs its reload. */
static bool may_hold_sptes(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	return !sp->role.invalid || (sp->root_count && holders_reload(kvm, sp));
}

static bool audit_sptes(struct audit *a)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link) {
		for (int i = 0; i < SPTES_PER_PAGE; i++) {
			uint64_t spte = sp->spt[i];

			if (!present(a->kvm, spte))
				continue;
			if (!may_hold_sptes(a->kvm, sp))
				return violation(a, "zapped page gfn %#llx keeps a present spte",
						 (unsigned long long)sp->gfn);
			if (is_last_spte(spte, sp->role.level) ? !audit_leaf(a, sp, i) : !audit_link(a, sp, i))
				return false;
		}
	}
	return true;
}

/* Entries the slot's per-level arrays have (KVM sizes them from base_gfn and npages). */
static uint64_t frames(const struct kvm_memory_slot *slot, int level)
{
	return slot->arch.nr_frames[level - 1];
}

static bool audit_metadata_sizes(struct audit *a, const struct kvm_memory_slot *slot)
{
	for (int level = 1; level <= KVM_NR_PAGE_SIZES; level++)
		if (frames(slot, level) !=
		    gfn_to_index(slot->base_gfn + slot->npages - 1, slot->base_gfn, level) + 1)
			return violation(a, "slot %d's level-%d metadata is sized for another base_gfn",
					 slot->id, level);
	return true;
}

static uint64_t count_heads(struct kvm_rmap_head *heads, uint64_t n)
{
	uint64_t total = 0;

	for (uint64_t i = 0; i < n; i++)
		total += heads[i].val ? pte_list_count(&heads[i]) : 0;
	return total;
}

/* Invariants 2 and 3 (the other way): no rmap or parent entry beyond the ones found. */
static bool audit_totals(struct audit *a)
{
	uint64_t rmap_entries = 0, parent_entries = 0;
	struct kvm_mmu_page *sp;

	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		struct kvm_memslots *slots = a->kvm->memslots[as];

		for (int s = 0; s < slots->used_slots; s++) {
			struct kvm_memory_slot *slot = &slots->memslots[s];

			for (int level = 1; level <= KVM_NR_PAGE_SIZES; level++)
				rmap_entries += count_heads(slot->arch.rmap[level - 1], frames(slot, level));
		}
	}
	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		parent_entries += pte_list_count(&sp->parent_ptes);
	if (rmap_entries != a->leaves)
		return violation(a, "rmaps hold %llu entries for %llu present leaf sptes",
				 (unsigned long long)rmap_entries, (unsigned long long)a->leaves);
	if (parent_entries != a->links)
		return violation(a, "parent_ptes hold %llu entries for %llu links",
				 (unsigned long long)parent_entries, (unsigned long long)a->links);
	return true;
}

static int vcpu_root_refs(const struct kvm_mmu *mmu, const struct kvm_mmu_page *sp)
{
	int refs = VALID_PAGE(mmu->root_hpa) && mmu->root_hpa == sp->hpa;

	for (int i = 0; i < 4; i++)
		refs += VALID_PAGE(mmu->root_hpa) && mmu->root_hpa == mmu->pae_root_hpa &&
			mmu->pae_root[i] && VALID_PAGE(mmu->pae_root[i]) &&
			(mmu->pae_root[i] & PT64_BASE_ADDR_MASK) == sp->hpa;
	for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
		refs += VALID_PAGE(mmu->prev_roots[i].hpa) && mmu->prev_roots[i].hpa == sp->hpa;
	return refs;
}

static int root_refs(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	int refs = 0;

	for (int v = 0; v < kvm->nr_vcpus; v++)
		refs += vcpu_root_refs(&kvm->vcpus[v].mmu, sp);
	return refs;
}

/* Whether every vCPU holding sp as a root has a reload pending (kvm_reload_remote_mmus). */
static bool holders_reload(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	for (int v = 0; v < kvm->nr_vcpus; v++)
		if (vcpu_root_refs(&kvm->vcpus[v].mmu, sp) && !(kvm->vcpus[v].requests & KVM_REQ_MMU_RELOAD))
			return false;
	return true;
}

/* Invariant 3 (roots) and 14: root_count matches the references; an obsolete page is in
 * use only while its vCPU has a reload pending. */
static bool audit_roots(struct audit *a)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link) {
		int refs = root_refs(a->kvm, sp);

		if (refs != sp->root_count)
			return violation(a, "page gfn %#llx has root_count %d but %d root references",
					 (unsigned long long)sp->gfn, sp->root_count, refs);
		if (refs && is_obsolete_sp(a->kvm, sp) && !holders_reload(a->kvm, sp))
			return violation(a, "obsolete page gfn %#llx is a root without a reload pending",
					 (unsigned long long)sp->gfn);
	}
	return true;
}

/* Pages accounted in their slot (account_shadowed): indirect and not zapped. */
static bool accounted(const struct kvm_mmu_page *sp)
{
	return !sp->role.direct && !sp->role.invalid;
}

struct accounted_page {
	gfn_t gfn;
	bool tracked; /* level > 1: write-tracked as well */
};

static int compare_gfns(const void *x, const void *y)
{
	gfn_t a = ((const struct accounted_page *)x)->gfn, b = ((const struct accounted_page *)y)->gfn;

	return (a > b) - (a < b);
}

/* The accounted pages of slot, sorted by gfn (the caller frees). */
static struct accounted_page *slot_pages(struct audit *a, const struct kvm_memory_slot *slot,
					 int as, size_t *n)
{
	struct kvm_mmu_page *sp;
	struct accounted_page *pages;
	size_t count = 0;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		count++;
	pages = malloc((count ? count : 1) * sizeof(*pages));
	if (!pages)
		return NULL;
	*n = 0;
	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		if (accounted(sp) && sp->role.smm == (unsigned)as &&
		    __gfn_to_memslot(a->kvm->memslots[as], sp->gfn) == slot)
			pages[(*n)++] = (struct accounted_page){ sp->gfn, sp->role.level > 1 };
	qsort(pages, *n, sizeof(*pages), compare_gfns);
	return pages;
}

/* Invariant 5 for one slot: gfn_track and disallow_lpage recomputed from the pages, by a
 * merge over the sorted pages, without per-gfn scratch arrays. */
static bool audit_slot_accounting(struct audit *a, struct kvm_memory_slot *slot, int as)
{
	size_t n, p = 0;
	struct accounted_page *pages = slot_pages(a, slot, as, &n);
	bool ok = true;

	if (!pages)
		return violation(a, "auditor out of memory");
	for (uint64_t g = 0; ok && g < slot->npages; g++) {
		int track = 0;

		for (; p < n && pages[p].gfn == slot->base_gfn + g; p++)
			track += pages[p].tracked;
		if (track != slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][g])
			ok = violation(a, "gfn_track of gfn %#llx is %u, %d pages track it",
				       (unsigned long long)(slot->base_gfn + g),
				       slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][g], track);
	}
	for (int level = 2; ok && level <= KVM_NR_PAGE_SIZES; level++) {
		p = 0;
		for (uint64_t i = 0; ok && i < frames(slot, level); i++) {
			int expect = memslot_lpage_misaligned(slot, i, level);

			for (; p < n && gfn_to_index(pages[p].gfn, slot->base_gfn, level) == i; p++)
				expect++;
			if (expect != slot->arch.lpage_info[level - 2][i].disallow_lpage)
				ok = violation(a, "disallow_lpage of level-%d frame %llu of slot %d is %d, "
					       "expected %d", level, (unsigned long long)i, slot->id,
					       slot->arch.lpage_info[level - 2][i].disallow_lpage, expect);
		}
	}
	free(pages);
	return ok;
}

static bool audit_accounting(struct audit *a)
{
	unsigned indirect = 0;
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		indirect += accounted(sp);
	if (indirect != a->kvm->mmu->indirect_shadow_pages)
		return violation(a, "indirect_shadow_pages is %u, %u pages are accounted",
				 a->kvm->mmu->indirect_shadow_pages, indirect);
	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		struct kvm_memslots *slots = a->kvm->memslots[as];

		for (int s = 0; s < slots->used_slots; s++)
			if (!audit_metadata_sizes(a, &slots->memslots[s]) ||
			    !audit_slot_accounting(a, &slots->memslots[s], as))
				return false;
	}
	return true;
}

static bool gfn_write_tracked(struct kvm *kvm, const struct kvm_mmu_page *sp)
{
	struct kvm_memory_slot *slot = __gfn_to_memslot(kvm->memslots[sp->role.smm ? 1 : 0], sp->gfn);

	return slot && slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][gfn_to_index(sp->gfn, slot->base_gfn, 1)];
}

static unsigned unsync_bits(const struct kvm_mmu_page *sp)
{
	unsigned n = 0;

	for (int w = 0; w < SPTES_PER_PAGE / 64; w++)
		n += (unsigned)__builtin_popcountll(sp->unsync_child_bitmap[w]);
	return n;
}

/* Every link to a page that is unsync or has unsync children has its bit set in the
 * linking page (bits may be stale, never missing: mmu_sync_children finds pages by them). */
static bool audit_unsync_path(struct audit *a, struct kvm_mmu_page *sp)
{
	struct rmap_iterator iter;
	uint64_t *sptep;

	for_each_rmap_spte(&sp->parent_ptes, &iter, sptep) {
		struct kvm_mmu_page *parent = sptep_to_sp(a->kvm, sptep);
		unsigned i = parent ? (unsigned)(sptep - parent->spt) : 0;

		if (parent && !((parent->unsync_child_bitmap[i / 64] >> (i % 64)) & 1))
			return violation(a, "page gfn %#llx (level %d) leads to an unsync page but its "
					 "link %u in page gfn %#llx has no unsync_child_bitmap bit",
					 (unsigned long long)sp->gfn, sp->role.level, i,
					 (unsigned long long)parent->gfn);
	}
	return true;
}

/* Invariant 4: unsync pages are valid indirect level-1 pages of untracked gfns;
 * unsync_children counts the bitmap; paths to unsync pages are marked. */
static bool audit_unsync(struct audit *a)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link) {
		if (sp->unsync && (sp->role.level != PT_PAGE_TABLE_LEVEL || sp->role.direct ||
				   sp->role.invalid || gfn_write_tracked(a->kvm, sp)))
			return violation(a, "unsync page gfn %#llx is level %d%s%s%s",
					 (unsigned long long)sp->gfn, sp->role.level,
					 sp->role.direct ? ", direct" : "", sp->role.invalid ? ", zapped" : "",
					 gfn_write_tracked(a->kvm, sp) ? ", write-tracked" : "");
		if (sp->unsync_children != unsync_bits(sp))
			return violation(a, "page gfn %#llx: unsync_children %u, %u bits set",
					 (unsigned long long)sp->gfn, sp->unsync_children, unsync_bits(sp));
		if ((sp->unsync || sp->unsync_children) && !audit_unsync_path(a, sp))
			return false;
	}
	return true;
}

/* n_used_mmu_pages counts the pages on active_mmu_pages (kvm_mod_used_mmu_pages). */
static bool audit_budget(struct audit *a)
{
	struct kvm_mmu_page *sp;
	unsigned long n = 0;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		n++;
	if (n != a->kvm->mmu->n_used_mmu_pages)
		return violation(a, "n_used_mmu_pages is %lu, %lu pages are active",
				 a->kvm->mmu->n_used_mmu_pages, n);
	return true;
}

/* Write flooding (spec §5.4): detect_write_flooding zaps a page at the emulated write that
 * brings its count to WRITE_FLOODING_LIMIT, and only those writes count, so no valid page
 * holds that many. */
static bool audit_flooding(struct audit *a)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link)
		if (!sp->role.invalid && !is_obsolete_sp(a->kvm, sp) &&
		    sp->write_flooding_count >= WRITE_FLOODING_LIMIT)
			return violation(a, "level-%u page gfn %#llx took %d emulated writes since its "
					 "last use and is still shadowed (write flooding)",
					 sp->role.level, (unsigned long long)sp->gfn, sp->write_flooding_count);
	return true;
}

/* Whether sp can be in a tree of the vCPU's MMU context: a level up to the root's (a PAE
 * tree's level 3 is pae_root, not a shadow page) and the role bits the context gives every
 * page it builds (all but the level, the quadrant, direct, access and invalid, which vary
 * down one tree). Pages of other contexts may share the role below their root: a 4-level
 * tree's level-2 pages serve PAE trees too. */
static bool built_by_context(const struct kvm_mmu_page *sp, const struct kvm_mmu *mmu)
{
	union kvm_mmu_page_role tree = { .level = 0xf, .quadrant = 3, .direct = 1, .access = 7,
					 .invalid = 1 };
	int top = mmu->shadow_root_level == PT32E_ROOT_LEVEL ? PT_DIRECTORY_LEVEL : mmu->shadow_root_level;

	return sp->role.level <= top && !((sp->role.word ^ mmu->base_role.word) & ~tree.word);
}

static bool audit_zero_bits_page(struct audit *a, const struct kvm_vcpu *vcpu,
				 const struct kvm_mmu_page *sp)
{
	for (int i = 0; i < SPTES_PER_PAGE; i++) {
		uint64_t spte = sp->spt[i];
		uint64_t bad;

		if (!present(a->kvm, spte))
			continue;
		bad = shadow_zero_bits(&vcpu->mmu, spte, sp->role.level);
		if (bad)
			return violation(a, "level-%u spte %d of page gfn %#llx is %#llx: bits %#llx are "
					 "reserved in vCPU %d's sptes (shadow zero-bit check)",
					 sp->role.level, i, (unsigned long long)sp->gfn,
					 (unsigned long long)spte, (unsigned long long)bad, vcpu->vcpu_id);
	}
	return true;
}

/* Invariant 15 (spte reserved bits): no present spte in a page of a vCPU's current MMU
 * context has a bit that context's shadow zero-bit check forbids.
 * walk_shadow_page_get_mmio_spte WARNs and fails the fault when an MMIO walk crosses one
 * (v4.20-v5.4), so KVM must keep its own sptes, the NX of FNAME(page_fault)'s CR0.WP=0
 * trick included, within reset_shadow_zero_bits_mask. */
static bool audit_zero_bits(struct audit *a)
{
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link) {
		if (sp->role.invalid || is_obsolete_sp(a->kvm, sp))
			continue;
		for (int v = 0; v < a->kvm->nr_vcpus; v++) {
			const struct kvm_vcpu *vcpu = &a->kvm->vcpus[v];

			/* A vCPU with a reload pending gets a new context's roots first. */
			if (!VALID_PAGE(vcpu->mmu.root_hpa) || (vcpu->requests & KVM_REQ_MMU_RELOAD) ||
			    !built_by_context(sp, &vcpu->mmu))
				continue;
			if (!audit_zero_bits_page(a, vcpu, sp))
				return false;
		}
	}
	return true;
}

/* Whether gen is a settled generation: not the value of an update in progress (K420:
 * odd; K51+: KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS), which no MMIO spte may match. */
static bool settled_generation(const struct kvm *kvm, uint64_t gen)
{
	if (kvm->config.profile == KVM_PROFILE_4_20)
		return !(gen & 1);
	return !(gen & KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS);
}

/* Invariant 13 (the fast path takes current sptes): an MMIO spte that mark_mmio_spte would
 * build, bit for bit, for the current generation of its address space passes
 * check_mmio_spte. Otherwise every access through it takes the slow path and rebuilds it
 * unchanged, for as long as the generation stays (bug B6 after generation 1024). */
static bool audit_mmio_generation(struct audit *a)
{
	const struct spte_params *p = &a->kvm->mmu->spte;
	struct kvm_mmu_page *sp;

	TAILQ_FOREACH(sp, &a->kvm->mmu->active_mmu_pages, link) {
		uint64_t gen = a->kvm->memslots[sp->role.smm ? 1 : 0]->generation;

		/* mark_mmio_spte sets mmio_cached on the page of every MMIO spte it makes. */
		if (!sp->mmio_cached || sp->role.invalid || is_obsolete_sp(a->kvm, sp) || !settled_generation(a->kvm, gen))
			continue;
		for (int i = 0; i < SPTES_PER_PAGE; i++) {
			uint64_t spte = sp->spt[i];

			if (!is_mmio_spte(p, spte) || check_mmio_spte(p, spte, gen) ||
			    make_mmio_spte(p, get_mmio_spte_gfn(p, spte), get_mmio_spte_access(p, spte), gen) != spte)
				continue;
			return violation(a, "MMIO spte %d of page gfn %#llx (%#llx) is what generation "
					 "%#llx builds, but check_mmio_spte rejects it (stored generation "
					 "decodes as %#llx)",
					 i, (unsigned long long)sp->gfn, (unsigned long long)spte,
					 (unsigned long long)gen,
					 (unsigned long long)get_mmio_spte_generation(p, spte));
		}
	}
	return true;
}

bool kvm_mmu_audit(struct kvm *kvm, char *msg, size_t len)
{
	struct audit a = { .kvm = kvm, .msg = msg, .len = len };

	return audit_hash(&a) && audit_sptes(&a) && audit_totals(&a) && audit_roots(&a) &&
	       audit_accounting(&a) && audit_budget(&a) && audit_flooding(&a) && audit_unsync(&a) &&
	       audit_zero_bits(&a) && audit_mmio_generation(&a);
}
