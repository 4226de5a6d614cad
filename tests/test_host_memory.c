/* Unit tests of the simulated host memory (core/host_memory.c). Expected pfns follow the
 * documented rule: the k-th chunk mapped since the last reset (k = 0, 1, ...) owns host
 * frames starting at (k + 1) << 18. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host_memory.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define CHUNK_PFNS (1ull << 18)

static int setup(void **state)
{
	*state = host_memory_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	host_memory_free(*state);
	return 0;
}

static void test_mmap_rejects_bad_arguments(void **state)
{
	struct host_memory *host = *state;

	assert_int_equal(host_mmap(host, GiB, PAGE_SIZE, 13), -EINVAL);
	assert_int_equal(host_mmap(host, GiB, PAGE_SIZE, 0), -EINVAL);
	assert_int_equal(host_mmap(host, GiB + 0x800, PAGE_SIZE, 12), -EINVAL);
	assert_int_equal(host_mmap(host, GiB, 0x800, 12), -EINVAL);
	assert_int_equal(host_mmap(host, HOST_TASK_SIZE, PAGE_SIZE, 12), -EINVAL);
	assert_int_equal(host_mmap(host, HOST_TASK_SIZE - PAGE_SIZE, 2 * PAGE_SIZE, 12), -EINVAL);
	/* hva + size wraps to a small value. */
	assert_int_equal(host_mmap(host, ~0ull - PAGE_SIZE + 1, 2 * PAGE_SIZE, 12), -EINVAL);
	/* Nothing was mapped by the failures. */
	assert_int_equal(host_page_shift(host, GiB), 0);
	assert_int_equal(host_hva_to_pfn(host, GiB), KVM_PFN_ERR_FAULT);
}

static void test_mmap_last_page_below_task_size(void **state)
{
	struct host_memory *host = *state;
	hva_t last = HOST_TASK_SIZE - PAGE_SIZE;
	uint8_t byte = 0x5a, back = 0;

	assert_int_equal(host_mmap(host, last, PAGE_SIZE, 12), 0);
	assert_int_equal(host_hva_to_pfn(host, last),
			 CHUNK_PFNS + ((last >> PAGE_SHIFT) & (CHUNK_PFNS - 1)));
	/* HOST_TASK_SIZE itself is never mapped, although its chunk is. */
	assert_int_equal(host_hva_to_pfn(host, HOST_TASK_SIZE), KVM_PFN_ERR_FAULT);
	assert_int_equal(host_write(host, last + PAGE_SIZE - 1, &byte, 1), 0);
	assert_int_equal(host_write(host, last + PAGE_SIZE - 1, &byte, 2), -EFAULT);
	assert_int_equal(host_read(host, last + PAGE_SIZE - 1, &back, 1), 0);
	assert_int_equal(back, 0x5a);
}

static void test_mmap_zero_size_maps_nothing(void **state)
{
	struct host_memory *host = *state;

	assert_int_equal(host_mmap(host, GiB, 0, 12), 0);
	assert_int_equal(host_page_shift(host, GiB), 0);
}

static void test_chunks_get_pfns_in_mapping_order(void **state)
{
	struct host_memory *host = *state;

	/* Chunk 3 first, then chunks 1 and 2 in one call (address order within a call). */
	assert_int_equal(host_mmap(host, 3 * GiB, 2 * MiB, 21), 0);
	assert_int_equal(host_mmap(host, GiB + 0x5000, GiB, 12), 0);

	assert_int_equal(host_hva_to_pfn(host, 3 * GiB), 1 * CHUNK_PFNS);
	assert_int_equal(host_hva_to_pfn(host, GiB), 2 * CHUNK_PFNS);
	assert_int_equal(host_hva_to_pfn(host, 2 * GiB), 3 * CHUNK_PFNS);
	assert_int_equal(host_hva_to_pfn(host, 2 * GiB + 0x3fff123), 3 * CHUNK_PFNS + 0x3fff);
	/* The whole chunk is mapped, not just the requested range. */
	assert_int_equal(host_hva_to_pfn(host, 3 * GiB + GiB - PAGE_SIZE),
			 CHUNK_PFNS + CHUNK_PFNS - 1);
	assert_int_equal(host_hva_to_pfn(host, 0), KVM_PFN_ERR_FAULT);
	assert_int_equal(host_hva_to_pfn(host, 4 * GiB), KVM_PFN_ERR_FAULT);

	assert_int_equal(host_page_shift(host, 3 * GiB + 123), 21);
	assert_int_equal(host_page_shift(host, GiB), 12);
	assert_int_equal(host_page_shift(host, 2 * GiB), 12);
	assert_int_equal(host_page_shift(host, 4 * GiB), 0);
}

