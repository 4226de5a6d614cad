/* FNAME(walk_addr_generic) of arch/x86/kvm/paging_tmpl.h, instantiated by paging.c for
 * PTTYPE 64 (PAE, 4-level, 5-level) and PTTYPE 32 (2-level). Include with PTTYPE set. */
#if PTTYPE == 64
#define pt_element_t uint64_t
#define FNAME(name) paging64_##name
#define PT_BASE_ADDR_MASK PT64_BASE_ADDR_MASK
#define PT_LEVEL_BITS 9
#define PT_WALK_NX_MASK PT64_NX_MASK
#elif PTTYPE == 32
#define pt_element_t uint32_t
#define FNAME(name) paging32_##name
#define PT_BASE_ADDR_MASK PT32_BASE_ADDR_MASK
#define PT_LEVEL_BITS 10
#define PT_WALK_NX_MASK 0ull
#else
#error "PTTYPE must be 32 or 64"
#endif

#define PT_INDEX(addr, level) \
	(((addr) >> (PAGE_SHIFT + ((level) - 1) * PT_LEVEL_BITS)) & ((1u << PT_LEVEL_BITS) - 1))
#define PT_LVL_SIZE_MASK(level) ((1ull << (PAGE_SHIFT + ((level) - 1) * PT_LEVEL_BITS)) - 1)

static gfn_t FNAME(gpte_to_gfn)(uint64_t gpte)
{
	return (gpte & PT_BASE_ADDR_MASK) >> PAGE_SHIFT;
}

static gfn_t FNAME(gpte_to_gfn_lvl)(uint64_t gpte, int level)
{
	return (gpte & PT_BASE_ADDR_MASK & ~PT_LVL_SIZE_MASK(level)) >> PAGE_SHIFT;
}

/* is_last_gpte: level 1 always ends the walk; PS ends it below last_nonleaf_level. */
static bool FNAME(is_last_gpte)(const struct kvm_mmu *mmu, int level, uint64_t gpte)
{
	if (level == PT_PAGE_TABLE_LEVEL)
		return true;
	return level < mmu->last_nonleaf_level && (gpte & PT_PAGE_SIZE_MASK);
}

/* FNAME(gpte_access) on an accumulation whose NX bit was inverted back: X = !NX. */
static unsigned FNAME(gpte_access)(uint64_t gpte)
{
	unsigned access = gpte & (PT_WRITABLE_MASK | PT_USER_MASK);

	if (!(gpte & PT64_NX_MASK))
		access |= ACC_EXEC_MASK;
	return access;
}

static unsigned FNAME(gpte_pkeys)(const struct kvm_vcpu *vcpu, uint64_t gpte)
{
	if (PTTYPE == 32)
		return 0;
	return (gpte >> PT64_PKEY_SHIFT) & 15;
}

/* FNAME(protect_clean_gpte): a clean leaf is mapped read-only until a write sets D. */
static void FNAME(protect_clean_gpte)(unsigned *access, uint64_t gpte)
{
	if (!(gpte & PT_DIRTY_MASK))
		*access &= ~ACC_WRITE_MASK;
}

static bool FNAME(read_gpte)(struct kvm_vcpu *vcpu, struct guest_walker *walker, gfn_t table_gfn,
			     unsigned offset, pt_element_t *pte)
{
	bool *writable = &walker->pte_writable[walker->level - 1];
	hva_t hva = kvm_vcpu_gfn_to_hva_prot(vcpu, table_gfn, writable);

	if (hva == KVM_HVA_ERR_BAD)
		return false;
	return host_read(vcpu->kvm->host, hva + offset, pte, sizeof(*pte)) == 0;
}

/* FNAME(cmpxchg_gpte): 0 on success, 1 if the entry changed under us (walk again), -1 if it
 * cannot be accessed. */
static int FNAME(cmpxchg_gpte)(struct kvm_vcpu *vcpu, gpa_t pte_gpa, pt_element_t orig_pte,
			       pt_element_t new_pte)
{
	hva_t hva = kvm_vcpu_gfn_to_hva_prot(vcpu, pte_gpa >> PAGE_SHIFT, NULL);
	pt_element_t cur;

	if (hva == KVM_HVA_ERR_BAD)
		return -1;
	hva += pte_gpa & ~PAGE_MASK;
	if (host_read(vcpu->kvm->host, hva, &cur, sizeof(cur)))
		return -1;
	if (cur != orig_pte)
		return 1;
	return host_write(vcpu->kvm->host, hva, &new_pte, sizeof(new_pte)) ? -1 : 0;
}

