/* Unit and property tests of core/spte.c. Expected layouts are written out bit by bit from
 * spec §2.4 and the kernels' mmu.c (v4.20 generation_mmio_spte_mask, v5.1..v5.3 and the fix
 * 34c0f6f2695a; L1TF masks of kvm_mmu_reset_all_pte_masks), never taken from the code under
 * test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "memslot.h"
#include "spte.h"

#define BIT(n) (1ull << (n))
#define IN_PROGRESS KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS

static const enum kvm_profile profiles[] = { KVM_PROFILE_4_20, KVM_PROFILE_5_1, KVM_PROFILE_5_3 };
#define NR_PROFILES (sizeof(profiles) / sizeof(profiles[0]))

static struct spte_params params(enum kvm_profile profile, int phys_bits)
{
	struct kvm_config cfg;
	struct spte_params p;

	kvm_config_init(&cfg, profile);
	cfg.host_phys_bits = phys_bits;
	spte_params_init(&p, &cfg);
	return p;
}

static struct spte_params params_width(enum kvm_profile profile, int phys_bits, int width)
{
	struct kvm_config cfg;
	struct spte_params p;

	kvm_config_init(&cfg, profile);
	cfg.host_phys_bits = phys_bits;
	cfg.mmio_gen_bits = width;
	spte_params_init(&p, &cfg);
	return p;
}

static int kernel_width(enum kvm_profile profile)
{
	return profile == KVM_PROFILE_4_20 ? 20 : 19;
}

/* Spte bit that generation bit k occupies (spec §2.4), or -1 if it is not stored. */
static int gen_bit_position(enum kvm_profile profile, int k)
{
	if (profile == KVM_PROFILE_4_20) {
		if (k == 0)
			return -1;
		return k <= 9 ? 3 + (k - 1) : 52 + (k - 10);
	}
	return k <= 8 ? 3 + k : 52 + (k - 9);
}

