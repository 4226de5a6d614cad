/* shadowfuzz fuzz: a fuzzing campaign with progress, findings and a summary. */
#ifndef SHADOWFUZZ_FUZZ_CAMPAIGN_H
#define SHADOWFUZZ_FUZZ_CAMPAIGN_H

int cmd_fuzz(int argc, char **argv);

#endif