/* FNAME(update_accessed_dirty_bits): A on every level from the top down, D on the leaf for
 * writes; entries in read-only slots are skipped (KVM treats them as ROM). */
static int FNAME(update_accessed_dirty_bits)(struct kvm_vcpu *vcpu, struct guest_walker *walker,
					     bool write_fault)
{
	int top = walker->max_level;

	if (kvm_bug(&vcpu->kvm->config, KVM_BUG_W3_NO_UPPER_ACCESSED))
		top = walker->level;
	for (int level = top; level >= walker->level; level--) {
		pt_element_t orig_pte = (pt_element_t)walker->ptes[level - 1];
		pt_element_t pte = orig_pte | PT_ACCESSED_MASK;
		int ret;

		if (level == walker->level && write_fault)
			pte |= PT_DIRTY_MASK;
		if (pte == orig_pte || !walker->pte_writable[level - 1])
			continue;
		ret = FNAME(cmpxchg_gpte)(vcpu, walker->pte_gpa[level - 1], orig_pte, pte);
		if (ret)
			return ret;
		kvm_vcpu_mark_page_dirty(vcpu, walker->table_gfn[level - 1]);
		walker->ptes[level - 1] = pte;
	}
	return 0;
}

static bool FNAME(walk_error)(struct kvm_vcpu *vcpu, struct guest_walker *walker, gva_t addr,
			      uint32_t access, uint32_t errcode)
{
	errcode |= access & (PFERR_WRITE_MASK | PFERR_USER_MASK);
	if ((access & PFERR_FETCH_MASK) && (vcpu->mmu.nx || (vcpu->arch.cr4 & X86_CR4_SMEP)))
		errcode |= PFERR_FETCH_MASK;
	trace_kvm_mmu_walker_error(vcpu->kvm, errcode);
	walker->fault.vector = PF_VECTOR;
	walker->fault.error_code = errcode;
	walker->fault.address = addr;
	return false;
}

/* The leaf's gfn: frame of the leaf plus the offset of addr inside a large page. */
static gfn_t FNAME(leaf_gfn)(struct kvm_vcpu *vcpu, const struct guest_walker *walker,
			     uint64_t pte, gva_t addr)
{
	gfn_t gfn = FNAME(gpte_to_gfn_lvl)(pte, walker->level);

	gfn += (addr & PT_LVL_SIZE_MASK(walker->level)) >> PAGE_SHIFT;
	/* pse36_gfn_delta: KVM always reports PSE-36; gpte bits 13..16 are gpa bits 32..35. */
	if (PTTYPE == 32 && walker->level == PT_DIRECTORY_LEVEL &&
	    !kvm_bug(&vcpu->kvm->config, KVM_BUG_W2_PSE36_DROPPED))
		gfn += (gfn_t)((pte >> PT32_PSE36_SHIFT) & 0xf) << (32 - PAGE_SHIFT);
	return gfn;
}

static bool FNAME(walk_addr_generic)(struct guest_walker *walker, struct kvm_vcpu *vcpu,
				     struct kvm_mmu *mmu, gva_t addr, uint32_t access)
{
	const bool write_fault = access & PFERR_WRITE_MASK;
	uint64_t pte, pt_access, pte_access, accessed_dirty;
	uint32_t errcode;
	int ret;

retry_walk:
	trace_kvm_mmu_pagetable_walk(vcpu->kvm, addr, access);
	memset(walker, 0, sizeof(*walker));
	walker->level = mmu->root_level;
	pte = vcpu->arch.cr3;
	if (PTTYPE == 64 && walker->level == PT32E_ROOT_LEVEL) {
		/* PAE: the PDPTE comes from the registers loaded at MOV CR3 (load_pdptrs). */
		pte = mmu->pdptrs[(addr >> 30) & 3];
		if (!(pte & PT_PRESENT_MASK))
			return FNAME(walk_error)(vcpu, walker, addr, access, 0);
		--walker->level;
	}
	walker->max_level = walker->level;

