/* Findings of a campaign: each fuzzer crash file is replayed on the model and the
 * reference, named by its divergence signature (the check that fired and the op kind it
 * fired on) and kept once per signature in DIR/<signature>/ with the input, its text
 * form, its minimised form (fuzz/minimize.h) and the divergence report. Later inputs with
 * a known signature are only counted (they stay in the engine's crash directory). Directories appear whole and are never
 * replaced, so an interrupted campaign never leaves half a finding. */
#ifndef SHADOWFUZZ_FUZZ_FINDINGS_H
#define SHADOWFUZZ_FUZZ_FINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor.h"

#define SIGNATURE_MAX 64
/* Signature of an engine crash whose replay shows no divergence (a sanitizer report, a
 * timeout or out-of-memory, or a harness error): the engine's log tells what it was. */
#define SIGNATURE_UNREPRODUCED "no-divergence-on-replay"

/* "translation-access": check name, '-', op kind name. */
void divergence_signature(const struct divergence *div, char *buf, size_t len);

struct finding_store;

/* dir must exist; signatures of findings already in it count as known (resumed campaign).
 * describe: the model options, as a command line says them, for the reports. */
struct finding_store *finding_store_open(const char *dir, const char *describe, char *err,
					 size_t errlen);
void finding_store_free(struct finding_store *store);

/* Prefix of the signature of a divergence that the baseline (the model without the
 * campaign's planted bugs) shows too: a finding of the unmodified model, not the bug's. */
#define SIGNATURE_UNPLANTED_PREFIX "unmodified-"

/* With planted bugs, every diverging input is replayed on baseline as well (not owned;
 * NULL: no attribution). */
void finding_store_set_baseline(struct finding_store *store, struct executor *baseline);

struct finding_result {
	bool is_new;
	/* The divergence needs the planted bugs: it diverges, and not on the baseline. */
	bool planted;
	char signature[SIGNATURE_MAX];
};

/* Replays input on ex and files it. source names where the input came from (for the
 * report). Returns 0, or -1 on an I/O or harness error (message in err). */
int finding_store_add(struct finding_store *store, struct executor *ex, const uint8_t *input,
		      size_t len, const char *source, struct finding_result *result, char *err,
		      size_t errlen);

unsigned finding_store_unique(const struct finding_store *store);
unsigned finding_store_inputs(const struct finding_store *store);
/* The i-th signature (in order of discovery) and how many inputs had it this run. */
const char *finding_store_signature(const struct finding_store *store, unsigned i,
				    unsigned *inputs);

#endif
