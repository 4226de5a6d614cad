/* The simulated host: the VMM's userspace memory (hva space) and the host physical frames
 * behind it. Memslots point into it; sptes hold its frame numbers. Each 1 GiB-aligned hva
 * chunk is backed by one naturally aligned, contiguous run of host frames and has one host
 * page size (4K, 2M or 1G), so large sptes are possible without allocating gigabytes:
 * page contents are allocated on first write, reads of untouched pages return zeros. */
#ifndef SHADOWFUZZ_CORE_HOST_MEMORY_H
#define SHADOWFUZZ_CORE_HOST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86.h"

#define HOST_CHUNK_SHIFT 30
#define HOST_CHUNK_SIZE (1ull << HOST_CHUNK_SHIFT)
/* Highest user address + 1 (x86-64 TASK_SIZE with 4-level host paging). */
#define HOST_TASK_SIZE 0x00007ffffffff000ull

#define KVM_PFN_ERR_FAULT (~0ull)

struct host_memory;

struct host_memory *host_memory_new(void);
void host_memory_free(struct host_memory *host);
/* Forget every mapping and page (between fuzz inputs). Keeps allocations for reuse. */
void host_memory_reset(struct host_memory *host);

/* Ensure [hva, hva+size) is mapped. Chunks not yet mapped get host page size 1<<page_shift
 * (12, 21 or 30); chunks already mapped keep theirs. Returns 0, or -EINVAL for a bad
 * page_shift, a range outside [0, HOST_TASK_SIZE) or an unaligned hva/size. */
int host_mmap(struct host_memory *host, hva_t hva, uint64_t size, unsigned page_shift);

/* Host page shift backing hva (12, 21, 30), or 0 if hva is not mapped. */
unsigned host_page_shift(const struct host_memory *host, hva_t hva);

/* Host frame backing hva, or KVM_PFN_ERR_FAULT if not mapped. */
kvm_pfn_t host_hva_to_pfn(const struct host_memory *host, hva_t hva);

/* The hva a host frame backs, or ~0 if no mapping has that frame. */
hva_t host_pfn_to_hva(const struct host_memory *host, kvm_pfn_t pfn);

/* Contents of a host frame: NULL if never written (reads as zeros) unless alloc is true. */
uint8_t *host_pfn_page(struct host_memory *host, kvm_pfn_t pfn, bool alloc);

/* Copy to/from mapped hva space; may cross pages. Return 0, or -EFAULT if any byte is not
 * mapped (nothing is written then). */
int host_read(const struct host_memory *host, hva_t hva, void *dst, size_t len);
int host_write(struct host_memory *host, hva_t hva, const void *src, size_t len);

/* Calls fn for every host frame that has contents (for memory comparisons). */
void host_for_each_page(const struct host_memory *host,
			void (*fn)(void *ctx, hva_t hva, const uint8_t *page), void *ctx);

#endif
