#include "server/metrics.h"

#include <fmt/format.h>

#include "server/context.h"

namespace ember::server {

namespace {

std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void gauge(std::string& out, const char* name, const char* help, const std::string& labels, double v) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0}{{{2}}} {3}\n", name, help, labels, v);
}

void counter(std::string& out, const char* name, const char* help, const std::string& labels, uint64_t v) {
  out += fmt::format("# HELP {0}_total {1}\n# TYPE {0}_total counter\n{0}_total{{{2}}} {3}\n", name, help, labels, v);
}

void histogram(std::string& out, const char* name, const char* help, const std::string& labels,
               const runtime::Histogram& h) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.kBounds.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, h.kBounds[i], cumulative);
  }
  cumulative += h.counts.back();
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  out += fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum, name, labels, h.count);
}

}  // namespace

std::string prometheus_text(const runtime::EngineStats& s, const std::string& model_name) {
  const std::string l = fmt::format("model_name=\"{}\"", label_value(model_name));
  std::string out;
  gauge(out, "ember_requests_running", "Requests being generated now.", l, s.running);
  gauge(out, "ember_requests_waiting", "Requests waiting in the queue.", l, s.waiting);
  gauge(out, "ember_kv_cache_usage_ratio", "Fraction of the KV cache in use (0..1).", l, s.kv_usage);
  gauge(out, "ember_kv_cache_blocks_used", "KV cache blocks held by requests.", l, double(s.kv_blocks_used));
  gauge(out, "ember_kv_cache_blocks_total", "KV cache blocks in the pool (0: not paged).", l,
        double(s.kv_blocks_total));
  counter(out, "ember_prompt_tokens", "Prompt tokens processed.", l, s.prompt_tokens);
  counter(out, "ember_generation_tokens", "Tokens generated.", l, s.generation_tokens);
  counter(out, "ember_requests_finished", "Engine requests finished (any reason).", l, s.requests_finished);
  counter(out, "ember_preemptions", "Requests preempted for lack of KV cache.", l, s.preemptions);
  histogram(out, "ember_time_to_first_token_seconds", "Time from submission to the first token.", l, s.ttft);
  histogram(out, "ember_inter_token_latency_seconds", "Time between consecutive tokens.", l, s.inter_token);
  return out;
}

}  // namespace ember::server
