// ember quantize --calib FILE: activation statistics for the low-rank term (quantize.h).
// The CPU decoder runs over the calibration text (chunks of kCalibChunk tokens, at most
// --calib-tokens) with a dump hook that accumulates, per layer, the mean square of every
// channel of the four Linear inputs: attn_norm (q/k/v), kqv_out (o), ffn_norm (gate/up)
// and ffn_act (down). Each module's input_scale is the RMS of its input channels, floored
// at 1% of their mean so that channels the text never uses cannot blow up A = Vᵀ·diag(1/s).
#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/quantize.h"
#include "core/thread_pool.h"
#include "model/decoder.h"

namespace ember::cli::quantize {
namespace {

constexpr int kCalibChunk = 512;

struct Accumulator {
  std::vector<double> sum_sq;
  int64_t rows = 0;
};

}  // namespace

std::string calib_input_name(const std::string& role) {
  if (role == "attn_q" || role == "attn_k" || role == "attn_v") return "attn_norm";
  if (role == "attn_output") return "kqv_out";
  if (role == "ffn_gate" || role == "ffn_up") return "ffn_norm";
  if (role == "ffn_down") return "ffn_act";
  return "";
}

Status calibrate(const model::Model& m, const std::string& file, int max_tokens, std::vector<Module>& modules) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorKind::not_found, "--calib {}: cannot open", file);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::vector<int32_t> tokens = m.tokenizer.encode(ss.str(), true, false);
  if (tokens.size() < 16)
    return make_error(ErrorKind::invalid_argument, "--calib {}: {} tokens are too few", file, tokens.size());
  if (int64_t(tokens.size()) > max_tokens) tokens.resize(size_t(max_tokens));
  std::map<std::pair<std::string, int>, Accumulator> acc;
  model::CpuDecoder dec(m.spec, m.weights, kCalibChunk, ThreadPool::global());
  dec.set_dump([&](std::string_view name, int il, const float* data, int n, int width) {
    if (name != "attn_norm" && name != "kqv_out" && name != "ffn_norm" && name != "ffn_act") return;
    Accumulator& a = acc[{std::string(name), il}];
    a.sum_sq.resize(size_t(width), 0.0);
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < width; ++j) a.sum_sq[size_t(j)] += double(data[size_t(t) * width + j]) * data[size_t(t) * width + j];
    a.rows += n;
  });
  std::vector<float> logits;
  for (size_t pos = 0; pos < tokens.size(); pos += kCalibChunk) {
    const size_t n = std::min(tokens.size() - pos, size_t(kCalibChunk));
    EMBER_RETURN_IF_ERROR(dec.forward(std::span<const int32_t>(tokens).subspan(pos, n), 0, false, logits));
  }
  fmt::print(stderr, "quantize: calibration: {} tokens of {}\n", tokens.size(), file);
  for (Module& mod : modules) {
    if (!mod.quantize || mod.calib_input.empty()) continue;
    const auto it = acc.find({mod.calib_input, mod.il});
    if (it == acc.end() || int64_t(it->second.sum_sq.size()) != mod.linear->n_in || it->second.rows == 0)
      return make_error(ErrorKind::internal, "--calib: no '{}' activations of layer {} for {}", mod.calib_input, mod.il,
                        mod.name);
    const Accumulator& a = it->second;
    mod.input_scale.resize(a.sum_sq.size());
    double mean = 0;
    for (size_t j = 0; j < a.sum_sq.size(); ++j) {
      mod.input_scale[j] = float(std::sqrt(a.sum_sq[j] / double(a.rows)));
      mean += mod.input_scale[j];
    }
    mean /= double(a.sum_sq.size());
    const float floor = float(std::max(mean * 0.01, 1e-12));
    for (float& s : mod.input_scale) s = std::max(s, floor);
  }
  return {};
}

}  // namespace ember::cli::quantize
