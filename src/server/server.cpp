#include "server/server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>

#include "core/log.h"

namespace ember::server {

namespace {

// Wraps a handler so that no exception leaves it (a 500 with the OpenAI error shape).
httplib::Server::Handler guarded(const Context& ctx,
                                 void (*handler)(const Context&, const httplib::Request&, httplib::Response&)) {
  return [&ctx, handler](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(ctx, req, res);
    } catch (const std::exception& e) {
      send_error(res, api_error(500, std::string("internal error: ") + e.what()));
    }
  };
}

}  // namespace

Server::Server(ServerOptions options) : http_(std::make_unique<httplib::Server>()) {
  ctx_.options = std::move(options);
  ctx_.created = unix_time();
  add_routes();
}

Server::~Server() {
  stop();
  wait();
}

bool Server::authorized(const std::string& path, const std::string& authorization) const {
  const std::string& key = ctx_.options.api_key;
  if (key.empty() || path == "/" || path == "/health" || path == "/metrics") return true;
  return authorization == "Bearer " + key;
}

void Server::add_routes() {
  httplib::Server& s = *http_;
  const size_t n_threads = size_t(std::clamp(ctx_.options.http_threads, 4, 4096));
  s.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  s.set_payload_max_length(ctx_.options.max_body_bytes);
  // A connection holds a pool thread while it idles between requests (and before its first):
  // 2 s instead of httplib's 5 keeps idle sockets from starving new requests; a stalled
  // request is dropped after the 5 s read timeout (per read: a client trickling bytes holds
  // its thread, bounded by the pool size).
  s.set_keep_alive_timeout(2);
  s.set_read_timeout(5, 0);
  s.set_socket_options([this](int sock) {  // replaces httplib's (SO_REUSEADDR + SO_REUSEPORT)
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd_ = sock;
  });
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req.path, req.get_header_value("Authorization"))) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, api_error(401, "missing or incorrect API key (Authorization: Bearer KEY)", "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string msg = res.status == 413 ? "the request body is too large"
                            : res.status == 404 ? "no such route"
                                                : "the request could not be served";
    send_error(res, api_error(res.status, msg));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, api_error(500, "internal error"));
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (ctx_.draining.load()) return send_json(res, 503, {{"status", "shutting down"}});
    if (!ctx_.backend.load()) return send_json(res, 503, {{"status", "loading"}});
    send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const Backend* b = ctx_.backend.load();
    Json model = {{"id", ctx_.options.served_model_name}, {"object", "model"}, {"created", ctx_.created},
                  {"owned_by", "ember"}};
    if (b) model["max_model_len"] = b->engine->n_ctx();
    send_json(res, 200, {{"object", "list"}, {"data", Json::array({model})}});
  });
  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(chat_page_html(), "text/html; charset=utf-8");
  });
  s.Post("/v1/chat/completions", guarded(ctx_, handle_chat_completions));
  s.Post("/v1/completions", guarded(ctx_, handle_completions));
  s.Post("/tokenize", guarded(ctx_, handle_tokenize));
  s.Post("/detokenize", guarded(ctx_, handle_detokenize));
  s.Get("/metrics", guarded(ctx_, handle_metrics));
}

Status Server::start() {
  const auto& o = ctx_.options;
  if (o.port == 0) {
    port_ = http_->bind_to_any_port(o.host);
    if (port_ < 0) return make_error(ErrorKind::io, "cannot listen on {} (any port)", o.host);
  } else {
    if (!http_->bind_to_port(o.host, o.port))
      return make_error(ErrorKind::io, "cannot listen on {}:{} (in use, or not a local address?)", o.host, o.port);
    port_ = o.port;
  }
  // httplib listens with a backlog of 5: a burst of connections (many clients, or idle ones
  // held open) would wait for SYN retries (1 s, 3 s, ...). Calling listen again raises it.
  if (listen_fd_ >= 0) ::listen(listen_fd_, 1024);
  thread_ = std::thread([this] {
    try {
      http_->listen_after_bind();
    } catch (const std::exception& e) {
      log(LogLevel::error, "server: {}", e.what());
    }
  });
  return {};
}

void Server::stop() {
  if (!ctx_.draining.exchange(true)) {
    // httplib cuts chunked streams short once it stops, so first let the engine finish what it
    // holds (new requests already get 503), bounded, then give the streams one poll period to
    // write their last chunks.
    if (const Backend* b = ctx_.backend.load()) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(25);
      auto busy = [b] {
        const runtime::EngineStats s = b->engine->stats();
        return s.running + s.waiting > 0;
      };
      while (busy() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
    }
  }
  http_->stop();
}

void Server::wait() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ember::server
