// Helpers shared by the RunSpec sources (RunSpec.cpp, RunSpecJson.cpp,
// RunSpecValidation.cpp). Internal: not part of the public interface.
#pragma once

#include <array>
#include <charconv>
#include <string>

namespace relora::detail {

// True for "custom" and for every preset defaultSpec knows (tiny, 60m, 130m).
bool isKnownPreset(const std::string& name);

// Shortest text that reads back as the same value; locale-independent, unlike
// printf, because the GUI runs under the user's locale.
template <class Float>
std::string shortest(Float f) {
    std::array<char, 64> buf{};
    const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), f).ptr;
    return std::string(buf.data(), end);
}

}  // namespace relora::detail
