// Pins the calling thread to one CPU (benchmarks measure cross-core and same-core placements).
#pragma once

#include <pthread.h>

#include <sched.h>

namespace splitnet::bench {
inline void pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
inline void unpin() {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        CPU_SET(c, &set);
    }
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
} // namespace splitnet::bench
