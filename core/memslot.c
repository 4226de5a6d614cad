/* Memslots (spec §1): KVM_SET_USER_MEMORY_REGION as virt/kvm/kvm_main.c handles it in
 * v4.20..v5.4 (__kvm_set_memory_region, update_memslots, install_new_memslots), the per-slot
 * x86 metadata of arch/x86/kvm/x86.c (kvm_arch_create_memslot) and the gfn lookups.
 *
 * Each address space has two kvm_memslots buffers: the active one (kvm->memslots) and a
 * spare (kvm->memslots_spare). An update builds the next set in the spare and installs it by
 * swapping the two, where the kernel allocates a fresh copy and frees the old one. */
#include "memslot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvm_host.h"
#include "mmu_trace.h"

struct kvm_memslots *__kvm_memslots(struct kvm *kvm, int as_id)
{
	return kvm->memslots[as_id];
}

struct kvm_memory_slot *id_to_memslot(struct kvm_memslots *slots, int id)
{
	return &slots->memslots[slots->id_to_index[id]];
}

uint64_t gfn_to_index(gfn_t gfn, gfn_t base_gfn, int level)
{
	return (gfn >> KVM_HPAGE_GFN_SHIFT(level)) - (base_gfn >> KVM_HPAGE_GFN_SHIFT(level));
}

struct kvm_lpage_info *lpage_info_slot(gfn_t gfn, const struct kvm_memory_slot *slot, int level)
{
	uint64_t index = gfn_to_index(gfn, slot->base_gfn, level);

	if (index >= slot->arch.nr_frames[level - 1])
		return NULL;
	return &slot->arch.lpage_info[level - 2][index];
}

static bool memslot_is_readonly(const struct kvm_memory_slot *slot)
{
	return slot->flags & KVM_MEM_READONLY;
}

/* ---- Generations (spec §1.4) ---- */

/* K420 flags an update in progress with the low bit; K51 and later use bit 63. */
static bool gen_uses_update_bit63(const struct kvm *kvm)
{
	return kvm->config.profile != KVM_PROFILE_4_20;
}

static uint64_t memslots_initial_generation(const struct kvm *kvm, int as_id)
{
	/* K420 kvm_create_vm starts 150 below the wrap so MMIO generation wraparound is
	 * exercised early; K51 dropped the hack ("Remove the hack to trigger memslot
	 * generation wraparound"). */
	if (!gen_uses_update_bit63(kvm))
		return (uint64_t)(2 * as_id) - 150;
	return (uint64_t)as_id;
}

/* Generation distance between two consecutive installs in one address space. */
static uint64_t memslots_gen_step(const struct kvm *kvm)
{
	return gen_uses_update_bit63(kvm) ? KVM_ADDRESS_SPACE_NUM : 2 * KVM_ADDRESS_SPACE_NUM;
}

static void memslots_updated(struct kvm *kvm, int as_id, uint64_t gen)
{
	if (kvm->arch_ops.memslots_updated)
		kvm->arch_ops.memslots_updated(kvm, as_id, gen);
}

/* First half of install_new_memslots: the value readers see while the update is published
 * but not finished (old generation was gen). */
static void memslots_gen_begin(const struct kvm *kvm, struct kvm_memslots *slots, uint64_t gen)
{
	if (gen_uses_update_bit63(kvm))
		slots->generation = gen | KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS;
	else
		slots->generation = gen + 1;
}

/* Second half, after synchronize_srcu_expedited. K420 runs kvm_arch_memslots_updated once
 * the final value is visible (bug B2); K51+ runs it before storing the final value. */
static void memslots_gen_end(struct kvm *kvm, int as_id, struct kvm_memslots *slots)
{
	uint64_t gen;

	if (!gen_uses_update_bit63(kvm)) {
		slots->generation += 2 * KVM_ADDRESS_SPACE_NUM - 1;
		memslots_updated(kvm, as_id, slots->generation);
		return;
	}
	gen = (slots->generation & ~KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS) + KVM_ADDRESS_SPACE_NUM;
	memslots_updated(kvm, as_id, gen);
	slots->generation = gen;
}

