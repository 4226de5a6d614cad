/* The translation checker (DESIGN §5 rules 2 and 4; spec §7 invariants 8-10 and 12).
 *
 * The guest translation of t->gva comes from ref_probe under cpu with CR3 = t->cr3: a
 * CPL0 read with every access-rights control off, so it fails only where the walk does.
 * From the walk's entries (root to leaf): the gpa of t->gva, the leaf level, the leaf's
 * D bit, and the rights, each the AND over all levels (SDM vol. 3 §4.6.1): W from R/W,
 * U from U/S, X from the absence of XD, which exists only with EFER.NXE in PAE, 4- and
 * 5-level paging (§4.5.4: elsewhere X is always granted); a PAE PDPTE has none of these
 * bits (§4.4.1) and takes no part.
 * Without paging the guest maps gva to gpa = gva with every right, at any page size.
 *
 * Rules, in order; the first that fails is the verdict:
 *  NOT_MAPPED      the walk faults: not present, reserved bit, non-canonical. A walk
 *                  through a table outside every memslot counts as faulting, because
 *                  FNAME(walk_addr_generic) fails there (checker rule
 *                  KVM_TABLE_OUTSIDE_MEMSLOT).
 *  WRONG_GPA       the translation is larger than the guest's page, or the guest maps
 *                  t->gva to another gpa.
 *  WRONG_FRAME     MMIO while a region backs t->gpa; or not MMIO and no region backs it,
 *                  or t->hva is not the backing (ref_memory_backing) of t->gpa, or the
 *                  range does not end in the same host-contiguous backing (spec §7
 *                  invariants 9, 10).
 *  NOT_ACCESSED    the guest's leaf has A=0. The processor sets A in an entry before it
 *                  caches a translation through it (SDM vol. 3 §4.8), and KVM maps only
 *                  gptes with A: the fault's walk sets it, FNAME(prefetch_invalid_gpte)
 *                  refuses gptes without it (a leaf in read-only memory counts as
 *                  accessed, see leaf_in_rom). Upper levels are not checked: KVM's
 *                  prefetch tests only the leaf, and the walk that built the path set
 *                  their A bits.
 *  TOO_PERMISSIVE  U without the guest's U, X without the guest's X, or W without the
 *                  guest's W, the leaf's D (protect_clean_gpte keeps W out of sptes of
 *                  clean gptes so the first write reaches KVM; a leaf in read-only memory
                  counts as dirty, see leaf_in_rom) and a writable region
 *                  (set_spte: no W on a page the host maps read-only). The one exception
 *                  is FNAME(page_fault)'s CR0.WP=0 trick (spec §4.4 step 6): with WP clear
 *                  a supervisor write may use a W spte without the guest's W, provided the
 *                  spte lacks U (and X under CR4.SMEP), still needing D and a writable
 *                  region. MMIO sptes keep only W and U (mark_mmio_spte), so X is ignored.
 *
 * TLB allowance (SDM vol. 3 §4.10.4, DESIGN §5 rule 4): a TLB may go on using any
 * translation that was valid at some moment since software last invalidated that
 * address. So every translation that passes is remembered per (vCPU, level, range) with
 * the rights the guest granted then, until INVLPG of an address in the range, or a flush
 * of everything on that vCPU (MOV CR3, paging-mode, CR0.WP or CR4 changes). A TLB entry
 * that fails is still allowed when such a remembered translation covers its range with
 * the same gpa at the same offset and grants everything it grants, judged with today's
 * control bits and region: the TLB caches the guest's tables, not KVM's view of host
 * memory, so a changed backing (WRONG_FRAME) or a region turned read-only is never
 * excused; KVM must flush those. Sptes are never excused: KVM must keep them in step
 * with the guest's tables at once (they lag only through unsync pages, spec §5.5).
 *
 * History is bounded per (vCPU, level, range): a few records, the least recently used
 * replaced when full (which can only make the checker stricter). Nodes come from a
 * per-vCPU pool reused after invalidations, so checks allocate only while warming up. */
#include "translation_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRANSLATION_LEVEL PT_PDPE_LEVEL
#define MAX_VCPU_ID 255
#define HISTORY_BUCKET_BITS 8
#define HISTORY_BUCKETS (1u << HISTORY_BUCKET_BITS)
#define HISTORY_PER_RANGE 8
#define INITIAL_NODES 64u

