/* The Unicorn reference engine (DESIGN §4; research/unicorn-oracle.md).
 *
 * Each check restores a CPL0 snapshot of the configuration, runs a stub that executes one
 * real 1-byte access at the gva, and reads the outcome from Unicorn's hooks. Unicorn
 * 2.0.1 never touches the gpa of an access (issues #1953, #947: after a successful walk it
 * maps gva -> "physical" gva), so the gpa is worked out from the paging entries the walk
 * read. To see those reads, everything from MMIO_BASE up is one MMIO region: 4-byte
 * traffic is the walk (and its A/D write-backs), served from ref_memory and traced;
 * 1-byte traffic is the test access itself, which lands at the gva's number.
 *
 * Guest-physical layout: Unicorn RAM [0, MMIO_BASE) holds the stubs, the GDT and the
 * stack; the engine's own paging structures sit in the MMIO window [HARNESS_TABLES_GPA,
 * HARNESS_WINDOW_END) and are served from the engine, never from ref_memory. They map
 * gva [0, 2 MiB) and hang off entry HARNESS_ROOT_INDEX of the program's root, which the
 * read callback injects. */
#include "reference.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unicorn/unicorn.h>

#include "harness_layout.h"

#define MMIO_BASE 0x10000ull
#define KERNEL_STUB_GPA 0x1000ull
#define USER_STUB_GPA 0x2000ull
/* Each stub gets a 64-byte slot of its stub page. */
#define STUB_SLOT 0x40ull
#define GDT_GPA 0x3000ull
#define STACK_TOP 0x8000ull
/* IRET needs a user stack pointer; the user stubs never push. */
#define USER_STACK_TOP (USER_STUB_GPA + 0xff0)
/* Gva pages [1, HARNESS_MAPPED_PAGES) are mapped 1:1; every other page below 2 MiB is
 * not present. */
#define HARNESS_MAPPED_PAGES (STACK_TOP >> PAGE_SHIFT)
#define HARNESS_TABLES_GPA MMIO_BASE
#define HARNESS_WINDOW_END 0x20000ull
/* A not-present harness page: the engine's self-test faults on it. */
#define SELF_TEST_GVA 0x100000ull

/* Unicorn 2.0.1 looks up `until` - 1 after every run to drop the exit's translated
 * block, and that lookup is a real page walk at the current CPL that can fault and
 * overwrite CR2/error_code. Runs therefore end at an int3, CR2 and the error code are
 * read inside the interrupt hook, tracing stops at the end of the access, and `until`
 * is an address whose lookup reads nothing of the program's: non-canonical in 64-bit
 * (it fails before any read), a not-present harness page in 32-bit. It never changes,
 * because exits are compiled into translated blocks. */
#define UNTIL_64 0x8000000000000000ull
#define UNTIL_32 0x1ff000ull
/* Stubs run at most 8 instructions; the bound stops a wedged run. */
#define RUN_INSN_LIMIT 64

#define KERNEL_CR0 (X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE)
#define EFLAGS_FIXED 0x2ull
#define INT3_VECTOR 3

/* GDT selectors of the user segments (RPL 3); the kernel runs on Unicorn's reset ones. */
#define USER_CODE32_SEL 0x1b
#define USER_DATA_SEL 0x23
#define USER_CODE64_SEL 0x2b

#define SNAPSHOT_SLOTS 512u
#define SNAPSHOT_LIMIT 256u

/* A successful fetch check leaves a throwaway translated block (~200 bytes) in Unicorn's
 * 1 GiB code buffer: QEMU 5.0 translates a one-instruction block for a pc outside RAM
 * and never reclaims its space until the buffer is full, and flushing it (automatically,
 * or with uc_ctl_flush_tlb) touches the whole buffer, so each engine would end up with
 * 1 GiB resident. Replacing the Unicorn instance (~0.3 ms) after this many such blocks
 * keeps the growth to a few MiB. */
#define FETCH_BLOCKS_PER_INSTANCE 16384u

/* Offsets into QEMU 5.0's CPUX86State around the fields found by value at run time:
 * error_code and exception_is_int (4 bytes each) and exception_next_eip (8) precede
 * dr[0]; dr[8] and four breakpoint pointers follow it before old_exception; cr[5],
 * a20_mask (padded), bnd_regs[4], bndcs_regs and msr_bndcfgs precede efer. Each is
 * verified after it is derived. */
#define ERROR_CODE_BEFORE_DR0 16u
#define OLD_EXCEPTION_AFTER_DR0 96u
#define CR0_BEFORE_CR2 16u
#define EFER_AFTER_CR0 136u

enum stub {
	STUB_SET_CONTROL,
	STUB_WRITE_PKRU,
	STUB_KERNEL_READ,
	STUB_KERNEL_WRITE,
	STUB_KERNEL_FETCH,
	STUB_ENTER_USER,
	STUB_USER_READ,
	STUB_USER_WRITE,
	STUB_USER_FETCH,
	STUB_COUNT
};

struct piece {
	const uint8_t *start, *end;
};

#define PIECE(name)                                                                                \
	extern const uint8_t name[], name##_end[];
PIECE(sf_guest64_set_control)
PIECE(sf_guest64_write_pkru)
PIECE(sf_guest64_flush)
PIECE(sf_guest64_read)
PIECE(sf_guest64_write)
PIECE(sf_guest64_fetch)
PIECE(sf_guest64_enter_user)
PIECE(sf_guest64_stop)
PIECE(sf_guest32_set_control)
PIECE(sf_guest32_flush)
PIECE(sf_guest32_read)
PIECE(sf_guest32_write)
PIECE(sf_guest32_fetch)
PIECE(sf_guest32_enter_user)
PIECE(sf_guest32_stop)
#undef PIECE

#define SPAN(name) { name, name##_end }
struct guest_pieces {
	struct piece set_control, write_pkru, flush, access[3], enter_user, stop;
};

static const struct guest_pieces pieces64 = {
	.set_control = SPAN(sf_guest64_set_control),
	.write_pkru = SPAN(sf_guest64_write_pkru),
	.flush = SPAN(sf_guest64_flush),
	.access = { SPAN(sf_guest64_read), SPAN(sf_guest64_write), SPAN(sf_guest64_fetch) },
	.enter_user = SPAN(sf_guest64_enter_user),
	.stop = SPAN(sf_guest64_stop),
};

static const struct guest_pieces pieces32 = {
	.set_control = SPAN(sf_guest32_set_control),
	.flush = SPAN(sf_guest32_flush),
	.access = { SPAN(sf_guest32_read), SPAN(sf_guest32_write), SPAN(sf_guest32_fetch) },
	.enter_user = SPAN(sf_guest32_enter_user),
	.stop = SPAN(sf_guest32_stop),
};
#undef SPAN

enum reg_role { REG_A, REG_B, REG_C, REG_DI, REG_SI, REG_BP, REG_SP, REG_R8, REG_R9, REG_FLAGS };

static const int regs64[] = {
	[REG_A] = UC_X86_REG_RAX,   [REG_B] = UC_X86_REG_RBX,	[REG_C] = UC_X86_REG_RCX,
	[REG_DI] = UC_X86_REG_RDI,  [REG_SI] = UC_X86_REG_RSI,	[REG_BP] = UC_X86_REG_RBP,
	[REG_SP] = UC_X86_REG_RSP,  [REG_R8] = UC_X86_REG_R8,	[REG_R9] = UC_X86_REG_R9,
	[REG_FLAGS] = UC_X86_REG_RFLAGS,
};

static const int regs32[] = {
	[REG_A] = UC_X86_REG_EAX,   [REG_B] = UC_X86_REG_EBX,	[REG_C] = UC_X86_REG_ECX,
	[REG_DI] = UC_X86_REG_EDI,  [REG_SI] = UC_X86_REG_ESI,	[REG_BP] = UC_X86_REG_EBP,
	[REG_SP] = UC_X86_REG_ESP,  [REG_R8] = UC_X86_REG_INVALID, [REG_R9] = UC_X86_REG_INVALID,
	[REG_FLAGS] = UC_X86_REG_EFLAGS,
};

