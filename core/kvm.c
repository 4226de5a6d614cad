/* VM lifetime (kvm_create_vm / kvm_destroy_vm) and the per-input reset of the model. */
#include "kvm_host.h"
#include "mmu.h"

#include <stdlib.h>
#include <string.h>

/* The vCPU as after INIT with paging off (kvm_vcpu_reset): only CR0.ET is set. The MMU
 * context stays zeroed until kvm_init_mmu computes it. */
static void kvm_vcpu_reset(struct kvm *kvm, struct kvm_vcpu *vcpu, int vcpu_id)
{
	vcpu->kvm = kvm;
	vcpu->vcpu_id = vcpu_id;
	vcpu->arch.cr0 = X86_CR0_ET;
}

struct kvm *kvm_create(const struct kvm_config *cfg, struct host_memory *host)
{
	struct kvm *kvm = calloc(1, sizeof(*kvm));

	if (!kvm)
		return NULL;
	kvm->host = host;
	kvm->config = *cfg;
	kvm_mmu_install_memslot_hooks(kvm);
	if (kvm_mmu_create(kvm) || kvm_reset(kvm, cfg)) {
		kvm_destroy(kvm);
		return NULL;
	}
	return kvm;
}

void kvm_destroy(struct kvm *kvm)
{
	if (!kvm)
		return;
	kvm_memslots_destroy(kvm);
	kvm_mmu_destroy(kvm);
	free(kvm);
}

struct kvm_vcpu *kvm_create_vcpu(struct kvm *kvm, int vcpu_id)
{
	struct kvm_vcpu *vcpu;

	if (vcpu_id < 0 || vcpu_id >= KVM_MAX_VCPUS || kvm->nr_vcpus == KVM_MAX_VCPUS)
		return NULL;
	for (int i = 0; i < kvm->nr_vcpus; i++)
		if (kvm->vcpus[i].vcpu_id == vcpu_id)
			return NULL;
	vcpu = &kvm->vcpus[kvm->nr_vcpus++];
	memset(vcpu, 0, sizeof(*vcpu));
	kvm_vcpu_reset(kvm, vcpu, vcpu_id);
	init_vcpu_mmu(kvm, vcpu);
	return vcpu;
}

/* Keeps the host and the MMU's arch_ops; everything else starts over for cfg's profile. */
int kvm_reset(struct kvm *kvm, const struct kvm_config *cfg)
{
	int r;

	kvm->config = *cfg;
	r = kvm_memslots_init(kvm);
	if (r)
		return r;
	memset(kvm->vcpus, 0, sizeof(kvm->vcpus));
	kvm_vcpu_reset(kvm, &kvm->vcpus[0], 0);
	kvm->nr_vcpus = 1;
	memset(&kvm->stat, 0, sizeof(kvm->stat));
	kvm_mmu_reset_vm(kvm);
	return 0;
}