/* install_new_memslots: publish the spare set and retire the active one into the spare. */
static void install_new_memslots(struct kvm *kvm, int as_id)
{
	struct kvm_memslots *old = kvm->memslots[as_id];
	struct kvm_memslots *slots = kvm->memslots_spare[as_id];

	memslots_gen_begin(kvm, slots, old->generation);
	kvm->memslots[as_id] = slots;
	kvm->memslots_spare[as_id] = old;
	memslots_gen_end(kvm, as_id, slots);
	trace_install_new_memslots(kvm, as_id, slots->generation, 1);
}

/* Installs from gen on whose generation the hook ignores (some bit of mask set) before
 * the next one it may act on. Each install adds step, a power of two, so the bits below
 * step never change and the bits above it count installs; a low run of mask bits there
 * clears again every 2^run installs. Other masks get no shortcut (0). */
static uint64_t installs_before_wrap(uint64_t gen, uint64_t step, uint64_t mask)
{
	int shift = __builtin_ctzll(step);
	uint64_t high = mask >> shift, count = gen >> shift;

	if (gen & mask & (step - 1))
		return UINT64_MAX;
	if (high & (high + 1))
		return 0;
	return (count | high) - count;
}

/* A flag-neutral update installs a set identical to the active one: only the generation
 * moves, so it is advanced in place. The installs the hook would ignore are skipped in one
 * step (a jump of 2^20 installs runs the hook for its few wraps only); the others run as
 * install_new_memslots runs them, so the hook sees the same generations. */
void kvm_memslots_jump_generation(struct kvm *kvm, int as_id, uint64_t n_updates)
{
	struct kvm_memslots *slots = kvm->memslots[as_id];
	uint64_t step = memslots_gen_step(kvm), left = n_updates;
	uint64_t mask = kvm->arch_ops.memslots_wrap_mask ? kvm->arch_ops.memslots_wrap_mask(kvm) : 0;

	if (!kvm->arch_ops.memslots_updated) {
		slots->generation += n_updates * step;
		trace_install_new_memslots(kvm, as_id, slots->generation, n_updates);
		return;
	}
	while (left) {
		uint64_t quiet = installs_before_wrap(slots->generation, step, mask);

		if (quiet) {
			quiet = quiet < left ? quiet : left;
			slots->generation += quiet * step;
			left -= quiet;
			continue;
		}
		memslots_gen_begin(kvm, slots, slots->generation);
		memslots_gen_end(kvm, as_id, slots);
		left--;
	}
	trace_install_new_memslots(kvm, as_id, slots->generation, n_updates);
}

/* ---- Per-slot metadata (spec §1.5) ---- */

static void free_if_not_kept(void *ptr, const void *kept)
{
	if (ptr != kept)
		free(ptr);
}

/* kvm_arch_free_memslot: free what slot owns and keep (if non-NULL) does not share. */
static void kvm_arch_free_memslot(struct kvm_memory_slot *slot,
				  const struct kvm_memory_slot *keep)
{
	struct kvm_arch_memory_slot none = { 0 };
	const struct kvm_arch_memory_slot *kept = keep ? &keep->arch : &none;

	for (int i = 0; i < KVM_NR_PAGE_SIZES; i++) {
		free_if_not_kept(slot->arch.rmap[i], kept->rmap[i]);
		slot->arch.rmap[i] = NULL;
	}
	for (int i = 0; i < KVM_NR_PAGE_SIZES - 1; i++) {
		free_if_not_kept(slot->arch.lpage_info[i], kept->lpage_info[i]);
		slot->arch.lpage_info[i] = NULL;
	}
	for (int i = 0; i < KVM_PAGE_TRACK_MAX; i++) {
		free_if_not_kept(slot->arch.gfn_track[i], kept->gfn_track[i]);
		slot->arch.gfn_track[i] = NULL;
	}
}

