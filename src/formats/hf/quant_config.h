// The weight quantization a Hugging Face checkpoint declares (see docs/hf.md):
//   compressed-tensors (llm-compressor): config.json "quantization_config" with
//     quant_method "compressed-tensors" and format "nvfp4-pack-quantized" (top level or
//     per config group); quantized modules hold weight_packed / weight_scale /
//     weight_global_scale (a DIVISOR).
//   ModelOpt: hf_quant_config.json "quantization": {"quant_algo": "NVFP4" | "NVFP4_SVD"}
//     (or config.json quantization_config with quant_method "modelopt"); quantized modules
//     hold weight (U8) / weight_scale / weight_scale_2 (a MULTIPLIER), and for NVFP4_SVD
//     pre_quant_scale / svdquant_lora_a / svdquant_lora_b.
// Which modules are quantized is read from the tensors themselves; the ignore /
// exclude_modules lists are kept for messages only.
#pragma once
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/hf/config.h"

namespace ember::hf {

// mxfp4_compressed_tensors: format "mxfp4-pack-quantized" (weight_packed U8 [N, K/2], weight_scale
// U8 E8M0 [N, K/32], no global scale), as `ember quantize --scheme mxfp4` writes it.
enum class WeightQuant { none, nvfp4_compressed_tensors, nvfp4_modelopt, mxfp4_compressed_tensors, other };

struct QuantConfig {
  WeightQuant kind = WeightQuant::none;
  std::string name;     // the method as declared, e.g. "nvfp4-pack-quantized", "NVFP4_SVD"
  std::string source;   // the file that declared it
  bool svd = false;     // ModelOpt NVFP4_SVD
  std::vector<std::string> ignore;  // compressed-tensors ignore / ModelOpt exclude_modules
};

// Reads config.quantization_config and dir/hf_quant_config.json. A checkpoint without
// either is WeightQuant::none; a well-formed declaration of another method is `other`
// (its tensors are then refused with the method named).
Expected<QuantConfig> read_quant_config(const Config& config);

}  // namespace ember::hf
