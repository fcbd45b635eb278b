// ember chat: multi-turn chat in the terminal with the model's chat template, streaming
// replies (reasoning dimmed or hidden), KV reuse across turns; or, with --json, one reply
// to a conversation read from stdin, written as JSON (docs/chat.md).
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>

#include "chat/conversation.h"
#include "chat/discovery.h"
#include "cli/common.h"
#include "runtime/generator.h"
#include "runtime/sampler.h"

namespace ember::cli {

namespace {

using chat::Json;

struct ChatOptions {
  ModelOptions model;
  int n_predict = -1;
  runtime::SamplingParams sampling;
  std::string chat_template;    // FILE or NAME
  std::string system;
  std::string reasoning = "show";
  std::string template_kwargs;  // a JSON object of extra template variables
  bool json = false;
  bool timings = false;
  int batch = 256;
};

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Reply {
  chat::ParsedOutput output;
  std::string finish_reason;  // "stop", "length", "tool_calls" or "cancelled"
  int n_prompt = 0, n_reused = 0, n_generated = 0;
  double prompt_seconds = 0.0, gen_seconds = 0.0;
};

// Returns false to stop generating.
using DeltaFn = std::function<bool(const chat::ChatDelta&)>;

// One conversation on one decoder. Remembers which tokens the decoder's KV cache holds,
// so a prompt that extends the previous one only prefills its new tokens.
class ChatSession {
 public:
  ChatSession(const model::Model& m, model::Decoder& d, const chat::ChatTemplate& t, const ChatOptions& o,
              std::vector<std::string> stops)
      : model_(m), decoder_(d), template_(t), options_(o), stops_(std::move(stops)) {
    options_.sampling.banned = runtime::invalid_tokens(m.tokenizer, m.spec.n_vocab);
  }

  Expected<Reply> respond(const chat::Conversation& conversation, const DeltaFn& on_delta);

 private:
  Status prefill(std::span<const int32_t> prompt, Reply& reply, std::vector<float>& logits);
  Status generate(const chat::OutputFormat& format, std::vector<float>& logits, Reply& reply, const DeltaFn& on_delta);

  const model::Model& model_;
  model::Decoder& decoder_;
  const chat::ChatTemplate& template_;
  ChatOptions options_;
  std::vector<std::string> stops_;
  std::vector<int32_t> cached_;  // the tokens whose keys/values the decoder holds, in order
};

Status ChatSession::prefill(std::span<const int32_t> prompt, Reply& reply, std::vector<float>& logits) {
  // Reuse the longest common prefix; at least one token runs to produce logits.
  const size_t common = size_t(std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end()).first -
                               cached_.begin());
  const size_t keep = std::min(common, prompt.size() - 1);
  cached_.resize(keep);
  reply.n_reused = int(keep);
  const size_t chunk = size_t(std::max(1, options_.batch));
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t pos = keep; pos < prompt.size(); pos += chunk) {
    const auto part = prompt.subspan(pos, std::min(chunk, prompt.size() - pos));
    EMBER_RETURN_IF_ERROR(decoder_.forward(part, int(pos), false, logits));
    cached_.insert(cached_.end(), part.begin(), part.end());
  }
  reply.prompt_seconds = seconds_since(t0);
  return {};
}

