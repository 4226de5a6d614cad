/* The program files a command line names: files as given, directories expanded
 * recursively in name order (hidden files and READMEs skipped), for stable output. */
#ifndef SHADOWFUZZ_FUZZ_PROGRAM_DIR_H
#define SHADOWFUZZ_FUZZ_PROGRAM_DIR_H

#include <stddef.h>

struct path_list {
	char **paths;
	size_t n, cap;
};

/* Appends path (a file) or the files under it (a directory). Returns 0, or -1 with a
 * message in err when path cannot be read. */
int path_list_add(struct path_list *list, const char *path, char *err, size_t errlen);
/* Appends the seed programs of dir: its own *.sfp files in name order, not those below it
 * (corpus/bugs/ and corpus/regressions/ expose bugs; campaigns never start from them). */
int path_list_add_seeds(struct path_list *list, const char *dir, char *err, size_t errlen);
void path_list_free(struct path_list *list);

#endif
