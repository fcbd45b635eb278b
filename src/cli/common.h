// Shared pieces of the subcommands: exit codes, error reporting, model loading.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "chat/conversation.h"
#include "core/status.h"
#include "model/decoder.h"
#include "model/model.h"
#include "runtime/sampler.h"

namespace ember::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;   // internal or resource failure
constexpr int kExitBadInput = 2;  // bad arguments, malformed or unsupported files

int exit_code_for(const Status& st);
int report(const Status& st);  // prints "error: ..." to stderr, returns the exit code

struct ModelOptions {
  std::string path;
  int threads = 0;  // 0: all cores
  int ctx_size = 4096;
  int device = -1;   // CUDA device; -1: device 0 when one is present
  bool cpu = false;  // force the CPU decoder
  std::string dump_dir;          // --dump-tensors: write named activations here
  std::vector<int> dump_layers;  // --dump-layers: which layers (empty = all)
};
void add_model_options(CLI::App& app, ModelOptions& o);
Expected<std::unique_ptr<model::Model>> load_model(const ModelOptions& o);
// The decoder the options ask for: the GPU one when built with CUDA and a device is
// present (unless --cpu), else the CPU one. Prints which device is used.
Expected<std::unique_ptr<model::Decoder>> make_decoder(const model::Model& m, const ModelOptions& o);

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s/--seed.
void add_sampling_options(CLI::App& app, runtime::SamplingParams& s);

// The model's chat template (or `override_spec`: a file or a template name), noting on
// stderr where it came from.
Expected<chat::ChatTemplate> load_chat_template(const model::Model& m, const std::string& model_path,
                                                const std::string& override_spec);

// Turns \n, \t, \r, \\, \" and \' escapes into their characters (llama.cpp's -e).
std::string process_escapes(const std::string& s);

void register_run(CLI::App& app, int& exit_code);
void register_info(CLI::App& app, int& exit_code);
void register_perplexity(CLI::App& app, int& exit_code);
void register_chat(CLI::App& app, int& exit_code);
void register_gen_random(CLI::App& app, int& exit_code);
void register_bench(CLI::App& app, int& exit_code);
void register_quantize(CLI::App& app, int& exit_code);
void register_serve(CLI::App& app, int& exit_code);  // a stub that says so when built without the server

}  // namespace ember::cli
