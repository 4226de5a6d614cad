/* KVM's pte_list (arch/x86/kvm/mmu.c): the multiset of spte pointers behind every reverse
 * map and every shadow page's parent_ptes (spec §5.1). A head is 0 (empty), one spte
 * pointer (bit 0 clear) or, with bit 0 set, a chain of descriptors holding PTE_LIST_EXT
 * pointers each. The layout follows the kernel's exactly, because it fixes the order in
 * which for_each_rmap_spte visits sptes and the count pte_list_add reports:
 *  - a second entry turns the head into one descriptor [old, new]; the head never goes back
 *    to the single-pointer form until the list is empty;
 *  - an add goes to the first descriptor with a free slot, or to a new one appended at the
 *    end of the chain;
 *  - a removal moves the last entry of the same descriptor into the hole and frees the
 *    descriptor once it is empty.
 * Descriptors come from a pte_list_cache the caller owns (KVM's mmu_pte_list_desc_cache). */
#ifndef SHADOWFUZZ_CORE_PTE_LIST_H
#define SHADOWFUZZ_CORE_PTE_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memslot.h"

#define PTE_LIST_EXT 3

struct pte_list_desc {
	uint64_t *sptes[PTE_LIST_EXT]; /* filled from index 0; NULL = free */
	struct pte_list_desc *more;
};

/* Descriptor allocator: blocks carved by a bump pointer, freed descriptors on a free list.
 * After warm-up an add allocates nothing from the C heap. Under ASan free descriptors are
 * poisoned, so a stale sptep list pointer is caught. */
struct pte_list_cache {
	struct pte_list_desc **blocks;
	size_t nr_blocks, blocks_cap;
	size_t bump; /* descriptors handed out from the blocks so far */
	struct pte_list_desc *free_list;
	size_t nr_used;
};

void pte_list_cache_init(struct pte_list_cache *cache);
/* Every descriptor becomes free at once (between fuzz inputs); every head that used one
 * must be forgotten (zeroed) by the caller. Keeps the blocks for reuse. */
void pte_list_cache_reset(struct pte_list_cache *cache);
void pte_list_cache_destroy(struct pte_list_cache *cache);
/* Descriptors currently owned by lists (for leak checks). */
size_t pte_list_cache_used(const struct pte_list_cache *cache);

/* Add sptep (duplicates allowed). Returns what KVM's pte_list_add returns, the entries
 * before the add except that a list whose last descriptor is full reports 3 fewer (KVM
 * does not count that descriptor; rmap_add compares the value with
 * RMAP_RECYCLE_THRESHOLD), or -ENOMEM if a descriptor could not be allocated. */
int pte_list_add(struct pte_list_cache *cache, uint64_t *sptep, struct kvm_rmap_head *rmap_head);
/* Remove one occurrence of sptep. Returns 0, or -ENOENT (list untouched) if it is not in
 * the list, where KVM would BUG(). */
int pte_list_remove(struct pte_list_cache *cache, uint64_t *sptep,
		    struct kvm_rmap_head *rmap_head);
unsigned pte_list_count(const struct kvm_rmap_head *rmap_head);
/* Empty the list, returning its descriptors to the cache. */
void pte_list_destroy(struct pte_list_cache *cache, struct kvm_rmap_head *rmap_head);

/* KVM's rmap_iterator, plus what rmap_iter_remove needs. Fields are private. */
struct rmap_iterator {
	struct kvm_rmap_head *head;
	struct pte_list_desc *desc; /* NULL: single-pointer form, or the end */
	struct pte_list_desc *prev; /* descriptor before desc in the chain */
	int pos;
	bool again; /* an unvisited entry was moved into pos: rmap_get_next returns it */
};

/* First entry, or NULL if the list is empty. Unlike KVM's these do not assert that the spte
 * is present: parent_ptes and rmaps share them and the caller knows which it walks. */
uint64_t *rmap_get_first(struct kvm_rmap_head *rmap_head, struct rmap_iterator *iter);
uint64_t *rmap_get_next(struct rmap_iterator *iter);
/* Remove the entry the iterator returned last; the walk then goes on with the entries not
 * yet visited. At most once per returned entry. Other changes to the list during a walk
 * need a restart with rmap_get_first, as in KVM. */
void rmap_iter_remove(struct pte_list_cache *cache, struct rmap_iterator *iter);

#define for_each_rmap_spte(_rmap_head_, _iter_, _spte_)                          \
	for (_spte_ = rmap_get_first(_rmap_head_, _iter_); _spte_;                \
	     _spte_ = rmap_get_next(_iter_))

#endif
