/* Unit tests of core/pte_list.c. The expected layouts follow KVM's pte_list rules
 * (arch/x86/kvm/mmu.c v4.20..v5.3, restated in pte_list.h); multiset contents are checked
 * against a plain array kept by the test. Run under ASan: descriptors freed to the cache
 * are poisoned, so a use after free shows up as an ASan report. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pte_list.h"

#define MAX_ENTRIES 512

/* Targets of the sptep pointers; only their addresses matter. */
static uint64_t sptes[MAX_ENTRIES];

struct fixture {
	struct pte_list_cache cache;
	struct kvm_rmap_head head;
	uint64_t *ref[MAX_ENTRIES]; /* the multiset the list must hold */
	int nr_ref;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	pte_list_cache_init(&f->cache);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pte_list_cache_destroy(&f->cache);
	free(f);
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(uint64_t *const *)a, y = (uintptr_t)*(uint64_t *const *)b;

	return (x > y) - (x < y);
}

/* Entries in iteration order; returns how many. */
static int walk(struct kvm_rmap_head *head, uint64_t **out)
{
	struct rmap_iterator iter;
	uint64_t *sptep;
	int n = 0;

	for_each_rmap_spte(head, &iter, sptep) {
		assert_true(n < MAX_ENTRIES);
		out[n++] = sptep;
	}
	return n;
}

/* Descriptors of the chain (0 for the empty and single-pointer forms). */
static int nr_descs(const struct kvm_rmap_head *head)
{
	int n = 0;

	if (!(head->val & 1))
		return 0;
	for (struct pte_list_desc *d = (void *)(head->val & ~(uintptr_t)1); d; d = d->more)
		n++;
	return n;
}

/* Layout invariants: every descriptor non-empty and filled from slot 0. */
static void check_layout(const struct kvm_rmap_head *head)
{
	if (!(head->val & 1))
		return;
	for (struct pte_list_desc *d = (void *)(head->val & ~(uintptr_t)1); d; d = d->more) {
		assert_non_null(d->sptes[0]);
		for (int i = 1; i < PTE_LIST_EXT; i++)
			assert_true(!d->sptes[i] || d->sptes[i - 1]);
	}
}

/* The list holds exactly the reference multiset, and the count agrees. */
static void check_contents(struct fixture *f)
{
	uint64_t *got[MAX_ENTRIES], *want[MAX_ENTRIES];
	int n = walk(&f->head, got);

	check_layout(&f->head);
	assert_int_equal(n, f->nr_ref);
	assert_int_equal(pte_list_count(&f->head), f->nr_ref);
	memcpy(want, f->ref, sizeof(want[0]) * (size_t)f->nr_ref);
	qsort(got, (size_t)n, sizeof(got[0]), cmp_ptr);
	qsort(want, (size_t)n, sizeof(want[0]), cmp_ptr);
	assert_memory_equal(got, want, sizeof(got[0]) * (size_t)n);
}

/* KVM's pte_list_add count, from the layout before the add: 3 per descriptor passed while
 * looking for room, plus the entries of the descriptor that gets the new one (0 for a new
 * descriptor after a full last one). */
static int expected_add_count(const struct kvm_rmap_head *head)
{
	int passed = 0;

	if (!head->val)
		return 0;
	if (!(head->val & 1))
		return 1;
	for (struct pte_list_desc *d = (void *)(head->val & ~(uintptr_t)1);; d = d->more) {
		int n = 0;

		while (n < PTE_LIST_EXT && d->sptes[n])
			n++;
		if (n < PTE_LIST_EXT)
			return passed + n;
		if (!d->more)
			return passed;
		passed += PTE_LIST_EXT;
	}
}

static void add(struct fixture *f, uint64_t *sptep)
{
	int want = expected_add_count(&f->head);

	assert_int_equal(pte_list_add(&f->cache, sptep, &f->head), want);
	f->ref[f->nr_ref++] = sptep;
}

