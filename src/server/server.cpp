#include "server/server.h"

#include <httplib.h>

#include "core/log.h"

namespace ember::server {

namespace {

constexpr size_t kHttpThreads = 32;

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
  s.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  s.set_payload_max_length(ctx_.options.max_body_bytes);
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
  ctx_.draining.store(true);
  http_->stop();
}

void Server::wait() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace ember::server
