#include <stdio.h>
#include <stdlib.h>

#include "checker.h"

static const char *const check_names[CHECK_COUNT] = {
	[CHECK_OUTCOME] = "outcome",     [CHECK_ERROR_CODE] = "error-code",
	[CHECK_CR2] = "cr2",             [CHECK_GPA] = "gpa",
	[CHECK_MEMORY] = "guest-memory", [CHECK_PDPTE_LOAD] = "pdpte-load",
	[CHECK_TRANSLATION] = "translation", [CHECK_MMIO] = "mmio",
	[CHECK_LIVENESS] = "liveness",   [CHECK_MODEL_ERROR] = "model-error",
	[CHECK_INVARIANT] = "invariant", [CHECK_DIRTY_LOG] = "dirty-log",
};

static const char *const rule_names[RULE_COUNT] = {
	[RULE_NONE] = "none",
	[RULE_KVM_TABLE_OUTSIDE_MEMSLOT] = "KVM_TABLE_OUTSIDE_MEMSLOT",
	[RULE_KVM_PSE36_IS_36_BITS] = "KVM_PSE36_IS_36_BITS",
	[RULE_KVM_ROOT_OUTSIDE_MEMSLOT] = "KVM_ROOT_OUTSIDE_MEMSLOT",
	[RULE_KVM_MMIO_WRITE_SKIPS_DIRTY] = "KVM_MMIO_WRITE_SKIPS_DIRTY",
	[RULE_KVM_PSE_CHANGE_KEEPS_SHADOW] = "KVM_PSE_CHANGE_KEEPS_SHADOW",
	[RULE_KVM_SMM_ROOT_CHECKED_IN_AS0] = "KVM_SMM_ROOT_CHECKED_IN_AS0",
	[RULE_KVM_SMM_MMIO_CACHE_AS0_GENERATION] = "KVM_SMM_MMIO_CACHE_AS0_GENERATION",
	[RULE_KVM_ALIASED_TABLE_WRITE_UNTRACKED] = "KVM_ALIASED_TABLE_WRITE_UNTRACKED",
	[RULE_KVM_WALKER_AD_WRITE_UNTRACKED] = "KVM_WALKER_AD_WRITE_UNTRACKED",
	[RULE_KVM_SMAP_AC_WP0_SUPERVISOR_PAGE] = "KVM_SMAP_AC_WP0_SUPERVISOR_PAGE",
	[RULE_ARCH_STALE_TRANSLATION] = "ARCH_STALE_TRANSLATION",
	[RULE_KVM_MMIO_CACHE_AFTER_WALK] = "KVM_MMIO_CACHE_AFTER_WALK",
	[RULE_KVM_SMM_UNSYNC_OTHER_AS_TABLE] = "KVM_SMM_UNSYNC_OTHER_AS_TABLE",
	[RULE_KVM_SYNC_REVIVES_MMIO_SPTE] = "KVM_SYNC_REVIVES_MMIO_SPTE",
	[RULE_KVM_SYNC_IN_OTHER_CONTEXT] = "KVM_SYNC_IN_OTHER_CONTEXT",
	[RULE_KVM_ENOSPC_LEAKS_PAE_ROOTS] = "KVM_ENOSPC_LEAKS_PAE_ROOTS",
	[RULE_KVM_ROOTS_FILL_PAGE_BUDGET] = "KVM_ROOTS_FILL_PAGE_BUDGET",
	[RULE_KVM_LONG_MODE_SHADOW_IN_PAE] = "KVM_LONG_MODE_SHADOW_IN_PAE",
	[RULE_KVM_READONLY_WRITE_IS_MMIO] = "KVM_READONLY_WRITE_IS_MMIO",
};

const char *check_name(enum check_id check) { return check < CHECK_COUNT ? check_names[check] : "?"; }
const char *kvm_rule_name(enum kvm_rule rule) { return rule < RULE_COUNT ? rule_names[rule] : "?"; }

/* The error-code bits every #PF of this access carries besides P/RSVD/PK: W and U from the
 * access, I/D only where the SDM sets it (NX paging enabled, or CR4.SMEP). */
