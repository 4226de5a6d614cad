/* shadowfuzz trace FILE: replays one program and shows, op by op, the op, for an access the
 * architecture's guest walk, the instruction the reference executed (Capstone), the shadow
 * walk the model's CPU used and both answers, then the model's MMU events named after
 * KVM's tracepoints (core/mmu_trace.h). A divergence is reported at the end as `run`
 * reports it. --json writes the same as JSON lines. Exit: 0 pass, 1 divergence, 2 bad
 * usage or input. */
#define _GNU_SOURCE
#include "trace.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "executor.h"
#include "program.h"

/* Default output wraps event lists at this column. */
#define TRACE_WRAP 120
#define INDENT "      "

struct trace {
	FILE *out;
	bool json, verbose;
	uint32_t first, last; /* --ops, inclusive */
	bool showing;         /* the running op is in the range */
	uint32_t op_index;
	enum paging_mode mode; /* the mode the running op started in */
	unsigned vcpu;         /* the vCPU it runs on */
	json_t *op_json;       /* --json: the running op's object */
	struct kvm_mmu_trace_event *events; /* the running op's, printed after it */
	size_t n_events, cap_events, lost_events;
	csh cs[2]; /* Capstone handles: [0] 32-bit code, [1] 64-bit code */
};

/* ---- fields, written once for text ("key=value") and JSON ---- */

struct sink {
	json_t *obj; /* JSON: the object the fields go to */
	char *buf;   /* text: appended as " key=value" */
	size_t len, used;
};

static void put_text(struct sink *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->used >= s->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->used, s->len - s->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->used = s->used + (size_t)n < s->len ? s->used + (size_t)n : s->len - 1;
}

/* 64-bit values go to JSON as hex strings: parsers keep 53 bits of a number. */
static void put_hex(struct sink *s, const char *key, uint64_t value)
{
	char hex[24];

	snprintf(hex, sizeof(hex), "%#llx", (unsigned long long)value);
	if (s->obj)
		json_object_set_new(s->obj, key, json_string(hex));
	else
		put_text(s, " %s=%s", key, hex);
}

static void put_int(struct sink *s, const char *key, long long value)
{
	if (s->obj)
		json_object_set_new(s->obj, key, json_integer(value));
	else
		put_text(s, " %s=%lld", key, value);
}

static void put_str(struct sink *s, const char *key, const char *value)
{
	if (s->obj)
		json_object_set_new(s->obj, key, json_string(value));
	else
		put_text(s, " %s=%s", key, value);
}

/* Text shows only a true flag, by its name. */
static void put_flag(struct sink *s, const char *key, bool value)
{
	if (s->obj)
		json_object_set_new(s->obj, key, json_boolean(value));
	else if (value)
		put_text(s, " %s", key);
}

/* ---- decoding ---- */

static int root_level(enum paging_mode mode)
{
	static const int levels[PAGING_MODE_COUNT] = {
		[PAGING_32] = 2, [PAGING_PAE] = 3, [PAGING_4LEVEL] = 4, [PAGING_5LEVEL] = 5,
	};
	return (unsigned)mode < PAGING_MODE_COUNT ? levels[mode] : 0;
}

/* A guest paging entry's flags as "P|W|U|A|D|PS|G|NX|PK=n"; bit 7 of a 4K entry is PAT. */
static void entry_flags(uint64_t value, int level, char *buf, size_t len)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} names[] = {
		{ PT_PRESENT_MASK, "P" }, { PT_WRITABLE_MASK, "W" }, { PT_USER_MASK, "U" },
		{ PT_PWT_MASK, "PWT" },   { PT_PCD_MASK, "PCD" },    { PT_ACCESSED_MASK, "A" },
		{ PT_DIRTY_MASK, "D" },   { PT_PAGE_SIZE_MASK, "PS" }, { PT_GLOBAL_MASK, "G" },
		{ PT64_NX_MASK, "NX" },
	};
	struct sink s = { .buf = buf, .len = len };
	unsigned pkey = (value >> PT64_PKEY_SHIFT) & 15;

	buf[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (value & names[i].bit)
			put_text(&s, "%s%s", s.used ? "|" : "",
				 names[i].bit == PT_PAGE_SIZE_MASK && level == 1 ? "PAT" : names[i].name);
	if (pkey)
		put_text(&s, "%sPK=%u", s.used ? "|" : "", pkey);
	if (!s.used)
		put_text(&s, "-");
}