/* kvm_free_memslot */
static void kvm_free_memslot(struct kvm_memory_slot *slot, const struct kvm_memory_slot *keep)
{
	free_if_not_kept(slot->dirty_bitmap, keep ? keep->dirty_bitmap : NULL);
	slot->dirty_bitmap = NULL;
	kvm_arch_free_memslot(slot, keep);
}

/* A level-sized frame may be mapped large only if it lies wholly inside the slot and gfn
 * and hva agree modulo the frame size. */
bool memslot_lpage_misaligned(const struct kvm_memory_slot *slot, uint64_t index, int level)
{
	gfn_t mask = KVM_PAGES_PER_HPAGE(level) - 1;
	gfn_t ugfn = slot->userspace_addr >> PAGE_SHIFT;
	uint64_t last = gfn_to_index(slot->base_gfn + slot->npages - 1, slot->base_gfn, level);

	if (index == 0 && (slot->base_gfn & mask))
		return true;
	if (index == last && ((slot->base_gfn + slot->npages) & mask))
		return true;
	return (slot->base_gfn ^ ugfn) & mask;
}

static void init_disallow_lpage(const struct kvm_memory_slot *slot, struct kvm_lpage_info *linfo,
				uint64_t lpages, int level)
{
	for (uint64_t i = 0; i < lpages; i++)
		linfo[i].disallow_lpage = memslot_lpage_misaligned(slot, i, level);
}

static int alloc_level_metadata(struct kvm_memory_slot *slot, int level)
{
	uint64_t lpages = gfn_to_index(slot->base_gfn + slot->npages - 1, slot->base_gfn, level) + 1;
	struct kvm_lpage_info *linfo;

	slot->arch.rmap[level - 1] = calloc(lpages, sizeof(struct kvm_rmap_head));
	if (!slot->arch.rmap[level - 1])
		return -ENOMEM;
	slot->arch.nr_frames[level - 1] = lpages;
	if (level == PT_PAGE_TABLE_LEVEL)
		return 0;
	linfo = calloc(lpages, sizeof(*linfo));
	if (!linfo)
		return -ENOMEM;
	slot->arch.lpage_info[level - 2] = linfo;
	init_disallow_lpage(slot, linfo, lpages, level);
	return 0;
}

/* kvm_arch_create_memslot + kvm_page_track_create_memslot. slot starts as a copy of the old
 * slot (MOVE), whose arrays stay with the old slot: forget them before allocating. */
static int kvm_arch_create_memslot(struct kvm_memory_slot *slot)
{
	memset(&slot->arch, 0, sizeof(slot->arch));
	for (int level = PT_PAGE_TABLE_LEVEL; level <= KVM_NR_PAGE_SIZES; level++) {
		if (alloc_level_metadata(slot, level))
			goto fail;
	}
	slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE] = calloc(slot->npages, sizeof(uint16_t));
	if (!slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE])
		goto fail;
	return 0;
fail:
	kvm_arch_free_memslot(slot, NULL);
	return -ENOMEM;
}

/* kvm_create_dirty_bitmap: twice the bitmap; the second half is GET_DIRTY_LOG's buffer. */
static int kvm_create_dirty_bitmap(struct kvm_memory_slot *slot)
{
	uint64_t words = (slot->npages + 63) / 64;

	slot->dirty_bitmap = calloc(2 * words, sizeof(uint64_t));
	return slot->dirty_bitmap ? 0 : -ENOMEM;
}

/* Whether the change gets fresh x86 metadata. K420..v5.6 allocated it for CREATE only, so a
 * MOVE kept the arrays sized and aligned for the old base_gfn (bug B17, fixed by "KVM: x86:
 * Allocate new rmap and large page tracking when moving memslot"). The model is fixed. */