/* Everything about a configuration that the snapshot fixes; bits with no effect in the
 * engine's mode are cleared so equivalent states share one snapshot. */
struct snapshot_key {
	uint64_t root;
	uint32_t pkru;
	uint32_t flags;
};

enum key_flag {
	KEY_WP = 1 << 0,
	KEY_PSE = 1 << 1,
	KEY_SMEP = 1 << 2,
	KEY_SMAP = 1 << 3,
	KEY_AC = 1 << 4,
	KEY_NXE = 1 << 5,
	KEY_PKE = 1 << 6,
};

struct snapshot_slot {
	struct snapshot_key key;
	uc_context *ctx; /* NULL: empty */
};

/* The walk of the gva under test, as its entry reads arrive. */
struct walk_state {
	bool tracing;
	gpa_t root_entry; /* where the test gva's walk starts */
	bool expecting;
	gpa_t expected;	     /* next entry of the walk in progress */
	bool from_memory[PT_MAX_FULL_LEVELS]; /* per traced entry: not a PDPTE register */
	bool have_cached;
	gpa_t cached_gpa; /* 8-byte entry whose low half was just served */
	uint64_t cached_value;
};

/* What a run showed through the hooks. */
struct run_observation {
	int vector; /* -1: no exception */
	uint32_t error_code;
	uint64_t cr2;
	bool access_seen;
	gpa_t access_addr;
	bool fetch_seen;
	uint64_t fetch_addr;
	bool anomaly; /* message in engine->error */
};

struct ad_write {
	gpa_t gpa;
	uint32_t old_value, new_value;
};

struct ref_engine {
	enum paging_mode mode;
	struct ref_memory *mem;
	uint8_t *ram; /* the image of Unicorn RAM: stubs, GDT, stack */
	const struct guest_pieces *pieces;
	const int *regs;
	bool long_mode;
	int levels;		/* 0 for PAGING_NONE */
	unsigned entry_size;
	uint64_t until;
	gva_t stub_gva[STUB_COUNT];
	gva_t insn_gva[2][3]; /* [user][kind]: the access instruction */

	_Alignas(8) uint8_t harness_tables[PT_MAX_FULL_LEVELS][PAGE_SIZE];

	/* The Unicorn instance, replaced now and then (FETCH_BLOCKS_PER_INSTANCE). */
	uc_engine *uc;
	size_t off_error_code, off_old_exception, off_efer;
	uc_context *base, *scratch;
	struct snapshot_slot snapshots[SNAPSHOT_SLOTS];
	unsigned n_snapshots;
	unsigned fetch_blocks;

	/* The configuration of the current run. */
	gpa_t root;
	bool pse;
	bool nxe;
	int as_id; /* address space of the check in progress */
	uint64_t busy_ns; /* time spent in ref_check (benchmarks) */
	uint64_t pdptrs[4];

	/* The current check. */
	gva_t gva;
	struct ref_result *out;
	struct walk_state walk;
	struct run_observation obs;
	struct ad_write ad_log[REF_MAX_AD_WRITES];
	int n_ad;

	char error[256];
};

