#include "core/Corpus.h"

#include "core/CounterRng.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace relora {

namespace fs = std::filesystem;

namespace {

// Fewer than 2 tokens cannot form even one (input, target) pair.
constexpr size_t kMinSplitTokens = 2;

// Maps 64 random bits to [0, n) by a multiply-high, which unlike `% n` has no
// bias worth measuring for any n a corpus can have.
size_t reduce(uint64_t bits, uint64_t n) {
    return static_cast<size_t>((static_cast<unsigned __int128>(bits) * n) >> 64);
}

bool isContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// utf8SequenceLength's answer when the bytes end inside a sequence whose
// bytes so far are valid.
constexpr size_t kCutShort = SIZE_MAX;

// Length of the valid UTF-8 sequence at s[i], 0 if it is not one, or
// kCutShort if s ends before the sequence does.
// Strict RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
size_t utf8SequenceLength(std::string_view s, size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return 1;
    size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;   // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0) lo = 0xA0;          // shorter forms are overlong
        if (c == 0xED) hi = 0x9F;          // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0) lo = 0x90;          // overlong
        if (c == 0xF4) hi = 0x8F;          // above U+10FFFF
    } else {
        return 0;
    }
    for (size_t k = 1; k < length; ++k) {
        if (i + k == s.size()) return kCutShort;
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (k == 1 ? (b < lo || b > hi) : !isContinuation(b)) return 0;
    }
    return length;
}

// Reads the whole file into `bytes`; returns why it failed, empty on success.
std::string readAll(const fs::path& path, std::string& bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::strerror(errno);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return in.bad() ? "read error" : "";
}

// Identity of the file behind a path, following links: equal for symlinks,
// hard links and bind mounts of one file, where comparing paths is not enough.
struct FileId {
    dev_t device;
    ino_t inode;
    auto operator<=>(const FileId&) const = default;
};

std::optional<FileId> fileId(const fs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return FileId{st.st_dev, st.st_ino};
}

struct Candidate {
    fs::path path;
    bool isLink = false;
    std::optional<FileId> id;   // empty for a broken link
};

// Every non-directory entry under `dir`, without following links to folders
// (they could form cycles). Folders that cannot be listed are reported.
void collect(const fs::path& dir, std::vector<Candidate>& out, std::vector<std::string>& skipped) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
        skipped.push_back(dir.string() + ": cannot list folder (" + ec.message() + ")");
        return;
    }
    for (const fs::directory_iterator end; it != end; it.increment(ec)) {
        if (ec) break;
        const fs::directory_entry& entry = *it;
        std::error_code e;
        if (entry.is_symlink(e)) {
            if (fs::is_directory(entry.path(), e)) {
                skipped.push_back(entry.path().string() + ": link to a folder, not followed");
            } else {
                out.push_back({entry.path(), true, fileId(entry.path())});
            }
        } else if (entry.is_directory(e)) {
            collect(entry.path(), out, skipped);
        } else {
            out.push_back({entry.path(), false, fileId(entry.path())});
        }
    }
    if (ec) skipped.push_back(dir.string() + ": folder listing stopped (" + ec.message() + ")");
}

// Appends one file's tokens: the last `fraction` of its bytes to validation.
void split(const std::string& bytes, double fraction, std::vector<int32_t>& train,
           std::vector<int32_t>& validation) {
    // The epsilon keeps products such as 0.29 * 100 = 28.999999999999996
    // from losing a token to rounding.
    const auto held = std::min(
        bytes.size(),
        static_cast<size_t>(std::floor(static_cast<double>(bytes.size()) * fraction + 1e-9)));
    const size_t cut = bytes.size() - held;
    for (size_t i = 0; i < bytes.size(); ++i) {
        (i < cut ? train : validation).push_back(static_cast<unsigned char>(bytes[i]));
    }
}

void checkSize(const Corpus& corpus, const std::string& what) {
    const size_t t = corpus.train().size();
    const size_t v = corpus.validation().size();
    if (t < kMinSplitTokens || v < kMinSplitTokens) {
        throw std::runtime_error(what + " is too small: " + std::to_string(t) + " training and " +
                                 std::to_string(v) + " validation tokens (at least " +
                                 std::to_string(kMinSplitTokens) + " of each are needed)");
    }
}

}  // namespace

