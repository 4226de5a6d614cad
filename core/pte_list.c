/* KVM's pte_list and rmap iterator (arch/x86/kvm/mmu.c: pte_list_add, pte_list_remove,
 * pte_list_desc_remove_entry, rmap_get_first/next), with the descriptor cache owned by the
 * caller. See pte_list.h for the layout rules the kernel's code implies. */
#include "pte_list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"

#ifdef SF_ASAN
#include <sanitizer/asan_interface.h>
#define poison(addr, size) ASAN_POISON_MEMORY_REGION(addr, size)
#define unpoison(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define poison(addr, size) ((void)(addr), (void)(size))
#define unpoison(addr, size) ((void)(addr), (void)(size))
#endif

#define DESCS_PER_BLOCK 256
#define BLOCK_BYTES (DESCS_PER_BLOCK * sizeof(struct pte_list_desc))

/* ---- Descriptor cache ---- */

void pte_list_cache_init(struct pte_list_cache *cache)
{
	memset(cache, 0, sizeof(*cache));
}

void pte_list_cache_reset(struct pte_list_cache *cache)
{
	for (size_t i = 0; i < cache->nr_blocks; i++)
		poison(cache->blocks[i], BLOCK_BYTES);
	cache->bump = 0;
	cache->free_list = NULL;
	cache->nr_used = 0;
}

void pte_list_cache_destroy(struct pte_list_cache *cache)
{
	for (size_t i = 0; i < cache->nr_blocks; i++) {
		unpoison(cache->blocks[i], BLOCK_BYTES);
		free(cache->blocks[i]);
	}
	free(cache->blocks);
	memset(cache, 0, sizeof(*cache));
}

size_t pte_list_cache_used(const struct pte_list_cache *cache)
{
	return cache->nr_used;
}

static int add_block(struct pte_list_cache *cache)
{
	struct pte_list_desc *block;

	if (cache->nr_blocks == cache->blocks_cap) {
		size_t cap = cache->blocks_cap ? 2 * cache->blocks_cap : 8;
		struct pte_list_desc **blocks = realloc(cache->blocks, cap * sizeof(*blocks));

		if (!blocks)
			return -ENOMEM;
		cache->blocks = blocks;
		cache->blocks_cap = cap;
	}
	block = malloc(BLOCK_BYTES);
	if (!block)
		return -ENOMEM;
	poison(block, BLOCK_BYTES);
	cache->blocks[cache->nr_blocks++] = block;
	return 0;
}

/* Free list first, then never-used descriptors, then a new block. */
static struct pte_list_desc *take_desc(struct pte_list_cache *cache)
{
	struct pte_list_desc *desc = cache->free_list;
	size_t block = cache->bump / DESCS_PER_BLOCK;

	if (desc) {
		unpoison(desc, sizeof(*desc));
		cache->free_list = desc->more;
		return desc;
	}
	if (block == cache->nr_blocks && add_block(cache) < 0)
		return NULL;
	desc = &cache->blocks[block][cache->bump % DESCS_PER_BLOCK];
	cache->bump++;
	unpoison(desc, sizeof(*desc));
	return desc;
}

/* mmu_alloc_pte_list_desc: a zeroed descriptor. */
static struct pte_list_desc *alloc_desc(struct pte_list_cache *cache)
{
	struct pte_list_desc *desc = take_desc(cache);

	if (!desc)
		return NULL;
	memset(desc, 0, sizeof(*desc));
	cache->nr_used++;
	return desc;
}

static void free_desc(struct pte_list_cache *cache, struct pte_list_desc *desc)
{
	desc->more = cache->free_list;
	cache->free_list = desc;
	cache->nr_used--;
	poison(desc, sizeof(*desc));
}

/* ---- Lists ---- */

static bool head_is_desc(const struct kvm_rmap_head *rmap_head)
{
	return rmap_head->val & 1;
}

static struct pte_list_desc *head_desc(const struct kvm_rmap_head *rmap_head)
{
	return (struct pte_list_desc *)(rmap_head->val & ~(uintptr_t)1);
}

static void set_head_desc(struct kvm_rmap_head *rmap_head, struct pte_list_desc *desc)
{
	rmap_head->val = desc ? (uintptr_t)desc | 1 : 0;
}

static int desc_nr_entries(const struct pte_list_desc *desc)
{
	int n = 0;

	while (n < PTE_LIST_EXT && desc->sptes[n])
		n++;
	return n;
}

/* The single pointer and the new entry become the first descriptor. */
static int add_second_entry(struct pte_list_cache *cache, uint64_t *sptep,
			    struct kvm_rmap_head *rmap_head)
{
	struct pte_list_desc *desc = alloc_desc(cache);

	if (!desc)
		return -ENOMEM;
	desc->sptes[0] = (uint64_t *)rmap_head->val;
	desc->sptes[1] = sptep;
	set_head_desc(rmap_head, desc);
	return 1;
}

/* The first descriptor with a free slot, or a new one after a full last descriptor. *count
 * gets 3 per full descriptor passed, not counting the last one (KVM's count). */
