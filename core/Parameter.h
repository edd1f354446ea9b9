// Parameter: one named tensor of the model on the backend, with its gradient
// and (while trainable) its AdamW moments. Names are Hugging Face Llama's
// module paths so snapshots and parity tests speak the same language.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace relora {

struct Parameter {
    std::string name;        // "model.layers.0.self_attn.q_proj.weight"
    size_t rows = 0;         // matrices: (rows, cols); vectors: (rows, 1)
    size_t cols = 1;
    float* value = nullptr;  // (rows, cols) backend memory, maybe a slice of a fused buffer
    float* grad = nullptr;   // (rows, cols)
    float* m = nullptr;      // AdamW first moment, allocated while trainable
    float* v = nullptr;      // AdamW second moment
    bool trainable = true;
    int64_t updates = 0;     // AdamW step count (per tensor, as PyTorch keeps it)
    bool isMatrix() const { return cols > 1; }  // weight decay applies to matrices only
    size_t count() const { return rows * cols; }
};

}  // namespace relora
