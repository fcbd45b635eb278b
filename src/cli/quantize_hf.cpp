// ember quantize: the non-tensor files of the output directory (quantize.h).
//   config.json: the input's (Hugging Face directory) or synthesized from the GGUF spec
//     with transformers' key names (LlamaForCausalLM, Gemma3ForCausalLM).
//   tokenizer.json + tokenizer_config.json + generation_config.json: copied, or built from
//     the GGUF vocabulary (byte-level BPE with its merges; SentencePiece vocabularies get
//     every split of every piece as a merge, ordered by the piece's score - the same
//     conversion transformers' SentencePiece extractor does).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/quantize.h"
#include "formats/hf/config.h"
#include "tokenizer/unicode.h"

namespace ember::cli::quantize {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// A float from the GGUF as the shortest decimal that reads back as the same float
// (1e-06, not 9.999999974752427e-07).
double clean(float v) { return std::stod(fmt::format("{}", v)); }

json null_if_zero(float v) { return v == 0.0f ? json(nullptr) : json(clean(v)); }

json rope_scaling(float scale) {
  if (scale == 1.0f) return nullptr;
  return {{"rope_type", "linear"}, {"factor", 1.0 / double(scale)}};
}

void add_token_ids(json& c, const tok::Tokenizer& t) {
  if (t.bos_id() >= 0) c["bos_token_id"] = t.bos_id();
  if (t.eos_id() >= 0) c["eos_token_id"] = t.eos_id();
  if (t.pad_id() >= 0) c["pad_token_id"] = t.pad_id();
}

Expected<json> llama_config(const model::Model& m) {
  const model::ModelSpec& s = m.spec;
  const model::LayerSpec& l0 = s.layers[0];
  for (const model::LayerSpec& l : s.layers)
    if (l.window != 0 || l.n_heads != l0.n_heads || l.n_kv_heads != l0.n_kv_heads || l.head_dim != l0.head_dim)
      return make_error(ErrorKind::unsupported, "quantize: {} has per-layer attention shapes or sliding windows, which "
                        "the synthesized LlamaForCausalLM config cannot express", s.arch);
  if (s.qk_norm || s.post_norms || s.embed_scale || s.final_softcap != 0 || s.attn_softcap != 0)
    return make_error(ErrorKind::unsupported, "quantize: GGUF architecture '{}' is not a plain Llama", s.arch);
  json c = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", s.n_embd},
            {"intermediate_size", s.n_ff}, {"num_hidden_layers", s.n_layers}, {"num_attention_heads", l0.n_heads},
            {"num_key_value_heads", l0.n_kv_heads}, {"head_dim", l0.head_dim}, {"hidden_act", "silu"},
            {"rms_norm_eps", clean(s.norm_eps)}, {"rope_theta", clean(l0.rope_base)}, {"rope_scaling", rope_scaling(l0.rope_scale)},
            {"max_position_embeddings", s.n_ctx_train > 0 ? s.n_ctx_train : 4096}, {"vocab_size", s.n_vocab},
            {"tie_word_embeddings", m.weights.output.data == m.weights.token_embd.data},
            {"attention_bias", false}, {"mlp_bias", false}, {"torch_dtype", "bfloat16"}};
  add_token_ids(c, m.tokenizer);
  return c;
}

// transformers types query_pre_attn_scalar as an int (256 for the released sizes).
json query_pre_attn_scalar(double attn_scale) {
  const double v = 1.0 / (attn_scale * attn_scale);
  const double rounded = std::round(v);
  if (std::fabs(v - rounded) < 1e-3 * rounded) return int64_t(rounded);
  return v;
}