static int __attribute__((format(printf, 2, 3)))
fail(struct ref_engine *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->error, sizeof(e->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* From a hook: keep the first complaint, the run is void. */
static void __attribute__((format(printf, 2, 3)))
note_anomaly(struct ref_engine *e, const char *fmt, ...)
{
	va_list ap;

	if (e->obs.anomaly)
		return;
	e->obs.anomaly = true;
	va_start(ap, fmt);
	vsnprintf(e->error, sizeof(e->error), fmt, ap);
	va_end(ap);
}

static int uc_fail(struct ref_engine *e, const char *what, uc_err err)
{
	return fail(e, "%s: %s", what, uc_strerror(err));
}

static int write_reg(struct ref_engine *e, enum reg_role role, uint64_t value)
{
	uc_err err = uc_reg_write(e->uc, e->regs[role], &value);

	return err ? uc_fail(e, "uc_reg_write", err) : 0;
}

static uint64_t read_reg(struct ref_engine *e, int reg)
{
	uint64_t value = 0;

	uc_reg_read(e->uc, reg, &value);
	return e->long_mode ? value : (uint32_t)value;
}

static int32_t context_int(uc_context *ctx, size_t offset)
{
	int32_t v;

	memcpy(&v, (uint8_t *)ctx + offset, sizeof(v));
	return v;
}

/* ---- paging-entry arithmetic, for the engine's mode ---- */

static uint64_t all_ones_entry(const struct ref_engine *e)
{
	return e->entry_size == 8 ? ~0ull : 0xffffffffull;
}

static gpa_t table_address(const struct ref_engine *e, uint64_t entry)
{
	return entry & (e->entry_size == 8 ? PT64_BASE_ADDR_MASK : PT32_BASE_ADDR_MASK);
}

static unsigned entry_index(const struct ref_engine *e, gva_t gva, int level)
{
	if (e->entry_size == 4)
		return (gva >> (PAGE_SHIFT + 10 * (level - 1))) & 0x3ff;
	if (e->mode == PAGING_PAE && level == PT32E_ROOT_LEVEL)
		return (gva >> 30) & 3;
	return (gva >> (PAGE_SHIFT + 9 * (level - 1))) & 0x1ff;
}

/* Whether the walk goes on to a next table after this entry (SDM vol. 3 §4.3-4.5). */
static bool points_to_table(const struct ref_engine *e, int level, uint64_t entry)
{
	if (!(entry & PT_PRESENT_MASK) || level == PT_PAGE_TABLE_LEVEL)
		return false;
	if (!(entry & PT_PAGE_SIZE_MASK))
		return true;
	switch (e->mode) {
	case PAGING_32:
		return !e->pse; /* PS is ignored without CR4.PSE */
	case PAGING_PAE:
		return level == PT32E_ROOT_LEVEL; /* a PDPTE has no PS bit */
	default:
		return false; /* a 2M/1G leaf, or PS in a PML4E/PML5E (reserved: faults) */
	}
}

static int level_of_depth(const struct ref_engine *e, int depth)
{
	return e->levels - depth;
}

/* ---- MMIO: the walk trace, the harness's tables and the test access ---- */

static uint64_t load_entry(const uint8_t *table, gpa_t gpa, unsigned size)
{
	uint64_t value = 0;

	memcpy(&value, table + (gpa & (PAGE_SIZE - 1)), size);
	return value;
}

static uint64_t harness_table_entry(const struct ref_engine *e, gpa_t gpa)
{
	size_t page = (gpa - HARNESS_TABLES_GPA) >> PAGE_SHIFT;

	if (page >= (size_t)e->levels)
		return 0;
	return load_entry(e->harness_tables[page], gpa, e->entry_size);
}

/* Reads from memory with no region behind them return all-ones, as reads of
 * non-existent physical memory do. */
static uint64_t memory_entry(struct ref_engine *e, gpa_t gpa, bool *backed)
{
	const uint8_t *page = ref_memory_page(e->mem, e->as_id, gpa, false);

	*backed = page != NULL;
	return page ? load_entry(page, gpa, e->entry_size) : all_ones_entry(e);
}

static bool is_pdpte_register(const struct ref_engine *e, gpa_t gpa)
{
	return e->mode == PAGING_PAE && gpa - e->root < 4 * sizeof(uint64_t);
}

/* The program's view of an entry of the test walk. PAE: QEMU 5.0 re-reads the PDPTEs
 * from memory on every walk, where the architecture loads them into registers at MOV
 * CR3; serving them from the register values the caller gives models the registers.
 * Only the walk's first read is a PDPTE: a directory that is the PDPT page itself (a
 * PDPTE pointing back at CR3's page) reads its entries from memory. */
static uint64_t program_entry(struct ref_engine *e, int depth, gpa_t gpa, bool *backed,
			      bool *from_memory)
{
	*from_memory = depth > 0 || !is_pdpte_register(e, gpa);
	if (*from_memory)
		return memory_entry(e, gpa, backed);
	*backed = true;
	return e->pdptrs[(gpa - e->root) / sizeof(uint64_t)];
}

static void trace_entry(struct ref_engine *e, int depth, gpa_t gpa, uint64_t value, bool backed,
			bool from_memory)
{
	struct walk_state *w = &e->walk;
	int level = level_of_depth(e, depth);

	e->out->entries[depth] = (struct ref_walk_entry){ gpa, value, backed };
	e->out->n_entries = depth + 1;
	w->from_memory[depth] = from_memory;
	w->expecting = points_to_table(e, level, value);
	if (w->expecting)
		w->expected = table_address(e, value) +
			      (gpa_t)entry_index(e, e->gva, level - 1) * e->entry_size;
}

/* Depth in the test walk of an entry read at gpa, or -1 if the read is not part of it.
 * The walk starts at the gva's root entry and each next read is where the previous
 * entry points; checking the latter first keeps a self-referencing table (an entry
 * pointing back at the root) apart from a new walk. */
static int test_walk_depth(const struct ref_engine *e, gpa_t gpa)
{
	const struct walk_state *w = &e->walk;

	if (!w->tracing)
		return -1;
	if (w->expecting && gpa == w->expected)
		return e->out->n_entries;
	return gpa == w->root_entry ? 0 : -1;
}

/* The engine's own walks (stub fetches, stack, GDT) and anything else. */
static uint64_t untraced_entry(struct ref_engine *e, gpa_t gpa)
{
	bool backed;

	if (gpa == e->root + HARNESS_ROOT_INDEX * e->entry_size) {
		/* The harness's entry in the program's root: a walk of the engine's own
		 * code begins, so no test walk is in progress. */
		e->walk.expecting = false;
		return load_entry(e->harness_tables[0], HARNESS_ROOT_INDEX * e->entry_size,
				  e->entry_size);
	}
	if (is_pdpte_register(e, gpa))
		return e->pdptrs[(gpa - e->root) / sizeof(uint64_t)];
	if (gpa >= HARNESS_TABLES_GPA && gpa < HARNESS_WINDOW_END)
		return harness_table_entry(e, gpa);
	return memory_entry(e, gpa, &backed);
}

/* One entry read (its first half for 8-byte entries). */
static uint64_t serve_entry(struct ref_engine *e, gpa_t gpa)
{
	int depth = test_walk_depth(e, gpa);
	bool backed, from_memory;
	uint64_t value;

	if (depth < 0)
		return untraced_entry(e, gpa);
	value = program_entry(e, depth, gpa, &backed, &from_memory);
	trace_entry(e, depth, gpa, value, backed, from_memory);
	return value;
}

/* 8-byte entries arrive as two 4-byte reads, low half first (QEMU splits accesses to
 * an MMIO region wider than its 4-byte access size). */
static uint64_t read_walk_traffic(struct ref_engine *e, gpa_t gpa, unsigned size)
{
	struct walk_state *w = &e->walk;
	gpa_t entry_gpa = gpa & ~(gpa_t)(e->entry_size - 1);
	unsigned shift = (unsigned)(gpa - entry_gpa) * 8;
	uint64_t value;

	if (size > e->entry_size || (gpa & (size - 1))) {
		note_anomaly(e, "unexpected %u-byte read at gpa %#llx", size, (unsigned long long)gpa);
		return ~0ull;
	}
	if (shift && w->have_cached && w->cached_gpa == entry_gpa) {
		value = w->cached_value;
	} else {
		value = serve_entry(e, entry_gpa);
		w->have_cached = true;
		w->cached_gpa = entry_gpa;
		w->cached_value = value;
	}
	value >>= shift;
	return size == 8 ? value : (uint32_t)value;
}

static void note_data_access(struct ref_engine *e, gpa_t addr)
{
	e->walk.tracing = false;
	e->obs.access_seen = true;
	e->obs.access_addr = addr;
}

static uint64_t mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *opaque)
{
	struct ref_engine *e = opaque;
	gpa_t gpa = MMIO_BASE + offset;

	if (size == 1) {
		note_data_access(e, gpa);
		return 0;
	}
	return read_walk_traffic(e, gpa, size);
}

/* Whether gpa falls in an entry of the test walk read from guest memory. */
static bool in_traced_memory_entry(const struct ref_engine *e, gpa_t gpa)
{
	for (int i = 0; i < e->out->n_entries; i++) {
		gpa_t entry = e->out->entries[i].gpa;

		if (e->walk.from_memory[i] && gpa >= entry && gpa - entry < e->entry_size)
			return true;
	}
	return false;
}

/* An A/D write-back. Only entries of the test walk read from guest memory are written;
 * the engine's own entries have A/D preset, PDPTE registers have no A bit (SDM §4.4.1),
 * and a read-only or absent page drops the write as KVM's walker does. */
static void write_back(struct ref_engine *e, gpa_t gpa, uint32_t value)
{
	uint8_t *page;
	struct ad_write *log;

	if (!e->walk.tracing || !in_traced_memory_entry(e, gpa))
		return;
	page = ref_memory_page(e->mem, e->as_id, gpa, true);
	if (!page)
		return;
	if (e->n_ad == REF_MAX_AD_WRITES) {
		note_anomaly(e, "more than %d A/D write-backs in one check", REF_MAX_AD_WRITES);
		return;
	}
	log = &e->ad_log[e->n_ad++];
	log->gpa = gpa;
	memcpy(&log->old_value, page + (gpa & (PAGE_SIZE - 1)), sizeof(uint32_t));
	log->new_value = value;
	memcpy(page + (gpa & (PAGE_SIZE - 1)), &value, sizeof(uint32_t));
}

static void mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *opaque)
{
	struct ref_engine *e = opaque;
	gpa_t gpa = MMIO_BASE + offset;

	if (size == 1) {
		note_data_access(e, gpa);
		return;
	}
	if (size != 4 || (gpa & 3)) {
		note_anomaly(e, "unexpected %u-byte write at gpa %#llx", size, (unsigned long long)gpa);
		return;
	}
	write_back(e, gpa, (uint32_t)value);
}

/* Unicorn 2.0.1 delivers no exception through the IDT: UC_HOOK_INTR sees the vector with
 * CR2 set, and the error code is only in the CPU state, read from a context save. */
static void on_interrupt(uc_engine *uc, uint32_t vector, void *opaque)
{
	struct ref_engine *e = opaque;

	e->walk.tracing = false;
	e->obs.vector = (int)vector;
	if (vector == PF_VECTOR) {
		e->obs.cr2 = read_reg(e, UC_X86_REG_CR2);
		if (uc_context_save(uc, e->scratch) == UC_ERR_OK)
			e->obs.error_code = (uint32_t)context_int(e->scratch, e->off_error_code);
		else
			note_anomaly(e, "uc_context_save failed in the interrupt hook");
	}
	uc_emu_stop(uc);
}

/* A fetch from the MMIO region (no EXEC permission) means the fetch walk succeeded. */
static bool on_invalid_access(uc_engine *uc, uc_mem_type type, uint64_t address, int size,
			      int64_t value, void *opaque)
{
	struct ref_engine *e = opaque;

	e->walk.tracing = false;
	if (type == UC_MEM_FETCH_PROT || type == UC_MEM_FETCH_UNMAPPED) {
		e->obs.fetch_seen = true;
		e->obs.fetch_addr = address;
		e->fetch_blocks++;
	} else {
		note_anomaly(e, "invalid memory access (type %d) at %#llx", (int)type,
			     (unsigned long long)address);
	}
	return false;
}

/* ---- runs ---- */

