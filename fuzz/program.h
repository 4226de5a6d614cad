/* The program language: what a fuzz input or a seed file asks the guest and the VMM to do.
 * Two forms of the same thing: a binary encoding in which every byte string decodes to a
 * valid, bounded program (for fuzzers), and a text form, one op a line, for people. */
#ifndef SHADOWFUZZ_FUZZ_PROGRAM_H
#define SHADOWFUZZ_FUZZ_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/x86.h"
#include "../oracle/harness_layout.h"

#define PROG_MAX_OPS 256
/* Memslots a program may create: at most 1 GiB each, below 2^40. */
#define PROG_MAX_SLOT_SIZE (1ull << 30)
#define PROG_GPA_LIMIT (1ull << 40)
/* Slot ids a program may pass: 0..508 are user slots, the rest reach the EINVAL paths. */
#define PROG_MAX_SLOT_ID 1023
/* The user slot the harness's guest physmap lives in (fuzz/guest_physmap.h): programs
 * never name it. */
#define PROG_HARNESS_SLOT_ID 508
/* Every memslot's host range [hva, hva + size) stays below this. */
#define PROG_HVA_LIMIT 0x00007ffffffff000ull
/* The longest generation jump. The MMIO generation in sptes (19 bits of a generation that
 * moves 2 per install in K51+, 20 bits moving 4 in K420) wraps every 2^18 installs, so
 * longer jumps reach nothing new. */
#define PROG_MAX_GEN_JUMP (1u << 20)
/* vCPUs a program may run ops on (the model's KVM_MAX_VCPUS). */
#define PROG_MAX_VCPUS 4

enum op_kind {
	OP_MODE,          /* mode none|32|pae|4level|5level */
	OP_CONTROL,       /* control wp=1 smep=0 ...: sets/clears CR0/CR4/EFER/RFLAGS bits */
	OP_PKRU,          /* pkru 0x0000000c */
	OP_CR3,           /* cr3 T3: MOV CR3 to table-pool page T3 */
	OP_MEMSLOT_SET,   /* memslot set as=0 slot=1 gpa=.. size=.. hva=.. flags=log|ro hpage=2M */
	OP_MEMSLOT_DELETE, /* memslot delete as=0 slot=1 */
	OP_MEMSLOT_MOVE,  /* memslot move as=0 slot=1 gpa=.. */
	OP_MEMSLOT_FLAGS, /* memslot flags as=0 slot=1 flags=log */
	OP_PTE,           /* pte T1[5] = 0x200067: write one guest paging entry */
	OP_MAP,           /* map 0x40000000 -> 0x200000 size=4K leaf=P|W|U|A|D upper=P|W|U */
	OP_ACCESS,        /* read|write|fetch 0x40000123 [user] */
	OP_INVLPG,        /* invlpg 0x40000000 */
	OP_GEN_JUMP,      /* generation as=0 jump=524288: that many flag-neutral memslot updates */
	OP_SMM,           /* smm enter|leave: the vCPU's memslots become address space 1|0 */
	OP_DIRTY_LOG,     /* dirty_log as=0 slot=1: KVM_GET_DIRTY_LOG (uses memslot.as_id, id) */
	OP_MMU_PAGES,     /* mmu_pages 64: KVM_SET_NR_MMU_PAGES */
	OP_VCPU,          /* vcpu 1: later ops run on vCPU 1 (KVM_CREATE_VCPU on its first use) */
	OP_KIND_COUNT
};

/* OP_CONTROL bits (mask says which change, value what they become). */
enum control_bit {
	CTRL_CR0_WP = 1 << 0,
	CTRL_CR4_PSE = 1 << 1,
	CTRL_CR4_SMEP = 1 << 2,
	CTRL_CR4_SMAP = 1 << 3,
	CTRL_CR4_PKE = 1 << 4,
	CTRL_EFER_NXE = 1 << 5,
	CTRL_RFLAGS_AC = 1 << 6,
	CTRL_ALL = (1 << 7) - 1
};

enum access_kind { ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH };

/* Page sizes of OP_MAP, as the level of the leaf: 1 = 4K, 2 = 2M (4M in 32-bit mode),
 * 3 = 1G. */
enum { MAP_LEVEL_4K = 1, MAP_LEVEL_2M = 2, MAP_LEVEL_1G = 3 };

