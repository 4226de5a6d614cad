/* The emulated-write seed programs reach what their headers say: KVM's VM stats after each
 * runs clean on every profile (how many shadow pages were zapped as misaligned or flooded,
 * pdes zapped and ptes refilled). A guest cannot see a zap, so without these counts a
 * program could pass while missing the path it was written for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "executor.h"
#include "program.h"

static const enum kvm_profile profiles[] = { KVM_PROFILE_4_20, KVM_PROFILE_5_1, KVM_PROFILE_5_3 };

/* corpus/NAME run clean on profile; the VM stats at its end. */
static struct kvm_vm_stat run_seed(const char *name, enum kvm_profile profile)
{
	static struct program prog;
	struct kvm_config cfg;
	struct divergence div;
	struct kvm_vm_stat stat;
	struct executor *ex;
	char path[512], err[256];

	snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, name);
	assert_int_equal(program_load_file(path, &prog, err, sizeof(err)), 0);
	kvm_config_init(&cfg, profile);
	ex = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	assert_non_null(ex);
	executor_set_audit(ex, true);
	assert_int_equal(executor_run(ex, &prog, &div), 0);
	stat = executor_stats(ex)->vm;
	executor_free(ex);
	return stat;
}

/* Four pde writes, one per quadrant, each reaching the two sptes of its pde; pte writes in
 * both halves of a table refilled; fresh faults keep every quadrant page below a flood. */
static void quadrants_reach_every_quadrant_without_flooding(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		struct kvm_vm_stat s = run_seed("32bit_pte_write_quadrants.sfp", profiles[i]);

		assert_int_equal(s.mmu_flooded, 0);
		assert_true(s.mmu_pde_zapped >= 4 * 2);
		assert_true(s.mmu_pte_updated >= 3);
	}
}

/* 32-bit: two misaligned bytes in a page table (both halves' pages each time), one in the
 * page directory (its four quadrant pages), then a flood of quadrants 1..3. */
static void bytes_misaligned_flood_32bit(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		assert_int_equal(run_seed("32bit_pte_write_bytes_misaligned_flood.sfp", profiles[i]).mmu_flooded,
				 2 + 2 + 4 + 3);
}

/* PAE: a misaligned byte in a page table and in a page directory, then a flood of another
 * directory. */
static void bytes_misaligned_flood_pae(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		assert_int_equal(run_seed("pae_pte_write_bytes_misaligned_flood.sfp", profiles[i]).mmu_flooded,
				 1 + 1 + 1);
}

/* 4-level: the same three zaps; the directory written three times through its own walk is
 * not among them (shadow_page_table_clear_flood). */
static void bytes_misaligned_flood_4level(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		assert_int_equal(run_seed("4level_pte_write_bytes_misaligned_flood.sfp", profiles[i]).mmu_flooded,
				 1 + 1 + 1);
}

/* The PDPT floods, and the root only once it is a cached root: its writes while in use
 * fault through it. */
static void root_floods_only_when_cached(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		assert_int_equal(run_seed("4level_write_flooding_root_and_pdpt.sfp", profiles[i]).mmu_flooded,
				 1 + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quadrants_reach_every_quadrant_without_flooding),
		cmocka_unit_test(bytes_misaligned_flood_32bit),
		cmocka_unit_test(bytes_misaligned_flood_pae),
		cmocka_unit_test(bytes_misaligned_flood_4level),
		cmocka_unit_test(root_floods_only_when_cached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
