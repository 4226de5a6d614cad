/* AFL++ glue for the structure-aware mutator (mutator.h), built as a shared library for
 * AFL_CUSTOM_MUTATOR_LIBRARY. No AFL++ headers are packaged, so the few declarations the
 * interface needs are written here: AFL++ passes its own state to init (unused, hence
 * void *), and the output buffer belongs to the mutator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mutator.h"
#include "program.h"

/* Each afl_custom_fuzz call stacks 1..MAX_STACK mutations, as AFL's own havoc stage does. */
#define MAX_STACK 4

struct afl_mutator {
	uint64_t state; /* xorshift64: seeds for program_mutate */
	uint8_t *out;
	size_t out_cap;
	char description[32];
};

void *afl_custom_init(void *afl, unsigned int seed);
size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf,
		       uint8_t *add_buf, size_t add_buf_size, size_t max_size);
const char *afl_custom_describe(void *data, size_t max_description_len);
void afl_custom_deinit(void *data);

static unsigned next_seed(struct afl_mutator *m)
{
	m->state ^= m->state << 13;
	m->state ^= m->state >> 7;
	m->state ^= m->state << 17;
	return (unsigned)(m->state >> 32);
}

void *afl_custom_init(void *afl, unsigned int seed)
{
	struct afl_mutator *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->state = 0x2545f4914f6cdd1dull ^ seed;
	m->out_cap = program_encoded_size_max();
	m->out = malloc(m->out_cap);
	if (!m->out) {
		free(m);
		return NULL;
	}
	return m;
}

size_t afl_custom_fuzz(void *data, uint8_t *buf, size_t buf_size, uint8_t **out_buf,
		       uint8_t *add_buf, size_t add_buf_size, size_t max_size)
{
	struct afl_mutator *m = data;
	size_t limit = max_size < m->out_cap ? max_size : m->out_cap, size;
	unsigned stack = 1 + next_seed(m) % MAX_STACK;

	/* Another queue entry to cross with, one time in four when AFL++ offers one. */
	if (add_buf && add_buf_size && next_seed(m) % 4 == 0) {
		size = program_cross_over(buf, buf_size, add_buf, add_buf_size, m->out, limit,
					  next_seed(m));
		strcpy(m->description, "shadowfuzz-cross-over");
	} else {
		/* Bytes past the limit are cut: the decoder reads a cut op as zero-padded. */
		size = buf_size < limit ? buf_size : limit;
		memcpy(m->out, buf, size);
		strcpy(m->description, "shadowfuzz-mutate");
	}
	for (unsigned i = 0; i < stack; i++)
		size = program_mutate(m->out, size, limit, next_seed(m));
	*out_buf = m->out;
	return size;
}

const char *afl_custom_describe(void *data, size_t max_description_len)
{
	struct afl_mutator *m = data;

	if (strlen(m->description) >= max_description_len)
		m->description[max_description_len ? max_description_len - 1 : 0] = '\0';
	return m->description;
}

void afl_custom_deinit(void *data)
{
	struct afl_mutator *m = data;

	free(m->out);
	free(m);
}