/* What the guest's tables say for one gva. */
struct guest_translation {
	bool present;
	gpa_t gpa;
	int level;	 /* leaf level; 0: no paging, every size fits */
	unsigned access; /* ACC_* granted by every level */
	bool dirty;	 /* the leaf's D bit */
	bool accessed;	 /* the leaf's A bit */
};

/* A translation found valid: its gpa and what the guest granted then. */
struct history_record {
	gpa_t gpa; /* at the start of the node's range */
	unsigned access;
	bool dirty;
	uint64_t last_used;
};

struct history_node {
	uint32_t next; /* pool index + 1 of the next node in the chain; 0 ends it */
	int level;
	gva_t gva; /* start of the range, aligned to its size */
	int n_records;
	struct history_record records[HISTORY_PER_RANGE];
};

struct vcpu_history {
	uint32_t heads[HISTORY_BUCKETS]; /* pool index + 1; 0: empty bucket */
	struct history_node *pool;
	uint32_t n_used, capacity; /* pool[0, n_used) has been handed out */
	uint32_t free;		   /* pool index + 1 of the first free node */
};

struct translation_checker {
	struct ref_memory *mem;
	struct vcpu_history *vcpus;
	int n_vcpus;
	uint64_t clock; /* orders history records by last use */
};

static const char *const fault_names[TRANSLATION_FAULT_COUNT] = {
	[TRANSLATION_OK] = "ok",
	[TRANSLATION_NOT_MAPPED] = "not-mapped",
	[TRANSLATION_WRONG_GPA] = "wrong-gpa",
	[TRANSLATION_WRONG_FRAME] = "wrong-frame",
	[TRANSLATION_TOO_PERMISSIVE] = "too-permissive",
	[TRANSLATION_NOT_ACCESSED] = "not-accessed",
	[TRANSLATION_CHECK_FAILED] = "check-failed",
};

const char *translation_fault_name(enum translation_fault fault)
{
	return (unsigned)fault < TRANSLATION_FAULT_COUNT ? fault_names[fault] : "?";
}

static const char *access_string(unsigned access, char buf[4])
{
	buf[0] = access & ACC_WRITE_MASK ? 'W' : '-';
	buf[1] = access & ACC_USER_MASK ? 'U' : '-';
	buf[2] = access & ACC_EXEC_MASK ? 'X' : '-';
	buf[3] = '\0';
	return buf;
}

int model_translation_format(const struct model_translation *t, char *buf, size_t len)
{
	char access[4], frame[32];

	if (t->mmio)
		snprintf(frame, sizeof(frame), "mmio");
	else
		snprintf(frame, sizeof(frame), "hva=%#llx", (unsigned long long)t->hva);
	return snprintf(buf, len, "%s vcpu%d gva=%#llx level=%d gpa=%#llx %s access=%s",
			t->source == TRANSLATION_TLB ? "tlb" : "spte", t->vcpu_id,
			(unsigned long long)t->gva, t->level, (unsigned long long)t->gpa, frame,
			access_string(t->access, access));
}

static void __attribute__((format(printf, 2, 3)))
describe(struct translation_verdict *verdict, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(verdict->detail, sizeof(verdict->detail), fmt, ap);
	va_end(ap);
}

static int level_shift(int level)
{
	return PAGE_SHIFT + 9 * (level - 1);
}

static uint64_t level_size(int level)
{
	return 1ull << level_shift(level);
}

/* ---- history ---- */

static uint32_t bucket_of(int level, gva_t start)
{
	uint64_t key = ((start >> level_shift(level)) << 2) | (uint64_t)level;

	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - HISTORY_BUCKET_BITS));
}

static struct history_node *node_at(const struct vcpu_history *h, uint32_t ref)
{
	return &h->pool[ref - 1];
}

static struct history_node *find_node(const struct vcpu_history *h, int level, gva_t start)
{
	for (uint32_t ref = h->heads[bucket_of(level, start)]; ref; ref = node_at(h, ref)->next) {
		struct history_node *node = node_at(h, ref);

		if (node->level == level && node->gva == start)
			return node;
	}
	return NULL;
}

