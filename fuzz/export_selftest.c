/* shadowfuzz export --selftest: a program as a self-contained KVM selftest. The program
 * runs once on the unmodified model (the executor, with the reference checking every
 * access) to learn the architecture's answer to each access and every guest write the
 * harness makes (fuzz/executor.h: executor_trace); the C file replays the same sequence
 * on a real kernel through /dev/kvm and checks the answers. The runtime it carries (guest
 * code, VM setup, checks) is selftest_runtime.c.in, embedded verbatim; this file writes
 * the program-specific part: the program's text, what the vCPU must offer, and the steps.
 *
 * Scope: programs whose accesses all run in 4-level paging. The real guest is in long
 * mode from its first instruction (on a harness root), so everything a program does
 * before its first `mode 4level` must be something that root can do for it: memslot
 * updates, control bits and table writes (which stay guest writes: the physmap is on the
 * boot root too). Other paging modes, leaving paging, SMM, address space 1 and vCPUs
 * other than 0 are refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/memslot.h"
#include "../oracle/harness_layout.h"
#include "executor.h"
#include "export.h"
#include "guest_physmap.h"

extern const char selftest_runtime[], selftest_runtime_end[];

#define PROGRAM_MARKER "@PROGRAM@\n"
#define ENTRY_ADDRESS_BITS 0x000ffffffffff000ull

struct model_run {
	struct executor_log log;
	struct executor_harness_log trace;
	/* Per op: its access's answer, and whether the model diverged there (the answer is
	 * then the reference's). */
	bool answered[PROG_MAX_OPS];
	bool diverged[PROG_MAX_OPS];
	struct model_access answers[PROG_MAX_OPS];
	/* The model answered from a stale translation (RULE_ARCH_STALE_TRANSLATION): a kernel
	 * that synced or flushed sooner gives the fresh answer, which is as right. */
	bool stale[PROG_MAX_OPS];
	struct model_access fresh[PROG_MAX_OPS];
};

static int refuse(const struct program *prog, uint32_t i, const char *why, char *err, size_t errlen)
{
	char text[160];

	op_format(&prog->ops[i], text, sizeof(text));
	snprintf(err, errlen, "--selftest: %s: op %u '%s'", why, i, text);
	return -1;
}

static const char *mode_refusal(enum paging_mode mode)
{
	switch (mode) {
	case PAGING_NONE:
		return "turning paging off is not supported (only 4-level programs)";
	case PAGING_32:
		return "32-bit paging is not supported (only 4-level programs)";
	case PAGING_PAE:
		return "PAE paging is not supported (only 4-level programs)";
	default:
		return "5-level paging is not supported (only 4-level programs)";
	}
}

static bool uses_address_space_1(const struct op *op)
{
	switch (op->kind) {
	case OP_MEMSLOT_SET:
	case OP_MEMSLOT_DELETE:
	case OP_MEMSLOT_MOVE:
	case OP_MEMSLOT_FLAGS:
		return op->memslot.as_id != 0;
	case OP_GEN_JUMP:
		return op->gen_jump.as_id != 0;
	default:
		return false;
	}
}

static int check_scope(const struct program *prog, char *err, size_t errlen)
{
	bool paging = false;

	for (uint32_t i = 0; i < prog->n_ops; i++) {
		const struct op *op = &prog->ops[i];

		if (op->kind == OP_MODE && op->mode.mode != PAGING_4LEVEL)
			return refuse(prog, i, mode_refusal(op->mode.mode), err, errlen);
		if (op->kind == OP_SMM)
			return refuse(prog, i, "SMM is not supported", err, errlen);
		/* The runtime drives one vCPU (its guest code and checks are per vCPU). */
		if (op->kind == OP_VCPU && op->vcpu.id != 0)
			return refuse(prog, i, "several vCPUs are not supported yet", err, errlen);
		/* KVM_GET_DIRTY_LOG re-protects pages, so leaving it out would change what the
		 * kernel does next; the selftest does not issue it yet. */
		if (op->kind == OP_DIRTY_LOG)
			return refuse(prog, i, "dirty_log is not supported yet", err, errlen);
		/* The kernel's zaps depend on pages the selftest cannot see or count. */
		if (op->kind == OP_MMU_PAGES)
			return refuse(prog, i, "mmu_pages is not supported yet", err, errlen);
		if (uses_address_space_1(op))
			return refuse(prog, i, "address space 1 (SMM) is not supported", err, errlen);
		if ((op->kind == OP_ACCESS || op->kind == OP_INVLPG) && !paging)
			return refuse(prog, i, "accesses before 'mode 4level' (paging off) are not supported",
				      err, errlen);
		paging |= op->kind == OP_MODE;
	}
	return 0;
}

