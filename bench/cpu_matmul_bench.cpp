// CPU matmul throughput in GB/s of weight bytes for the shapes of the models ember
// targets on the CPU (M = 1, decode). Names read N x K (outputs x inputs). Two
// variants per shape:
//   hot:  one weight matrix, re-read every iteration (stays in cache when it fits);
//   cold: enough copies to exceed 64 MiB, cycled, so weights stream from DRAM as in a
//         real decode step of a model larger than the last-level cache.
// Arguments: threads. Run: bench_cpu_matmul --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "quant/quantize.h"

namespace {

using ember::quant::Type;

constexpr int64_t kColdBytes = int64_t(64) << 20;

std::vector<uint8_t> random_weight(Type type, int64_t n_out, int64_t n_in) {
  const int64_t row = *ember::quant::row_bytes(type, n_in);
  std::vector<uint8_t> w(static_cast<size_t>(row * n_out));
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : src) v = dist(rng);
    ember::quant::quantize_row(type, src.data(), w.data() + r * row, n_in);
  }
  return w;
}

void run(benchmark::State& state, Type type, int64_t n_out, int64_t n_in, bool cold,
         int64_t n_tokens = 1) {
  ember::ThreadPool pool(int(state.range(0)));
  const int64_t row = *ember::quant::row_bytes(type, n_in);
  const int64_t bytes = row * n_out;
  const std::vector<uint8_t> one = random_weight(type, n_out, n_in);
  const int64_t copies = cold ? std::max<int64_t>(1, (kColdBytes + bytes - 1) / bytes) : 1;
  std::vector<uint8_t> weights(static_cast<size_t>(bytes * copies));
  for (int64_t c = 0; c < copies; ++c) std::copy(one.begin(), one.end(), weights.begin() + c * bytes);
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens), 0.5f);
  std::vector<float> y(static_cast<size_t>(n_out * n_tokens));
  ember::cpu::MatmulParams p;
  p.w_type = type;
  p.n_out = n_out;
  p.n_in = n_in;
  p.w_row_bytes = row;
  p.x = x.data();
  p.n_tokens = n_tokens;
  p.y = y.data();
  int64_t c = 0;
  for (auto _ : state) {
    p.w = weights.data() + c * bytes;
    c = (c + 1) % copies;
    ember::cpu::matmul(p, pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["GB/s"] = benchmark::Counter(double(bytes) * 1e-9 * double(state.iterations()),
                                              benchmark::Counter::kIsRate);
  if (n_tokens > 1)
    state.counters["GFLOP/s"] = benchmark::Counter(2e-9 * double(n_out * n_in * n_tokens) *
                                                       double(state.iterations()),
                                                   benchmark::Counter::kIsRate);
}

struct Shape {
  const char* type_name;
  Type type;
  int64_t n_out, n_in;
};

constexpr Shape kShapes[] = {
    {"Q4_1", Type::Q4_1, 576, 576},   {"Q4_1", Type::Q4_1, 1536, 576},
    {"Q4_1", Type::Q4_1, 576, 1536},  {"Q4_1", Type::Q4_1, 49152, 576},
    {"Q8_0", Type::Q8_0, 576, 576},   {"Q8_0", Type::Q8_0, 1536, 576},
    {"Q8_0", Type::Q8_0, 576, 1536},  {"Q8_0", Type::Q8_0, 49152, 576},
    // gemma-3-270m ffn_down (GGUF shape 2048 x 640: K = 2048, N = 640)
    {"Q4_K", Type::Q4_K, 640, 2048},  {"Q6_K", Type::Q6_K, 640, 2048},
};

int register_all() {
  for (const Shape& s : kShapes) {
    for (bool cold : {false, true}) {
      const std::string name = std::string("matmul/") + s.type_name + "/" + std::to_string(s.n_out) +
                               "x" + std::to_string(s.n_in) + (cold ? "/cold" : "/hot");
      benchmark::RegisterBenchmark(name.c_str(), [s, cold](benchmark::State& st) {
        run(st, s.type, s.n_out, s.n_in, cold);
      })->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
    }
  }
  // Prefill: 64 tokens at once (GFLOP/s is the meaningful counter there).
  for (const Shape& s : {kShapes[1], kShapes[5], kShapes[8]}) {
    const std::string name = std::string("matmul_prefill64/") + s.type_name + "/" +
                             std::to_string(s.n_out) + "x" + std::to_string(s.n_in);
    benchmark::RegisterBenchmark(name.c_str(), [s](benchmark::State& st) {
      run(st, s.type, s.n_out, s.n_in, false, 64);
    })->Arg(1)->Arg(2)->ArgName("threads")->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
