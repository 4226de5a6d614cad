/* Unit tests of core/memslot.c, core/kvm.c and core/kvm_config.c. Expected values are
 * derived in the tests from the kernel's rules (virt/kvm/kvm_main.c and arch/x86/kvm/x86.c,
 * v4.20..v5.4; spec §1), never from running the code under test. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "kvm_host.h"
#include "mmu_trace.h"

#include "asan.h"

#ifdef SF_ASAN
/* Lets the ENOMEM test see a failing allocation instead of an ASan abort. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1:max_allocation_size_mb=4096";
}
#endif

#define GiB (1ull << 30)
#define MiB (1ull << 20)
#define SLOT(as, id) ((uint32_t)(as) << 16 | (uint32_t)(id))
#define BIT63 (1ull << 63)
/* Host backing used by most tests: chunk [1 GiB, 2 GiB) is the first chunk mapped, so its
 * frames start at pfn 1 << 18. */
#define HVA_BASE GiB
#define PFN_BASE (1ull << 18)

/* ---- Hook recording ---- */

enum event_type { EV_UPDATED, EV_FLUSH, EV_COMMIT };

struct event {
	enum event_type type;
	int as_id;
	uint64_t gen;        /* EV_UPDATED: the hook's argument */
	uint64_t active_gen; /* generation of the active set of as_id during the call */
	/* EV_FLUSH */
	int id;
	gfn_t base_gfn;
	uint32_t flags;
	bool slot_is_active_entry;
	bool found_by_gfn;
	bool visible;
	hva_t hva;
	kvm_pfn_t pfn;
	bool writable;
	bool other_slot_visible;
	/* EV_COMMIT */
	enum kvm_mr_change change;
	gfn_t old_base, new_base;
	uint64_t old_npages, new_npages;
	bool new_is_active_entry;
	bool new_visible;
	bool metadata_distinct;
};

static struct {
	struct event ev[64];
	int n;
	gfn_t other_gfn; /* a gfn of another slot, for EV_FLUSH */
} events;

static struct event *new_event(struct kvm *kvm, enum event_type type, int as_id)
{
	struct event *ev;

	assert_true(events.n < 64);
	ev = &events.ev[events.n++];
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->as_id = as_id;
	ev->active_gen = kvm->memslots[as_id]->generation;
	return ev;
}

static void on_memslots_updated(struct kvm *kvm, int as_id, uint64_t gen)
{
	new_event(kvm, EV_UPDATED, as_id)->gen = gen;
}

static void on_flush_shadow_memslot(struct kvm *kvm, struct kvm_memory_slot *slot)
{
	struct event *ev = new_event(kvm, EV_FLUSH, slot->as_id);
	struct kvm_memslots *active = kvm->memslots[slot->as_id];

	ev->id = slot->id;
	ev->base_gfn = slot->base_gfn;
	ev->flags = slot->flags;
	ev->slot_is_active_entry = id_to_memslot(active, slot->id) == slot;
	ev->found_by_gfn = __gfn_to_memslot(active, slot->base_gfn) == slot;
	ev->visible = kvm_is_visible_gfn(active, slot->base_gfn);
	ev->hva = gfn_to_hva_memslot_prot(slot, slot->base_gfn, NULL);
	ev->writable = true;
	ev->pfn = __gfn_to_pfn_memslot(kvm, slot, slot->base_gfn, false, &ev->writable);
	ev->other_slot_visible = kvm_is_visible_gfn(active, events.other_gfn);
}

static void on_commit_memory_region(struct kvm *kvm, const struct kvm_memory_slot *old,
				    const struct kvm_memory_slot *new, enum kvm_mr_change change)
{
	struct event *ev = new_event(kvm, EV_COMMIT, new->as_id);
	struct kvm_memslots *active = kvm->memslots[new->as_id];

	ev->id = new->id;
	ev->change = change;
	ev->old_base = old->base_gfn;
	ev->old_npages = old->npages;
	ev->new_base = new->base_gfn;
	ev->new_npages = new->npages;
	ev->flags = new->flags;
	ev->new_is_active_entry = id_to_memslot(active, new->id) == new;
	ev->new_visible = new->npages && kvm_is_visible_gfn(active, new->base_gfn);
	ev->metadata_distinct = old->arch.rmap[0] != new->arch.rmap[0] &&
				old->arch.rmap[1] != new->arch.rmap[1] &&
				old->arch.lpage_info[0] != new->arch.lpage_info[0];
}

/* ---- Fixture ---- */

struct fixture {
	struct host_memory *host;
	struct kvm *kvm;
};

static int setup_profile(void **state, enum kvm_profile profile)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kvm_config cfg;

	if (!f)
		return -1;
	kvm_config_init(&cfg, profile);
	f->host = host_memory_new();
	f->kvm = f->host ? kvm_create(&cfg, f->host) : NULL;
	if (!f->kvm || host_mmap(f->host, HVA_BASE, GiB, 12))
		return -1;
	f->kvm->arch_ops = (struct kvm_memslot_arch_ops){
		.memslots_updated = on_memslots_updated,
		.flush_shadow_memslot = on_flush_shadow_memslot,
		.commit_memory_region = on_commit_memory_region,
	};
	memset(&events, 0, sizeof(events));
	*state = f;
	return 0;
}

static int setup_k420(void **state)
{
	return setup_profile(state, KVM_PROFILE_4_20);
}

static int setup_k51(void **state)
{
	return setup_profile(state, KVM_PROFILE_5_1);
}

static int setup_k53(void **state)
{
	return setup_profile(state, KVM_PROFILE_5_3);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kvm_destroy(f->kvm);
	host_memory_free(f->host);
	free(f);
	return 0;
}

static struct kvm *fixture_kvm(void **state)
{
	return ((struct fixture *)*state)->kvm;
}

static bool is_k420(const struct kvm *kvm)
{
	return kvm->config.profile == KVM_PROFILE_4_20;
}

/* Generation added by one install: K420 +1 then +3, K51/K53 +KVM_ADDRESS_SPACE_NUM. */
static uint64_t install_step(const struct kvm *kvm)
{
	return is_k420(kvm) ? 4 : 2;
}

/* ---- Helpers ---- */

static int set_region(struct kvm *kvm, uint32_t slot, uint32_t flags, gpa_t gpa, uint64_t size,
		      hva_t hva, enum kvm_mr_change *change)
{
	struct kvm_userspace_memory_region mem = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = hva,
	};

	return kvm_set_memory_region(kvm, &mem, change);
}

/* A slot of npages at gfn, expected to be accepted as change. */
static void expect_change(struct kvm *kvm, uint32_t slot, uint32_t flags, gfn_t gfn,
			  uint64_t npages, hva_t hva, enum kvm_mr_change expected)
{
	enum kvm_mr_change change = (enum kvm_mr_change)-1;

	assert_int_equal(set_region(kvm, slot, flags, gfn << PAGE_SHIFT, npages << PAGE_SHIFT,
				    hva, &change), 0);
	assert_int_equal(change, expected);
}

static void create(struct kvm *kvm, uint32_t slot, uint32_t flags, gfn_t gfn, uint64_t npages,
		   hva_t hva)
{
	expect_change(kvm, slot, flags, gfn, npages, hva, KVM_MR_CREATE);
}

static void delete(struct kvm *kvm, uint32_t slot)
{
	expect_change(kvm, slot, 0, 0, 0, 0, KVM_MR_DELETE);
}

static struct kvm_memory_slot *slot_of(struct kvm *kvm, int as_id, int id)
{
	return id_to_memslot(__kvm_memslots(kvm, as_id), id);
}

/* A rejected call changes nothing: same errno, same sets, no hook runs. */
static void expect_rejected(struct kvm *kvm, uint32_t slot, uint32_t flags, gpa_t gpa,
			    uint64_t size, hva_t hva, int err)
{
	struct kvm_memslots *active[KVM_ADDRESS_SPACE_NUM];
	uint64_t gen[KVM_ADDRESS_SPACE_NUM];
	int used[KVM_ADDRESS_SPACE_NUM];
	int nr_events = events.n;

	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		active[as] = kvm->memslots[as];
		gen[as] = active[as]->generation;
		used[as] = active[as]->used_slots;
	}
	assert_int_equal(set_region(kvm, slot, flags, gpa, size, hva, NULL), -err);
	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		assert_ptr_equal(kvm->memslots[as], active[as]);
		assert_int_equal(kvm->memslots[as]->generation, gen[as]);
		assert_int_equal(kvm->memslots[as]->used_slots, used[as]);
	}
	assert_int_equal(events.n, nr_events);
}

