# FindDpdk: DPDK (Debian libdpdk-dev) through pkg-config, for the side-by-side peer
# benchmarks only. Defines Dpdk_FOUND and Dpdk::dpdk.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
    pkg_check_modules(PC_Dpdk QUIET IMPORTED_TARGET libdpdk)
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Dpdk REQUIRED_VARS PC_Dpdk_FOUND VERSION_VAR PC_Dpdk_VERSION
    REASON_FAILURE_MESSAGE "the DPDK peer benchmarks need apt-get install libdpdk-dev")
if(Dpdk_FOUND AND NOT TARGET Dpdk::dpdk)
    add_library(Dpdk::dpdk INTERFACE IMPORTED)
    set_target_properties(Dpdk::dpdk PROPERTIES INTERFACE_LINK_LIBRARIES PkgConfig::PC_Dpdk)
endif()
