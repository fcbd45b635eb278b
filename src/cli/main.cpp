// ember: the command-line entry point. Each subcommand registers itself on the app.
#include <CLI/CLI.hpp>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App app{"ember: a fast LLM inference engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ember 0.1.0");
  int exit_code = 0;
  ember::cli::register_run(app, exit_code);
  ember::cli::register_info(app, exit_code);
  ember::cli::register_perplexity(app, exit_code);
  ember::cli::register_chat(app, exit_code);
  ember::cli::register_gen_random(app, exit_code);
  ember::cli::register_bench(app, exit_code);
  ember::cli::register_serve(app, exit_code);
  ember::cli::register_quantize(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : ember::cli::kExitBadInput;
  }
  return exit_code;
}
