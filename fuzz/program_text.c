/* Text form of programs: one op a line, '#' starts a comment. The parser follows the
 * vCPU and its paging mode and CR3 line by line and holds every op to the rules of program.h, so a
 * text program is exactly as valid as a decoded one; program_print writes the canonical
 * spelling, which parses back to the same program. */
#include <stdarg.h>
#include <string.h>

#include "program.h"
#include "../core/memslot.h"
#include "../oracle/harness_layout.h"

#define PKEY_MASK (0xfull << PT64_PKEY_SHIFT)
/* Fields on one line: "memslot set" with all seven key=value pairs is the longest op. */
#define MAX_TOKENS 16

static const char *const mode_names[PAGING_MODE_COUNT] = {
	"none", "32", "pae", "4level", "5level",
};

static const char *const kind_names[OP_KIND_COUNT] = {
	"mode", "control", "pkru", "cr3", "memslot_set", "memslot_delete", "memslot_move",
	"memslot_flags", "pte", "map", "access", "invlpg", "gen_jump", "smm", "dirty_log",
	"mmu_pages", "vcpu",
};

/* OP_CONTROL keywords in bit order. */
static const char *const control_names[] = { "wp", "pse", "smep", "smap", "pke", "nxe", "ac" };

/* Entry bits 0..8 by name; NX and the PKn protection key are handled apart. */
static const char *const entry_bit_names[] = { "P", "W", "U", "PWT", "PCD", "A", "D", "PS", "G" };

static const char *const access_names[] = { "read", "write", "fetch" };

/* OP_SMM by its enter field. */
static const char *const smm_names[] = { "leave", "enter" };

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const char *paging_mode_name(enum paging_mode mode)
{
	return (unsigned)mode < PAGING_MODE_COUNT ? mode_names[mode] : "?";
}

const char *op_kind_name(enum op_kind kind)
{
	return (unsigned)kind < OP_KIND_COUNT ? kind_names[kind] : "?";
}

/* ---- formatting ---- */

/* snprintf into a buffer piece by piece, counting what a big enough buffer would take. */
struct text_out {
	char *buf;
	size_t len;
	int n;
};

__attribute__((format(printf, 2, 3))) static void emit(struct text_out *o, const char *fmt, ...)
{
	size_t used = (size_t)o->n < o->len ? (size_t)o->n : o->len;
	va_list ap;
	int k;

	va_start(ap, fmt);
	if (used < o->len)
		k = vsnprintf(o->buf + used, o->len - used, fmt, ap);
	else
		k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	o->n += k;
}

static void emit_entry_flags(struct text_out *o, uint64_t flags)
{
	uint64_t unnamed = flags & ~(0x1ffull | PT64_NX_MASK | PKEY_MASK);
	const char *sep = "";

	if (!flags) {
		emit(o, "0");
		return;
	}
	for (unsigned bit = 0; bit < ARRAY_SIZE(entry_bit_names); bit++) {
		if (flags & (1ull << bit)) {
			emit(o, "%s%s", sep, entry_bit_names[bit]);
			sep = "|";
		}
	}
	if (unnamed) {
		emit(o, "%s0x%llx", sep, (unsigned long long)unnamed);
		sep = "|";
	}
	if (flags & PKEY_MASK) {
		emit(o, "%sPK%u", sep, (unsigned)((flags & PKEY_MASK) >> PT64_PKEY_SHIFT));
		sep = "|";
	}
	if (flags & PT64_NX_MASK)
		emit(o, "%sNX", sep);
}

static void emit_slot_flags(struct text_out *o, uint32_t flags)
{
	uint32_t unnamed = flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY);
	const char *sep = "";

	if (!flags) {
		emit(o, "0");
		return;
	}
	if (flags & KVM_MEM_LOG_DIRTY_PAGES) {
		emit(o, "log");
		sep = "|";
	}
	if (flags & KVM_MEM_READONLY) {
		emit(o, "%sro", sep);
		sep = "|";
	}
	if (unnamed)
		emit(o, "%s0x%x", sep, unnamed);
}

static const char *access_name(unsigned kind)
{
	return kind < ARRAY_SIZE(access_names) ? access_names[kind] : "?";
}

static const char *smm_name(unsigned enter)
{
	return enter < ARRAY_SIZE(smm_names) ? smm_names[enter] : "?";
}

static const char *host_page_name(unsigned shift)
{
	return shift == 30 ? "1G" : shift == 21 ? "2M" : shift == 12 ? "4K" : "?";
}

static const char *map_size_name(enum paging_mode mode, unsigned level)
{
	if (level == MAP_LEVEL_2M)
		return mode == PAGING_32 ? "4M" : "2M";
	return level == MAP_LEVEL_1G ? "1G" : level == MAP_LEVEL_4K ? "4K" : "?";
}