/* What the generation field reads back as when stored correctly. */
static uint64_t expected_gen(enum kvm_profile profile, uint64_t gen, int width)
{
	gen &= BIT(width) - 1;
	return profile == KVM_PROFILE_4_20 ? gen & ~1ull : gen;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- Masks ---- */

static void test_masks_per_phys_bits(void **state)
{
	for (int phys = 32; phys <= 52; phys++) {
		struct spte_params p = params(KVM_PROFILE_5_1, phys);
		uint64_t marker = BIT(51) | BIT(62) | (phys < 52 ? BIT(0) : 0);
		uint64_t rsvd = 0;
		int low = phys;

		if (phys <= 46) {
			for (int b = phys - 5; b < phys; b++)
				rsvd |= BIT(b);
			low = phys - 5;
		}
		assert_int_equal(p.shadow_mmio_mask, marker);
		assert_int_equal(p.shadow_mmio_value, marker);
		assert_int_equal(p.shadow_nonpresent_or_rsvd_mask, rsvd);
		assert_int_equal(p.shadow_nonpresent_or_rsvd_lower_gfn_mask,
				 (BIT(low) - 1) & ~(BIT(12) - 1));
		assert_int_equal(shadow_mmio_sptes_fault_rsvd(&p), phys < 52);
		assert_false(p.bug_b6);
		assert_false(p.bug_b8);
	}
}

static void test_generation_width_is_capped(void **state)
{
	for (size_t i = 0; i < NR_PROFILES; i++) {
		enum kvm_profile prof = profiles[i];

		assert_int_equal(params(prof, 46).mmio_gen_mask, BIT(kernel_width(prof)) - 1);
		assert_int_equal(params_width(prof, 46, 5).mmio_gen_mask, BIT(5) - 1);
		assert_int_equal(params_width(prof, 46, 40).mmio_gen_mask,
				 BIT(kernel_width(prof)) - 1);
	}
}

/* ---- MMIO generation ---- */

static void test_generation_bit_layout(void **state)
{
	const uint64_t gen_field = 0x3ffull << 52 | 0x1ffull << 3;

	for (size_t i = 0; i < NR_PROFILES; i++) {
		struct spte_params p = params(profiles[i], 46);

		for (int k = 0; k < kernel_width(profiles[i]); k++) {
			int pos = gen_bit_position(profiles[i], k);
			uint64_t spte = make_mmio_spte(&p, 0, 0, BIT(k));

			assert_int_equal(spte & gen_field, pos < 0 ? 0 : BIT(pos));
		}
		/* Bits beyond the kernel's width are not stored. */
		assert_int_equal(make_mmio_spte(&p, 0, 0, BIT(kernel_width(profiles[i]))) & gen_field,
				 0);
	}
}

/* decode(encode(g)) for every generation of the kernel's width. */
static void test_generation_round_trip_all(void **state)
{
	const gfn_t gfns[] = { 0, 0x12345, BIT(34) - 1 };

	for (size_t i = 0; i < NR_PROFILES; i++) {
		enum kvm_profile prof = profiles[i];
		struct spte_params p = params(prof, 46);
		int width = kernel_width(prof);

		for (uint64_t g = 0; g < BIT(width); g++) {
			gfn_t gfn = gfns[g % 3];
			uint64_t spte = make_mmio_spte(&p, gfn, ACC_ALL, g);

			if (get_mmio_spte_generation(&p, spte) != expected_gen(prof, g, width) ||
			    get_mmio_spte_gfn(&p, spte) != gfn ||
			    get_mmio_spte_access(&p, spte) != (ACC_WRITE_MASK | ACC_USER_MASK) ||
			    !is_mmio_spte(&p, spte))
				fail_msg("profile %d gen %#llx", prof, (unsigned long long)g);
			/* K420's in-flux (odd) generations never match. */
			assert_int_equal(check_mmio_spte(&p, spte, g),
					 prof != KVM_PROFILE_4_20 || !(g & 1));
		}
	}
}

static void test_generation_narrow_width(void **state)
{
	for (size_t i = 0; i < NR_PROFILES; i++) {
		enum kvm_profile prof = profiles[i];

		for (int width = 2; width <= 8; width++) {
			struct spte_params p = params_width(prof, 46, width);

			for (uint64_t g = 0; g < BIT(width + 2); g++) {
				uint64_t spte = make_mmio_spte(&p, 0x42, ACC_WRITE_MASK, g);
				bool valid = prof != KVM_PROFILE_4_20 || !(g & 1);

				assert_int_equal(get_mmio_spte_generation(&p, spte),
						 expected_gen(prof, g, width));
				/* The same generation one wrap later aliases. */
				assert_int_equal(check_mmio_spte(&p, spte, g + BIT(width)), valid);
				assert_false(check_mmio_spte(&p, spte, g + 2));
			}
		}
	}
}

static void test_check_in_progress(void **state)
{
	for (size_t i = 0; i < NR_PROFILES; i++) {
		enum kvm_profile prof = profiles[i];
		struct spte_params p = params(prof, 46);

		for (uint64_t g = 0; g < 64; g += 2) {
			uint64_t spte = make_mmio_spte(&p, 7, 0, g);

			assert_true(check_mmio_spte(&p, spte, g));
			assert_false(check_mmio_spte(&p, spte, g + 2));
			if (prof == KVM_PROFILE_4_20) {
				/* The odd value during an update; a spte made then is never valid. */
				assert_false(check_mmio_spte(&p, spte, g + 1));
				assert_false(check_mmio_spte(&p, make_mmio_spte(&p, 7, 0, g + 1),
							     g + 1));
			} else {
				assert_false(check_mmio_spte(&p, spte, g | IN_PROGRESS));
				assert_true(check_mmio_spte(&p, make_mmio_spte(&p, 7, 0, g + 1),
							    g + 1));
			}
		}
		/* K420 generations start at 2 * as_id - 150; K51+ ones would read as in flux. */
		assert_int_equal(check_mmio_spte(&p, make_mmio_spte(&p, 1, 0, -150ull), -150ull),
				 prof == KVM_PROFILE_4_20);
	}
}

/* ---- gfn, access ---- */

static void check_gfn_round_trip(const struct spte_params *p, enum kvm_profile prof, gfn_t gfn,
				 uint64_t gen)
{
	for (unsigned access = 0; access <= ACC_ALL; access++) {
		uint64_t spte = make_mmio_spte(p, gfn, access, gen);

		if (get_mmio_spte_gfn(p, spte) != gfn ||
		    get_mmio_spte_access(p, spte) != (access & (ACC_WRITE_MASK | ACC_USER_MASK)) ||
		    get_mmio_spte_generation(p, spte) != expected_gen(prof, gen, kernel_width(prof)) ||
		    !is_mmio_spte(p, spte) || is_shadow_present_pte(p, spte))
			fail_msg("profile %d phys %d gfn %#llx access %u gen %#llx", prof,
				 p->phys_bits, (unsigned long long)gfn, access,
				 (unsigned long long)gen);
		/* L1TF: the top 5 legal bits are always set. */
		assert_int_equal(spte & p->shadow_nonpresent_or_rsvd_mask,
				 p->shadow_nonpresent_or_rsvd_mask);
	}
}

static void test_gfn_round_trip(void **state)
{
	const int phys_bits[] = { 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 51 };
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < NR_PROFILES; i++) {
		for (size_t j = 0; j < sizeof(phys_bits) / sizeof(phys_bits[0]); j++) {
			enum kvm_profile prof = profiles[i];
			struct spte_params p = params(prof, phys_bits[j]);
			int gfn_bits = phys_bits[j] - PAGE_SHIFT;
			gfn_t max = BIT(gfn_bits) - 1;

			check_gfn_round_trip(&p, prof, 0, 0);
			check_gfn_round_trip(&p, prof, max, BIT(kernel_width(prof)) - 1);
			for (int b = 0; b < gfn_bits; b++) {
				check_gfn_round_trip(&p, prof, BIT(b), xorshift(&seed));
				check_gfn_round_trip(&p, prof, max & ~BIT(b), xorshift(&seed));
			}
			for (int n = 0; n < 2000; n++)
				check_gfn_round_trip(&p, prof, xorshift(&seed) & max, xorshift(&seed));
		}
	}
}