/* ACC_* as KVM prints page access: W, U, X or '-'. */
static const char *access_text(unsigned access, char buf[4])
{
	buf[0] = access & ACC_WRITE_MASK ? 'W' : '-';
	buf[1] = access & ACC_USER_MASK ? 'U' : '-';
	buf[2] = access & ACC_EXEC_MASK ? 'X' : '-';
	buf[3] = 0;
	return buf;
}

static const char *kind_name(enum ref_access_kind kind)
{
	return kind == REF_WRITE ? "write" : kind == REF_FETCH ? "fetch" : "read";
}

/* The role of a shadow page (union kvm_mmu_page_role); full adds every bit. */
static void put_role(struct sink *s, union kvm_mmu_page_role role, bool full)
{
	char acc[4];

	put_int(s, "level", role.level);
	put_str(s, "access", access_text(role.access, acc));
	put_flag(s, "direct", role.direct);
	if (!full)
		return;
	put_int(s, "quadrant", role.quadrant);
	put_int(s, "gpte_is_8_bytes", role.gpte_is_8_bytes);
	put_int(s, "cr0_wp", role.cr0_wp);
	put_int(s, "smep_andnot_wp", role.smep_andnot_wp);
	put_int(s, "smap_andnot_wp", role.smap_andnot_wp);
	put_int(s, "nxe", role.nxe);
	put_int(s, "smm", role.smm);
	put_int(s, "invalid", role.invalid);
}

/* ---- events ---- */

enum event_field {
	F_ADDR = 1 << 0, F_VALUE = 1 << 1, F_GEN = 1 << 2, F_GFN = 1 << 3, F_EC = 1 << 4,
	F_LEVEL = 1 << 5, F_AS = 1 << 6, F_ACCESS = 1 << 7, F_CREATED = 1 << 8, F_WRITE = 1 << 9,
	F_SP = 1 << 10,
};

/* Which fields of struct kvm_mmu_trace_event each event uses, and what they are called. */
static const struct event_shape {
	unsigned fields;
	const char *addr, *value, *ec, *level;
} shapes[KVM_EV_COUNT] = {
	[KVM_EV_PAGE_FAULT] = { .fields = F_ADDR | F_EC, .addr = "addr", .ec = "error_code" },
	[KVM_EV_PAGETABLE_WALK] = { .fields = F_ADDR | F_EC, .addr = "addr", .ec = "pferr" },
	[KVM_EV_PAGING_ELEMENT] = { .fields = F_VALUE | F_LEVEL, .value = "pte", .level = "level" },
	[KVM_EV_WALKER_ERROR] = { .fields = F_EC, .ec = "pferr" },
	[KVM_EV_GET_PAGE] = { .fields = F_SP | F_CREATED },
	[KVM_EV_PREPARE_ZAP_PAGE] = { .fields = F_SP },
	[KVM_EV_ZAP_ALL_FAST] = { .fields = F_VALUE, .value = "mmu_valid_gen" },
	[KVM_EV_SET_SPTE] = { .fields = F_LEVEL | F_GFN | F_VALUE, .value = "spte", .level = "level" },
	[KVM_EV_MARK_MMIO_SPTE] = { .fields = F_GFN | F_ACCESS | F_GEN | F_VALUE, .value = "spte" },
	[KVM_EV_HANDLE_MMIO_PAGE_FAULT] = { .fields = F_ADDR | F_GFN | F_ACCESS, .addr = "addr" },
	[KVM_EV_CHECK_MMIO_SPTE] = { .fields = F_VALUE | F_GEN, .value = "spte" },
	[KVM_EV_RMAP_WRITE_PROTECT] = { .fields = F_GFN },
	[KVM_EV_PTE_WRITE] = { .fields = F_ADDR | F_LEVEL, .addr = "gpa", .level = "bytes" },
	[KVM_EV_EMULATE_INSN] = { .fields = F_ADDR, .addr = "gva" },
	[KVM_EV_MMIO] = { .fields = F_ADDR | F_WRITE, .addr = "gpa" },
	[KVM_EV_INVALIDATE_MMIO_SPTES] = { .fields = F_AS | F_GEN },
	[KVM_EV_INSTALL_NEW_MEMSLOTS] = { .fields = F_AS | F_GEN | F_VALUE, .value = "installs" },
	[KVM_EV_MAKE_MMU_PAGES_AVAILABLE] = { .fields = F_VALUE | F_LEVEL, .value = "available",
					      .level = "enospc" },
	[KVM_EV_CHANGE_MMU_PAGES] = { .fields = F_VALUE, .value = "n_max_mmu_pages" },
	[KVM_EV_UNSYNC_PAGE] = { .fields = F_SP },
	[KVM_EV_SYNC_PAGE] = { .fields = F_SP },
};

