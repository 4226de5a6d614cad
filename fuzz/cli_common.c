#include "cli_common.h"

#include <stdlib.h>
#include <string.h>

void usage_common(FILE *out)
{
	fprintf(out,
		"  --profile P   kernel profile the model mirrors: 4.20, 5.1 (default), 5.3\n"
		"  --bug ID      plant a historical or synthetic bug (repeatable); --bug list shows them\n"
		"  --host-phys-bits N  the host's physical-address width (32..52, default 46): below\n"
		"                45 the L1TF bits of MMIO sptes overlap guest addresses; 52 leaves no\n"
		"                reserved bit for MMIO sptes\n"
		"  --no-prefetch turn off PTE prefetch after faults (on in every profile, as in KVM)\n"
		"  -h, --help    this help\n");
}

static void list_bugs(FILE *out)
{
	for (int b = 0; b < KVM_BUG_COUNT; b++) {
		const struct kvm_bug_info *info = kvm_bug_info(b);

		fprintf(out, "%-4s %s\n     origin: %s; caught by: %s\n", info->id, info->summary,
			info->origin, info->caught_by);
	}
}

static int parse_phys_bits(const char *arg, struct common_options *common)
{
	char *end;
	long bits = strtol(arg, &end, 10);

	if (!*arg || *end || bits < 32 || bits > 52) {
		fprintf(stderr, "shadowfuzz: --host-phys-bits wants 32..52, not '%s'\n", arg);
		return -1;
	}
	common->host_phys_bits = (int)bits;
	return 1;
}

static int parse_bug(const char *arg, struct common_options *common)
{
	int bug;

	if (!strcmp(arg, "list")) {
		list_bugs(stdout);
		exit(EXIT_CLEAN);
	}
	bug = kvm_bug_parse(arg);
	if (bug < 0) {
		fprintf(stderr, "shadowfuzz: unknown bug '%s' (shadowfuzz run --bug list)\n", arg);
		return -1;
	}
	common->bugs |= 1ull << bug;
	return 1;
}

int parse_common(int opt, const char *arg, struct common_options *common)
{
	switch (opt) {
	case 'p':
		if (kvm_profile_parse(arg, &common->profile)) {
			fprintf(stderr, "shadowfuzz: unknown profile '%s' (use 4.20, 5.1 or 5.3)\n", arg);
			return -1;
		}
		return 1;
	case 'H':
		return parse_phys_bits(arg, common);
	case 'b':
		return parse_bug(arg, common);
	case 'N':
		common->no_prefetch = true;
		return 1;
	default:
		return 0;
	}
}

int parse_command_line(int argc, char **argv, const char *shortopts,
		       const struct option *longopts, struct common_options *common,
		       int (*own)(int opt, const char *arg, void *ctx), void *ctx)
{
	int opt;

	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, common);

		if (consumed < 0)
			return -1;
		if (consumed)
			continue;
		if (opt == 'h')
			return 1;
		if (opt == '?' || own(opt, optarg, ctx))
			return -1;
	}
	return 0;
}

void finish_common(struct common_options *common)
{
	kvm_config_init(&common->config, common->profile);
	common->config.bugs = common->bugs;
	if (common->host_phys_bits)
		common->config.host_phys_bits = common->host_phys_bits;
	common->config.prefetch = !common->no_prefetch;
}

void common_describe(const struct common_options *common, char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "--profile %s", kvm_profile_name(common->profile));

	for (int b = 0; b < KVM_BUG_COUNT && used < len; b++)
		if (common->bugs & (1ull << b))
			used += (size_t)snprintf(buf + used, len - used, " --bug %s", kvm_bug_info(b)->id);
	if (common->host_phys_bits && used < len)
		used += (size_t)snprintf(buf + used, len - used, " --host-phys-bits %d",
					 common->host_phys_bits);
	if (common->no_prefetch && used < len)
		snprintf(buf + used, len - used, " --no-prefetch");
}

void common_append_args(const struct common_options *common, char *args[], int *n,
			char number[16])
{
	args[(*n)++] = "--profile";
	args[(*n)++] = (char *)kvm_profile_name(common->profile);
	for (int b = 0; b < KVM_BUG_COUNT; b++)
		if (common->bugs & (1ull << b)) {
			args[(*n)++] = "--bug";
			args[(*n)++] = (char *)kvm_bug_info(b)->id;
		}
	if (common->no_prefetch)
		args[(*n)++] = "--no-prefetch";
	if (!common->host_phys_bits)
		return;
	snprintf(number, 16, "%d", common->host_phys_bits);
	args[(*n)++] = "--host-phys-bits";
	args[(*n)++] = number;
}
