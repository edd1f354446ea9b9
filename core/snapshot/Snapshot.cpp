#include "core/snapshot/Snapshot.h"

#include "core/LlamaModel.h"

#include <hdf5.h>
#include <cblas.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace relora {
namespace fs = std::filesystem;

namespace {

// Debian's HDF5 is not thread-safe: serialise every use of it in this file.
std::mutex& hdf5Mutex() {
    static std::mutex m;
    return m;
}

// Turns HDF5's automatic error printing off for the scope (errors become
// exceptions with a message instead of stack dumps on stderr).
class QuietErrors {
public:
    QuietErrors() {
        H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }
    ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

private:
    H5E_auto2_t func_ = nullptr;
    void* data_ = nullptr;
};

// The HDF5 error stack as one line: the outermost description, then the
// system's error message when the innermost one carries it.
std::string hdf5Error() {
    std::vector<std::string> descs;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_DOWNWARD,
        [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
            if (e->desc && *e->desc) static_cast<std::vector<std::string>*>(data)->push_back(e->desc);
            return 0;
        },
        &descs);
    H5Eclear2(H5E_DEFAULT);
    if (descs.empty()) return "HDF5 error";
    std::string inner = descs.back();
    // sec2 driver: "... errno = 28, error message = 'No space left on device', ..."
    int err = 0;
    if (const auto at = inner.find("errno = "); at != std::string::npos) err = std::atoi(inner.c_str() + at + 8);
    if (const auto at = inner.find("error message = '"); at != std::string::npos) {
        const auto end = inner.find('\'', at + 17);
        inner = inner.substr(at + 17, end == std::string::npos ? std::string::npos : end - at - 17);
    }
    if (err == ENOSPC || err == EFBIG || err == EDQUOT) return "the disk is full (" + inner + ")";
    return descs.size() == 1 ? descs.front() : descs.front() + ": " + inner;
}

struct Handle {
    hid_t id = H5I_INVALID_HID;
    herr_t (*closer)(hid_t) = nullptr;
    Handle() = default;
    Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), closer(c) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }
    herr_t reset() {
        herr_t r = 0;
        if (id >= 0 && closer) r = closer(id);
        id = H5I_INVALID_HID;
        return r;
    }
    operator hid_t() const { return id; }
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + ": " + hdf5Error()); }

hid_t check(hid_t id, const std::string& what) {
    if (id < 0) fail(what);
    return id;
}

void check(herr_t r, const std::string& what) {
    if (r < 0) fail(what);
}

