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

/* corpus/NAME on every profile: no page went unsync (every table write trapped, as the
 * program's header says) and mmu_flooded, the pages zapped as misaligned or flooded. */
static void assert_trapped_and_flooded(const char *name, uint64_t flooded)
{
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		struct kvm_vm_stat s = run_seed(name, profiles[i]);

		assert_int_equal(s.mmu_unsync_total, 0);
		assert_int_equal(s.mmu_flooded, flooded);
	}
}

/* Counts of corpus/32bit_pte_write_quadrants.sfp. T1 and T3 were roots once (cr3 T1, cr3 T3,
 * cr3 T0): their four quadrant root pages stay in the hash and keep the gfns write-tracked
 * (account_shadowed, level 2), so the pte writes to them are emulated, not unsync.
 * mmu_pde_zapped: a whole-gpte write with a non-zero gentry counts once per spte
 * get_written_sptes returns in a level-2 page of the vCPU's role (mmu_pte_write_new_pte),
 * two per 32-bit pde: the four pdes the map macros write into T0 (4 * 2); T1[1], T1[513]
 * and T3[1] in T1's and T3's root page of their quadrant (3 * 2); the four pde writes, one
 * per quadrant of T0 (4 * 2); the last write of T0[256] is zero and counts nothing.
 * mmu_pte_updated: the three pte writes are refilled in their level-1 page (T1's both
 * halves, T3's half 0). Nothing floods: T1 and T3 are written twice and once, and fresh
 * faults restart T0's quadrants before a third. Nothing unsyncs. */
static void quadrants_reach_every_quadrant_without_flooding(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		struct kvm_vm_stat s = run_seed("32bit_pte_write_quadrants.sfp", profiles[i]);

		assert_int_equal(s.mmu_unsync_total, 0);
		assert_int_equal(s.mmu_flooded, 0);
		assert_int_equal(s.mmu_pde_zapped, 4 * 2 + 3 * 2 + 4 * 2);
		assert_int_equal(s.mmu_pte_updated, 3);
	}
}

/* 32-bit: T1, a page table that was a root once, has two level-1 pages (its halves) and
 * four level-2 ones (the root's quadrants); a misaligned byte zaps all six (detect_write_
 * misaligned runs before the quadrant filter), twice, the root made again in between; then
 * one in the page directory T0 (its four quadrant pages), then a flood of quadrants 1..3. */
static void bytes_misaligned_flood_32bit(void **state)
{
	(void)state;
	assert_trapped_and_flooded("32bit_pte_write_bytes_misaligned_flood.sfp", (2 + 4) + (2 + 4) + 4 + 3);
}

/* PAE: a misaligned byte in the page table T2, which is also the directory of PDPTE 3 (its
 * level-1 page and its level-2 root page), one in the page directory T1, then a flood of
 * another directory. */
static void bytes_misaligned_flood_pae(void **state)
{
	(void)state;
	assert_trapped_and_flooded("pae_pte_write_bytes_misaligned_flood.sfp", 2 + 1 + 1);
}

/* 4-level: a misaligned byte in the page table T3, which is also a directory (PDPT entry
 * T1[3]): its level-1 and level-2 pages; one in the directory T2; a flood of T2. The
 * directory T6 written three times through its own walk is not among them
 * (shadow_page_table_clear_flood). */
static void bytes_misaligned_flood_4level(void **state)
{
	(void)state;
	assert_trapped_and_flooded("4level_pte_write_bytes_misaligned_flood.sfp", 2 + 1 + 1);
}

/* A page table unsyncs once (its first write, the gfn untracked), then is linked as a page
 * directory: the level-2 page syncs and tracks it, and its next write is emulated and
 * refilled in the level-1 page, the only refill of the program. */
static void table_also_directory_stays_tracked(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		struct kvm_vm_stat s = run_seed("4level_unsync_table_also_directory.sfp", profiles[i]);

		assert_int_equal(s.mmu_unsync_total, 1);
		assert_int_equal(s.mmu_unsync, 0);
		assert_int_equal(s.mmu_pte_updated, 1);
	}
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
		cmocka_unit_test(table_also_directory_stays_tracked),
		cmocka_unit_test(root_floods_only_when_cached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
