/* The C reproducer: the program's text form embedded as a string, parsed and run on the
 * model and the reference with the same options, exiting 1 on the divergence. Text rather
 * than C initialisers, so the reproducer reads like the finding. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "export.h"

static void put_c_string_lines(FILE *out, const char *text)
{
	fprintf(out, "static const char program_text[] =\n");
	while (*text) {
		const char *end = strchr(text, '\n');
		size_t len = end ? (size_t)(end - text) : strlen(text);

		fprintf(out, "\t\"");
		for (size_t i = 0; i < len; i++) {
			if (text[i] == '"' || text[i] == '\\')
				fputc('\\', out);
			fputc(text[i], out);
		}
		fprintf(out, "\\n\"\n");
		text += len + (end ? 1 : 0);
	}
	fprintf(out, "\t;\n\n");
}

static void put_config(FILE *out, const struct common_options *common)
{
	fprintf(out, "\tif (kvm_profile_parse(\"%s\", &profile))\n\t\treturn 2;\n",
		kvm_profile_name(common->profile));
	fprintf(out, "\tkvm_config_init(&cfg, profile);\n");
	for (int b = 0; b < KVM_BUG_COUNT; b++)
		if (common->bugs & (1ull << b))
			fprintf(out, "\tcfg.bugs |= 1ull << kvm_bug_parse(\"%s\");\n", kvm_bug_info(b)->id);
	if (common->host_phys_bits)
		fprintf(out, "\tcfg.host_phys_bits = %d;\n", common->host_phys_bits);
	if (common->no_prefetch)
		fprintf(out, "\tcfg.prefetch = false;\n");
}

void export_c_reproducer(FILE *out, const struct program *prog, const struct common_options *common,
			 const char *source)
{
	char describe[512], *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	if (!mem)
		return;
	program_print(prog, mem);
	fclose(mem);
	common_describe(common, describe, sizeof(describe));
	fprintf(out,
		"/* shadowfuzz reproducer for %s (model: %s).\n"
		" * Build from the shadowfuzz source tree after `cmake --build --preset release`:\n"
		" *   cc -O1 -Ifuzz -Icore -Ioracle THIS.c build/release/fuzz/libsf_fuzz.a \\\n"
		" *      build/release/fuzz/libsf_program_codec.a build/release/oracle/libsf_oracle.a \\\n"
		" *      build/release/core/libsf_core.a \\\n"
		" *      $(pkg-config --libs unicorn) -lpthread -lm -o repro\n"
		" * ./repro prints the divergence and exits 1; it exits 0 once the model agrees with\n"
		" * the architecture, 2 on a harness error. */\n"
		"#include <stdio.h>\n\n#include \"executor.h\"\n#include \"kvm_config.h\"\n"
		"#include \"program.h\"\n\n",
		source, describe);
	put_c_string_lines(out, text);
	fprintf(out, "int main(void)\n{\n"
		     "\tstatic struct program prog;\n\tstruct divergence div;\n"
		     "\tenum kvm_profile profile;\n\tstruct kvm_config cfg;\n"
		     "\tstruct executor *ex;\n\tchar err[512];\n\tint ret;\n\n");
	put_config(out, common);
	fprintf(out, "\tif (program_parse(program_text, \"reproducer\", &prog, err, sizeof(err))) {\n"
		     "\t\tfprintf(stderr, \"%%s\\n\", err);\n\t\treturn 2;\n\t}\n"
		     "\tex = executor_new(&cfg, EXEC_SHADOW_MMU, err, sizeof(err));\n"
		     "\tif (!ex) {\n\t\tfprintf(stderr, \"%%s\\n\", err);\n\t\treturn 2;\n\t}\n"
		     "\texecutor_set_audit(ex, true);\n"
		     "\tret = executor_run(ex, &prog, &div);\n"
		     "\tif (ret > 0)\n\t\tdivergence_print(&div, stdout);\n"
		     "\telse if (ret < 0)\n\t\tfprintf(stderr, \"harness error: %%s\\n\", executor_error(ex));\n"
		     "\telse\n\t\tprintf(\"no divergence\\n\");\n"
		     "\texecutor_free(ex);\n\treturn ret > 0 ? 1 : ret < 0 ? 2 : 0;\n}\n");
	free(text);
}
