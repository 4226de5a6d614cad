/* KVM_GET_DIRTY_LOG without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT, as v4.20..v5.3 have it
 * (virt/kvm/kvm_main.c kvm_get_dirty_log_protect, arch/x86/kvm/x86.c
 * kvm_vm_ioctl_get_dirty_log): snapshot and clear each bitmap word, write-protect the pages
 * it held so their next write faults and marks them again, flush if anything was dirty. */
#include <errno.h>
#include <string.h>

#include "mmu.h"

static uint64_t kvm_dirty_bitmap_words(const struct kvm_memory_slot *slot)
{
	return (slot->npages + 63) / 64;
}

/* The second half of the bitmap is the snapshot (kvm_second_dirty_bitmap). */
static int kvm_get_dirty_log_protect(struct kvm *kvm, uint32_t log_slot, uint64_t *bitmap,
				     size_t bitmap_words, bool *flush)
{
	int as_id = (int)(log_slot >> 16), id = (uint16_t)log_slot;
	struct kvm_memory_slot *slot;
	uint64_t n, *snapshot;

	if (as_id >= KVM_ADDRESS_SPACE_NUM || id >= KVM_USER_MEM_SLOTS)
		return -EINVAL;
	slot = id_to_memslot(__kvm_memslots(kvm, as_id), id);
	if (!slot->dirty_bitmap)
		return -ENOENT;
	n = kvm_dirty_bitmap_words(slot);
	snapshot = slot->dirty_bitmap + n;
	memset(snapshot, 0, n * sizeof(*snapshot));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t mask = slot->dirty_bitmap[i];

		if (!mask)
			continue;
		*flush = true;
		slot->dirty_bitmap[i] = 0;
		snapshot[i] = mask;
		/* S11 (synthetic): the pages stay writable and their next writes go unlogged. */
		if (!kvm_bug(&kvm->config, KVM_BUG_S11_GET_DIRTY_LOG_NO_REPROTECT))
			kvm_arch_mmu_enable_log_dirty_pt_masked(kvm, slot, i * 64, mask);
	}
	if (bitmap_words < n)
		return -EFAULT; /* copy_to_user */
	memcpy(bitmap, snapshot, n * sizeof(*snapshot));
	return 0;
}

int kvm_vm_ioctl_get_dirty_log(struct kvm *kvm, uint32_t slot, uint64_t *bitmap, size_t bitmap_words)
{
	bool flush = false;
	int r = kvm_get_dirty_log_protect(kvm, slot, bitmap, bitmap_words, &flush);

	/* Outside mmu_lock, serialized by slots_lock (kvm_mmu_slot_remove_write_access). */
	if (flush)
		kvm_flush_remote_tlbs(kvm);
	if (!r)
		kvm->stat.dirty_log_reads++;
	return r;
}