	pte_access = ~0ull;
	++walker->level;
	do {
		gfn_t table_gfn = FNAME(gpte_to_gfn)(pte);
		unsigned offset;
		pt_element_t entry;

		pt_access = pte_access;
		--walker->level;
		offset = PT_INDEX(addr, walker->level) * sizeof(pt_element_t);
		walker->table_gfn[walker->level - 1] = table_gfn;
		walker->pte_gpa[walker->level - 1] = (table_gfn << PAGE_SHIFT) + offset;
		/* A table outside every usable memslot faults as not present (checker rule
		 * KVM_TABLE_OUTSIDE_MEMSLOT). */
		if (!FNAME(read_gpte)(vcpu, walker, table_gfn, offset, &entry))
			return FNAME(walk_error)(vcpu, walker, addr, access, 0);
		pte = entry;
		trace_kvm_mmu_paging_element(vcpu->kvm, pte, walker->level);
		/* Inverting NX lets every permission bit be AND-ed across levels. */
		pte_access = pt_access & (pte ^ PT_WALK_NX_MASK);
		if (!(pte & PT_PRESENT_MASK))
			return FNAME(walk_error)(vcpu, walker, addr, access, 0);
		if (is_rsvd_bits_set(mmu, pte, walker->level))
			return FNAME(walk_error)(vcpu, walker, addr, access,
						 PFERR_RSVD_MASK | PFERR_PRESENT_MASK);
		walker->ptes[walker->level - 1] = pte;
		walker->pt_access_level[walker->level - 1] = FNAME(gpte_access)(pt_access ^ PT_WALK_NX_MASK);
	} while (!FNAME(is_last_gpte)(mmu, walker->level, pte));

	accessed_dirty = pte_access & PT_ACCESSED_MASK;
	walker->pt_access = FNAME(gpte_access)(pt_access ^ PT_WALK_NX_MASK);
	walker->pte_access = FNAME(gpte_access)(pte_access ^ PT_WALK_NX_MASK);
	errcode = permission_fault(vcpu, mmu, walker->pte_access, FNAME(gpte_pkeys)(vcpu, pte), access);
	if (errcode)
		return FNAME(walk_error)(vcpu, walker, addr, access, errcode);

	walker->gfn = FNAME(leaf_gfn)(vcpu, walker, pte, addr);
	if (!write_fault)
		FNAME(protect_clean_gpte)(&walker->pte_access, pte);
	else
		accessed_dirty &= pte >> 1; /* fold the leaf's D into the A position */

	if (!accessed_dirty) {
		ret = FNAME(update_accessed_dirty_bits)(vcpu, walker, write_fault);
		if (ret < 0)
			return FNAME(walk_error)(vcpu, walker, addr, access, 0);
		if (ret > 0)
			goto retry_walk;
	}
	return true;
}

/* FNAME(prefetch_invalid_gpte): a gpte that cannot be mapped speculatively (reserved bits,
 * not present, or A clear: the processor sets A before it caches a translation) drops the
 * spte instead. Bug S7 forgets the A test. */
static bool FNAME(prefetch_invalid_gpte)(struct kvm_vcpu *vcpu, uint64_t *spte, uint64_t gpte)
{
	bool accessed = (gpte & PT_ACCESSED_MASK) ||
			kvm_bug(&vcpu->kvm->config, KVM_BUG_S7_PREFETCH_IGNORES_ACCESSED);

	if (!is_rsvd_bits_set(&vcpu->mmu, gpte, PT_PAGE_TABLE_LEVEL) && (gpte & PT_PRESENT_MASK) &&
	    accessed)
		return false;
	kvm_mmu_drop_spte(vcpu->kvm, spte);
	return true;
}

/* FNAME(prefetch_gpte): map a level-1 gpte speculatively (A clear in the spte). With
 * no_dirty_log a writable mapping skips dirty-logged slots. False stops a prefetch scan. */
static bool FNAME(prefetch_gpte)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *spte,
				 uint64_t gpte, bool no_dirty_log)
{
	unsigned pte_access;
	kvm_pfn_t pfn;
	gfn_t gfn;

	if (FNAME(prefetch_invalid_gpte)(vcpu, spte, gpte))
		return false;
	gfn = FNAME(gpte_to_gfn)(gpte);
	pte_access = sp->role.access & FNAME(gpte_access)(gpte);
	FNAME(protect_clean_gpte)(&pte_access, gpte);
	pfn = pte_prefetch_gfn_to_pfn(vcpu, gfn, no_dirty_log && (pte_access & ACC_WRITE_MASK));
	if (is_error_pfn(pfn))
		return false;
	mmu_set_spte(vcpu, spte, pte_access, false, PT_PAGE_TABLE_LEVEL, gfn, pfn, true, true);
	return true;
}