static void emit_slot_id(struct text_out *o, const struct op *op)
{
	emit(o, "as=%u slot=%u", op->memslot.as_id, op->memslot.id);
}

static void emit_op(struct text_out *o, const struct op *op, enum paging_mode mode)
{
	switch (op->kind) {
	case OP_MODE:
		emit(o, "mode %s", paging_mode_name(op->mode.mode));
		break;
	case OP_CONTROL:
		emit(o, "control");
		for (unsigned bit = 0; bit < ARRAY_SIZE(control_names); bit++)
			if (op->control.mask & (1u << bit))
				emit(o, " %s=%u", control_names[bit],
				     (op->control.value >> bit) & 1);
		break;
	case OP_PKRU:
		emit(o, "pkru 0x%08x", op->pkru.value);
		break;
	case OP_CR3:
		emit(o, "cr3 T%u", op->cr3.table);
		break;
	case OP_MEMSLOT_SET:
		emit(o, "memslot set ");
		emit_slot_id(o, op);
		emit(o, " gpa=0x%llx size=0x%llx hva=0x%llx flags=",
		     (unsigned long long)op->memslot.gpa, (unsigned long long)op->memslot.size,
		     (unsigned long long)op->memslot.hva);
		emit_slot_flags(o, op->memslot.flags);
		emit(o, " hpage=%s", host_page_name(op->memslot.host_page_shift));
		break;
	case OP_MEMSLOT_DELETE:
		emit(o, "memslot delete ");
		emit_slot_id(o, op);
		break;
	case OP_MEMSLOT_MOVE:
		emit(o, "memslot move ");
		emit_slot_id(o, op);
		emit(o, " gpa=0x%llx", (unsigned long long)op->memslot.gpa);
		break;
	case OP_MEMSLOT_FLAGS:
		emit(o, "memslot flags ");
		emit_slot_id(o, op);
		emit(o, " flags=");
		emit_slot_flags(o, op->memslot.flags);
		break;
	case OP_PTE:
		emit(o, "pte T%u[%u] = 0x%llx", op->pte.table, op->pte.index,
		     (unsigned long long)op->pte.value);
		break;
	case OP_MAP:
		emit(o, "map 0x%llx -> 0x%llx size=%s leaf=", (unsigned long long)op->map.gva,
		     (unsigned long long)op->map.gpa, map_size_name(mode, op->map.level));
		emit_entry_flags(o, op->map.leaf_flags);
		emit(o, " upper=");
		emit_entry_flags(o, op->map.upper_flags);
		break;
	case OP_ACCESS:
		emit(o, "%s 0x%llx%s", access_name(op->access.kind),
		     (unsigned long long)op->access.gva, op->access.cpl == 3 ? " user" : "");
		break;
	case OP_INVLPG:
		emit(o, "invlpg 0x%llx", (unsigned long long)op->invlpg.gva);
		break;
	case OP_GEN_JUMP:
		emit(o, "generation as=%u jump=%u", op->gen_jump.as_id, op->gen_jump.count);
		break;
	case OP_SMM:
		emit(o, "smm %s", smm_name(op->smm.enter));
		break;
	case OP_MMU_PAGES:
		emit(o, "mmu_pages %u", op->mmu_pages.count);
		break;
	case OP_DIRTY_LOG:
		emit(o, "dirty_log ");
		emit_slot_id(o, op);
		break;
	case OP_VCPU:
		emit(o, "vcpu %u", op->vcpu.id);
		break;
	default:
		emit(o, "op%u", op->kind);
		break;
	}
}

int op_format_in_mode(const struct op *op, enum paging_mode mode, char *buf, size_t len)
{
	struct text_out o = { buf, len, 0 };

	if (len)
		buf[0] = '\0';
	emit_op(&o, op, mode);
	return o.n;
}

int op_format(const struct op *op, char *buf, size_t len)
{
	return op_format_in_mode(op, PAGING_4LEVEL, buf, len);
}

void program_print(const struct program *prog, FILE *out)
{
	struct prog_state state;

	prog_state_init(&state);
	for (uint32_t i = 0; i < prog->n_ops && i < PROG_MAX_OPS; i++) {
		const struct op *op = &prog->ops[i];
		char line[512];

		op_format_in_mode(op, prog_state_mode(&state), line, sizeof(line));
		fprintf(out, "%s\n", line);
		prog_state_after(&state, op);
	}
}

/* ---- parsing ---- */

struct token {
	const char *s;
	size_t len;
};

