/* ref_memory: regions per address space over pages keyed by hva. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../oracle/ref_memory.h"

#define HVA_A 0x7f0000000000ull
#define HVA_B 0x7f1000000000ull

static int setup(void **state)
{
	*state = ref_memory_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	ref_memory_free(*state);
	return 0;
}

static uint64_t read64(struct ref_memory *mem, int as_id, gpa_t gpa)
{
	uint64_t v = 0;

	assert_int_equal(ref_memory_read(mem, as_id, gpa, &v, sizeof(v)), 0);
	return v;
}

static void write64(struct ref_memory *mem, int as_id, gpa_t gpa, uint64_t v)
{
	assert_int_equal(ref_memory_write(mem, as_id, gpa, &v, sizeof(v)), 0);
}

static void count_page(void *ctx, hva_t hva, const uint8_t *page)
{
	(void)hva;
	(void)page;
	(*(int *)ctx)++;
}

static int pages_with_contents(struct ref_memory *mem)
{
	int n = 0;

	ref_memory_for_each_page(mem, count_page, &n);
	return n;
}

static void test_unwritten_pages_read_zero(void **state)
{
	struct ref_memory *mem = *state;
	const uint8_t *page;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x10000, HVA_A, false), 0);
	assert_int_equal(read64(mem, 0, 0x100ff8), 0);
	page = ref_memory_page(mem, 0, 0x103000, false);
	assert_non_null(page);
	for (int i = 0; i < (int)PAGE_SIZE; i++)
		assert_int_equal(page[i], 0);
	assert_int_equal(pages_with_contents(mem), 0);
	assert_null(ref_memory_hva_page(mem, HVA_A));
}

static void test_write_then_read_back(void **state)
{
	struct ref_memory *mem = *state;
	uint8_t *page;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x10000, HVA_A, false), 0);
	write64(mem, 0, 0x101008, 0x1122334455667788ull);
	assert_int_equal(read64(mem, 0, 0x101008), 0x1122334455667788ull);
	page = ref_memory_page(mem, 0, 0x101abc, true);
	assert_non_null(page);
	assert_int_equal(page[8], 0x88);
	assert_ptr_equal(ref_memory_hva_page(mem, HVA_A + 0x1000), page);
	assert_ptr_equal(ref_memory_hva_page(mem, HVA_A + 0x1fff), page);
	assert_int_equal(pages_with_contents(mem), 1);
}

static void test_access_crossing_pages(void **state)
{
	struct ref_memory *mem = *state;
	uint8_t buf[PAGE_SIZE + 16], back[sizeof(buf)];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x3000, HVA_A, false), 0);
	assert_int_equal(ref_memory_write(mem, 0, 0x100ff8, buf, sizeof(buf)), 0);
	assert_int_equal(ref_memory_read(mem, 0, 0x100ff8, back, sizeof(back)), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(pages_with_contents(mem), 3);
}

static void test_outside_regions_is_absent(void **state)
{
	struct ref_memory *mem = *state;
	uint64_t v = 1;

	assert_null(ref_memory_page(mem, 0, 0x100000, false));
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x2000, HVA_A, false), 0);
	assert_null(ref_memory_page(mem, 0, 0x102000, false));
	assert_null(ref_memory_page(mem, 0, 0xfffff, true));
	assert_int_equal(ref_memory_read(mem, 0, 0x102000, &v, sizeof(v)), -EFAULT);
	/* A buffer straddling the end of the region fails as a whole and writes nothing. */
	assert_int_equal(ref_memory_write(mem, 0, 0x101ffc, &v, sizeof(v)), -EFAULT);
	assert_int_equal(pages_with_contents(mem), 0);
}

static void test_address_spaces_are_independent(void **state)
{
	struct ref_memory *mem = *state;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1000, HVA_A, false), 0);
	assert_int_equal(ref_memory_set_region(mem, 1, 0, 0x100000, 0x1000, HVA_B, false), 0);
	write64(mem, 0, 0x100000, 0xaaaa);
	write64(mem, 1, 0x100000, 0xbbbb);
	assert_int_equal(read64(mem, 0, 0x100000), 0xaaaa);
	assert_int_equal(read64(mem, 1, 0x100000), 0xbbbb);
	/* A region only in address space 1 is absent from address space 0. */
	assert_int_equal(ref_memory_set_region(mem, 1, 1, 0x200000, 0x1000, HVA_B + 0x1000, false), 0);
	assert_null(ref_memory_page(mem, 0, 0x200000, false));
	assert_non_null(ref_memory_page(mem, 1, 0x200000, false));
}

