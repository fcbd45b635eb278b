// The streaming output parser: a small state machine over held-back text. Every decision
// depends only on the text seen so far, never on how it was split (see scan()).
#include "chat/output_parser.h"

#include <algorithm>
#include <span>

namespace ember::chat {

namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kToolCallOpen = "<tool_call>";
constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr size_t kMaxChannelName = 64;  // a channel header longer than this is not one

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Where the first marker starts in `s` (the longest one when several start there), and
// where a suffix of `s` that could still grow into a marker starts.
struct Match {
  size_t pos = std::string_view::npos;
  size_t len = 0;
  std::string_view marker;
};

Match find_first(std::string_view s, std::span<const std::string_view> markers) {
  Match m;
  for (auto mk : markers) {
    const size_t p = s.find(mk);
    if (p == std::string_view::npos) continue;
    if (p < m.pos || (p == m.pos && mk.size() > m.len)) m = {p, mk.size(), mk};
  }
  return m;
}

size_t partial_start(std::string_view s, std::span<const std::string_view> markers) {
  size_t longest = 0;
  for (auto mk : markers) longest = std::max(longest, mk.size());
  const size_t from = s.size() >= longest ? s.size() - longest + 1 : 0;
  for (size_t q = from; q < s.size(); ++q) {
    const std::string_view tail = s.substr(q);
    for (auto mk : markers)
      if (mk.size() > tail.size() && mk.substr(0, tail.size()) == tail) return q;
  }
  return s.size();
}

}  // namespace

// The outcome of scanning the pending text for markers.
struct OutputParser::Scan {
  size_t safe = 0;  // bytes before any (possible) marker: can be released now
  Match found;      // a marker that is decided (pos == npos: none)

  Scan(std::string_view s, std::span<const std::string_view> markers, bool final) {
    found = find_first(s, markers);
    const size_t q = final ? s.size() : partial_start(s, markers);
    if (found.pos != std::string_view::npos && (final || q > found.pos)) {
      safe = found.pos;
    } else {
      found = {};
      safe = q;
    }
  }
  bool matched() const { return found.pos != std::string_view::npos; }
};

