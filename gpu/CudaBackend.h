// The CUDA backend's one public entry point. A program linked with
// relora_gpu calls registerCudaBackend() once from main(); from then on
// createBackend("cuda" | "auto") can build the backend, and cudaAvailable()
// says why no device is usable when none is. Nothing else of gpu/ is public.
#pragma once

namespace relora::gpu {

void registerCudaBackend();

}  // namespace relora::gpu
