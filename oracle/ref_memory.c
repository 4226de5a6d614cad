/* The reference's copy of guest memory: a handful of regions (one per memslot) over
 * 4 KiB pages keyed by host virtual address. Page contents live in an arena of chunks
 * indexed by an open-addressing hash of hva page numbers; reset keeps a few chunks so a
 * fuzzing loop does not go back to malloc for every input. */
#include "ref_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGES_PER_CHUNK 64
#define CHUNKS_KEPT_ON_RESET 4
#define INITIAL_HASH_SLOTS 1024u

struct ref_region {
	int as_id;
	int slot_id;
	gpa_t gpa;
	gpa_t last; /* gpa + size - 1: a region may end at 2^64 */
	hva_t hva;
	bool readonly;
};

struct page_slot {
	uint64_t hva_pfn;
	uint32_t index_plus_one; /* 0: empty */
};

struct ref_memory {
	struct ref_region regions[REF_MAX_REGIONS];
	int n_regions;
	int last_hit; /* region index of the latest lookup: walks stay in one slot */

	struct page_slot *slots;
	uint32_t n_slots; /* power of two */
	uint32_t n_pages;

	uint8_t **chunks;
	uint32_t n_chunks, chunks_cap;
	hva_t *page_hva; /* by page index, for ordered iteration */
	uint32_t page_hva_cap;

	_Alignas(64) uint8_t zero_page[PAGE_SIZE];
};

static uint32_t hash_pfn(uint64_t pfn, uint32_t n_slots)
{
	return (uint32_t)((pfn * 0x9e3779b97f4a7c15ull) >> 32) & (n_slots - 1);
}

static uint8_t *page_data(const struct ref_memory *mem, uint32_t index)
{
	return mem->chunks[index / PAGES_PER_CHUNK] + (size_t)(index % PAGES_PER_CHUNK) * PAGE_SIZE;
}

static uint8_t *lookup_page(const struct ref_memory *mem, hva_t hva)
{
	uint64_t pfn = hva >> PAGE_SHIFT;
	uint32_t mask = mem->n_slots - 1;

	for (uint32_t i = hash_pfn(pfn, mem->n_slots);; i = (i + 1) & mask) {
		const struct page_slot *slot = &mem->slots[i];

		if (!slot->index_plus_one)
			return NULL;
		if (slot->hva_pfn == pfn)
			return page_data(mem, slot->index_plus_one - 1);
	}
}

static void insert_slot(struct page_slot *slots, uint32_t n_slots, uint64_t pfn, uint32_t index)
{
	uint32_t i = hash_pfn(pfn, n_slots);

	while (slots[i].index_plus_one)
		i = (i + 1) & (n_slots - 1);
	slots[i].hva_pfn = pfn;
	slots[i].index_plus_one = index + 1;
}

static int grow_hash(struct ref_memory *mem)
{
	uint32_t n_slots = mem->n_slots * 2;
	struct page_slot *slots = calloc(n_slots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < mem->n_slots; i++) {
		if (mem->slots[i].index_plus_one)
			insert_slot(slots, n_slots, mem->slots[i].hva_pfn,
				    mem->slots[i].index_plus_one - 1);
	}
	free(mem->slots);
	mem->slots = slots;
	mem->n_slots = n_slots;
	return 0;
}

static int grow_array(void **array, uint32_t *cap, size_t elem_size)
{
	uint32_t new_cap = *cap ? *cap * 2 : 16;
	void *p = realloc(*array, new_cap * elem_size);

	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = new_cap;
	return 0;
}

/* Makes room for page index n_pages: its chunk and its hva record. */
static int reserve_page(struct ref_memory *mem)
{
	uint32_t chunk = mem->n_pages / PAGES_PER_CHUNK;

	if (mem->n_pages == mem->page_hva_cap &&
	    grow_array((void **)&mem->page_hva, &mem->page_hva_cap, sizeof(hva_t)))
		return -ENOMEM;
	if (chunk < mem->n_chunks)
		return 0;
	if (mem->n_chunks == mem->chunks_cap &&
	    grow_array((void **)&mem->chunks, &mem->chunks_cap, sizeof(uint8_t *)))
		return -ENOMEM;
	mem->chunks[chunk] = aligned_alloc(PAGE_SIZE, PAGES_PER_CHUNK * PAGE_SIZE);
	if (!mem->chunks[chunk])
		return -ENOMEM;
	mem->n_chunks++;
	return 0;
}