/* FNAME(update_pte): kvm_mmu_pte_write's refill of a level-1 spte from the new gpte; the
 * write was emulated, so a dirty-logged slot is fine (v5.1 passes no_dirty_log = false). */
static void FNAME(update_pte)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, uint64_t *spte,
			      uint64_t gentry)
{
	FNAME(prefetch_gpte)(vcpu, sp, spte, (pt_element_t)gentry, false);
}

/* FNAME(get_level1_sp_gpa): the guest table a level-1 page shadows; a 32-bit guest's
 * 1024-entry table is split over two pages (quadrants 0 and 1). */
static gpa_t FNAME(get_level1_sp_gpa)(const struct kvm_mmu_page *sp)
{
	unsigned offset = PTTYPE == 32 ? (unsigned)sp->role.quadrant << 9 : 0;

	return ((gpa_t)sp->gfn << PAGE_SHIFT) + offset * sizeof(pt_element_t);
}

static bool FNAME(read_guest)(struct kvm_vcpu *vcpu, gpa_t gpa, void *data, size_t len);

/* The reserved-bit check of FNAME(sync_page) is the syncing vCPU's, not that of the
 * context the page was shadowed for (v4.20..v5.4 compare only the gpte size): a vCPU with
 * EFER.NXE keeps a spte for an NX gpte in a page of a vCPU without it, where bit 63 is
 * reserved. The guest sees the translation after it invalidates (found by shadowfuzz,
 * RULE_KVM_SYNC_IN_OTHER_CONTEXT). */
static void FNAME(check_sync_context)(struct kvm_vcpu *vcpu, const struct kvm_mmu_page *sp,
				      uint64_t gpte)
{
	if (PTTYPE == 32 || sp->role.nxe || !(gpte & PT64_NX_MASK))
		return;
	kvm_model_warn(vcpu->kvm, KVM_WARN_SYNC_IN_OTHER_CONTEXT,
		       "FNAME(sync_page) keeps an NX gpte of gfn %#llx in a page shadowed without EFER.NXE",
		       (unsigned long long)sp->gfn);
}

/* FNAME(sync_page) (spec §5.5): re-read every gpte behind a non-zero spte of an unsync
 * level-1 page. Invalid gptes and gptes naming another gfn drop their spte; KVM defers
 * that flush through tlbs_dirty, which only its MMU notifier consumes (the model has
 * none), so other vCPUs' TLBs keep the translation until they flush, as the guest that
 * changed the gptes without invalidating allows. The rest get their access recomputed on
 * the same pfn, W kept where the spte has it. Bug S12 keeps the spte of a gpte whose gfn
 * changed. Returns how many sptes stay present: 0 makes the caller zap the page, as does
 * a failed read. */
static int FNAME(sync_page)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp)
{
	bool s12 = kvm_bug(&vcpu->kvm->config, KVM_BUG_S12_SYNC_KEEPS_CHANGED_GFN);
	gpa_t first_pte_gpa = FNAME(get_level1_sp_gpa)(sp);
	int nr_present = 0, set_spte_ret = 0;

	for (int i = 0; i < SPTES_PER_PAGE; i++) {
		uint64_t *sptep = &sp->spt[i];
		unsigned pte_access;
		pt_element_t gpte;
		gfn_t gfn;

		if (!*sptep)
			continue;
		if (!FNAME(read_guest)(vcpu, first_pte_gpa + i * sizeof(pt_element_t), &gpte, sizeof(gpte)))
			return 0;
		if (FNAME(prefetch_invalid_gpte)(vcpu, sptep, gpte))
			continue;
		FNAME(check_sync_context)(vcpu, sp, gpte);
		gfn = FNAME(gpte_to_gfn)(gpte);
		pte_access = sp->role.access & FNAME(gpte_access)(gpte);
		FNAME(protect_clean_gpte)(&pte_access, gpte);
		if (sync_mmio_spte(vcpu, sptep, gfn, pte_access, &nr_present))
			continue;
		if (gfn != sp->gfns[i] && !s12) {
			kvm_mmu_drop_spte(vcpu->kvm, sptep);
			continue;
		}
		nr_present++;
		set_spte_ret |= set_spte(vcpu, sptep, pte_access, PT_PAGE_TABLE_LEVEL, gfn, spte_to_pfn(*sptep),
					 true, false, *sptep & SPTE_HOST_WRITEABLE);
	}
	if (set_spte_ret & SET_SPTE_NEED_REMOTE_TLB_FLUSH)
		kvm_flush_remote_tlbs(vcpu->kvm);
	return nr_present;
}