/* Checks whose divergence is about the answer itself: div->expected replaces the model's. */
static bool answer_diverged(const struct divergence *div)
{
	return div->op.kind == OP_ACCESS &&
	       (div->check == CHECK_OUTCOME || div->check == CHECK_ERROR_CODE ||
		div->check == CHECK_CR2 || div->check == CHECK_GPA);
}

static void collect_answers(struct model_run *run)
{
	for (uint32_t i = 0; i < run->log.n; i++) {
		uint32_t op = run->log.accesses[i].op_index;

		if (op < PROG_MAX_OPS && !run->diverged[op]) {
			run->answered[op] = true;
			run->answers[op] = run->log.accesses[i].answer;
			run->stale[op] = run->log.accesses[i].stale;
			run->fresh[op] = run->log.accesses[i].fresh;
		}
	}
}

/* The unmodified model (no --bug) under the program's profile: its answers are the
 * architecture's, or KVM's where a documented rule says KVM differs, which is what a real
 * kernel gives too. Where it still diverges, the reference's answer is taken. */
static int run_model(const struct program *prog, const struct common_options *common,
		     struct model_run *run, char *err, size_t errlen)
{
	struct kvm_config cfg = common->config;
	struct divergence div;
	struct executor *ex;
	int ret;

	cfg.bugs = 0;
	ex = executor_new(&cfg, EXEC_SHADOW_MMU, err, errlen);
	if (!ex)
		return -1;
	executor_set_log(ex, &run->log);
	executor_set_harness_log(ex, &run->trace);
	ret = executor_begin(ex);
	for (uint32_t i = 0; ret >= 0 && i < prog->n_ops; i++) {
		ret = executor_step(ex, i, &prog->ops[i], &div);
		if (ret > 0 && answer_diverged(&div)) {
			run->diverged[i] = run->answered[i] = true;
			run->answers[i] = div.expected;
		}
	}
	if (ret >= 0)
		ret = executor_finish(ex, prog, &div);
	if (ret < 0)
		snprintf(err, errlen, "--selftest: the model could not run the program: %s", executor_error(ex));
	executor_free(ex);
	if (ret < 0)
		return -1;
	collect_answers(run);
	return 0;
}

/* What the run did that a guest on a real kernel could not be made to do the same way. */
static int check_run(const struct program *prog, const struct model_run *run, char *err, size_t errlen)
{
	if (run->trace.overflow)
		return snprintf(err, errlen, "--selftest: the program makes more than %d table writes",
				EXECUTOR_HARNESS_LOG_MAX), -1;
	if (run->log.shut_down)
		return snprintf(err, errlen, "--selftest: KVM shuts this program's VM down (a root "
				"outside every memslot); not supported"), -1;
	for (uint32_t i = 0; i < run->trace.n; i++) {
		const struct harness_event *e = &run->trace.events[i];

		if (e->kind == HARNESS_EVENT_TABLE_WRITE && e->fallback)
			return refuse(prog, e->op_index, "a table write while the root cannot reach the "
				      "harness's physmap is not supported", err, errlen);
		if (e->kind == HARNESS_EVENT_TABLE_WRITE && e->len != 8)
			return refuse(prog, e->op_index, "only 8-byte paging entries", err, errlen);
	}
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (prog->ops[i].kind == OP_ACCESS && !run->answered[i])
			return refuse(prog, i, "the model did not run this access", err, errlen);
	return 0;
}

/* ---- writing the C ---- */