static uint32_t access_error_bits(const struct access_check *check)
{
	const struct ref_cpu_state *cpu = &check->cpu;
	bool nx_paging = cpu->efer_nxe && cpu->mode >= PAGING_PAE;
	uint32_t bits = 0;

	if (check->kind == REF_WRITE)
		bits |= PFERR_WRITE_MASK;
	if (check->cpl == 3)
		bits |= PFERR_USER_MASK;
	if (check->kind == REF_FETCH && (nx_paging || cpu->cr4_smep))
		bits |= PFERR_FETCH_MASK;
	return bits;
}

static void page_fault(const struct access_check *check, uint32_t bits, struct model_access *out)
{
	*out = (struct model_access){
		.outcome = REF_PAGE_FAULT,
		.error_code = bits | access_error_bits(check),
		.cr2 = check->gva,
	};
}

static bool pse36_high_bits_used(const struct access_check *check, const struct ref_result *ref)
{
	if (check->cpu.mode != PAGING_32 || !check->cpu.cr4_pse || ref->n_entries < 1)
		return false;
	uint64_t pde = ref->entries[0].value;
	return (pde & PT_PRESENT_MASK) && (pde & PT_PAGE_SIZE_MASK) && (pde & rsvd_bits(17, 20));
}

void checker_expected(const struct access_check *check, const struct ref_result *ref,
		      struct model_access *expected, enum kvm_rule *rule)
{
	*rule = RULE_NONE;
	if (ref->read_unbacked) {
		*rule = RULE_KVM_TABLE_OUTSIDE_MEMSLOT;
		page_fault(check, 0, expected);
		return;
	}
	if (pse36_high_bits_used(check, ref)) {
		*rule = RULE_KVM_PSE36_IS_36_BITS;
		page_fault(check, PFERR_PRESENT_MASK | PFERR_RSVD_MASK, expected);
		return;
	}
	*expected = (struct model_access){ .outcome = ref->outcome };
	if (ref->outcome == REF_PAGE_FAULT) {
		expected->error_code = ref->error_code;
		expected->cr2 = ref->cr2;
	} else if (ref->outcome == REF_OK) {
		expected->gpa = ref->gpa;
	}
}

bool checker_compare(const struct model_access *expected, const struct model_access *model,
		     enum check_id *failed)
{
	if (model->outcome != expected->outcome) {
		*failed = CHECK_OUTCOME;
		return false;
	}
	if (model->outcome == REF_PAGE_FAULT && model->error_code != expected->error_code) {
		*failed = CHECK_ERROR_CODE;
		return false;
	}
	if (model->outcome == REF_PAGE_FAULT && model->cr2 != expected->cr2) {
		*failed = CHECK_CR2;
		return false;
	}
	if (model->outcome == REF_OK && model->gpa != expected->gpa) {
		*failed = CHECK_GPA;
		return false;
	}
	return true;
}

static bool backed(struct ref_memory *mem, gpa_t gpa)
{
	return ref_memory_page(mem, 0, gpa, false) != NULL;
}

bool checker_root_unbacked(struct ref_memory *mem, const struct ref_cpu_state *cpu)
{
	if (cpu->mode == PAGING_NONE)
		return false;
	if (!backed(mem, cpu->cr3 & PAGE_MASK))
		return true;
	if (cpu->mode != PAGING_PAE)
		return false;
	for (int i = 0; i < 4; i++)
		if ((cpu->pdptrs[i] & PT_PRESENT_MASK) && !backed(mem, cpu->pdptrs[i] & PT64_BASE_ADDR_MASK))
			return true;
	return false;
}

static bool only_in_as0(struct ref_memory *mem, gpa_t gpa)
{
	return ref_memory_page(mem, 0, gpa, false) && !ref_memory_page(mem, 1, gpa, false);
}

bool checker_smm_root_only_in_as0(struct ref_memory *mem, const struct ref_cpu_state *cpu)
{
	if (cpu->as_id != 1 || cpu->mode == PAGING_NONE)
		return false;
	if (cpu->mode != PAGING_PAE)
		return only_in_as0(mem, cpu->cr3 & PAGE_MASK);
	/* PAE roots are the tables the PDPTEs point at. */
	for (int i = 0; i < 4; i++)
		if ((cpu->pdptrs[i] & PT_PRESENT_MASK) && only_in_as0(mem, cpu->pdptrs[i] & PT64_BASE_ADDR_MASK))
			return true;
	return false;
}

