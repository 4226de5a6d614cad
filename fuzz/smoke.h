/* shadowfuzz smoke: random byte strings through the binary decoder and the executor, with
 * a fixed seed: the check that the unmodified model and the reference agree on programs
 * nobody wrote by hand. */
#ifndef SHADOWFUZZ_FUZZ_SMOKE_H
#define SHADOWFUZZ_FUZZ_SMOKE_H

#include <stddef.h>
#include <stdint.h>

int cmd_smoke(int argc, char **argv);

/* One random input of at most max_len bytes (at least the pool memslot record) from the
 * xorshift state, as smoke generates them; bench uses the same inputs. */
void smoke_random_input(uint64_t *state, uint8_t *buf, size_t max_len, size_t *len);

#endif