Status ChatSession::generate(const chat::OutputFormat& format, std::vector<float>& logits, Reply& reply,
                             const DeltaFn& on_delta) {
  const auto& tok = model_.tokenizer;
  runtime::Sampler sampler(options_.sampling);
  for (int32_t t : cached_) sampler.accept(t);
  tok::StreamDecoder text(tok);
  runtime::StopMatcher stops(stops_);
  chat::OutputParser parser(format);
  auto deliver = [&](const chat::ChatDelta& d) { return d.empty() || !on_delta || on_delta(d); };
  const auto t0 = std::chrono::steady_clock::now();
  reply.finish_reason = "length";
  for (;;) {
    if (options_.n_predict >= 0 && reply.n_generated >= options_.n_predict) break;
    if (g_interrupted) {
      reply.finish_reason = "cancelled";
      break;
    }
    const int32_t next = sampler.sample(std::span<const float>(logits.data(), size_t(model_.spec.n_vocab)));
    sampler.accept(next);
    ++reply.n_generated;
    if (tok.is_eog(next)) {
      reply.finish_reason = "stop";
      break;
    }
    if (!deliver(parser.push(stops.push(text.push(next))))) {
      reply.finish_reason = "cancelled";
      break;
    }
    if (stops.stopped()) {
      reply.finish_reason = "stop";
      break;
    }
    const int pos = int(cached_.size());
    if (pos + 1 >= decoder_.n_ctx()) break;
    const int32_t one[1] = {next};
    EMBER_RETURN_IF_ERROR(decoder_.forward(one, pos, false, logits));
    cached_.push_back(next);
  }
  deliver(parser.push(stops.push(text.flush()) + stops.flush()));
  deliver(parser.finish());
  reply.output = parser.result();
  if (!reply.output.tool_calls.empty() && reply.finish_reason == "stop") reply.finish_reason = "tool_calls";
  reply.gen_seconds = seconds_since(t0);
  return {};
}

Expected<Reply> ChatSession::respond(const chat::Conversation& conversation, const DeltaFn& on_delta) {
  auto prompt = template_.render(conversation);
  if (!prompt) return prompt.status();
  const std::vector<int32_t> ids = chat::tokenize_prompt(model_.tokenizer, *prompt);
  if (ids.empty()) return make_error(ErrorKind::invalid_argument, "the rendered prompt is empty");
  if (int(ids.size()) >= decoder_.n_ctx())
    return make_error(ErrorKind::invalid_argument,
                      "the conversation has {} tokens, more than the context size {} allows (/reset, or raise -c)",
                      ids.size(), decoder_.n_ctx());
  Reply reply;
  reply.n_prompt = int(ids.size());
  std::vector<float> logits;
  EMBER_RETURN_IF_ERROR(prefill(ids, reply, logits));
  EMBER_RETURN_IF_ERROR(generate(template_.output_format(*prompt), logits, reply, on_delta));
  return reply;
}

void print_timings(const Reply& r) {
  fmt::print(stderr, "[prompt: {} tokens ({} reused) in {:.2f} ms; gen: {} tokens in {:.2f} ms = {:.2f} tokens/s; {}]\n",
             r.n_prompt, r.n_reused, r.prompt_seconds * 1e3, r.n_generated, r.gen_seconds * 1e3,
             r.n_generated / std::max(r.gen_seconds, 1e-9), r.finish_reason);
}

// Streams deltas to the terminal: reasoning faint (on a tty) or hidden, tool calls on
// their own lines.
class Printer {
 public:
  Printer(bool tty, bool show_reasoning) : tty_(tty), show_reasoning_(show_reasoning) {}

  bool print(const chat::ChatDelta& d) {
    if (!d.reasoning_content.empty() && show_reasoning_) {
      if (!in_reasoning_) write(tty_ ? "\x1b[2m" : "");
      in_reasoning_ = true;
      write(d.reasoning_content);
    }
    if (!d.content.empty()) {
      end_reasoning();
      write(d.content);
    }
    for (const auto& c : d.tool_calls) {
      end_reasoning();
      write(fmt::format("\n[tool call {}] {}({})\n", c.id, c.name, c.arguments));
    }
    std::fflush(stdout);
    return true;
  }
  void end_turn() {
    if (in_reasoning_) write(tty_ ? "\x1b[0m" : "");
    in_reasoning_ = false;
    write("\n");
    std::fflush(stdout);
  }

 private:
  void write(std::string_view s) { std::fwrite(s.data(), 1, s.size(), stdout); }
  void end_reasoning() {
    if (!in_reasoning_) return;
    write(tty_ ? "\x1b[0m\n\n" : "\n\n");
    in_reasoning_ = false;
  }
  bool tty_, show_reasoning_;
  bool in_reasoning_ = false;
};

Json system_message(const std::string& text) { return {{"role", "system"}, {"content", text}}; }

