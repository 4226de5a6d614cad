#define _GNU_SOURCE
#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_write_new(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int n;

	if (access(path, F_OK) == 0)
		return 1;
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	f = fopen(tmp, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		if (f)
			unlink(tmp);
		return -1;
	}
	/* link() fails on an existing target, so a file made meanwhile is not replaced. */
	if (link(tmp, path)) {
		int saved = errno;

		unlink(tmp);
		if (saved == EEXIST)
			return 1;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(saved));
		return -1;
	}
	unlink(tmp);
	return 0;
}

int dir_make_temp(const char *final_path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	for (unsigned attempt = 0; attempt < 100; attempt++) {
		int n = snprintf(tmp, tmplen, "%s.tmp.%d.%u", final_path, (int)getpid(), attempt);

		if (n < 0 || (size_t)n >= tmplen) {
			snprintf(err, errlen, "path too long: %s", final_path);
			return -1;
		}
		if (mkdir(tmp, 0755) == 0)
			return 0;
		if (errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
			return -1;
		}
	}
	snprintf(err, errlen, "cannot find a free temporary name beside %s", final_path);
	return -1;
}

void dir_remove_temp(const char *tmp)
{
	DIR *dir = opendir(tmp);
	struct dirent *entry;

	if (!dir)
		return;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.' || (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")))
			unlinkat(dirfd(dir), entry->d_name, 0);
	closedir(dir);
	rmdir(tmp);
}

int dir_publish_new(const char *tmp, const char *final_path, char *err, size_t errlen)
{
	/* renameat2(RENAME_NOREPLACE) refuses an existing target even when it is an empty
	 * directory, which plain rename() would replace. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final_path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST || errno == ENOTEMPTY) {
		dir_remove_temp(tmp);
		return 1;
	}
	snprintf(err, errlen, "cannot publish %s: %s", final_path, strerror(errno));
	dir_remove_temp(tmp);
	return -1;
}