static int grow_pool(struct vcpu_history *h)
{
	uint32_t capacity = h->capacity ? h->capacity * 2 : INITIAL_NODES;
	struct history_node *pool = realloc(h->pool, capacity * sizeof(*pool));

	if (!pool)
		return -1;
	h->pool = pool;
	h->capacity = capacity;
	return 0;
}

/* A node for (level, start), found or added. NULL only when out of memory. */
static struct history_node *get_node(struct vcpu_history *h, int level, gva_t start)
{
	struct history_node *node = find_node(h, level, start);
	uint32_t bucket = bucket_of(level, start);
	uint32_t ref;

	if (node)
		return node;
	if (h->free) {
		ref = h->free;
		h->free = node_at(h, ref)->next;
	} else {
		if (h->n_used == h->capacity && grow_pool(h))
			return NULL;
		ref = ++h->n_used;
	}
	node = node_at(h, ref);
	*node = (struct history_node){ .next = h->heads[bucket], .level = level, .gva = start };
	h->heads[bucket] = ref;
	return node;
}

static void drop_node(struct vcpu_history *h, int level, gva_t start)
{
	uint32_t *link = &h->heads[bucket_of(level, start)];

	while (*link) {
		uint32_t ref = *link;
		struct history_node *node = node_at(h, ref);

		if (node->level == level && node->gva == start) {
			*link = node->next;
			node->next = h->free;
			h->free = ref;
			return;
		}
		link = &node->next;
	}
}

/* Forgets everything but keeps the pool for reuse. */
static void clear_history(struct vcpu_history *h)
{
	memset(h->heads, 0, sizeof(h->heads));
	h->n_used = 0;
	h->free = 0;
}

static struct vcpu_history *history_of(struct translation_checker *tc, int vcpu_id, bool create)
{
	struct vcpu_history *vcpus;

	if (vcpu_id < 0 || vcpu_id > MAX_VCPU_ID)
		return NULL;
	if (vcpu_id < tc->n_vcpus)
		return &tc->vcpus[vcpu_id];
	if (!create)
		return NULL;
	vcpus = realloc(tc->vcpus, (size_t)(vcpu_id + 1) * sizeof(*vcpus));
	if (!vcpus)
		return NULL;
	memset(vcpus + tc->n_vcpus, 0, (size_t)(vcpu_id + 1 - tc->n_vcpus) * sizeof(*vcpus));
	tc->vcpus = vcpus;
	tc->n_vcpus = vcpu_id + 1;
	return &tc->vcpus[vcpu_id];
}

/* a makes b redundant: same gpa, and everything b allows a allows too. The permission
 * rule is monotone in W, X and the D bit, not in U: a user page is closed to supervisor
 * data accesses under SMAP and to supervisor fetches under SMEP, so U must be equal. */
static bool record_covers(const struct history_record *a, const struct history_record *b)
{
	return a->gpa == b->gpa && !(b->access & ~a->access) && (a->dirty || !b->dirty) &&
	       (a->access & ACC_USER_MASK) == (b->access & ACC_USER_MASK);
}

static void add_record(struct history_node *node, const struct history_record *rec)
{
	struct history_record *victim = &node->records[0];

	for (int i = 0; i < node->n_records; i++) {
		struct history_record *old = &node->records[i];

		if (record_covers(old, rec)) {
			old->last_used = rec->last_used;
			return;
		}
		if (record_covers(rec, old)) {
			*old = *rec;
			return;
		}
		if (old->last_used < victim->last_used)
			victim = old;
	}
	if (node->n_records < HISTORY_PER_RANGE)
		victim = &node->records[node->n_records++];
	*victim = *rec;
}

static int remember(struct translation_checker *tc, const struct model_translation *t,
		    const struct guest_translation *g)
{
	struct vcpu_history *h = history_of(tc, t->vcpu_id, true);
	struct history_node *node = h ? get_node(h, t->level, t->gva) : NULL;

	if (!node)
		return -1;
	add_record(node, &(struct history_record){
				 .gpa = t->gpa,
				 .access = g->access,
				 .dirty = g->dirty,
				 .last_used = ++tc->clock,
			 });
	return 0;
}