/* Sorted by base_gfn descending, empty slots last, id_to_index the inverse permutation. */
static void assert_memslots_consistent(struct kvm_memslots *slots)
{
	for (int i = 0; i < KVM_MEM_SLOTS_NUM; i++) {
		const struct kvm_memory_slot *slot = &slots->memslots[i];

		assert_int_equal(slots->id_to_index[slot->id], i);
		assert_int_equal(slot->npages != 0, i < slots->used_slots);
		if (i + 1 < slots->used_slots)
			assert_true(slot->base_gfn > slots->memslots[i + 1].base_gfn);
		assert_int_equal(slot->flags & KVM_MEMSLOT_INVALID, 0);
	}
}

/* Exact size under ASan (malloc_usable_size reports the request); a lower bound otherwise. */
static void assert_array_bytes(const void *ptr, size_t bytes)
{
	assert_non_null(ptr);
#ifdef SF_ASAN
	assert_int_equal(malloc_usable_size((void *)ptr), bytes);
#else
	assert_true(malloc_usable_size((void *)ptr) >= bytes);
#endif
}

/* ---- Validation: each EINVAL cause on its own ---- */

static void test_einval_private_slot_id(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	/* kvm_vm_ioctl_set_memory_region: (u16)slot >= KVM_USER_MEM_SLOTS. */
	expect_rejected(kvm, SLOT(0, KVM_USER_MEM_SLOTS), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, KVM_MEM_SLOTS_NUM - 1), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, KVM_MEM_SLOTS_NUM), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(1, KVM_USER_MEM_SLOTS), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0xffff), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	/* The last user slot is fine. */
	create(kvm, SLOT(0, KVM_USER_MEM_SLOTS - 1), 0, 0, 1, HVA_BASE);
}

static void test_einval_flags(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 1u << 2, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), KVM_MEMSLOT_INVALID, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 1u << 31, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	create(kvm, SLOT(0, 0), KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY, 0, 1, HVA_BASE);
}

static void test_einval_unaligned_size(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 0, 0, PAGE_SIZE + 1, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 0, 0, 0x800, HVA_BASE, EINVAL);
}

static void test_einval_unaligned_gpa(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 0, 0x100800, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 0, 1, PAGE_SIZE, HVA_BASE, EINVAL);
}

static void test_einval_unaligned_hva(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 0, 0, PAGE_SIZE, HVA_BASE + 0x10, EINVAL);
	/* Checked for a DELETE too, before the request is classified. */
	create(kvm, SLOT(0, 0), 0, 0, 1, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 0), 0, 0, 0, HVA_BASE + 0x10, EINVAL);
	assert_int_equal(slot_of(kvm, 0, 0)->npages, 1);
}

static void test_einval_inaccessible_hva(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	/* access_ok: hva + size must not pass HOST_TASK_SIZE, nor wrap. */
	expect_rejected(kvm, SLOT(0, 0), 0, 0, 2 * PAGE_SIZE, HOST_TASK_SIZE - PAGE_SIZE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 0, 0, PAGE_SIZE, HOST_TASK_SIZE, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 0, 0, 2 * PAGE_SIZE, ~0ull - PAGE_SIZE + 1, EINVAL);
	/* Up to the limit is accessible; the hva need not be mapped on the host. */
	create(kvm, SLOT(0, 0), 0, 0, 1, HOST_TASK_SIZE - PAGE_SIZE);
	/* A DELETE names hva only for the checks: an empty range at the limit is fine and
	 * the slot's own hva does not matter. */
	delete(kvm, SLOT(0, 0));
	create(kvm, SLOT(0, 0), 0, 0, 1, HVA_BASE);
	expect_change(kvm, SLOT(0, 0), 0, 0, 0, HOST_TASK_SIZE, KVM_MR_DELETE);
}

static void test_einval_address_space(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(KVM_ADDRESS_SPACE_NUM, 0), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0xffff, 1), 0, 0, PAGE_SIZE, HVA_BASE, EINVAL);
	create(kvm, SLOT(KVM_ADDRESS_SPACE_NUM - 1, 0), 0, 0, 1, HVA_BASE);
}

static void test_einval_gpa_wrap(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 0, ~0ull - PAGE_SIZE + 1, 2 * PAGE_SIZE, HVA_BASE, EINVAL);
	/* gpa + size == 2^64 wraps to 0. */
	expect_rejected(kvm, SLOT(0, 0), 0, ~0ull - PAGE_SIZE + 1, PAGE_SIZE, HVA_BASE, EINVAL);
	/* Ending one page below 2^64 does not wrap; no MAXPHYADDR check exists here. */
	create(kvm, SLOT(0, 0), 0, (~0ull - 2 * PAGE_SIZE + 1) >> PAGE_SHIFT, 1, HVA_BASE);
}

static void test_einval_too_many_pages(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 0), 0, 0, (KVM_MEM_MAX_NR_PAGES + 1) << PAGE_SHIFT, 0, EINVAL);
	expect_rejected(kvm, SLOT(0, 0), 0, 0, 1ull << 44, 0, EINVAL);
}

static void test_einval_modify_hva_npages_readonly(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	gpa_t gpa = 0x100ull << PAGE_SHIFT;

	create(kvm, SLOT(0, 3), 0, 0x100, 0x10, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 3), 0, gpa, 0x10 * PAGE_SIZE, HVA_BASE + PAGE_SIZE, EINVAL);
	expect_rejected(kvm, SLOT(0, 3), 0, gpa, 0x11 * PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 3), 0, gpa, 0x0f * PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 3), KVM_MEM_READONLY, gpa, 0x10 * PAGE_SIZE, HVA_BASE, EINVAL);
	/* A changed hva is refused even when the gpa moves too. */
	expect_rejected(kvm, SLOT(0, 3), 0, 2 * gpa, 0x10 * PAGE_SIZE, HVA_BASE + PAGE_SIZE,
			EINVAL);

	create(kvm, SLOT(0, 4), KVM_MEM_READONLY, 0x200, 1, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 4), 0, 0x200ull << PAGE_SHIFT, PAGE_SIZE, HVA_BASE, EINVAL);
	expect_rejected(kvm, SLOT(0, 4), KVM_MEM_LOG_DIRTY_PAGES, 0x200ull << PAGE_SHIFT,
			PAGE_SIZE, HVA_BASE, EINVAL);
}

static void test_einval_delete_empty_slot(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	expect_rejected(kvm, SLOT(0, 5), 0, 0, 0, 0, EINVAL);
	create(kvm, SLOT(0, 5), 0, 0, 1, HVA_BASE);
	delete(kvm, SLOT(0, 5));
	expect_rejected(kvm, SLOT(0, 5), 0, 0, 0, 0, EINVAL);
	/* The same id in the other address space is a different, empty slot. */
	create(kvm, SLOT(0, 6), 0, 0, 1, HVA_BASE);
	expect_rejected(kvm, SLOT(1, 6), 0, 0, 0, 0, EINVAL);
}

/* Validation and classification come before the overlap check. */
static void test_einval_wins_over_eexist(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	create(kvm, SLOT(0, 0), 0, 0x100, 0x100, HVA_BASE);
	create(kvm, SLOT(0, 1), 0, 0x400, 0x10, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 2), 1u << 5, 0x100ull << PAGE_SHIFT, PAGE_SIZE, HVA_BASE,
			EINVAL);
	expect_rejected(kvm, SLOT(0, 1), 0, 0x100ull << PAGE_SHIFT, 0x10 * PAGE_SIZE,
			HVA_BASE + PAGE_SIZE, EINVAL);
}

/* ---- Overlap ---- */