struct op {
	uint8_t kind; /* enum op_kind */
	union {
		struct {
			uint8_t mode; /* enum paging_mode */
		} mode;
		struct {
			uint8_t mask, value; /* enum control_bit */
		} control;
		struct {
			uint32_t value;
		} pkru;
		struct {
			uint8_t table; /* < TABLE_POOL_PAGES */
		} cr3;
		struct {
			uint8_t as_id;   /* 0 or 1 */
			uint16_t id;     /* slot id as passed (may be invalid: EINVAL path) */
			uint32_t flags;  /* KVM_MEM_* (may hold unknown bits: EINVAL path) */
			uint64_t gpa;    /* set, move */
			uint64_t size;   /* set */
			uint64_t hva;    /* set */
			uint8_t host_page_shift; /* set: 12, 21 or 30 */
		} memslot;
		struct {
			uint8_t table;  /* < TABLE_POOL_PAGES */
			uint16_t index; /* < 512 (< 1024 for 4-byte entries); root entry 0 never */
			uint64_t value;
		} pte;
		struct {
			uint64_t gva;
			uint64_t gpa;
			uint8_t level;        /* MAP_LEVEL_* */
			uint64_t leaf_flags;  /* bits OR-ed into the leaf (besides the frame) */
			uint64_t upper_flags; /* bits of entries created for missing tables */
		} map;
		struct {
			uint8_t kind; /* enum access_kind */
			uint8_t cpl;  /* 0 or 3 */
			uint64_t gva;
		} access;
		struct {
			uint64_t gva;
		} invlpg;
		struct {
			uint8_t as_id;  /* 0 or 1 */
			uint32_t count; /* 1..PROG_MAX_GEN_JUMP */
		} gen_jump;
		struct {
			uint8_t enter; /* 1 enter SMM, 0 leave it */
		} smm;
		struct {
			uint32_t count; /* any value: below 64 is KVM's -EINVAL path */
		} mmu_pages;
		struct {
			uint8_t id; /* < PROG_MAX_VCPUS */
		} vcpu;
	};
};

struct program {
	uint32_t n_ops;
	struct op ops[PROG_MAX_OPS];
};

/* Rules every op of a program follows besides the ranges noted in struct op. They depend
 * on the vCPU the op runs on (the last vcpu op's, vCPU 0 before any) and on that vCPU's
 * paging mode and CR3 table before the op (each vCPU starts in PAGING_NONE with CR3 = T0,
 * outside SMM; struct prog_state follows them); program_decode produces only such ops and
 * program_parse accepts only them. Gvas of maps, accesses and invlpgs satisfy
 * gva_fits_mode and not gva_is_harness_reserved (oracle/harness_layout.h); in 4/5-level
 * mode an access or invlpg gva may be non-canonical (an access #GPs, INVLPG does
 * nothing). A pte write never targets index HARNESS_ROOT_INDEX of the CR3 table, and its
 * value fits the entry. A map's gva and gpa are aligned to its page size, its gpa lies in
 * [HARNESS_GPA_LIMIT, PROG_GPA_LIMIT) (below 4 GiB for a 4K page of 4-byte entries). A
 * memslot's gpa (set, move) lies in [HARNESS_GPA_LIMIT, PROG_GPA_LIMIT), and a set has
 * gpa + size <= PROG_GPA_LIMIT, size <= PROG_MAX_SLOT_SIZE and hva + size <
 * PROG_HVA_LIMIT; fields an op kind does not use are zero. SMM changes neither the mode
 * nor the CR3 table the rules follow, and an smm op is valid anywhere: entering SMM while
 * in it, or leaving it while outside, changes nothing. */
struct prog_vcpu_state {
	uint8_t mode; /* enum paging_mode */
	uint8_t cr3;  /* pool table */
};

struct prog_state {
	unsigned vcpu;   /* the vCPU the next op runs on */
	uint8_t created; /* bit n: vCPU n exists (vCPU 0 always; others from their first use) */
	struct prog_vcpu_state vcpus[PROG_MAX_VCPUS];
};

/* Before a program's first op: vCPU 0, every vCPU in PAGING_NONE with CR3 = T0. */
static inline void prog_state_init(struct prog_state *s)
{
	*s = (struct prog_state){ .vcpu = 0, .created = 1 };
}

static inline void prog_state_after(struct prog_state *s, const struct op *op)
{
	if (op->kind == OP_VCPU) {
		s->vcpu = op->vcpu.id % PROG_MAX_VCPUS;
		s->created |= (uint8_t)(1u << s->vcpu);
	} else if (op->kind == OP_MODE)
		s->vcpus[s->vcpu].mode = op->mode.mode;
	else if (op->kind == OP_CR3)
		s->vcpus[s->vcpu].cr3 = op->cr3.table;
}

static inline enum paging_mode prog_state_mode(const struct prog_state *s)
{
	return (enum paging_mode)s->vcpus[s->vcpu].mode;
}

static inline unsigned prog_state_cr3(const struct prog_state *s) { return s->vcpus[s->vcpu].cr3; }

/* The CR3 tables of the vCPUs created so far, bit n for Tn (prog_next_pool_table). */
static inline uint64_t prog_state_roots(const struct prog_state *s)
{
	uint64_t roots = 0;

	for (unsigned v = 0; v < PROG_MAX_VCPUS; v++)
		if ((s->created >> v) & 1)
			roots |= 1ull << s->vcpus[v].cr3;
	return roots;
}

/* The mode whose table format and gva rules a map op follows: the current one, or 4-level
 * while paging is off (a guest builds its tables before it enables paging). */
static inline enum paging_mode prog_map_mode(enum paging_mode mode)
{
	return mode == PAGING_NONE ? PAGING_4LEVEL : mode;
}

static inline bool prog_entries_are_4_bytes(enum paging_mode mode) { return mode == PAGING_32; }

static inline unsigned prog_pte_index_limit(enum paging_mode mode)
{
	return prog_entries_are_4_bytes(mode) ? 1024 : 512;
}

