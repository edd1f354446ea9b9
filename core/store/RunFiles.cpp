#include "core/store/RunFiles.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace relora::store {

std::string defaultDatabasePath() {
    if (const char* db = std::getenv("RELORA_DB"); db && *db) return db;
    std::filesystem::path base;
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) base = xdg;
    else if (const char* home = std::getenv("HOME"); home && *home) base = std::filesystem::path(home) / ".local" / "share";
    else base = std::filesystem::current_path();
    return (base / "relora-workbench" / "runs.sqlite").string();
}

std::string runFilesDirectory(const std::string& dbPath, int64_t runId) {
    const std::filesystem::path dir =
        std::filesystem::path(dbPath + ".files") / ("run-" + std::to_string(runId));
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
    return dir.string();
}

}  // namespace relora::store
