#include "model/gpu/device_weights.h"

#include <functional>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda/matmul.h"

namespace ember::model::gpu {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

Expected<DeviceBuffer> DeviceBuffer::allocate(size_t bytes, const char* what) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  const cudaError_t err = cudaMalloc(&b.ptr_, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    b.ptr_ = nullptr;
    return make_error(ErrorKind::out_of_memory, "cannot allocate {:.1f} MiB of GPU memory for {}: {}",
                      double(bytes) / (1 << 20), what, cudaGetErrorString(err));
  }
  b.bytes_ = bytes;
  return b;
}

namespace {

// Two passes over the same description: plan (offsets) then fix up pointers + copy.
struct Upload {
  const void* src;
  size_t bytes;
  size_t offset;
};

class Uploader {
 public:
  // Reserves room for `bytes` of `src`; returns a setter run once memory exists.
  void reserve(const void* src, size_t bytes, std::function<void(const uint8_t*)> set) {
    if (src == nullptr || bytes == 0) return;
    const size_t at = layout_.add(bytes);
    uploads_.push_back({src, bytes, at});
    setters_.push_back([set = std::move(set), at](const uint8_t* base) { set(base + at); });
  }

  Status matrix(const Linear& l, DeviceLinear& out, DeviceWeights& w) {
    if (cuda::linear_fp4_supported(l.type, l.n_in)) return fp4_matrix(l, out, w);
    if (l.type == quant::Type::NVFP4 || l.has_extras())
      return make_error(ErrorKind::unsupported, "tensor '{}' ({}{}) has a global scale / low-rank / pre_quant_scale, "
                        "which the CUDA decoder supports only on NVFP4 / MXFP4 weights; use the CPU", l.name,
                        quant::type_name(l.type), l.has_lowrank() ? fmt::format(", rank {}", l.rank) : "");
    if (!cuda::weight_type_supported(l.type) || l.n_in % cuda::weight_row_multiple(l.type) != 0)
      return make_error(ErrorKind::unsupported, "tensor '{}' ({}, rows of {}) has no CUDA kernel yet", l.name,
                        quant::type_name(l.type), l.n_in);
    out = {l.type, nullptr, l.n_in, l.n_out, l.row_bytes, nullptr};
    reserve(l.data, size_t(l.row_bytes * l.n_out), [&out](const uint8_t* p) { out.data = p; });
    vector(l.bias, out.bias);
    if (l.type != quant::Type::F16)  // f16 weights go to cuBLAS as they are
      w.max_matrix_elems = std::max(w.max_matrix_elems, l.n_in * l.n_out);
    w.max_n_in = std::max(w.max_n_in, l.n_in);
    return {};
  }

  // NVFP4 / MXFP4 (cuda::linear_fp4, any token count): packed blocks plus the extras.
  Status fp4_matrix(const Linear& l, DeviceLinear& out, DeviceWeights& w) {
    const auto factor_ok = [](const LowRankFactor& f) {
      return f.data != nullptr && (f.type == quant::Type::F32 || f.type == quant::Type::BF16);
    };
    if (l.has_lowrank() && (!factor_ok(l.lowrank_a) || !factor_ok(l.lowrank_b) || l.rank > (1 << 16)))
      return make_error(ErrorKind::unsupported, "tensor '{}': low-rank factors must be F32 or BF16 (rank {})", l.name,
                        l.rank);
    out = {l.type, nullptr, l.n_in, l.n_out, l.row_bytes, nullptr};
    out.scale = l.scale;
    reserve(l.data, size_t(l.row_bytes * l.n_out), [&out](const uint8_t* p) { out.data = p; });
    vector(l.bias, out.bias);
    vector(l.pre_quant_scale, out.pre_quant_scale);
    if (l.has_lowrank()) {
      out.rank = int(l.rank);
      out.a_type = l.lowrank_a.type;
      out.b_type = l.lowrank_b.type;
      const auto elem = [](quant::Type t) { return t == quant::Type::BF16 ? size_t(2) : size_t(4); };
      reserve(l.lowrank_a.data, size_t(l.rank * l.n_in) * elem(l.lowrank_a.type),
              [&out](const uint8_t* p) { out.lowrank_a = p; });
      reserve(l.lowrank_b.data, size_t(l.n_out * l.rank) * elem(l.lowrank_b.type),
              [&out](const uint8_t* p) { out.lowrank_b = p; });
      w.max_rank = std::max(w.max_rank, out.rank);
    }
    w.any_pre_quant_scale |= !l.pre_quant_scale.empty();
    w.max_matrix_elems = std::max(w.max_matrix_elems, l.n_in * std::max(l.n_out, l.rank));  // prefill dequantizes
    w.max_n_in = std::max(w.max_n_in, l.n_in);
    return {};
  }

  void vector(const std::vector<float>& v, const float*& out) {
    out = nullptr;
    reserve(v.data(), v.size() * sizeof(float), [&out](const uint8_t* p) { out = reinterpret_cast<const float*>(p); });
  }

  Status commit(DeviceWeights& w) {
    auto mem = DeviceBuffer::allocate(layout_.total(), "weights");
    if (!mem) return mem.status();
    w.memory = std::move(*mem);
    for (const Upload& u : uploads_)
      EMBER_RETURN_IF_ERROR(cuda::cuda_status(cudaMemcpy(w.memory.data() + u.offset, u.src, u.bytes,
                                                         cudaMemcpyHostToDevice), "weight upload"));
    for (auto& set : setters_) set(w.memory.data());
    return {};
  }

 private:
  DeviceLayout layout_;
  std::vector<Upload> uploads_;
  std::vector<std::function<void(const uint8_t*)>> setters_;
};

}  // namespace

Expected<DeviceWeights> upload_weights(const ModelSpec& spec, const Weights& w) {
  DeviceWeights dw;
  dw.layers.resize(size_t(spec.n_layers));  // sized first: setters keep pointers into it
  Uploader up;
  EMBER_RETURN_IF_ERROR(up.matrix(w.token_embd, dw.token_embd, dw));
  const bool tied = w.output.data == w.token_embd.data;
  if (!tied) EMBER_RETURN_IF_ERROR(up.matrix(w.output, dw.output, dw));
  up.vector(w.output_norm, dw.output_norm);
  for (int il = 0; il < spec.n_layers; ++il) {
    const LayerWeights& lw = w.layers[size_t(il)];
    DeviceLayer& dl = dw.layers[size_t(il)];
    up.vector(lw.attn_norm, dl.attn_norm);
    up.vector(lw.q_norm, dl.q_norm);
    up.vector(lw.k_norm, dl.k_norm);
    up.vector(lw.post_attn_norm, dl.post_attn_norm);
    up.vector(lw.ffn_norm, dl.ffn_norm);
    up.vector(lw.post_ffn_norm, dl.post_ffn_norm);
    for (auto [src, dst] : {std::pair{&lw.wq, &dl.wq}, {&lw.wk, &dl.wk}, {&lw.wv, &dl.wv}, {&lw.wo, &dl.wo},
                            {&lw.w_gate, &dl.w_gate}, {&lw.w_up, &dl.w_up}, {&lw.w_down, &dl.w_down}})
      EMBER_RETURN_IF_ERROR(up.matrix(*src, *dst, dw));
  }
  EMBER_RETURN_IF_ERROR(up.commit(dw));
  if (tied) {
    dw.output = dw.token_embd;
    if (dw.output.type != quant::Type::F16)
      dw.max_matrix_elems = std::max(dw.max_matrix_elems, dw.output.n_in * dw.output.n_out);
  }
  return dw;
}

}  // namespace ember::model::gpu