static void test_eexist_same_address_space(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	create(kvm, SLOT(0, 0), 0, 0x100, 0x100, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 1), 0, 0x80ull << PAGE_SHIFT, 0x81 * PAGE_SIZE, HVA_BASE,
			EEXIST);
	expect_rejected(kvm, SLOT(0, 1), 0, 0x1ffull << PAGE_SHIFT, 0x100 * PAGE_SIZE, HVA_BASE,
			EEXIST);
	expect_rejected(kvm, SLOT(0, 1), 0, 0x150ull << PAGE_SHIFT, 0x10 * PAGE_SIZE, HVA_BASE,
			EEXIST);
	expect_rejected(kvm, SLOT(0, 1), 0, 0, 0x1000 * PAGE_SIZE, HVA_BASE, EEXIST);
	/* Touching ranges do not overlap. */
	create(kvm, SLOT(0, 1), 0, 0x80, 0x80, HVA_BASE);
	create(kvm, SLOT(0, 2), 0, 0x200, 0x80, HVA_BASE);
	assert_memslots_consistent(__kvm_memslots(kvm, 0));
}

static void test_overlap_across_address_spaces(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t gen0;

	create(kvm, SLOT(0, 0), 0, 0x100, 0x100, HVA_BASE);
	gen0 = __kvm_memslots(kvm, 0)->generation;
	create(kvm, SLOT(1, 0), 0, 0x100, 0x100, HVA_BASE + MiB);
	create(kvm, SLOT(1, 1), 0, 0x80, 0x10, HVA_BASE);
	create(kvm, SLOT(0, 1), 0, 0x0, 0x100, HVA_BASE);
	expect_rejected(kvm, SLOT(1, 2), 0, 0x180ull << PAGE_SHIFT, PAGE_SIZE, HVA_BASE, EEXIST);
	/* AS 1 updates leave AS 0's generation alone. */
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, gen0 + install_step(kvm));
	assert_int_equal(slot_of(kvm, 1, 0)->userspace_addr, HVA_BASE + MiB);
	assert_int_equal(slot_of(kvm, 1, 0)->as_id, 1);
}

static void test_move_overlap(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	create(kvm, SLOT(0, 0), 0, 0x100, 0x100, HVA_BASE);
	create(kvm, SLOT(0, 1), 0, 0x300, 0x100, HVA_BASE);
	expect_rejected(kvm, SLOT(0, 0), 0, 0x250ull << PAGE_SHIFT, 0x100 * PAGE_SIZE, HVA_BASE,
			EEXIST);
	/* Overlapping only its own old range is fine. */
	expect_change(kvm, SLOT(0, 0), 0, 0x101, 0x100, HVA_BASE, KVM_MR_MOVE);
	assert_int_equal(slot_of(kvm, 0, 0)->base_gfn, 0x101);
	assert_memslots_consistent(__kvm_memslots(kvm, 0));
}

/* ---- Classification, generations, hook order ---- */

static void test_initial_generation(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	if (is_k420(kvm)) {
		/* 2 * as_id - 150, modulo 2^64. */
		assert_int_equal(__kvm_memslots(kvm, 0)->generation, 0xffffffffffffff6aull);
		assert_int_equal(__kvm_memslots(kvm, 1)->generation, 0xffffffffffffff6cull);
	} else {
		assert_int_equal(__kvm_memslots(kvm, 0)->generation, 0);
		assert_int_equal(__kvm_memslots(kvm, 1)->generation, 1);
	}
}

/* CREATE and FLAGS_ONLY install once, MOVE and DELETE twice, NONE never. */
static void test_generation_per_change(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t step = install_step(kvm);
	uint64_t g0 = __kvm_memslots(kvm, 0)->generation;
	uint64_t g1 = __kvm_memslots(kvm, 1)->generation;

	create(kvm, SLOT(0, 2), 0, 0x100, 0x10, HVA_BASE);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + step);
	expect_change(kvm, SLOT(0, 2), 0, 0x100, 0x10, HVA_BASE, KVM_MR_NONE);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + step);
	expect_change(kvm, SLOT(0, 2), KVM_MEM_LOG_DIRTY_PAGES, 0x100, 0x10, HVA_BASE,
		      KVM_MR_FLAGS_ONLY);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 2 * step);
	expect_change(kvm, SLOT(0, 2), 0, 0x100, 0x10, HVA_BASE, KVM_MR_FLAGS_ONLY);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 3 * step);
	expect_change(kvm, SLOT(0, 2), 0, 0x300, 0x10, HVA_BASE, KVM_MR_MOVE);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 5 * step);
	delete(kvm, SLOT(0, 2));
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 7 * step);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, g1);

	create(kvm, SLOT(1, 2), 0, 0x100, 0x10, HVA_BASE);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, g1 + step);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 7 * step);
	if (!is_k420(kvm)) {
		/* K51: AS 0 stays even, AS 1 odd. */
		assert_int_equal(__kvm_memslots(kvm, 0)->generation & 1, 0);
		assert_int_equal(__kvm_memslots(kvm, 1)->generation & 1, 1);
	}
}

static void assert_updated(const struct event *ev, int as_id, uint64_t gen, uint64_t active)
{
	assert_int_equal(ev->type, EV_UPDATED);
	assert_int_equal(ev->as_id, as_id);
	assert_int_equal(ev->gen, gen);
	assert_int_equal(ev->active_gen, active);
}

/* Generation seen by memslots_updated while an install from old finishes: K420 calls it
 * after the final value (old + 4) is visible, K51/K53 while old | bit 63 still is. */
static uint64_t gen_during_hook(const struct kvm *kvm, uint64_t old)
{
	return is_k420(kvm) ? old + 4 : old | BIT63;
}

static void test_hooks_create(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t g = __kvm_memslots(kvm, 1)->generation;
	uint64_t step = install_step(kvm);

	create(kvm, SLOT(1, 7), KVM_MEM_READONLY, 0x40, 0x20, HVA_BASE);
	assert_int_equal(events.n, 2);
	assert_updated(&events.ev[0], 1, g + step, gen_during_hook(kvm, g));
	assert_int_equal(events.ev[1].type, EV_COMMIT);
	assert_int_equal(events.ev[1].as_id, 1);
	assert_int_equal(events.ev[1].change, KVM_MR_CREATE);
	assert_int_equal(events.ev[1].old_npages, 0);
	assert_int_equal(events.ev[1].new_base, 0x40);
	assert_int_equal(events.ev[1].new_npages, 0x20);
	assert_int_equal(events.ev[1].flags, KVM_MEM_READONLY);
	assert_true(events.ev[1].new_is_active_entry);
	assert_true(events.ev[1].new_visible);
	assert_int_equal(events.ev[1].active_gen, g + step);
}

static void test_hooks_flags_only_and_none(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t g;

	create(kvm, SLOT(0, 1), 0, 0x40, 0x20, HVA_BASE);
	g = __kvm_memslots(kvm, 0)->generation;
	events.n = 0;
	expect_change(kvm, SLOT(0, 1), 0, 0x40, 0x20, HVA_BASE, KVM_MR_NONE);
	assert_int_equal(events.n, 0);
	expect_change(kvm, SLOT(0, 1), KVM_MEM_LOG_DIRTY_PAGES, 0x40, 0x20, HVA_BASE,
		      KVM_MR_FLAGS_ONLY);
	assert_int_equal(events.n, 2);
	assert_updated(&events.ev[0], 0, g + install_step(kvm), gen_during_hook(kvm, g));
	assert_int_equal(events.ev[1].type, EV_COMMIT);
	assert_int_equal(events.ev[1].change, KVM_MR_FLAGS_ONLY);
	assert_int_equal(events.ev[1].flags, KVM_MEM_LOG_DIRTY_PAGES);
}