// Old text files (the fortunes among them) use backspace overstrikes and bells
// now and then, so a few control characters are tolerated; binary data has many.
const char* whyNotText(std::string_view bytes, bool headOfLongerFile) {
    size_t controls = 0;
    for (size_t i = 0; i < bytes.size();) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == 0) return "binary (contains NUL bytes)";
        const size_t n = utf8SequenceLength(bytes, i);
        if (n == kCutShort && headOfLongerFile) break;   // the character goes on past the head
        if (n == 0 || n == kCutShort) return "not valid UTF-8";
        const bool whitespace = c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        if ((c < 0x20 && !whitespace) || c == 0x7F) ++controls;
        i += n;
    }
    if (controls * 100 > bytes.size()) return "binary (more than 1% control characters)";
    return nullptr;
}

bool looksLikeText(std::string_view bytes, bool headOfLongerFile) {
    return whyNotText(bytes, headOfLongerFile) == nullptr;
}

Corpus Corpus::load(const std::string& path, double validationFraction) {
    if (!(validationFraction > 0.0 && validationFraction < 1.0)) {
        throw std::runtime_error("validation fraction must be between 0 and 1, not " +
                                 std::to_string(validationFraction));
    }
    const fs::path root(path);
    std::error_code ec;
    const fs::file_status status = fs::status(root, ec);
    if (status.type() == fs::file_type::not_found) {
        throw std::runtime_error("corpus '" + path + "' does not exist");
    }
    if (ec) throw std::runtime_error("cannot access corpus '" + path + "': " + ec.message());

    Corpus corpus;
    CorpusReport& report = corpus.report_;

    if (!fs::is_directory(status)) {
        std::string bytes;
        if (const std::string why = readAll(root, bytes); !why.empty()) {
            throw std::runtime_error("cannot read corpus file '" + path + "': " + why);
        }
        if (bytes.empty()) throw std::runtime_error("corpus file '" + path + "' is empty");
        if (const char* why = whyNotText(bytes)) {
            throw std::runtime_error("corpus file '" + path + "' is not text: " + why);
        }
        split(bytes, validationFraction, corpus.train_, corpus.validation_);
        report.filesRead.push_back(path);
    } else {
        std::vector<Candidate> candidates;
        collect(root, candidates, report.skipped);
        std::sort(candidates.begin(), candidates.end(),
                  [](const Candidate& a, const Candidate& b) { return a.path < b.path; });

        // One representative per underlying file, chosen independently of
        // listing order: a real entry before a link, then the smaller path.
        std::map<FileId, const Candidate*> representative;
        for (const Candidate& c : candidates) {
            if (!c.id) continue;
            auto [it, inserted] = representative.try_emplace(*c.id, &c);
            if (!inserted && it->second->isLink && !c.isLink) it->second = &c;
        }

        for (const Candidate& c : candidates) {
            const std::string name = c.path.string();
            if (!c.id) {
                report.skipped.push_back(name + (c.isLink ? ": broken link" : ": cannot stat"));
                continue;
            }
            if (const Candidate* rep = representative.at(*c.id); rep != &c) {
                report.skipped.push_back(name + (c.isLink ? ": link, same file as " : ": same file as ") +
                                         rep->path.string());
                continue;
            }
            if (std::error_code e; !fs::is_regular_file(c.path, e)) {
                report.skipped.push_back(name + ": not a regular file");
                continue;
            }
            std::string bytes;
            if (const std::string why = readAll(c.path, bytes); !why.empty()) {
                report.skipped.push_back(name + ": cannot read (" + why + ")");
                continue;
            }
            if (bytes.empty()) {
                report.skipped.push_back(name + ": empty");
                continue;
            }
            if (const char* why = whyNotText(bytes)) {
                report.skipped.push_back(name + ": " + why);
                continue;
            }
            split(bytes, validationFraction, corpus.train_, corpus.validation_);
            report.filesRead.push_back(name);
        }
        if (report.filesRead.empty()) {
            std::string message = "corpus folder '" + path + "' holds no text file";
            if (!report.skipped.empty()) {
                message += " (skipped " + std::to_string(report.skipped.size()) +
                           ", e.g. " + report.skipped.front() + ")";
            }
            throw std::runtime_error(message);
        }
    }

    report.trainTokens = corpus.train_.size();
    report.validationTokens = corpus.validation_.size();
    checkSize(corpus, "corpus '" + path + "'");
    return corpus;
}

