/* libFuzzer glue for the structure-aware mutator (mutator.h): linked into a libFuzzer
 * target, these take over mutation and cross-over. One mutation in BYTE_LEVEL_ONE_IN
 * is still libFuzzer's own (LLVMFuzzerMutate), which keeps its byte changes and the
 * dictionary's tokens (and, in builds with comparison tracing such as OSS-Fuzz's, its
 * comparison-guided ones): those reach field values the op-level mutations only guess at. */
#include <stddef.h>
#include <stdint.h>

#include "mutator.h"

#define BYTE_LEVEL_ONE_IN 3

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
				 size_t size2, uint8_t *out, size_t max_out_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	if (seed % BYTE_LEVEL_ONE_IN == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	return program_mutate(data, size, max_size, seed);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
				 size_t size2, uint8_t *out, size_t max_out_size, unsigned int seed)
{
	return program_cross_over(data1, size1, data2, size2, out, max_out_size, seed);
}