/* B17 (fixed in 2020 by "KVM: x86: Allocate new rmap and large page tracking when moving
 * memslot"): K420...v5.6 kept the old slot's arrays on MOVE, sized and aligned for the old
 * base_gfn. */
static bool memslot_needs_new_metadata(const struct kvm *kvm, enum kvm_mr_change change)
{
	if (change == KVM_MR_MOVE && kvm_bug(&kvm->config, KVM_BUG_B17_MOVE_KEEPS_METADATA))
		return false;
	return change == KVM_MR_CREATE || change == KVM_MR_MOVE;
}

static int kvm_alloc_memslot_metadata(const struct kvm *kvm, struct kvm_memory_slot *new,
				      const struct kvm_memory_slot *old, enum kvm_mr_change change)
{
	int r;

	if (memslot_needs_new_metadata(kvm, change)) {
		r = kvm_arch_create_memslot(new);
		if (r)
			return r;
	}
	if ((new->flags & KVM_MEM_LOG_DIRTY_PAGES) && !new->dirty_bitmap) {
		r = kvm_create_dirty_bitmap(new);
		if (r) {
			kvm_free_memslot(new, old);
			return r;
		}
	}
	return 0;
}

/* ---- The sorted slot array ---- */

/* Move entry from to index to, shifting the entries in between by one. */
static void memslots_move_entry(struct kvm_memslots *slots, int from, int to)
{
	struct kvm_memory_slot moved = slots->memslots[from];
	int step = from < to ? 1 : -1;

	for (int i = from; i != to; i += step) {
		slots->memslots[i] = slots->memslots[i + step];
		slots->id_to_index[slots->memslots[i].id] = (int16_t)i;
	}
	slots->memslots[to] = moved;
	slots->id_to_index[moved.id] = (int16_t)to;
}

/* update_memslots: used slots first, by base_gfn descending (no two share a base_gfn in
 * one address space), then the empty ones. */
static void update_memslots(struct kvm_memslots *slots, const struct kvm_memory_slot *new)
{
	int i = slots->id_to_index[new->id];
	int pos = 0;

	/* Park the entry at the boundary between used and empty slots. */
	if (slots->memslots[i].npages)
		slots->used_slots--;
	memslots_move_entry(slots, i, slots->used_slots);
	slots->memslots[slots->used_slots] = *new;
	if (!new->npages)
		return;
	while (pos < slots->used_slots && slots->memslots[pos].base_gfn > new->base_gfn)
		pos++;
	memslots_move_entry(slots, slots->used_slots, pos);
	slots->used_slots++;
}

/* ---- KVM_SET_USER_MEMORY_REGION ---- */

static int check_memory_region_flags(const struct kvm_userspace_memory_region *mem)
{
	return (mem->flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)) ? -EINVAL : 0;
}

/* access_ok(): the whole range below the user address limit, without wrapping. */
static bool hva_range_ok(uint64_t hva, uint64_t size)
{
	return hva <= HOST_TASK_SIZE && size <= HOST_TASK_SIZE - hva;
}

/* The sanity checks of __kvm_set_memory_region, in its order. Slot ids are all user ids
 * here (kvm_vm_ioctl_set_memory_region refused the others), so the hva is always checked
 * and the id range check cannot fail. */
static int check_memory_region(const struct kvm_userspace_memory_region *mem)
{
	int r = check_memory_region_flags(mem);

	if (r)
		return r;
	if ((mem->memory_size | mem->guest_phys_addr) & ~PAGE_MASK)
		return -EINVAL;
	if ((mem->userspace_addr & ~PAGE_MASK) ||
	    !hva_range_ok(mem->userspace_addr, mem->memory_size))
		return -EINVAL;
	if ((mem->slot >> 16) >= KVM_ADDRESS_SPACE_NUM)
		return -EINVAL;
	if (mem->guest_phys_addr + mem->memory_size < mem->guest_phys_addr)
		return -EINVAL;
	if ((mem->memory_size >> PAGE_SHIFT) > KVM_MEM_MAX_NR_PAGES)
		return -EINVAL;
	return 0;
}

