// ember quantize: a GGUF file or Hugging Face directory -> a Hugging Face directory in
// the compressed-tensors layout (nvfp4-pack-quantized / mxfp4-pack-quantized, or plain
// bf16), with optional low-rank compensation factors. See docs/quant.md.
//   quantize.cpp          the command: options, loading, the module plan, writing
//   quantize_tensors.cpp  one module -> its output tensors (dequantize, FP4, factors)
//   quantize_hf.cpp       config.json and the tokenizer files of the output directory
//   quantize_calib.cpp    --calib: input-channel RMS of every Linear from a calibration text
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/safetensors/writer.h"
#include "model/model.h"
#include "quant/fp4_quantizer.h"

namespace ember::cli::quantize {

enum class Scheme { nvfp4, mxfp4, bf16 };

struct Options {
  std::string in, out;
  std::string scheme = "nvfp4";
  int rank = 0;
  std::string method = "error-svd";
  std::string calib;
  int calib_tokens = 4096;
  std::vector<std::string> exclude;
  std::string report;
  int threads = 0;
  int max_shard_mb = 0;  // 0: one model.safetensors
};

// One HF module holding a Linear: model.layers.3.mlp.up_proj -> layer 3's w_up.
struct Module {
  std::string name;  // HF module name (no ".weight")
  const model::Linear* linear = nullptr;
  int il = -1;               // layer index, -1 for embeddings / lm_head
  bool quantize = false;     // false: written as bf16
  int unpermute_heads = 0;   // > 0: GGUF interleaved-rope rows -> HF half-split, this many heads
  std::string calib_input;        // the decoder activation feeding it (attn_norm, kqv_out, ...)
  std::vector<float> input_scale;  // --calib: RMS of each input channel [n_in]; empty: none
};

struct ModuleResult {
  double snr_quantized = 0, snr_compensated = 0;  // dB; bf16 modules: SNR of the bf16 rounding
  int64_t rank = 0;
  double weighted_snr_quantized = 0, weighted_snr_compensated = 0;  // with input_scale only
};

struct QuantizeParams {
  Scheme scheme = Scheme::nvfp4;
  int64_t rank = 0;
  quant::LowRankScheme method = quant::LowRankScheme::error_svd;
};

// The module's weight as f32 rows [n_out][n_in] (dequantized, rows un-permuted if asked).
std::vector<float> module_weight_f32(const Module& m);
// Quantizes one module and adds its tensors (name.weight or name.weight_packed, ...) to w.
Expected<ModuleResult> quantize_module(const Module& m, const QuantizeParams& p, safetensors::Writer& w,
                                       std::mutex& writer_mu);
// f32 -> bf16 bytes (round to nearest even).
std::vector<uint8_t> to_bf16_bytes(const float* x, int64_t n);

// The dump name of the activation that feeds a GGUF role ("attn_q" -> "attn_norm"; "" if none).
std::string calib_input_name(const std::string& role);
// Runs the CPU decoder over `file` (at most max_tokens) and fills each quantized module's input_scale.
Status calibrate(const model::Model& m, const std::string& file, int max_tokens, std::vector<Module>& modules);

// config.json for the output (without quantization_config): the input's own config.json
// for a Hugging Face directory, else one synthesized from the GGUF spec (Llama, Gemma 3).
Expected<nlohmann::ordered_json> make_config(const model::Model& m, const std::string& in_path);
// The compressed-tensors quantization_config block.
nlohmann::ordered_json quantization_config(Scheme scheme, const std::vector<std::string>& ignore);
// Writes tokenizer.json + tokenizer_config.json (+ generation_config.json) built from the
// GGUF tokenizer, or copies the tokenizer files of a Hugging Face input directory.
Status write_tokenizer_files(const model::Model& m, const std::string& in_path, const std::string& out_dir);

}  // namespace ember::cli::quantize