/* ---- the rules ---- */

/* FNAME(page_fault) with CR0.WP=0: a supervisor write to a page the guest maps read-only
 * gets a W spte without U (and without X under SMEP), so user accesses and, under SMEP,
 * supervisor fetches still fault and KVM can flip the spte back. */
static bool wp0_supervisor_write(const struct ref_cpu_state *cpu, unsigned access)
{
	if (cpu->cr0_wp || (access & ACC_USER_MASK))
		return false;
	return !cpu->cr4_smep || !(access & ACC_EXEC_MASK);
}

/* Whether access stays within what the guest grants (guest, dirty) on a region that is
 * or is not writable. Monotone in guest and dirty. */
static bool access_permitted(const struct ref_cpu_state *cpu, unsigned access, unsigned guest,
			     bool dirty, bool writable)
{
	if ((access & ACC_USER_MASK) && !(guest & ACC_USER_MASK))
		return false;
	if ((access & ACC_EXEC_MASK) && !(guest & ACC_EXEC_MASK))
		return false;
	if (!(access & ACC_WRITE_MASK))
		return true;
	if (!dirty || !writable)
		return false;
	return (guest & ACC_WRITE_MASK) || wp0_supervisor_write(cpu, access);
}

/* mark_mmio_spte stores only W and U. */
static unsigned meaningful_access(const struct model_translation *t)
{
	return t->mmio ? t->access & (ACC_WRITE_MASK | ACC_USER_MASK) : t->access & ACC_ALL;
}

/* The rights every level grants (SDM vol. 3 §4.6.1). XD needs no check of EFER.NXE
 * and the mode: without NXE bit 63 is reserved and the walk has faulted, and 32-bit
 * entries have no bit 63. */
static unsigned walk_access(const struct ref_cpu_state *cpu, const struct ref_result *walk)
{
	int first = cpu->mode == PAGING_PAE ? 1 : 0; /* the PDPTE has no rights bits */
	unsigned access = ACC_ALL;

	for (int i = first; i < walk->n_entries; i++) {
		uint64_t entry = walk->entries[i].value;

		if (!(entry & PT_WRITABLE_MASK))
			access &= ~ACC_WRITE_MASK;
		if (!(entry & PT_USER_MASK))
			access &= ~ACC_USER_MASK;
		if (entry & PT64_NX_MASK)
			access &= ~ACC_EXEC_MASK;
	}
	return access;
}

static struct guest_translation guest_from_walk(const struct ref_cpu_state *cpu,
						const struct ref_result *walk)
{
	if (walk->outcome != REF_OK || walk->read_unbacked)
		return (struct guest_translation){ .present = false };
	return (struct guest_translation){
		.present = true,
		.gpa = walk->gpa,
		.level = walk->leaf_level,
		.access = walk_access(cpu, walk),
		.dirty = walk->entries[walk->n_entries - 1].value & PT_DIRTY_MASK,
		.accessed = walk->entries[walk->n_entries - 1].value & PT_ACCESSED_MASK,
	};
}

/* A leaf in read-only memory: the processor's A/D writes are dropped, yet the access they
 * were for goes on through the TLB entry, so the leaf counts as accessed and dirty. KVM
 * does the same: FNAME(update_accessed_dirty_bits) skips entries in read-only slots, and
 * the fault still maps the page (writable for a write). */
static bool leaf_in_rom(const struct ref_memory *mem, const struct ref_cpu_state *cpu,
			const struct ref_result *walk)
{
	bool readonly = false;

	if (cpu->mode == PAGING_NONE || !walk->n_entries)
		return false;
	return ref_memory_backing(mem, cpu->as_id, walk->entries[walk->n_entries - 1].gpa, NULL,
				  &readonly) && readonly;
}

/* Walks the guest's tables for t->gva; returns -1 if the reference failed. */
static int walk_guest(struct ref_engine *engine, const struct ref_cpu_state *cpu,
		      const struct model_translation *t, struct ref_result *walk,
		      struct guest_translation *g)
{
	struct ref_cpu_state at_root = *cpu;

