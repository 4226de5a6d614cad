/* The reference's own copy of guest memory (DESIGN §4): the regions the guest can see
 * (one per accepted memslot, in its address space) over pages keyed by host virtual
 * address, so a moved slot carries its contents exactly as the VMM's memory does.
 * Gpas outside every region read as absent; writes to read-only regions are dropped. */
#ifndef SHADOWFUZZ_ORACLE_REF_MEMORY_H
#define SHADOWFUZZ_ORACLE_REF_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/x86.h"

#define REF_MAX_REGIONS 64

struct ref_memory;

struct ref_memory *ref_memory_new(void);
void ref_memory_free(struct ref_memory *mem);
void ref_memory_reset(struct ref_memory *mem);

/* Install, replace (same as_id and slot id) or, with size 0, remove a region. Returns 0,
 * -ENOSPC when REF_MAX_REGIONS are in use, or -EINVAL for a gpa, size or hva that is not
 * page-aligned or a range that wraps. */
int ref_memory_set_region(struct ref_memory *mem, int as_id, int slot_id, gpa_t gpa,
			  uint64_t size, hva_t hva, bool readonly);

/* The 4 KiB page behind gpa in address space as_id, or NULL if no region covers it (or,
 * with for_write, the region is read-only). Without for_write, a page never written is
 * a shared zero page: do not write through it. */
uint8_t *ref_memory_page(struct ref_memory *mem, int as_id, gpa_t gpa, bool for_write);

/* The host address backing gpa in address space as_id (the region's hva plus gpa's offset
 * in the region) and whether that region is read-only; false if no region covers gpa.
 * Either output may be NULL. */
bool ref_memory_backing(const struct ref_memory *mem, int as_id, gpa_t gpa, hva_t *hva,
			bool *readonly);

/* Whether the host page at hva backs more than one gpa, in one address space or across
 * both: regions of one address space never overlap in gpa, but may in hva (a VMM may alias
 * memory, and SMRAM's address space usually maps the same RAM as the other). */
bool ref_memory_hva_aliased(const struct ref_memory *mem, hva_t hva);

/* Whole-buffer access; return 0, or -EFAULT (nothing done) if a byte is not covered. */
int ref_memory_read(struct ref_memory *mem, int as_id, gpa_t gpa, void *dst, size_t len);
int ref_memory_write(struct ref_memory *mem, int as_id, gpa_t gpa, const void *src, size_t len);

/* Every page that has contents, keyed by hva. */
void ref_memory_for_each_page(const struct ref_memory *mem,
			      void (*fn)(void *ctx, hva_t hva, const uint8_t *page), void *ctx);
/* Page at hva if it has contents, else NULL. */
const uint8_t *ref_memory_hva_page(const struct ref_memory *mem, hva_t hva);

#endif