static uc_err run(struct ref_engine *e, enum stub stub, bool trace)
{
	uc_err err;

	e->obs = (struct run_observation){ .vector = -1 };
	e->walk.have_cached = false;
	e->walk.tracing = trace;
	err = uc_emu_start(e->uc, e->stub_gva[stub], e->until, 0, RUN_INSN_LIMIT);
	e->walk.tracing = false;
	return err;
}

/* A run of the engine's own code, which must end at its int3. */
static int run_to_stop(struct ref_engine *e, enum stub stub, const char *what)
{
	uc_err err = run(e, stub, false);

	if (e->obs.anomaly)
		return -1;
	if (err)
		return uc_fail(e, what, err);
	if (e->obs.vector != INT3_VECTOR)
		return fail(e, "%s: stopped with vector %d instead of the end marker", what,
			    e->obs.vector);
	return 0;
}

/* ---- engine construction ---- */

static void place_pieces(struct ref_engine *e, enum stub stub, gpa_t gpa,
			 const struct piece *const *list, size_t n)
{
	uint8_t *at = e->ram + gpa;

	e->stub_gva[stub] = gpa;
	for (size_t i = 0; i < n; i++) {
		size_t len = (size_t)(list[i]->end - list[i]->start);

		memcpy(at, list[i]->start, len);
		at += len;
	}
}

static void build_stubs(struct ref_engine *e)
{
	const struct guest_pieces *g = e->pieces;
	size_t flush_len = (size_t)(g->flush.end - g->flush.start);
	gpa_t kernel = KERNEL_STUB_GPA, user = USER_STUB_GPA;

	place_pieces(e, STUB_SET_CONTROL, kernel,
		     (const struct piece *const[]){ &g->set_control, &g->stop }, 2);
	if (e->long_mode)
		place_pieces(e, STUB_WRITE_PKRU, kernel + STUB_SLOT,
			     (const struct piece *const[]){ &g->write_pkru, &g->stop }, 2);
	place_pieces(e, STUB_ENTER_USER, kernel + 2 * STUB_SLOT,
		     (const struct piece *const[]){ &g->flush, &g->enter_user }, 2);
	for (int kind = REF_READ; kind <= REF_FETCH; kind++) {
		gpa_t at = kernel + (3 + (gpa_t)kind) * STUB_SLOT;

		/* A CR3 reload first: neither uc_context_restore nor uc_ctl_flush_tlb (a
		 * translated-code flush in 2.0.1, PR #1746) drops QEMU's soft TLB, so a
		 * translation cached by an earlier check would otherwise be reused. Not INVLPG
		 * of the gva: in 2.0.1 an INVLPG inside a large page QEMU has cached flushes the
		 * whole TLB, whose size grows on flushes while entries of earlier checks pile up
		 * (its used-entry count also drifts with victim-TLB evictions), so such flushes
		 * cleared up to 64 MiB; reloading every check keeps the table at its minimum. */
		place_pieces(e, STUB_KERNEL_READ + kind, at,
			     (const struct piece *const[]){ &g->flush, &g->access[kind], &g->stop },
			     kind == REF_FETCH ? 2 : 3);
		e->insn_gva[0][kind] = at + flush_len;
		at = user + (gpa_t)kind * STUB_SLOT;
		place_pieces(e, STUB_USER_READ + kind, at,
			     (const struct piece *const[]){ &g->access[kind], &g->stop },
			     kind == REF_FETCH ? 1 : 2);
		e->insn_gva[1][kind] = at;
	}
}

static void store_entry(uint8_t *table, unsigned index, unsigned size, uint64_t value)
{
	memcpy(table + (size_t)index * size, &value, size);
}

/* harness_tables[k] is the table at level levels - k; entry 0 of each links to the next
 * and the last maps the stub, GDT and stack pages 1:1 with A (and D) preset, so QEMU
 * never writes them. Only the user stub page is user-accessible. */
static void build_harness_tables(struct ref_engine *e)
{
	const uint64_t link = PT_PRESENT_MASK | PT_WRITABLE_MASK | PT_USER_MASK | PT_ACCESSED_MASK;
	uint8_t *leaf_table = e->harness_tables[e->levels - 1];

	for (int k = 0; k + 1 < e->levels; k++) {
		uint64_t next = HARNESS_TABLES_GPA + (uint64_t)(k + 1) * PAGE_SIZE;
		/* PAE PDPTEs have R/W, U/S and A reserved (SDM §4.4.1). */
		bool pdpte = e->mode == PAGING_PAE && k == 0;

		store_entry(e->harness_tables[k], 0, e->entry_size,
			    next | (pdpte ? PT_PRESENT_MASK : link));
	}
	for (unsigned page = 1; page < HARNESS_MAPPED_PAGES; page++) {
		uint64_t flags = link | PT_DIRTY_MASK;

		if (page != USER_STUB_GPA >> PAGE_SHIFT)
			flags &= ~PT_USER_MASK;
		store_entry(leaf_table, page, e->entry_size, ((uint64_t)page << PAGE_SHIFT) | flags);
	}
}

static void build_gdt(struct ref_engine *e)
{
	uint64_t *gdt = (uint64_t *)(e->ram + GDT_GPA);

	gdt[USER_CODE32_SEL >> 3] = 0x00cffb000000ffffull; /* 32-bit code, DPL 3, accessed */
	gdt[USER_DATA_SEL >> 3] = 0x00cff3000000ffffull;   /* data, DPL 3, accessed */
	gdt[USER_CODE64_SEL >> 3] = 0x00affb000000ffffull; /* 64-bit code, DPL 3, accessed */
}

static int open_unicorn(struct ref_engine *e)
{
	uc_err err = uc_open(UC_ARCH_X86, e->long_mode ? UC_MODE_64 : UC_MODE_32, &e->uc);

	if (err)
		return uc_fail(e, "uc_open", err);
	/* The default model's MOV CR4 drops PKE; Icelake-Server keeps PKE and LA57. */
	if (e->long_mode) {
		err = uc_ctl_set_cpu_model(e->uc, UC_CPU_X86_ICELAKE_SERVER);
		if (err)
			return uc_fail(e, "uc_ctl_set_cpu_model", err);
	}
	return 0;
}

/* Unicorn 2.0.1 rejects a data access whose gva is not mapped as a physical address
 * before walking (issues #439, #441), so the MMIO region covers every gva a check may
 * use, non-canonical ones included, up to the top of the address space (in 64-bit,
 * mmio_end 0 stands for 2^64: the size below wraps to 2^64 - MMIO_BASE). */
static int map_memory(struct ref_engine *e)
{
	uint64_t mmio_end = e->long_mode ? 0 : 1ull << 32;
	uc_err err;
	uc_x86_mmr gdtr = { .base = GDT_GPA, .limit = 8 * 8 - 1 };

	err = uc_mem_map_ptr(e->uc, 0, MMIO_BASE, UC_PROT_ALL, e->ram);
	if (err)
		return uc_fail(e, "uc_mem_map_ptr", err);
	err = uc_mmio_map(e->uc, MMIO_BASE, mmio_end - MMIO_BASE, mmio_read, e, mmio_write, e);
	if (err)
		return uc_fail(e, "uc_mmio_map", err);
	err = uc_reg_write(e->uc, UC_X86_REG_GDTR, &gdtr);
	return err ? uc_fail(e, "GDTR", err) : 0;
}

static int add_hooks(struct ref_engine *e)
{
	uc_hook hook;
	uc_err err = uc_hook_add(e->uc, &hook, UC_HOOK_INTR, on_interrupt, e, 1, 0);

	if (!err)
		err = uc_hook_add(e->uc, &hook, UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_FETCH_PROT,
				  on_invalid_access, e, 1, 0);
	return err ? uc_fail(e, "uc_hook_add", err) : 0;
}

/* Offset in a saved context of the register reg, found by giving it a value that
 * appears nowhere else. */
