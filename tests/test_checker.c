/* The checker's rules: each applies exactly where KVM differs from the architecture, and a
 * sibling case just outside it still gets the reference's answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "checker.h"

static struct access_check check_in(enum paging_mode mode, enum ref_access_kind kind, int cpl)
{
	struct access_check check = { .cpl = cpl, .kind = kind, .gva = 0x00c01234, .maxphyaddr = 40 };

	check.cpu.mode = mode;
	return check;
}

static struct ref_result ok_result(gpa_t gpa)
{
	return (struct ref_result){ .outcome = REF_OK, .gpa = gpa, .n_entries = 1 };
}

static void unbacked_table_faults_not_present(void **state)
{
	struct access_check check = check_in(PAGING_4LEVEL, REF_WRITE, 3);
	struct ref_result ref = { .outcome = REF_PAGE_FAULT, .error_code = 0xf, .cr2 = check.gva };
	struct model_access expected;
	enum kvm_rule rule;

	ref.read_unbacked = true;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(rule, RULE_KVM_TABLE_OUTSIDE_MEMSLOT);
	assert_int_equal(expected.outcome, REF_PAGE_FAULT);
	assert_int_equal(expected.error_code, PFERR_WRITE_MASK | PFERR_USER_MASK);
	assert_int_equal(expected.cr2, check.gva);

	/* Fetch: I/D only with NX paging or SMEP. */
	check = check_in(PAGING_4LEVEL, REF_FETCH, 0);
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(expected.error_code, 0);
	check.cpu.efer_nxe = true;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(expected.error_code, PFERR_FETCH_MASK);
	check = check_in(PAGING_32, REF_FETCH, 0);
	check.cpu.efer_nxe = true;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(expected.error_code, 0);
	check.cpu.cr4_smep = true;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(expected.error_code, PFERR_FETCH_MASK);

	/* Sibling: a backed walk keeps the reference's answer. */
	ref.read_unbacked = false;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(rule, RULE_NONE);
	assert_int_equal(expected.error_code, 0xf);
}

static void pse36_high_bits_are_reserved_for_kvm(void **state)
{
	struct access_check check = check_in(PAGING_32, REF_READ, 0);
	struct ref_result ref = ok_result(0x1000c01234ull);
	struct model_access expected;
	enum kvm_rule rule;

	check.cpu.cr4_pse = true;
	ref.entries[0].value = 0x00c00000 | 1u << 17 | PT_PAGE_SIZE_MASK | PT_PRESENT_MASK;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(rule, RULE_KVM_PSE36_IS_36_BITS);
	assert_int_equal(expected.outcome, REF_PAGE_FAULT);
	assert_int_equal(expected.error_code, PFERR_PRESENT_MASK | PFERR_RSVD_MASK);

	/* Siblings: bits 13..16 are KVM's PSE-36 bits too; without PSE, PS is ignored. */
	ref.entries[0].value = 0x00c00000 | 1u << 16 | PT_PAGE_SIZE_MASK | PT_PRESENT_MASK;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(rule, RULE_NONE);
	assert_int_equal(expected.outcome, REF_OK);
	assert_int_equal(expected.gpa, 0x1000c01234ull);
	ref.entries[0].value = 0x00c00000 | 1u << 17 | PT_PAGE_SIZE_MASK | PT_PRESENT_MASK;
	check.cpu.cr4_pse = false;
	checker_expected(&check, &ref, &expected, &rule);
	assert_int_equal(rule, RULE_NONE);
}

