# Warnings for the project's own targets (tests, benchmarks, examples, header checks).
# The INTERFACE library carries none: consumers choose their own flags.
set(SPLITNET_WARNING_FLAGS
    -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wold-style-cast -Wcast-align
    -Wnon-virtual-dtor -Woverloaded-virtual -Wdouble-promotion
    -Wimplicit-fallthrough -Wformat=2 -Wundef)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang's -Wconversion also enables -Wsign-conversion; g++ does not in C++. Keep both the same.
    list(APPEND SPLITNET_WARNING_FLAGS -Wno-sign-conversion)
endif()
if(SPLITNET_WERROR)
    list(APPEND SPLITNET_WARNING_FLAGS -Werror)
endif()

function(splitnet_set_warnings target)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${SPLITNET_WARNING_FLAGS}>)
endfunction()