Expected<json> gemma3_config(const model::Model& m) {
  const model::ModelSpec& s = m.spec;
  const model::LayerSpec& l0 = s.layers[0];
  json layer_types = json::array();
  int window = 0;
  float local_base = 10000.0f, global_base = 0.0f, global_scale = 1.0f;
  for (const model::LayerSpec& l : s.layers) {
    if (l.n_heads != l0.n_heads || l.n_kv_heads != l0.n_kv_heads || l.head_dim != l0.head_dim)
      return make_error(ErrorKind::unsupported, "quantize: gemma3 with per-layer head shapes is not supported");
    layer_types.push_back(l.window > 0 ? "sliding_attention" : "full_attention");
    if (l.window > 0) {
      window = l.window;
      local_base = l.rope_base;
    } else {
      global_base = l.rope_base;
      global_scale = l.rope_scale;
    }
  }
  if (global_base == 0.0f) global_base = l0.rope_base;
  const double attn_scale = s.attn_scale > 0 ? s.attn_scale : 1.0 / std::sqrt(double(l0.head_dim));
  json c = {{"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"}, {"hidden_size", s.n_embd},
            {"intermediate_size", s.n_ff}, {"num_hidden_layers", s.n_layers}, {"num_attention_heads", l0.n_heads},
            {"num_key_value_heads", l0.n_kv_heads}, {"head_dim", l0.head_dim},
            {"hidden_activation", "gelu_pytorch_tanh"}, {"rms_norm_eps", clean(s.norm_eps)}, {"rope_theta", clean(global_base)},
            {"rope_local_base_freq", clean(local_base)}, {"rope_scaling", rope_scaling(global_scale)},
            {"sliding_window", window}, {"layer_types", layer_types},
            {"query_pre_attn_scalar", query_pre_attn_scalar(attn_scale)},
            {"final_logit_softcapping", null_if_zero(s.final_softcap)},
            {"attn_logit_softcapping", null_if_zero(s.attn_softcap)},
            {"max_position_embeddings", s.n_ctx_train > 0 ? s.n_ctx_train : 32768}, {"vocab_size", s.n_vocab},
            {"tie_word_embeddings", m.weights.output.data == m.weights.token_embd.data}, {"torch_dtype", "bfloat16"}};
  add_token_ids(c, m.tokenizer);
  return c;
}

template <class Json>
Status write_json(const fs::path& path, const Json& j) {
  std::ofstream f(path, std::ios::binary);
  f << j.dump(2) << "\n";
  if (!f) return make_error(ErrorKind::io, "{}: write failed", path.string());
  return {};
}

