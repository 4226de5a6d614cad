/* The MMU's own auditor: the structural invariants of spec §7 (1-6, 14) and write flooding
 * (§5.4), checked from the model's data structures after an op. What the guest can see is
 * the checker's job; this catches bookkeeping that is wrong before it becomes visible (a
 * leaked write-track count, an rmap that lost a spte, a parent link to a freed page), or
 * that no guest can see (a page kept shadowed after it flooded). */
#ifndef SHADOWFUZZ_CORE_MMU_AUDIT_H
#define SHADOWFUZZ_CORE_MMU_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "kvm_host.h"

/* True if every invariant holds; otherwise false with the first violation in msg. */
bool kvm_mmu_audit(struct kvm *kvm, char *msg, size_t len);

#endif
