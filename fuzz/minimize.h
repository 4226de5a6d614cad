/* Minimising a diverging program while it keeps its divergence signature (the check that
 * fired and the op kind it fired on, fuzz/findings.h): op-level delta debugging (ddmin),
 * then value simplification (fewer flag bits, plainer accesses and memslots), then a
 * byte-level pass over the binary form. Every candidate is normalised through the binary
 * form (decode clamps into the program rules), so each one is a valid program. */
#ifndef SHADOWFUZZ_FUZZ_MINIMIZE_H
#define SHADOWFUZZ_FUZZ_MINIMIZE_H

#include <stddef.h>

#include "executor.h"
#include "findings.h"
#include "program.h"

struct minimize_result {
	char signature[SIGNATURE_MAX];
	unsigned ops_before, ops_after;
	size_t bytes_before, bytes_after;
	unsigned runs;  /* programs executed */
	bool timed_out; /* the budget ended a pass early: the result is smaller, not minimal */
};

/* Minimises prog in place within budget_s seconds. Returns 0, 1 if prog does not diverge
 * (nothing to keep), -1 on a harness error (executor_error). */
int program_minimize(struct executor *ex, struct program *prog, double budget_s,
		     struct minimize_result *result);

/* The '#' header a minimised text program starts with, so it can join corpus/regressions:
 * its signature, the model options it diverges under ("--profile 5.1 --bug B13"), what it
 * was minimised from, and the date. */
void minimized_header(char *buf, size_t len, const struct minimize_result *result,
		      const char *model, const char *source);

int cmd_minimize(int argc, char **argv);

#endif