static void test_same_hva_in_both_spaces_is_shared(void **state)
{
	struct ref_memory *mem = *state;

	assert_int_equal(ref_memory_set_region(mem, 0, 3, 0x100000, 0x1000, HVA_A, false), 0);
	assert_int_equal(ref_memory_set_region(mem, 1, 3, 0x500000, 0x1000, HVA_A, false), 0);
	write64(mem, 0, 0x100010, 0x1234);
	assert_int_equal(read64(mem, 1, 0x500010), 0x1234);
}

static void test_readonly_drops_writes(void **state)
{
	struct ref_memory *mem = *state;
	uint64_t v = 0x55;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1000, HVA_A, false), 0);
	write64(mem, 0, 0x100000, 0x77);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1000, HVA_A, true), 0);
	assert_int_equal(ref_memory_write(mem, 0, 0x100000, &v, sizeof(v)), -EFAULT);
	assert_null(ref_memory_page(mem, 0, 0x100000, true));
	assert_non_null(ref_memory_page(mem, 0, 0x100000, false));
	assert_int_equal(read64(mem, 0, 0x100000), 0x77);
}

static void test_size_zero_removes_region(void **state)
{
	struct ref_memory *mem = *state;

	assert_int_equal(ref_memory_set_region(mem, 0, 5, 0x100000, 0x1000, HVA_A, false), 0);
	write64(mem, 0, 0x100000, 0x99);
	assert_int_equal(ref_memory_set_region(mem, 0, 5, 0, 0, 0, false), 0);
	assert_null(ref_memory_page(mem, 0, 0x100000, false));
	/* The host memory outlives the slot. */
	assert_non_null(ref_memory_hva_page(mem, HVA_A));
	/* Removing an absent slot is fine. */
	assert_int_equal(ref_memory_set_region(mem, 0, 5, 0, 0, 0, false), 0);
}

static void test_moved_region_keeps_contents(void **state)
{
	struct ref_memory *mem = *state;

	assert_int_equal(ref_memory_set_region(mem, 0, 2, 0x100000, 0x2000, HVA_A, false), 0);
	write64(mem, 0, 0x101008, 0xfeed);
	assert_int_equal(ref_memory_set_region(mem, 0, 2, 0x800000, 0x2000, HVA_A, false), 0);
	assert_null(ref_memory_page(mem, 0, 0x101000, false));
	assert_int_equal(read64(mem, 0, 0x801008), 0xfeed);
}

static void test_region_limit(void **state)
{
	struct ref_memory *mem = *state;

	for (int i = 0; i < REF_MAX_REGIONS; i++)
		assert_int_equal(ref_memory_set_region(mem, 0, i, 0x100000 + (gpa_t)i * 0x1000,
						       0x1000, HVA_A + (hva_t)i * 0x1000, false),
				 0);
	assert_int_equal(ref_memory_set_region(mem, 0, REF_MAX_REGIONS, 0x900000, 0x1000, HVA_B,
					       false),
			 -ENOSPC);
	/* Replacing an existing slot needs no new entry. */
	assert_int_equal(ref_memory_set_region(mem, 0, 7, 0xa00000, 0x1000, HVA_B, false), 0);
	assert_non_null(ref_memory_page(mem, 0, 0xa00000, false));
}

static void test_bad_input(void **state)
{
	struct ref_memory *mem = *state;
	uint8_t b = 0;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100001, 0x1000, HVA_A, false), -EINVAL);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1800, HVA_A, false), -EINVAL);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1000, HVA_A + 4, false), -EINVAL);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, ~0xfffull, 0x2000, HVA_A, false), -EINVAL);
	assert_int_equal(ref_memory_set_region(NULL, 0, 0, 0x100000, 0x1000, HVA_A, false), -EINVAL);
	assert_null(ref_memory_page(NULL, 0, 0, false));
	assert_int_equal(ref_memory_read(NULL, 0, 0, &b, 1), -EINVAL);
	assert_int_equal(ref_memory_write(mem, 0, 0, NULL, 1), -EINVAL);
	assert_int_equal(ref_memory_read(mem, 0, 0x100000, &b, 0), 0);
	/* A region may end at the top of the guest-physical space. */
	assert_int_equal(ref_memory_set_region(mem, 0, 0, ~0xfffull, 0x1000, HVA_A, false), 0);
	assert_int_equal(ref_memory_write(mem, 0, ~0ull, &b, 1), 0);
	assert_int_equal(ref_memory_write(mem, 0, ~0ull, &b, 2), -EFAULT);
}