static void put_header(FILE *out, const struct common_options *common, const char *source)
{
	fprintf(out,
		"/* KVM selftest generated by `shadowfuzz export --selftest` from %s.\n"
		" *\n"
		" * Replays the program below on this machine's KVM through /dev/kvm (raw ioctls, no\n"
		" * selftest library) and checks every access against the architecture's answer,\n"
		" * which shadowfuzz worked out with its reference and its unmodified KVM model\n"
		" * (--profile %s). Meant for a host on shadow paging: kvm_intel.ept=0 or\n"
		" * kvm_amd.npt=0 (with TDP the answers still hold, but the shadow MMU is not used).\n"
		" *\n"
		" *   cc -O1 -Wall -o selftest THIS.c && ./selftest\n"
		" *\n"
		" * Exit status: 0 every access gave the architecture's answer; 1 one did not (each\n"
		" * is printed: the op, the gva, expected and got); 4 skipped (no usable /dev/kvm, or\n"
		" * the vCPU lacks what the program needs).\n"
		" *\n"
		" * The sequence is shadowfuzz's executor's: memslot updates are the VMM's ioctls;\n"
		" * every page-table write (a `pte` op, the entries a `map` op makes, root entry 0\n"
		" * installed before a root is loaded) is a guest CPL0 store through the harness's\n"
		" * physmap, so KVM sees it as a guest write wherever it write-protects; `mode\n"
		" * 4level` loads the program's root with MOV CR3 (the vCPU already runs in long\n"
		" * mode, on a boot root that maps the same harness pages); `control` is MOV CR0,\n"
		" * MOV CR4, WRMSR EFER; accesses are 1-byte reads, writes (storing back the byte\n"
		" * found there) and fetches at CPL0 or CPL3. */\n",
		source, kvm_profile_name(common->profile));
}

static void put_program(FILE *out, const struct program *prog)
{
	fprintf(out, "/* The program, one op a line (shadowfuzz's text form). */\n"
		     "static const char *const program[] = {\n");
	for (uint32_t i = 0; i < prog->n_ops; i++) {
		char text[160];

		op_format(&prog->ops[i], text, sizeof(text));
		fprintf(out, "\t\"%s\", /* op %u */\n", text, i);
	}
	if (!prog->n_ops)
		fprintf(out, "\t\"(empty program)\",\n");
	fprintf(out, "};\n\n");
}

static bool op_sets(const struct op *op, enum control_bit bit)
{
	return op->kind == OP_CONTROL && (op->control.mask & op->control.value & bit);
}

static bool is_root(const struct program *prog, gpa_t table)
{
	if (table == table_pool_gpa(0))
		return true;
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (prog->ops[i].kind == OP_CR3 && table_pool_gpa(prog->ops[i].cr3.table) == table)
			return true;
	return false;
}

/* 1 GiB pages: a 1G map, or a present entry with PS written into a table some root entry
 * ever pointed at (conservative: that table may be used at another level too). */
static bool may_use_1g_pages(const struct program *prog, const struct executor_harness_log *trace)
{
	gpa_t level3[EXECUTOR_HARNESS_LOG_MAX];
	unsigned n = 0;

	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (prog->ops[i].kind == OP_MAP && prog->ops[i].map.level == MAP_LEVEL_1G)
			return true;
	for (uint32_t i = 0; i < trace->n; i++) {
		const struct harness_event *e = &trace->events[i];

		if (e->kind == HARNESS_EVENT_TABLE_WRITE && (e->value & PT_PRESENT_MASK) && is_root(prog, e->gpa & PAGE_MASK))
			level3[n++] = e->value & PT64_BASE_ADDR_MASK;
	}
	for (uint32_t i = 0; i < trace->n; i++) {
		const struct harness_event *e = &trace->events[i];

		if (e->kind != HARNESS_EVENT_TABLE_WRITE || (e->value & (PT_PRESENT_MASK | PT_PAGE_SIZE_MASK)) !=
		    (PT_PRESENT_MASK | PT_PAGE_SIZE_MASK))
			continue;
		for (unsigned t = 0; t < n; t++)
			if (level3[t] == (e->gpa & PAGE_MASK))
				return true;
	}
	return false;
}

/* Canonical upper-half gvas: kvm_pvm keeps them (the runtime's check_pvm). */
static bool uses_upper_half(const struct program *prog)
{
	for (uint32_t i = 0; i < prog->n_ops; i++)
		if (prog->ops[i].kind == OP_ACCESS && prog->ops[i].access.gva >= 0xffff800000000000ull)
			return true;
	return false;
}

