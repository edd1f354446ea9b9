#include "ui/controller/RunFiles.h"

#include "core/snapshot/Snapshot.h"
#include "core/store/RunFiles.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace relora::ui {

namespace fs = std::filesystem;

std::string checkpointPath(const std::string& database, int64_t runId, int64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "checkpoint-%07lld.ckpt", static_cast<long long>(step));
    return (fs::path(store::runFilesDirectory(database, runId)) / name).string();
}

std::string snapshotPath(const std::string& database, int64_t runId, int64_t step) {
    return (fs::path(store::runFilesDirectory(database, runId)) / snapshotFileName(runId, step)).string();
}

void ensureParentFolder(const std::string& filePath) {
    const fs::path folder = fs::path(filePath).parent_path();
    if (folder.empty()) return;
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) throw std::runtime_error("cannot create the folder '" + folder.string() + "': " + ec.message());
}

}  // namespace relora::ui