/* Which change a valid request is, or -EINVAL for an illegal modification. */
static int classify_change(const struct kvm_memory_slot *old,
			   const struct kvm_userspace_memory_region *mem, enum kvm_mr_change *change)
{
	uint64_t npages = mem->memory_size >> PAGE_SHIFT;

	if (!npages) {
		if (!old->npages)
			return -EINVAL;
		*change = KVM_MR_DELETE;
		return 0;
	}
	if (!old->npages) {
		*change = KVM_MR_CREATE;
		return 0;
	}
	if (mem->userspace_addr != old->userspace_addr || npages != old->npages ||
	    ((mem->flags ^ old->flags) & KVM_MEM_READONLY))
		return -EINVAL;
	if ((mem->guest_phys_addr >> PAGE_SHIFT) != old->base_gfn)
		*change = KVM_MR_MOVE;
	else if (mem->flags != old->flags)
		*change = KVM_MR_FLAGS_ONLY;
	else
		*change = KVM_MR_NONE;
	return 0;
}

/* Another slot of the same address space intersecting [base_gfn, base_gfn + npages). */
static bool memslot_overlaps(struct kvm_memslots *slots, int id, gfn_t base_gfn,
			     uint64_t npages)
{
	for (int i = 0; i < slots->used_slots; i++) {
		const struct kvm_memory_slot *slot = &slots->memslots[i];

		if (slot->id == id)
			continue;
		if (base_gfn < slot->base_gfn + slot->npages && slot->base_gfn < base_gfn + npages)
			return true;
	}
	return false;
}

/* The slot as it will be installed; metadata pointers are still old's. */
static void build_new_memslot(struct kvm_memory_slot *new, const struct kvm_memory_slot *old,
			      const struct kvm_userspace_memory_region *mem,
			      enum kvm_mr_change change)
{
	*new = *old;
	new->base_gfn = mem->guest_phys_addr >> PAGE_SHIFT;
	new->npages = mem->memory_size >> PAGE_SHIFT;
	new->flags = mem->flags;
	if (change == KVM_MR_CREATE)
		new->userspace_addr = mem->userspace_addr;
	if (change == KVM_MR_DELETE) {
		/* An empty slot owns nothing: old's arrays are freed after the commit. */
		new->base_gfn = 0;
		new->flags = 0;
		memset(&new->arch, 0, sizeof(new->arch));
	}
	if (!(new->flags & KVM_MEM_LOG_DIRTY_PAGES))
		new->dirty_bitmap = NULL;
}

/* The update protocol of spec §1.3. DELETE and MOVE first install a copy in which the slot
 * is INVALID and let the MMU drop everything it built from the slot; afterwards the spare
 * buffer is the pre-update set again, which the final set is built from. */
static void kvm_set_memslot(struct kvm *kvm, int as_id, const struct kvm_memory_slot *old,
			    const struct kvm_memory_slot *new, enum kvm_mr_change change)
{
	struct kvm_memslots *slots = kvm->memslots_spare[as_id];

	memcpy(slots, kvm->memslots[as_id], sizeof(*slots));
	if (change == KVM_MR_DELETE || change == KVM_MR_MOVE) {
		struct kvm_memory_slot *slot = id_to_memslot(slots, old->id);

		slot->flags |= KVM_MEMSLOT_INVALID;
		install_new_memslots(kvm, as_id);
		if (kvm->arch_ops.flush_shadow_memslot)
			kvm->arch_ops.flush_shadow_memslot(kvm, slot);
		slots = kvm->memslots_spare[as_id];
	}
	update_memslots(slots, new);
	install_new_memslots(kvm, as_id);
	if (kvm->arch_ops.commit_memory_region)
		kvm->arch_ops.commit_memory_region(kvm, old,
						   id_to_memslot(kvm->memslots[as_id], new->id),
						   change);
}

