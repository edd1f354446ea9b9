// Weight snapshots in HDF5 (DESIGN §8), readable by h5py or any HDF5 reader.
//
// Layout, all in the root group, float32, chunked, shuffle + deflate(4):
//   <name>                      every Parameter under its Hugging Face name
//                               (model.embed_tokens.weight, lm_head.weight,
//                               model.layers.3.self_attn.q_proj.weight, ...);
//                               matrices (rows, cols), vectors 1-D
//   <module>.lora_A.weight      LoRA factors (PEFT's names), (r, in) / (out, r)
//   <module>.lora_B.weight
//   <module>.weight             for a LoRA target: the EFFECTIVE weight
//                               W + s·B·A, so the base names alone load into
//                               a plain LlamaForCausalLM
//   <module>.base_layer.weight  for a LoRA target: the frozen W (PEFT's name)
// Root attributes: format_version (1), run_id, step, method, spec (JSON text),
// producer, d_model, d_ff, heads, layers, context, vocab, rope_theta,
// norm_eps, and with LoRA lora_rank, lora_scale, lora_targets ("wq,wv").
//
// Threads: the HDF5 library of Debian is built without thread safety. Every
// HDF5 call of this file runs on the calling thread under one process-wide
// mutex, so these functions may be called from any thread, but other code
// that uses HDF5 directly must not run at the same time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace relora {

class LlamaModel;

inline constexpr int kSnapshotFormatVersion = 1;

struct SnapshotTensor {
    std::vector<size_t> shape;     // {rows, cols} or {n}
    std::vector<float> values;     // row-major
};

using SnapshotAttribute = std::variant<int64_t, double, std::string>;

struct SnapshotContents {
    std::map<std::string, SnapshotTensor> tensors;
    std::map<std::string, SnapshotAttribute> attributes;

    const SnapshotTensor* find(const std::string& name) const;
    // Typed attribute access; throws std::runtime_error when missing or of another type.
    int64_t intAttribute(const std::string& name) const;
    double realAttribute(const std::string& name) const;     // ints convert
    const std::string& textAttribute(const std::string& name) const;
};

// Host copy of the model's tensors with merged LoRA weights and the root
// attributes. Reads through the model's backend: call it between steps, on
// the thread that drives the backend. Merges are computed on the host in
// float32 (OpenBLAS sgemm), whatever precision the backend multiplies in.
SnapshotContents captureSnapshot(LlamaModel& model, int64_t runId, int64_t step,
                                 const std::string& method, const std::string& specJson);

// Writes `contents` to "<path>.tmp", syncs it and renames it to `path`. On any
// failure (missing folder, disk full, ...) throws std::runtime_error naming
// the path and the cause, and leaves no file at `path` (an older file there
// stays untouched) and no temporary file. Only HDF5 and file I/O: may run
// on a background thread while training goes on.
void writeSnapshot(const std::string& path, const SnapshotContents& contents);

// captureSnapshot + writeSnapshot.
void writeSnapshot(const std::string& path, LlamaModel& model, int64_t runId, int64_t step,
                   const std::string& method, const std::string& specJson);

// Every dataset (converted to float32) and every root attribute. Throws
// std::runtime_error for a missing file, a file that is not HDF5, or a
// format_version newer than kSnapshotFormatVersion.
SnapshotContents readSnapshot(const std::string& path);

// "run-<id>-step-<step, 7 digits>.h5": the conventional file name.
std::string snapshotFileName(int64_t runId, int64_t step);

}  // namespace relora