bool checker_pdptes_valid(const uint64_t pdpte[4], int maxphyaddr)
{
	uint64_t rsvd = rsvd_bits(maxphyaddr, 63) | rsvd_bits(5, 8) | rsvd_bits(1, 2);

	for (int i = 0; i < 4; i++)
		if ((pdpte[i] & PT_PRESENT_MASK) && (pdpte[i] & rsvd))
			return false;
	return true;
}

#define GRANULE 4u

/* Room for one more record in a growable array of n records of size bytes each: 0, or
 * -1 when out of memory (the array is left as it was). */
static int grow_records(void **records, size_t *cap, size_t n, size_t size)
{
	size_t more = *cap ? *cap * 2 : 16;
	void *grown;

	if (n < *cap)
		return 0;
	grown = realloc(*records, more * size);
	if (!grown)
		return -1;
	*records = grown;
	*cap = more;
	return 0;
}

struct aliased_write {
	hva_t hva; /* GRANULE-aligned */
	int as_id; /* of the last write */
	gfn_t gfn; /* of the last write */
};

struct aliased_writes {
	struct aliased_write *records;
	size_t n, cap;
};

struct aliased_writes *aliased_writes_new(void) { return calloc(1, sizeof(struct aliased_writes)); }

void aliased_writes_free(struct aliased_writes *w)
{
	if (w)
		free(w->records);
	free(w);
}

void aliased_writes_reset(struct aliased_writes *w)
{
	if (w)
		w->n = 0;
}

static struct aliased_write *find_write(const struct aliased_writes *w, hva_t hva)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->records[i].hva == hva)
			return &w->records[i];
	return NULL;
}

/* Granules written while unaliased need no record; once recorded, every later write to
 * them updates the gfn, even when the aliasing memslot is gone (the stale shadow page may
 * outlive it). */
int aliased_writes_note(struct aliased_writes *w, const struct ref_memory *mem, int as_id,
			gpa_t gpa, size_t len)
{
	for (gpa_t at = gpa & ~(gpa_t)(GRANULE - 1); at < gpa + len; at += GRANULE) {
		struct aliased_write *rec;
		hva_t hva;

		if (!ref_memory_backing(mem, as_id, at, &hva, NULL))
			continue;
		rec = find_write(w, hva);
		if (!rec && !ref_memory_hva_aliased(mem, hva & PAGE_MASK))
			continue;
		if (!rec) {
			if (grow_records((void **)&w->records, &w->cap, w->n, sizeof(*w->records)))
				return -1;
			rec = &w->records[w->n++];
			*rec = (struct aliased_write){ .hva = hva };
		}
		rec->as_id = as_id;
		rec->gfn = at >> PAGE_SHIFT;
	}
	return 0;
}

bool checker_aliased_table_write(const struct aliased_writes *w, const struct ref_memory *mem,
				 const struct ref_cpu_state *cpu, const struct ref_result *walk)
{
	unsigned size = cpu->mode == PAGING_32 ? 4 : 8;
	int first = cpu->mode == PAGING_PAE ? 1 : 0;

	if (!w || !w->n || cpu->mode == PAGING_NONE)
		return false;
	for (int i = first; i < walk->n_entries; i++) {
		gpa_t gpa = walk->entries[i].gpa;

		for (gpa_t at = gpa; at < gpa + size; at += GRANULE) {
			const struct aliased_write *rec;
			hva_t hva;

			if (!ref_memory_backing(mem, cpu->as_id, at, &hva, NULL))
				continue;
			rec = find_write(w, hva);
			if (rec && (rec->as_id != cpu->as_id || rec->gfn != at >> PAGE_SHIFT))
				return true;
		}
	}
	return false;
}

struct ad_update {
	hva_t hva;     /* GRANULE-aligned */
	uint32_t bits; /* changed by walkers' A/D updates since the last guest write */
};

struct ad_updates {
	struct ad_update *records;
	size_t n, cap;
};