	if (cpu->mode == PAGING_NONE) {
		*walk = (struct ref_result){ .outcome = REF_OK, .gpa = t->gva };
		*g = (struct guest_translation){
			.present = true, .gpa = t->gva, .access = ACC_ALL, .dirty = true,
			.accessed = true
		};
		return 0;
	}
	at_root.cr3 = t->cr3;
	if (ref_probe(engine, &at_root, t->gva, walk))
		return -1;
	*g = guest_from_walk(cpu, walk);
	return 0;
}

/* Whether t's frame is right: MMIO exactly where no region backs gpa, otherwise t->hva
 * backs gpa and the whole range. writable: W may be granted as far as the host goes. */
static bool frame_matches(const struct ref_memory *mem, const struct model_translation *t,
			  bool *writable)
{
	gpa_t last = t->gpa + (level_size(t->level) - 1);
	hva_t first_hva, last_hva;
	bool first_ro, last_ro;
	bool backed = ref_memory_backing(mem, t->as_id, t->gpa, &first_hva, &first_ro);

	if (t->mmio) {
		*writable = true; /* no host page: W is up to the guest alone */
		return !backed;
	}
	*writable = false;
	if (!backed || first_hva != t->hva)
		return false;
	if (!ref_memory_backing(mem, t->as_id, last, &last_hva, &last_ro) ||
	    last_hva != t->hva + (last - t->gpa))
		return false;
	*writable = !first_ro && !last_ro;
	return true;
}

static enum translation_fault current_fault(const struct ref_cpu_state *cpu,
					    const struct model_translation *t,
					    const struct guest_translation *g, bool frame_ok,
					    bool writable)
{
	if (!g->present)
		return TRANSLATION_NOT_MAPPED;
	if ((g->level && t->level > g->level) || g->gpa != t->gpa)
		return TRANSLATION_WRONG_GPA;
	if (!frame_ok)
		return TRANSLATION_WRONG_FRAME;
	if (!g->accessed)
		return TRANSLATION_NOT_ACCESSED;
	if (!access_permitted(cpu, meaningful_access(t), g->access, g->dirty, writable))
		return TRANSLATION_TOO_PERMISSIVE;
	return TRANSLATION_OK;
}

/* Which sources may hold a translation the guest's tables no longer give, until the
 * guest invalidates it: TLB entries, and sptes of unsync pages (spec §5.5). */
static bool source_may_lag(const struct model_translation *t)
{
	return t->source == TRANSLATION_TLB || t->unsync;
}

/* What a remembered translation must allow: a model translation's rights, or an access. */
struct history_query {
	const struct ref_cpu_state *cpu;
	int vcpu_id, level; /* the smallest range that may hold it */
	gva_t gva;
	gpa_t gpa;
	bool (*fits)(const struct history_query *q, const struct history_record *rec);
	unsigned access; /* a translation's rights */
	bool writable;
	enum ref_access_kind kind; /* an access */
	int cpl;
	bool mmio; /* answered as an MMIO exit */
};

static bool grants_translation(const struct history_query *q, const struct history_record *rec)
{
	return access_permitted(q->cpu, q->access, rec->access, rec->dirty, q->writable);
}

/* SDM vol. 3 §4.6: the access may use a translation with these rights under the current
 * controls. A write through an entry cached clean would make the processor set D in the
 * guest's entry, which a stale entry cannot do: it must have been seen dirty, except for
 * an MMIO write, which KVM emulates without walking (RULE_KVM_MMIO_WRITE_SKIPS_DIRTY). */
static bool grants_access(const struct history_query *q, const struct history_record *rec)
{
	bool user = q->cpl == 3, user_page = rec->access & ACC_USER_MASK;

	if (user && !user_page)
		return false;
	if (q->kind == REF_WRITE &&
	    ((!rec->dirty && !q->mmio) || (!(rec->access & ACC_WRITE_MASK) && (user || q->cpu->cr0_wp))))
		return false;
	if (q->kind == REF_FETCH)
		return (rec->access & ACC_EXEC_MASK) && (user || !user_page || !q->cpu->cr4_smep);
	return user || !user_page || !q->cpu->cr4_smap || q->cpu->rflags_ac;
}

/* A translation remembered on the vCPU since its last invalidation whose range holds
 * q->gva, at the same offset as q->gpa, that fits. Marks it used. */
