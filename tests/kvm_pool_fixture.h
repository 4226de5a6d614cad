/* A VM for core/ unit tests: one vCPU and a 64-page table pool in memslot 0 at gpa POOL
 * (host POOL_HVA), with helpers to read and write the pool as the guest's tables. */
#ifndef SHADOWFUZZ_TESTS_KVM_POOL_FIXTURE_H
#define SHADOWFUZZ_TESTS_KVM_POOL_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>

#include "host_memory.h"
#include "kvm_host.h"

#define POOL 0x100000ull
#define POOL_HVA 0x100000100000ull
#define T(n) (POOL + (uint64_t)(n) * 0x1000)

struct fixture {
	struct host_memory *host;
	struct kvm *kvm;
	struct kvm_vcpu *vcpu;
};

static inline struct fixture *fixture_new(const struct kvm_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = POOL, .memory_size = 64 * 0x1000, .userspace_addr = POOL_HVA,
	};

	assert_non_null(f);
	f->host = host_memory_new();
	f->kvm = kvm_create(cfg, f->host);
	assert_non_null(f->kvm);
	assert_int_equal(host_mmap(f->host, POOL_HVA, region.memory_size, 12), 0);
	assert_int_equal(kvm_set_memory_region(f->kvm, &region, NULL), 0);
	f->vcpu = &f->kvm->vcpus[0];
	return f;
}

static inline void fixture_free(struct fixture *f)
{
	kvm_destroy(f->kvm);
	host_memory_free(f->host);
	free(f);
}

static inline void put64(struct fixture *f, uint64_t gpa, uint64_t value)
{
	assert_int_equal(host_write(f->host, POOL_HVA + gpa - POOL, &value, 8), 0);
}

static inline uint64_t get64(struct fixture *f, uint64_t gpa)
{
	uint64_t value;

	assert_int_equal(host_read(f->host, POOL_HVA + gpa - POOL, &value, 8), 0);
	return value;
}

#endif
