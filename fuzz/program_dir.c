#define _GNU_SOURCE
#include "program_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int push(struct path_list *list, char *path)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 64;
		char **grown = realloc(list->paths, cap * sizeof(*grown));

		if (!grown)
			return -1;
		list->paths = grown;
		list->cap = cap;
	}
	list->paths[list->n++] = path;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(struct path_list *list, const char *path, char *err, size_t errlen)
{
	struct path_list here = { 0 };
	DIR *dir = opendir(path);
	struct dirent *entry;
	int ret = 0;

	if (!dir) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((entry = readdir(dir))) {
		char *child;

		if (entry->d_name[0] == '.' || !strncmp(entry->d_name, "README", 6))
			continue;
		if (asprintf(&child, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
			     entry->d_name) < 0 || push(&here, child)) {
			snprintf(err, errlen, "out of memory");
			ret = -1;
			break;
		}
	}
	closedir(dir);
	qsort(here.paths, here.n, sizeof(*here.paths), compare_names);
	for (size_t i = 0; i < here.n && !ret; i++)
		ret = path_list_add(list, here.paths[i], err, errlen);
	path_list_free(&here);
	return ret;
}

int path_list_add(struct path_list *list, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *copy;

	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return add_dir(list, path, err, errlen);
	copy = strdup(path);
	if (!copy || push(list, copy)) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int path_list_add_seeds(struct path_list *list, const char *dir, char *err, size_t errlen)
{
	struct path_list all = { 0 };
	int ret = add_dir(&all, dir, err, errlen);
	size_t prefix = strlen(dir) + (dir[strlen(dir) - 1] == '/' ? 0 : 1);

	for (size_t i = 0; i < all.n && !ret; i++) {
		const char *name = all.paths[i] + prefix;
		size_t len = strlen(name);

		if (strchr(name, '/') || len < 4 || strcmp(name + len - 4, ".sfp"))
			continue;
		if (push(list, all.paths[i])) {
			snprintf(err, errlen, "out of memory");
			ret = -1;
			break;
		}
		all.paths[i] = NULL;
	}
	path_list_free(&all);
	return ret;
}

void path_list_free(struct path_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		free(list->paths[i]);
	free(list->paths);
	memset(list, 0, sizeof(*list));
}