/* DELETE/MOVE: INVALID copy installed, flush, final install, commit. */
static void check_two_phase_update(struct kvm *kvm, enum kvm_mr_change change)
{
	uint64_t step = install_step(kvm);
	uint64_t g;
	gfn_t new_base = change == KVM_MR_MOVE ? 0x600 : 0;

	create(kvm, SLOT(0, 9), 0, 0x400, 0x20, HVA_BASE + 0x400000);
	create(kvm, SLOT(0, 2), 0, 0x10, 0x10, HVA_BASE);
	events.other_gfn = 0x15;
	g = __kvm_memslots(kvm, 0)->generation;
	events.n = 0;
	expect_change(kvm, SLOT(0, 9), 0, new_base, change == KVM_MR_MOVE ? 0x20 : 0,
		      change == KVM_MR_MOVE ? HVA_BASE + 0x400000 : 0, change);

	assert_int_equal(events.n, 4);
	assert_updated(&events.ev[0], 0, g + step, gen_during_hook(kvm, g));

	assert_int_equal(events.ev[1].type, EV_FLUSH);
	assert_int_equal(events.ev[1].id, 9);
	assert_int_equal(events.ev[1].base_gfn, 0x400);
	assert_int_equal(events.ev[1].flags, KVM_MEMSLOT_INVALID);
	assert_int_equal(events.ev[1].active_gen, g + step);
	assert_true(events.ev[1].slot_is_active_entry);
	assert_true(events.ev[1].found_by_gfn);
	assert_false(events.ev[1].visible);
	assert_int_equal(events.ev[1].hva, KVM_HVA_ERR_BAD);
	assert_int_equal(events.ev[1].pfn, KVM_PFN_NOSLOT);
	assert_false(events.ev[1].writable);
	assert_true(events.ev[1].other_slot_visible);

	assert_updated(&events.ev[2], 0, g + 2 * step, gen_during_hook(kvm, g + step));

	assert_int_equal(events.ev[3].type, EV_COMMIT);
	assert_int_equal(events.ev[3].change, change);
	assert_int_equal(events.ev[3].old_base, 0x400);
	assert_int_equal(events.ev[3].old_npages, 0x20);
	assert_int_equal(events.ev[3].new_base, new_base);
	assert_int_equal(events.ev[3].new_npages, change == KVM_MR_MOVE ? 0x20 : 0);
	assert_int_equal(events.ev[3].flags, 0);
	assert_true(events.ev[3].new_is_active_entry);
	assert_int_equal(events.ev[3].new_visible, change == KVM_MR_MOVE);
	assert_int_equal(events.ev[3].active_gen, g + 2 * step);

	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g + 2 * step);
	assert_memslots_consistent(__kvm_memslots(kvm, 0));
	assert_null(__gfn_to_memslot(__kvm_memslots(kvm, 0), 0x400));
}

static void test_hooks_delete(void **state)
{
	check_two_phase_update(fixture_kvm(state), KVM_MR_DELETE);
}

static void test_hooks_move(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	check_two_phase_update(kvm, KVM_MR_MOVE);
	/* B17 fixed: the moved slot got its own arrays. */
	assert_true(events.ev[3].metadata_distinct);
	assert_ptr_equal(__gfn_to_memslot(__kvm_memslots(kvm, 0), 0x61f), slot_of(kvm, 0, 9));
}

static void test_hooks_optional(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t g = __kvm_memslots(kvm, 0)->generation;

	kvm->arch_ops = (struct kvm_memslot_arch_ops){ 0 };
	create(kvm, SLOT(0, 0), 0, 0x10, 0x10, HVA_BASE);
	expect_change(kvm, SLOT(0, 0), 0, 0x30, 0x10, HVA_BASE, KVM_MR_MOVE);
	delete(kvm, SLOT(0, 0));
	assert_int_equal(events.n, 0);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g + 5 * install_step(kvm));
}

static void test_jump_generation(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t step = install_step(kvm);
	uint64_t g = __kvm_memslots(kvm, 1)->generation;
	uint64_t g0 = __kvm_memslots(kvm, 0)->generation;

	kvm_memslots_jump_generation(kvm, 1, 5);
	assert_int_equal(events.n, 5);
	for (int i = 0; i < 5; i++)
		assert_updated(&events.ev[i], 1, g + (i + 1) * step,
			       gen_during_hook(kvm, g + i * step));
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, g + 5 * step);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0);

	kvm_memslots_jump_generation(kvm, 1, 0);
	assert_int_equal(events.n, 5);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, g + 5 * step);

	/* A real update continues from the jumped value. */
	create(kvm, SLOT(1, 0), 0, 0, 1, HVA_BASE);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, g + 6 * step);

	/* Without a hook the jump is arithmetic. */
	kvm->arch_ops.memslots_updated = NULL;
	kvm_memslots_jump_generation(kvm, 0, 1000000);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, g0 + 1000000 * step);
}

/* The MMIO generation wraps the hook acted on: how many, and a digest of their sequence
 * of (address space, generation). */
struct wrap_log {
	uint64_t n;
	uint64_t digest;
};

static void log_wraps(void *ctx, const struct kvm_mmu_trace_event *ev)
{
	struct wrap_log *log = ctx;

	if (ev->event != KVM_EV_INVALIDATE_MMIO_SPTES)
		return;
	log->n++;
	log->digest = (log->digest ^ ev->gen ^ (uint64_t)ev->as_id << 62) * 0x100000001b3ull;
}

/* A jump skips the installs the MMU's hook ignores: the same wraps (address space and
 * generation) and the same final generations as a VM whose jumps run every install
 * through the hook, for short and narrow generations, with and without bug B1. */
static void test_jump_generation_skips_only_ignored_installs(void **state)
{
	static const uint64_t jumps[] = { 1, 37, 40, 1000, 262143, 2, 262144, 600000, 3 };
	struct fixture *f = *state;

	for (int variant = 0; variant < 4; variant++) {
		struct kvm_config cfg;
		struct kvm *fast, *every;
		struct wrap_log fast_log = { 0 }, every_log = { 0 };

		kvm_config_init(&cfg, f->kvm->config.profile);
		if (variant & 1)
			cfg.mmio_gen_bits = 7;
		if (variant & 2)
			cfg.bugs |= 1ull << KVM_BUG_B1_WRAP_IN_ONE_AS_ONLY;
		fast = kvm_create(&cfg, f->host);
		every = kvm_create(&cfg, f->host);
		assert_non_null(fast);
		assert_non_null(every);
		assert_non_null(fast->arch_ops.memslots_wrap_mask);
		every->arch_ops.memslots_wrap_mask = NULL;
		fast->trace_fn = log_wraps;
		fast->trace_ctx = &fast_log;
		every->trace_fn = log_wraps;
		every->trace_ctx = &every_log;
		for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
			kvm_memslots_jump_generation(fast, (int)(i & 1), jumps[i]);
			kvm_memslots_jump_generation(every, (int)(i & 1), jumps[i]);
		}
		assert_true(every_log.n > 0);
		assert_int_equal(fast_log.n, every_log.n);
		assert_int_equal(fast_log.digest, every_log.digest);
		for (int as_id = 0; as_id < KVM_ADDRESS_SPACE_NUM; as_id++)
			assert_int_equal(__kvm_memslots(fast, as_id)->generation,
					 __kvm_memslots(every, as_id)->generation);
		kvm_destroy(fast);
		kvm_destroy(every);
	}
}

/* K420's start values make the 20-bit MMIO generation of AS 1 (-148, a multiple of 4) reach
 * 0 after 37 installs, while AS 0 (-150, 2 mod 4) steps from -2 to 2 and never has its low
 * 20 bits clear: the setting of bug B1. */
static void test_k420_generation_near_wrap(void **state)
{
	struct kvm *kvm = fixture_kvm(state);

	kvm_memslots_jump_generation(kvm, 0, 38);
	assert_int_equal(events.ev[36].gen, (uint64_t)-2);
	assert_int_equal(events.ev[37].gen, 2);
	for (int i = 0; i < 38; i++)
		assert_int_not_equal(events.ev[i].gen & 0xfffff, 0);
	events.n = 0;
	kvm_memslots_jump_generation(kvm, 1, 37);
	assert_int_equal(events.ev[36].gen, 0);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, 0);
}

/* ---- Metadata ---- */

static void assert_disallow(const struct kvm_memory_slot *slot, int level, const int *expected,
			    uint64_t lpages)
{
	for (uint64_t i = 0; i < lpages; i++)
		assert_int_equal(slot->arch.lpage_info[level - 2][i].disallow_lpage, expected[i]);
	assert_array_bytes(slot->arch.lpage_info[level - 2], lpages * sizeof(struct kvm_lpage_info));
}

struct lpage_case {
	gfn_t gfn;
	uint64_t npages;
	hva_t hva;
	int level2[4];
	uint64_t lpages2;
	int level3[2];
	uint64_t lpages3;
};

