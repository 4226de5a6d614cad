/* shadowfuzz export: a finding as something to hand on. --c writes a standalone C
 * reproducer that links the project's libraries; --selftest a KVM-selftest-style program
 * that runs the scenario on a real kernel through /dev/kvm. The text program is always
 * written beside them. */
#ifndef SHADOWFUZZ_FUZZ_EXPORT_H
#define SHADOWFUZZ_FUZZ_EXPORT_H

#include <stdio.h>

#include "cli_common.h"
#include "program.h"

int cmd_export(int argc, char **argv);

/* Writes the C reproducer for prog under the model options of common. */
void export_c_reproducer(FILE *out, const struct program *prog, const struct common_options *common,
			 const char *source);
/* Writes the selftest for prog; returns 0, or -1 with the reason in err when the program
 * uses something a real VM cannot be asked for (fuzz/export_selftest.c says what). */
int export_selftest(FILE *out, const struct program *prog, const struct common_options *common,
		    const char *source, char *err, size_t errlen);

#endif