static void put_requirements(FILE *out, const struct program *prog, const struct common_options *common,
			     const struct model_run *run)
{
	bool nx = false, smep = false, smap = false;
	uint64_t address_bits = 0;

	for (uint32_t i = 0; i < prog->n_ops; i++) {
		nx |= op_sets(&prog->ops[i], CTRL_EFER_NXE);
		smep |= op_sets(&prog->ops[i], CTRL_CR4_SMEP);
		smap |= op_sets(&prog->ops[i], CTRL_CR4_SMAP);
	}
	for (uint32_t i = 0; i < run->trace.n; i++)
		if (run->trace.events[i].kind == HARNESS_EVENT_TABLE_WRITE)
			address_bits |= run->trace.events[i].value & ENTRY_ADDRESS_BITS;
	fprintf(out,
		"/* What the expected answers assume of the vCPU: the model's MAXPHYADDR, the address\n"
		" * bits the program's entries use, the features its control ops turn on and its pages\n"
		" * may use, and whether it accesses the upper half of the address space. */\n"
		"#define MODEL_MAXPHYADDR %d\n#define ADDRESS_BITS_USED %#llxull\n"
		"#define NEEDS_NX %d\n#define NEEDS_SMEP %d\n#define NEEDS_SMAP %d\n#define NEEDS_1G_PAGES %d\n"
		"#define USES_UPPER_HALF %d\n\n",
		common->config.maxphyaddr, (unsigned long long)address_bits, nx, smep, smap,
		may_use_1g_pages(prog, &run->trace), uses_upper_half(prog));
}

static const char *errno_name(int ret)
{
	static const struct {
		int value;
		const char *name;
	} names[] = { { 0, "0" }, { -EINVAL, "-EINVAL" }, { -EEXIST, "-EEXIST" }, { -ENOMEM, "-ENOMEM" },
		      { -EFAULT, "-EFAULT" }, { -EPERM, "-EPERM" }, { -ENOSPC, "-ENOSPC" } };
	static char other[16];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].value == ret)
			return names[i].name;
	snprintf(other, sizeof(other), "%d", ret);
	return other;
}