static void ref_remove(struct fixture *f, uint64_t *sptep)
{
	for (int i = 0; i < f->nr_ref; i++) {
		if (f->ref[i] == sptep) {
			f->ref[i] = f->ref[--f->nr_ref];
			return;
		}
	}
	fail_msg("%p not in the reference", (void *)sptep);
}

static void remove_one(struct fixture *f, uint64_t *sptep)
{
	assert_int_equal(pte_list_remove(&f->cache, sptep, &f->head), 0);
	ref_remove(f, sptep);
}

static void fill(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		add(f, &sptes[i]);
}

static void expect_order(struct kvm_rmap_head *head, const int *idx, int n)
{
	uint64_t *got[MAX_ENTRIES];

	assert_int_equal(walk(head, got), n);
	for (int i = 0; i < n; i++)
		assert_ptr_equal(got[i], &sptes[idx[i]]);
}

static const int sizes[] = { 0, 1, 2, 3, 4, 7, 100 };
#define NR_SIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))

/* ---- Tests ---- */

static void test_add_count_per_size(void **state)
{
	struct fixture *f = *state;

	for (int s = 0; s < NR_SIZES; s++) {
		int n = sizes[s];

		for (int k = 0; k < n; k++) {
			/* From the rules alone: k entries already in, all descriptors full
			 * but the last; a full last one is not counted. */
			int want = k < 2 ? k : (k % PTE_LIST_EXT == 0 ? k - PTE_LIST_EXT : k);

			assert_int_equal(pte_list_add(&f->cache, &sptes[k], &f->head), want);
			f->ref[f->nr_ref++] = &sptes[k];
			assert_int_equal(pte_list_count(&f->head), k + 1);
		}
		check_contents(f);
		assert_int_equal(nr_descs(&f->head), n < 2 ? 0 : (n + PTE_LIST_EXT - 1) / PTE_LIST_EXT);
		assert_int_equal(pte_list_cache_used(&f->cache), nr_descs(&f->head));
		/* Insertion order is iteration order when nothing was removed. */
		uint64_t *got[MAX_ENTRIES];

		walk(&f->head, got);
		for (int k = 0; k < n; k++)
			assert_ptr_equal(got[k], &sptes[k]);
		pte_list_destroy(&f->cache, &f->head);
		f->nr_ref = 0;
		assert_int_equal(f->head.val, 0);
		assert_int_equal(pte_list_cache_used(&f->cache), 0);
	}
}

static void test_single_form(void **state)
{
	struct fixture *f = *state;
	struct rmap_iterator iter;

	assert_null(rmap_get_first(&f->head, &iter));
	assert_int_equal(pte_list_count(&f->head), 0);
	add(f, &sptes[5]);
	assert_int_equal(f->head.val, (uintptr_t)&sptes[5]);
	assert_ptr_equal(rmap_get_first(&f->head, &iter), &sptes[5]);
	assert_null(rmap_get_next(&iter));
	assert_int_equal(pte_list_cache_used(&f->cache), 0);
	remove_one(f, &sptes[5]);
	assert_int_equal(f->head.val, 0);
}

/* Once a descriptor exists the head keeps the chain form until the list is empty. */
static void test_no_collapse_to_single(void **state)
{
	struct fixture *f = *state;

	fill(f, 2);
	remove_one(f, &sptes[1]);
	assert_true(f->head.val & 1);
	assert_int_equal(nr_descs(&f->head), 1);
	check_contents(f);
	remove_one(f, &sptes[0]);
	assert_int_equal(f->head.val, 0);
	assert_int_equal(pte_list_cache_used(&f->cache), 0);
}