static int find_register(struct ref_engine *e, int reg, size_t *offset)
{
	const uint64_t magic = e->long_mode ? 0x5aa5c33c96695aa5ull : 0x96695aa5ull;
	size_t size = uc_context_size(e->uc), hits = 0;
	uint64_t zero = 0;
	uc_err err = uc_reg_write(e->uc, reg, &magic);

	if (!err)
		err = uc_context_save(e->uc, e->scratch);
	if (!err)
		err = uc_reg_write(e->uc, reg, &zero);
	if (err)
		return uc_fail(e, "context layout probe", err);
	for (size_t off = 0; off + sizeof(magic) <= size; off += 4) {
		if (!memcmp((uint8_t *)e->scratch + off, &magic, sizeof(magic))) {
			*offset = off;
			hits++;
		}
	}
	if (hits != 1)
		return fail(e, "context layout probe: register %d found %zu times", reg, hits);
	return 0;
}

static void set_context_int(uc_context *ctx, size_t offset, int32_t v)
{
	memcpy((uint8_t *)ctx + offset, &v, sizeof(v));
}

static void set_context_efer_nx(const struct ref_engine *e, uc_context *ctx, bool nx)
{
	uint64_t efer;

	memcpy(&efer, (uint8_t *)ctx + e->off_efer, sizeof(efer));
	efer = nx ? efer | EFER_NX : efer & ~EFER_NX;
	memcpy((uint8_t *)ctx + e->off_efer, &efer, sizeof(efer));
}

static uint64_t read_efer(struct ref_engine *e)
{
	uc_x86_msr msr = { .rid = 0xc0000080 };

	uc_reg_read(e->uc, UC_X86_REG_MSR, &msr);
	return msr.value;
}

/* EFER.NXE cannot be set by WRMSR or uc_reg_write in 2.0.1 (reset clears CPUID NX and
 * both mask the bit), but the walker reads the EFER field: snapshots are patched. Check
 * that a patched EFER field reads back through RDMSR. */
static int verify_efer_offset(struct ref_engine *e)
{
	uint64_t efer = read_efer(e);
	uint64_t patched;
	uc_err err = uc_context_save(e->uc, e->base);

	if (!err)
		err = uc_context_save(e->uc, e->scratch);
	if (err)
		return uc_fail(e, "uc_context_save", err);
	set_context_efer_nx(e, e->scratch, true);
	err = uc_context_restore(e->uc, e->scratch);
	patched = read_efer(e);
	if (!err)
		err = uc_context_restore(e->uc, e->base);
	if (err)
		return uc_fail(e, "uc_context_restore", err);
	if (patched != (efer | EFER_NX))
		return fail(e, "context layout probe: EFER field not found (EFER %#llx, patched %#llx)",
			    (unsigned long long)efer, (unsigned long long)patched);
	return 0;
}

static int find_context_offsets(struct ref_engine *e)
{
	size_t dr0, cr2;
	uc_err err = uc_context_alloc(e->uc, &e->scratch);

	if (!err)
		err = uc_context_alloc(e->uc, &e->base);
	if (err)
		return uc_fail(e, "uc_context_alloc", err);
	if (find_register(e, UC_X86_REG_DR0, &dr0) || find_register(e, UC_X86_REG_CR2, &cr2))
		return -1;
	if (dr0 < ERROR_CODE_BEFORE_DR0 || cr2 < CR0_BEFORE_CR2)
		return fail(e, "context layout probe: implausible offsets");
	e->off_error_code = dr0 - ERROR_CODE_BEFORE_DR0;
	e->off_old_exception = dr0 + OLD_EXCEPTION_AFTER_DR0;
	e->off_efer = cr2 - CR0_BEFORE_CR2 + EFER_AFTER_CR0;
	if (e->off_old_exception + 4 > uc_context_size(e->uc) ||
	    e->off_efer + 8 > uc_context_size(e->uc))
		return fail(e, "context layout probe: offsets beyond the context");
	if (context_int(e->scratch, e->off_old_exception) != -1)
		return fail(e, "context layout probe: old_exception is not -1 on a fresh engine");
	return verify_efer_offset(e);
}

static uint64_t mode_cr4(const struct ref_engine *e)
{
	switch (e->mode) {
	case PAGING_PAE:
	case PAGING_4LEVEL:
		return X86_CR4_PAE;
	case PAGING_5LEVEL:
		/* LA57 is set here, as the engine's mode: QEMU 5.0 lets MOV CR4 toggle it
		 * with paging on, so every later CR4 value keeps it. */
		return X86_CR4_PAE | X86_CR4_LA57;
	default:
		return 0;
	}
}

static uint64_t mode_cr0(const struct ref_engine *e)
{
	return e->mode == PAGING_NONE ? KERNEL_CR0 : KERNEL_CR0 | X86_CR0_PG;
}

/* Turns paging on from the reset state with the engine's own root. Unicorn 2.0.1's
 * uc_reg_write of CR0/CR3/CR4 only stores the value (no TLB flush, no hidden flags:
 * issue #1273), so control registers are always written by guest MOVs. */
static int boot(struct ref_engine *e)
{
	e->root = HARNESS_TABLES_GPA;
	if (write_reg(e, REG_SP, STACK_TOP))
		return -1;
	if (e->mode == PAGING_NONE)
		return 0;
	if (write_reg(e, REG_A, mode_cr4(e)) || write_reg(e, REG_B, HARNESS_TABLES_GPA) ||
	    write_reg(e, REG_C, mode_cr0(e)))
		return -1;
	if (run_to_stop(e, STUB_SET_CONTROL, "boot"))
		return -1;
	if (!(read_reg(e, UC_X86_REG_CR0) & X86_CR0_PG))
		return fail(e, "boot: paging did not turn on");
	return 0;
}

/* From the base context (old_exception cleared), a write to a not-present harness page
 * must report #PF with error code W (2) and leave old_exception = 14: this checks the
 * error_code and old_exception offsets. */
static int self_test(struct ref_engine *e)
{
	uc_err err;

	if (e->mode == PAGING_NONE)
		return 0;
	err = uc_context_restore(e->uc, e->base);
	if (err)
		return uc_fail(e, "uc_context_restore", err);
	if (write_reg(e, REG_DI, SELF_TEST_GVA))
		return -1;
	err = run(e, STUB_KERNEL_WRITE, false);
	if (e->obs.anomaly)
		return -1;
	if (err || e->obs.vector != PF_VECTOR || e->obs.cr2 != SELF_TEST_GVA ||
	    e->obs.error_code != PFERR_WRITE_MASK ||
	    context_int(e->scratch, e->off_old_exception) != PF_VECTOR)
		return fail(e, "self-test: expected #PF 2 at %#llx, got vector %d error code %#x "
			       "cr2 %#llx (%s)",
			    SELF_TEST_GVA, e->obs.vector, e->obs.error_code,
			    (unsigned long long)e->obs.cr2, uc_strerror(err));
	err = uc_context_restore(e->uc, e->base);
	return err ? uc_fail(e, "uc_context_restore", err) : 0;
}

static int save_base(struct ref_engine *e)
{
	uc_err err = uc_context_save(e->uc, e->base);

	if (err)
		return uc_fail(e, "uc_context_save", err);
	set_context_int(e->base, e->off_old_exception, -1);
	return 0;
}

static void evict_snapshots(struct ref_engine *e)
{
	for (unsigned i = 0; i < SNAPSHOT_SLOTS; i++) {
		if (e->snapshots[i].ctx)
			uc_context_free(e->snapshots[i].ctx);
		e->snapshots[i].ctx = NULL;
	}
	e->n_snapshots = 0;
}

static void stop_instance(struct ref_engine *e)
{
	evict_snapshots(e);
	if (e->base)
		uc_context_free(e->base);
	if (e->scratch)
		uc_context_free(e->scratch);
	if (e->uc)
		uc_close(e->uc);
	e->base = e->scratch = NULL;
	e->uc = NULL;
	e->fetch_blocks = 0;
}