static void test_disallow_lpage(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	/* Rules (kvm_arch_create_memslot), per level L with frame mask m = 512^(L-1) - 1:
	 * first entry if base_gfn & m, last entry if (base_gfn + npages) & m, every entry if
	 * (base_gfn ^ hva >> 12) & m. */
	static const struct lpage_case cases[] = {
		/* Aligned 2M frames, hva congruent: only the 1G frame is partial. */
		{ 0x200, 0x400, HVA_BASE + 0x200000, { 0, 0 }, 2, { 1 }, 1 },
		/* Base not 2M-aligned. */
		{ 0x201, 0x3ff, HVA_BASE + 0x201000, { 1, 0 }, 2, { 1 }, 1 },
		/* End not 2M-aligned. */
		{ 0x200, 0x401, HVA_BASE + 0x200000, { 0, 0, 1 }, 3, { 1 }, 1 },
		/* Inside a single 2M frame. */
		{ 0x210, 0x10, HVA_BASE + 0x210000, { 1 }, 1, { 1 }, 1 },
		/* hva incongruent with gfn modulo 2M: every frame. */
		{ 0x200, 0x400, HVA_BASE + 0x201000, { 1, 1 }, 2, { 1 }, 1 },
		/* 1G-aligned, hva congruent modulo 1G: nothing disallowed. */
		{ 0x40000, 0x40000, 2 * GiB, { 0 }, 512, { 0 }, 1 },
		/* Congruent modulo 2M only: level 3 disallowed, level 2 free. */
		{ 0x40000, 0x40000, 2 * GiB + 2 * MiB, { 0 }, 512, { 1 }, 1 },
		/* Straddles a 1G boundary: two level-3 entries, both partial. */
		{ 0x3fe00, 0x400, HVA_BASE + 0x3fe00000, { 0, 0 }, 2, { 1, 1 }, 2 },
	};
	static const int zeros[512];

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct lpage_case *lc = &cases[c];
		struct kvm_memory_slot *slot;

		create(kvm, SLOT(0, 1), 0, lc->gfn, lc->npages, lc->hva);
		slot = slot_of(kvm, 0, 1);
		assert_disallow(slot, 2, lc->lpages2 > 4 ? zeros : lc->level2, lc->lpages2);
		assert_disallow(slot, 3, lc->level3, lc->lpages3);
		assert_ptr_equal(lpage_info_slot(lc->gfn + lc->npages - 1, slot, 2),
				 &slot->arch.lpage_info[0][lc->lpages2 - 1]);
		assert_ptr_equal(lpage_info_slot(lc->gfn, slot, 3), &slot->arch.lpage_info[1][0]);
		delete(kvm, SLOT(0, 1));
	}
}

struct rmap_case {
	gfn_t gfn;
	uint64_t npages;
	uint64_t count[KVM_NR_PAGE_SIZES];
};

static void test_rmap_and_track_sizes(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	/* count(L) = ((gfn + npages - 1) >> 9(L-1)) - (gfn >> 9(L-1)) + 1 */
	static const struct rmap_case cases[] = {
		{ 0x1ff, 3, { 3, 2, 1 } },
		{ 0x3ffff, 2, { 2, 2, 2 } },
		{ 0x200, 0x400, { 0x400, 2, 1 } },
		{ 0, 1, { 1, 1, 1 } },
		{ 0x3fe01, 0x401, { 0x401, 3, 2 } },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct rmap_case *rc = &cases[c];
		struct kvm_memory_slot *slot;

		create(kvm, SLOT(0, 8), 0, rc->gfn, rc->npages, HVA_BASE);
		slot = slot_of(kvm, 0, 8);
		for (int level = 1; level <= KVM_NR_PAGE_SIZES; level++) {
			assert_array_bytes(slot->arch.rmap[level - 1],
					   rc->count[level - 1] * sizeof(struct kvm_rmap_head));
			assert_int_equal(gfn_to_index(rc->gfn + rc->npages - 1, rc->gfn, level) + 1,
					 rc->count[level - 1]);
		}
		assert_array_bytes(slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE],
				   rc->npages * sizeof(uint16_t));
		for (uint64_t i = 0; i < rc->npages; i++)
			assert_int_equal(slot->arch.gfn_track[KVM_PAGE_TRACK_WRITE][i], 0);
		assert_int_equal(slot->arch.rmap[0][rc->npages - 1].val, 0);
		assert_null(slot->dirty_bitmap);
		delete(kvm, SLOT(0, 8));
		/* An empty slot owns nothing. */
		assert_null(slot_of(kvm, 0, 8)->arch.rmap[0]);
		assert_null(slot_of(kvm, 0, 8)->arch.lpage_info[0]);
		assert_null(slot_of(kvm, 0, 8)->arch.gfn_track[0]);
	}
}

static void test_dirty_bitmap_lifecycle(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	struct kvm_memory_slot *slot;
	uint64_t *bitmap;

	/* 2 * ceil(npages / 64) words. */
	create(kvm, SLOT(0, 0), KVM_MEM_LOG_DIRTY_PAGES, 0x100, 65, HVA_BASE);
	assert_array_bytes(slot_of(kvm, 0, 0)->dirty_bitmap, 4 * sizeof(uint64_t));
	create(kvm, SLOT(0, 1), KVM_MEM_LOG_DIRTY_PAGES, 0x200, 64, HVA_BASE);
	assert_array_bytes(slot_of(kvm, 0, 1)->dirty_bitmap, 2 * sizeof(uint64_t));

	expect_change(kvm, SLOT(0, 0), 0, 0x100, 65, HVA_BASE, KVM_MR_FLAGS_ONLY);
	assert_null(slot_of(kvm, 0, 0)->dirty_bitmap);
	expect_change(kvm, SLOT(0, 0), KVM_MEM_LOG_DIRTY_PAGES, 0x100, 65, HVA_BASE,
		      KVM_MR_FLAGS_ONLY);
	slot = slot_of(kvm, 0, 0);
	assert_array_bytes(slot->dirty_bitmap, 4 * sizeof(uint64_t));
	for (int i = 0; i < 4; i++)
		assert_int_equal(slot->dirty_bitmap[i], 0);

	/* MOVE keeps the bitmap (and whatever it holds), as the kernel does. */
	slot->dirty_bitmap[0] = 0x5;
	bitmap = slot->dirty_bitmap;
	expect_change(kvm, SLOT(0, 0), KVM_MEM_LOG_DIRTY_PAGES, 0x800, 65, HVA_BASE, KVM_MR_MOVE);
	assert_ptr_equal(slot_of(kvm, 0, 0)->dirty_bitmap, bitmap);
	assert_int_equal(bitmap[0], 0x5);
	/* MOVE with logging dropped frees it. */
	expect_change(kvm, SLOT(0, 0), 0, 0x900, 65, HVA_BASE, KVM_MR_MOVE);
	assert_null(slot_of(kvm, 0, 0)->dirty_bitmap);
	delete(kvm, SLOT(0, 1));
	assert_null(slot_of(kvm, 0, 1)->dirty_bitmap);
}

static void test_flags_only_keeps_metadata(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	struct kvm_arch_memory_slot before;

	create(kvm, SLOT(0, 4), 0, 0x1000, 0x300, HVA_BASE);
	slot_of(kvm, 0, 4)->arch.lpage_info[0][1].disallow_lpage = 7;
	before = slot_of(kvm, 0, 4)->arch;
	expect_change(kvm, SLOT(0, 4), KVM_MEM_LOG_DIRTY_PAGES, 0x1000, 0x300, HVA_BASE,
		      KVM_MR_FLAGS_ONLY);
	assert_memory_equal(&slot_of(kvm, 0, 4)->arch, &before, sizeof(before));
	assert_int_equal(slot_of(kvm, 0, 4)->arch.lpage_info[0][1].disallow_lpage, 7);
}

