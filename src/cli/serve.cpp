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
#ifdef EMBER_HAVE_CUDA
#include "model/gpu/gpu_batch_decoder.h"
#endif

namespace ember::cli {

namespace {

struct ServeOptions {
  ModelOptions model;
  server::ServerOptions server;
  std::string chat_template;
  int max_seqs = 16;
  int max_queue = 64;
  double kv_cache_gb = 0.0;  // 0: auto (see BatchEngineOptions::kv_cache_bytes)
  int token_budget = 0;  // 0: 64 on the CPU, 2048 on a GPU
  std::string engine = "auto";  // auto: batch when the decoder batches, else serial
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

// Whether the GPU batched decoder runs this model (ok on the CPU: it always batches).
Status batch_supported(const Loaded& l, bool on_cpu) {
  if (on_cpu) return {};
#ifdef EMBER_HAVE_CUDA
  return model::gpu::gpu_batch_supported(l.model->spec, l.model->weights);
#else
  return make_error(ErrorKind::unsupported, "built without CUDA");
#endif
}

// The batched decoder for the device the serial one runs on; frees the serial one first.
Expected<std::unique_ptr<model::BatchDecoder>> make_batch_decoder(const ServeOptions& o, Loaded& l, bool on_cpu,
                                                                  int token_budget) {
  l.decoder.reset();  // the batch engine has its own decoder and KV cache
  if (on_cpu) return std::unique_ptr<model::BatchDecoder>();
#ifdef EMBER_HAVE_CUDA
  model::gpu::GpuBatchOptions g;
  g.device = std::max(o.model.device, 0);
  g.n_ctx = o.model.ctx_size;
  g.max_seqs = o.max_seqs;
  g.max_tokens = std::max(token_budget, o.max_seqs);
  return model::gpu::make_gpu_batch_decoder(l.model->spec, l.model->weights, g);
#else
  (void)o;
  (void)token_budget;
  return make_error(ErrorKind::unsupported, "built without CUDA");
#endif
}

// BatchEngine (continuous batching, paged KV cache) on the CPU, and on a GPU when the
// batched GPU decoder runs the model; else (and with --dump-tensors) SerialEngine.
Status make_engine(const ServeOptions& o, Loaded& l) {
  const bool on_cpu = dynamic_cast<model::CpuDecoder*>(l.decoder.get()) != nullptr;
  const Status can_batch = batch_supported(l, on_cpu);
  if (o.engine == "batch" && (!can_batch || !o.model.dump_dir.empty()))
    return make_error(ErrorKind::unsupported, "--engine batch: {}",
                      can_batch ? "not with --dump-tensors" : can_batch.message());
  if (!can_batch || !o.model.dump_dir.empty() || o.engine == "serial") {
    if (!can_batch && o.engine == "auto") fmt::print(stderr, "note: {}; serving one request at a time\n",
                                                     can_batch.message());
    runtime::SerialEngineOptions eo;
    eo.max_queue = o.max_queue;
    l.engine = std::make_unique<runtime::SerialEngine>(*l.model, *l.decoder, eo);
    fmt::print(stderr, "engine: serial (one request at a time)\n");
    return {};
  }
  runtime::BatchEngineOptions bo;
  bo.n_ctx = o.model.ctx_size;
  bo.max_seqs = o.max_seqs;
  bo.max_queue = o.max_queue;
  bo.token_budget = o.token_budget > 0 ? o.token_budget : (on_cpu ? 64 : 2048);
  bo.kv_cache_bytes = size_t(o.kv_cache_gb * double(1ull << 30));
  auto decoder = make_batch_decoder(o, l, on_cpu, bo.token_budget);
  if (!decoder) return decoder.status();
  auto engine = on_cpu ? runtime::BatchEngine::create(*l.model, ThreadPool::global(), bo)
                       : runtime::BatchEngine::create(*l.model, std::move(*decoder), bo);
  if (!engine) return engine.status();
  fmt::print(stderr, "engine: continuous batching on {}, up to {} sequences, {} tokens per step, KV cache {} blocks "
             "of {} tokens\n", (*engine)->device_name(), o.max_seqs, bo.token_budget, (*engine)->n_blocks(),
             (*engine)->block_size());
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
  sub->add_option("--max-seqs", o->max_seqs, "sequences run at once (batching engine)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--kv-cache-gb", o->kv_cache_gb,
                  "paged KV cache size in GiB (default on the CPU: 512 tokens per --max-seqs, at most "
                  "2 GiB; on a GPU: --max-seqs full contexts, at most 90% of free memory; at least --ctx-size tokens)")
      ->check(CLI::Range(0.0, 1024.0));
  sub->add_option("--token-budget", o->token_budget,
                  "tokens computed per engine step (decodes + prefill chunks); 0: 64 on the CPU, 2048 on a GPU")
      ->check(CLI::Range(0, 1 << 16));
  sub->add_option("--engine", o->engine, "auto (batch where the decoder batches, else serial), batch, or serial (one at a time)")
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
