/* The simulated host (see host_memory.h).
 *
 * Mapping is per 1 GiB chunk: host_mmap maps every chunk its range touches, whole. The k-th
 * chunk mapped since the last reset owns host frames [(k + 1) << 18, (k + 2) << 18), so every
 * chunk's frames are contiguous and 1 GiB-aligned (a 1G host page is possible) and pfn 0 is
 * never used. Frame contents live in an arena of 4K pages found through an open-addressing
 * hash keyed by pfn; reset forgets the pages in O(pages) and keeps the arena for reuse. */
#include "host_memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_PFN_SHIFT (HOST_CHUNK_SHIFT - PAGE_SHIFT)
#define CHUNK_PFN_MASK ((1ull << CHUNK_PFN_SHIFT) - 1)
/* Chunk numbers of [0, HOST_TASK_SIZE). */
#define NR_HVA_CHUNKS ((HOST_TASK_SIZE + HOST_CHUNK_SIZE - 1) >> HOST_CHUNK_SHIFT)
/* Keep host physical addresses below 2^46 (the default host_phys_bits): chunk k + 1 < 2^16. */
#define MAX_CHUNKS ((1u << (46 - HOST_CHUNK_SHIFT)) - 1)
#define ARENA_BLOCK_PAGES 64
#define HASH_MIN_BITS 10

struct host_chunk {
	hva_t hva;
	unsigned page_shift;
};

struct host_page {
	kvm_pfn_t pfn;
	uint32_t hash_slot;
};

struct host_memory {
	/* hva chunk number -> k + 1 for the k-th chunk mapped, 0 if unmapped. */
	uint32_t *chunk_of_hva;
	struct host_chunk *chunks;
	uint32_t nr_chunks, chunks_cap;

	/* Page k's contents are at blocks[k / ARENA_BLOCK_PAGES]. */
	uint8_t **blocks;
	size_t nr_blocks, blocks_cap;
	struct host_page *pages;
	size_t nr_pages, pages_cap;

	/* Open addressing, linear probing; entry = page index + 1, 0 = free. */
	uint32_t *hash;
	unsigned hash_bits;
};

static uint8_t *arena_page(const struct host_memory *host, size_t page)
{
	return host->blocks[page / ARENA_BLOCK_PAGES] + (page % ARENA_BLOCK_PAGES) * PAGE_SIZE;
}