/* A 52-bit host: the marker has no P bit, and get_mmio_spte_gfn's low mask reaches bit 51,
 * the marker bit itself, so the gfn reads back with bit 39 set. KVM never decodes such a
 * spte: without PFEC.RSVD the MMIO fault path is not entered. */
static void test_phys_bits_52(void **state)
{
	uint64_t seed = 12345;

	for (size_t i = 0; i < NR_PROFILES; i++) {
		enum kvm_profile prof = profiles[i];
		struct spte_params p = params(prof, 52);

		for (int n = 0; n < 2000; n++) {
			gfn_t gfn = xorshift(&seed) & (BIT(39) - 1);
			uint64_t gen = xorshift(&seed);
			unsigned access = (unsigned)n & ACC_ALL;
			uint64_t spte = make_mmio_spte(&p, gfn, access, gen);

			assert_false(spte & PT_PRESENT_MASK);
			assert_true(is_mmio_spte(&p, spte));
			assert_false(is_shadow_present_pte(&p, spte));
			assert_int_equal(get_mmio_spte_gfn(&p, spte), gfn | BIT(39));
			assert_int_equal(get_mmio_spte_access(&p, spte),
					 access & (ACC_WRITE_MASK | ACC_USER_MASK));
			assert_int_equal(get_mmio_spte_generation(&p, spte),
					 expected_gen(prof, gen, kernel_width(prof)));
		}
	}
}

/* ---- Classification ---- */

static void test_present_sptes_are_not_mmio(void **state)
{
	const uint64_t flags[] = { PT_WRITABLE_MASK, PT_USER_MASK, PT_ACCESSED_MASK,
				   PT_DIRTY_MASK, PT_PAGE_SIZE_MASK, SPTE_HOST_WRITEABLE,
				   SPTE_MMU_WRITEABLE, PT64_NX_MASK };
	const int phys_bits[] = { 39, 46, 48, 52 };
	uint64_t seed = 99;

	for (size_t j = 0; j < sizeof(phys_bits) / sizeof(phys_bits[0]); j++) {
		struct spte_params p = params(KVM_PROFILE_5_1, phys_bits[j]);
		kvm_pfn_t max_pfn = BIT(phys_bits[j] - PAGE_SHIFT) - 1;

		assert_false(is_shadow_present_pte(&p, 0));
		assert_false(is_mmio_spte(&p, 0));
		for (unsigned combo = 0; combo < 256; combo++) {
			for (int n = 0; n < 64; n++) {
				kvm_pfn_t pfn = n == 0 ? max_pfn : xorshift(&seed) & max_pfn;
				uint64_t spte = PT_PRESENT_MASK | pfn << PAGE_SHIFT;

				for (int b = 0; b < 8; b++)
					spte |= (combo >> b & 1) ? flags[b] : 0;
				if (is_mmio_spte(&p, spte) || !is_shadow_present_pte(&p, spte))
					fail_msg("spte %#llx", (unsigned long long)spte);
				assert_int_equal(spte_to_pfn(spte), pfn);
			}
		}
	}
}

