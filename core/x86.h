/* Architectural x86 constants used by the guest walker, the shadow MMU and the harness
 * (Intel SDM vol. 3, ch. 2 and 4). Names follow KVM's where KVM has one. */
#ifndef SHADOWFUZZ_CORE_X86_H
#define SHADOWFUZZ_CORE_X86_H

#include <stdint.h>

typedef uint64_t gpa_t;
typedef uint64_t gva_t;
typedef uint64_t gfn_t;
typedef uint64_t hva_t;
typedef uint64_t kvm_pfn_t;

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))

/* Guest page-table entry bits. */
#define PT_PRESENT_MASK (1ull << 0)
#define PT_WRITABLE_MASK (1ull << 1)
#define PT_USER_MASK (1ull << 2)
#define PT_PWT_MASK (1ull << 3)
#define PT_PCD_MASK (1ull << 4)
#define PT_ACCESSED_MASK (1ull << 5)
#define PT_DIRTY_MASK (1ull << 6)
#define PT_PAGE_SIZE_MASK (1ull << 7)
#define PT_GLOBAL_MASK (1ull << 8)
#define PT64_NX_MASK (1ull << 63)
#define PT64_PKEY_SHIFT 59
#define PT64_BASE_ADDR_MASK 0x000ffffffffff000ull
#define PT32_BASE_ADDR_MASK 0xfffff000ull
/* PSE-36: bits 13..20 of a 4 MiB PDE are physical-address bits 32..39. */
#define PT32_PSE36_SHIFT 13
#define PT32_PSE36_MASK (0xffull << PT32_PSE36_SHIFT)

/* Levels as KVM counts them: 1 = 4K table, 2 = 2M/4M, 3 = 1G, 4 = PML4, 5 = PML5. */
#define PT_PAGE_TABLE_LEVEL 1
#define PT_DIRECTORY_LEVEL 2
#define PT_PDPE_LEVEL 3
#define PT32_ROOT_LEVEL 2
#define PT32E_ROOT_LEVEL 3
#define PT64_ROOT_4LEVEL 4
#define PT64_ROOT_5LEVEL 5
#define PT64_ROOT_MAX_LEVEL 5
#define PT_MAX_FULL_LEVELS PT64_ROOT_MAX_LEVEL

/* #PF error code bits. */
#define PFERR_PRESENT_MASK (1u << 0)
#define PFERR_WRITE_MASK (1u << 1)
#define PFERR_USER_MASK (1u << 2)
#define PFERR_RSVD_MASK (1u << 3)
#define PFERR_FETCH_MASK (1u << 4)
#define PFERR_PK_MASK (1u << 5)

#define PF_VECTOR 14
#define GP_VECTOR 13

/* Access rights as KVM's ACC_* (X=1, W=2, U=4). */
#define ACC_EXEC_MASK 1u
#define ACC_WRITE_MASK 2u
#define ACC_USER_MASK 4u
#define ACC_ALL (ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK)

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_PG (1ull << 31)

#define X86_CR4_PSE (1ull << 4)
#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_PGE (1ull << 7)
#define X86_CR4_LA57 (1ull << 12)
#define X86_CR4_SMEP (1ull << 20)
#define X86_CR4_SMAP (1ull << 21)
#define X86_CR4_PKE (1ull << 22)

#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NX (1ull << 11)

#define X86_EFLAGS_AC (1ull << 18)

/* Paging mode of a vCPU as CR0.PG / CR4.PAE / EFER.LMA / CR4.LA57 select it. */
enum paging_mode {
	PAGING_NONE,
	PAGING_32,
	PAGING_PAE,
	PAGING_4LEVEL,
	PAGING_5LEVEL,
	PAGING_MODE_COUNT
};

/* The guest-physical address width KVM reports to the guest (CPUID 0x80000008);
 * the Unicorn reference models 40 bits. */
#define DEFAULT_MAXPHYADDR 40

static inline uint64_t rsvd_bits(int s, int e)
{
	if (e < s)
		return 0;
	return ((2ull << (e - s)) - 1) << s;
}

#endif
