#ifndef VPIO_CCYCLECOUNTER_H
#define VPIO_CCYCLECOUNTER_H
#include <stdint.h>

/// The CPU's time-stamp counter (rdtsc), or 0 where there is none. It ticks at a constant reference
/// rate on current x86 CPUs, not at the core clock; callers say so when they print it as cycles.
static inline uint64_t vpio_cycle_counter(void) {
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

#endif
