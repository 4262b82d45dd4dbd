# FindLibXdp: libxdp (AF_XDP sockets, XDP program loading) and libbpf, which libxdp needs.
# Defines LibXdp_FOUND, LibXdp::xdp and LibBpf::bpf.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
    pkg_check_modules(PC_LibXdp QUIET libxdp)
    pkg_check_modules(PC_LibBpf QUIET libbpf)
endif()
find_path(LibXdp_INCLUDE_DIR NAMES xdp/xsk.h HINTS ${PC_LibXdp_INCLUDE_DIRS})
find_library(LibXdp_LIBRARY NAMES xdp HINTS ${PC_LibXdp_LIBRARY_DIRS})
find_path(LibBpf_INCLUDE_DIR NAMES bpf/libbpf.h HINTS ${PC_LibBpf_INCLUDE_DIRS})
find_library(LibBpf_LIBRARY NAMES bpf HINTS ${PC_LibBpf_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LibXdp
    REQUIRED_VARS LibXdp_LIBRARY LibXdp_INCLUDE_DIR LibBpf_LIBRARY LibBpf_INCLUDE_DIR
    VERSION_VAR PC_LibXdp_VERSION
    REASON_FAILURE_MESSAGE "install libxdp and libbpf: apt-get install libxdp-dev libbpf-dev")
if(LibXdp_FOUND)
    if(NOT TARGET LibBpf::bpf)
        add_library(LibBpf::bpf UNKNOWN IMPORTED)
        set_target_properties(LibBpf::bpf PROPERTIES IMPORTED_LOCATION ${LibBpf_LIBRARY}
            INTERFACE_INCLUDE_DIRECTORIES ${LibBpf_INCLUDE_DIR})
    endif()
    if(NOT TARGET LibXdp::xdp)
        add_library(LibXdp::xdp UNKNOWN IMPORTED)
        set_target_properties(LibXdp::xdp PROPERTIES IMPORTED_LOCATION ${LibXdp_LIBRARY}
            INTERFACE_INCLUDE_DIRECTORIES ${LibXdp_INCLUDE_DIR}
            INTERFACE_LINK_LIBRARIES LibBpf::bpf)
    endif()
endif()
mark_as_advanced(LibXdp_INCLUDE_DIR LibXdp_LIBRARY LibBpf_INCLUDE_DIR LibBpf_LIBRARY)
