// Backend selection at run time: the CPU backend is always here; the CUDA
// backend registers itself when the program was linked with it (the mains do
// that), so the engine never depends on gpu/.
#include "core/BackendRegistry.h"

#include "core/cpu/CpuBackend.h"

#include <stdexcept>

namespace relora {
namespace {

BackendPlugin& cudaPlugin() {
    static BackendPlugin plugin;
    return plugin;
}

}  // namespace

void registerCudaBackend(BackendPlugin plugin) { cudaPlugin() = std::move(plugin); }

bool cudaAvailable(std::string* why) {
    const auto& plugin = cudaPlugin();
    if (!plugin.probe) {
        if (why) *why = "this build has no CUDA support (configured without the CUDA toolkit)";
        return false;
    }
    return plugin.probe(why);
}

std::unique_ptr<Backend> createBackend(const std::string& kind, const BackendOptions& options) {
    if (kind == "cpu") return std::make_unique<CpuBackend>(options.threads);
    if (kind == "cuda" || kind == "auto") {
        std::string why;
        if (cudaAvailable(&why)) return cudaPlugin().create(options);
        if (kind == "auto") return std::make_unique<CpuBackend>(options.threads);
        throw std::runtime_error("CUDA backend requested but not usable: " + why);
    }
    throw std::runtime_error("unknown backend '" + kind + "' (expected auto, cpu or cuda)");
}

}  // namespace relora