struct parser {
	const char *name;
	unsigned line;
	/* The vCPU of the line being parsed, and its mode and CR3 table before it. */
	struct prog_state state;
	enum paging_mode mode;
	unsigned cr3;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(const struct parser *p, const char *fmt, ...)
{
	int n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
	va_list ap;

	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool token_is(struct token t, const char *word)
{
	return t.len == strlen(word) && memcmp(t.s, word, t.len) == 0;
}

static int index_of_word(struct token t, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (token_is(t, words[i]))
			return (int)i;
	return -1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits one line (comment already cut off) at blanks; returns the count or -1. */
static int tokenize(const char *s, const char *end, struct token *toks)
{
	int n = 0;

	while (s < end) {
		const char *start;

		if (is_blank(*s)) {
			s++;
			continue;
		}
		if (n == MAX_TOKENS)
			return -1;
		start = s;
		while (s < end && !is_blank(*s))
			s++;
		toks[n++] = (struct token){ start, (size_t)(s - start) };
	}
	return n;
}

/* Decimal, or hex after 0x; false on anything else or on overflow. */
static bool number_value(struct token t, uint64_t *v)
{
	unsigned base = 10;
	size_t i = 0;

	if (t.len > 2 && t.s[0] == '0' && t.s[1] == 'x') {
		base = 16;
		i = 2;
	}
	if (i == t.len)
		return false;
	for (*v = 0; i < t.len; i++) {
		char c = t.s[i];
		unsigned digit;

		if (c >= '0' && c <= '9')
			digit = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			digit = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			digit = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (*v > (UINT64_MAX - digit) / base)
			return false;
		*v = *v * base + digit;
	}
	return true;
}

static int parse_number(const struct parser *p, struct token t, const char *what, uint64_t max,
			uint64_t *v)
{
	if (!number_value(t, v))
		return fail(p, "bad number '%.*s' for %s", (int)t.len, t.s, what);
	if (*v > max)
		return fail(p, "%s %.*s out of range (at most 0x%llx)", what, (int)t.len, t.s,
			    (unsigned long long)max);
	return 0;
}

/* "T<n>": a table-pool page. */
static int parse_table(const struct parser *p, struct token t, unsigned *table)
{
	uint64_t n;
	struct token digits = { t.s + 1, t.len - 1 };

	if (t.len < 2 || t.s[0] != 'T' || !number_value(digits, &n))
		return fail(p, "expected a table T0..T%u, got '%.*s'", TABLE_POOL_PAGES - 1,
			    (int)t.len, t.s);
	if (n >= TABLE_POOL_PAGES)
		return fail(p, "table %.*s out of range (T0..T%u)", (int)t.len, t.s,
			    TABLE_POOL_PAGES - 1);
	*table = (unsigned)n;
	return 0;
}

/* key=value fields after an op's fixed words; any order, each at most once. */
struct field {
	const char *key;
	struct token value;
	bool seen;
};

static int parse_fields(const struct parser *p, const struct token *toks, int n,
			struct field *fields, size_t n_fields, const char *op_name)
{
	for (int i = 0; i < n; i++) {
		const char *eq = memchr(toks[i].s, '=', toks[i].len);
		struct token key, value;
		size_t f;

		if (!eq)
			return fail(p, "expected key=value, got '%.*s'", (int)toks[i].len,
				    toks[i].s);
		key = (struct token){ toks[i].s, (size_t)(eq - toks[i].s) };
		value = (struct token){ eq + 1, toks[i].len - key.len - 1 };
		for (f = 0; f < n_fields && !token_is(key, fields[f].key); f++)
			;
		if (f == n_fields)
			return fail(p, "unknown field '%.*s' for %s", (int)key.len, key.s, op_name);
		if (fields[f].seen)
			return fail(p, "duplicate field %s=", fields[f].key);
		if (!value.len)
			return fail(p, "missing value after %s=", fields[f].key);
		fields[f].value = value;
		fields[f].seen = true;
	}
	return 0;
}

static int require(const struct parser *p, const struct field *fields, size_t n_fields,
		   const char *op_name)
{
	for (size_t f = 0; f < n_fields; f++)
		if (!fields[f].seen)
			return fail(p, "%s needs %s=", op_name, fields[f].key);
	return 0;
}

static int expect_count(const struct parser *p, const struct token *toks, int n, int want,
			const char *usage)
{
	if (n < want)
		return fail(p, "missing fields: expected '%s'", usage);
	if (n > want)
		return fail(p, "unexpected '%.*s' after '%s'", (int)toks[want].len, toks[want].s,
			    usage);
	return 0;
}

/* Terms joined by '|', each a number or a name that name_bits knows; their bits OR-ed. */
static int parse_bit_terms(const struct parser *p, struct token t, const char *what,
			   int (*name_bits)(struct token term, uint64_t *bits), uint64_t *value)
{
	const char *s = t.s, *end = t.s + t.len;

	*value = 0;
	while (s <= end) {
		const char *bar = memchr(s, '|', (size_t)(end - s));
		struct token term = { s, (size_t)((bar ? bar : end) - s) };
		uint64_t bits;

		if (!term.len)
			return fail(p, "empty term in %s", what);
		if (!number_value(term, &bits) && name_bits(term, &bits) < 0)
			return fail(p, "unknown %s '%.*s'", what, (int)term.len, term.s);
		*value |= bits;
		s = (bar ? bar : end) + 1;
	}
	return 0;
}

static int entry_flag_bits(struct token term, uint64_t *bits)
{
	int bit = index_of_word(term, entry_bit_names, ARRAY_SIZE(entry_bit_names));
	uint64_t key;

	if (bit >= 0) {
		*bits = 1ull << bit;
		return 0;
	}
	if (token_is(term, "NX")) {
		*bits = PT64_NX_MASK;
		return 0;
	}
	/* PK1..PK15, no leading zero: one spelling per key */
	if (term.len > 2 && memcmp(term.s, "PK", 2) == 0 && term.s[2] != '0' &&
	    number_value((struct token){ term.s + 2, term.len - 2 }, &key) && key <= 15) {
		*bits = key << PT64_PKEY_SHIFT;
		return 0;
	}
	return -1;
}

static int slot_flag_bits(struct token term, uint64_t *bits)
{
	if (token_is(term, "log"))
		*bits = KVM_MEM_LOG_DIRTY_PAGES;
	else if (token_is(term, "ro"))
		*bits = KVM_MEM_READONLY;
	else if (token_is(term, "none"))
		*bits = 0;
	else
		return -1;
	return 0;
}

static int parse_mode(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	int mode;

	if (expect_count(p, toks, n, 2, "mode NAME"))
		return -1;
	mode = index_of_word(toks[1], mode_names, ARRAY_SIZE(mode_names));
	if (mode < 0)
		return fail(p, "unknown mode '%.*s' (none, 32, pae, 4level or 5level)",
			    (int)toks[1].len, toks[1].s);
	op->mode.mode = (uint8_t)mode;
	return 0;
}

static int parse_control(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	struct field fields[ARRAY_SIZE(control_names)] = { { 0 } };

	for (size_t bit = 0; bit < ARRAY_SIZE(control_names); bit++)
		fields[bit].key = control_names[bit];
	if (parse_fields(p, toks + 1, n - 1, fields, ARRAY_SIZE(fields), "control"))
		return -1;
	for (unsigned bit = 0; bit < ARRAY_SIZE(control_names); bit++) {
		if (!fields[bit].seen)
			continue;
		if (!token_is(fields[bit].value, "0") && !token_is(fields[bit].value, "1"))
			return fail(p, "%s= must be 0 or 1", control_names[bit]);
		op->control.mask |= (uint8_t)(1u << bit);
		if (token_is(fields[bit].value, "1"))
			op->control.value |= (uint8_t)(1u << bit);
	}
	return 0;
}

static int parse_pkru(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	uint64_t v;

	if (expect_count(p, toks, n, 2, "pkru VALUE") ||
	    parse_number(p, toks[1], "pkru", UINT32_MAX, &v))
		return -1;
	op->pkru.value = (uint32_t)v;
	return 0;
}

static int parse_cr3(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	unsigned table = 0;

	if (expect_count(p, toks, n, 2, "cr3 Tn") || parse_table(p, toks[1], &table))
		return -1;
	op->cr3.table = (uint8_t)table;
	return 0;
}

enum { SLOT_AS, SLOT_ID, SLOT_GPA, SLOT_SIZE, SLOT_HVA, SLOT_FLAGS, SLOT_HPAGE, SLOT_FIELDS };

static const char *const slot_field_keys[SLOT_FIELDS] = {
	"as", "slot", "gpa", "size", "hva", "flags", "hpage",
};

/* Which fields each memslot op takes, and which of them it may leave out. */
struct slot_op_form {
	const char *word;
	uint8_t kind;
	unsigned takes, optional;
};

#define FIELD_BIT(f) (1u << (f))
#define SLOT_ID_FIELDS (FIELD_BIT(SLOT_AS) | FIELD_BIT(SLOT_ID))

static const struct slot_op_form slot_op_forms[] = {
	{ "set", OP_MEMSLOT_SET, (1u << SLOT_FIELDS) - 1,
	  FIELD_BIT(SLOT_AS) | FIELD_BIT(SLOT_HVA) },
	{ "delete", OP_MEMSLOT_DELETE, SLOT_ID_FIELDS, FIELD_BIT(SLOT_AS) },
	{ "move", OP_MEMSLOT_MOVE, SLOT_ID_FIELDS | FIELD_BIT(SLOT_GPA), FIELD_BIT(SLOT_AS) },
	{ "flags", OP_MEMSLOT_FLAGS, SLOT_ID_FIELDS | FIELD_BIT(SLOT_FLAGS), FIELD_BIT(SLOT_AS) },
};

static int parse_hpage(const struct parser *p, struct token t, struct op *op)
{
	if (token_is(t, "4K"))
		op->memslot.host_page_shift = 12;
	else if (token_is(t, "2M"))
		op->memslot.host_page_shift = 21;
	else if (token_is(t, "1G"))
		op->memslot.host_page_shift = 30;
	else
		return fail(p, "unknown hpage '%.*s' (4K, 2M or 1G)", (int)t.len, t.s);
	return 0;
}

/* Converts the fields a memslot op gave; hva comes last since its default needs slot and gpa. */
static int slot_field_values(const struct parser *p, const struct field *fields, struct op *op)
{
	uint64_t v;

	if (fields[SLOT_AS].seen && parse_number(p, fields[SLOT_AS].value, "as", 1, &v))
		return -1;
	op->memslot.as_id = fields[SLOT_AS].seen ? (uint8_t)v : 0;
	if (parse_number(p, fields[SLOT_ID].value, "slot", PROG_MAX_SLOT_ID, &v))
		return -1;
	if (v == PROG_HARNESS_SLOT_ID)
		return fail(p, "slot %u is reserved for the harness's physmap", PROG_HARNESS_SLOT_ID);
	op->memslot.id = (uint16_t)v;
	if (fields[SLOT_GPA].seen &&
	    parse_number(p, fields[SLOT_GPA].value, "gpa", UINT64_MAX, &op->memslot.gpa))
		return -1;
	if (fields[SLOT_SIZE].seen &&
	    parse_number(p, fields[SLOT_SIZE].value, "size", UINT64_MAX, &op->memslot.size))
		return -1;
	if (fields[SLOT_FLAGS].seen) {
		if (parse_bit_terms(p, fields[SLOT_FLAGS].value, "memslot flag", slot_flag_bits,
				    &v))
			return -1;
		if (v > UINT32_MAX)
			return fail(p, "memslot flags 0x%llx do not fit 32 bits",
				    (unsigned long long)v);
		op->memslot.flags = (uint32_t)v;
	}
	if (fields[SLOT_HPAGE].seen && parse_hpage(p, fields[SLOT_HPAGE].value, op))
		return -1;
	if (fields[SLOT_HVA].seen)
		return parse_number(p, fields[SLOT_HVA].value, "hva", UINT64_MAX, &op->memslot.hva);
	if (op->kind == OP_MEMSLOT_SET)
		op->memslot.hva = prog_default_hva(op->memslot.id, op->memslot.gpa);
	return 0;
}

static int parse_memslot(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	struct field fields[SLOT_FIELDS] = { { 0 } };
	const struct slot_op_form *form = NULL;
	char op_name[32];

	if (n < 2)
		return fail(p, "missing fields: expected 'memslot set|delete|move|flags ...'");
	for (size_t i = 0; i < ARRAY_SIZE(slot_op_forms); i++)
		if (token_is(toks[1], slot_op_forms[i].word))
			form = &slot_op_forms[i];
	if (!form)
		return fail(p, "unknown memslot op '%.*s' (set, delete, move or flags)",
			    (int)toks[1].len, toks[1].s);
	snprintf(op_name, sizeof(op_name), "memslot %s", form->word);
	op->kind = form->kind;
	for (unsigned f = 0; f < SLOT_FIELDS; f++)
		fields[f].key = slot_field_keys[f];
	if (parse_fields(p, toks + 2, n - 2, fields, SLOT_FIELDS, op_name))
		return -1;
	for (unsigned f = 0; f < SLOT_FIELDS; f++) {
		if (fields[f].seen && !(form->takes & FIELD_BIT(f)))
			return fail(p, "unknown field '%s' for %s", slot_field_keys[f], op_name);
		if (!fields[f].seen && (form->takes & ~form->optional & FIELD_BIT(f)))
			return fail(p, "%s needs %s=", op_name, slot_field_keys[f]);
	}
	return slot_field_values(p, fields, op);
}

/* "dirty_log [as=A] slot=N": the slot as the memslot ops name it. */
static int parse_dirty_log(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	struct field fields[SLOT_FIELDS] = { { 0 } };

	for (unsigned f = 0; f < SLOT_FIELDS; f++)
		fields[f].key = slot_field_keys[f];
	if (parse_fields(p, toks + 1, n - 1, fields, SLOT_ID + 1, "dirty_log"))
		return -1;
	if (!fields[SLOT_ID].seen)
		return fail(p, "dirty_log needs slot=");
	return slot_field_values(p, fields, op);
}

/* "T<n>[<index>]" */
static int parse_pte_target(const struct parser *p, struct token t, struct op *op)
{
	const char *open = memchr(t.s, '[', t.len);
	struct token table = { t.s, open ? (size_t)(open - t.s) : t.len };
	struct token index;
	unsigned n = 0;
	uint64_t v;

	if (!open || t.s[t.len - 1] != ']')
		return fail(p, "expected Tn[index], got '%.*s'", (int)t.len, t.s);
	index = (struct token){ open + 1, t.len - table.len - 2 };
	if (parse_table(p, table, &n) || parse_number(p, index, "pte index", UINT16_MAX, &v))
		return -1;
	op->pte.table = (uint8_t)n;
	op->pte.index = (uint16_t)v;
	return 0;
}

static int parse_pte(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	if (expect_count(p, toks, n, 4, "pte Tn[index] = VALUE"))
		return -1;
	if (!token_is(toks[2], "="))
		return fail(p, "expected '=' after %.*s", (int)toks[1].len, toks[1].s);
	if (parse_pte_target(p, toks[1], op))
		return -1;
	return parse_number(p, toks[3], "pte value", UINT64_MAX, &op->pte.value);
}

static int parse_map_size(const struct parser *p, struct token t, struct op *op)
{
	if (token_is(t, "4K")) {
		op->map.level = MAP_LEVEL_4K;
	} else if (token_is(t, "2M") || token_is(t, "4M")) {
		bool is_4m = t.s[0] == '4';

		if (is_4m != (prog_map_mode(p->mode) == PAGING_32))
			return fail(p, "size=%.*s is not a page size of mode %s", (int)t.len, t.s,
				    paging_mode_name(p->mode));
		op->map.level = MAP_LEVEL_2M;
	} else if (token_is(t, "1G")) {
		op->map.level = MAP_LEVEL_1G;
	} else {
		return fail(p, "unknown size '%.*s' (4K, 2M, 4M or 1G)", (int)t.len, t.s);
	}
	return 0;
}

static int parse_map(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	struct field fields[] = { { "size", { 0 }, false },
				  { "leaf", { 0 }, false },
				  { "upper", { 0 }, false } };

	if (n < 4)
		return fail(p,
			    "missing fields: expected 'map GVA -> GPA size=.. leaf=.. upper=..'");
	if (!token_is(toks[2], "->"))
		return fail(p, "expected '->' after %.*s", (int)toks[1].len, toks[1].s);
	if (parse_number(p, toks[1], "gva", UINT64_MAX, &op->map.gva) ||
	    parse_number(p, toks[3], "gpa", UINT64_MAX, &op->map.gpa) ||
	    parse_fields(p, toks + 4, n - 4, fields, ARRAY_SIZE(fields), "map") ||
	    require(p, fields, ARRAY_SIZE(fields), "map") ||
	    parse_map_size(p, fields[0].value, op) ||
	    parse_bit_terms(p, fields[1].value, "entry flag", entry_flag_bits, &op->map.leaf_flags))
		return -1;
	return parse_bit_terms(p, fields[2].value, "entry flag", entry_flag_bits,
			       &op->map.upper_flags);
}

static int parse_access(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	op->access.kind = (uint8_t)index_of_word(toks[0], access_names, ARRAY_SIZE(access_names));
	if (n == 3 && token_is(toks[2], "user"))
		op->access.cpl = 3;
	else if (expect_count(p, toks, n, 2, "read|write|fetch GVA [user]"))
		return -1;
	return parse_number(p, toks[1], "gva", UINT64_MAX, &op->access.gva);
}

static int parse_invlpg(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	if (expect_count(p, toks, n, 2, "invlpg GVA"))
		return -1;
	return parse_number(p, toks[1], "gva", UINT64_MAX, &op->invlpg.gva);
}

static int parse_gen_jump(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	struct field fields[] = { { "as", { 0 }, false }, { "jump", { 0 }, false } };
	uint64_t as = 0, count;

	if (parse_fields(p, toks + 1, n - 1, fields, ARRAY_SIZE(fields), "generation"))
		return -1;
	if (!fields[1].seen)
		return fail(p, "generation needs jump=");
	if (fields[0].seen && parse_number(p, fields[0].value, "as", 1, &as))
		return -1;
	if (parse_number(p, fields[1].value, "jump", PROG_MAX_GEN_JUMP, &count))
		return -1;
	if (count == 0)
		return fail(p, "jump 0 out of range (at least 1)");
	op->gen_jump.as_id = (uint8_t)as;
	op->gen_jump.count = (uint32_t)count;
	return 0;
}

static int parse_mmu_pages(const struct parser *p, const struct token *toks, int n,
			   struct op *op)
{
	uint64_t v;

	if (expect_count(p, toks, n, 2, "mmu_pages COUNT") ||
	    parse_number(p, toks[1], "mmu_pages", UINT32_MAX, &v))
		return -1;
	op->mmu_pages.count = (uint32_t)v;
	return 0;
}

static int parse_vcpu(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	uint64_t v;

	if (expect_count(p, toks, n, 2, "vcpu N") ||
	    parse_number(p, toks[1], "vcpu", PROG_MAX_VCPUS - 1, &v))
		return -1;
	op->vcpu.id = (uint8_t)v;
	return 0;
}

static int parse_smm(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	int enter;

	if (expect_count(p, toks, n, 2, "smm enter|leave"))
		return -1;
	enter = index_of_word(toks[1], smm_names, ARRAY_SIZE(smm_names));
	if (enter < 0)
		return fail(p, "unknown smm op '%.*s' (enter or leave)", (int)toks[1].len,
			    toks[1].s);
	op->smm.enter = (uint8_t)enter;
	return 0;
}

/* ---- the rules of program.h, with the mode and CR3 of the line ---- */

static int check_gva(const struct parser *p, enum paging_mode mode, uint64_t gva)
{
	if (!gva_fits_mode(mode, gva))
		return fail(p, "gva 0x%llx is beyond 4 GiB in mode %s", (unsigned long long)gva,
			    paging_mode_name(mode));
	if (gva_is_harness_reserved(mode, gva))
		return fail(p, "gva 0x%llx is reserved for the harness in mode %s",
			    (unsigned long long)gva, paging_mode_name(mode));
	return 0;
}

static const char *entry_width(enum paging_mode mode)
{
	return prog_entries_are_4_bytes(mode) ? "4-byte entries" : "8-byte entries";
}

static int check_pte(const struct parser *p, const struct op *op)
{
	if (op->pte.index >= prog_pte_index_limit(p->mode))
		return fail(p, "pte index %u out of range for %s", op->pte.index,
			    entry_width(p->mode));
	if (op->pte.table == p->cr3 && op->pte.index == HARNESS_ROOT_INDEX)
		return fail(p, "T%u[%u] is the harness's root entry while cr3 is T%u",
			    op->pte.table, op->pte.index, p->cr3);
	if (prog_entries_are_4_bytes(p->mode) && op->pte.value > UINT32_MAX)
		return fail(p, "pte value 0x%llx does not fit %s",
			    (unsigned long long)op->pte.value, entry_width(p->mode));
	return 0;
}

static int check_map(const struct parser *p, const struct op *op)
{
	enum paging_mode mode = prog_map_mode(p->mode);
	uint64_t page = prog_map_page_size(mode, op->map.level);
	bool narrow = mode == PAGING_32 && op->map.level == MAP_LEVEL_4K;
	uint64_t gpa_limit = narrow ? 1ull << 32 : PROG_GPA_LIMIT;
	const char *size = map_size_name(mode, op->map.level);

	if (!page)
		return fail(p, "size=%s needs mode 4level or 5level", size);
	if (op->map.gva & (page - 1))
		return fail(p, "gva 0x%llx is not aligned to size=%s",
			    (unsigned long long)op->map.gva, size);
	if (op->map.gpa & (page - 1))
		return fail(p, "gpa 0x%llx is not aligned to size=%s",
			    (unsigned long long)op->map.gpa, size);
	if (op->map.gpa < HARNESS_GPA_LIMIT || op->map.gpa >= gpa_limit)
		return fail(p, "gpa 0x%llx is outside [0x%llx, 0x%llx) for size=%s in mode %s",
			    (unsigned long long)op->map.gpa, HARNESS_GPA_LIMIT,
			    (unsigned long long)gpa_limit, size, paging_mode_name(mode));
	if (op->map.leaf_flags & ~prog_map_leaf_flag_bits(mode, op->map.level))
		return fail(p, "leaf flags 0x%llx set address bits of a size=%s leaf",
			    (unsigned long long)op->map.leaf_flags, size);
	if (op->map.upper_flags & ~prog_map_upper_flag_bits(mode))
		return fail(p, "upper flags 0x%llx set address bits of %s",
			    (unsigned long long)op->map.upper_flags, entry_width(mode));
	return check_gva(p, mode, op->map.gva);
}

static int check_memslot(const struct parser *p, const struct op *op)
{
	if (op->kind != OP_MEMSLOT_SET && op->kind != OP_MEMSLOT_MOVE)
		return 0;
	if (op->memslot.gpa < HARNESS_GPA_LIMIT || op->memslot.gpa >= PROG_GPA_LIMIT)
		return fail(p, "gpa 0x%llx is outside [0x%llx, 0x%llx)",
			    (unsigned long long)op->memslot.gpa, HARNESS_GPA_LIMIT, PROG_GPA_LIMIT);
	if (op->kind == OP_MEMSLOT_MOVE)
		return 0;
	if (op->memslot.size > PROG_MAX_SLOT_SIZE)
		return fail(p, "size 0x%llx is above 0x%llx", (unsigned long long)op->memslot.size,
			    PROG_MAX_SLOT_SIZE);
	if (op->memslot.size > PROG_GPA_LIMIT - op->memslot.gpa)
		return fail(p, "gpa + size goes past 0x%llx", PROG_GPA_LIMIT);
	if (op->memslot.hva >= PROG_HVA_LIMIT ||
	    op->memslot.size >= PROG_HVA_LIMIT - op->memslot.hva)
		return fail(p, "hva 0x%llx + size reaches 0x%llx",
			    (unsigned long long)op->memslot.hva, PROG_HVA_LIMIT);
	return 0;
}

static int check_op(const struct parser *p, const struct op *op)
{
	switch (op->kind) {
	case OP_PTE:
		return check_pte(p, op);
	case OP_MAP:
		return check_map(p, op);
	case OP_ACCESS:
		return check_gva(p, p->mode, op->access.gva);
	case OP_INVLPG:
		return check_gva(p, p->mode, op->invlpg.gva);
	case OP_GEN_JUMP:
	case OP_SMM:
	case OP_DIRTY_LOG:
	case OP_MMU_PAGES:
	case OP_VCPU:
		return 0;
	default:
		return check_memslot(p, op);
	}
}

typedef int (*op_parser)(const struct parser *p, const struct token *toks, int n, struct op *op);

/* An op's first word, its kind and the function that reads the rest (memslot parsers
 * refine the kind from the second word). */
static const struct {
	const char *word;
	uint8_t kind;
	op_parser parse;
} op_words[] = {
	{ "mode", OP_MODE, parse_mode },
	{ "control", OP_CONTROL, parse_control },
	{ "pkru", OP_PKRU, parse_pkru },
	{ "cr3", OP_CR3, parse_cr3 },
	{ "memslot", OP_MEMSLOT_SET, parse_memslot },
	{ "pte", OP_PTE, parse_pte },
	{ "map", OP_MAP, parse_map },
	{ "read", OP_ACCESS, parse_access },
	{ "write", OP_ACCESS, parse_access },
	{ "fetch", OP_ACCESS, parse_access },
	{ "invlpg", OP_INVLPG, parse_invlpg },
	{ "generation", OP_GEN_JUMP, parse_gen_jump },
	{ "smm", OP_SMM, parse_smm },
	{ "dirty_log", OP_DIRTY_LOG, parse_dirty_log },
	{ "mmu_pages", OP_MMU_PAGES, parse_mmu_pages },
	{ "vcpu", OP_VCPU, parse_vcpu },
};

static int parse_op(const struct parser *p, const struct token *toks, int n, struct op *op)
{
	memset(op, 0, sizeof(*op));
	for (size_t i = 0; i < ARRAY_SIZE(op_words); i++) {
		if (!token_is(toks[0], op_words[i].word))
			continue;
		op->kind = op_words[i].kind;
		return op_words[i].parse(p, toks, n, op) || check_op(p, op) ? -1 : 0;
	}
	return fail(p, "unknown op '%.*s'", (int)toks[0].len, toks[0].s);
}

int program_parse(const char *text, const char *name, struct program *out, char *err, size_t errlen)
{
	struct parser p = { .name = name, .mode = PAGING_NONE, .err = err, .errlen = errlen };
	const char *s = text;

	prog_state_init(&p.state);
	out->n_ops = 0;
	while (*s) {
		const char *eol = strchr(s, '\n'), *end, *hash;
		struct token toks[MAX_TOKENS];
		struct op *op;
		int n;

		eol = eol ? eol : s + strlen(s);
		hash = memchr(s, '#', (size_t)(eol - s));
		end = hash ? hash : eol;
		p.line++;
		n = tokenize(s, end, toks);
		s = *eol ? eol + 1 : eol;
		if (n < 0)
			return fail(&p, "too many fields (at most %d)", MAX_TOKENS);
		if (n == 0)
			continue;
		if (out->n_ops == PROG_MAX_OPS)
			return fail(&p, "more than %d ops", PROG_MAX_OPS);
		op = &out->ops[out->n_ops];
		if (parse_op(&p, toks, n, op))
			return -1;
		out->n_ops++;
		prog_state_after(&p.state, op);
		p.mode = prog_state_mode(&p.state);
		p.cr3 = prog_state_cr3(&p.state);
	}
	return 0;
}