hid_t utf8StringType() {
    const hid_t t = check(H5Tcopy(H5T_C_S1), "string type");
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

void writeAttribute(hid_t file, const std::string& name, const SnapshotAttribute& value) {
    Handle space(check(H5Screate(H5S_SCALAR), "attribute space"), H5Sclose);
    const std::string what = "writing attribute '" + name + "'";
    if (const auto* i = std::get_if<int64_t>(&value)) {
        Handle a(check(H5Acreate2(file, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
        check(H5Awrite(a, H5T_NATIVE_INT64, i), what);
    } else if (const auto* d = std::get_if<double>(&value)) {
        Handle a(check(H5Acreate2(file, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
        check(H5Awrite(a, H5T_NATIVE_DOUBLE, d), what);
    } else {
        Handle type(utf8StringType(), H5Tclose);
        Handle a(check(H5Acreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
        const char* text = std::get<std::string>(value).c_str();
        check(H5Awrite(a, type, &text), what);
    }
}

void writeDataset(hid_t file, const std::string& name, const SnapshotTensor& t) {
    const std::string what = "writing dataset '" + name + "'";
    size_t count = 1;
    for (size_t d : t.shape) count *= d;
    if (t.shape.empty() || t.shape.size() > 2 || count != t.values.size())
        throw std::runtime_error(what + ": shape does not match its " + std::to_string(t.values.size()) + " values");
    const int rank = static_cast<int>(t.shape.size());
    hsize_t dims[2] = {t.shape[0], rank == 2 ? t.shape[1] : 1};
    // Chunks of about 256 k values (1 MiB): whole rows, compressed separately.
    constexpr hsize_t kChunkValues = hsize_t(1) << 18;
    hsize_t chunk[2];
    if (rank == 2) {
        chunk[1] = std::min<hsize_t>(dims[1], kChunkValues);
        chunk[0] = std::clamp<hsize_t>(kChunkValues / chunk[1], 1, dims[0]);
    } else {
        chunk[0] = std::min<hsize_t>(dims[0], kChunkValues);
    }
    Handle space(check(H5Screate_simple(rank, dims, nullptr), what), H5Sclose);
    Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), what), H5Pclose);
    if (count > 0) {
        check(H5Pset_chunk(dcpl, rank, chunk), what);
        check(H5Pset_shuffle(dcpl), what);
        check(H5Pset_deflate(dcpl, 4), what);
    }
    Handle d(check(H5Dcreate2(file, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), what),
             H5Dclose);
    if (count > 0) check(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()), what);
    check(d.reset(), what);
}

void syncPath(const std::string& path, bool directory) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    if (fd < 0) {
        if (directory) return;   // best effort
        throw std::runtime_error(std::string("reopening the file to sync it: ") + std::strerror(errno));
    }
    const int r = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (r != 0 && !directory) {
        const bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;
        throw std::runtime_error(full ? std::string("the disk is full (") + std::strerror(err) + ")"
                                      : std::string("syncing the file: ") + std::strerror(err));
    }
}

bool isLoRAFactor(const std::string& name) {
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace

// ---- contents -----------------------------------------------------------------
const SnapshotTensor* SnapshotContents::find(const std::string& name) const {
    const auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
}

int64_t SnapshotContents::intAttribute(const std::string& name) const {
    const auto it = attributes.find(name);
    if (it == attributes.end() || !std::holds_alternative<int64_t>(it->second))
        throw std::runtime_error("snapshot attribute '" + name + "' is missing or not an integer");
    return std::get<int64_t>(it->second);
}

double SnapshotContents::realAttribute(const std::string& name) const {
    const auto it = attributes.find(name);
    if (it != attributes.end()) {
        if (const auto* d = std::get_if<double>(&it->second)) return *d;
        if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
    }
    throw std::runtime_error("snapshot attribute '" + name + "' is missing or not a number");
}

const std::string& SnapshotContents::textAttribute(const std::string& name) const {
    const auto it = attributes.find(name);
    if (it == attributes.end() || !std::holds_alternative<std::string>(it->second))
        throw std::runtime_error("snapshot attribute '" + name + "' is missing or not text");
    return std::get<std::string>(it->second);
}

std::string snapshotFileName(int64_t runId, int64_t step) {
    char name[64];
    std::snprintf(name, sizeof name, "run-%lld-step-%07lld.h5", static_cast<long long>(runId),
                  static_cast<long long>(step));
    return name;
}

SnapshotContents captureSnapshot(LlamaModel& model, int64_t runId, int64_t step, const std::string& method,
                                 const std::string& specJson) {
    SnapshotContents c;
    for (Parameter& p : model.parameters()) {
        SnapshotTensor t;
        // LoRA factors stay 2-D even at rank 1, where Parameter calls B a vector.
        if (p.isMatrix() || isLoRAFactor(p.name))
            t.shape = {p.rows, p.cols};
        else
            t.shape = {p.rows};
        t.values = model.read(p);
        c.tensors.emplace(p.name, std::move(t));
    }
    std::string targets;
    for (LinearPart* part : model.parts()) {
        if (!part->lora) continue;
        const LoRAAdapter& a = *part->lora;
        const std::string base = modulePath(part->layer, part->kind);
        SnapshotTensor& w = c.tensors.at(base + ".weight");
        c.tensors[base + ".base_layer.weight"] = w;
        const SnapshotTensor& A = c.tensors.at(base + ".lora_A.weight");
        const SnapshotTensor& B = c.tensors.at(base + ".lora_B.weight");
        const int out = static_cast<int>(part->out), in = static_cast<int>(part->weight->cols),
                  r = static_cast<int>(a.rank);
        // W_eff = W + s·B·A, the weight a plain Llama needs.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, r, a.scale, B.values.data(), r,
                    A.values.data(), in, 1.0f, w.values.data(), in);
    }
    const ModelSpec& s = model.spec();
    c.attributes["format_version"] = int64_t{kSnapshotFormatVersion};
    c.attributes["run_id"] = runId;
    c.attributes["step"] = step;
    c.attributes["method"] = method;
    c.attributes["spec"] = specJson;
    c.attributes["producer"] = std::string("ReLoRA Workbench");
    c.attributes["d_model"] = int64_t{s.dModel};
    c.attributes["d_ff"] = int64_t{s.dFF};
    c.attributes["heads"] = int64_t{s.heads};
    c.attributes["layers"] = int64_t{s.layers};
    c.attributes["context"] = int64_t{s.context};
    c.attributes["vocab"] = int64_t{s.vocab};
    c.attributes["rope_theta"] = double{s.ropeTheta};
    c.attributes["norm_eps"] = double{s.normEps};
    if (model.hasLoRA()) {
        const LoRAConfig& l = model.loraConfig();
        for (TargetMatrix t : l.targets) targets += (targets.empty() ? "" : ",") + toString(t);
        c.attributes["lora_rank"] = static_cast<int64_t>(l.rank);
        c.attributes["lora_scale"] = double{l.scale};
        c.attributes["lora_targets"] = targets;
    }
    return c;
}

// ---- writing --------------------------------------------------------------------
void writeSnapshot(const std::string& path, const SnapshotContents& contents) {
    const std::string prefix = "cannot write snapshot '" + path + "'";
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw std::runtime_error(prefix + ": the folder '" + dir.string() + "' does not exist");
    if (fs::is_directory(path, ec)) throw std::runtime_error(prefix + ": a folder has that name");
    const std::string tmp = path + ".tmp";

    std::lock_guard guard(hdf5Mutex());
    QuietErrors quiet;
    try {
        {
            Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "file access list"), H5Pclose);
            // STRONG: closing the file closes whatever a failure left open.
            check(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG), "file access list");
            Handle file(check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "creating " + tmp), H5Fclose);
            for (const auto& [name, value] : contents.attributes) writeAttribute(file, name, value);
            for (const auto& [name, tensor] : contents.tensors) writeDataset(file, name, tensor);
            check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing " + tmp);
            check(file.reset(), "closing " + tmp);
        }
        syncPath(tmp, false);
        if (std::rename(tmp.c_str(), path.c_str()) != 0)
            throw std::runtime_error(std::string("renaming ") + tmp + ": " + std::strerror(errno));
        syncPath(dir.string(), true);
    } catch (const std::exception& e) {
        ::unlink(tmp.c_str());
        throw std::runtime_error(prefix + ": " + e.what());
    }
}