/* FNAME(invlpg) for one root: walk to the terminal spte of gva; in an unsync page, zap it
 * (a remote flush if it was present; v5.0's ranged flush is a full one without Hyper-V)
 * and prefetch the guest's current gpte in its place. Descend only through pages with
 * unsync children. Bug S10 leaves the unsync spte alone, as if the page were synced. */
static void FNAME(invlpg)(struct kvm_vcpu *vcpu, gva_t gva, hpa_t root)
{
	const struct spte_params *p = &vcpu->kvm->mmu->spte;
	struct kvm_shadow_walk_iterator it;

	for (shadow_walk_init_using_root(&it, vcpu, root, gva); shadow_walk_okay(&it, vcpu);
	     shadow_walk_next(&it)) {
		struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, it.sptep);
		pt_element_t gpte;

		if (is_last_spte(*it.sptep, it.level)) {
			if (!sp->unsync || kvm_bug(&vcpu->kvm->config, KVM_BUG_S10_INVLPG_KEEPS_UNSYNC_SPTE))
				break;
			if (mmu_page_zap_pte(vcpu->kvm, sp, it.sptep))
				kvm_flush_remote_tlbs(vcpu->kvm);
			if (!FNAME(read_guest)(vcpu, FNAME(get_level1_sp_gpa)(sp) +
						      (it.sptep - sp->spt) * sizeof(pt_element_t),
					       &gpte, sizeof(gpte)))
				break;
			FNAME(update_pte)(vcpu, sp, it.sptep, gpte);
		}
		if (!is_shadow_present_pte(p, *it.sptep) || !sp->unsync_children)
			break;
	}
}

/* FNAME(pte_prefetch) (v5.1): after a level-1 fault, map the other non-present sptes of
 * its aligned group of PTE_PREFETCH_NUM from the gptes gpte_changed read; the first gpte
 * that cannot be mapped ends the scan. Direct pages prefetch contiguous gfns. */
static void FNAME(pte_prefetch)(struct kvm_vcpu *vcpu, const struct guest_walker *gw,
				uint64_t *sptep)
{
	struct kvm_mmu_page *sp = sptep_to_sp(vcpu->kvm, sptep);
	uint64_t *spte;

	if (!vcpu->kvm->config.prefetch || sp->role.level > PT_PAGE_TABLE_LEVEL)
		return;
	if (sp->role.direct) {
		__direct_pte_prefetch(vcpu, sp, sptep);
		return;
	}
	spte = sp->spt + ((sptep - sp->spt) & ~(PTE_PREFETCH_NUM - 1));
	for (int i = 0; i < PTE_PREFETCH_NUM; i++, spte++) {
		if (spte == sptep || is_shadow_present_pte(&vcpu->kvm->mmu->spte, *spte))
			continue;
		if (!FNAME(prefetch_gpte)(vcpu, sp, spte, gw->prefetch_ptes[i], true))
			break;
	}
}

/* Read len bytes of guest memory at gpa (kvm_vcpu_read_guest_atomic within one page). */
static bool FNAME(read_guest)(struct kvm_vcpu *vcpu, gpa_t gpa, void *data, size_t len)
{
	hva_t hva = kvm_vcpu_gfn_to_hva_prot(vcpu, gpa >> PAGE_SHIFT, NULL);

	return hva != KVM_HVA_ERR_BAD && !host_read(vcpu->kvm->host, hva + (gpa & ~PAGE_MASK), data, len);
}

/* FNAME(gpte_changed): the gpte a shadow page was built from is no longer what the walk
 * read (the guest raced with us, or the write protection came too late). At level 1 it
 * reads the whole aligned group of gptes for FNAME(pte_prefetch), as v5.1 does. */