static bool history_allows(struct translation_checker *tc, const struct history_query *q)
{
	struct vcpu_history *h = history_of(tc, q->vcpu_id, false);

	if (!h)
		return false;
	for (int level = q->level; level <= MAX_TRANSLATION_LEVEL; level++) {
		gva_t start = q->gva & ~(level_size(level) - 1);
		struct history_node *node = find_node(h, level, start);

		for (int i = 0; node && i < node->n_records; i++) {
			struct history_record *rec = &node->records[i];

			if (rec->gpa + (q->gva - start) != q->gpa || !q->fits(q, rec))
				continue;
			rec->last_used = ++tc->clock;
			return true;
		}
	}
	return false;
}

bool translation_checker_allows_access(struct translation_checker *tc, const struct ref_cpu_state *cpu,
				       int vcpu_id, gva_t gva, gpa_t gpa, enum ref_access_kind kind, int cpl,
				       bool mmio)
{
	struct history_query q = {
		.cpu = cpu, .vcpu_id = vcpu_id, .level = PT_PAGE_TABLE_LEVEL, .gva = gva, .gpa = gpa,
		.fits = grants_access, .kind = kind, .cpl = cpl, .mmio = mmio,
	};

	return tc && cpu && history_allows(tc, &q);
}

/* ---- verdicts ---- */

static bool check_failed(struct translation_verdict *verdict, const char *why)
{
	verdict->fault = TRANSLATION_CHECK_FAILED;
	describe(verdict, "%s", why);
	return false;
}

static const char *walk_failure(const struct ref_result *walk, char *buf, size_t len)
{
	if (walk->outcome == REF_GP_FAULT)
		snprintf(buf, len, "#GP (non-canonical)");
	else if (walk->read_unbacked)
		snprintf(buf, len, "a table outside every memslot");
	else
		snprintf(buf, len, "#PF error code %#x", walk->error_code);
	return buf;
}

static void describe_fault(struct translation_verdict *verdict, enum translation_fault fault,
			   const struct model_translation *t, const struct guest_translation *g,
			   const struct ref_memory *mem)
{
	char why[48], guest[4], model[4];
	hva_t hva = 0;
	bool readonly = false;
	bool backed = ref_memory_backing(mem, t->as_id, t->gpa, &hva, &readonly);

	switch (fault) {
	case TRANSLATION_NOT_MAPPED:
		describe(verdict, "guest walk of %#llx: %s", (unsigned long long)t->gva,
			 walk_failure(&verdict->guest, why, sizeof(why)));
		break;
	case TRANSLATION_WRONG_GPA:
		describe(verdict, "guest maps %#llx to gpa %#llx in a level-%d page",
			 (unsigned long long)t->gva, (unsigned long long)g->gpa, g->level);
		break;
	case TRANSLATION_WRONG_FRAME:
		if (!backed)
			describe(verdict, "gpa %#llx has no memslot", (unsigned long long)t->gpa);
		else if (t->mmio || hva != t->hva)
			describe(verdict, "gpa %#llx is backed by hva %#llx",
				 (unsigned long long)t->gpa, (unsigned long long)hva);
		else
			describe(verdict, "the level-%d range at gpa %#llx leaves its backing",
				 t->level, (unsigned long long)t->gpa);
		break;
	case TRANSLATION_TOO_PERMISSIVE:
		describe(verdict, "guest grants %s with D=%d%s; translation grants %s",
			 access_string(g->access, guest), g->dirty,
			 readonly ? " in read-only memory" : "",
			 access_string(meaningful_access(t), model));
		break;
	case TRANSLATION_NOT_ACCESSED:
		describe(verdict, "the guest's level-%d leaf for %#llx has A=0", g->level,
			 (unsigned long long)t->gva);
		break;
	default:
		break;
	}
}

static void refuse_allowance(struct translation_verdict *verdict, bool frame_ok)
{
	size_t used = strlen(verdict->detail);

	snprintf(verdict->detail + used, sizeof(verdict->detail) - used, "; %s",
		 frame_ok ? "no translation seen since the last invalidation allows it" :
			    "and the frame changed, which no TLB allowance covers");
}