/* The pool table a map op takes for a missing level: round robin over T1..T63 from
 * *next, never a root in force (roots: bit n set for Tn, the CR3 tables of the vCPUs
 * created so far). The executor allocates with it, and the mutator replays it to know
 * which tables a program's walks reach. */
static inline unsigned prog_next_pool_table(unsigned *next, uint64_t roots)
{
	unsigned table;

	do {
		table = *next;
		*next = table + 1 < TABLE_POOL_PAGES ? table + 1 : 1;
	} while ((roots >> table) & 1);
	return table;
}

/* Bits a map's upper_flags may hold: all but a table entry's address bits. */
static inline uint64_t prog_map_upper_flag_bits(enum paging_mode mode)
{
	return prog_entries_are_4_bytes(mode) ? 0xfffull : 0xfff0000000000fffull;
}

/* Bits a map's leaf_flags may hold: all but the address bits of a leaf of that level. A
 * large leaf's frame field starts with PAT and reserved bits (for a 4M leaf, PAT and bit
 * 21: bits 13..20 carry gpa bits 32..39). */
static inline uint64_t prog_map_leaf_flag_bits(enum paging_mode mode, unsigned level)
{
	if (prog_entries_are_4_bytes(mode))
		return level == MAP_LEVEL_2M ? 0x201fffull : 0xfffull;
	if (level == MAP_LEVEL_2M)
		return 0xfff00000001fffffull;
	return level == MAP_LEVEL_1G ? 0xfff000003fffffffull : 0xfff0000000000fffull;
}

/* Bytes a map of this level covers in this mode; 0 if the mode has no such page. */
static inline uint64_t prog_map_page_size(enum paging_mode mode, unsigned level)
{
	switch (level) {
	case MAP_LEVEL_4K:
		return 1ull << 12;
	case MAP_LEVEL_2M:
		return mode == PAGING_32 ? 1ull << 22 : 1ull << 21;
	case MAP_LEVEL_1G:
		return mode >= PAGING_4LEVEL ? 1ull << 30 : 0;
	default:
		return 0;
	}
}

/* Binary form. Decoding never fails: any bytes give a valid program of at most
 * PROG_MAX_OPS ops (trailing bytes that do not fill an op are read as zeros). Encoding
 * writes at most program_encoded_size_max() bytes and returns the length;
 * program_decode(program_encode(p)) == p for every program that program_decode returns. */
void program_decode(const uint8_t *data, size_t len, struct program *out);
size_t program_encode(const struct program *prog, uint8_t *buf, size_t cap);
size_t program_encoded_size_max(void);
/* How many bytes at the end of data form an op record cut short (0: data ends on a record
 * boundary, or after the last op a program can hold). */
size_t program_partial_tail(const uint8_t *data, size_t len);
/* The host address a memslot of this id and gpa gets unless a program says otherwise: a
 * 1 GiB-aligned area per slot id plus gpa mod 1 GiB, so gpa and hva are congruent and
 * host large pages can back guest large pages. */
uint64_t prog_default_hva(unsigned slot_id, uint64_t gpa);

/* Text form. program_parse reads a whole text; on error it returns -1 and writes
 * "name:line: message" into err. program_print writes the canonical text, which parses
 * back to the same program. */
int program_parse(const char *text, const char *name, struct program *out, char *err,
		  size_t errlen);
void program_print(const struct program *prog, FILE *out);
/* One op in text form, no newline; returns snprintf's count. A map of level 2 reads "4M"
 * when mode is PAGING_32 and "2M" otherwise; op_format always writes "2M". */
int op_format_in_mode(const struct op *op, enum paging_mode mode, char *buf, size_t len);
int op_format(const struct op *op, char *buf, size_t len);

/* Loads a file in either form: text for *.sfp (a parse error is reported as
 * "path:line: message"), binary for *.bin and fuzzer findings (crash-*, timeout-*, oom-*,
 * leak-*, slow-unit-*, id:*; an empty file is an empty program), and for other names text
 * if every byte is printable ASCII or whitespace, binary if not. Returns 0, or -1 with a
 * message in err. */
int program_load_file(const char *path, struct program *out, char *err, size_t errlen);
/* A program file's name without its directory and extension ("corpus/x.sfp" -> "x"). */
void program_file_stem(const char *path, char *buf, size_t len);
/* Writes the binary form of the program in file (either form) to DIR/STEM.bin; returns
 * 0 when written, 1 when that file exists (kept), -1 on an error (message in err). */
int program_encode_into(const char *file, const char *dir, char *err, size_t errlen);
/* Writes prog to a new file: text for *.sfp (header, if given, first: '#' comment lines),
 * binary otherwise. Never replaces a file: returns 0 when written, 1 when path exists, -1
 * on an error (message in err). */
int program_save_new(const char *path, const struct program *prog, const char *header,
		     char *err, size_t errlen);

/* Field-by-field equality of the fields an op kind uses. */
bool op_equal(const struct op *a, const struct op *b);

const char *op_kind_name(enum op_kind kind);
const char *paging_mode_name(enum paging_mode mode);

#endif
