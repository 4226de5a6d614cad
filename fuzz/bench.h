/* shadowfuzz bench: throughput figures (median of several runs). */
#ifndef SHADOWFUZZ_FUZZ_BENCH_H
#define SHADOWFUZZ_FUZZ_BENCH_H

int cmd_bench(int argc, char **argv);

#endif