static void put_event(struct sink *s, const struct kvm_mmu_trace_event *ev, bool full)
{
	const struct event_shape *shape = &shapes[ev->event];
	char acc[4];

	if (shape->fields & F_SP) {
		put_hex(s, "gfn", ev->sp.gfn);
		put_role(s, ev->sp.role, full);
		if (full) {
			put_hex(s, "hpa", ev->sp.hpa);
			put_int(s, "root_count", ev->sp.root_count);
		}
	}
	if (shape->fields & F_CREATED)
		put_flag(s, "created", ev->created);
	if (shape->fields & F_AS)
		put_int(s, "as", ev->as_id);
	if (shape->fields & F_ADDR)
		put_hex(s, shape->addr, ev->addr);
	if (shape->fields & F_LEVEL)
		put_int(s, shape->level, ev->level);
	if (shape->fields & F_GFN)
		put_hex(s, "gfn", ev->gfn);
	if (shape->fields & F_EC)
		put_hex(s, shape->ec, ev->error_code);
	if (shape->fields & F_ACCESS)
		put_str(s, "access", access_text(ev->access, acc));
	if (shape->fields & F_VALUE)
		put_hex(s, shape->value, ev->value);
	if (shape->fields & F_GEN)
		put_hex(s, "gen", ev->gen);
	if (shape->fields & F_WRITE)
		put_flag(s, "write", ev->write);
}

static void record_event(void *ctx, const struct kvm_mmu_trace_event *ev)
{
	struct trace *t = ctx;

	if (!t->showing)
		return;
	if (t->n_events == t->cap_events) {
		size_t cap = t->cap_events ? 2 * t->cap_events : 256;
		struct kvm_mmu_trace_event *grown = realloc(t->events, cap * sizeof(*grown));

		if (!grown) {
			t->lost_events++;
			return;
		}
		t->events = grown;
		t->cap_events = cap;
	}
	t->events[t->n_events++] = *ev;
}

/* One event as text. The default output leaves out the model walker's paging elements:
 * the guest line shows the architecture's walk, and a walker that reads other entries
 * shows up as a divergence. */
static bool event_shown(const struct trace *t, const struct kvm_mmu_trace_event *ev)
{
	return t->verbose || ev->event != KVM_EV_PAGING_ELEMENT;
}

static void event_text(const struct trace *t, const struct kvm_mmu_trace_event *ev, char *buf,
		       size_t len)
{
	struct sink s = { .buf = buf, .len = len };

	put_text(&s, "%s", kvm_mmu_event_name(ev->event));
	put_event(&s, ev, t->verbose);
}

/* Default: events joined with "; " and wrapped, a run of equal ones shown once with "xN".
 * Verbose: one event a line with every field. */
static void print_events_text(struct trace *t)
{
	char line[4096], item[1024], next[1024];
	size_t col = 0, i = 0;

	while (i < t->n_events) {
		size_t repeat = 1, len;

		if (!event_shown(t, &t->events[i])) {
			i++;
			continue;
		}
		event_text(t, &t->events[i++], item, sizeof(item));
		for (; i < t->n_events; i++, repeat++) {
			event_text(t, &t->events[i], next, sizeof(next));
			if (strcmp(next, item))
				break;
		}
		len = strlen(item);
		if (repeat > 1)
			snprintf(item + len, sizeof(item) - len, " x%zu", repeat);
		if (col && (t->verbose || col + strlen(item) + 2 > TRACE_WRAP)) {
			fprintf(t->out, INDENT "kvm    %s\n", line);
			col = 0;
		}
		col += (size_t)snprintf(line + col, sizeof(line) - col, "%s%s", col ? "; " : "", item);
		if (col >= sizeof(line))
			col = sizeof(line) - 1;
	}
	if (col)
		fprintf(t->out, INDENT "kvm    %s\n", line);
	if (t->lost_events)
		fprintf(t->out, INDENT "kvm    (%zu events lost: out of memory)\n", t->lost_events);
}