// GGUF gpt2 pre-tokenizer names -> the tokenizer.json pre_tokenizer ember reads back.
Expected<json> byte_level_pre_tokenizer(std::string_view pre) {
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", true}};
  if (pre == "gpt2" || pre == "default") return byte_level;
  if (pre == "smollm")
    return json{{"type", "Sequence"},
                {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
  std::string regex;
  if (pre == "llama-bpe" || pre == "llama3")
    regex = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  else if (pre == "qwen2")
    regex = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  else
    return make_error(ErrorKind::unsupported, "quantize: GGUF tokenizer.ggml.pre '{}' has no tokenizer.json equivalent "
                      "here (gpt2, smollm, llama-bpe, qwen2)", pre);
  json no_regex = byte_level;
  no_regex["use_regex"] = false;
  return json{{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                no_regex}}};
}

// Every split of every normal piece into two normal pieces, ordered by the piece's score.
std::vector<std::string> spm_merges(const tok::Tokenizer& t, const gguf::Array* scores) {
  std::unordered_map<std::string_view, int32_t> normal;
  for (int32_t id = 0; id < t.n_vocab(); ++id)
    if (t.token_type(id) == tok::TokenType::normal) normal.emplace(t.token_text(id), id);
  std::vector<std::tuple<float, int32_t, size_t>> order;  // (-score, id, split byte)
  for (const auto& [text, id] : normal) {
    const float score = scores && size_t(id) < scores->items.size() ? float(*scores->items[size_t(id)].as_float()) : 0.0f;
    for (size_t pos = 0; pos < text.size();) {
      pos += tok::decode_utf8(text, pos).len;
      if (pos >= text.size()) break;
      if (normal.count(text.substr(0, pos)) && normal.count(text.substr(pos))) order.emplace_back(-score, id, pos);
    }
  }
  std::sort(order.begin(), order.end());
  std::vector<std::string> merges;
  merges.reserve(order.size());
  for (const auto& [neg_score, id, pos] : order) {
    const std::string& text = t.token_text(id);
    merges.push_back(text.substr(0, pos) + " " + text.substr(pos));
  }
  return merges;
}

// nlohmann::json (std::map objects): ordered_json's inserts are linear, quadratic for 262k tokens.
Expected<nlohmann::json> tokenizer_json(const model::Model& m) {
  using json = nlohmann::json;
  const tok::Tokenizer& t = m.tokenizer;
  json vocab = json::object(), added = json::array();
  for (int32_t id = 0; id < t.n_vocab(); ++id) {
    const tok::TokenType type = t.token_type(id);
    auto [it, inserted] = vocab.emplace(t.token_text(id), id);
    if (!inserted)
      return make_error(ErrorKind::unsupported, "quantize: token text '{}' appears twice in the GGUF vocabulary (ids {} "
                        "and {}); tokenizer.json cannot hold that", t.token_text(id), it.value().dump(), id);
    if (type == tok::TokenType::control || type == tok::TokenType::user_defined || type == tok::TokenType::unknown)
      added.push_back({{"id", id}, {"content", t.token_text(id)}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", type != tok::TokenType::user_defined}});
  }
  json model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab}};
  json doc = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  if (t.model_name() == "gpt2") {
    std::vector<std::string> merges;
    if (const gguf::Array* a = m.file.get_array("tokenizer.ggml.merges"))
      for (const gguf::Value& v : a->items)
        if (const std::string* s = v.as_string()) merges.push_back(*s);
    model["merges"] = merges;
    auto pre = byte_level_pre_tokenizer(t.pre_name());
    if (!pre) return pre.status();
    doc["normalizer"] = nullptr;
    doc["pre_tokenizer"] = *pre;
    doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  } else if (t.model_name() == "llama") {
    model["merges"] = spm_merges(t, m.file.get_array("tokenizer.ggml.scores"));
    model["byte_fallback"] = t.find_token("<0x00>").has_value();
    model["fuse_unk"] = true;
    if (t.unk_id() >= 0) model["unk_token"] = t.token_text(t.unk_id());
    json norms = json::array();
    if (t.add_space_prefix()) norms.push_back({{"type", "Prepend"}, {"prepend", kSpaceMark}});
    norms.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpaceMark}});
    doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", norms}};
    doc["pre_tokenizer"] = nullptr;
    doc["decoder"] = {{"type", "Sequence"},
                      {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", kSpaceMark}}}, {"content", " "}},
                                    {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}};
  } else {
    return make_error(ErrorKind::unsupported, "quantize: GGUF tokenizer model '{}' cannot be written as tokenizer.json",
                      t.model_name());
  }
  // TemplateProcessing as transformers writes it (tokenizers refuses a null pair or a
  // special token missing from special_tokens).
  json single = json::array(), pair = json::array(), specials = json::object();
  const auto special = [&](int32_t id) {
    const std::string& text = t.token_text(id);
    specials[text] = {{"id", text}, {"ids", {id}}, {"tokens", {text}}};
    return json{{"SpecialToken", {{"id", text}, {"type_id", 0}}}};
  };
  const bool bos = t.add_bos() && t.bos_id() >= 0, eos = t.add_eos() && t.eos_id() >= 0;
  if (bos) single.push_back(special(t.bos_id()));
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (eos) single.push_back(special(t.eos_id()));
  pair = single;
  if (bos) pair.push_back(special(t.bos_id()));
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  if (eos) pair.push_back(special(t.eos_id()));
  doc["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair},
                           {"special_tokens", specials}};
  doc["model"] = model;
  return doc;
}

