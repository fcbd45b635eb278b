#include "server/schema.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "server/structured.h"

namespace ember::server {

namespace {

// Reads optional fields of a JSON object, keeping the first error.
class Reader {
 public:
  Reader(const Json& body, ParseError& error) : body_(body), error_(error) {}

  bool failed() const { return !error_.message.empty(); }
  void fail(const std::string& param, std::string message) {
    if (!failed()) error_ = {std::move(message), param};
  }
  // The field, or nullptr when absent or null.
  const Json* get(const char* key) const {
    auto it = body_.find(key);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }
  void number(const char* key, double lo, double hi, float& out) {
    const Json* v = get(key);
    if (!v) return;
    if (!v->is_number()) return fail(key, fmt::format("'{}' must be a number", key));
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi)) return fail(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
    out = float(x);
  }
  void integer(const char* key, int64_t lo, int64_t hi, int& out) {
    const Json* v = get(key);
    if (!v) return;
    if (!v->is_number_integer()) return fail(key, fmt::format("'{}' must be an integer", key));
    const int64_t x = v->is_number_unsigned() ? int64_t(std::min<uint64_t>(v->get<uint64_t>(), INT64_MAX))
                                               : v->get<int64_t>();
    if (x < lo || x > hi) return fail(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
    out = int(x);
  }
  void boolean(const char* key, bool& out) {
    const Json* v = get(key);
    if (!v) return;
    if (!v->is_boolean()) return fail(key, fmt::format("'{}' must be a boolean", key));
    out = v->get<bool>();
  }

 private:
  const Json& body_;
  ParseError& error_;
};

void read_stop(Reader& r, const RequestLimits& limits, std::vector<std::string>& out) {
  const Json* v = r.get("stop");
  if (!v) return;
  if (v->is_string()) {
    if (!v->get<std::string>().empty()) out.push_back(v->get<std::string>());
    return;
  }
  if (!v->is_array()) return r.fail("stop", "'stop' must be a string or a list of strings");
  if (int(v->size()) > limits.max_stop)
    return r.fail("stop", fmt::format("'stop' has {} entries; at most {} are allowed", v->size(), limits.max_stop));
  for (const auto& s : *v) {
    if (!s.is_string()) return r.fail("stop", "'stop' must be a string or a list of strings");
    if (!s.get<std::string>().empty()) out.push_back(s.get<std::string>());
  }
}

void read_logit_bias(Reader& r, std::vector<std::pair<int32_t, float>>& out) {
  const Json* v = r.get("logit_bias");
  if (!v) return;
  if (!v->is_object()) return r.fail("logit_bias", "'logit_bias' must be an object of token id -> bias");
  for (const auto& [key, bias] : v->items()) {
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id > INT32_MAX)
      return r.fail("logit_bias", fmt::format("'logit_bias': '{}' is not a token id", key));
    if (!bias.is_number() || !(bias.get<double>() >= -100.0 && bias.get<double>() <= 100.0))
      return r.fail("logit_bias", fmt::format("'logit_bias': the bias for {} must be a number in [-100, 100]", key));
    out.emplace_back(int32_t(id), bias.get<float>());
  }
}

void read_seed(Reader& r, GenerationParams& g) {
  const Json* v = r.get("seed");
  if (!v) return;
  if (!v->is_number_integer()) return r.fail("seed", "'seed' must be an integer");
  g.sampling.seed = v->is_number_unsigned() ? v->get<uint64_t>() : uint64_t(v->get<int64_t>());
  if (g.sampling.seed == ~0ull) g.sampling.seed = 0;  // all ones means "random" to the sampler
  g.has_seed = true;
}

// Fields common to both endpoints. OpenAI defaults: temperature 1, top_p 1, no top-k/min-p.
void read_common(Reader& r, const RequestLimits& limits, GenerationParams& g) {
  auto& s = g.sampling;
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  r.integer("n", 1, limits.max_n, g.n);
  r.integer("max_tokens", 1, 1 << 24, g.max_tokens);
  r.integer("max_completion_tokens", 1, 1 << 24, g.max_tokens);
  r.number("temperature", 0.0, 2.0, s.temperature);
  r.number("top_p", 0.0, 1.0, s.top_p);
  if (!r.failed() && s.top_p <= 0.0f) r.fail("top_p", "'top_p' must be greater than 0");
  r.integer("top_k", -1, 1 << 24, s.top_k);
  if (s.top_k < 0) s.top_k = 0;
  r.number("min_p", 0.0, 1.0, s.min_p);
  r.number("presence_penalty", -2.0, 2.0, s.presence_penalty);
  r.number("frequency_penalty", -2.0, 2.0, s.frequency_penalty);
  r.number("repetition_penalty", 0.01, 100.0, s.repeat_penalty);
  read_seed(r, g);
  read_stop(r, limits, g.stop);
  read_logit_bias(r, g.logit_bias);
  r.boolean("stream", g.stream);
  r.boolean("ignore_eos", g.ignore_eos);
  if (const Json* so = r.get("stream_options")) {
    if (!so->is_object()) return r.fail("stream_options", "'stream_options' must be an object");
    auto it = so->find("include_usage");
    if (it != so->end() && !it->is_null()) {
      if (!it->is_boolean()) return r.fail("stream_options", "'stream_options.include_usage' must be a boolean");
      g.include_usage = it->get<bool>();
    }
  }
  if (const Json* rf = r.get("response_format"); rf && !r.failed()) {
    const ParseError e = read_response_format(*rf, g);
    if (!e.message.empty()) r.fail(e.param, e.message);
  }
}

}  // namespace

