// Corpus: byte-level tokenised text for training and validation.
//
// A corpus is a text file or a folder of text files (default: Debian's
// fortunes). A folder is read once per real text file: binary files (such as
// fortune's .dat indexes) and links to files already read (the .u8 links)
// are skipped and reported. Tokens are bytes (0..255). The split into
// training and validation is deterministic: the last `validationFraction` of
// every file's bytes is validation, so the split does not depend on the order
// files are listed in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relora {

struct CorpusReport {
    std::vector<std::string> filesRead;               // in the order used
    std::vector<std::string> skipped;                 // "path: reason"
    size_t trainTokens = 0;
    size_t validationTokens = 0;
};

class Corpus {
public:
    // Throws std::runtime_error with a clear message when the path is
    // missing, unreadable, empty, or holds no text.
    static Corpus load(const std::string& path, double validationFraction);
    // Random tokens in [0, vocab) from a seed, for benchmarks.
    static Corpus synthetic(size_t tokens, int vocab, uint64_t seed);

    const std::vector<int32_t>& train() const { return train_; }
    const std::vector<int32_t>& validation() const { return validation_; }
    const CorpusReport& report() const { return report_; }

private:
    std::vector<int32_t> train_;
    std::vector<int32_t> validation_;
    CorpusReport report_;
};

// Why the bytes are not text, or nullptr when they are: text is valid UTF-8
// (strict: no overlong forms, surrogates or code points above U+10FFFF) with
// no NULs and at most 1% control characters other than whitespace.
// `headOfLongerFile`: the bytes are the start of a longer file (a sniffed
// head), so a multi-byte character cut off at the end is not held against
// them. Empty input counts as text; callers reject empty files separately.
// The corpus loader and spec validation both use this one test.
const char* whyNotText(std::string_view bytes, bool headOfLongerFile = false);
bool looksLikeText(std::string_view bytes, bool headOfLongerFile = false);

// Draws training batches: B windows of T+1 consecutive tokens at seeded
// random offsets; inputs are the first T, targets the last T of each window.
// The draw depends only on (seed, batch index), so a resumed run continues
// the same sequence from `position()`. The sampler keeps a pointer to
// `tokens`, which must outlive it.
class BatchSampler {
public:
    // Throws std::runtime_error when tokens.size() < context + 1.
    BatchSampler(const std::vector<int32_t>& tokens, size_t batch, size_t context, uint64_t seed);
    BatchSampler(std::vector<int32_t>&&, size_t, size_t, uint64_t) = delete;
    // inputs(B*T), targets(B*T), host memory.
    void next(std::vector<int32_t>& inputs, std::vector<int32_t>& targets);
    uint64_t position() const { return position_; }
    void setPosition(uint64_t p) { position_ = p; }

private:
    const std::vector<int32_t>* tokens_;
    size_t batch_, context_;
    uint64_t seed_;
    uint64_t position_ = 0;
};

// Fixed validation batches: the validation tokens cut into consecutive
// windows, the same every evaluation. At most `maxBatches` batches.
// Windows of T+1 tokens start every T tokens; an incomplete last batch is
// dropped, except that when not even one full batch fits, the single batch
// holds as many windows as fit (its vectors are then shorter than B*T).
// Throws std::runtime_error when not even one window fits.
std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>>
validationBatches(const std::vector<int32_t>& tokens, size_t batch, size_t context, size_t maxBatches);

}  // namespace relora
