/* shadowfuzz fuzz: a fuzzing campaign with progress, findings and a summary. */
#ifndef SHADOWFUZZ_FUZZ_CAMPAIGN_H
#define SHADOWFUZZ_FUZZ_CAMPAIGN_H

int cmd_fuzz(int argc, char **argv);

/* Runs this program's fuzz command with args (NULL-terminated, "fuzz" not included) as a
 * child and waits. Its output is appended to log_path if given, else shared with ours.
 * Returns the child's exit code, or -1 when it could not run or was killed. */
int campaign_run_child(char *const args[], const char *log_path);

#endif