Corpus Corpus::synthetic(size_t tokens, int vocab, uint64_t seed) {
    if (vocab < 1) {
        throw std::runtime_error("synthetic corpus needs a vocabulary of at least 1, not " +
                                 std::to_string(vocab));
    }
    Corpus corpus;
    const size_t validation = tokens / 10;
    corpus.train_.reserve(tokens - validation);
    corpus.validation_.reserve(validation);
    for (size_t i = 0; i < tokens; ++i) {
        const uint64_t bits = splitmix64(seed ^ splitmix64(i));
        const auto token = static_cast<int32_t>(reduce(bits, static_cast<uint64_t>(vocab)));
        (i < tokens - validation ? corpus.train_ : corpus.validation_).push_back(token);
    }
    corpus.report_.trainTokens = corpus.train_.size();
    corpus.report_.validationTokens = corpus.validation_.size();
    checkSize(corpus, "synthetic corpus of " + std::to_string(tokens) + " tokens");
    return corpus;
}

BatchSampler::BatchSampler(const std::vector<int32_t>& tokens, size_t batch, size_t context,
                           uint64_t seed)
    : tokens_(&tokens), batch_(batch), context_(context), seed_(seed) {
    if (batch == 0 || context == 0) {
        throw std::runtime_error("batch sampler needs batch and context of at least 1");
    }
    if (tokens.size() < context + 1) {
        throw std::runtime_error("the corpus has " + std::to_string(tokens.size()) +
                                 " training tokens, fewer than context+1 = " +
                                 std::to_string(context + 1));
    }
}

void BatchSampler::next(std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
    const std::vector<int32_t>& tokens = *tokens_;
    const size_t starts = tokens.size() - context_;   // windows of T+1 that fit
    const uint64_t key = mixSeed(seed_, position_);
    inputs.resize(batch_ * context_);
    targets.resize(batch_ * context_);
    for (size_t b = 0; b < batch_; ++b) {
        const size_t start = reduce(splitmix64(key ^ splitmix64(b)), starts);
        const auto window = tokens.begin() + static_cast<std::ptrdiff_t>(start);
        const auto row = static_cast<std::ptrdiff_t>(b * context_);
        std::copy_n(window, context_, inputs.begin() + row);
        std::copy_n(window + 1, context_, targets.begin() + row);
    }
    ++position_;
}

std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>>
validationBatches(const std::vector<int32_t>& tokens, size_t batch, size_t context,
                  size_t maxBatches) {
    if (batch == 0 || context == 0 || maxBatches == 0) {
        throw std::runtime_error("validation batches need batch, context and count of at least 1");
    }
    const size_t windows = tokens.size() > context ? (tokens.size() - 1) / context : 0;
    if (windows == 0) {
        throw std::runtime_error("the validation set has " + std::to_string(tokens.size()) +
                                 " tokens, fewer than context+1 = " + std::to_string(context + 1));
    }
    const size_t count = windows >= batch ? std::min(windows / batch, maxBatches) : 1;
    const size_t perBatch = std::min(windows, batch);

    std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> batches(count);
    for (size_t k = 0; k < count; ++k) {
        auto& [inputs, targets] = batches[k];
        inputs.resize(perBatch * context);
        targets.resize(perBatch * context);
        for (size_t w = 0; w < perBatch; ++w) {
            const auto window =
                tokens.begin() + static_cast<std::ptrdiff_t>((k * batch + w) * context);
            const auto row = static_cast<std::ptrdiff_t>(w * context);
            std::copy_n(window, context, inputs.begin() + row);
            std::copy_n(window + 1, context, targets.begin() + row);
        }
    }
    return batches;
}

}  // namespace relora
