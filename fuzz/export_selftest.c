/* The selftest exporter is being written (branch selftest); until then --selftest says so. */
#include "export.h"

int export_selftest(FILE *out, const struct program *prog, const struct common_options *common,
		    const char *source, char *err, size_t errlen)
{
	snprintf(err, errlen, "--selftest is not available in this build yet; use --c");
	return -1;
}