/* A Unicorn instance with paging on, its base context saved and checked. On failure the
 * caller stops what was started. */
static int start_instance(struct ref_engine *e)
{
	return open_unicorn(e) || map_memory(e) || add_hooks(e) || find_context_offsets(e) ||
	       boot(e) || save_base(e) || self_test(e) ? -1 : 0;
}

static int restart_instance(struct ref_engine *e)
{
	stop_instance(e);
	if (!start_instance(e))
		return 0;
	stop_instance(e);
	return -1;
}

/* Stubs, GDT and the engine's paging structures: the same for every instance. */
static int build_ram_image(struct ref_engine *e)
{
	e->ram = aligned_alloc(PAGE_SIZE, MMIO_BASE);
	if (!e->ram)
		return fail(e, "out of memory");
	memset(e->ram, 0, MMIO_BASE);
	build_stubs(e);
	build_gdt(e);
	if (e->levels)
		build_harness_tables(e);
	return 0;
}

static void init_mode(struct ref_engine *e, enum paging_mode mode, struct ref_memory *mem)
{
	static const int levels[PAGING_MODE_COUNT] = {
		[PAGING_NONE] = 0,
		[PAGING_32] = PT32_ROOT_LEVEL,
		[PAGING_PAE] = PT32E_ROOT_LEVEL,
		[PAGING_4LEVEL] = PT64_ROOT_4LEVEL,
		[PAGING_5LEVEL] = PT64_ROOT_5LEVEL,
	};

	e->mode = mode;
	e->mem = mem;
	e->long_mode = mode >= PAGING_4LEVEL;
	e->levels = levels[mode];
	e->entry_size = mode == PAGING_32 ? 4 : 8;
	e->pieces = e->long_mode ? &pieces64 : &pieces32;
	e->regs = e->long_mode ? regs64 : regs32;
	e->until = e->long_mode ? UNTIL_64 : UNTIL_32;
}

struct ref_engine *ref_engine_new(enum paging_mode mode, struct ref_memory *mem, char *err,
				  size_t errlen)
{
	struct ref_engine *e;

	if ((unsigned)mode >= PAGING_MODE_COUNT || !mem) {
		if (err && errlen)
			snprintf(err, errlen, "ref_engine_new: %s", mem ? "bad paging mode" : "no memory");
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		if (err && errlen)
			snprintf(err, errlen, "ref_engine_new: out of memory");
		return NULL;
	}
	init_mode(e, mode, mem);
	if (build_ram_image(e) || start_instance(e)) {
		if (err && errlen)
			snprintf(err, errlen, "ref_engine_new: %s", e->error);
		ref_engine_free(e);
		return NULL;
	}
	return e;
}

void ref_engine_free(struct ref_engine *e)
{
	if (!e)
		return;
	stop_instance(e);
	free(e->ram);
	free(e);
}

const char *ref_engine_error(const struct ref_engine *e)
{
	return e ? e->error : "no reference engine";
}

/* ---- snapshots ---- */

static uint64_t root_of(const struct ref_engine *e, uint64_t cr3)
{
	switch (e->mode) {
	case PAGING_32:
		return cr3 & PT32_BASE_ADDR_MASK;
	case PAGING_PAE:
		return cr3 & 0xffffffe0ull; /* CR3 bits 31:5 (SDM §4.4.1) */
	default:
		return cr3 & PT64_BASE_ADDR_MASK;
	}
}

static struct snapshot_key make_key(const struct ref_engine *e, const struct ref_cpu_state *cpu)
{
	struct snapshot_key key = { 0 };

	if (e->mode == PAGING_NONE)
		return key;
	key.root = root_of(e, cpu->cr3);
	key.flags = (cpu->cr0_wp ? KEY_WP : 0) | (cpu->cr4_smep ? KEY_SMEP : 0) |
		    (cpu->cr4_smap ? KEY_SMAP : 0);
	/* EFLAGS.AC matters only to SMAP (CR0.AM is clear). */
	if (cpu->cr4_smap && cpu->rflags_ac)
		key.flags |= KEY_AC;
	/* PSE only selects 4 MiB pages in 32-bit paging; NXE needs 8-byte entries;
	 * protection keys exist only in 4/5-level paging. */
	if (e->mode == PAGING_32 && cpu->cr4_pse)
		key.flags |= KEY_PSE;
	if (e->mode != PAGING_32 && cpu->efer_nxe)
		key.flags |= KEY_NXE;
	if (e->long_mode && cpu->cr4_pke) {
		key.flags |= KEY_PKE;
		key.pkru = cpu->pkru;
	}
	return key;
}

/* The root is not part of a snapshot's identity (ref_check stores it afterwards). */
static unsigned key_slot(const struct snapshot_key *k)
{
	uint64_t h = (((uint64_t)k->pkru << 32) | k->flags) * 0xc2b2ae3d27d4eb4full;

	return (unsigned)(h >> 40) & (SNAPSHOT_SLOTS - 1);
}

static struct snapshot_slot *find_slot(struct ref_engine *e, const struct snapshot_key *k)
{
	for (unsigned i = key_slot(k);; i = (i + 1) & (SNAPSHOT_SLOTS - 1)) {
		struct snapshot_slot *s = &e->snapshots[i];

		if (!s->ctx || (s->key.pkru == k->pkru && s->key.flags == k->flags))
			return s;
	}
}

static uint64_t key_cr4(const struct ref_engine *e, const struct snapshot_key *k)
{
	uint64_t cr4 = e->mode == PAGING_NONE ? 0 : mode_cr4(e);

	if (k->flags & KEY_PSE)
		cr4 |= X86_CR4_PSE;
	if (k->flags & KEY_SMEP)
		cr4 |= X86_CR4_SMEP;
	if (k->flags & KEY_SMAP)
		cr4 |= X86_CR4_SMAP;
	if (k->flags & KEY_PKE)
		cr4 |= X86_CR4_PKE;
	return cr4;
}

/* Runs the guest MOVs (and WRPKRU) of a configuration from the base context and checks
 * the CPU took every bit. */
static int configure(struct ref_engine *e, const struct snapshot_key *k)
{
	uint64_t cr4 = key_cr4(e, k);
	uint64_t cr0 = mode_cr0(e) | ((k->flags & KEY_WP) ? X86_CR0_WP : 0);
	uint64_t eflags = EFLAGS_FIXED | ((k->flags & KEY_AC) ? X86_EFLAGS_AC : 0);
	uc_err err = uc_context_restore(e->uc, e->base);

	if (err)
		return uc_fail(e, "uc_context_restore", err);
	e->root = k->root;
	e->pse = k->flags & KEY_PSE;
	e->nxe = k->flags & KEY_NXE;
	if (write_reg(e, REG_A, cr4) || write_reg(e, REG_B, k->root) || write_reg(e, REG_C, cr0) ||
	    run_to_stop(e, STUB_SET_CONTROL, "control registers"))
		return -1;
	if ((k->flags & KEY_PKE) &&
	    (write_reg(e, REG_A, k->pkru) || run_to_stop(e, STUB_WRITE_PKRU, "WRPKRU")))
		return -1;
	if (write_reg(e, REG_FLAGS, eflags))
		return -1;
	if (read_reg(e, e->regs[REG_FLAGS]) != eflags || read_reg(e, UC_X86_REG_CR4) != cr4 ||
	    read_reg(e, UC_X86_REG_CR0) != cr0)
		return fail(e, "configuration not taken: CR0 %#llx CR4 %#llx EFLAGS %#llx",
			    (unsigned long long)read_reg(e, UC_X86_REG_CR0),
			    (unsigned long long)read_reg(e, UC_X86_REG_CR4),
			    (unsigned long long)read_reg(e, e->regs[REG_FLAGS]));
	return 0;
}

