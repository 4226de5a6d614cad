/* shadowfuzz bench bugs: does fuzzing find the planted bugs, and how fast? For every bug
 * switch, K independent campaigns of at most T seconds each, started from the generic seed
 * corpus only, record the time to the first divergence. */
#ifndef SHADOWFUZZ_FUZZ_BENCH_BUGS_H
#define SHADOWFUZZ_FUZZ_BENCH_BUGS_H

int cmd_bench_bugs(int argc, char **argv);

#endif
