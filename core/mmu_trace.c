#include "mmu_trace.h"

const char *kvm_mmu_event_name(enum kvm_mmu_event event)
{
	static const char *const names[KVM_EV_COUNT] = {
		[KVM_EV_PAGE_FAULT] = "kvm_page_fault",
		[KVM_EV_PAGETABLE_WALK] = "kvm_mmu_pagetable_walk",
		[KVM_EV_PAGING_ELEMENT] = "kvm_mmu_paging_element",
		[KVM_EV_WALKER_ERROR] = "kvm_mmu_walker_error",
		[KVM_EV_GET_PAGE] = "kvm_mmu_get_page",
		[KVM_EV_PREPARE_ZAP_PAGE] = "kvm_mmu_prepare_zap_page",
		[KVM_EV_ZAP_ALL_FAST] = "kvm_mmu_zap_all_fast",
		[KVM_EV_SET_SPTE] = "kvm_mmu_set_spte",
		[KVM_EV_MARK_MMIO_SPTE] = "mark_mmio_spte",
		[KVM_EV_HANDLE_MMIO_PAGE_FAULT] = "handle_mmio_page_fault",
		[KVM_EV_CHECK_MMIO_SPTE] = "check_mmio_spte",
		[KVM_EV_FLUSH_REMOTE_TLBS] = "kvm_flush_remote_tlbs",
		[KVM_EV_VCPU_FLUSH_TLB] = "kvm_vcpu_flush_tlb",
		[KVM_EV_RMAP_WRITE_PROTECT] = "rmap_write_protect",
		[KVM_EV_PTE_WRITE] = "kvm_mmu_pte_write",
		[KVM_EV_SYNC_ROOTS] = "kvm_mmu_sync_roots",
		[KVM_EV_EMULATE_INSN] = "kvm_emulate_insn",
		[KVM_EV_MMIO] = "kvm_mmio",
		[KVM_EV_INVALIDATE_MMIO_SPTES] = "kvm_mmu_invalidate_mmio_sptes",
		[KVM_EV_INSTALL_NEW_MEMSLOTS] = "install_new_memslots",
		[KVM_EV_MAKE_MMU_PAGES_AVAILABLE] = "make_mmu_pages_available",
		[KVM_EV_CHANGE_MMU_PAGES] = "kvm_mmu_change_mmu_pages",
		[KVM_EV_UNSYNC_PAGE] = "kvm_mmu_unsync_page",
		[KVM_EV_SYNC_PAGE] = "kvm_mmu_sync_page",
	};

	return (unsigned)event < KVM_EV_COUNT ? names[event] : "unknown";
}