static void print_events_json(struct trace *t)
{
	for (size_t i = 0; i < t->n_events; i++) {
		json_t *obj = json_object();
		struct sink s = { .obj = obj };

		json_object_set_new(obj, "type", json_string("event"));
		json_object_set_new(obj, "op", json_integer(t->op_index));
		json_object_set_new(obj, "event", json_string(kvm_mmu_event_name(t->events[i].event)));
		put_event(&s, &t->events[i], true);
		json_dumpf(obj, t->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', t->out);
		json_decref(obj);
	}
}

/* ---- an access ---- */

static void put_guest_entry(struct sink *s, int level, const struct ref_walk_entry *e)
{
	char flags[80];

	entry_flags(e->value, level, flags, sizeof(flags));
	put_int(s, "level", level);
	put_hex(s, "gpa", e->gpa);
	put_hex(s, "value", e->value);
	put_str(s, "flags", flags);
	if (!e->backed)
		put_flag(s, "unbacked", true);
}

/* The architecture's walk (the reference's reads, root first). */
static void print_guest_walk(struct trace *t, const struct ref_result *ref)
{
	char line[2048], flags[80];
	struct sink s = { .buf = line, .len = sizeof(line) };
	int top = root_level(t->mode);

	if (!ref->n_entries) {
		fprintf(t->out, INDENT "guest  %s\n", t->mode == PAGING_NONE ? "paging off: gpa = gva" : "no entry read");
		return;
	}
	for (int i = 0; i < ref->n_entries; i++) {
		if (t->verbose) {
			s.used = 0;
			put_guest_entry(&s, top - i, &ref->entries[i]);
			fprintf(t->out, INDENT "guest %s\n", line);
			continue;
		}
		entry_flags(ref->entries[i].value, top - i, flags, sizeof(flags));
		put_text(&s, "%sL%d %#llx %s%s", i ? "  " : "", top - i,
			 (unsigned long long)ref->entries[i].value, flags,
			 ref->entries[i].backed ? "" : " (unbacked)");
	}
	if (!t->verbose)
		fprintf(t->out, INDENT "guest  %s\n", line);
}

/* The access instruction the reference ran: its bytes, at the gva of the stub it ran. */
static bool disassemble(const struct trace *t, const struct ref_result *ref, enum ref_access_kind kind,
			char *buf, size_t len, char *bytes_hex, size_t hex_len)
{
	size_t n;
	const uint8_t *code = ref_access_insn(t->mode, kind, &n);
	cs_insn *insn;

	if (!code || cs_disasm(t->cs[t->mode >= PAGING_4LEVEL], code, n, ref->insn_gva, 1, &insn) != 1)
		return false;
	snprintf(buf, len, "%s %s", insn->mnemonic, insn->op_str);
	for (size_t i = 0; i < insn->size && 2 * i + 2 < hex_len; i++)
		snprintf(bytes_hex + 2 * i, hex_len - 2 * i, "%02x", insn->bytes[i]);
	cs_free(insn, 1);
	return true;
}

static void cpu_outcome_text(const struct cpu_access_result *cpu, char *buf, size_t len)
{
	switch (cpu->outcome) {
	case CPU_OK:
		snprintf(buf, len, "ok gpa=%#llx", (unsigned long long)cpu->gpa);
		break;
	case CPU_MMIO_EXIT:
		snprintf(buf, len, "MMIO exit gpa=%#llx", (unsigned long long)cpu->gpa);
		break;
	case CPU_PAGE_FAULT:
		snprintf(buf, len, "#PF error=%#x cr2=%#llx", cpu->error_code, (unsigned long long)cpu->cr2);
		break;
	case CPU_GP_FAULT:
		snprintf(buf, len, "#GP");
		break;
	case CPU_SHUTDOWN:
		snprintf(buf, len, "shutdown (triple fault)");
		break;
	case CPU_LIVELOCK:
		snprintf(buf, len, "livelock");
		break;
	default:
		snprintf(buf, len, "model error");
		break;
	}
}

/* The model's answer: the CPU's run (shadow MMU) or the walker's answer. */
static void model_text(const struct executor_access_trace *a, char *buf, size_t len)
{
	if (a->cpu) {
		char what[96];

		cpu_outcome_text(a->cpu, what, sizeof(what));
		snprintf(buf, len, "%s (%d fault%s%s)", what, a->cpu->faults, a->cpu->faults == 1 ? "" : "s",
			 a->cpu->emulated ? ", emulated" : "");
	} else if (a->model) {
		model_access_format(a->model, buf, len);
	} else {
		snprintf(buf, len, "no answer");
	}
}

/* A spte of the shadow walk; its level is its page's (role.level), or 3 in the pae_root. */
static void put_shadow_step(struct sink *s, const struct kvm_shadow_walk_step *step, bool full)
{
	if (!step->has_sp)
		put_int(s, "level", step->level);
	put_int(s, "index", step->index);
	put_hex(s, "spte", step->spte);
	put_hex(s, "table", step->table_hpa);
	if (!step->has_sp) {
		put_str(s, "sp", "pae_root");
		return;
	}
	put_hex(s, "sp_gfn", step->gfn);
	if (s->obj) {
		json_t *role = json_object();
		struct sink r = { .obj = role };

		put_role(&r, step->role, true);
		json_object_set_new(s->obj, "role", role);
		return;
	}
	put_role(s, step->role, full);
}

/* Default: one line, each step as "L<level> <page gfn>/<page access>[index]" and the last
 * spte's value; verbose: a line per spte with its page's whole role. */
static void print_shadow_walk(struct trace *t, const struct kvm_shadow_walk *w)
{
	char line[2048], acc[4];
	struct sink s = { .buf = line, .len = sizeof(line) };

	if (!VALID_PAGE(w->root_hpa)) {
		fprintf(t->out, INDENT "shadow no root loaded\n");
		return;
	}
	put_text(&s, "root %#llx", (unsigned long long)w->root_hpa);
	for (int i = 0; i < w->n; i++) {
		const struct kvm_shadow_walk_step *step = &w->steps[i];

		if (t->verbose) {
			s.used = 0;
			put_shadow_step(&s, step, true);
			fprintf(t->out, INDENT "shadow%s\n", line);
			continue;
		}
		if (step->has_sp)
			put_text(&s, " > L%d %#llx/%s%s[%u]", step->level, (unsigned long long)step->gfn,
				 access_text(step->role.access, acc), step->role.direct ? "/direct" : "",
				 step->index);
		else
			put_text(&s, " > pae_root[%u]", step->index);
	}
	if (!t->verbose)
		fprintf(t->out, INDENT "shadow %s = %#llx\n", line,
			(unsigned long long)(w->n ? w->steps[w->n - 1].spte : 0));
}

static void print_access_text(struct trace *t, const struct executor_access_trace *a)
{
	char insn[256], hex[64], expected[96], model[160];

	print_guest_walk(t, a->ref);
	if (disassemble(t, a->ref, a->check->kind, insn, sizeof(insn), hex, sizeof(hex)))
		fprintf(t->out, INDENT "insn   %#llx: %s  (%s; gva in %s, CPL%d)\n",
			(unsigned long long)a->ref->insn_gva, insn, hex,
			t->mode >= PAGING_4LEVEL ? "rdi" : "edi", a->check->cpl);
	if (a->cpu)
		print_shadow_walk(t, &a->shadow);
	model_access_format(&a->expected, expected, sizeof(expected));
	model_text(a, model, sizeof(model));
	fprintf(t->out, INDENT "answer ref %s%s%s | model %s\n", expected, a->rule ? " by rule " : "",
		a->rule ? kvm_rule_name(a->rule) : "", model);
}

static json_t *answer_json(const struct model_access *answer)
{
	char text[96];

	model_access_format(answer, text, sizeof(text));
	return json_string(text);
}

static json_t *access_json(struct trace *t, const struct executor_access_trace *a)
{
	json_t *obj = json_object(), *walk = json_array(), *steps = json_array();
	struct sink s = { .obj = obj };
	char insn[256], hex[64], model[160];

	put_hex(&s, "gva", a->check->gva);
	put_str(&s, "kind", kind_name(a->check->kind));
	put_int(&s, "cpl", a->check->cpl);
	for (int i = 0; i < a->ref->n_entries; i++) {
		struct sink e = { .obj = json_object() };

		put_guest_entry(&e, root_level(t->mode) - i, &a->ref->entries[i]);
		json_array_append_new(walk, e.obj);
	}
	json_object_set_new(obj, "guest_walk", walk);
	if (disassemble(t, a->ref, a->check->kind, insn, sizeof(insn), hex, sizeof(hex))) {
		struct sink i = { .obj = json_object() };

		put_hex(&i, "gva", a->ref->insn_gva);
		put_str(&i, "bytes", hex);
		put_str(&i, "text", insn);
		json_object_set_new(obj, "insn", i.obj);
	}
	json_object_set_new(obj, "reference", answer_json(&a->expected));
	if (a->rule)
		put_str(&s, "rule", kvm_rule_name(a->rule));
	model_text(a, model, sizeof(model));
	put_str(&s, "model", model);
	if (a->cpu) {
		put_hex(&s, "shadow_root", a->shadow.root_hpa);
		for (int i = 0; i < a->shadow.n; i++) {
			struct sink e = { .obj = json_object() };

			put_shadow_step(&e, &a->shadow.steps[i], true);
			json_array_append_new(steps, e.obj);
		}
	}
	json_object_set_new(obj, "shadow_walk", steps);
	return obj;
}

static void on_access(void *ctx, const struct executor_access_trace *a)
{
	struct trace *t = ctx;

	if (!t->showing)
		return;
	if (t->json)
		json_object_set_new(t->op_json, "access", access_json(t, a));
	else
		print_access_text(t, a);
}

static void on_rule(void *ctx, enum kvm_rule rule)
{
	struct trace *t = ctx;

	if (!t->showing)
		return;
	if (t->json)
		json_object_set_new(t->op_json, "allowed_by_rule", json_string(kvm_rule_name(rule)));
	else
		fprintf(t->out, INDENT "rule   %s allowed the model's answer (docs/checking-rules.md)\n",
			kvm_rule_name(rule));
}

/* ---- the driver ---- */

static void op_begin(struct trace *t, uint32_t index, const struct op *op)
{
	char text[192];

	op_format_in_mode(op, t->mode, text, sizeof(text));
	t->n_events = 0;
	t->lost_events = 0;
	if (!t->json) {
		fprintf(t->out, "%3u  %s", index, text);
		if (t->vcpu)
			fprintf(t->out, "  (vCPU %u)", t->vcpu);
		fputc('\n', t->out);
		return;
	}
	t->op_json = json_pack("{s:s,s:i,s:i,s:s,s:s}", "type", "op", "op", (json_int_t)index, "vcpu",
			       (json_int_t)t->vcpu, "mode", paging_mode_name(t->mode), "text", text);
}

static void op_end(struct trace *t, int ret, const struct divergence *div)
{
	if (!t->json) {
		print_events_text(t);
		if (ret > 0)
			fprintf(t->out, INDENT "!!     divergence (%s): see below\n", check_name(div->check));
		return;
	}
	json_object_set_new(t->op_json, "diverged", json_boolean(ret > 0));
	json_dumpf(t->op_json, t->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', t->out);
	json_decref(t->op_json);
	t->op_json = NULL;
	if (t->lost_events)
		fprintf(stderr, "shadowfuzz trace: op %u: %zu events lost (out of memory)\n", t->op_index,
			t->lost_events);
	print_events_json(t);
}

static int run_traced(struct executor *ex, const struct program *prog, struct trace *t,
		      struct divergence *div)
{
	if (executor_begin(ex))
		return -1;
	for (uint32_t i = 0; i < prog->n_ops; i++) {
		int ret;

		t->op_index = i;
		t->mode = executor_paging_mode(ex);
		t->vcpu = executor_vcpu(ex);
		t->showing = i >= t->first && i <= t->last;
		if (t->showing)
			op_begin(t, i, &prog->ops[i]);
		ret = executor_step(ex, i, &prog->ops[i], div);
		if (t->showing)
			op_end(t, ret, div);
		t->showing = false;
		if (ret)
			return ret;
	}
	return executor_finish(ex, prog, div);
}

static void print_verdict(struct trace *t, const struct program *prog, int ret, const struct divergence *div)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem;

	if (!t->json) {
		if (ret) {
			fprintf(t->out, "\n");
			divergence_print(div, t->out);
		} else {
			fprintf(t->out, "PASS: %u ops, no divergence\n", prog->n_ops);
		}
		return;
	}
	if (!ret) {
		fprintf(t->out, "{\"type\":\"verdict\",\"result\":\"pass\",\"ops\":%u}\n", prog->n_ops);
		return;
	}
	mem = open_memstream(&text, &len);
	if (mem) {
		divergence_print(div, mem);
		fclose(mem);
	}
	json_t *obj = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "type", "verdict", "result", "divergence",
				"op", (json_int_t)div->op_index, "check", check_name(div->check), "rule",
				kvm_rule_name(div->rule), "report", text ? text : "");

	json_dumpf(obj, t->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', t->out);
	json_decref(obj);
	free(text);
}

/* ---- options ---- */

static void usage_trace(FILE *out)
{
	fprintf(out, "usage: shadowfuzz trace [options] FILE\n"
		     "Replays one program (text or binary) and shows, op by op: the op; for an access\n"
		     "the guest walk (the architecture's reads), the instruction the reference ran,\n"
		     "the shadow walk the model's CPU used, the allowed and the model's answer; then\n"
		     "the model's MMU events, named after KVM's tracepoints. A divergence is reported\n"
		     "at the end. Exit: 0 pass, 1 divergence, 2 bad usage or input.\n"
		     "  --json        JSON lines: one object per op, per event, and a verdict\n"
		     "  --ops A-B     show only ops A..B (or one op: --ops A); all ops still run\n"
		     "  -v, --verbose one event a line, every role bit, a line per walk entry\n");
	usage_common(out);
}

static int parse_ops(const char *arg, struct trace *t)
{
	char *end;
	unsigned long a, b;

	errno = 0;
	a = strtoul(arg, &end, 10);
	b = a;
	if (end != arg && *end == '-')
		b = strtoul(end + 1, &end, 10);
	if (errno || end == arg || *end || b < a || b >= PROG_MAX_OPS || *arg == '-') {
		fprintf(stderr, "shadowfuzz trace: --ops wants A-B with A <= B < %d, not '%s'\n",
			PROG_MAX_OPS, arg);
		return -1;
	}
	t->first = (uint32_t)a;
	t->last = (uint32_t)b;
	return 0;
}

/* Returns -1 when the trace should go on (argv[optind] is the program), else the exit code. */
static int parse_trace_options(int argc, char **argv, struct common_options *common, struct trace *t)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "ops", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "p:b:H:jo:vh", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, common);

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		if (opt == 'j') {
			t->json = true;
		} else if (opt == 'o') {
			if (parse_ops(optarg, t))
				return EXIT_USAGE;
		} else if (opt == 'v') {
			t->verbose = true;
		} else if (opt == 'h') {
			usage_trace(stdout);
			return EXIT_CLEAN;
		} else {
			usage_trace(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "shadowfuzz trace: %s\n", optind < argc ? "one program at a time" : "no program given");
		return EXIT_USAGE;
	}
	return -1;
}