/* B17 is fixed: MOVE sizes and marks the arrays for the new base_gfn. */
static void test_move_gets_new_metadata(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	static const int one_allowed[] = { 0 };
	static const int both_disallowed[] = { 1, 1 };
	struct kvm_memory_slot *slot;

	/* gfn 0x200, 512 pages, hva congruent: one 2M frame, allowed. */
	create(kvm, SLOT(0, 3), 0, 0x200, 0x200, HVA_BASE + 0x200000);
	slot = slot_of(kvm, 0, 3);
	assert_disallow(slot, 2, one_allowed, 1);
	assert_array_bytes(slot->arch.rmap[1], 1 * sizeof(struct kvm_rmap_head));

	/* At 0x201 the slot touches two 2M frames, both partial (and hva incongruent). */
	expect_change(kvm, SLOT(0, 3), 0, 0x201, 0x200, HVA_BASE + 0x200000, KVM_MR_MOVE);
	slot = slot_of(kvm, 0, 3);
	assert_disallow(slot, 2, both_disallowed, 2);
	assert_array_bytes(slot->arch.rmap[1], 2 * sizeof(struct kvm_rmap_head));
	assert_array_bytes(slot->arch.rmap[0], 0x200 * sizeof(struct kvm_rmap_head));
	assert_true(events.ev[events.n - 1].metadata_distinct);

	/* Back onto a 2M boundary: allowed again. */
	expect_change(kvm, SLOT(0, 3), 0, 0x400, 0x200, HVA_BASE + 0x200000, KVM_MR_MOVE);
	assert_disallow(slot_of(kvm, 0, 3), 2, one_allowed, 1);
}

/* ---- Lookups ---- */

struct range {
	int id;
	gfn_t base;
	uint64_t npages;
};

static const struct range *find_range(const struct range *ranges, int n, gfn_t gfn)
{
	for (int i = 0; i < n; i++) {
		if (gfn >= ranges[i].base && gfn < ranges[i].base + ranges[i].npages)
			return &ranges[i];
	}
	return NULL;
}

static void test_gfn_to_memslot(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	static const struct range ranges[] = {
		{ 3, 0x100, 0x80 }, { 7, 0x0, 0x10 }, { 1, 0x1000, 1 }, { 2, 0x180, 0x80 },
		{ 500, 0xfffff000, 0x1000 },
	};
	static const gfn_t probes[] = {
		0, 0xf, 0x10, 0x50, 0xff, 0x100, 0x17f, 0x180, 0x1ff, 0x200, 0xfff, 0x1000,
		0x1001, 0xffffefff, 0xfffff000, 0xffffffff, 0x100000000, ~0ull,
	};
	const int n = sizeof(ranges) / sizeof(ranges[0]);
	struct kvm_memslots *slots;

	assert_null(__gfn_to_memslot(__kvm_memslots(kvm, 0), 0));
	for (int i = 0; i < n; i++)
		create(kvm, SLOT(0, ranges[i].id), 0, ranges[i].base, ranges[i].npages, HVA_BASE);
	slots = __kvm_memslots(kvm, 0);
	assert_int_equal(slots->used_slots, n);
	assert_memslots_consistent(slots);
	assert_int_equal(slots->memslots[n - 1].base_gfn, 0);

	for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
		const struct range *r = find_range(ranges, n, probes[p]);
		struct kvm_memory_slot *slot = __gfn_to_memslot(slots, probes[p]);

		if (!r) {
			assert_null(slot);
			assert_false(kvm_is_visible_gfn(slots, probes[p]));
			continue;
		}
		assert_ptr_equal(slot, id_to_memslot(slots, r->id));
		assert_true(kvm_is_visible_gfn(slots, probes[p]));
	}
	/* AS 1 is separate. */
	assert_null(__gfn_to_memslot(__kvm_memslots(kvm, 1), 0x100));
}

static void test_gfn_to_hva_prot(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	bool writable = false;

	create(kvm, SLOT(0, 0), 0, 0x100, 0x10, HVA_BASE + 0x5000);
	create(kvm, SLOT(0, 1), KVM_MEM_READONLY, 0x300, 0x10, HVA_BASE + 0x100000);

	/* userspace_addr + (gfn - base_gfn) * 4096 */
	assert_int_equal(gfn_to_hva_memslot_prot(slot_of(kvm, 0, 0), 0x102, &writable),
			 HVA_BASE + 0x7000);
	assert_true(writable);
	assert_int_equal(gfn_to_hva_memslot_prot(slot_of(kvm, 0, 1), 0x30f, &writable),
			 HVA_BASE + 0x10f000);
	assert_false(writable);
	assert_int_equal(gfn_to_hva_memslot_prot(slot_of(kvm, 0, 0), 0x100, NULL),
			 HVA_BASE + 0x5000);
	/* No slot: error hva, writable untouched. */
	writable = true;
	assert_int_equal(gfn_to_hva_memslot_prot(NULL, 0x100, &writable), KVM_HVA_ERR_BAD);
	assert_true(writable);
}

static void test_gfn_to_pfn(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	struct kvm_memory_slot *ram, *rom, *unbacked;
	bool writable;

	create(kvm, SLOT(0, 0), 0, 0x100, 0x10, HVA_BASE + 0x5000);
	create(kvm, SLOT(0, 1), KVM_MEM_READONLY, 0x300, 0x10, HVA_BASE + 0x100000);
	create(kvm, SLOT(0, 2), 0, 0x500, 0x10, 5 * GiB);
	ram = slot_of(kvm, 0, 0);
	rom = slot_of(kvm, 0, 1);
	unbacked = slot_of(kvm, 0, 2);

	/* hva HVA_BASE + 0x7000 is page 7 of the first chunk mapped. */
	writable = false;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, ram, 0x102, false, &writable), PFN_BASE + 7);
	assert_true(writable);
	writable = false;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, ram, 0x102, true, &writable), PFN_BASE + 7);
	assert_true(writable);
	assert_int_equal(__gfn_to_pfn_memslot(kvm, ram, 0x10f, true, NULL), PFN_BASE + 0x14);

	writable = true;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, rom, 0x301, false, &writable),
			 PFN_BASE + 0x101);
	assert_false(writable);
	writable = true;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, rom, 0x301, true, &writable),
			 KVM_PFN_ERR_RO_FAULT);
	assert_false(writable);
	assert_true(is_error_pfn(KVM_PFN_ERR_RO_FAULT));

	writable = true;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, NULL, 0x700, false, &writable), KVM_PFN_NOSLOT);
	assert_false(writable);
	assert_true(is_noslot_pfn(__gfn_to_pfn_memslot(kvm, NULL, 0x700, true, NULL)));
	assert_false(is_error_pfn(KVM_PFN_NOSLOT));

	writable = true;
	assert_int_equal(__gfn_to_pfn_memslot(kvm, unbacked, 0x500, false, &writable),
			 KVM_PFN_ERR_FAULT);
	assert_false(writable);
}

/* ---- Random updates against a reference written from the kernel's rules ---- */

#define REF_IDS 6
#define REF_GFNS 0x200

struct ref_slot {
	bool present;
	gfn_t base;
	uint64_t npages;
	hva_t hva;
	uint32_t flags;
};

static uint64_t lcg_next(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	return *seed >> 33;
}

static bool ref_overlaps(const struct ref_slot *ref, int id, gfn_t base, uint64_t npages)
{
	for (int i = 0; i < REF_IDS; i++) {
		if (i == id || !ref[i].present)
			continue;
		if (base < ref[i].base + ref[i].npages && ref[i].base < base + npages)
			return true;
	}
	return false;
}

/* Expected errno and change for one request (classification, then overlap). */
static int ref_expect(const struct ref_slot *ref, int id, gfn_t base, uint64_t npages,
		      hva_t hva, uint32_t flags, enum kvm_mr_change *change)
{
	const struct ref_slot *old = &ref[id];

	if (!npages) {
		*change = KVM_MR_DELETE;
		return old->present ? 0 : -EINVAL;
	}
	if (!old->present)
		*change = KVM_MR_CREATE;
	else if (hva != old->hva || npages != old->npages ||
		 ((flags ^ old->flags) & KVM_MEM_READONLY))
		return -EINVAL;
	else if (base != old->base)
		*change = KVM_MR_MOVE;
	else if (flags != old->flags)
		*change = KVM_MR_FLAGS_ONLY;
	else
		*change = KVM_MR_NONE;
	if ((*change == KVM_MR_CREATE || *change == KVM_MR_MOVE) &&
	    ref_overlaps(ref, id, base, npages))
		return -EEXIST;
	return 0;
}