Parsed<ChatRequest> parse_chat_request(const Json& body, const RequestLimits& limits) {
  Parsed<ChatRequest> out;
  if (!body.is_object()) {
    out.error = {"the request body must be a JSON object", ""};
    return out;
  }
  Reader r(body, out.error);
  ChatRequest& c = out.value;
  read_common(r, limits, c.gen);
  const Json* messages = r.get("messages");
  if (!messages) r.fail("messages", "'messages' is required");
  else if (!messages->is_array() || messages->empty()) r.fail("messages", "'messages' must be a non-empty list");
  else c.messages = *messages;
  r.boolean("logprobs", c.gen.logprobs);
  r.integer("top_logprobs", 0, limits.max_top_logprobs, c.gen.top_logprobs);
  if (!r.failed() && c.gen.top_logprobs > 0 && !c.gen.logprobs)
    r.fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  if (const Json* tools = r.get("tools")) {
    if (!tools->is_array()) r.fail("tools", "'tools' must be a list");
    else if (!tools->empty()) c.tools = *tools;
  }
  if (const Json* choice = r.get("tool_choice"); choice && !r.failed()) {
    const ParseError e = read_tool_choice(*choice, c);
    if (!e.message.empty()) r.fail(e.param, e.message);
  }
  if (const Json* kw = r.get("chat_template_kwargs")) {
    if (!kw->is_object()) r.fail("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    else c.template_kwargs = *kw;
  }
  return out;
}

Parsed<CompletionRequest> parse_completion_request(const Json& body, const RequestLimits& limits) {
  Parsed<CompletionRequest> out;
  if (!body.is_object()) {
    out.error = {"the request body must be a JSON object", ""};
    return out;
  }
  Reader r(body, out.error);
  CompletionRequest& c = out.value;
  read_common(r, limits, c.gen);
  if (!r.get("max_tokens") && !r.get("max_completion_tokens")) c.gen.max_tokens = 16;  // the OpenAI default
  const Json* prompt = r.get("prompt");
  if (!prompt) {
    r.fail("prompt", "'prompt' is required");
  } else if (prompt->is_string()) {
    c.prompt_text = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    c.prompt_text = (*prompt)[0].get<std::string>();
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
    c.prompt_is_tokens = true;
    for (const auto& t : *prompt) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        return r.fail("prompt", "'prompt' token ids must be non-negative integers"), out;
      c.prompt_tokens.push_back(t.get<int32_t>());
    }
  } else if (prompt->is_array() && prompt->size() > 1) {
    r.fail("prompt", "a list of several prompts is not supported yet; send one request per prompt");
  } else {
    r.fail("prompt", "'prompt' must be a string or a list of token ids");
  }
  r.boolean("echo", c.echo);
  int logprobs = -1;
  r.integer("logprobs", 0, 5, logprobs);
  if (logprobs >= 0) {
    c.gen.logprobs = true;
    c.gen.top_logprobs = logprobs;
  }
  if (!r.failed() && r.get("suffix")) r.fail("suffix", "'suffix' is not supported");
  return out;
}

}  // namespace ember::server
