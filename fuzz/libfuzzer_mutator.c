/* libFuzzer glue for the structure-aware mutator (mutator.h): linked into a libFuzzer
 * target, these replace libFuzzer's byte-level mutations and cross-over. */
#include <stddef.h>
#include <stdint.h>

#include "mutator.h"

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
				 size_t size2, uint8_t *out, size_t max_out_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	return program_mutate(data, size, max_size, seed);
}

size_t LLVMFuzzerCustomCrossOver(const uint8_t *data1, size_t size1, const uint8_t *data2,
				 size_t size2, uint8_t *out, size_t max_out_size, unsigned int seed)
{
	return program_cross_over(data1, size1, data2, size2, out, max_out_size, seed);
}