struct ad_updates *ad_updates_new(void) { return calloc(1, sizeof(struct ad_updates)); }

void ad_updates_free(struct ad_updates *u)
{
	if (u)
		free(u->records);
	free(u);
}

void ad_updates_reset(struct ad_updates *u)
{
	if (u)
		u->n = 0;
}

static struct ad_update *find_ad_update(const struct ad_updates *u, hva_t hva)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->records[i].hva == hva)
			return &u->records[i];
	return NULL;
}

/* Only a dword at 4 mod 8 can be another format's non-A/D bits: a 4-byte entry there is
 * the high half of an 8-byte one, while every 8-byte entry's A/D bits, and a 4-byte
 * entry's at 0 mod 8, are A/D bits in every format. */
int ad_updates_note(struct ad_updates *u, const struct ref_memory *mem, int as_id, gpa_t gpa,
		    uint32_t bits)
{
	struct ad_update *rec;
	hva_t hva;

	if (!bits || (gpa & 7) != 4 || !ref_memory_backing(mem, as_id, gpa, &hva, NULL))
		return 0;
	rec = find_ad_update(u, hva);
	if (!rec) {
		if (grow_records((void **)&u->records, &u->cap, u->n, sizeof(*u->records)))
			return -1;
		rec = &u->records[u->n++];
		*rec = (struct ad_update){ .hva = hva };
	}
	rec->bits |= bits;
	return 0;
}

void ad_updates_guest_write(struct ad_updates *u, const struct ref_memory *mem, int as_id,
			    gpa_t gpa, size_t len)
{
	if (!u->n)
		return;
	for (gpa_t at = gpa & ~(gpa_t)(GRANULE - 1); at < gpa + len; at += GRANULE) {
		struct ad_update *rec;
		hva_t hva;

		if (!ref_memory_backing(mem, as_id, at, &hva, NULL))
			continue;
		rec = find_ad_update(u, hva);
		if (rec)
			*rec = u->records[--u->n];
	}
}

bool checker_ad_update_changed_entry(const struct ad_updates *u, const struct ref_memory *mem,
				     const struct ref_cpu_state *cpu, const struct ref_result *walk)
{
	unsigned size = cpu->mode == PAGING_32 ? 4 : 8;
	int first = cpu->mode == PAGING_PAE ? 1 : 0;

	if (!u || !u->n || cpu->mode == PAGING_NONE)
		return false;
	for (int i = first; i < walk->n_entries; i++) {
		gpa_t gpa = walk->entries[i].gpa;

		for (gpa_t at = gpa; at < gpa + size; at += GRANULE) {
			const struct ad_update *rec;
			uint64_t bits;
			hva_t hva;

			if (!ref_memory_backing(mem, cpu->as_id, at, &hva, NULL))
				continue;
			rec = find_ad_update(u, hva);
			if (!rec)
				continue;
			bits = (uint64_t)rec->bits << (8 * (at - gpa));
			if (bits & ~(uint64_t)(PT_ACCESSED_MASK | PT_DIRTY_MASK))
				return true;
		}
	}
	return false;
}

int model_access_format(const struct model_access *answer, char *buf, size_t len)
{
	switch (answer->outcome) {
	case REF_OK:
		return snprintf(buf, len, "ok gpa=%#llx", (unsigned long long)answer->gpa);
	case REF_PAGE_FAULT:
		return snprintf(buf, len, "#PF error=%#x cr2=%#llx", answer->error_code,
				(unsigned long long)answer->cr2);
	case REF_GP_FAULT:
		return snprintf(buf, len, "#GP");
	}
	return snprintf(buf, len, "?");
}

int64_t checker_dirty_log_missing(const uint64_t *written, const uint64_t *reported,
				  uint64_t npages, uint64_t *missing)
{
	int64_t first = -1;

	*missing = 0;
	for (uint64_t i = 0; i < (npages + 63) / 64; i++) {
		uint64_t lost = written[i] & ~reported[i];

		if (lost && first < 0)
			first = (int64_t)(i * 64 + (uint64_t)__builtin_ctzll(lost));
		*missing += (uint64_t)__builtin_popcountll(lost);
	}
	return first;
}