static size_t hash_pfn(kvm_pfn_t pfn, unsigned bits)
{
	return (size_t)((pfn * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static size_t hash_mask(const struct host_memory *host)
{
	return ((size_t)1 << host->hash_bits) - 1;
}

/* Returns the hash slot holding pfn, or the free slot where it would go. */
static size_t hash_find(const struct host_memory *host, kvm_pfn_t pfn)
{
	size_t slot = hash_pfn(pfn, host->hash_bits);

	while (host->hash[slot] && host->pages[host->hash[slot] - 1].pfn != pfn)
		slot = (slot + 1) & hash_mask(host);
	return slot;
}

static void hash_insert(struct host_memory *host, size_t page)
{
	size_t slot = hash_find(host, host->pages[page].pfn);

	host->hash[slot] = (uint32_t)page + 1;
	host->pages[page].hash_slot = (uint32_t)slot;
}

static int hash_grow(struct host_memory *host)
{
	unsigned bits = host->hash_bits + 1;
	uint32_t *hash = calloc((size_t)1 << bits, sizeof(*hash));

	if (!hash)
		return -ENOMEM;
	free(host->hash);
	host->hash = hash;
	host->hash_bits = bits;
	for (size_t page = 0; page < host->nr_pages; page++)
		hash_insert(host, page);
	return 0;
}

static void *grow_array(void *array, size_t *cap, size_t elem_size)
{
	size_t new_cap = *cap ? *cap * 2 : 16;
	void *grown = realloc(array, new_cap * elem_size);

	if (grown)
		*cap = new_cap;
	return grown;
}

static int arena_reserve_page(struct host_memory *host)
{
	if (host->nr_pages == host->pages_cap) {
		struct host_page *pages = grow_array(host->pages, &host->pages_cap,
						     sizeof(*pages));
		if (!pages)
			return -ENOMEM;
		host->pages = pages;
	}
	if (host->nr_pages < host->nr_blocks * ARENA_BLOCK_PAGES)
		return 0;
	if (host->nr_blocks == host->blocks_cap) {
		uint8_t **blocks = grow_array(host->blocks, &host->blocks_cap, sizeof(*blocks));

		if (!blocks)
			return -ENOMEM;
		host->blocks = blocks;
	}
	host->blocks[host->nr_blocks] = malloc(ARENA_BLOCK_PAGES * PAGE_SIZE);
	if (!host->blocks[host->nr_blocks])
		return -ENOMEM;
	host->nr_blocks++;
	return 0;
}

/* A zeroed page for pfn; arena pages are reused across resets, hence the memset. */
static uint8_t *alloc_page(struct host_memory *host, kvm_pfn_t pfn)
{
	size_t page = host->nr_pages;

	if ((host->nr_pages + 1) * 2 > ((size_t)1 << host->hash_bits) && hash_grow(host))
		return NULL;
	if (arena_reserve_page(host))
		return NULL;
	host->pages[page].pfn = pfn;
	host->nr_pages++;
	hash_insert(host, page);
	memset(arena_page(host, page), 0, PAGE_SIZE);
	return arena_page(host, page);
}

static const struct host_chunk *hva_chunk(const struct host_memory *host, hva_t hva)
{
	uint32_t k;

	if (hva >= HOST_TASK_SIZE)
		return NULL;
	k = host->chunk_of_hva[hva >> HOST_CHUNK_SHIFT];
	return k ? &host->chunks[k - 1] : NULL;
}

/* hva backed by a frame of a mapped chunk. */
static hva_t chunk_pfn_to_hva(const struct host_memory *host, kvm_pfn_t pfn)
{
	const struct host_chunk *chunk = &host->chunks[(pfn >> CHUNK_PFN_SHIFT) - 1];

	return chunk->hva + ((pfn & CHUNK_PFN_MASK) << PAGE_SHIFT);
}

/* Whether pfn backs a mapped hva (its chunk is mapped and it lies below HOST_TASK_SIZE). */
static bool pfn_is_mapped(const struct host_memory *host, kvm_pfn_t pfn)
{
	kvm_pfn_t k = pfn >> CHUNK_PFN_SHIFT;

	return k && k <= host->nr_chunks && chunk_pfn_to_hva(host, pfn) < HOST_TASK_SIZE;
}

struct host_memory *host_memory_new(void)
{
	struct host_memory *host = calloc(1, sizeof(*host));

	if (!host)
		return NULL;
	host->chunk_of_hva = calloc(NR_HVA_CHUNKS, sizeof(*host->chunk_of_hva));
	host->hash = calloc((size_t)1 << HASH_MIN_BITS, sizeof(*host->hash));
	host->hash_bits = HASH_MIN_BITS;
	if (!host->chunk_of_hva || !host->hash) {
		host_memory_free(host);
		return NULL;
	}
	return host;
}

void host_memory_free(struct host_memory *host)
{
	if (!host)
		return;
	for (size_t i = 0; i < host->nr_blocks; i++)
		free(host->blocks[i]);
	free(host->blocks);
	free(host->pages);
	free(host->hash);
	free(host->chunks);
	free(host->chunk_of_hva);
	free(host);
}

void host_memory_reset(struct host_memory *host)
{
	for (uint32_t k = 0; k < host->nr_chunks; k++)
		host->chunk_of_hva[host->chunks[k].hva >> HOST_CHUNK_SHIFT] = 0;
	host->nr_chunks = 0;
	for (size_t page = 0; page < host->nr_pages; page++)
		host->hash[host->pages[page].hash_slot] = 0;
	host->nr_pages = 0;
}

static bool valid_page_shift(unsigned page_shift)
{
	return page_shift == 12 || page_shift == 21 || page_shift == 30;
}

static int reserve_chunks(struct host_memory *host, uint64_t count)
{
	size_t cap = host->chunks_cap;

	if (host->nr_chunks + count > MAX_CHUNKS)
		return -ENOMEM;
	while (host->nr_chunks + count > cap)
		cap = cap ? cap * 2 : 16;
	if (cap != host->chunks_cap) {
		struct host_chunk *chunks = realloc(host->chunks, cap * sizeof(*chunks));

		if (!chunks)
			return -ENOMEM;
		host->chunks = chunks;
		host->chunks_cap = (uint32_t)cap;
	}
	return 0;
}

int host_mmap(struct host_memory *host, hva_t hva, uint64_t size, unsigned page_shift)
{
	uint64_t first, last;
	int r;

	if (!valid_page_shift(page_shift) || ((hva | size) & ~PAGE_MASK))
		return -EINVAL;
	if (hva > HOST_TASK_SIZE || size > HOST_TASK_SIZE - hva)
		return -EINVAL;
	if (!size)
		return 0;
	first = hva >> HOST_CHUNK_SHIFT;
	last = (hva + size - 1) >> HOST_CHUNK_SHIFT;
	/* Reserve room for the worst case first so a failure maps nothing. */
	r = reserve_chunks(host, last - first + 1);
	if (r)
		return r;
	for (uint64_t c = first; c <= last; c++) {
		if (host->chunk_of_hva[c])
			continue;
		host->chunks[host->nr_chunks] = (struct host_chunk){
			.hva = c << HOST_CHUNK_SHIFT,
			.page_shift = page_shift,
		};
		host->chunk_of_hva[c] = ++host->nr_chunks;
	}
	return 0;
}

unsigned host_page_shift(const struct host_memory *host, hva_t hva)
{
	const struct host_chunk *chunk = hva_chunk(host, hva);

	return chunk ? chunk->page_shift : 0;
}

kvm_pfn_t host_hva_to_pfn(const struct host_memory *host, hva_t hva)
{
	uint32_t k;

	if (!hva_chunk(host, hva))
		return KVM_PFN_ERR_FAULT;
	k = host->chunk_of_hva[hva >> HOST_CHUNK_SHIFT];
	return ((kvm_pfn_t)k << CHUNK_PFN_SHIFT) | ((hva >> PAGE_SHIFT) & CHUNK_PFN_MASK);
}

/* Contents of pfn's page, NULL if it was never written. */
static uint8_t *find_page(const struct host_memory *host, kvm_pfn_t pfn)
{
	size_t slot = hash_find(host, pfn);

	return host->hash[slot] ? arena_page(host, host->hash[slot] - 1) : NULL;
}

hva_t host_pfn_to_hva(const struct host_memory *host, kvm_pfn_t pfn)
{
	if (!pfn_is_mapped(host, pfn))
		return ~0ull;
	return chunk_pfn_to_hva(host, pfn);
}

uint8_t *host_pfn_page(struct host_memory *host, kvm_pfn_t pfn, bool alloc)
{
	uint8_t *page;

	if (!pfn_is_mapped(host, pfn))
		return NULL;
	page = find_page(host, pfn);
	if (page || !alloc)
		return page;
	return alloc_page(host, pfn);
}

/* Whether every byte of [hva, hva + len) is mapped; chunks are mapped whole. */
static bool range_mapped(const struct host_memory *host, hva_t hva, size_t len)
{
	hva_t last = hva + len - 1;

	if (last < hva || last >= HOST_TASK_SIZE)
		return false;
	for (uint64_t c = hva >> HOST_CHUNK_SHIFT; c <= last >> HOST_CHUNK_SHIFT; c++) {
		if (!host->chunk_of_hva[c])
			return false;
	}
	return true;
}

static size_t bytes_in_page(hva_t hva, size_t len)
{
	size_t room = PAGE_SIZE - (hva & ~PAGE_MASK);

	return len < room ? len : room;
}

int host_read(const struct host_memory *host, hva_t hva, void *dst, size_t len)
{
	uint8_t *out = dst;

	if (len && !range_mapped(host, hva, len))
		return -EFAULT;
	while (len) {
		size_t n = bytes_in_page(hva, len);
		const uint8_t *page = find_page(host, host_hva_to_pfn(host, hva));

		if (page)
			memcpy(out, page + (hva & ~PAGE_MASK), n);
		else
			memset(out, 0, n);
		out += n;
		hva += n;
		len -= n;
	}
	return 0;
}

/* -ENOMEM only if the arena cannot grow; bytes before the failing page are written. */
int host_write(struct host_memory *host, hva_t hva, const void *src, size_t len)
{
	const uint8_t *in = src;

	if (len && !range_mapped(host, hva, len))
		return -EFAULT;
	while (len) {
		size_t n = bytes_in_page(hva, len);
		uint8_t *page = host_pfn_page(host, host_hva_to_pfn(host, hva), true);

		if (!page)
			return -ENOMEM;
		memcpy(page + (hva & ~PAGE_MASK), in, n);
		in += n;
		hva += n;
		len -= n;
	}
	return 0;
}

void host_for_each_page(const struct host_memory *host,
			void (*fn)(void *ctx, hva_t hva, const uint8_t *page), void *ctx)
{
	for (size_t page = 0; page < host->nr_pages; page++)
		fn(ctx, chunk_pfn_to_hva(host, host->pages[page].pfn), arena_page(host, page));
}