static bool FNAME(gpte_changed)(struct kvm_vcpu *vcpu, struct guest_walker *gw, int level)
{
	gpa_t pte_gpa = gw->pte_gpa[level - 1];
	pt_element_t curr_pte, ptes[PTE_PREFETCH_NUM];
	gpa_t base_gpa;
	int index;

	if (level != PT_PAGE_TABLE_LEVEL)
		return !FNAME(read_guest)(vcpu, pte_gpa, &curr_pte, sizeof(curr_pte)) ||
		       curr_pte != (pt_element_t)gw->ptes[level - 1];
	base_gpa = pte_gpa & ~(gpa_t)(sizeof(ptes) - 1);
	index = (int)((pte_gpa - base_gpa) / sizeof(pt_element_t));
	if (!FNAME(read_guest)(vcpu, base_gpa, ptes, sizeof(ptes)))
		return true;
	for (int i = 0; i < PTE_PREFETCH_NUM; i++)
		gw->prefetch_ptes[i] = ptes[i];
	return ptes[index] != (pt_element_t)gw->ptes[level - 1];
}

/* FNAME(fetch): indirect shadow pages down to the guest leaf level, direct pages below it
 * down to the host mapping level, then the leaf (spec §4.5). */
static int FNAME(fetch)(struct kvm_vcpu *vcpu, gva_t addr, struct guest_walker *gw,
			bool write_fault, int hlevel, kvm_pfn_t pfn, bool map_writable)
{
	const struct spte_params *p = &vcpu->kvm->mmu->spte;
	int ret;
	struct kvm_shadow_walk_iterator it;
	unsigned direct_access = gw->pte_access;
	bool b13 = kvm_bug(&vcpu->kvm->config, KVM_BUG_B13_SINGLE_PT_ACCESS);
	bool b14 = kvm_bug(&vcpu->kvm->config, KVM_BUG_B14_LINK_UNSYNC_CHILDREN) ||
		   kvm_bug(&vcpu->kvm->config, KVM_BUG_B16_FLUSH_INSTEAD_OF_SYNC);
	int top_level = vcpu->mmu.root_level;

	if (top_level == PT32E_ROOT_LEVEL)
		top_level = PT32_ROOT_LEVEL;
	if (FNAME(gpte_changed)(vcpu, gw, top_level) || !VALID_PAGE(vcpu->mmu.root_hpa))
		return RET_PF_RETRY;

	for (shadow_walk_init(&it, vcpu, addr); shadow_walk_okay(&it, vcpu) && it.level > gw->level;
	     shadow_walk_next(&it)) {
		struct kvm_mmu_page *sp = NULL;

		clear_sp_write_flooding_count(vcpu, it.sptep);
		drop_large_spte(vcpu, it.sptep);
		if (!is_shadow_present_pte(p, *it.sptep)) {
			unsigned access = b13 ? gw->pt_access : gw->pt_access_level[it.level - 2];

			sp = kvm_mmu_get_page(vcpu, gw->table_gfn[it.level - 2], addr, it.level - 1,
					      false, access);
			if (!sp)
				return -ENOMEM;
			/* 65855ed8b034 (the B14 fix, default here): a page found with unsync
			 * children is synced before it is linked, since the guest need not flush
			 * when a gpte goes from not present to present. v4.20..v5.3 relied on the
			 * KVM_REQ_MMU_SYNC kvm_mmu_get_page requests (v5.8, B16's kernel, on a TLB
			 * flush instead). */
			if (sp->unsync_children && !b14)
				mmu_sync_children(vcpu, sp);
		}
		/* The gpte of the table just write-protected may have changed before. */
		if (FNAME(gpte_changed)(vcpu, gw, it.level - 1))
			return RET_PF_RETRY;
		if (sp)
			link_shadow_page(vcpu, it.sptep, sp);
	}

	for (; shadow_walk_okay(&it, vcpu) && it.level > hlevel; shadow_walk_next(&it)) {
		struct kvm_mmu_page *sp;
		gfn_t direct_gfn;

		clear_sp_write_flooding_count(vcpu, it.sptep);
		validate_direct_spte(vcpu, it.sptep, direct_access);
		drop_large_spte(vcpu, it.sptep);
		if (is_shadow_present_pte(p, *it.sptep))
			continue;
		direct_gfn = gw->gfn & ~(KVM_PAGES_PER_HPAGE(it.level) - 1);
		sp = kvm_mmu_get_page(vcpu, direct_gfn, addr, it.level - 1, true, direct_access);
		if (!sp)
			return -ENOMEM;
		link_shadow_page(vcpu, it.sptep, sp);
	}
	if (!shadow_walk_okay(&it, vcpu))
		return RET_PF_RETRY;
	clear_sp_write_flooding_count(vcpu, it.sptep);
	ret = mmu_set_spte(vcpu, it.sptep, gw->pte_access, write_fault, it.level, gw->gfn, pfn,
			   false, map_writable);
	FNAME(pte_prefetch)(vcpu, gw, it.sptep);
	return ret;
}

