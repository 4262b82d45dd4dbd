# SPLITNET_SANITIZE=address,undefined | thread applies to the project's executables only
# (tests, benchmarks, examples), never to the INTERFACE target a consumer links.
include(CheckCXXSourceCompiles)

set(SPLITNET_SANITIZER_FLAGS "")
if(SPLITNET_SANITIZE)
    if(SPLITNET_SANITIZE MATCHES "thread" AND SPLITNET_SANITIZE MATCHES "address")
        message(FATAL_ERROR "SPLITNET_SANITIZE: thread and address sanitizers cannot be combined; "
                            "configure two builds (presets asan and tsan).")
    endif()
    set(_flags -fsanitize=${SPLITNET_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    list(JOIN _flags " " CMAKE_REQUIRED_FLAGS)
    set(CMAKE_REQUIRED_LINK_OPTIONS ${_flags})
    check_cxx_source_compiles("int main() { return 0; }" SPLITNET_SANITIZER_WORKS)
    unset(CMAKE_REQUIRED_FLAGS)
    unset(CMAKE_REQUIRED_LINK_OPTIONS)
    if(NOT SPLITNET_SANITIZER_WORKS)
        message(FATAL_ERROR "SPLITNET_SANITIZE=${SPLITNET_SANITIZE}: ${CMAKE_CXX_COMPILER_ID} "
                            "cannot build with ${_flags}; install the compiler's sanitizer runtime "
                            "(clang: apt-get install libclang-rt-14-dev).")
    endif()
    set(SPLITNET_SANITIZER_FLAGS ${_flags})
endif()

function(splitnet_apply_sanitizers target)
    if(SPLITNET_SANITIZER_FLAGS)
        target_compile_options(${target} PRIVATE ${SPLITNET_SANITIZER_FLAGS})
        target_link_options(${target} PRIVATE ${SPLITNET_SANITIZER_FLAGS})
    endif()
endfunction()

# One call for every executable the project builds: warnings, sanitizers, the library.
function(splitnet_executable_setup target)
    splitnet_set_warnings(${target})
    splitnet_apply_sanitizers(${target})
    target_link_libraries(${target} PRIVATE splitnet::splitnet)
endfunction()
