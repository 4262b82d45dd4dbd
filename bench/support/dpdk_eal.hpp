// SPDX-License-Identifier: MIT
// DPDK's EAL for the peer benchmarks: no hugepages, no PCI, no shared config, one lcore (the
// CPU this process may run on first, so taskset pins both sides alike), set up once per process.
// Include only where <rte_eal.h> exists (SPLITNET_BENCH_HAS_DPDK).
#pragma once

#include <cstdio>
#include <iterator>
#include <string>

#include <rte_eal.h>
#include <rte_errno.h>

#include <sched.h>

namespace splitnet::bench {

/// True once the EAL is up; otherwise says on stderr that `skipped` (which benchmarks) do not run.
inline bool dpdk_eal_ready(const char* skipped) {
    static const bool ok = [skipped] {
        cpu_set_t set;
        CPU_ZERO(&set);
        int cpu = 0;
        if (::sched_getaffinity(0, sizeof set, &set) == 0) {
            while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set)) {
                ++cpu;
            }
        }
        const std::string lcore = std::to_string(cpu);
        const char* argv[] = {"bench",       "--no-huge",        "--no-pci",       "-m",
                              "1024",        "--no-shconf",      "--no-telemetry", "-l",
                              lcore.c_str(), "--log-level=error"};
        if (rte_eal_init(static_cast<int>(std::size(argv)), const_cast<char**>(argv)) < 0) {
            std::fprintf(stderr, "DPDK EAL init failed (%s): %s skipped\n", rte_strerror(rte_errno),
                         skipped);
            return false;
        }
        return true;
    }();
    return ok;
}

} // namespace splitnet::bench
