// relora: the headless command-line workbench on the same engine as the GUI.
#include "app/cli/Commands.h"
#include "core/Trainer.h"

#ifdef RELORA_WITH_CUDA
#include "gpu/CudaBackend.h"
#endif

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace relora::cli {
int selftestCommand(const std::vector<std::string>& args);  // app/cli/SelftestCommand.cpp
}  // namespace relora::cli

namespace {

const char* kUsage = R"(usage: relora COMMAND [options]

commands:
  run [SPEC.json] [--method M --preset P] [--set key=value ...] [--backend auto|cpu|cuda]
                  [--threads N] [--db FILE] [--metrics FILE.jsonl]
                          train one run headless into the run database, printing progress;
                          Ctrl-C stops cleanly and leaves a checkpoint
  resume RUN              continue a stopped or interrupted run from its checkpoint
  list                    every run in the database
  show RUN [--spec]       a run's status, losses, ranks, events and files (or its spec)
  metrics RUN [--keys k1,k2] [--csv]
                          a run's metric keys, or their values as CSV
  compare RUN RUN ...     final and best validation loss, ranks of the update, parameter
                          counts and tokens/s side by side
  delete RUN [--yes]      a run's rows, checkpoints and snapshots (asks first)
  export RUN [--step N] -o FILE.h5
                          the run's weights as an HDF5 snapshot (Hugging Face names)
  headline [--preset tiny|60m|130m] [--steps N] [--warm-start 0.25] [--corpus PATH]
           [--backend B] [--threads N] [--set key=value ...] [--db FILE]
                          the headline experiment: full-rank, LoRA, ReLoRA and ReLoRA with a
                          full-rank warm start, matched (seed, data, model, steps, LR), one
                          after another; prints the comparison and a verdict on the ordering
                          the ReLoRA paper reports
  sweep [SPEC.json] [--fractions 0,0.1,0.25,0.5] [--preset P] [--steps N] [--corpus PATH]
        [--backend B] [--threads N] [--set key=value ...] [--db FILE]
                          ReLoRA runs that switch from full-rank after those fractions of the
                          steps (1 = full-rank throughout); prints final validation loss
                          against the switch point as a table and a plot
  spec --method full|lora|relora --preset tiny|60m|130m [--set key=value ...]
                          print a complete default run spec (JSON)
  validate SPEC.json [--set key=value ...] [--no-corpus-check]
                          check a spec; lists every problem with its field
  bench [--preset P] [--method full|lora|relora|all] [--batch 8] [--context 256]
        [--steps 20] [--warmup 3] [--threads N] [--backend B] [--rank R] [--json] [--costs]
        [--product-choices FILE]
                          training throughput per method on synthetic tokens; --costs adds
                          what an evaluation and a ReLoRA merge cost next to training;
                          --product-choices takes the GPU's product algorithms from FILE,
                          or writes them there when FILE does not exist (for profilers)
  selftest [--backend auto|cpu|cuda] [--steps 100]
                          check a backend against the CPU reference on a small model
                          (ops, fp32 gradients, bf16 loss curves, merges, pruning,
                          determinism); prints a table, exit code 0 only if all pass
)";

}  // namespace

// Every command that touches runs takes --db FILE; the default is the
// workbench's database in the user's data folder (or $RELORA_DB).

int main(int argc, char** argv) {
#ifdef RELORA_WITH_CUDA
    relora::gpu::registerCudaBackend();
#endif
    using Command = std::function<int(const std::vector<std::string>&)>;
    const std::map<std::string, Command> commands = {
        {"run", relora::cli::runCommand},
        {"resume", relora::cli::resumeCommand},
        {"list", relora::cli::listCommand},
        {"show", relora::cli::showCommand},
        {"metrics", relora::cli::metricsCommand},
        {"compare", relora::cli::compareCommand},
        {"delete", relora::cli::deleteCommand},
        {"export", relora::cli::exportCommand},
        {"spec", relora::cli::specCommand},
        {"validate", relora::cli::validateCommand},
        {"bench", relora::cli::benchCommand},
        {"headline", relora::cli::headlineCommand},
        {"sweep", relora::cli::sweepCommand},
        {"selftest", relora::cli::selftestCommand},
    };
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const auto it = commands.find(argv[1]);
    if (it == commands.end()) {
        std::fprintf(stderr, "relora: unknown command '%s'\n\n%s", argv[1], kUsage);
        return 2;
    }
    try {
        return it->second(std::vector<std::string>(argv + 2, argv + argc));
    } catch (const relora::cli::UsageError& e) {
        std::fprintf(stderr, "relora %s: %s\n", argv[1], e.what());
        return 2;
    } catch (const relora::SpecParseError& e) {
        std::fprintf(stderr, "relora %s: bad run spec: %s\n", argv[1], e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "relora %s: %s\n", argv[1], e.what());
        return 1;
    }
}
