#include "../core/memslot.h"
#include "../oracle/harness_layout.h"
#include "guest_physmap.h"

/* Table pages inside the slot. */
#define PDPT64 (PHYSMAP_GPA + 0x0000)
#define PD64 (PHYSMAP_GPA + 0x1000)
#define PT64 (PHYSMAP_GPA + 0x2000)
#define PML4_64 (PHYSMAP_GPA + 0x3000)
#define PT32 (PHYSMAP_GPA + 0x4000)

/* Supervisor, writable, with A and D preset so no walk ever writes them back. */
#define TABLE_FLAGS (PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_ACCESSED_MASK)
#define LEAF_FLAGS (TABLE_FLAGS | PT_DIRTY_MASK)

static int put(struct host_memory *host, struct ref_memory *ref_mem, gpa_t gpa, uint64_t value, size_t len)
{
	int r = host_write(host, PHYSMAP_HVA + (gpa - PHYSMAP_GPA), &value, len);

	return r ? r : ref_memory_write(ref_mem, 0, gpa, &value, len);
}

int physmap_install(struct kvm *kvm, struct host_memory *host, struct ref_memory *ref_mem)
{
	struct kvm_userspace_memory_region region = {
		.slot = PHYSMAP_SLOT_ID,
		.guest_phys_addr = PHYSMAP_GPA,
		.memory_size = PHYSMAP_SIZE,
		.userspace_addr = PHYSMAP_HVA,
	};
	int r = host_mmap(host, PHYSMAP_HVA, PHYSMAP_SIZE, PAGE_SHIFT);

	if (!r)
		r = kvm_set_memory_region(kvm, &region, NULL);
	if (!r)
		r = ref_memory_set_region(ref_mem, 0, PHYSMAP_SLOT_ID, PHYSMAP_GPA, PHYSMAP_SIZE, PHYSMAP_HVA, false);
	if (r)
		return r;
	r = put(host, ref_mem, PML4_64, PDPT64 | TABLE_FLAGS, 8);
	r = r ? r : put(host, ref_mem, PDPT64, PD64 | TABLE_FLAGS, 8);
	r = r ? r : put(host, ref_mem, PD64, PT64 | TABLE_FLAGS, 8);
	for (unsigned t = 0; !r && t < TABLE_POOL_PAGES; t++) {
		gpa_t page = table_pool_gpa(t);
		unsigned index = (page >> PAGE_SHIFT) & 511;

		r = put(host, ref_mem, PT64 + index * 8, page | LEAF_FLAGS, 8);
		r = r ? r : put(host, ref_mem, PT32 + ((page >> PAGE_SHIFT) & 1023) * 4, page | LEAF_FLAGS, 4);
	}
	return r;
}

uint64_t physmap_root_entry(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_32:
		return PT32 | TABLE_FLAGS;
	case PAGING_PAE:
		return PD64 | PT_PRESENT_MASK; /* PDPTEs have no R/W, U/S or A */
	case PAGING_4LEVEL:
		return PDPT64 | TABLE_FLAGS;
	case PAGING_5LEVEL:
		return PML4_64 | TABLE_FLAGS;
	default:
		return 0;
	}
}