static struct pte_list_desc *desc_with_room(struct pte_list_cache *cache,
					    struct pte_list_desc *desc, int *count)
{
	*count = 0;
	while (desc->sptes[PTE_LIST_EXT - 1] && desc->more) {
		desc = desc->more;
		*count += PTE_LIST_EXT;
	}
	if (!desc->sptes[PTE_LIST_EXT - 1])
		return desc;
	desc->more = alloc_desc(cache);
	return desc->more;
}

int pte_list_add(struct pte_list_cache *cache, uint64_t *sptep, struct kvm_rmap_head *rmap_head)
{
	struct pte_list_desc *desc;
	int count, n;

	if (!rmap_head->val) {
		rmap_head->val = (uintptr_t)sptep;
		return 0;
	}
	if (!head_is_desc(rmap_head))
		return add_second_entry(cache, sptep, rmap_head);

	desc = desc_with_room(cache, head_desc(rmap_head), &count);
	if (!desc)
		return -ENOMEM;
	n = desc_nr_entries(desc);
	desc->sptes[n] = sptep;
	return count + n;
}

/* Take desc out of the chain (prev is the descriptor before it, or NULL) and free it. */
static void unlink_desc(struct pte_list_cache *cache, struct kvm_rmap_head *rmap_head,
			struct pte_list_desc *desc, struct pte_list_desc *prev)
{
	if (prev)
		prev->more = desc->more;
	else
		set_head_desc(rmap_head, desc->more);
	free_desc(cache, desc);
}

/* pte_list_desc_remove_entry: the last entry of desc fills the hole at i; an emptied desc
 * is freed. Returns the index the moved entry came from (i if it was the last one). */
static int desc_remove_entry(struct pte_list_cache *cache, struct kvm_rmap_head *rmap_head,
			     struct pte_list_desc *desc, int i, struct pte_list_desc *prev)
{
	int last = PTE_LIST_EXT - 1;

	while (last > i && !desc->sptes[last])
		last--;
	desc->sptes[i] = desc->sptes[last];
	desc->sptes[last] = NULL;
	if (last == 0)
		unlink_desc(cache, rmap_head, desc, prev);
	return last;
}

int pte_list_remove(struct pte_list_cache *cache, uint64_t *sptep,
		    struct kvm_rmap_head *rmap_head)
{
	struct pte_list_desc *prev = NULL;

	if (!head_is_desc(rmap_head)) {
		if (!rmap_head->val || (uint64_t *)rmap_head->val != sptep)
			return -ENOENT;
		rmap_head->val = 0;
		return 0;
	}
	for (struct pte_list_desc *desc = head_desc(rmap_head); desc; desc = desc->more) {
		for (int i = 0; i < PTE_LIST_EXT && desc->sptes[i]; i++) {
			if (desc->sptes[i] == sptep) {
				desc_remove_entry(cache, rmap_head, desc, i, prev);
				return 0;
			}
		}
		prev = desc;
	}
	return -ENOENT;
}

unsigned pte_list_count(const struct kvm_rmap_head *rmap_head)
{
	unsigned count = 0;

	if (!head_is_desc(rmap_head))
		return rmap_head->val != 0;
	for (const struct pte_list_desc *desc = head_desc(rmap_head); desc; desc = desc->more)
		count += (unsigned)desc_nr_entries(desc);
	return count;
}

void pte_list_destroy(struct pte_list_cache *cache, struct kvm_rmap_head *rmap_head)
{
	struct pte_list_desc *desc, *more;

	if (head_is_desc(rmap_head)) {
		for (desc = head_desc(rmap_head); desc; desc = more) {
			more = desc->more;
			free_desc(cache, desc);
		}
	}
	rmap_head->val = 0;
}

/* ---- Iteration ---- */

uint64_t *rmap_get_first(struct kvm_rmap_head *rmap_head, struct rmap_iterator *iter)
{
	iter->head = rmap_head;
	iter->desc = NULL;
	iter->prev = NULL;
	iter->pos = 0;
	iter->again = false;
	if (!head_is_desc(rmap_head))
		return (uint64_t *)rmap_head->val;
	iter->desc = head_desc(rmap_head);
	return iter->desc->sptes[0];
}

uint64_t *rmap_get_next(struct rmap_iterator *iter)
{
	if (!iter->desc)
		return NULL;
	if (iter->again) {
		iter->again = false;
		return iter->desc->sptes[iter->pos];
	}
	if (iter->pos < PTE_LIST_EXT - 1 && iter->desc->sptes[iter->pos + 1])
		return iter->desc->sptes[++iter->pos];
	/* A descriptor in the chain is never empty. */
	iter->prev = iter->desc;
	iter->desc = iter->desc->more;
	iter->pos = 0;
	return iter->desc ? iter->desc->sptes[0] : NULL;
}

void rmap_iter_remove(struct pte_list_cache *cache, struct rmap_iterator *iter)
{
	struct pte_list_desc *desc = iter->desc;
	struct pte_list_desc *more;
	int from;

	if (!desc) {
		iter->head->val = 0;
		return;
	}
	more = desc->more;
	from = desc_remove_entry(cache, iter->head, desc, iter->pos, iter->prev);
	if (from > iter->pos) {
		/* An entry not yet visited now sits at pos. */
		iter->again = true;
		return;
	}
	if (from != 0)
		return;
	/* desc was freed: the walk goes on at the start of the next one. */
	iter->desc = more;
	iter->pos = 0;
	iter->again = true;
}
