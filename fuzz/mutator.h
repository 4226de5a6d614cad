/* Structure-aware mutation of binary programs, for any fuzzing engine. A mutation decodes
 * the bytes, changes the program at op level (insert, delete, duplicate, swap, or one
 * field tweaked towards values the shadow MMU cares about) and encodes it again. Outputs
 * are canonical: program_encode(program_decode(out)) == out, and never longer than the
 * maximum given. The same seed always gives the same output. Not reentrant: the functions
 * share static scratch programs, as one engine thread mutates at a time. */
#ifndef SHADOWFUZZ_FUZZ_MUTATOR_H
#define SHADOWFUZZ_FUZZ_MUTATOR_H

#include <stddef.h>
#include <stdint.h>

enum program_mutation {
	PM_INSERT,      /* a new op: random record, gva often taken from the program */
	PM_DELETE,      /* one op or a short run */
	PM_DUPLICATE,   /* an op or a short run copied elsewhere */
	PM_SWAP,        /* two ops trade places */
	PM_ENTRY_FLAGS, /* a pte value or map flags: P/W/U/A/D/PS/NX/PKEY/reserved bits, frame */
	PM_GVA,         /* a gva moved near one the program uses (page, 2M, 1G, canonical bit) */
	PM_MEMSLOT,     /* a slot's gpa/size by a page or large page, flags, id, host page */
	PM_GEN_JUMP,    /* a generation jump near the 2^18/2^19/2^20 wraps */
	PM_ACCESS,      /* access kind and CPL */
	PM_CONTROL,     /* control bits, mode, CR3 table, PKRU, SMM, page budget */
	PM_ALIAS,       /* a second entry to a table a pte links, with fewer rights, and an
			 * access through it: two guest paths to one table (B13's shape) */
	PM_UNSYNC,      /* an accessed gva's leaf entry rewritten in place, the gva used again,
			 * invalidated (INVLPG or MOV CR3) and used again: unsync pages */
	PM_VCPU,        /* another vCPU takes an access's paging setup and makes the access
			 * before it (and again later), or a vcpu op picks another vCPU */
	PM_BYTES,       /* a byte-level change of the encoding: the fallback */
	PM_COUNT
};

/* Mutates data[0, size) in place, writing at most max_size bytes; returns the new size.
 * Tries op-level mutations until one changes the program, then falls back to bytes. */
size_t program_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed);

/* Applies exactly one mutation of the given kind (if the program has no op it applies
 * to, the output is the canonical form of the input). For tests and experiments. */
size_t program_mutate_as(enum program_mutation kind, uint8_t *data, size_t size,
			 size_t max_size, unsigned seed);

/* Writes to out (at most max_out bytes) a program made of ops of a and of b: a run of b
 * spliced into a, or a's head followed by b's tail. Returns its size. */
size_t program_cross_over(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
			  uint8_t *out, size_t max_out, unsigned seed);

const char *program_mutation_name(enum program_mutation kind);

#endif