// Reads one input line; a trailing backslash continues it on the next line.
bool read_input(bool tty, std::string& out) {
  out.clear();
  std::string line;
  if (tty) std::fputs("> ", stdout), std::fflush(stdout);
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.back() != '\\') {
      out += line;
      return true;
    }
    line.pop_back();
    out += line + "\n";
    if (tty) std::fputs(". ", stdout), std::fflush(stdout);
  }
  return !out.empty();
}

// /reset, /system TEXT, /exit. Returns false when the line is not a command.
bool run_command(const std::string& line, chat::Conversation& conv, std::string& system, bool& quit) {
  if (line.empty() || line[0] != '/') return false;
  const size_t sp = line.find(' ');
  const std::string cmd = line.substr(0, sp);
  std::string arg;
  if (const size_t a = line.find_first_not_of(' ', sp == std::string::npos ? line.size() : sp); a != std::string::npos)
    arg = line.substr(a);
  if (cmd == "/exit" || cmd == "/quit") {
    quit = true;
  } else if (cmd == "/reset") {
    conv.messages = Json::array();
    if (!system.empty()) conv.messages.push_back(system_message(system));
    fmt::print(stderr, "(conversation cleared)\n");
  } else if (cmd == "/system") {
    system = arg;
    Json& m = conv.messages;
    if (!m.empty() && m[0]["role"] == "system") m.erase(m.begin());
    if (!system.empty()) m.insert(m.begin(), system_message(system));
    std::fputs(system.empty() ? "(system prompt removed)\n" : "(system prompt set)\n", stderr);
  } else {
    fmt::print(stderr, "commands: /reset, /system TEXT, /exit (a line ending in \\ continues)\n");
  }
  return true;
}

int interactive(ChatSession& session, chat::Conversation conv, const ChatOptions& o) {
  const bool tty_in = isatty(STDIN_FILENO), tty_out = isatty(STDOUT_FILENO);
  std::string system = o.system;
  if (!system.empty()) conv.messages.push_back(system_message(system));
  if (tty_in) fmt::print(stderr, "commands: /reset, /system TEXT, /exit (a line ending in \\ continues)\n");
  Printer printer(tty_out, o.reasoning != "hide");
  std::string line;
  bool quit = false;
  while (!quit && read_input(tty_in, line)) {
    if (line.find_first_not_of(" \t\n") == std::string::npos) continue;
    if (run_command(line, conv, system, quit)) continue;
    conv.messages.push_back({{"role", "user"}, {"content", line}});
    g_interrupted = 0;
    auto previous = std::signal(SIGINT, on_interrupt);
    auto reply = session.respond(conv, [&](const chat::ChatDelta& d) { return printer.print(d); });
    std::signal(SIGINT, previous);
    printer.end_turn();
    if (!reply) {
      report(reply.status());
      conv.messages.erase(conv.messages.end() - 1);
      continue;
    }
    conv.messages.push_back(chat::assistant_message(reply->output));
    if (o.timings) print_timings(*reply);
    if (reply->finish_reason == "length") fmt::print(stderr, "(reply cut off: token limit or full context)\n");
  }
  return kExitOk;
}

// stdin: a JSON array of messages, an object {messages, tools?, documents?,
// chat_template_kwargs?}, or one message object per line.
Status read_json_conversation(chat::Conversation& conv) {
  const std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  Json whole = Json::parse(text, nullptr, false);
  if (!whole.is_discarded() && whole.is_array()) {
    conv.messages = std::move(whole);
  } else if (!whole.is_discarded() && whole.is_object() && whole.contains("messages")) {
    conv.messages = whole["messages"];
    if (whole.contains("tools")) conv.tools = whole["tools"];
    if (whole.contains("documents")) conv.documents = whole["documents"];
    if (whole.contains("chat_template_kwargs")) {
      if (!whole["chat_template_kwargs"].is_object())
        return make_error(ErrorKind::invalid_argument, "stdin: chat_template_kwargs is not an object");
      conv.kwargs.update(whole["chat_template_kwargs"]);
    }
  } else {
    size_t line_no = 0, start = 0;
    while (start <= text.size()) {
      const size_t end = std::min(text.find('\n', start), text.size());
      const std::string line = text.substr(start, end - start);
      start = end + 1;
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Json m = Json::parse(line, nullptr, false);
      if (m.is_discarded() || !m.is_object())
        return make_error(ErrorKind::invalid_argument, "stdin line {}: not a JSON message object", line_no);
      conv.messages.push_back(std::move(m));
    }
  }
  if (!conv.messages.is_array() || conv.messages.empty())
    return make_error(ErrorKind::invalid_argument, "stdin: no messages (a JSON array, or one JSON object per line)");
  return {};
}