static void test_mapped_chunk_keeps_page_size(void **state)
{
	struct host_memory *host = *state;

	assert_int_equal(host_mmap(host, 5 * GiB, GiB, 30), 0);
	assert_int_equal(host_mmap(host, 5 * GiB + 2 * MiB, 2 * MiB, 21), 0);
	assert_int_equal(host_page_shift(host, 5 * GiB + 2 * MiB), 30);
	/* Remapping allocates no new frames. */
	assert_int_equal(host_hva_to_pfn(host, 5 * GiB + 2 * MiB), CHUNK_PFNS + 0x200);
	assert_int_equal(host_mmap(host, 6 * GiB, PAGE_SIZE, 12), 0);
	assert_int_equal(host_hva_to_pfn(host, 6 * GiB), 2 * CHUNK_PFNS);
}

static void test_untouched_pages_read_as_zero(void **state)
{
	struct host_memory *host = *state;
	uint8_t buf[64];
	kvm_pfn_t pfn;

	assert_int_equal(host_mmap(host, GiB, GiB, 12), 0);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(host_read(host, GiB + 0x1000, buf, sizeof(buf)), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	pfn = host_hva_to_pfn(host, GiB + 0x1000);
	assert_null(host_pfn_page(host, pfn, false));
}

static void test_write_read_across_pages_and_chunks(void **state)
{
	struct host_memory *host = *state;
	uint8_t data[3 * PAGE_SIZE], back[3 * PAGE_SIZE];
	hva_t hva = 2 * GiB - PAGE_SIZE - 100; /* spans chunk 1 and chunk 2 */
	kvm_pfn_t pfn;
	uint8_t *page;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(host_mmap(host, GiB, 2 * GiB, 12), 0);
	assert_int_equal(host_write(host, hva, data, sizeof(data)), 0);
	assert_int_equal(host_read(host, hva, back, sizeof(back)), 0);
	assert_memory_equal(back, data, sizeof(data));

	/* The bytes live in the frames host_hva_to_pfn names. */
	pfn = host_hva_to_pfn(host, 2 * GiB);
	assert_int_equal(pfn, 2 * CHUNK_PFNS);
	page = host_pfn_page(host, pfn, false);
	assert_non_null(page);
	assert_memory_equal(page, data + PAGE_SIZE + 100, PAGE_SIZE);
}

static void test_fault_writes_nothing(void **state)
{
	struct host_memory *host = *state;
	uint8_t data[2 * PAGE_SIZE], back[PAGE_SIZE];
	hva_t hva = 2 * GiB - PAGE_SIZE; /* second page falls in unmapped chunk 2 */

	memset(data, 0xab, sizeof(data));
	assert_int_equal(host_mmap(host, GiB, GiB, 12), 0);
	assert_int_equal(host_write(host, hva, data, sizeof(data)), -EFAULT);
	assert_int_equal(host_read(host, hva, back, sizeof(back)), 0);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	assert_null(host_pfn_page(host, host_hva_to_pfn(host, hva), false));
	assert_int_equal(host_read(host, hva, data, sizeof(data)), -EFAULT);
	/* Wrapping ranges fault too. */
	assert_int_equal(host_read(host, ~0ull - 10, back, 20), -EFAULT);
}

static void test_pfn_page_alloc(void **state)
{
	struct host_memory *host = *state;
	kvm_pfn_t pfn;
	uint8_t *page, *again;
	uint8_t byte = 0;

	assert_int_equal(host_mmap(host, GiB, 2 * MiB, 21), 0);
	pfn = host_hva_to_pfn(host, GiB + 0x7000);
	page = host_pfn_page(host, pfn, true);
	assert_non_null(page);
	for (size_t i = 0; i < PAGE_SIZE; i++)
		assert_int_equal(page[i], 0);
	page[5] = 0x42;
	again = host_pfn_page(host, pfn, false);
	assert_ptr_equal(again, page);
	assert_int_equal(host_read(host, GiB + 0x7005, &byte, 1), 0);
	assert_int_equal(byte, 0x42);

	/* Frames of no mapped chunk have no contents, even on request. */
	assert_null(host_pfn_page(host, 0, true));
	assert_null(host_pfn_page(host, 2 * CHUNK_PFNS, true));
	assert_null(host_pfn_page(host, 7ull << 40, true));
}

struct seen_page {
	hva_t hva;
	uint8_t first;
};

struct seen {
	struct seen_page pages[8];
	int n;
};

static void record_page(void *ctx, hva_t hva, const uint8_t *page)
{
	struct seen *seen = ctx;

	assert_true(seen->n < 8);
	seen->pages[seen->n].hva = hva;
	seen->pages[seen->n].first = page[0];
	seen->n++;
}

static bool seen_has(const struct seen *seen, hva_t hva, uint8_t first)
{
	for (int i = 0; i < seen->n; i++) {
		if (seen->pages[i].hva == hva && seen->pages[i].first == first)
			return true;
	}
	return false;
}

static void test_for_each_page_gives_hva(void **state)
{
	struct host_memory *host = *state;
	struct seen seen = { 0 };
	uint8_t one = 1, two = 2, three = 3;

	assert_int_equal(host_mmap(host, 7 * GiB, GiB, 12), 0);
	assert_int_equal(host_mmap(host, 3 * GiB, GiB, 21), 0);
	assert_int_equal(host_write(host, 3 * GiB + 0x5000, &one, 1), 0);
	assert_int_equal(host_write(host, 7 * GiB + 0x9000, &two, 1), 0);
	assert_non_null(host_pfn_page(host, host_hva_to_pfn(host, 7 * GiB), true));
	host_pfn_page(host, host_hva_to_pfn(host, 7 * GiB), false)[0] = three;

	host_for_each_page(host, record_page, &seen);
	assert_int_equal(seen.n, 3);
	assert_true(seen_has(&seen, 3 * GiB + 0x5000, 1));
	assert_true(seen_has(&seen, 7 * GiB + 0x9000, 2));
	assert_true(seen_has(&seen, 7 * GiB, 3));
}

static void test_reset_forgets_everything(void **state)
{
	struct host_memory *host = *state;
	struct seen seen = { 0 };
	uint8_t byte = 0x77, back = 0xff;

	assert_int_equal(host_mmap(host, 9 * GiB, GiB, 30), 0);
	assert_int_equal(host_mmap(host, 4 * GiB, GiB, 12), 0);
	assert_int_equal(host_write(host, 4 * GiB, &byte, 1), 0);

	host_memory_reset(host);
	assert_int_equal(host_page_shift(host, 9 * GiB), 0);
	assert_int_equal(host_hva_to_pfn(host, 4 * GiB), KVM_PFN_ERR_FAULT);
	host_for_each_page(host, record_page, &seen);
	assert_int_equal(seen.n, 0);

	/* Numbering starts over; recycled arena pages come back zeroed. */
	assert_int_equal(host_mmap(host, 4 * GiB, GiB, 21), 0);
	assert_int_equal(host_hva_to_pfn(host, 4 * GiB), CHUNK_PFNS);
	assert_int_equal(host_page_shift(host, 4 * GiB), 21);
	assert_null(host_pfn_page(host, CHUNK_PFNS, false));
	assert_int_equal(host_write(host, 4 * GiB + 1, &byte, 1), 0);
	assert_int_equal(host_read(host, 4 * GiB, &back, 1), 0);
	assert_int_equal(back, 0);
}

/* Enough pages to grow the hash table and the arena several times, over two resets. */
static void test_many_pages(void **state)
{
	struct host_memory *host = *state;
	const uint32_t n = 5000;

	for (int round = 0; round < 2; round++) {
		assert_int_equal(host_mmap(host, GiB, GiB, 12), 0);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v = i * 2654435761u + (uint32_t)round;

			assert_int_equal(host_write(host, GiB + (uint64_t)i * 3 * PAGE_SIZE + 8, &v,
						    sizeof(v)), 0);
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v = 0;

			assert_int_equal(host_read(host, GiB + (uint64_t)i * 3 * PAGE_SIZE + 8, &v,
						   sizeof(v)), 0);
			assert_int_equal(v, i * 2654435761u + (uint32_t)round);
		}
		host_memory_reset(host);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mmap_rejects_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_last_page_below_task_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_zero_size_maps_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunks_get_pfns_in_mapping_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mapped_chunk_keeps_page_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untouched_pages_read_as_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_across_pages_and_chunks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fault_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pfn_page_alloc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_for_each_page_gives_hva, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_forgets_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_pages, setup, teardown),
	};

	return cmocka_run_group_tests_name("host_memory", tests, NULL, NULL);
}
