/* shadowfuzz export: the command. Loads a program, writes OUT in the asked form and the
 * text program beside it (OUT without its extension + ".sfp"); never overwrites. */
#define _GNU_SOURCE
#include "export.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"

enum export_form { EXPORT_NONE, EXPORT_C, EXPORT_SELFTEST };

static void usage_export(FILE *out)
{
	fprintf(out,
		"usage: shadowfuzz export (--c | --selftest) [options] FILE -o OUT.c\n"
		"Writes FILE (a program, text or binary: e.g. a finding's minimized.sfp) as\n"
		"  --c         a standalone C reproducer that links this project's libraries and\n"
		"              exits 1 on the divergence (build line in its header comment)\n"
		"  --selftest  a KVM-selftest-style C program that runs the scenario on a real\n"
		"              kernel through /dev/kvm (shadow paging: ept=0 or npt=0) and asserts\n"
		"              the architecture's answer for every access\n"
		"and the text program beside it (OUT.sfp). Nothing is overwritten.\n"
		"  -o, --out OUT.c  the C file to write (required)\n");
	usage_common(out);
}

/* Generates the C text in memory, so nothing is written unless all of it was made. */
static int generate(enum export_form form, const struct program *prog,
		    const struct common_options *common, const char *source, char **text,
		    size_t *len, char *err, size_t errlen)
{
	FILE *f = open_memstream(text, len);
	int r = 0;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (form == EXPORT_C)
		export_c_reproducer(f, prog, common, source);
	else
		r = export_selftest(f, prog, common, source, err, errlen);
	fclose(f);
	return r;
}

static int sibling_sfp(const char *out, char *buf, size_t len)
{
	const char *dot = strrchr(out, '.'), *slash = strrchr(out, '/');
	size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - out) : strlen(out);
	int n = snprintf(buf, len, "%.*s.sfp", (int)stem, out);

	return n < 0 || (size_t)n >= len || !strcmp(buf, out) ? -1 : 0;
}

static int write_outputs(const char *out, const char *text, size_t len, const struct program *prog,
			 const char *source)
{
	char sfp[4096], err[512], header[4200];
	int r;

	if (sibling_sfp(out, sfp, sizeof(sfp))) {
		fprintf(stderr, "shadowfuzz export: OUT must be a .c file name, not '%s'\n", out);
		return -1;
	}
	if (access(out, F_OK) == 0 || access(sfp, F_OK) == 0) {
		fprintf(stderr, "shadowfuzz export: %s exists; not overwriting it\n",
			access(out, F_OK) == 0 ? out : sfp);
		return -1;
	}
	snprintf(header, sizeof(header), "# exported from %s\n", source);
	r = program_save_new(sfp, prog, header, err, sizeof(err));
	if (r == 0)
		r = file_write_new(out, text, len, err, sizeof(err));
	if (r) {
		fprintf(stderr, "shadowfuzz export: %s\n", r > 0 ? "output appeared meanwhile; kept it" : err);
		return -1;
	}
	printf("wrote %s and %s\n", out, sfp);
	return 0;
}

int cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG_OPTIONS,
		{ "c", no_argument, NULL, 'c' },
		{ "selftest", no_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct common_options common = COMMON_OPTIONS_INIT;
	enum export_form form = EXPORT_NONE;
	static struct program prog;
	const char *out = NULL;
	char err[512], *text = NULL;
	size_t len = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "p:b:H:o:h", longopts, NULL)) != -1) {
		int consumed = parse_common(opt, optarg, &common);

		if (consumed < 0)
			return EXIT_USAGE;
		if (consumed)
			continue;
		if (opt == 'c' || opt == 's') {
			form = opt == 'c' ? EXPORT_C : EXPORT_SELFTEST;
		} else if (opt == 'o') {
			out = optarg;
		} else {
			usage_export(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? EXIT_CLEAN : EXIT_USAGE;
		}
	}
	if (form == EXPORT_NONE || !out || optind + 1 != argc) {
		fprintf(stderr, "shadowfuzz export: %s\n",
			form == EXPORT_NONE ? "say --c or --selftest"
			: !out		    ? "-o OUT.c is required"
					    : "give exactly one program file");
		return EXIT_USAGE;
	}
	if (program_load_file(argv[optind], &prog, err, sizeof(err))) {
		fprintf(stderr, "shadowfuzz export: %s\n", err);
		return EXIT_USAGE;
	}
	finish_common(&common);
	r = generate(form, &prog, &common, argv[optind], &text, &len, err, sizeof(err));
	if (r)
		fprintf(stderr, "shadowfuzz export: %s\n", err);
	else
		r = write_outputs(out, text, len, &prog, argv[optind]);
	free(text);
	return r ? EXIT_USAGE : EXIT_CLEAN;
}