static void test_many_pages(void **state)
{
	struct ref_memory *mem = *state;
	const int n = 5000;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000000ull, (uint64_t)n * PAGE_SIZE,
					       HVA_A, false),
			 0);
	for (int i = 0; i < n; i++)
		write64(mem, 0, 0x100000000ull + (gpa_t)i * PAGE_SIZE + 8, (uint64_t)i + 1);
	for (int i = 0; i < n; i++)
		assert_int_equal(read64(mem, 0, 0x100000000ull + (gpa_t)i * PAGE_SIZE + 8),
				 (uint64_t)i + 1);
	assert_int_equal(pages_with_contents(mem), n);
}

static void test_backing_is_region_hva_plus_offset(void **state)
{
	struct ref_memory *mem = *state;
	hva_t hva = 0;
	bool readonly = true;

	assert_false(ref_memory_backing(mem, 0, 0x100000, &hva, &readonly));
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x10000, HVA_A, false), 0);
	assert_int_equal(ref_memory_set_region(mem, 1, 0, 0x100000, 0x10000, HVA_B, true), 0);
	assert_true(ref_memory_backing(mem, 0, 0x103abc, &hva, &readonly));
	assert_int_equal(hva, HVA_A + 0x3abc);
	assert_false(readonly);
	assert_true(ref_memory_backing(mem, 0, 0x10ffff, &hva, NULL));
	assert_int_equal(hva, HVA_A + 0xffff);
	assert_false(ref_memory_backing(mem, 0, 0x110000, &hva, &readonly));
	assert_false(ref_memory_backing(mem, 0, 0xfffff, NULL, NULL));
	/* Each address space has its own regions. */
	assert_true(ref_memory_backing(mem, 1, 0x100010, &hva, &readonly));
	assert_int_equal(hva, HVA_B + 0x10);
	assert_true(readonly);
	assert_false(ref_memory_backing(mem, 2, 0x100010, &hva, &readonly));
	/* Backing needs no contents; a moved or removed region changes it. */
	assert_int_equal(pages_with_contents(mem), 0);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x10000, HVA_B + 0x100000,
					       false),
			 0);
	assert_true(ref_memory_backing(mem, 0, 0x100000, &hva, NULL));
	assert_int_equal(hva, HVA_B + 0x100000);
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0, 0, 0, false), 0);
	assert_false(ref_memory_backing(mem, 0, 0x100000, &hva, NULL));
	assert_false(ref_memory_backing(NULL, 0, 0x100000, &hva, NULL));
}

struct collected {
	int n;
	hva_t hva[4];
	uint8_t first[4];
};

static void collect_page(void *ctx, hva_t hva, const uint8_t *page)
{
	struct collected *c = ctx;

	if (c->n < 4) {
		c->hva[c->n] = hva;
		c->first[c->n] = page[0];
	}
	c->n++;
}

static void test_for_each_page_visits_written_pages(void **state)
{
	struct ref_memory *mem = *state;
	struct collected c = { 0 };
	uint8_t b = 0x42;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x10000, HVA_A, false), 0);
	assert_int_equal(ref_memory_write(mem, 0, 0x105000, &b, 1), 0);
	b = 0x43;
	assert_int_equal(ref_memory_write(mem, 0, 0x102000, &b, 1), 0);
	ref_memory_for_each_page(mem, collect_page, &c);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.hva[0], HVA_A + 0x5000);
	assert_int_equal(c.first[0], 0x42);
	assert_int_equal(c.hva[1], HVA_A + 0x2000);
	assert_int_equal(c.first[1], 0x43);
}

static void test_reset_forgets_everything(void **state)
{
	struct ref_memory *mem = *state;
	uint64_t v;

	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x400000, HVA_A, false), 0);
	for (int i = 0; i < 1024; i++)
		write64(mem, 0, 0x100000 + (gpa_t)i * PAGE_SIZE, 1);
	ref_memory_reset(mem);
	assert_int_equal(pages_with_contents(mem), 0);
	assert_null(ref_memory_hva_page(mem, HVA_A));
	assert_int_equal(ref_memory_read(mem, 0, 0x100000, &v, sizeof(v)), -EFAULT);
	/* Usable again; old contents are gone. */
	assert_int_equal(ref_memory_set_region(mem, 0, 0, 0x100000, 0x1000, HVA_A, false), 0);
	assert_int_equal(read64(mem, 0, 0x100000), 0);
	write64(mem, 0, 0x100000, 2);
	assert_int_equal(read64(mem, 0, 0x100000), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unwritten_pages_read_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_then_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_crossing_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_regions_is_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_spaces_are_independent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_hva_in_both_spaces_is_shared, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readonly_drops_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_zero_removes_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_region_keeps_contents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_region_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_for_each_page_visits_written_pages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reset_forgets_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backing_is_region_hva_plus_offset, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