static uc_context *build_snapshot(struct ref_engine *e, struct snapshot_slot *slot,
				  const struct snapshot_key *k)
{
	uc_context *ctx;
	uc_err err;

	if (configure(e, k))
		return NULL;
	err = uc_context_alloc(e->uc, &ctx);
	if (!err) {
		err = uc_context_save(e->uc, ctx);
		if (err)
			uc_context_free(ctx);
	}
	if (err) {
		uc_fail(e, "snapshot", err);
		return NULL;
	}
	set_context_efer_nx(e, ctx, k->flags & KEY_NXE);
	/* Unicorn 2.0.1 never clears old_exception, as IDT delivery would (issues #1883,
	 * #578): a stale value turns the next #PF into #DF, the one after into a silent
	 * stop. The configuration run's own `until` lookup may leave it set. */
	set_context_int(ctx, e->off_old_exception, -1);
	slot->key = *k;
	slot->ctx = ctx;
	e->n_snapshots++;
	return ctx;
}

static uc_context *snapshot_for(struct ref_engine *e, const struct snapshot_key *k)
{
	struct snapshot_slot *slot = find_slot(e, k);

	if (slot->ctx)
		return slot->ctx;
	if (e->n_snapshots == SNAPSHOT_LIMIT) {
		evict_snapshots(e);
		slot = find_slot(e, k);
	}
	return build_snapshot(e, slot, k);
}

/* ---- checks ---- */

static bool cr3_fits(const struct ref_engine *e, const struct ref_cpu_state *cpu)
{
	if (e->mode == PAGING_NONE)
		return true;
	if (!e->long_mode && cpu->cr3 >> 32)
		return false;
	return !(cpu->cr3 >> DEFAULT_MAXPHYADDR);
}

static int validate(struct ref_engine *e, const struct ref_cpu_state *cpu, int cpl,
		    enum ref_access_kind kind, gva_t gva, const struct ref_result *out)
{
	if (!cpu || !out)
		return fail(e, "ref_check: NULL argument");
	if (cpu->mode != e->mode)
		return fail(e, "ref_check: cpu mode %d on a mode %d engine", (int)cpu->mode,
			    (int)e->mode);
	if (cpl != 0 && cpl != 3)
		return fail(e, "ref_check: CPL %d (only 0 and 3)", cpl);
	if ((unsigned)kind > REF_FETCH)
		return fail(e, "ref_check: bad access kind %d", (int)kind);
	if (!gva_fits_mode(e->mode, gva) || gva_is_harness_reserved(e->mode, gva))
		return fail(e, "ref_check: gva %#llx is outside the program's range",
			    (unsigned long long)gva);
	if (!cr3_fits(e, cpu))
		return fail(e, "ref_check: CR3 %#llx beyond the physical address width",
			    (unsigned long long)cpu->cr3);
	if (e->mode != PAGING_NONE && root_of(e, cpu->cr3) < HARNESS_GPA_LIMIT)
		return fail(e, "ref_check: root %#llx inside the harness's memory",
			    (unsigned long long)root_of(e, cpu->cr3));
	return 0;
}

static void begin_check(struct ref_engine *e, const struct ref_cpu_state *cpu,
			const struct snapshot_key *k, gva_t gva, struct ref_result *out)
{
	memset(out, 0, sizeof(*out));
	e->out = out;
	e->gva = gva;
	e->root = k->root;
	e->pse = k->flags & KEY_PSE;
	e->nxe = k->flags & KEY_NXE;
	e->as_id = cpu->as_id;
	if (e->mode == PAGING_PAE)
		memcpy(e->pdptrs, cpu->pdptrs, sizeof(e->pdptrs));
	e->n_ad = 0;
	e->walk = (struct walk_state){ 0 };
	e->walk.root_entry = ~0ull;
	/* A non-canonical gva can have the harness's root index; it is never walked (#GP),
	 * and root entry 0 must keep serving the engine's own walks. */
	if (e->levels && entry_index(e, gva, e->levels) != HARNESS_ROOT_INDEX)
		e->walk.root_entry = k->root + (gpa_t)entry_index(e, gva, e->levels) * e->entry_size;
}

static int set_check_registers(struct ref_engine *e, int cpl, enum ref_access_kind kind,
			       gva_t gva, const struct ref_cpu_state *cpu)
{
	uint64_t user_flags = EFLAGS_FIXED | (cpu->rflags_ac ? X86_EFLAGS_AC : 0);
	gva_t entry = e->stub_gva[STUB_USER_READ + kind];

	if (write_reg(e, REG_DI, gva))
		return -1;
	if (cpl == 0)
		return 0;
	if (e->long_mode)
		return write_reg(e, REG_R8, user_flags) || write_reg(e, REG_R9, entry) ||
		       write_reg(e, REG_SI, USER_STACK_TOP) ? -1 : 0;
	return write_reg(e, REG_BP, user_flags) || write_reg(e, REG_A, entry) ||
	       write_reg(e, REG_SI, USER_STACK_TOP) ? -1 : 0;
}

/* Faulting walks keep no A/D: QEMU 5.0 sets A on each non-leaf entry as it descends (and
 * on a 1 GiB leaf before its checks) even when the walk then faults. The SDM allows but
 * does not require that; KVM's walker sets A/D only on a successful walk, and the
 * reference must not report memory changes KVM would never make. */
static void roll_back_ad(struct ref_engine *e)
{
	while (e->n_ad) {
		const struct ad_write *w = &e->ad_log[--e->n_ad];
		uint8_t *page = ref_memory_page(e->mem, e->as_id, w->gpa, true);

		if (page)
			memcpy(page + (w->gpa & (PAGE_SIZE - 1)), &w->old_value, sizeof(uint32_t));
	}
}

static void store_ad_value(struct ref_engine *e, gpa_t gpa, uint32_t value)
{
	uint8_t *page = ref_memory_page(e->mem, e->as_id, gpa, true);

	if (page)
		memcpy(page + (gpa & (PAGE_SIZE - 1)), &value, sizeof(value));
}

void ref_revert_ad_writes(struct ref_engine *e, const struct ref_result *result)
{
	for (int i = result->n_ad_writes - 1; i >= 0; i--)
		store_ad_value(e, result->ad_writes[i].gpa, result->ad_writes[i].old_value);
}

void ref_redo_ad_writes(struct ref_engine *e, const struct ref_result *result)
{
	for (int i = 0; i < result->n_ad_writes; i++)
		store_ad_value(e, result->ad_writes[i].gpa, result->ad_writes[i].value);
}

static void keep_ad(struct ref_engine *e, struct ref_result *out)
{
	for (int i = 0; i < e->n_ad; i++) {
		out->ad_writes[i].gpa = e->ad_log[i].gpa;
		out->ad_writes[i].value = e->ad_log[i].new_value;
		out->ad_writes[i].old_value = e->ad_log[i].old_value;
	}
	out->n_ad_writes = e->n_ad;
}

static uint64_t leaf_frame(const struct ref_engine *e, int level, uint64_t entry, uint64_t size)
{
	if (e->mode == PAGING_32 && level == PT_DIRECTORY_LEVEL)
		return (entry & 0xffc00000ull) |
		       ((entry & PT32_PSE36_MASK) << (32 - PT32_PSE36_SHIFT));
	return table_address(e, entry) & ~(size - 1);
}

/* The gpa and page size of a successful access, from the last entry the walk read.
 * Returns false if that entry is not a leaf. */
static bool derive_leaf(const struct ref_engine *e, struct ref_result *out)
{
	int depth = out->n_entries - 1;
	int level = level_of_depth(e, depth);
	uint64_t entry, size;

	if (depth < 0)
		return false;
	entry = out->entries[depth].value;
	if (!(entry & PT_PRESENT_MASK) || points_to_table(e, level, entry) ||
	    level > PT_PDPE_LEVEL)
		return false;
	if (e->mode == PAGING_32)
		size = level == PT_DIRECTORY_LEVEL ? 1ull << 22 : PAGE_SIZE;
	else
		size = PAGE_SIZE << (9 * (level - 1));
	out->gpa = leaf_frame(e, level, entry, size) | (e->gva & (size - 1));
	out->leaf_level = level;
	return true;
}

