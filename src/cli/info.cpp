// ember info: what a model file holds — architecture, size, tensor types, tokenizer
// and chat template. Reads metadata only; works for architectures ember cannot run.
// A Hugging Face directory (or its config.json) is described from config.json, the
// safetensors headers, tokenizer.json and generation_config.json.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <map>
#include <memory>

#include "cli/common.h"
#include "formats/gguf/gguf.h"
#include "formats/hf/config.h"
#include "formats/safetensors/safetensors.h"
#include "model/archs/arch.h"
#include "model/archs/hf.h"
#include "tokenizer/tokenizer.h"

namespace ember::cli {

namespace {

struct InfoOptions {
  std::string path;
  bool tensors = false;
  bool metadata = false;
};

std::string value_summary(const gguf::Value& v) {
  if (const auto* s = v.as_string()) return s->size() > 80 ? fmt::format("\"{}...\" ({} bytes)", s->substr(0, 77), s->size()) : fmt::format("\"{}\"", *s);
  if (const auto* a = v.as_array()) return fmt::format("[{} x {}]", a->items.size(), gguf::value_type_name(a->elem_type));
  if (auto b = v.as_bool()) return *b ? "true" : "false";
  if (v.type == gguf::ValueType::f32 || v.type == gguf::ValueType::f64) return fmt::format("{}", *v.as_float());
  if (auto i = v.as_int()) return fmt::format("{}", *i);
  return "?";
}

void print_model_section(const gguf::File& f) {
  uint64_t n_params = 0, n_bytes = 0;
  std::map<std::string, int> types;
  for (const auto& t : f.tensors()) {
    n_params += uint64_t(t.n_elements);
    n_bytes += t.n_bytes;
    types[std::string(quant::type_name(t.type))]++;
  }
  const std::string* name = f.get_string("general.name");
  const std::string* arch = f.get_string("general.architecture");
  fmt::print("file:          {} (GGUF v{}, {:.1f} MiB)\n", f.name(), f.version(), double(f.file_size()) / (1 << 20));
  fmt::print("name:          {}\n", name ? *name : "(none)");
  fmt::print("architecture:  {}\n", arch ? *arch : "(none)");
  fmt::print("parameters:    {:.1f} M ({} tensors, {:.1f} MiB, {:.2f} bits/weight)\n", n_params / 1e6,
             f.tensors().size(), double(n_bytes) / (1 << 20), n_params ? 8.0 * double(n_bytes) / double(n_params) : 0.0);
  std::string type_list;
  for (const auto& [t, n] : types) type_list += fmt::format("{}{} x{}", type_list.empty() ? "" : ", ", t, n);
  fmt::print("tensor types:  {}\n", type_list);
}

void print_spec(const model::ModelSpec& s) {
  const auto& l0 = s.layers[0];
  int n_sliding = 0;
  for (const auto& l : s.layers) n_sliding += l.window > 0;
  fmt::print("layers:        {} (embd {}, ffn {}, heads {}/{} kv, head_dim {})\n", s.n_layers, s.n_embd, s.n_ff,
             l0.n_heads, l0.n_kv_heads, l0.head_dim);
  fmt::print("context:       {} (trained), vocab {}, rope base {}\n", s.n_ctx_train, s.n_vocab, l0.rope_base);
  if (n_sliding > 0) fmt::print("attention:     {} sliding-window layers (window {})\n", n_sliding, s.layers[0].window);
}

void print_spec_section(const gguf::File& f) {
  auto spec = model::spec_from_gguf(f);
  if (!spec) {
    fmt::print("spec:          not runnable: {}\n", spec.status().message());
    return;
  }
  print_spec(*spec);
}

void print_tokenizer_summary(const tok::Tokenizer& tok, bool has_template, size_t template_bytes) {
  auto piece = [&](int32_t id) { return id < 0 ? std::string("(none)") : fmt::format("{} '{}'", id, tok.token_text(id)); };
  fmt::print("tokenizer:     {} (pre: {}), {} tokens, bos {}, eos {}, add_bos {}\n", tok.model_name(), tok.pre_name(),
             tok.n_vocab(), piece(tok.bos_id()), piece(tok.eos_id()), tok.add_bos());
  fmt::print("chat template: {}\n", has_template ? fmt::format("yes ({} bytes)", template_bytes) : "none");
}

void print_hf_weights(const safetensors::Checkpoint& c, bool list) {
  uint64_t n_params = 0, n_bytes = 0;
  std::map<std::string, int> types;
  const auto names = c.tensor_names();
  for (const auto& name : names) {
    const auto* t = c.find_tensor(name);
    n_params += uint64_t(t->n_elements);
    n_bytes += t->n_bytes;
    types[std::string(safetensors::dtype_name(t->dtype))]++;
  }
  std::string type_list;
  for (const auto& [t, n] : types) type_list += fmt::format("{}{} x{}", type_list.empty() ? "" : ", ", t, n);
  fmt::print("weights:       {} ({} file{}, {:.1f} MiB)\n", c.name(), c.files().size(), c.files().size() == 1 ? "" : "s",
             double(c.n_bytes()) / (1 << 20));
  fmt::print("parameters:    {:.1f} M ({} tensors, {:.1f} MiB)\n", n_params / 1e6, names.size(), double(n_bytes) / (1 << 20));
  fmt::print("tensor types:  {}\n", type_list);
  if (!list) return;
  fmt::print("\ntensors:\n");
  for (const auto& name : names) {
    const auto* t = c.find_tensor(name);
    std::string shape;
    for (int64_t d : t->shape) shape += fmt::format("{}{}", shape.empty() ? "" : ", ", d);
    fmt::print("  {:<56} {:<8} [{}]\n", name, safetensors::dtype_name(t->dtype), shape);
  }
}

void print_generation(const hf::GenerationConfig& g) {
  if (!g.present) return;
  std::string s;
  const auto add = [&](const char* k, const std::string& v) { s += fmt::format("{}{} {}", s.empty() ? "" : ", ", k, v); };
  if (g.do_sample) add("do_sample", *g.do_sample ? "true" : "false");
  if (g.temperature) add("temperature", fmt::format("{}", *g.temperature));
  if (g.top_p) add("top_p", fmt::format("{}", *g.top_p));
  if (g.top_k) add("top_k", fmt::format("{}", *g.top_k));
  if (g.repetition_penalty) add("repetition_penalty", fmt::format("{}", *g.repetition_penalty));
  if (!g.eos_token_ids.empty()) add("eos", fmt::format("{}", fmt::join(g.eos_token_ids, "/")));
  fmt::print("generation:    {}\n", s.empty() ? "(no sampling defaults)" : s);
}

int info_hf(const InfoOptions& o) {
  auto dir = hf::resolve_model_dir(o.path);
  if (!dir) return report(dir.status());
  auto config = hf::read_config(*dir);
  if (!config) return report(config.status());
  fmt::print("directory:     {} (Hugging Face)\n", *dir);
  fmt::print("architecture:  {} (model_type {})\n", config->architecture, config->model_type.empty() ? "?" : config->model_type);
  auto checkpoint = safetensors::Checkpoint::open(*dir);
  if (checkpoint) print_hf_weights(*checkpoint, false);
  else fmt::print("weights:       unusable: {}\n", checkpoint.status().message());
  auto spec = model::spec_from_hf(*config);
  if (spec) print_spec(spec->spec);
  else fmt::print("spec:          not runnable: {}\n", spec.status().message());
  auto source = hf::read_tokenizer_source(*dir);
  auto tok = source ? tok::Tokenizer::from_hf(*source) : Expected<tok::Tokenizer>(source.status());
  if (tok) print_tokenizer_summary(*tok, !source->config.chat_template.empty(), source->config.chat_template.size());
  else fmt::print("tokenizer:     unusable: {}\n", tok.status().message());
  auto generation = hf::read_generation_config(*dir);
  if (generation) print_generation(*generation);
  else fmt::print("generation:    unusable: {}\n", generation.status().message());
  if (o.metadata) fmt::print("\nconfig.json:\n{}\n", config->root.dump(2));
  if (o.tensors && checkpoint) print_hf_weights(*checkpoint, true);
  return kExitOk;
}

void print_tokenizer_section(const gguf::File& f) {
  auto tok = tok::Tokenizer::from_gguf(f);
  if (!tok) {
    fmt::print("tokenizer:     unusable: {}\n", tok.status().message());
    return;
  }
  const std::string* tmpl = f.get_string("tokenizer.chat_template");
  print_tokenizer_summary(*tok, tmpl != nullptr, tmpl ? tmpl->size() : 0);
}

int info(const InfoOptions& o) {
  if (hf::is_model_dir(o.path)) return info_hf(o);
  auto f = gguf::File::open(o.path);
  if (!f) return report(f.status());
  print_model_section(*f);
  print_spec_section(*f);
  print_tokenizer_section(*f);
  if (o.metadata) {
    fmt::print("\nmetadata:\n");
    for (const auto& [key, value] : f->metadata()) fmt::print("  {:<44} {}\n", key, value_summary(value));
  }
  if (o.tensors) {
    fmt::print("\ntensors:\n");
    for (const auto& t : f->tensors())
      fmt::print("  {:<36} {:<6} [{}, {}, {}, {}]\n", t.name, quant::type_name(t.type), t.ne[0], t.ne[1], t.ne[2], t.ne[3]);
  }
  return kExitOk;
}

}  // namespace

void register_info(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "show what a model file holds");
  sub->add_option("-m,--model", o->path, "path to a GGUF model file or a Hugging Face model directory")->required();
  sub->add_flag("--tensors", o->tensors, "list every tensor");
  sub->add_flag("--metadata", o->metadata, "list every metadata key (config.json for a directory)");
  sub->callback([o, &exit_code] { exit_code = info(*o); });
}

}  // namespace ember::cli
