// SPDX-License-Identifier: MIT
// splitnet/version.hpp: the library version, kept equal to project(VERSION) in CMakeLists.txt.
#pragma once

#define SPLITNET_VERSION_MAJOR 0
#define SPLITNET_VERSION_MINOR 1
#define SPLITNET_VERSION_PATCH 0

namespace splitnet {
inline constexpr int version_major = SPLITNET_VERSION_MAJOR;
inline constexpr int version_minor = SPLITNET_VERSION_MINOR;
inline constexpr int version_patch = SPLITNET_VERSION_PATCH;
} // namespace splitnet