/* Reserved bits of an entry that links to a table (SDM vol. 3 §4.4.2, §4.5.4): the
 * processor faults on them before it reads the table the entry names. PAE entries reserve
 * bits 52..62 too, which 4- and 5-level paging ignore. */
static bool link_entry_reserved(const struct ref_engine *e, int level, uint64_t entry)
{
	bool pdpte = e->mode == PAGING_PAE && level == PT32E_ROOT_LEVEL;

	if (e->entry_size == 4)
		return false;
	if (entry & rsvd_bits(DEFAULT_MAXPHYADDR, 51))
		return true;
	if (e->mode == PAGING_PAE && (entry & rsvd_bits(52, 62)))
		return true;
	return (entry & PT64_NX_MASK) && (!e->nxe || pdpte);
}

/* Unbacked when a read found no memory, or when the last entry sends the walk into the
 * engine's RAM, which QEMU reads without a callback: programs have no memslot there. An
 * entry with reserved bits sends the walk nowhere: the fault is its own. */
static bool walk_read_unbacked(const struct ref_engine *e, const struct ref_result *out)
{
	int depth = out->n_entries - 1, level;
	uint64_t last;

	for (int i = 0; i <= depth; i++) {
		if (!out->entries[i].backed)
			return true;
	}
	if (depth < 0)
		return false;
	level = level_of_depth(e, depth);
	last = out->entries[depth].value;
	return points_to_table(e, level, last) && !link_entry_reserved(e, level, last) &&
	       table_address(e, last) < MMIO_BASE;
}

static int finish_success(struct ref_engine *e, enum ref_access_kind kind, uc_err err,
			  struct ref_result *out)
{
	bool seen = kind == REF_FETCH ? e->obs.fetch_seen && e->obs.fetch_addr == e->gva :
					e->obs.vector == INT3_VECTOR && e->obs.access_seen &&
						e->obs.access_addr == e->gva;

	if (!seen)
		return fail(e, "check of %#llx ended without the access (%s, vector %d)",
			    (unsigned long long)e->gva, uc_strerror(err), e->obs.vector);
	out->outcome = REF_OK;
	if (e->mode == PAGING_NONE) {
		out->gpa = e->gva;
		return 0;
	}
	if (!derive_leaf(e, out) && !out->read_unbacked)
		return fail(e, "check of %#llx: the walk trace ends without a leaf",
			    (unsigned long long)e->gva);
	keep_ad(e, out);
	return 0;
}

static int finish_check(struct ref_engine *e, enum ref_access_kind kind, uc_err err,
			struct ref_result *out)
{
	out->read_unbacked = walk_read_unbacked(e, out);
	if (e->obs.anomaly)
		return -1;
	switch (e->obs.vector) {
	case PF_VECTOR:
		if (e->obs.cr2 != e->gva)
			return fail(e, "#PF at %#llx while checking %#llx",
				    (unsigned long long)e->obs.cr2, (unsigned long long)e->gva);
		out->outcome = REF_PAGE_FAULT;
		out->error_code = e->obs.error_code;
		out->cr2 = e->obs.cr2;
		return 0;
	case GP_VECTOR:
		out->outcome = REF_GP_FAULT;
		return 0;
	case -1:
	case INT3_VECTOR:
		return finish_success(e, kind, err, out);
	default:
		return fail(e, "check of %#llx raised vector %d", (unsigned long long)e->gva,
			    e->obs.vector);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int ref_check_timed(struct ref_engine *e, const struct ref_cpu_state *cpu, int cpl,
			   enum ref_access_kind kind, gva_t gva, struct ref_result *out);

int ref_check(struct ref_engine *e, const struct ref_cpu_state *cpu, int cpl,
	      enum ref_access_kind kind, gva_t gva, struct ref_result *out)
{
	uint64_t start = now_ns();
	int ret = ref_check_timed(e, cpu, cpl, kind, gva, out);

	if (e)
		e->busy_ns += now_ns() - start;
	return ret;
}

uint64_t ref_engine_busy_ns(const struct ref_engine *engine)
{
	return engine ? engine->busy_ns : 0;
}

static int ref_check_timed(struct ref_engine *e, const struct ref_cpu_state *cpu, int cpl,
			   enum ref_access_kind kind, gva_t gva, struct ref_result *out)
{
	struct snapshot_key key;
	uc_context *snapshot;
	uc_err err;
	int ret;

	if (!e)
		return -1;
	if (validate(e, cpu, cpl, kind, gva, out))
		return -1;
	if ((!e->uc || e->fetch_blocks >= FETCH_BLOCKS_PER_INSTANCE) && restart_instance(e))
		return -1;
	key = make_key(e, cpu);
	snapshot = snapshot_for(e, &key);
	if (!snapshot)
		return -1;
	err = uc_context_restore(e->uc, snapshot);
	if (err)
		return uc_fail(e, "uc_context_restore", err);
	/* Snapshots are shared by all roots: the engine's own translations hang off root
	 * entry 0, injected the same for every root. uc_reg_write of CR3 only stores it
	 * (Unicorn 2.0.1 issue #1273), so the stub's first fetch walks the new root; the stub
	 * then reloads CR3 from rbx, which empties the TLB. */
	if (e->mode != PAGING_NONE) {
		uint64_t cr3 = key.root;

		err = uc_reg_write(e->uc, UC_X86_REG_CR3, &cr3);
		if (err)
			return uc_fail(e, "uc_reg_write CR3", err);
		if (write_reg(e, REG_B, cr3))
			return -1;
	}
	if (set_check_registers(e, cpl, kind, gva, cpu))
		return -1;
	begin_check(e, cpu, &key, gva, out);
	err = run(e, cpl ? STUB_ENTER_USER : STUB_KERNEL_READ + kind, e->levels > 0);
	out->insn_gva = e->insn_gva[cpl != 0][kind];
	ret = finish_check(e, kind, err, out);
	if (ret || out->outcome != REF_OK)
		roll_back_ad(e);
	e->out = NULL;
	return ret;
}

/* A supervisor read with WP, SMEP, SMAP and protection keys off is refused only by the
 * walk itself (SDM vol. 3 §4.6: none of the access-rights rules restrict it). Clearing
 * them rather than ignoring them also keeps every probe of a root on one snapshot. */
int ref_probe(struct ref_engine *e, const struct ref_cpu_state *cpu, gva_t gva,
	      struct ref_result *out)
{
	struct ref_cpu_state plain;
	int ret;

	if (!e)
		return -1;
	if (!cpu)
		return fail(e, "ref_probe: NULL argument");
	plain = *cpu;
	plain.cr0_wp = false;
	plain.cr4_smep = false;
	plain.cr4_smap = false;
	plain.cr4_pke = false;
	plain.pkru = 0;
	plain.rflags_ac = false;
	ret = ref_check(e, &plain, 0, REF_READ, gva, out);
	if (ret || out->outcome != REF_OK)
		return ret;
	ref_revert_ad_writes(e, out);
	out->n_ad_writes = 0;
	return 0;
}

const uint8_t *ref_access_insn(enum paging_mode mode, enum ref_access_kind kind, size_t *len)
{
	const struct guest_pieces *g;

	if ((unsigned)mode >= PAGING_MODE_COUNT || (unsigned)kind > REF_FETCH) {
		if (len)
			*len = 0;
		return NULL;
	}
	g = mode >= PAGING_4LEVEL ? &pieces64 : &pieces32;
	if (len)
		*len = (size_t)(g->access[kind].end - g->access[kind].start);
	return g->access[kind].start;
}
