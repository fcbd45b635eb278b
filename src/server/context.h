// What every route handler sees: the options, and the loaded model once it is ready.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "chat/conversation.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "server/schema.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace ember::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port
  std::string api_key;             // "" = no key needed
  std::string served_model_name;
  size_t max_body_bytes = 8u << 20;
  // HTTP worker threads: each open request (a stream included) holds one, so this caps the
  // requests the engine can see at once (ember serve: --max-seqs + --max-queue + 8).
  int http_threads = 32;
  RequestLimits limits;
};

// The model being served; set once loading has finished, then never changed.
struct Backend {
  const model::Model* model = nullptr;
  const chat::ChatTemplate* chat_template = nullptr;
  std::vector<std::string> chat_stops;  // extra stop strings (the built-in ChatML fallback)
  runtime::Engine* engine = nullptr;
};

struct Context {
  ServerOptions options;
  std::atomic<const Backend*> backend{nullptr};  // null while loading
  std::atomic<bool> draining{false};
  int64_t created = 0;  // unix time the server started
};

// Response helpers (http_util.cpp).
void send_json(httplib::Response& res, int status, const Json& body);
void send_error(httplib::Response& res, const ApiError& e);
// The ready backend, or an error response (503 while loading or shutting down).
const Backend* ready_backend(const Context& ctx, httplib::Response& res);
// The body as JSON, or a 400 response.
bool parse_body(const httplib::Request& req, httplib::Response& res, Json& body);
// True when every prompt and logit_bias token id is in the model's vocabulary, else a 400
// naming the field.
bool check_token_ids(const Backend& b, const std::vector<int32_t>& prompt, const GenerationParams& gen,
                     httplib::Response& res);
std::string random_id(const char* prefix);
int64_t unix_time();

// Route handlers.
void handle_chat_completions(const Context& ctx, const httplib::Request& req, httplib::Response& res);
void handle_completions(const Context& ctx, const httplib::Request& req, httplib::Response& res);
void handle_tokenize(const Context& ctx, const httplib::Request& req, httplib::Response& res);
void handle_detokenize(const Context& ctx, const httplib::Request& req, httplib::Response& res);
void handle_metrics(const Context& ctx, const httplib::Request& req, httplib::Response& res);
const std::string& chat_page_html();

}  // namespace ember::server
