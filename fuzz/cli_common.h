/* What every shadowfuzz subcommand shares: exit codes, and the options that choose the
 * model (--profile, --bug, --host-phys-bits). */
#ifndef SHADOWFUZZ_FUZZ_CLI_COMMON_H
#define SHADOWFUZZ_FUZZ_CLI_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/kvm_config.h"

enum { EXIT_CLEAN = 0, EXIT_DIVERGENCE = 1, EXIT_USAGE = 2 };

/* getopt_long entries for the common options; their short codes are 'p', 'b', 'H' and
 * 'N' (--no-prefetch has no short form: 'N' only names it to getopt). */
#define COMMON_LONG_OPTIONS                                        \
	{ "profile", required_argument, NULL, 'p' },               \
	{ "bug", required_argument, NULL, 'b' },                   \
	{ "host-phys-bits", required_argument, NULL, 'H' },        \
	{ "no-prefetch", no_argument, NULL, 'N' }

struct common_options {
	struct kvm_config config; /* filled by finish_common */
	enum kvm_profile profile;
	uint64_t bugs;
	int host_phys_bits; /* 0: the profile's default */
	bool no_prefetch;   /* kvm_config.prefetch off */
};

#define COMMON_OPTIONS_INIT { .profile = KVM_PROFILE_5_1 }

void usage_common(FILE *out);
/* Handles a common option; returns 1 if consumed, 0 if opt is not one, -1 on a bad value
 * (message printed). "--bug list" prints the bug table and exits. */
int parse_common(int opt, const char *arg, struct common_options *common);
void finish_common(struct common_options *common);

/* The getopt_long loop of a subcommand: common options go to common, the others to own
 * (returning 0, or -1 after printing why). Returns 1 for --help ('h'), -1 on an error,
 * 0 when all options were read (optind is at the first operand). */
int parse_command_line(int argc, char **argv, const char *shortopts,
		       const struct option *longopts, struct common_options *common,
		       int (*own)(int opt, const char *arg, void *ctx), void *ctx);
/* Appends the options that recreate common (--profile P, --bug ID..., --host-phys-bits
 * N, --no-prefetch) to args at *n, for a child command; number is storage for N. */
void common_append_args(const struct common_options *common, char *args[], int *n,
			char number[16]);
/* "--profile 5.1 --bug B13 ..." as a command line would say it, for reports. */
void common_describe(const struct common_options *common, char *buf, size_t len);

#endif
