/* Files that appear whole or not at all and never replace what is there: the rule for
 * everything a campaign or a command writes (a finding is never overwritten). */
#ifndef SHADOWFUZZ_FUZZ_ATOMIC_FILE_H
#define SHADOWFUZZ_FUZZ_ATOMIC_FILE_H

#include <stddef.h>

/* Writes data to path through a temporary file and link(); returns 0 when written, 1 when
 * path already exists (left untouched), -1 on an error (message in err). */
int file_write_new(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Creates a fresh temporary directory beside final_path (final_path + ".tmp.PID.N"); the
 * caller fills it and hands it to dir_publish_new. Returns 0 or -1 (message in err). */
int dir_make_temp(const char *final_path, char *tmp, size_t tmplen, char *err, size_t errlen);
/* Renames the filled temporary directory to final_path unless that exists; returns 0 when
 * published, 1 when final_path exists (tmp is removed), -1 on an error. */
int dir_publish_new(const char *tmp, const char *final_path, char *err, size_t errlen);
/* Removes a temporary directory and the regular files in it. */
void dir_remove_temp(const char *tmp);

#endif
