// How an optional backend (CUDA) makes itself known to the engine without
// the engine depending on it: a program linked with gpu/ calls
// registerCudaBackend() from its main (see gpu/CudaBackend.h).
#pragma once

#include "core/Backend.h"

#include <functional>
#include <memory>
#include <string>

namespace relora {

struct BackendPlugin {
    std::function<bool(std::string* why)> probe;          // is a device usable?
    std::function<std::unique_ptr<Backend>(const BackendOptions&)> create;  // throws on failure
};

void registerCudaBackend(BackendPlugin plugin);

}  // namespace relora
