# FindXenHeaders: Xen's public I/O headers (Debian libxen-dev), used only by the layout
# compatibility tests. Defines XenHeaders_FOUND and XenHeaders::headers.
find_path(XenHeaders_INCLUDE_DIR NAMES xen/io/ring.h xen/io/netif.h)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(XenHeaders REQUIRED_VARS XenHeaders_INCLUDE_DIR
    REASON_FAILURE_MESSAGE "install Xen's public headers: apt-get install libxen-dev")
if(XenHeaders_FOUND AND NOT TARGET XenHeaders::headers)
    add_library(XenHeaders::headers INTERFACE IMPORTED)
    set_target_properties(XenHeaders::headers PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES ${XenHeaders_INCLUDE_DIR})
endif()
mark_as_advanced(XenHeaders_INCLUDE_DIR)