static void compare_names_first_difference(void **state)
{
	struct model_access expected = { .outcome = REF_PAGE_FAULT, .error_code = 3, .cr2 = 0x1000 };
	struct model_access model = expected;
	enum check_id failed;

	assert_true(checker_compare(&expected, &model, &failed));
	model.error_code = 1;
	assert_false(checker_compare(&expected, &model, &failed));
	assert_int_equal(failed, CHECK_ERROR_CODE);
	model = expected;
	model.cr2 = 0x2000;
	assert_false(checker_compare(&expected, &model, &failed));
	assert_int_equal(failed, CHECK_CR2);
	model.outcome = REF_OK;
	assert_false(checker_compare(&expected, &model, &failed));
	assert_int_equal(failed, CHECK_OUTCOME);
	expected = (struct model_access){ .outcome = REF_OK, .gpa = 0x5000 };
	model = (struct model_access){ .outcome = REF_OK, .gpa = 0x6000 };
	assert_false(checker_compare(&expected, &model, &failed));
	assert_int_equal(failed, CHECK_GPA);
}

/* SDM §4.4.1: reserved PDPTE bits are 63:MAXPHYADDR, 8:5 and 2:1, only in present ones. */
static void pdpte_validity(void **state)
{
	uint64_t pdpte[4] = { 0x1000 | 1, 0, 0x2000 | 1 | 1ull << 3 | 1ull << 4, 0x3000 | 1 | 1ull << 9 };

	assert_true(checker_pdptes_valid(pdpte, 40));
	pdpte[1] = 0x2; /* not present: its bits do not matter */
	assert_true(checker_pdptes_valid(pdpte, 40));
	for (int bit = 1; bit < 64; bit++) {
		bool reserved = bit == 1 || bit == 2 || (bit >= 5 && bit <= 8) || bit >= 40;

		pdpte[0] = 0x1000 | 1 | 1ull << bit;
		assert_int_equal(checker_pdptes_valid(pdpte, 40), !reserved);
	}
}

/* KVM_ALIASED_TABLE_WRITE_UNTRACKED: gpas 0x105000 and 0x40105000 share a host page. A
 * walk reading the entry through one gfn qualifies only after a write through the other,
 * while they aliased; a later write through the walk's own gfn ends it. */
static void aliased_table_write_needs_another_gfn(void **state)
{
	struct ref_memory *mem = ref_memory_new();
	struct aliased_writes *w = aliased_writes_new();
	struct ref_cpu_state cpu = { .mode = PAGING_4LEVEL };
	struct ref_result walk = { .outcome = REF_OK, .n_entries = 2 };
	uint64_t value = 0x106007;

	walk.entries[0].gpa = 0x100008;
	walk.entries[1].gpa = 0x40105000;
	assert_non_null(mem);
	assert_non_null(w);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x420000, 0x100000100000ull, false), 0);
	/* Not aliased yet: nothing recorded. */
	assert_int_equal(ref_memory_write(mem, 0, 0x105000, &value, 8), 0);
	assert_int_equal(aliased_writes_note(w, mem, 0, 0x105000, 8), 0);
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	assert_int_equal(ref_memory_set_region(mem, 0, 1, 0x40000000, 0x200000, 0x100000000000ull, false), 0);
	/* Written through the walk's own gfn: tracked. */
	assert_int_equal(aliased_writes_note(w, mem, 0, 0x40105000, 8), 0);
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	/* Through the other gfn: untracked for 0x40105, but not for a walk through 0x105. */
	assert_int_equal(aliased_writes_note(w, mem, 0, 0x105000, 8), 0);
	assert_true(checker_aliased_table_write(w, mem, &cpu, &walk));
	walk.entries[1].gpa = 0x105000;
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	/* Another entry of the page, another address space, or no paging: not this write. */
	walk.entries[1].gpa = 0x40105008;
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	walk.entries[1].gpa = 0x40105000;
	cpu.as_id = 1;
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	cpu = (struct ref_cpu_state){ .mode = PAGING_NONE };
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	/* The aliasing slot goes away: the record stays (the stale shadow page may too), and a
	 * write through the walk's gfn ends it. */
	cpu.mode = PAGING_4LEVEL;
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0, 0x100000100000ull, false), 0);
	assert_true(checker_aliased_table_write(w, mem, &cpu, &walk));
	assert_int_equal(aliased_writes_note(w, mem, 0, 0x40105000, 8), 0);
	assert_false(checker_aliased_table_write(w, mem, &cpu, &walk));
	aliased_writes_free(w);
	ref_memory_free(mem);
}

