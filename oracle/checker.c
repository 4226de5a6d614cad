#include <stdio.h>

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