static int open_disassembler(struct trace *t)
{
	if (cs_open(CS_ARCH_X86, CS_MODE_32, &t->cs[0]) != CS_ERR_OK)
		return -1;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &t->cs[1]) != CS_ERR_OK) {
		cs_close(&t->cs[0]);
		return -1;
	}
	return 0;
}

static int trace_file(const struct common_options *common, struct trace *t, const char *path)
{
	static struct program prog;
	struct executor_tracer tracer = {
		.ctx = t, .access = on_access, .kvm_event = record_event, .rule = on_rule,
	};
	struct divergence div;
	struct executor *ex;
	char err[512];
	int ret;

	if (program_load_file(path, &prog, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	ex = executor_new(&common->config, EXEC_SHADOW_MMU, err, sizeof(err));
	if (!ex) {
		fprintf(stderr, "shadowfuzz: %s\n", err);
		return EXIT_USAGE;
	}
	executor_set_audit(ex, true);
	executor_set_tracer(ex, &tracer);
	ret = run_traced(ex, &prog, t, &div);
	if (ret < 0) {
		fprintf(stderr, "%s: harness error: %s\n", path, executor_error(ex));
		executor_free(ex);
		return EXIT_USAGE;
	}
	print_verdict(t, &prog, ret, &div);
	executor_free(ex);
	return ret ? EXIT_DIVERGENCE : EXIT_CLEAN;
}

int cmd_trace(int argc, char **argv)
{
	struct common_options common = COMMON_OPTIONS_INIT;
	struct trace t = { .out = stdout, .last = PROG_MAX_OPS - 1 };
	int ret = parse_trace_options(argc, argv, &common, &t);

	if (ret >= 0)
		return ret;
	finish_common(&common);
	if (open_disassembler(&t)) {
		fprintf(stderr, "shadowfuzz trace: cannot open the Capstone disassembler\n");
		return EXIT_USAGE;
	}
	ret = trace_file(&common, &t, argv[optind]);
	cs_close(&t.cs[0]);
	cs_close(&t.cs[1]);
	free(t.events);
	return ret;
}
