#include "ui/controller/CheckpointSnapshot.h"

#include "core/Checkpoint.h"
#include "core/Trainer.h"
#include "core/snapshot/Snapshot.h"
#include "core/store/RunStore.h"
#include "ui/controller/RunFiles.h"

#include <algorithm>
#include <stdexcept>

namespace relora::ui {

int64_t writeSnapshotFromCheckpoint(const std::string& database, int64_t runId, std::optional<int64_t> step,
                                    const std::string& path) {
    const auto checkpoints = store::RunReader(database).checkpoints(runId);
    const std::string run = "run " + std::to_string(runId);
    if (checkpoints.empty()) throw std::runtime_error(run + " has no checkpoint to take a snapshot from");
    const auto found = step ? std::find_if(checkpoints.begin(), checkpoints.end(),
                                           [&](const store::FileRecord& f) { return f.step == *step; })
                            : checkpoints.end() - 1;
    if (found == checkpoints.end())
        throw std::runtime_error(run + " has no checkpoint at step " + std::to_string(*step));

    const CheckpointData checkpoint = readCheckpoint(found->path);
    RunSpec spec = fromJson(checkpoint.specJson);
    // The weights do not depend on the corpus, so random tokens stand in for
    // it: the snapshot works even when the corpus has moved since.
    spec.data.synthetic = true;
    spec.backend = "cpu";
    auto backend = createBackend("cpu");
    Trainer trainer(spec, *backend);
    trainer.restore(checkpoint);

    ensureParentFolder(path);
    writeSnapshot(path, trainer.model(), runId, found->step, toString(spec.method.kind), checkpoint.specJson);
    return found->step;
}

}  // namespace relora::ui
