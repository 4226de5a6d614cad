/* shadowfuzz smoke: random byte strings through the binary decoder and the executor, with
 * a fixed seed: the check that the unmodified model and the reference agree on programs
 * nobody wrote by hand. */
#ifndef SHADOWFUZZ_FUZZ_SMOKE_H
#define SHADOWFUZZ_FUZZ_SMOKE_H

int cmd_smoke(int argc, char **argv);

#endif