static void ref_apply(struct ref_slot *ref, int id, gfn_t base, uint64_t npages, hva_t hva,
		      uint32_t flags, enum kvm_mr_change change)
{
	if (change == KVM_MR_DELETE) {
		ref[id].present = false;
		return;
	}
	ref[id] = (struct ref_slot){ true, base, npages, hva, flags };
}

static void ref_check(struct kvm *kvm, const struct ref_slot *ref)
{
	struct kvm_memslots *slots = __kvm_memslots(kvm, 0);
	int used = 0;

	assert_memslots_consistent(slots);
	for (int id = 0; id < REF_IDS; id++) {
		const struct kvm_memory_slot *slot = id_to_memslot(slots, id);

		used += ref[id].present;
		assert_int_equal(slot->npages, ref[id].present ? ref[id].npages : 0);
		if (!ref[id].present)
			continue;
		assert_int_equal(slot->base_gfn, ref[id].base);
		assert_int_equal(slot->flags, ref[id].flags);
		assert_int_equal(!!slot->dirty_bitmap, !!(ref[id].flags & KVM_MEM_LOG_DIRTY_PAGES));
	}
	assert_int_equal(slots->used_slots, used);
	for (gfn_t gfn = 0; gfn < REF_GFNS + 0x80; gfn++) {
		const struct kvm_memory_slot *slot = __gfn_to_memslot(slots, gfn);
		int expected = -1;

		for (int id = 0; id < REF_IDS; id++) {
			if (ref[id].present && gfn >= ref[id].base &&
			    gfn < ref[id].base + ref[id].npages)
				expected = id;
		}
		assert_int_equal(slot ? slot->id : -1, expected);
	}
}

static void test_random_updates(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	struct ref_slot ref[REF_IDS] = { 0 };
	uint64_t seed = 0x5eed;
	uint64_t gen = __kvm_memslots(kvm, 0)->generation;

	for (int op = 0; op < 3000; op++) {
		int id = (int)(lcg_next(&seed) % REF_IDS);
		bool keep_shape = ref[id].present && lcg_next(&seed) % 4 != 0;
		uint64_t npages = keep_shape ? ref[id].npages : lcg_next(&seed) % 0x40;
		hva_t hva = keep_shape ? ref[id].hva : HVA_BASE + (lcg_next(&seed) % 4) * PAGE_SIZE;
		gfn_t base = lcg_next(&seed) % REF_GFNS;
		uint32_t flags = (uint32_t)(lcg_next(&seed) % 4);
		enum kvm_mr_change expected_change = KVM_MR_NONE, change = KVM_MR_NONE;
		int expected, r;

		if (lcg_next(&seed) % 3 == 0 && ref[id].present)
			base = ref[id].base;
		events.n = 0;
		expected = ref_expect(ref, id, base, npages, hva, flags, &expected_change);
		r = set_region(kvm, SLOT(0, id), flags, base << PAGE_SHIFT, npages << PAGE_SHIFT,
			       hva, &change);
		assert_int_equal(r, expected);
		if (r)
			continue;
		assert_int_equal(change, expected_change);
		ref_apply(ref, id, base, npages, hva, flags, change);
		if (change == KVM_MR_DELETE || change == KVM_MR_MOVE)
			gen += 2 * install_step(kvm);
		else if (change != KVM_MR_NONE)
			gen += install_step(kvm);
		assert_int_equal(__kvm_memslots(kvm, 0)->generation, gen);
		ref_check(kvm, ref);
	}
}

/* ---- ENOMEM ---- */

static void test_enomem(void **state)
{
	struct kvm *kvm = fixture_kvm(state);
	uint64_t size = KVM_MEM_MAX_NR_PAGES << PAGE_SHIFT;
#ifndef SF_ASAN
	struct rlimit saved, limited;

	/* The slot's level-1 rmap alone is 16 GiB: cap the address space below that. */
	assert_int_equal(getrlimit(RLIMIT_AS, &saved), 0);
	limited = saved;
	limited.rlim_cur = 4 * GiB;
	assert_int_equal(setrlimit(RLIMIT_AS, &limited), 0);
#endif
	expect_rejected(kvm, SLOT(0, 0), 0, 0, size, 0, ENOMEM);
#ifndef SF_ASAN
	assert_int_equal(setrlimit(RLIMIT_AS, &saved), 0);
#endif
	assert_int_equal(slot_of(kvm, 0, 0)->npages, 0);
	assert_null(slot_of(kvm, 0, 0)->arch.rmap[0]);
	/* The slot can still be created at a sane size. */
	create(kvm, SLOT(0, 0), 0, 0, 1, HVA_BASE);
}

/* ---- kvm.c and kvm_config.c ---- */

static void test_kvm_create_state(void **state)
{
	struct fixture *f = *state;
	struct kvm *kvm = f->kvm;

	assert_ptr_equal(kvm->host, f->host);
	assert_int_equal(kvm->nr_vcpus, 1);
	assert_ptr_equal(kvm->vcpus[0].kvm, kvm);
	assert_int_equal(kvm->vcpus[0].vcpu_id, 0);
	assert_int_equal(kvm->vcpus[0].arch.cr0, X86_CR0_ET);
	assert_int_equal(kvm->vcpus[0].arch.cr3 | kvm->vcpus[0].arch.cr4 |
			 kvm->vcpus[0].arch.efer | kvm->vcpus[0].arch.rflags, 0);
	assert_false(kvm->vcpus[0].arch.smm);
	/* No roots until the first guest entry; the walker context is computed later. */
	assert_false(VALID_PAGE(kvm->vcpus[0].mmu.root_hpa));
	assert_int_equal(kvm->vcpus[0].mmu.root_level, 0);
	for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
		assert_false(VALID_PAGE(kvm->vcpus[0].mmu.prev_roots[i].hpa));
	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		assert_int_equal(__kvm_memslots(kvm, as)->used_slots, 0);
		assert_memslots_consistent(__kvm_memslots(kvm, as));
		assert_int_equal(slot_of(kvm, as, 17)->as_id, as);
	}
	assert_ptr_equal(kvm_vcpu_memslots(&kvm->vcpus[0]), __kvm_memslots(kvm, 0));
	kvm->vcpus[0].arch.smm = true;
	assert_ptr_equal(kvm_vcpu_memslots(&kvm->vcpus[0]), __kvm_memslots(kvm, 1));
}