static void put_memslot_flags(FILE *out, uint32_t flags)
{
	if (flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		fprintf(out, "%#x", flags);
	else if (flags == (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		fprintf(out, "KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY");
	else
		fprintf(out, "%s", flags == KVM_MEM_READONLY	     ? "KVM_MEM_READONLY"
				   : flags == KVM_MEM_LOG_DIRTY_PAGES ? "KVM_MEM_LOG_DIRTY_PAGES"
								      : "0");
}

/* The VMM's record of its slots, as the executor keeps it (region_for_op, remember_slot):
 * delete, move and flags pass the region last set, changed in one field. */
struct slot_records {
	bool valid[KVM_USER_MEM_SLOTS];
	struct kvm_userspace_memory_region region[KVM_USER_MEM_SLOTS];
};

static struct kvm_userspace_memory_region region_for_op(const struct slot_records *slots, const struct op *op)
{
	struct kvm_userspace_memory_region region = { 0 };
	unsigned id = op->memslot.id;

	if (id < KVM_USER_MEM_SLOTS && slots->valid[id])
		region = slots->region[id];
	region.slot = id;
	if (op->kind == OP_MEMSLOT_SET) {
		region.flags = op->memslot.flags;
		region.guest_phys_addr = op->memslot.gpa;
		region.memory_size = op->memslot.size;
		region.userspace_addr = op->memslot.hva;
	} else if (op->kind == OP_MEMSLOT_DELETE) {
		region.memory_size = 0;
	} else if (op->kind == OP_MEMSLOT_MOVE) {
		region.guest_phys_addr = op->memslot.gpa;
	} else {
		region.flags = op->memslot.flags;
	}
	return region;
}

static void put_memslot(FILE *out, uint32_t i, const struct op *op, struct slot_records *slots, int ret)
{
	struct kvm_userspace_memory_region r = region_for_op(slots, op);

	fprintf(out, "\tMEMSLOT(%u, %u, %s, .slot = %u, .flags = ", i,
		op->kind == OP_MEMSLOT_SET ? op->memslot.host_page_shift : 12, errno_name(ret), r.slot);
	put_memslot_flags(out, r.flags);
	fprintf(out, ", .guest_phys_addr = %#llx, .memory_size = %#llx, .userspace_addr = %#llx),\n",
		(unsigned long long)r.guest_phys_addr, (unsigned long long)r.memory_size,
		(unsigned long long)r.userspace_addr);
	if (ret == 0 && r.slot < KVM_USER_MEM_SLOTS) {
		slots->valid[r.slot] = r.memory_size != 0;
		slots->region[r.slot] = r;
	}
}

/* Root entry 0, installed by mode and cr3 ops, is the harness's own (with U, see the
 * runtime's HARNESS_ROOT_ENTRY); every other write is the program's value. */
static void put_table_write(FILE *out, const struct op *op, const struct harness_event *e)
{
	bool root_entry = (op->kind == OP_MODE || op->kind == OP_CR3) && !(e->gpa & ~PAGE_MASK) &&
			  e->value == physmap_root_entry(PAGING_4LEVEL);

	if (root_entry)
		fprintf(out, "\tTABLE_WRITE(%u, %#llx, HARNESS_ROOT_ENTRY),\n", e->op_index,
			(unsigned long long)e->gpa);
	else
		fprintf(out, "\tTABLE_WRITE(%u, %#llx, %#llx),\n", e->op_index, (unsigned long long)e->gpa,
			(unsigned long long)e->value);
}

struct bit_name {
	enum control_bit bit;
	const char *name; /* the runtime's macro for it */
};

static void put_bits(FILE *out, const char *field, const struct op *op, const struct bit_name *map, size_t n)
{
	const char *sep[2] = { "", "" };
	char clear[96] = "", set[96] = "";

	for (size_t i = 0; i < n; i++) {
		bool on = op->control.value & map[i].bit;
		char *buf = on ? set : clear;

		if (!(op->control.mask & map[i].bit))
			continue;
		snprintf(buf + strlen(buf), 96 - strlen(buf), "%s%s", sep[on], map[i].name);
		sep[on] = " | ";
	}
	if (clear[0] || set[0])
		fprintf(out, ", .%s = { .clear = %s, .set = %s }", field, clear[0] ? clear : "0", set[0] ? set : "0");
}

/* CR4.PKE is left out, as the executor does: KVM hides PKU from shadow-paging guests. */
static void put_control(FILE *out, uint32_t i, const struct op *op)
{
	static const struct bit_name cr0[] = { { CTRL_CR0_WP, "CR0_WP" } },
		cr4[] = { { CTRL_CR4_PSE, "CR4_PSE" }, { CTRL_CR4_SMEP, "CR4_SMEP" }, { CTRL_CR4_SMAP, "CR4_SMAP" } },
		efer[] = { { CTRL_EFER_NXE, "EFER_NXE" } }, rflags[] = { { CTRL_RFLAGS_AC, "RFLAGS_AC" } };

	if (!(op->control.mask & ~CTRL_CR4_PKE)) {
		fprintf(out, "\t/* no step: CR4.PKE #GPs under shadow paging, as the executor models */\n");
		return;
	}
	fprintf(out, "\tCONTROL(%u", i);
	put_bits(out, "cr0", op, cr0, 1);
	put_bits(out, "cr4", op, cr4, 3);
	put_bits(out, "efer", op, efer, 1);
	put_bits(out, "rflags", op, rflags, 1);
	fprintf(out, "),\n");
}

static void put_expect(FILE *out, const struct model_access *a)
{
	if (a->outcome == REF_PAGE_FAULT)
		fprintf(out, "EXPECT_PF(%#x, %#llx)", a->error_code, (unsigned long long)a->cr2);
	else if (a->outcome == REF_GP_FAULT)
		fprintf(out, "EXPECT_GP");
	else
		fprintf(out, "EXPECT_OK(%#llx)", (unsigned long long)a->gpa);
}

static void put_access(FILE *out, uint32_t i, const struct op *op, const struct model_run *run)
{
	static const char *const kinds[] = { "READ", "WRITE", "FETCH" };
	fprintf(out, "\t%s(%u, %s, %u, %#llx, ", run->stale[i] ? "ACCESS_EITHER" : "ACCESS", i,
		kinds[op->access.kind], op->access.cpl, (unsigned long long)op->access.gva);
	put_expect(out, &run->answers[i]);
	if (run->stale[i]) {
		fprintf(out, ", ");
		put_expect(out, &run->fresh[i]);
	}
	fprintf(out, "),%s\n", run->diverged[i] ? " /* the reference's: the unmodified model diverges here */" :
				run->stale[i]  ? " /* a stale translation, or the guest's tables' */" : "");
}

/* The op's own guest step, after the harness events the executor traced for it. */
static void put_op_step(FILE *out, uint32_t i, const struct op *op, const struct model_run *run,
			unsigned *cr3_table, bool *paging)
{
	switch (op->kind) {
	case OP_MODE:
		*paging = true;
		fprintf(out, "\tLOAD_CR3(%u, %#llx),\n", i, (unsigned long long)table_pool_gpa(*cr3_table));
		break;
	case OP_CR3:
		*cr3_table = op->cr3.table;
		if (*paging)
			fprintf(out, "\tLOAD_CR3(%u, %#llx),\n", i, (unsigned long long)table_pool_gpa(*cr3_table));
		else
			fprintf(out, "\t/* no step: paging is off for the program; T%u becomes the root at 'mode 4level' */\n",
				*cr3_table);
		break;
	case OP_CONTROL:
		put_control(out, i, op);
		break;
	case OP_PKRU:
		fprintf(out, "\t/* no step: without CR4.PKE (hidden under shadow paging) PKRU changes nothing */\n");
		break;
	case OP_ACCESS:
		put_access(out, i, op, run);
		break;
	case OP_INVLPG:
		fprintf(out, "\tINVLPG(%u, %#llx),\n", i, (unsigned long long)op->invlpg.gva);
		break;
	case OP_GEN_JUMP:
		fprintf(out, "\tGENERATION(%u, %u),\n", i, op->gen_jump.count);
		break;
	default:
		break;
	}
}

static void put_steps(FILE *out, const struct program *prog, const struct model_run *run)
{
	static struct slot_records slots;
	unsigned cr3_table = 0;
	bool paging = false;
	uint32_t e = 0;

	memset(&slots, 0, sizeof(slots));
	fprintf(out, "/* The steps, op by op, with the architecture's answer to every access. */\n"
		     "static const struct step steps[] = {\n");
	for (uint32_t i = 0; i < prog->n_ops; i++) {
		const struct op *op = &prog->ops[i];
		char text[160];

		op_format(&prog->ops[i], text, sizeof(text));
		fprintf(out, "\t/* op %u: %s */\n", i, text);
		for (; e < run->trace.n && run->trace.events[e].op_index == i; e++) {
			const struct harness_event *ev = &run->trace.events[e];

			if (ev->kind == HARNESS_EVENT_MEMSLOT)
				put_memslot(out, i, op, &slots, ev->ret);
			else
				put_table_write(out, op, ev);
		}
		put_op_step(out, i, op, run, &cr3_table, &paging);
	}
	fprintf(out, "};\n");
}

int export_selftest(FILE *out, const struct program *prog, const struct common_options *common,
		    const char *source, char *err, size_t errlen)
{
	static struct model_run run;
	const char *marker = strstr(selftest_runtime, PROGRAM_MARKER);

	memset(&run, 0, sizeof(run));
	if (!marker || selftest_runtime_end <= marker) {
		snprintf(err, errlen, "--selftest: the embedded runtime lacks its program marker");
		return -1;
	}
	if (check_scope(prog, err, errlen) || run_model(prog, common, &run, err, errlen) ||
	    check_run(prog, &run, err, errlen))
		return -1;
	put_header(out, common, source);
	fwrite(selftest_runtime, 1, (size_t)(marker - selftest_runtime), out);
	put_program(out, prog);
	put_requirements(out, prog, common, &run);
	put_steps(out, prog, &run);
	fputs(marker + strlen(PROGRAM_MARKER), out);
	return 0;
}