static int __kvm_set_memory_region(struct kvm *kvm, const struct kvm_userspace_memory_region *mem,
				   enum kvm_mr_change *change_out)
{
	int as_id = mem->slot >> 16;
	int id = (uint16_t)mem->slot;
	struct kvm_memory_slot old, new;
	enum kvm_mr_change change;
	int r;

	r = check_memory_region(mem);
	if (r)
		return r;
	old = *id_to_memslot(__kvm_memslots(kvm, as_id), id);
	r = classify_change(&old, mem, &change);
	if (r)
		return r;
	if ((change == KVM_MR_CREATE || change == KVM_MR_MOVE) &&
	    memslot_overlaps(__kvm_memslots(kvm, as_id), id, mem->guest_phys_addr >> PAGE_SHIFT,
			     mem->memory_size >> PAGE_SHIFT))
		return -EEXIST;
	if (change != KVM_MR_NONE) {
		build_new_memslot(&new, &old, mem, change);
		r = kvm_alloc_memslot_metadata(kvm, &new, &old, change);
		if (r)
			return r;
		kvm_set_memslot(kvm, as_id, &old, &new, change);
		kvm_free_memslot(&old, &new);
	}
	if (change_out)
		*change_out = change;
	return 0;
}

int kvm_set_memory_region(struct kvm *kvm, const struct kvm_userspace_memory_region *mem,
			  enum kvm_mr_change *change)
{
	/* kvm_vm_ioctl_set_memory_region: the private slots are KVM's own. */
	if ((uint16_t)mem->slot >= KVM_USER_MEM_SLOTS)
		return -EINVAL;
	return __kvm_set_memory_region(kvm, mem, change);
}

/* ---- Lookups (spec §1.6) ---- */

/* search_memslots: the first slot (by descending base_gfn) starting at or below gfn is the
 * only candidate. */
struct kvm_memory_slot *__gfn_to_memslot(struct kvm_memslots *slots, gfn_t gfn)
{
	int start = 0, end = slots->used_slots;
	struct kvm_memory_slot *slot;

	while (start < end) {
		int mid = start + (end - start) / 2;

		if (gfn >= slots->memslots[mid].base_gfn)
			end = mid;
		else
			start = mid + 1;
	}
	if (start == slots->used_slots)
		return NULL;
	slot = &slots->memslots[start];
	return gfn - slot->base_gfn < slot->npages ? slot : NULL;
}

bool kvm_is_visible_gfn(struct kvm_memslots *slots, gfn_t gfn)
{
	const struct kvm_memory_slot *slot = __gfn_to_memslot(slots, gfn);

	return slot && slot->id < KVM_USER_MEM_SLOTS && !(slot->flags & KVM_MEMSLOT_INVALID);
}

static hva_t __gfn_to_hva_memslot(const struct kvm_memory_slot *slot, gfn_t gfn)
{
	return slot->userspace_addr + ((gfn - slot->base_gfn) << PAGE_SHIFT);
}

/* As the kernel, *writable is left alone when there is no usable slot. */
hva_t gfn_to_hva_memslot_prot(const struct kvm_memory_slot *slot, gfn_t gfn, bool *writable)
{
	if (!slot || (slot->flags & KVM_MEMSLOT_INVALID))
		return KVM_HVA_ERR_BAD;
	if (writable)
		*writable = !memslot_is_readonly(slot);
	return __gfn_to_hva_memslot(slot, gfn);
}

/* Host mappings are always writable in the model, so only READONLY slots map read-only.
 * *writable is false for every outcome that is not a pfn, so callers never read garbage. */