/* KVM_WALKER_AD_WRITE_UNTRACKED: a 32-bit walk's A/D update at 4 mod 8 changes bits 37/38
 * of the 8-byte entry there, which a 64-bit walk reads as address bits; at 0 mod 8 it is
 * that entry's own A/D, and a 32-bit walk of the same dword reads its own A/D too. A guest
 * write (tracked by KVM) ends the record. */
static void ad_update_changes_other_format_bits(void **state)
{
	struct ref_memory *mem = ref_memory_new();
	struct ad_updates *u = ad_updates_new();
	struct ref_cpu_state cpu = { .mode = PAGING_4LEVEL };
	struct ref_result walk = { .outcome = REF_OK, .n_entries = 2 };
	uint32_t a = PT_ACCESSED_MASK;

	walk.entries[0].gpa = 0x100008;
	walk.entries[1].gpa = 0x101000;
	assert_non_null(mem);
	assert_non_null(u);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x20000, 0x100000100000ull, false), 0);
	/* The entry's own A (0 mod 8): nothing recorded. */
	assert_int_equal(ad_updates_note(u, mem, 0, 0x101000, a), 0);
	assert_false(checker_ad_update_changed_entry(u, mem, &cpu, &walk));
	/* A 32-bit walk's A in the high half: bit 37 of the 64-bit entry. */
	assert_int_equal(ad_updates_note(u, mem, 0, 0x101004, a), 0);
	assert_true(checker_ad_update_changed_entry(u, mem, &cpu, &walk));
	/* A 32-bit walk reading that dword sees its own A. */
	cpu.mode = PAGING_32;
	walk.entries[1].gpa = 0x101004;
	assert_false(checker_ad_update_changed_entry(u, mem, &cpu, &walk));
	/* Another entry, or after the guest wrote the dword: not this update. */
	cpu.mode = PAGING_4LEVEL;
	walk.entries[1].gpa = 0x101008;
	assert_false(checker_ad_update_changed_entry(u, mem, &cpu, &walk));
	walk.entries[1].gpa = 0x101000;
	ad_updates_guest_write(u, mem, 0, 0x101000, 8);
	assert_false(checker_ad_update_changed_entry(u, mem, &cpu, &walk));
	ad_updates_free(u);
	ref_memory_free(mem);
}

/* KVM_GET_DIRTY_LOG may report pages nobody wrote (KVM marks a page when it makes its spte
 * writable), never drop one that was written. */
static void dirty_log_superset_allowed_missing_page_rejected(void **state)
{
	const uint64_t written[2] = { 0x5, 1ull << 3 };
	uint64_t reported[2] = { 0xf, 1ull << 3 | 1ull << 9 }, missing = 99;

	/* 70 pages: the second word's bits above page 69 are never set */
	assert_int_equal(checker_dirty_log_missing(written, reported, 70, &missing), -1);
	assert_int_equal(missing, 0);
	reported[1] = 1ull << 9;
	assert_int_equal(checker_dirty_log_missing(written, reported, 70, &missing), 64 + 3);
	assert_int_equal(missing, 1);
	reported[0] = 0;
	assert_int_equal(checker_dirty_log_missing(written, reported, 70, &missing), 0);
	assert_int_equal(missing, 3);
	assert_string_equal(check_name(CHECK_DIRTY_LOG), "dirty-log");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unbacked_table_faults_not_present),
		cmocka_unit_test(pse36_high_bits_are_reserved_for_kvm),
		cmocka_unit_test(compare_names_first_difference),
		cmocka_unit_test(pdpte_validity),
		cmocka_unit_test(aliased_table_write_needs_another_gfn),
		cmocka_unit_test(ad_update_changes_other_format_bits),
		cmocka_unit_test(dirty_log_superset_allowed_missing_page_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
