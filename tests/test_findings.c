/* Findings of a campaign with a planted bug: a divergence counts for the bug only when the
 * model without it (the baseline) passes the same input; one the baseline shows too is
 * filed apart as a finding of the unmodified model. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/findings.h"
#include "../fuzz/program.h"

struct fixture {
	char dir[64];
	struct executor *with_bug, *baseline;
	uint8_t *input;
	size_t len;
};

static struct executor *executor_with_bugs(uint64_t bugs)
{
	struct kvm_config cfg;
	char err[256];
	struct executor *ex;

	kvm_config_init(&cfg, KVM_PROFILE_5_1);
	cfg.bugs = bugs;
	ex = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));
	assert_non_null(ex);
	return ex;
}

static int setup(void **state)
{
	static struct program prog;
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_findings.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(program_load_file(CORPUS_DIR "/bugs/S6_cr0_wp_role.sfp", &prog, err, sizeof(err)), 0);
	f->input = malloc(program_encoded_size_max());
	assert_non_null(f->input);
	f->len = program_encode(&prog, f->input, program_encoded_size_max());
	f->with_bug = executor_with_bugs(1ull << KVM_BUG_S6_NO_CR0_WP_ROLE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	executor_free(f->with_bug);
	executor_free(f->baseline);
	free(f->input);
	free(f);
	return 0;
}

static void add_input(struct fixture *f, struct finding_result *result)
{
	char err[256];
	struct finding_store *store = finding_store_open(f->dir, "--bug S6", err, sizeof(err));

	assert_non_null(store);
	finding_store_set_baseline(store, f->baseline);
	assert_int_equal(finding_store_add(store, f->with_bug, f->input, f->len, "test", result, err,
					   sizeof(err)),
			 0);
	finding_store_free(store);
}

static void bug_finding_counts_when_baseline_passes(void **state)
{
	struct fixture *f = *state;
	struct finding_result result;

	f->baseline = executor_with_bugs(0);
	add_input(f, &result);
	assert_true(result.is_new);
	assert_true(result.planted);
	assert_null(strstr(result.signature, SIGNATURE_UNPLANTED_PREFIX));
}

/* A baseline that diverges too (here: it has the same bug) makes the finding the model's. */
static void finding_of_baseline_is_filed_apart(void **state)
{
	struct fixture *f = *state;
	struct finding_result result;
	char path[256], line[256];
	bool noted = false;
	FILE *report;

	f->baseline = executor_with_bugs(1ull << KVM_BUG_S6_NO_CR0_WP_ROLE);
	add_input(f, &result);
	assert_true(result.is_new);
	assert_false(result.planted);
	assert_memory_equal(result.signature, SIGNATURE_UNPLANTED_PREFIX, strlen(SIGNATURE_UNPLANTED_PREFIX));
	snprintf(path, sizeof(path), "%s/%s/report.txt", f->dir, result.signature);
	report = fopen(path, "r");
	assert_non_null(report);
	while (fgets(line, sizeof(line), report))
		noted |= strstr(line, "diverges without the planted bugs") != NULL;
	fclose(report);
	assert_true(noted);
}

static void without_baseline_nothing_is_attributed(void **state)
{
	struct fixture *f = *state;
	struct finding_result result;

	add_input(f, &result);
	assert_true(result.is_new);
	assert_false(result.planted);
	assert_null(strstr(result.signature, SIGNATURE_UNPLANTED_PREFIX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bug_finding_counts_when_baseline_passes, setup, teardown),
		cmocka_unit_test_setup_teardown(finding_of_baseline_is_filed_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(without_baseline_nothing_is_attributed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