static uint8_t *alloc_page(struct ref_memory *mem, hva_t hva)
{
	uint32_t index = mem->n_pages;
	uint8_t *data;

	/* Load factor at most 1/2 keeps probe sequences short. */
	if ((mem->n_pages + 1) * 2 > mem->n_slots && grow_hash(mem))
		return NULL;
	if (reserve_page(mem))
		return NULL;
	data = page_data(mem, index);
	memset(data, 0, PAGE_SIZE);
	mem->page_hva[index] = hva & PAGE_MASK;
	insert_slot(mem->slots, mem->n_slots, hva >> PAGE_SHIFT, index);
	mem->n_pages++;
	return data;
}

struct ref_memory *ref_memory_new(void)
{
	struct ref_memory *mem = calloc(1, sizeof(*mem));

	if (!mem)
		return NULL;
	mem->n_slots = INITIAL_HASH_SLOTS;
	mem->slots = calloc(mem->n_slots, sizeof(*mem->slots));
	if (!mem->slots) {
		free(mem);
		return NULL;
	}
	return mem;
}

void ref_memory_free(struct ref_memory *mem)
{
	if (!mem)
		return;
	for (uint32_t i = 0; i < mem->n_chunks; i++)
		free(mem->chunks[i]);
	free(mem->chunks);
	free(mem->page_hva);
	free(mem->slots);
	free(mem);
}

void ref_memory_reset(struct ref_memory *mem)
{
	if (!mem)
		return;
	mem->n_regions = 0;
	mem->last_hit = 0;
	mem->n_pages = 0;
	while (mem->n_chunks > CHUNKS_KEPT_ON_RESET)
		free(mem->chunks[--mem->n_chunks]);
	if (mem->n_slots > INITIAL_HASH_SLOTS) {
		struct page_slot *slots = calloc(INITIAL_HASH_SLOTS, sizeof(*slots));

		if (slots) {
			free(mem->slots);
			mem->slots = slots;
			mem->n_slots = INITIAL_HASH_SLOTS;
			return;
		}
	}
	memset(mem->slots, 0, mem->n_slots * sizeof(*mem->slots));
}

static int find_region_slot(const struct ref_memory *mem, int as_id, int slot_id)
{
	for (int i = 0; i < mem->n_regions; i++) {
		if (mem->regions[i].as_id == as_id && mem->regions[i].slot_id == slot_id)
			return i;
	}
	return -1;
}

static void remove_region(struct ref_memory *mem, int index)
{
	mem->regions[index] = mem->regions[--mem->n_regions];
	mem->last_hit = 0;
}

int ref_memory_set_region(struct ref_memory *mem, int as_id, int slot_id, gpa_t gpa,
			  uint64_t size, hva_t hva, bool readonly)
{
	int index;

	if (!mem)
		return -EINVAL;
	index = find_region_slot(mem, as_id, slot_id);
	if (size == 0) {
		if (index >= 0)
			remove_region(mem, index);
		return 0;
	}
	if ((gpa | size | hva) & (PAGE_SIZE - 1))
		return -EINVAL;
	if (gpa + (size - 1) < gpa || hva + (size - 1) < hva)
		return -EINVAL;
	if (index < 0) {
		if (mem->n_regions == REF_MAX_REGIONS)
			return -ENOSPC;
		index = mem->n_regions++;
	}
	mem->regions[index] = (struct ref_region){
		.as_id = as_id,
		.slot_id = slot_id,
		.gpa = gpa,
		.last = gpa + (size - 1),
		.hva = hva,
		.readonly = readonly,
	};
	return 0;
}

static bool region_covers(const struct ref_region *r, int as_id, gpa_t gpa)
{
	return r->as_id == as_id && gpa >= r->gpa && gpa <= r->last;
}

