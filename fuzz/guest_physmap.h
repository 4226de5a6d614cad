/* The harness's guest "kernel": a supervisor physmap of the table pool that every root the
 * program loads reaches through root entry HARNESS_ROOT_INDEX, so the program's page-table
 * writes are guest writes through the shadow MMU and trap exactly as in KVM (DESIGN §3).
 * The physmap's own tables live in a memslot of their own under the harness's
 * guest-physical window, out of reach of the program's writes. It is a user slot (a PAE
 * PDPTE pointing into a private slot would fail mmu_check_root), with an id programs may
 * not use (PROG_HARNESS_SLOT_ID). The gva of a pool entry is its gpa. */
#ifndef SHADOWFUZZ_FUZZ_GUEST_PHYSMAP_H
#define SHADOWFUZZ_FUZZ_GUEST_PHYSMAP_H

#include <stdint.h>

#include "../core/host_memory.h"
#include "../core/kvm_host.h"
#include "../oracle/ref_memory.h"
#include "program.h"

#define PHYSMAP_SLOT_ID PROG_HARNESS_SLOT_ID
#define PHYSMAP_GPA 0x80000ull
#define PHYSMAP_SIZE 0x80000ull
#define PHYSMAP_HVA 0x7f0000080000ull

/* The slot, host backing and the physmap tables of every paging mode, in the model and
 * in the reference's memory. Returns 0 or a negative errno. */
int physmap_install(struct kvm *kvm, struct host_memory *host, struct ref_memory *ref_mem);

/* The value root entry HARNESS_ROOT_INDEX needs in mode (0 when paging is off). */
uint64_t physmap_root_entry(enum paging_mode mode);

#endif