static void test_kvm_reset(void **state)
{
	struct fixture *f = *state;
	struct kvm *kvm = f->kvm;
	struct kvm_config cfg;

	create(kvm, SLOT(0, 0), KVM_MEM_LOG_DIRTY_PAGES, 0x100, 0x40, HVA_BASE);
	create(kvm, SLOT(0, 508), 0, 0x1000, 0x400, HVA_BASE);
	create(kvm, SLOT(1, 3), KVM_MEM_READONLY, 0x100, 0x40, HVA_BASE);
	kvm_memslots_jump_generation(kvm, 1, 3);
	kvm->vcpus[0].arch.cr0 |= X86_CR0_PG | X86_CR0_PE;
	kvm->vcpus[0].arch.cr3 = 0x1000;
	kvm->vcpus[0].mmu.root_level = 4;
	kvm->vcpus[1].vcpu_id = 1;
	kvm->nr_vcpus = 2;

	kvm_config_init(&cfg, KVM_PROFILE_4_20);
	cfg.bugs = 1ull << KVM_BUG_W3_NO_UPPER_ACCESSED;
	assert_int_equal(kvm_reset(kvm, &cfg), 0);
	assert_int_equal(kvm->config.profile, KVM_PROFILE_4_20);
	assert_true(kvm_bug(&kvm->config, KVM_BUG_W3_NO_UPPER_ACCESSED));
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, 0xffffffffffffff6aull);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, 0xffffffffffffff6cull);
	for (int as = 0; as < KVM_ADDRESS_SPACE_NUM; as++) {
		assert_int_equal(__kvm_memslots(kvm, as)->used_slots, 0);
		assert_memslots_consistent(__kvm_memslots(kvm, as));
	}
	assert_null(slot_of(kvm, 0, 0)->dirty_bitmap);
	assert_null(slot_of(kvm, 0, 508)->arch.rmap[0]);
	assert_null(__gfn_to_memslot(__kvm_memslots(kvm, 0), 0x100));
	assert_int_equal(kvm->nr_vcpus, 1);
	assert_int_equal(kvm->vcpus[0].arch.cr0, X86_CR0_ET);
	assert_int_equal(kvm->vcpus[0].arch.cr3, 0);
	/* No roots until the first guest entry; the walker context is computed later. */
	assert_false(VALID_PAGE(kvm->vcpus[0].mmu.root_hpa));
	assert_int_equal(kvm->vcpus[0].mmu.root_level, 0);
	for (int i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++)
		assert_false(VALID_PAGE(kvm->vcpus[0].mmu.prev_roots[i].hpa));
	assert_ptr_equal(kvm->vcpus[0].kvm, kvm);
	assert_int_equal(kvm->vcpus[1].vcpu_id, 0);
	/* The host and the MMU's hooks survive a reset. */
	assert_ptr_equal(kvm->host, f->host);
	assert_ptr_equal(kvm->arch_ops.memslots_updated, on_memslots_updated);

	/* Usable again, now with K420 generations. */
	events.n = 0;
	create(kvm, SLOT(0, 0), 0, 0x100, 0x40, HVA_BASE);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, 0xffffffffffffff6eull);

	kvm_config_init(&cfg, KVM_PROFILE_5_3);
	assert_int_equal(kvm_reset(kvm, &cfg), 0);
	assert_int_equal(__kvm_memslots(kvm, 0)->generation, 0);
	assert_int_equal(__kvm_memslots(kvm, 1)->generation, 1);
	assert_int_equal(__kvm_memslots(kvm, 0)->used_slots, 0);
}

static void test_config(void **state)
{
	static const struct {
		enum kvm_profile profile;
		const char *name;
		int mmio_gen_bits;
	} profiles[] = {
		{ KVM_PROFILE_4_20, "4.20", 20 },
		{ KVM_PROFILE_5_1, "5.1", 19 },
		{ KVM_PROFILE_5_3, "5.3", 19 },
	};
	struct kvm_config cfg;
	enum kvm_profile parsed;

	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		kvm_config_init(&cfg, profiles[i].profile);
		assert_int_equal(cfg.profile, profiles[i].profile);
		assert_int_equal(cfg.mmio_gen_bits, profiles[i].mmio_gen_bits);
		assert_int_equal(cfg.maxphyaddr, DEFAULT_MAXPHYADDR);
		assert_int_equal(cfg.host_phys_bits, 46);
		assert_int_equal(cfg.bugs, 0);
		assert_string_equal(kvm_profile_name(profiles[i].profile), profiles[i].name);
		assert_int_equal(kvm_profile_parse(profiles[i].name, &parsed), 0);
		assert_int_equal(parsed, profiles[i].profile);
	}
	assert_int_equal(kvm_profile_parse("5.2", &parsed), -1);
	assert_int_equal(kvm_profile_parse("", &parsed), -1);
	assert_null(kvm_profile_name(KVM_PROFILE_COUNT));

	assert_int_equal(kvm_bug_parse("W1"), KVM_BUG_W1_SMAP_IGNORES_AC);
	assert_int_equal(kvm_bug_parse("w1"), KVM_BUG_W1_SMAP_IGNORES_AC);
	assert_int_equal(kvm_bug_parse("W2"), KVM_BUG_W2_PSE36_DROPPED);
	assert_int_equal(kvm_bug_parse("w3"), KVM_BUG_W3_NO_UPPER_ACCESSED);
	assert_int_equal(kvm_bug_parse("W4"), KVM_BUG_W4_NX_NOT_RESERVED);
	assert_int_equal(kvm_bug_parse("W5"), -1);
	assert_int_equal(kvm_bug_parse("b13"), KVM_BUG_B13_SINGLE_PT_ACCESS);
	assert_int_equal(kvm_bug_parse("B17"), KVM_BUG_B17_MOVE_KEEPS_METADATA);
	assert_int_equal(kvm_bug_parse("B99"), -1);
	assert_int_equal(kvm_bug_parse(""), -1);
	for (int bug = 0; bug < KVM_BUG_COUNT; bug++) {
		const struct kvm_bug_info *info = kvm_bug_info((enum kvm_bug_id)bug);

		assert_non_null(info);
		assert_int_equal(kvm_bug_parse(info->id), bug);
		/* Synthetic mutants say so; historical ones name their kernel commit. */
		if (info->id[0] == 'B')
			assert_null(strstr(info->origin, "synthetic"));
		else
			assert_string_equal(info->origin, "synthetic");
		assert_true(strlen(info->summary) > 10);
		assert_true(strlen(info->caught_by) > 5);
	}
	assert_null(kvm_bug_info(KVM_BUG_COUNT));
	assert_non_null(strstr(kvm_bug_info(KVM_BUG_W2_PSE36_DROPPED)->summary, "PSE-36"));

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	cfg.bugs |= 1ull << KVM_BUG_W4_NX_NOT_RESERVED;
	assert_true(kvm_bug(&cfg, KVM_BUG_W4_NX_NOT_RESERVED));
	assert_false(kvm_bug(&cfg, KVM_BUG_W1_SMAP_IGNORES_AC));
}

#define T51(fn) cmocka_unit_test_setup_teardown(fn, setup_k51, teardown)
#define T_PROFILE(fn, setup, tag) \
	{ .name = #fn " [" tag "]", .test_func = fn, .setup_func = setup, .teardown_func = teardown }
#define T_ALL(fn) \
	T_PROFILE(fn, setup_k420, "4.20"), T_PROFILE(fn, setup_k51, "5.1"), \
	T_PROFILE(fn, setup_k53, "5.3")

int main(void)
{
	const struct CMUnitTest validation[] = {
		T51(test_einval_private_slot_id),
		T51(test_einval_flags),
		T51(test_einval_unaligned_size),
		T51(test_einval_unaligned_gpa),
		T51(test_einval_unaligned_hva),
		T51(test_einval_inaccessible_hva),
		T51(test_einval_address_space),
		T51(test_einval_gpa_wrap),
		T51(test_einval_too_many_pages),
		T51(test_einval_modify_hva_npages_readonly),
		T51(test_einval_delete_empty_slot),
		T51(test_einval_wins_over_eexist),
		T51(test_eexist_same_address_space),
		T51(test_overlap_across_address_spaces),
		T51(test_move_overlap),
		T51(test_enomem),
	};
	const struct CMUnitTest generations[] = {
		T_ALL(test_initial_generation),
		T_ALL(test_generation_per_change),
		T_ALL(test_hooks_create),
		T_ALL(test_hooks_flags_only_and_none),
		T_ALL(test_hooks_delete),
		T_ALL(test_hooks_move),
		T_ALL(test_hooks_optional),
		T_ALL(test_jump_generation),
		T_ALL(test_jump_generation_skips_only_ignored_installs),
		cmocka_unit_test_setup_teardown(test_k420_generation_near_wrap, setup_k420, teardown),
	};
	const struct CMUnitTest metadata[] = {
		T51(test_disallow_lpage),
		T51(test_rmap_and_track_sizes),
		T51(test_dirty_bitmap_lifecycle),
		T51(test_flags_only_keeps_metadata),
		T51(test_move_gets_new_metadata),
	};
	const struct CMUnitTest lookups[] = {
		T51(test_gfn_to_memslot),
		T51(test_gfn_to_hva_prot),
		T51(test_gfn_to_pfn),
		T_ALL(test_random_updates),
	};
	const struct CMUnitTest vm[] = {
		T51(test_kvm_create_state),
		T51(test_kvm_reset),
		cmocka_unit_test(test_config),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("memslot validation", validation, NULL, NULL);
	failed += cmocka_run_group_tests_name("memslot generations", generations, NULL, NULL);
	failed += cmocka_run_group_tests_name("memslot metadata", metadata, NULL, NULL);
	failed += cmocka_run_group_tests_name("memslot lookups", lookups, NULL, NULL);
	failed += cmocka_run_group_tests_name("kvm", vm, NULL, NULL);
	return failed;
}