static bool valid_input(const struct translation_checker *tc, const struct ref_engine *engine,
			const struct ref_cpu_state *cpu, const struct model_translation *t)
{
	if (!tc || !cpu || !t || (!engine && cpu->mode != PAGING_NONE))
		return false;
	if (t->level < PT_PAGE_TABLE_LEVEL || t->level > MAX_TRANSLATION_LEVEL)
		return false;
	if (t->vcpu_id < 0 || t->vcpu_id > MAX_VCPU_ID)
		return false;
	return !(t->gva & (level_size(t->level) - 1));
}

bool translation_check(struct translation_checker *tc, struct ref_engine *engine,
		       const struct ref_cpu_state *cpu, const struct model_translation *t,
		       struct translation_verdict *verdict)
{
	struct guest_translation g;
	enum translation_fault fault;
	bool frame_ok, writable;

	*verdict = (struct translation_verdict){ .fault = TRANSLATION_OK };
	if (!valid_input(tc, engine, cpu, t))
		return check_failed(verdict, "malformed translation or missing argument");
	if (walk_guest(engine, cpu, t, &verdict->guest, &g))
		return check_failed(verdict, ref_engine_error(engine));
	if (leaf_in_rom(tc->mem, cpu, &verdict->guest))
		g.dirty = g.accessed = true;
	frame_ok = frame_matches(tc->mem, t, &writable);
	fault = current_fault(cpu, t, &g, frame_ok, writable);

	if (fault == TRANSLATION_OK) {
		if (remember(tc, t, &g))
			return check_failed(verdict, "out of memory for the TLB history");
		return true;
	}
	if (source_may_lag(t) && frame_ok &&
	    history_allows(tc, &(struct history_query){
				       .cpu = cpu, .vcpu_id = t->vcpu_id, .level = t->level, .gva = t->gva,
				       .gpa = t->gpa, .fits = grants_translation,
				       .access = meaningful_access(t), .writable = writable })) {
		describe(verdict, "stale (%s now), within the TLB allowance",
			 translation_fault_name(fault));
		return true;
	}
	/* KVM syncs a cached root's unsync pages before it loads that root again, and every
	 * root's before it runs the guest with KVM_REQ_MMU_SYNC pending. */
	if (t->unsync && (t->cached_root || t->sync_pending)) {
		describe(verdict, "stale (%s now) in an unsync page %s", translation_fault_name(fault),
			 t->cached_root ? "of a cached root, synced before that root is loaded again" :
					  "of a vCPU that syncs its roots before it runs again");
		return true;
	}
	verdict->fault = fault;
	describe_fault(verdict, fault, t, &g, tc->mem);
	if (source_may_lag(t))
		refuse_allowance(verdict, frame_ok);
	return false;
}

/* ---- invalidations and lifetime ---- */

/* INVLPG drops the translations of every page size that contain gva (SDM vol. 3
 * §4.10.4.1). */
void translation_checker_invlpg(struct translation_checker *tc, int vcpu_id, gva_t gva)
{
	struct vcpu_history *h = tc ? history_of(tc, vcpu_id, false) : NULL;

	if (!h)
		return;
	for (int level = PT_PAGE_TABLE_LEVEL; level <= MAX_TRANSLATION_LEVEL; level++)
		drop_node(h, level, gva & ~(level_size(level) - 1));
}

void translation_checker_flush_all(struct translation_checker *tc, int vcpu_id)
{
	struct vcpu_history *h = tc ? history_of(tc, vcpu_id, false) : NULL;

	if (h)
		clear_history(h);
}

void translation_checker_reset(struct translation_checker *tc)
{
	if (!tc)
		return;
	for (int i = 0; i < tc->n_vcpus; i++)
		clear_history(&tc->vcpus[i]);
	tc->clock = 0;
}

struct translation_checker *translation_checker_new(struct ref_memory *mem)
{
	struct translation_checker *tc;

	if (!mem)
		return NULL;
	tc = calloc(1, sizeof(*tc));
	if (tc)
		tc->mem = mem;
	return tc;
}

void translation_checker_free(struct translation_checker *tc)
{
	if (!tc)
		return;
	for (int i = 0; i < tc->n_vcpus; i++)
		free(tc->vcpus[i].pool);
	free(tc->vcpus);
	free(tc);
}