/* The last entry of a descriptor fills a hole; adds fill the first hole. */
static void test_removal_layout(void **state)
{
	struct fixture *f = *state;

	fill(f, 7); /* [0 1 2] [3 4 5] [6] */
	remove_one(f, &sptes[1]);
	expect_order(&f->head, (int[]){ 0, 2, 3, 4, 5, 6 }, 6);
	add(f, &sptes[10]); /* into the first descriptor's hole: count 2 */
	expect_order(&f->head, (int[]){ 0, 2, 10, 3, 4, 5, 6 }, 7);
	remove_one(f, &sptes[6]); /* empties and frees the last descriptor */
	assert_int_equal(nr_descs(&f->head), 2);
	assert_int_equal(pte_list_cache_used(&f->cache), 2);
	remove_one(f, &sptes[0]);
	expect_order(&f->head, (int[]){ 10, 2, 3, 4, 5 }, 5);
	remove_one(f, &sptes[10]);
	remove_one(f, &sptes[2]); /* frees the first descriptor: head -> second */
	expect_order(&f->head, (int[]){ 3, 4, 5 }, 3);
	assert_int_equal(nr_descs(&f->head), 1);
	add(f, &sptes[11]); /* full single descriptor: new one, count 0 */
	expect_order(&f->head, (int[]){ 3, 4, 5, 11 }, 4);
	check_contents(f);
}

static void test_remove_each_position(void **state)
{
	struct fixture *f = *state;

	for (int s = 1; s < NR_SIZES; s++) {
		int n = sizes[s];

		for (int victim = 0; victim < n; victim++) {
			fill(f, n);
			remove_one(f, &sptes[victim]);
			check_contents(f);
			assert_int_equal(pte_list_cache_used(&f->cache), nr_descs(&f->head));
			pte_list_destroy(&f->cache, &f->head);
			f->nr_ref = 0;
		}
		/* Middle first, then the rest front to back. */
		fill(f, n);
		remove_one(f, &sptes[n / 2]);
		for (int k = 0; k < n; k++) {
			if (k != n / 2)
				remove_one(f, &sptes[k]);
			check_contents(f);
		}
		assert_int_equal(f->head.val, 0);
		assert_int_equal(pte_list_cache_used(&f->cache), 0);
	}
}

static void test_duplicates(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 5; i++) {
		add(f, &sptes[1]);
		add(f, &sptes[i + 2]);
	}
	check_contents(f);
	assert_int_equal(pte_list_count(&f->head), 10);
	remove_one(f, &sptes[1]);
	check_contents(f);
	for (int i = 0; i < 4; i++)
		remove_one(f, &sptes[1]);
	check_contents(f);
	assert_int_equal(pte_list_remove(&f->cache, &sptes[1], &f->head), -ENOENT);
	check_contents(f);
}

static void test_remove_absent(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(pte_list_remove(&f->cache, &sptes[0], &f->head), -ENOENT);
	assert_int_equal(f->head.val, 0);
	for (int s = 1; s < NR_SIZES; s++) {
		uintptr_t before;
		uint64_t *order[MAX_ENTRIES], *after[MAX_ENTRIES];
		int n;

		fill(f, sizes[s]);
		before = f->head.val;
		n = walk(&f->head, order);
		assert_int_equal(pte_list_remove(&f->cache, &sptes[MAX_ENTRIES - 1], &f->head),
				 -ENOENT);
		assert_int_equal(f->head.val, before);
		assert_int_equal(walk(&f->head, after), n);
		assert_memory_equal(order, after, sizeof(order[0]) * (size_t)n);
		pte_list_destroy(&f->cache, &f->head);
		f->nr_ref = 0;
	}
}

/* Remove the entries whose index has bit `pick` set while walking; every entry must be
 * visited exactly once and the others stay. */
static void iterate_removing(struct fixture *f, int n, unsigned pick)
{
	struct rmap_iterator iter;
	int visits[MAX_ENTRIES] = { 0 };
	uint64_t *sptep;

	fill(f, n);
	for_each_rmap_spte(&f->head, &iter, sptep) {
		int idx = (int)(sptep - sptes);

		visits[idx]++;
		if (pick == 0 || ((unsigned)idx & pick)) {
			rmap_iter_remove(&f->cache, &iter);
			ref_remove(f, sptep);
		}
	}
	for (int k = 0; k < n; k++)
		assert_int_equal(visits[k], 1);
	check_contents(f);
	assert_int_equal(pte_list_cache_used(&f->cache), nr_descs(&f->head));
	pte_list_destroy(&f->cache, &f->head);
	f->nr_ref = 0;
}

