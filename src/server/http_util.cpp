#include <httplib.h>

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "server/context.h"

namespace ember::server {

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  if (int s = retry_after_seconds(e.http_status); s > 0) res.set_header("Retry-After", std::to_string(s));
  send_json(res, e.http_status, error_json(e));
}

const Backend* ready_backend(const Context& ctx, httplib::Response& res) {
  if (ctx.draining.load()) {
    send_error(res, api_error(503, "the server is shutting down"));
    return nullptr;
  }
  const Backend* b = ctx.backend.load();
  if (!b) send_error(res, api_error(503, "the model is still loading"));
  return b;
}

bool parse_body(const httplib::Request& req, httplib::Response& res, Json& body) {
  body = Json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    send_error(res, api_error(400, "the request body is not valid JSON"));
    return false;
  }
  return true;
}

bool check_token_ids(const Backend& b, const std::vector<int32_t>& prompt, const GenerationParams& gen,
                     httplib::Response& res) {
  const int32_t n_vocab = b.model->spec.n_vocab;
  for (int32_t t : prompt)
    if (t < 0 || t >= n_vocab) {
      send_error(res, api_error(400, fmt::format("prompt token id {} is out of range [0, {})", t, n_vocab), "prompt"));
      return false;
    }
  for (const auto& [t, bias] : gen.logit_bias)
    if (t < 0 || t >= n_vocab) {
      send_error(res, api_error(400, fmt::format("'logit_bias': token id {} is out of range [0, {})", t, n_vocab),
                                "logit_bias"));
      return false;
    }
  return true;
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 36];
  return id;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace ember::server
