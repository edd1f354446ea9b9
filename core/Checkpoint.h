// Checkpoint files: everything a run needs to continue exactly where it
// stopped (weights, LoRA factors, AdamW moments and step counts, the learned
// update's reference, the step, the restart count and the data position),
// and the backend's product choices, which decide how its products round.
//
// Format: "RELORA-CKPT 1\n", a JSON header line (spec, trainer state, tensor
// index), then the tensors' float32 data back to back. Written to a
// temporary name and renamed, so a crash never leaves a half checkpoint under
// the real name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace relora {

struct CheckpointData {
    std::string specJson;
    int step = 0;
    int restartCount = 0;
    uint64_t samplerPosition = 0;
    bool loraEnabled = false;
    std::map<std::string, std::vector<float>> tensors;  // "w:<name>", "m:<name>", "v:<name>", "ref:<i>"
    std::map<std::string, int64_t> counters;            // "updates:<name>"
    std::string productChoices;                         // Backend::productChoices(); "" in older files
};

void writeCheckpoint(const std::string& path, const CheckpointData& data);
// Throws std::runtime_error naming the file when it is missing, truncated or
// not a checkpoint.
CheckpointData readCheckpoint(const std::string& path);

}  // namespace relora