kvm_pfn_t __gfn_to_pfn_memslot(struct kvm *kvm, const struct kvm_memory_slot *slot, gfn_t gfn,
			       bool write_fault, bool *writable)
{
	bool ignored;
	kvm_pfn_t pfn;

	if (!writable)
		writable = &ignored;
	*writable = false;
	if (!slot || (slot->flags & KVM_MEMSLOT_INVALID))
		return KVM_PFN_NOSLOT;
	if (memslot_is_readonly(slot) && write_fault)
		return KVM_PFN_ERR_RO_FAULT;
	pfn = host_hva_to_pfn(kvm->host, __gfn_to_hva_memslot(slot, gfn));
	*writable = pfn != KVM_PFN_ERR_FAULT && !memslot_is_readonly(slot);
	return pfn;
}

/* gfn_to_page_many_atomic (v5.1): gfn_to_hva_many asks for a writable hva, so READONLY
 * slots fail; __get_user_pages_fast stops at the first page it cannot pin. */
int gfn_to_page_many_atomic(struct kvm *kvm, const struct kvm_memory_slot *slot, gfn_t gfn,
			    kvm_pfn_t *pfns, int nr_pages)
{
	int i;

	if (!slot || (slot->flags & KVM_MEMSLOT_INVALID) || memslot_is_readonly(slot))
		return -1;
	if (slot->npages - (gfn - slot->base_gfn) < (uint64_t)nr_pages)
		return 0;
	for (i = 0; i < nr_pages; i++) {
		pfns[i] = host_hva_to_pfn(kvm->host, __gfn_to_hva_memslot(slot, gfn + i));
		if (pfns[i] == KVM_PFN_ERR_FAULT)
			break;
	}
	return i;
}

/* ---- Lifetime ---- */

static void kvm_free_memslots_metadata(struct kvm_memslots *slots)
{
	for (int i = 0; i < slots->used_slots; i++)
		kvm_free_memslot(&slots->memslots[i], NULL);
}

static void kvm_init_memslots(struct kvm_memslots *slots, int as_id, uint64_t generation)
{
	memset(slots, 0, sizeof(*slots));
	for (int i = 0; i < KVM_MEM_SLOTS_NUM; i++) {
		slots->memslots[i].id = (int16_t)i;
		slots->memslots[i].as_id = (int16_t)as_id;
		slots->id_to_index[i] = (int16_t)i;
	}
	slots->generation = generation;
}

static int alloc_memslots(struct kvm_memslots **slots)
{
	if (!*slots)
		*slots = calloc(1, sizeof(**slots));
	return *slots ? 0 : -ENOMEM;
}

/* Also serves kvm_reset: existing buffers are emptied (their slots' metadata freed) and
 * reused, and the generations start over for the configured profile. */
int kvm_memslots_init(struct kvm *kvm)
{
	for (int as_id = 0; as_id < KVM_ADDRESS_SPACE_NUM; as_id++) {
		if (kvm->memslots[as_id])
			kvm_free_memslots_metadata(kvm->memslots[as_id]);
		if (alloc_memslots(&kvm->memslots[as_id]) ||
		    alloc_memslots(&kvm->memslots_spare[as_id])) {
			kvm_memslots_destroy(kvm);
			return -ENOMEM;
		}
		kvm_init_memslots(kvm->memslots[as_id], as_id,
				  memslots_initial_generation(kvm, as_id));
	}
	return 0;
}

void kvm_memslots_destroy(struct kvm *kvm)
{
	for (int as_id = 0; as_id < KVM_ADDRESS_SPACE_NUM; as_id++) {
		if (kvm->memslots[as_id])
			kvm_free_memslots_metadata(kvm->memslots[as_id]);
		free(kvm->memslots[as_id]);
		free(kvm->memslots_spare[as_id]);
		kvm->memslots[as_id] = NULL;
		kvm->memslots_spare[as_id] = NULL;
	}
}
