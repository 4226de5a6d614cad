/* What the harness keeps for itself in the guest: the reference engine's code, stack, GDT
 * and page tables. Programs never place memslots over the reserved guest-physical window
 * and never use gvas translated through root entry HARNESS_ROOT_INDEX. */
#ifndef SHADOWFUZZ_ORACLE_HARNESS_LAYOUT_H
#define SHADOWFUZZ_ORACLE_HARNESS_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/x86.h"

/* Guest-physical [0, HARNESS_GPA_LIMIT) belongs to the reference engine. */
#define HARNESS_GPA_LIMIT 0x100000ull
/* Root-table entry that maps the reference's code; programs never write it. */
#define HARNESS_ROOT_INDEX 0

/* The guest page-table pool programs build their tables from: page Tn is at
 * TABLE_POOL_BASE + n * 4096. */
#define TABLE_POOL_BASE 0x100000ull
#define TABLE_POOL_PAGES 64

static inline gpa_t table_pool_gpa(unsigned table) { return TABLE_POOL_BASE + (uint64_t)table * PAGE_SIZE; }

/* First gva above the range root entry 0 translates, per mode (nonpaging uses the 32-bit
 * figure: the reference's code lives in the low 4 MiB there too). */
static inline uint64_t harness_reserved_gva_limit(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_NONE:
	case PAGING_32:
		return 1ull << 22;
	case PAGING_PAE:
		return 1ull << 30;
	case PAGING_4LEVEL:
		return 1ull << 39;
	case PAGING_5LEVEL:
		return 1ull << 48;
	default:
		return 0;
	}
}

/* Highest gva + 1 the mode can address (32-bit modes: 4 GiB). 64-bit modes: any value;
 * non-canonical ones raise #GP. */
static inline bool gva_fits_mode(enum paging_mode mode, uint64_t gva)
{
	return mode >= PAGING_4LEVEL || gva < (1ull << 32);
}

static inline bool gva_is_harness_reserved(enum paging_mode mode, uint64_t gva)
{
	return gva < harness_reserved_gva_limit(mode);
}

#endif