void ParsedOutput::append(const ChatDelta& d) {
  content += d.content;
  reasoning_content += d.reasoning_content;
  tool_calls.insert(tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
}

OutputParser::OutputParser(OutputFormat format) : format_(format) {
  const bool in_reasoning = format.starts_in_reasoning && format.reasoning != ReasoningSyntax::none;
  state_ = in_reasoning ? State::reasoning : State::content;
  skip_ws_ = true;
}

ChatDelta OutputParser::push(std::string_view piece) {
  ChatDelta out;
  pending_.append(piece);
  step(false, out);
  result_.append(out);
  return out;
}

ChatDelta OutputParser::finish() {
  ChatDelta out;
  step(true, out);
  result_.append(out);
  return out;
}

void OutputParser::step(bool final, ChatDelta& out) {
  for (;;) {
    bool progressed = false;
    switch (state_) {
      case State::content: progressed = step_content(final, out); break;
      case State::reasoning: progressed = step_reasoning(final, out); break;
      case State::channel_header: progressed = step_channel_header(final); break;
      case State::tool_block: progressed = step_tool_block(final, out); break;
      case State::tool_rest:
      case State::llama_json: progressed = step_tool_rest(final, out); break;
    }
    if (!progressed) return;
  }
}

std::vector<std::string_view> OutputParser::content_markers() const {
  std::vector<std::string_view> m;
  if (format_.reasoning == ReasoningSyntax::think_tags) m.push_back(kThinkOpen);
  if (format_.reasoning == ReasoningSyntax::channels) {
    m.push_back(kChannelOpen);
    m.push_back(kChannelClose);
  }
  if (format_.tools == ToolSyntax::hermes) m.push_back(kToolCallOpen);
  if (format_.tools == ToolSyntax::mistral) m.push_back(kMistralCalls);
  if (format_.tools == ToolSyntax::llama3) m.push_back(kPythonTag);
  return m;
}

std::string_view OutputParser::reasoning_end() const {
  return format_.reasoning == ReasoningSyntax::channels ? kChannelClose : kThinkClose;
}

bool OutputParser::step_content(bool final, ChatDelta& out) {
  if (format_.tools == ToolSyntax::llama3 && !content_started_) {
    // A Llama 3 tool call is the whole reply: a JSON object from the first character on.
    const size_t first = pending_.find_first_not_of(" \n\r\t");
    if (first == std::string::npos) {
      if (final) pending_.clear();
      return false;
    }
    pending_.erase(0, first);
    if (pending_[0] == '{') {
      state_ = State::llama_json;
      return true;
    }
  }
  const auto markers = content_markers();
  const Scan scan(pending_, markers, final);
  emit_content(std::string_view(pending_).substr(0, scan.safe), out);
  if (!scan.matched()) {
    pending_.erase(0, scan.safe);
    return false;
  }
  const std::string_view mk = scan.found.marker;
  pending_.erase(0, scan.safe + mk.size());
  if (mk == kThinkOpen) {
    state_ = State::reasoning;
  } else if (mk == kChannelOpen) {
    state_ = State::channel_header;
  } else if (mk == kChannelClose) {
    return true;  // a standalone end marker while already in final content: dropped
  } else if (mk == kToolCallOpen) {
    state_ = State::tool_block;
  } else {
    pending_.insert(0, mk);  // [TOOL_CALLS] / <|python_tag|>: the rest is parsed at the end
    state_ = State::tool_rest;
  }
  skip_ws_ = true;
  return true;
}

bool OutputParser::step_reasoning(bool final, ChatDelta& out) {
  std::vector<std::string_view> markers{reasoning_end()};
  if (format_.reasoning == ReasoningSyntax::channels) markers.push_back(kChannelOpen);
  const Scan scan(pending_, markers, final);
  emit_reasoning(std::string_view(pending_).substr(0, scan.safe), out);
  if (!scan.matched()) {
    pending_.erase(0, scan.safe);
    if (final) reasoning_ws_.clear();
    return false;
  }
  pending_.erase(0, scan.safe + scan.found.len);
  reasoning_ws_.clear();  // trailing whitespace of a reasoning block is dropped
  state_ = scan.found.marker == kChannelOpen ? State::channel_header : State::content;
  skip_ws_ = true;
  return true;
}

bool OutputParser::step_channel_header(bool final) {
  // "<|channel>NAME\n": NAME "thought" (or "analysis", "thinking") opens reasoning, any
  // other name opens final content; "<|channel>NAME<channel|>" is an empty channel.
  const std::string_view s = pending_;
  const size_t nl = s.find('\n');
  const size_t close = s.find(kChannelClose);
  const size_t end = std::min(nl, close);
  if (end == std::string_view::npos || end > kMaxChannelName) {
    if (!final && s.size() <= kMaxChannelName + kChannelClose.size()) return false;
    state_ = State::content;  // no header after all: the text is content
    return true;
  }
  const std::string_view name = trim(s.substr(0, end));
  const bool thought = name == "thought" || name == "analysis" || name == "thinking";
  if (end == close) {
    pending_.erase(0, close + kChannelClose.size());
    state_ = State::content;
  } else {
    pending_.erase(0, nl + 1);
    state_ = thought ? State::reasoning : State::content;
  }
  skip_ws_ = true;
  return true;
}

bool OutputParser::step_tool_block(bool final, ChatDelta& out) {
  const std::string_view s = pending_;
  const size_t close = s.find(kToolCallClose);
  if (close == std::string_view::npos && !final) return false;
  const std::string_view body = close == std::string_view::npos ? s : s.substr(0, close);
  std::string raw = std::string(kToolCallOpen).append(body);
  if (close != std::string_view::npos) raw.append(kToolCallClose);
  const bool parsed = emit_calls(body, out, raw);
  pending_.erase(0, close == std::string_view::npos ? s.size() : close + kToolCallClose.size());
  state_ = State::content;
  skip_ws_ = parsed;  // whitespace between calls is dropped; after kept text it stays
  return true;
}

bool OutputParser::step_tool_rest(bool final, ChatDelta& out) {
  if (!final) return false;  // the calls run to the end of the output
  std::string text;
  text.swap(pending_);
  std::string_view body = text;
  if (state_ == State::tool_rest) {
    const std::string_view mk = format_.tools == ToolSyntax::mistral ? kMistralCalls : kPythonTag;
    body.remove_prefix(mk.size());
  }
  emit_calls(body, out, text);
  state_ = State::content;
  return false;
}

// Appends `text` to `out`, dropping leading whitespace while skip_ws_ and holding
// trailing whitespace in `held` until more text follows (so segments come out trimmed).
void OutputParser::emit_trimmed(std::string_view text, std::string& held, std::string& out) {
  if (skip_ws_) text = trim_left(text);
  if (text.empty()) return;
  skip_ws_ = false;
  size_t body = text.size();
  while (body > 0 && is_space(text[body - 1])) --body;
  if (body == 0) {
    held.append(text);
    return;
  }
  out.append(held).append(text.substr(0, body));
  held.assign(text.substr(body));
}

void OutputParser::emit_content(std::string_view text, ChatDelta& out) {
  const size_t before = out.content.size();
  emit_trimmed(text, content_ws_, out.content);
  if (out.content.size() > before) content_started_ = true;
}

void OutputParser::emit_reasoning(std::string_view text, ChatDelta& out) {
  emit_trimmed(text, reasoning_ws_, out.reasoning_content);
}

bool OutputParser::emit_calls(std::string_view text, ChatDelta& out, std::string_view raw) {
  std::vector<ToolCall> calls;
  if (parse_tool_calls(format_.tools, text, n_calls_, calls)) {
    n_calls_ += int(calls.size());
    out.tool_calls.insert(out.tool_calls.end(), calls.begin(), calls.end());
    return true;
  }
  emit_content(raw, out);  // not a valid call: keep the model's text rather than lose it
  return false;
}

ParsedOutput parse_output(const OutputFormat& format, std::string_view text) {
  OutputParser p(format);
  p.push(text);
  p.finish();
  return p.result();
}

OutputFormat detect_output_format(std::string_view source, std::string_view prompt) {
  auto has = [&](std::string_view s) { return source.find(s) != std::string_view::npos; };
  OutputFormat f;
  if (has(kChannelOpen)) {
    f.reasoning = ReasoningSyntax::channels;
  } else if (has(kThinkOpen) || has(kThinkClose)) {
    f.reasoning = ReasoningSyntax::think_tags;
  }
  if (has(kToolCallOpen)) {
    f.tools = ToolSyntax::hermes;
  } else if (has(kMistralCalls)) {
    f.tools = ToolSyntax::mistral;
  } else if (has(kPythonTag) || (has("<|start_header_id|>") && has("\"parameters\""))) {
    f.tools = ToolSyntax::llama3;
  }
  // An opening marker after the last closing one: generation starts inside reasoning.
  auto open_after_close = [&](std::string_view open, std::string_view close) {
    const size_t o = prompt.rfind(open);
    const size_t c = prompt.rfind(close);
    return o != std::string_view::npos && (c == std::string_view::npos || c < o) ? o : std::string_view::npos;
  };
  if (f.reasoning == ReasoningSyntax::think_tags) {
    f.starts_in_reasoning = open_after_close(kThinkOpen, kThinkClose) != std::string_view::npos;
  } else if (f.reasoning == ReasoningSyntax::channels) {
    const size_t o = open_after_close(kChannelOpen, kChannelClose);
    if (o != std::string_view::npos) {
      const std::string_view header = prompt.substr(o + kChannelOpen.size());
      const size_t nl = header.find('\n');
      const std::string_view name = nl == std::string_view::npos ? "" : trim(header.substr(0, nl));
      f.starts_in_reasoning = name == "thought" || name == "analysis" || name == "thinking";
    }
  }
  return f;
}

}  // namespace ember::chat
