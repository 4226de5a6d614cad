/* SF_ASAN is defined when AddressSanitizer instruments this file (gcc says so with
 * __SANITIZE_ADDRESS__, clang with __has_feature). */
#ifndef SHADOWFUZZ_CORE_ASAN_H
#define SHADOWFUZZ_CORE_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define SF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SF_ASAN 1
#endif
#endif

#endif