static const struct ref_region *find_region(struct ref_memory *mem, int as_id, gpa_t gpa)
{
	if (mem->last_hit < mem->n_regions && region_covers(&mem->regions[mem->last_hit], as_id, gpa))
		return &mem->regions[mem->last_hit];
	for (int i = 0; i < mem->n_regions; i++) {
		if (region_covers(&mem->regions[i], as_id, gpa)) {
			mem->last_hit = i;
			return &mem->regions[i];
		}
	}
	return NULL;
}

uint8_t *ref_memory_page(struct ref_memory *mem, int as_id, gpa_t gpa, bool for_write)
{
	const struct ref_region *r;
	hva_t hva;
	uint8_t *page;

	if (!mem)
		return NULL;
	r = find_region(mem, as_id, gpa);
	if (!r || (for_write && r->readonly))
		return NULL;
	hva = r->hva + ((gpa - r->gpa) & PAGE_MASK);
	page = lookup_page(mem, hva);
	if (page)
		return page;
	return for_write ? alloc_page(mem, hva) : mem->zero_page;
}

bool ref_memory_backing(const struct ref_memory *mem, int as_id, gpa_t gpa, hva_t *hva,
			bool *readonly)
{
	if (!mem)
		return false;
	for (int i = 0; i < mem->n_regions; i++) {
		const struct ref_region *r = &mem->regions[i];

		if (!region_covers(r, as_id, gpa))
			continue;
		if (hva)
			*hva = r->hva + (gpa - r->gpa);
		if (readonly)
			*readonly = r->readonly;
		return true;
	}
	return false;
}

bool ref_memory_hva_aliased(const struct ref_memory *mem, hva_t hva)
{
	int n = 0;

	if (!mem)
		return false;
	for (int i = 0; i < mem->n_regions; i++) {
		const struct ref_region *r = &mem->regions[i];

		if (hva >= r->hva && hva - r->hva <= r->last - r->gpa)
			n++;
	}
	return n > 1;
}

/* Checks every page of [gpa, gpa + len) before anything is touched, so a failing call
 * leaves memory (and the set of pages with contents) unchanged. */
static bool range_covered(struct ref_memory *mem, int as_id, gpa_t gpa, size_t len, bool for_write)
{
	gpa_t last = gpa + (len - 1);

	if (last < gpa)
		return false;
	for (gpa_t page = gpa & PAGE_MASK;; page += PAGE_SIZE) {
		const struct ref_region *r = find_region(mem, as_id, page);

		if (!r || (for_write && r->readonly))
			return false;
		if (page == (last & PAGE_MASK))
			return true;
	}
}

int ref_memory_read(struct ref_memory *mem, int as_id, gpa_t gpa, void *dst, size_t len)
{
	uint8_t *out = dst;

	if (!mem || (len && !dst))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (!range_covered(mem, as_id, gpa, len, false))
		return -EFAULT;
	while (len) {
		size_t offset = gpa & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - offset < len ? PAGE_SIZE - offset : len;

		memcpy(out, ref_memory_page(mem, as_id, gpa, false) + offset, n);
		out += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int ref_memory_write(struct ref_memory *mem, int as_id, gpa_t gpa, const void *src, size_t len)
{
	const uint8_t *in = src;

	if (!mem || (len && !src))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (!range_covered(mem, as_id, gpa, len, true))
		return -EFAULT;
	while (len) {
		size_t offset = gpa & (PAGE_SIZE - 1);
		size_t n = PAGE_SIZE - offset < len ? PAGE_SIZE - offset : len;
		uint8_t *page = ref_memory_page(mem, as_id, gpa, true);

		if (!page)
			return -ENOMEM;
		memcpy(page + offset, in, n);
		in += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

void ref_memory_for_each_page(const struct ref_memory *mem,
			      void (*fn)(void *ctx, hva_t hva, const uint8_t *page), void *ctx)
{
	if (!mem || !fn)
		return;
	for (uint32_t i = 0; i < mem->n_pages; i++)
		fn(ctx, mem->page_hva[i], page_data(mem, i));
}

const uint8_t *ref_memory_hva_page(const struct ref_memory *mem, hva_t hva)
{
	if (!mem)
		return NULL;
	return lookup_page(mem, hva);
}