static void test_predicates(void **state)
{
	const uint64_t leaf = PT_PRESENT_MASK | PT_WRITABLE_MASK | 0x1234000ull;

	for (int level = PT_PAGE_TABLE_LEVEL; level <= PT64_ROOT_4LEVEL; level++) {
		assert_int_equal(is_last_spte(leaf, level), level == PT_PAGE_TABLE_LEVEL);
		assert_true(is_last_spte(leaf | PT_PAGE_SIZE_MASK, level));
	}
	assert_true(is_large_pte(PT_PAGE_SIZE_MASK));
	assert_false(is_large_pte(leaf));
	assert_true(is_writable_pte(leaf));
	assert_false(is_writable_pte(leaf & ~PT_WRITABLE_MASK));
	assert_true(is_executable_pte(leaf));
	assert_false(is_executable_pte(leaf | PT64_NX_MASK));
	assert_true(is_accessed_spte(leaf | PT_ACCESSED_MASK));
	assert_false(is_accessed_spte(leaf | PT_DIRTY_MASK));
	assert_true(is_dirty_spte(leaf | PT_DIRTY_MASK));
	assert_false(is_dirty_spte(leaf | PT_ACCESSED_MASK));
	assert_int_equal(spte_to_pfn(leaf | PT64_NX_MASK | SPTE_MMU_WRITEABLE), 0x1234);
	assert_true(spte_can_locklessly_be_made_writable(SPTE_HOST_WRITEABLE | SPTE_MMU_WRITEABLE));
	assert_false(spte_can_locklessly_be_made_writable(leaf | SPTE_HOST_WRITEABLE));
	assert_false(spte_can_locklessly_be_made_writable(leaf | SPTE_MMU_WRITEABLE));
	assert_int_equal(SPTE_HOST_WRITEABLE, BIT(10));
	assert_int_equal(SPTE_MMU_WRITEABLE, BIT(11));
	assert_int_equal(SPTE_SPECIAL_MASK, BIT(62));
}

/* ---- Planted bugs ---- */

/* B6: the K51+ high part stored with shift 52 keeps gen bits 0..9 only. */
static void test_b6_loses_generation_bits(void **state)
{
	for (size_t i = 1; i < NR_PROFILES; i++) {
		struct spte_params p = params(profiles[i], 46);

		p.bug_b6 = true;
		for (uint64_t g = 0; g < BIT(19); g++) {
			uint64_t spte = make_mmio_spte(&p, 0x77, ACC_USER_MASK, g);

			if (get_mmio_spte_generation(&p, spte) != (g & 0x3ff) ||
			    check_mmio_spte(&p, spte, g) != (g < 1024) ||
			    get_mmio_spte_gfn(&p, spte) != 0x77)
				fail_msg("gen %#llx", (unsigned long long)g);
		}
		/* Gen bit 9 lands on spte bit 61 instead of 52. */
		assert_int_equal(make_mmio_spte(&p, 0, 0, BIT(9)) & MMIO_SPTE_GEN_HIGH_MASK, BIT(61));
		/* A spte of generation 1024 + 5 is taken as valid at generation 5. */
		assert_true(check_mmio_spte(&p, make_mmio_spte(&p, 1, 0, 1024 + 5), 5));
		p.bug_b6 = false;
		assert_false(check_mmio_spte(&p, make_mmio_spte(&p, 1, 0, 1024 + 5), 5));
	}
	/* K420 predates the bug. */
	struct spte_params k420 = params(KVM_PROFILE_4_20, 46);

	k420.bug_b6 = true;
	for (uint64_t g = 0; g < BIT(20); g += 2)
		assert_int_equal(get_mmio_spte_generation(&k420, make_mmio_spte(&k420, 3, 0, g)), g);
}

/* B8: the shifted copy of gpa bits [phys-5, phys-1] stays in the low part. */
static void test_b8_corrupts_high_gfns(void **state)
{
	uint64_t seed = 4242;

	for (size_t i = 0; i < NR_PROFILES; i++) {
		for (int phys = 39; phys <= 48; phys++) {
			struct spte_params p = params(profiles[i], phys);
			gfn_t max = BIT(phys - PAGE_SHIFT) - 1;
			gfn_t high = phys <= 46 ? (BIT(5) - 1) << (phys - 5 - PAGE_SHIFT) : 0;

			p.bug_b8 = true;
			for (int n = 0; n < 2000; n++) {
				gfn_t gfn = xorshift(&seed) & max;
				uint64_t spte = make_mmio_spte(&p, gfn, ACC_ALL, xorshift(&seed));

				assert_int_equal(get_mmio_spte_gfn(&p, spte), gfn | (gfn & high) << 5);
				assert_int_equal(get_mmio_spte_gfn(&p, make_mmio_spte(&p, gfn & ~high,
										0, 0)),
						 gfn & ~high);
			}
			if (phys <= 46)
				assert_int_not_equal(get_mmio_spte_gfn(&p, make_mmio_spte(&p, max, 0, 0)),
						     max);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_masks_per_phys_bits),
		cmocka_unit_test(test_generation_width_is_capped),
		cmocka_unit_test(test_generation_bit_layout),
		cmocka_unit_test(test_generation_round_trip_all),
		cmocka_unit_test(test_generation_narrow_width),
		cmocka_unit_test(test_check_in_progress),
		cmocka_unit_test(test_gfn_round_trip),
		cmocka_unit_test(test_phys_bits_52),
		cmocka_unit_test(test_present_sptes_are_not_mmio),
		cmocka_unit_test(test_predicates),
		cmocka_unit_test(test_b6_loses_generation_bits),
		cmocka_unit_test(test_b8_corrupts_high_gfns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