static void test_iterator_removal(void **state)
{
	struct fixture *f = *state;

	for (int s = 0; s < NR_SIZES; s++) {
		iterate_removing(f, sizes[s], 0); /* all */
		for (unsigned pick = 1; pick <= 8; pick <<= 1)
			iterate_removing(f, sizes[s], pick);
	}
	assert_int_equal(pte_list_cache_used(&f->cache), 0);
}

/* KVM's drop loop: restart from the first entry after each removal. */
static void test_restart_from_first(void **state)
{
	struct fixture *f = *state;
	struct rmap_iterator iter;
	uint64_t *sptep;
	int n = 0;

	fill(f, 100);
	while ((sptep = rmap_get_first(&f->head, &iter))) {
		assert_int_equal(pte_list_remove(&f->cache, sptep, &f->head), 0);
		n++;
	}
	assert_int_equal(n, 100);
	assert_int_equal(pte_list_cache_used(&f->cache), 0);
}

/* Random adds (with duplicates), removals and walks with removal against the reference. */
static void test_random_against_reference(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = 0x1234567;

	for (int step = 0; step < 20000; step++) {
		uint64_t r = xorshift(&seed);
		uint64_t *sptep = &sptes[r % 64];

		if (r >> 32 & 1 && f->nr_ref < MAX_ENTRIES) {
			add(f, sptep);
		} else if (f->nr_ref && r >> 33 & 1) {
			remove_one(f, f->ref[(r >> 40) % (uint64_t)f->nr_ref]);
		} else if (r >> 34 & 1) {
			struct rmap_iterator iter;
			uint64_t *s;

			for_each_rmap_spte(&f->head, &iter, s) {
				if (xorshift(&seed) & 1) {
					rmap_iter_remove(&f->cache, &iter);
					ref_remove(f, s);
				}
			}
		} else {
			bool present = false;

			for (int i = 0; i < f->nr_ref; i++)
				present |= f->ref[i] == sptep;
			assert_int_equal(pte_list_remove(&f->cache, sptep, &f->head),
					 present ? 0 : -ENOENT);
			if (present)
				ref_remove(f, sptep);
		}
		if (step % 64 == 0)
			check_contents(f);
		assert_int_equal(pte_list_cache_used(&f->cache), nr_descs(&f->head));
	}
	check_contents(f);
}

/* Reset returns every descriptor at once; the next round reuses them without new blocks. */
static void test_cache_reset(void **state)
{
	struct fixture *f = *state;
	struct kvm_rmap_head heads[50];
	size_t blocks = 0;

	for (int round = 0; round < 3; round++) {
		memset(heads, 0, sizeof(heads));
		for (int h = 0; h < 50; h++) {
			for (int k = 0; k < 100; k++)
				assert_true(pte_list_add(&f->cache, &sptes[k], &heads[h]) >= 0);
			/* Punch holes so the free list is used too. */
			for (int k = 0; k < 100; k += 7)
				assert_int_equal(pte_list_remove(&f->cache, &sptes[k], &heads[h]), 0);
		}
		assert_true(pte_list_cache_used(&f->cache) > 0);
		if (round == 0)
			blocks = f->cache.nr_blocks;
		assert_int_equal(f->cache.nr_blocks, blocks);
		pte_list_cache_reset(&f->cache);
		assert_int_equal(pte_list_cache_used(&f->cache), 0);
	}
	/* The cache still works after a reset and after destroy + init. */
	fill(f, 10);
	check_contents(f);
	pte_list_cache_destroy(&f->cache);
	pte_list_cache_init(&f->cache);
	f->head.val = 0;
	f->nr_ref = 0;
	fill(f, 10);
	check_contents(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_add_count_per_size),
		T(test_single_form),
		T(test_no_collapse_to_single),
		T(test_removal_layout),
		T(test_remove_each_position),
		T(test_duplicates),
		T(test_remove_absent),
		T(test_iterator_removal),
		T(test_restart_from_first),
		T(test_random_against_reference),
		T(test_cache_reset),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
