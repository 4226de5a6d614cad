/* shadowfuzz conform: the pre-submission check a KVM developer runs after porting a patch
 * into core/ (as a profile or a switch): the whole corpus, the regression corpus and a
 * short campaign, with a report; exit 0 only when everything is clean. */
#ifndef SHADOWFUZZ_FUZZ_CONFORM_H
#define SHADOWFUZZ_FUZZ_CONFORM_H

int cmd_conform(int argc, char **argv);

#endif