json tokenizer_config_json(const model::Model& m) {
  const tok::Tokenizer& t = m.tokenizer;
  const auto text_or_null = [&](int32_t id) { return id >= 0 ? json(t.token_text(id)) : json(nullptr); };
  json c = {{"bos_token", text_or_null(t.bos_id())}, {"eos_token", text_or_null(t.eos_id())},
            {"unk_token", text_or_null(t.unk_id())}, {"pad_token", text_or_null(t.pad_id())},
            {"add_bos_token", t.add_bos()}, {"add_eos_token", t.add_eos()},
            {"clean_up_tokenization_spaces", false}, {"tokenizer_class", "PreTrainedTokenizerFast"}};
  if (!m.chat_template.empty()) c["chat_template"] = m.chat_template;
  return c;
}

}  // namespace

Expected<json> make_config(const model::Model& m, const std::string& in_path) {
  if (hf::is_model_dir(in_path)) {
    auto dir = hf::resolve_model_dir(in_path);
    if (!dir) return dir.status();
    auto cfg = hf::read_config(*dir);
    if (!cfg) return cfg.status();
    if (cfg->text_prefix != "")
      return make_error(ErrorKind::unsupported, "quantize: {} is a multimodal model ({}); only text models are written",
                        cfg->path, cfg->architecture);
    json c = json::parse(cfg->root.dump());
    c.erase("quantization_config");
    c["torch_dtype"] = "bfloat16";
    return c;
  }
  if (m.spec.arch == "llama") return llama_config(m);
  if (m.spec.arch == "gemma3") return gemma3_config(m);
  return make_error(ErrorKind::unsupported, "quantize: GGUF architecture '{}' has no config.json synthesis yet "
                    "(llama, gemma3)", m.spec.arch);
}

json quantization_config(Scheme scheme, const std::vector<std::string>& ignore) {
  const bool nv = scheme == Scheme::nvfp4;
  const std::string format = nv ? "nvfp4-pack-quantized" : "mxfp4-pack-quantized";
  json weights = {{"num_bits", 4}, {"type", "float"}, {"symmetric", true}, {"group_size", nv ? 16 : 32},
                  {"strategy", nv ? "tensor_group" : "group"}, {"dynamic", false}, {"actorder", nullptr},
                  {"scale_dtype", nv ? "torch.float8_e4m3fn" : "torch.uint8"}, {"observer", "minmax"}};
  json group = {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", nullptr},
                {"output_activations", nullptr}, {"format", format}};
  return {{"quant_method", "compressed-tensors"}, {"format", format}, {"quantization_status", "compressed"},
          {"config_groups", {{"group_0", group}}}, {"ignore", ignore}, {"kv_cache_scheme", nullptr},
          {"sparsity_config", json::object()}, {"global_compression_ratio", nullptr}};
}

Status write_tokenizer_files(const model::Model& m, const std::string& in_path, const std::string& out_dir) {
  const fs::path out(out_dir);
  if (hf::is_model_dir(in_path)) {
    auto dir = hf::resolve_model_dir(in_path);
    if (!dir) return dir.status();
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja",
                             "special_tokens_map.json", "chat_template.json"}) {
      std::error_code ec;
      const fs::path src = fs::path(*dir) / name;
      if (!fs::exists(src, ec)) continue;
      fs::copy_file(src, out / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return make_error(ErrorKind::io, "quantize: cannot copy {}: {}", src.string(), ec.message());
    }
    return {};
  }
  auto tj = tokenizer_json(m);
  if (!tj) return tj.status();
  EMBER_RETURN_IF_ERROR(write_json(out / "tokenizer.json", *tj));
  EMBER_RETURN_IF_ERROR(write_json(out / "tokenizer_config.json", tokenizer_config_json(m)));
  json gen = json::object();
  add_token_ids(gen, m.tokenizer);
  return write_json(out / "generation_config.json", gen);
}

}  // namespace ember::cli::quantize
