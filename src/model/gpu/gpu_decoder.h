// The decoder forward on one CUDA GPU: the same steps as CpuDecoder (model/decoder.cpp),
// with weights uploaded once in their stored formats, an f16 KV cache and every buffer
// allocated at construction. See docs/cuda.md.
#pragma once
#include <memory>

#include "core/status.h"
#include "model/decoder.h"
#include "model/spec.h"
#include "model/weights.h"

namespace ember::model::gpu {

struct GpuDecoderOptions {
  int device = 0;
  int n_ctx = 4096;
  int max_batch = 256;  // tokens per device step; longer forward() calls run in chunks
  bool verbose = true;  // print the memory report to stderr
};

// The spec must outlive the decoder; the weights are only read during construction.
Expected<std::unique_ptr<Decoder>> make_gpu_decoder(const ModelSpec& spec, const Weights& weights,
                                                    const GpuDecoderOptions& options);

// "NVIDIA H100 80GB HBM3 (device 0, 79.1 GiB)" or an error when the device is missing.
Expected<std::string> describe_device(int device);

}  // namespace ember::model::gpu