int json_mode(ChatSession& session, chat::Conversation conv, const ChatOptions& o) {
  if (Status st = read_json_conversation(conv); !st) return report(st);
  const Json& first = conv.messages[0];
  if (!o.system.empty() && !(first.is_object() && first.value("role", "") == "system"))
    conv.messages.insert(conv.messages.begin(), system_message(o.system));
  auto reply = session.respond(conv, nullptr);
  if (!reply) return report(reply.status());
  Json out = chat::assistant_message(reply->output);
  if (!out.contains("reasoning_content")) out["reasoning_content"] = nullptr;
  if (!out.contains("tool_calls")) out["tool_calls"] = Json::array();
  out["finish_reason"] = reply->finish_reason;
  fmt::print("{}\n", out.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (o.timings) print_timings(*reply);
  return kExitOk;
}

int run_chat(const ChatOptions& o) {
  if (o.reasoning != "show" && o.reasoning != "hide")
    return report(make_error(ErrorKind::invalid_argument, "--reasoning: '{}' is not show or hide", o.reasoning));
  chat::Conversation conv;
  if (!o.template_kwargs.empty()) {
    conv.kwargs = Json::parse(o.template_kwargs, nullptr, false);
    if (conv.kwargs.is_discarded() || !conv.kwargs.is_object())
      return report(make_error(ErrorKind::invalid_argument, "--template-kwargs: not a JSON object"));
  }
  auto m = load_model(o.model);
  if (!m) return report(m.status());
  const model::Model& model = **m;
  auto tmpl = load_chat_template(model, o.model.path, o.chat_template);
  if (!tmpl) return report(tmpl.status());
  auto decoder = make_decoder(model, o.model);
  if (!decoder) return report(decoder.status());
  // The built-in ChatML template may not match the model's end-of-turn tokens.
  std::vector<std::string> stops;
  if (o.chat_template.empty() && tmpl->source() == chat::chatml_template()) stops = {"<|im_end|>", "<|im_start|>"};
  ChatSession session(model, **decoder, *tmpl, o, stops);
  return o.json ? json_mode(session, std::move(conv), o) : interactive(session, std::move(conv), o);
}

}  // namespace

void register_chat(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub = app.add_subcommand("chat", "chat with a model in the terminal, or reply to a JSON conversation");
  add_model_options(*sub, o->model);
  sub->add_option("-n,--n-predict", o->n_predict, "most tokens per reply (-1 = until end of turn or full context)")
      ->check(CLI::Range(-1, 1 << 24));
  add_sampling_options(*sub, o->sampling);
  sub->add_option("--chat-template", o->chat_template, "a template file, or the name of a template the model ships");
  sub->add_option("--system", o->system, "system prompt");
  sub->add_option("--reasoning", o->reasoning, "show (dimmed on a terminal) or hide the model's reasoning");
  sub->add_option("--template-kwargs", o->template_kwargs, "extra template variables as a JSON object, "
                                                           "e.g. '{\"enable_thinking\": false}'");
  sub->add_flag("--json", o->json, "read a conversation as JSON from stdin, write the reply as JSON to stdout");
  sub->add_flag("--timings", o->timings, "print token counts and speeds after each reply (stderr)");
  sub->add_option("-b,--batch-size", o->batch, "prompt tokens per forward pass")->check(CLI::Range(1, 1 << 16));
  sub->callback([o, &exit_code] { exit_code = run_chat(*o); });
}

}  // namespace ember::cli
