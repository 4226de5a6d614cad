/* walk-conformance: the guest walker against the reference over the whole space of entry
 * flags (leaf and one upper level), access kinds, CPL and control bits, per paging mode —
 * the space kvm-unit-tests' access.c samples, enumerated exhaustively. */
#ifndef SHADOWFUZZ_FUZZ_WALK_CONFORMANCE_H
#define SHADOWFUZZ_FUZZ_WALK_CONFORMANCE_H

#include <stdint.h>
#include <stdio.h>

#include "../core/kvm_config.h"

enum conformance_mode { CONF_32, CONF_PSE, CONF_PAE, CONF_4LEVEL, CONF_5LEVEL, CONF_MODE_COUNT };

struct walk_conformance_options {
	unsigned mode_mask; /* bit per enum conformance_mode */
	uint64_t sample;    /* 0: every case; else about this many per mode, chosen by seed */
	uint64_t seed;
	unsigned max_reports; /* divergences printed in full per mode */
};

struct walk_conformance_result {
	uint64_t cases;
	uint64_t mismatches;
};

/* "32", "pse", "pae", "4", "5"; -1 if unknown. */
int conformance_mode_parse(const char *name);
const char *conformance_mode_name(enum conformance_mode mode);

/* Prints "mode M: N cases, K mismatches" per mode and a total to out. Returns 0, or -1 on a
 * harness failure (message in err). */
int walk_conformance_run(const struct kvm_config *cfg, const struct walk_conformance_options *opts,
			 FILE *out, struct walk_conformance_result *total, char *err, size_t errlen);

#endif
