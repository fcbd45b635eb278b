// ember serve: the OpenAI-compatible HTTP server (docs/server.md). Listens first, loads
// the model (/health is 503 until then), serves until SIGINT/SIGTERM, then stops
// accepting, finishes the requests in flight and exits 0.
#include "cli/common.h"

#ifdef EMBER_HAVE_SERVER
#include <fmt/core.h>
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "chat/conversation.h"
#include "chat/discovery.h"
#include "core/thread_pool.h"
#include "runtime/batch_engine.h"
#include "runtime/serial_engine.h"
#include "server/server.h"

namespace ember::cli {

namespace {

struct ServeOptions {
  ModelOptions model;
  server::ServerOptions server;
  std::string chat_template;
  int max_seqs = 16;
  int max_queue = 64;
  double kv_cache_gb = 0.0;  // 0: auto (see BatchEngineOptions::kv_cache_bytes)
  int token_budget = 64;
  std::string engine = "auto";  // auto: batch on the CPU, serial on a GPU
  int max_body_mib = 8;
};

// Everything the server serves, alive until the server has stopped.
struct Loaded {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<model::Decoder> decoder;
  std::unique_ptr<chat::ChatTemplate> chat_template;
  std::unique_ptr<runtime::Engine> engine;
  server::Backend backend;
};

// BatchEngine on the CPU (continuous batching, paged KV cache); SerialEngine on a GPU
// (and with --dump-tensors) until the CUDA decoder batches (docs/server.md).
Status make_engine(const ServeOptions& o, Loaded& l) {
  const bool on_cpu = dynamic_cast<model::CpuDecoder*>(l.decoder.get()) != nullptr;
  if (o.engine == "batch" && (!on_cpu || !o.model.dump_dir.empty()))
    return make_error(ErrorKind::unsupported,
                      "--engine batch: only the CPU decoder batches yet (and not with --dump-tensors)");
  if (!on_cpu || !o.model.dump_dir.empty() || o.engine == "serial") {
    runtime::SerialEngineOptions eo;
    eo.max_queue = o.max_queue;
    l.engine = std::make_unique<runtime::SerialEngine>(*l.model, *l.decoder, eo);
    fmt::print(stderr, "engine: serial (one request at a time)\n");
    return {};
  }
  l.decoder.reset();  // the batch engine has its own decoder and KV cache
  runtime::BatchEngineOptions bo;
  bo.n_ctx = o.model.ctx_size;
  bo.max_seqs = o.max_seqs;
  bo.max_queue = o.max_queue;
  bo.token_budget = o.token_budget;
  bo.kv_cache_bytes = size_t(o.kv_cache_gb * double(1ull << 30));
  auto engine = runtime::BatchEngine::create(*l.model, ThreadPool::global(), bo);
  if (!engine) return engine.status();
  fmt::print(stderr, "engine: continuous batching, up to {} sequences, KV cache {} blocks of {} tokens\n",
             o.max_seqs, (*engine)->n_blocks(), (*engine)->block_size());
  l.engine = std::move(*engine);
  return {};
}

Status load(const ServeOptions& o, Loaded& l) {
  auto m = load_model(o.model);
  if (!m) return m.status();
  l.model = std::move(*m);
  auto t = load_chat_template(*l.model, o.model.path, o.chat_template);
  if (!t) return t.status();
  l.chat_template = std::make_unique<chat::ChatTemplate>(std::move(*t));
  auto d = make_decoder(*l.model, o.model);
  if (!d) return d.status();
  l.decoder = std::move(*d);
  EMBER_RETURN_IF_ERROR(make_engine(o, l));
  l.backend = {l.model.get(), l.chat_template.get(), {}, l.engine.get()};
  // The built-in ChatML template may not match the model's end-of-turn tokens.
  if (o.chat_template.empty() && l.chat_template->source() == chat::chatml_template())
    l.backend.chat_stops = {"<|im_end|>", "<|im_start|>"};
  return {};
}

int run_serve(ServeOptions o) {
  if (o.server.served_model_name.empty())
    o.server.served_model_name = std::filesystem::path(o.model.path).filename().string();
  o.server.max_body_bytes = size_t(o.max_body_mib) << 20;
  o.server.http_threads = std::max(32, o.max_seqs + o.max_queue + 8);
  // SIGINT/SIGTERM go to one thread that asks the server to stop (every thread inherits the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  server::Server srv(o.server);
  if (Status st = srv.start(); !st) return report(st);
  fmt::print(stderr, "ember serve: listening on http://{}:{} (loading the model)\n", o.server.host, srv.port());
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    fmt::print(stderr, "ember serve: stopping (signal {}); finishing requests in flight\n", sig);
    srv.stop();
  });
  Loaded loaded;
  Status st = load(o, loaded);
  if (st) {
    srv.set_backend(&loaded.backend);
    fmt::print(stderr, "ember serve: ready, serving '{}'\n", o.server.served_model_name);
  } else {
    pthread_kill(signal_thread.native_handle(), SIGTERM);
  }
  srv.wait();  // returns once stopped and every request in flight has been answered
  signal_thread.join();
  if (loaded.engine) loaded.engine->shutdown(true);
  if (!st) return report(st);
  fmt::print(stderr, "ember serve: stopped\n");
  return kExitOk;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve", "serve a model over an OpenAI-compatible HTTP API");
  add_model_options(*sub, o->model);
  sub->add_option("--host", o->server.host, "address to listen on");
  sub->add_option("--port", o->server.port, "port to listen on (0 = any free port)")->check(CLI::Range(0, 65535));
  sub->add_option("--api-key", o->server.api_key, "require 'Authorization: Bearer KEY' on the API routes");
  sub->add_option("--served-model-name", o->server.served_model_name, "the model name the API reports");
  sub->add_option("--max-seqs", o->max_seqs, "sequences run at once (CPU batching engine; the GPU runs one)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--kv-cache-gb", o->kv_cache_gb,
                  "paged KV cache size in GiB (default: 512 tokens per --max-seqs, at most 2 GiB, "
                  "at least --ctx-size tokens)")
      ->check(CLI::Range(0.0, 1024.0));
  sub->add_option("--token-budget", o->token_budget, "tokens computed per engine step (decodes + prefill chunks)")
      ->check(CLI::Range(1, 1 << 16));
  sub->add_option("--engine", o->engine, "auto (batch on the CPU, serial on a GPU), batch, or serial (one at a time)")
      ->check(CLI::IsMember({"auto", "batch", "serial"}));
  sub->add_option("--max-queue", o->max_queue, "requests waiting beyond the running ones; more get 429")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_option("--max-body-mib", o->max_body_mib, "largest request body in MiB; larger gets 413")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--chat-template", o->chat_template, "a template file, or the name of a template the model ships");
  sub->callback([o, &exit_code] { exit_code = run_serve(*o); });
}

}  // namespace ember::cli

#else  // built without cpp-httplib

namespace ember::cli {

void register_serve(CLI::App& app, int& exit_code) {
  CLI::App* sub = app.add_subcommand("serve", "serve a model over HTTP (not in this build: no cpp-httplib)");
  sub->allow_extras();
  sub->callback([&exit_code] {
    exit_code = report(make_error(ErrorKind::unsupported, "this ember was built without cpp-httplib; no server"));
  });
}

}  // namespace ember::cli

#endif
