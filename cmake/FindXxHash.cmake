# FindXxHash: the xxHash header (splitnet uses it in inline mode, XXH_INLINE_ALL, so no
# library is linked). Defines XxHash_FOUND, XxHash_INCLUDE_DIR and XxHash::xxhash.
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
    pkg_check_modules(PC_XxHash QUIET libxxhash)
endif()
find_path(XxHash_INCLUDE_DIR NAMES xxhash.h HINTS ${PC_XxHash_INCLUDE_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(XxHash REQUIRED_VARS XxHash_INCLUDE_DIR
    VERSION_VAR PC_XxHash_VERSION
    REASON_FAILURE_MESSAGE "install the xxHash header: apt-get install libxxhash-dev")
if(XxHash_FOUND AND NOT TARGET XxHash::xxhash)
    add_library(XxHash::xxhash INTERFACE IMPORTED)
    set_target_properties(XxHash::xxhash PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES ${XxHash_INCLUDE_DIR})
endif()
mark_as_advanced(XxHash_INCLUDE_DIR)