/* FNAME(is_self_change_mapping): the access may write a guest table of its own walk. */
static bool FNAME(is_self_change_mapping)(struct kvm_vcpu *vcpu, const struct guest_walker *walker,
					  bool user_fault, bool *write_fault_to_shadow_pgtable)
{
	gfn_t mask = ~(KVM_PAGES_PER_HPAGE(walker->level) - 1);
	bool self_changed = false;

	if (!(walker->pte_access & ACC_WRITE_MASK || (!is_write_protection(vcpu) && !user_fault)))
		return false;
	for (int level = walker->level; level <= walker->max_level; level++) {
		gfn_t gfn = walker->gfn ^ walker->table_gfn[level - 1];

		self_changed |= !(gfn & mask);
		*write_fault_to_shadow_pgtable |= !gfn;
	}
	return self_changed;
}

/* FNAME(page_fault) (spec §4.4). */
static int FNAME(page_fault)(struct kvm_vcpu *vcpu, gva_t addr, uint32_t error_code,
			     struct x86_exception *fault)
{
	bool write_fault = error_code & PFERR_WRITE_MASK, user_fault = error_code & PFERR_USER_MASK;
	bool force_pt_level = false, map_writable = false, self_change;
	struct guest_walker walker;
	int level = PT_PAGE_TABLE_LEVEL, r;
	kvm_pfn_t pfn;

	if (!FNAME(walk_addr_generic)(&walker, vcpu, &vcpu->mmu, addr,
				      error_code & (PFERR_WRITE_MASK | PFERR_USER_MASK | PFERR_FETCH_MASK))) {
		*fault = walker.fault;
		return RET_PF_RETRY;
	}
	if (page_fault_handle_page_track(vcpu, error_code, walker.gfn)) {
		shadow_page_table_clear_flood(vcpu, addr);
		return RET_PF_EMULATE;
	}
	vcpu->write_fault_to_shadow_pgtable = false;
	self_change = FNAME(is_self_change_mapping)(vcpu, &walker, user_fault,
						    &vcpu->write_fault_to_shadow_pgtable);
	if (walker.level >= PT_DIRECTORY_LEVEL && !self_change) {
		level = mapping_level(vcpu, walker.gfn, &force_pt_level);
		if (!force_pt_level) {
			level = level < walker.level ? level : walker.level;
			walker.gfn &= ~(KVM_PAGES_PER_HPAGE(level) - 1);
		} else {
			level = PT_PAGE_TABLE_LEVEL;
		}
	}
	pfn = kvm_vcpu_gfn_to_pfn(vcpu, walker.gfn, write_fault, &map_writable);
	if (handle_abnormal_pfn(vcpu, addr, walker.gfn, pfn, walker.pte_access, &r))
		return r;
	/* CR0.WP=0: a supervisor write to a read-only page maps it writable but not user (and
	 * not executable under SMEP); a later user access faults and flips it back. */
	if (write_fault && !(walker.pte_access & ACC_WRITE_MASK) && !is_write_protection(vcpu) &&
	    !user_fault && !is_noslot_pfn(pfn)) {
		walker.pte_access |= ACC_WRITE_MASK;
		walker.pte_access &= ~ACC_USER_MASK;
		if (vcpu->arch.cr4 & X86_CR4_SMEP)
			walker.pte_access &= ~ACC_EXEC_MASK;
	}
	/* No page left: the guest retries the access (FNAME(page_fault), v4.20..v5.4). */
	if (make_mmu_pages_available(vcpu) < 0)
		return RET_PF_RETRY;
	vcpu->kvm->mmu->stat_pf_fixed++;
	return FNAME(fetch)(vcpu, addr, &walker, write_fault, level, pfn, map_writable);
}

#undef pt_element_t
#undef FNAME
#undef PT_BASE_ADDR_MASK
#undef PT_LEVEL_BITS
#undef PT_WALK_NX_MASK
#undef PT_INDEX
#undef PT_LVL_SIZE_MASK