void writeSnapshot(const std::string& path, LlamaModel& model, int64_t runId, int64_t step,
                   const std::string& method, const std::string& specJson) {
    writeSnapshot(path, captureSnapshot(model, runId, step, method, specJson));
}

// ---- reading --------------------------------------------------------------------
namespace {

herr_t readAttribute(hid_t loc, const char* name, const H5A_info_t*, void* data) {
    auto& out = *static_cast<SnapshotContents*>(data);
    Handle a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (a.id < 0) return -1;
    Handle space(H5Aget_space(a), H5Sclose);
    if (H5Sget_simple_extent_npoints(space) != 1) return 0;   // only scalars are ours
    Handle type(H5Aget_type(a), H5Tclose);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
        int64_t v = 0;
        if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) return -1;
        out.attributes[name] = v;
        break;
    }
    case H5T_FLOAT: {
        double v = 0;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) return -1;
        out.attributes[name] = v;
        break;
    }
    case H5T_STRING: {
        if (H5Tis_variable_str(type) > 0) {
            Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(mem, H5T_VARIABLE);
            H5Tset_cset(mem, H5Tget_cset(type));
            char* text = nullptr;
            if (H5Aread(a, mem, &text) < 0) return -1;
            out.attributes[name] = std::string(text ? text : "");
            H5free_memory(text);
        } else {
            const size_t size = H5Tget_size(type);
            std::string text(size, '\0');
            if (H5Aread(a, type, text.data()) < 0) return -1;
            text.resize(std::strlen(text.c_str()));
            out.attributes[name] = text;
        }
        break;
    }
    default: break;
    }
    return 0;
}

herr_t readLink(hid_t group, const char* name, const H5L_info_t*, void* data) {
    auto& out = *static_cast<SnapshotContents*>(data);
    Handle obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
    if (obj.id < 0 || H5Iget_type(obj) != H5I_DATASET) return 0;
    Handle space(H5Dget_space(obj), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > 8) return -1;
    hsize_t dims[8] = {};
    H5Sget_simple_extent_dims(space, dims, nullptr);
    SnapshotTensor t;
    size_t count = 1;
    for (int i = 0; i < rank; ++i) {
        t.shape.push_back(static_cast<size_t>(dims[i]));
        count *= static_cast<size_t>(dims[i]);
    }
    t.values.resize(count);
    if (count > 0 && H5Dread(obj, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()) < 0) return -1;
    out.tensors.emplace(name, std::move(t));
    return 0;
}

}  // namespace

SnapshotContents readSnapshot(const std::string& path) {
    const std::string prefix = "cannot read snapshot '" + path + "'";
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw std::runtime_error(prefix + ": no such file");
    std::lock_guard guard(hdf5Mutex());
    QuietErrors quiet;
    if (H5Fis_hdf5(path.c_str()) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        throw std::runtime_error(prefix + ": not an HDF5 file");
    }
    SnapshotContents c;
    try {
        Handle file(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "opening"), H5Fclose);
        hsize_t idx = 0;
        check(H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, readAttribute, &c), "reading attributes");
        if (const auto it = c.attributes.find("format_version"); it != c.attributes.end()) {
            const auto* v = std::get_if<int64_t>(&it->second);
            if (v && *v > kSnapshotFormatVersion)
                throw std::runtime_error("format version " + std::to_string(*v) +
                                         " is newer than this program supports (" +
                                         std::to_string(kSnapshotFormatVersion) + "); upgrade ReLoRA Workbench");
        }
        idx = 0;
        check(H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, &idx, readLink, &c), "reading datasets");
    } catch (const std::exception& e) {
        throw std::runtime_error(prefix + ": " + e.what());
    }
    return c;
}

}  // namespace relora
