#include "model/gpu/device_weights.h"

#include <algorithm>
#include <functional>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemv_fp4.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/moe.h"

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
  size_t bytes;  // per row when rows > 1
  size_t offset;
  size_t rows = 1, src_pitch = 0, dst_pitch = 0;  // strided copy (padded expert rows)
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

  // The n_experts matrices of one projection into one region, equally strided; rows padded
  // to 16 bytes for cuda::moe_gemv where it reads the type.
  Status experts(const std::vector<Linear>& ls, DeviceExperts& out, int64_t& max_elems) {
    if (ls.empty()) return make_error(ErrorKind::internal, "expert projection without experts");
    const Linear& l0 = ls[0];
    for (const Linear& l : ls) {
      if (l.type != l0.type || l.n_in != l0.n_in || l.n_out != l0.n_out || l.row_bytes != l0.row_bytes)
        return make_error(ErrorKind::unsupported, "expert tensor '{}' differs in type or shape from '{}'", l.name,
                          l0.name);
      if (!l.bias.empty() || l.has_lowrank() || !l.pre_quant_scale.empty())
        return make_error(ErrorKind::unsupported, "expert tensor '{}' has a bias, low-rank branch or pre_quant_scale, "
                          "which the CUDA experts do not support; use the CPU", l.name);
    }
    const bool fp4 = cuda::linear_fp4_supported(l0.type, l0.n_in);
    if (!fp4 && l0.type == quant::Type::NVFP4)
      return make_error(ErrorKind::unsupported, "expert tensor '{}': NVFP4 rows of {} have no CUDA kernel", l0.name,
                        l0.n_in);
    if (!fp4 && (!cuda::weight_type_supported(l0.type) || l0.n_in % cuda::weight_row_multiple(l0.type) != 0))
      return make_error(ErrorKind::unsupported, "expert tensor '{}' ({}, rows of {}) has no CUDA kernel yet", l0.name,
                        quant::type_name(l0.type), l0.n_in);
    if (!fp4 && std::any_of(ls.begin(), ls.end(), [](const Linear& l) { return l.scale != 1.0f; }))
      return make_error(ErrorKind::unsupported, "expert tensor '{}': a global scale is supported only on FP4 experts",
                        l0.name);
    const bool pad = cuda::moe_gemv_supported(l0.type, l0.n_in);
    const int64_t stride = pad ? cuda::moe_gemv_row_stride(l0.type, l0.n_in) : l0.row_bytes;
    out.type = l0.type;
    out.n_in = l0.n_in;
    out.n_out = l0.n_out;
    out.row_bytes = stride;
    out.expert_bytes = (stride * l0.n_out + 255) / 256 * 256;
    out.n_experts = int(ls.size());
    const size_t at = layout_.add(size_t(out.expert_bytes) * ls.size());
    for (size_t e = 0; e < ls.size(); ++e) {
      const size_t dst = at + e * size_t(out.expert_bytes);
      uploads_.push_back({ls[e].data, size_t(l0.row_bytes), dst, size_t(l0.n_out), size_t(ls[e].row_bytes),
                          size_t(stride)});
      if (fp4) out.scale.push_back(ls[e].scale);
    }
    setters_.push_back([&out, at](const uint8_t* base) { out.data = base + at; });
    max_elems = std::max(max_elems, l0.n_in * l0.n_out);
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
    for (const Upload& u : uploads_) {
      uint8_t* dst = w.memory.data() + u.offset;
      EMBER_RETURN_IF_ERROR(cuda::cuda_status(
          u.rows > 1 ? cudaMemcpy2D(dst, u.dst_pitch, u.src, u.src_pitch, u.bytes, u.rows, cudaMemcpyHostToDevice)
                     : cudaMemcpy(dst, u.src, u.bytes, cudaMemcpyHostToDevice),
          "weight upload"));
    }
    for (auto& set : setters_) set(w.memory.data());
    return {};
  }

 private:
  DeviceLayout layout_;
  std::vector<Upload> uploads_;
  std::vector<std::function<void(const uint8_t*)>> setters_;
};

// Router, experts and shared expert of a MoE layer.
Status upload_moe(Uploader& up, const MoeWeights& m, DeviceMoe& d, DeviceWeights& w) {
  EMBER_RETURN_IF_ERROR(up.matrix(m.router, d.router, w));
  EMBER_RETURN_IF_ERROR(up.experts(m.gate, d.gate, d.max_expert_elems));
  EMBER_RETURN_IF_ERROR(up.experts(m.up, d.up, d.max_expert_elems));
  EMBER_RETURN_IF_ERROR(up.experts(m.down, d.down, d.max_expert_elems));
  if (d.gate.type != d.up.type || d.gate.n_out != d.up.n_out || d.down.n_in != d.gate.n_out)
    return make_error(ErrorKind::unsupported, "experts: gate ({}) and up ({}) must share type and width",
                      quant::type_name(d.gate.type), quant::type_name(d.up.type));
  for (auto [src, dst] : {std::pair{&m.shexp_gate, &d.shexp_gate}, {&m.shexp_up, &d.shexp_up},
                          {&m.shexp_down, &d.shexp_down}, {&m.shexp_gate_inp, &d.shexp_gate_inp}}) {
    if (src->has_lowrank() || !src->pre_quant_scale.empty())
      return make_error(ErrorKind::unsupported, "tensor '{}': low-rank / pre_quant_scale in a MoE block is not "
                        "supported on the GPU", src->name);
    EMBER_RETURN_IF_ERROR(up.matrix(*src, *dst, w));
  }
  up.vector(m.per_expert_scale, d.per_expert_scale);
  return {};
}

}  // namespace

DeviceLinear DeviceExperts::expert(int e) const {
  DeviceLinear l;
  l.type = type;
  l.data = data + int64_t(e) * expert_bytes;
  l.n_in = n_in;
  l.n_out = n_out;
  l.row_bytes = row_bytes;
  if (!scale.empty()) l.scale = scale[size_t(e)];
  return l;
}

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
    if (spec.layers[size_t(il)].ffn == FfnKind::moe) EMBER_RETURN_IF_ERROR(upload_moe(up, lw.moe, dl.moe, dw));
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
