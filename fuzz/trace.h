/* shadowfuzz trace: replay one program and show, op by op, what the reference and the model
 * did (docs/trace.md). */
#ifndef SHADOWFUZZ_FUZZ_TRACE_H
#define SHADOWFUZZ_FUZZ_TRACE_H

int cmd_trace(int argc, char **argv);

#endif
