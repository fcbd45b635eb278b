// Tokenizer::from_hf: builds the same tables as from_gguf from a tokenizer.json (BPE model,
// byte-level or SentencePiece-style with byte_fallback) and tokenizer_config.json.
#include <algorithm>
#include <limits>

#include "formats/hf/config.h"
#include "tokenizer/hf_pipeline.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

using json = nlohmann::json;
using Data = Tokenizer::Data;

constexpr size_t kMaxVocab = size_t(1) << 24;
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<|return|>", "<|call|>", "<｜end▁of▁sentence｜>",
};

struct Ctx {
  const std::string& file;
  Status bad(std::string_view what) const { return make_error(ErrorKind::invalid_file, "{}: {}", file, what); }
};

std::optional<int32_t> as_id(const json& v) {
  if (!v.is_number_integer()) return std::nullopt;
  const int64_t i = v.get<int64_t>();
  if (i < 0 || uint64_t(i) >= kMaxVocab) return std::nullopt;
  return int32_t(i);
}

// model.vocab plus added_tokens -> texts and types (ids may have gaps: those are unused).
Status read_vocab(const Ctx& c, const json& model, const json& added, Data& d) {
  if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
    return c.bad("model.vocab is missing or not a non-empty object of token -> id");
  std::vector<std::pair<int32_t, std::string>> entries;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    const auto id = as_id(it.value());
    if (!id) return c.bad(fmt::format("model.vocab['{}'] = {} is not a token id below {}", it.key(), it.value().dump(), kMaxVocab));
    entries.emplace_back(*id, it.key());
  }
  if (!added.is_null() && !added.is_array()) return c.bad("added_tokens is not a list");
  int32_t max_id = 0;
  for (const auto& [id, text] : entries) max_id = std::max(max_id, id);
  for (const json& a : added.is_array() ? added : json::array()) {
    const auto id = a.is_object() && a.contains("id") ? as_id(a["id"]) : std::nullopt;
    if (!id || !a.contains("content") || !a["content"].is_string())
      return c.bad(fmt::format("added_tokens entry {} needs an id below {} and a string content", a.dump().substr(0, 80), kMaxVocab));
    max_id = std::max(max_id, *id);
  }
  const size_t n = size_t(max_id) + 1;
  d.texts.assign(n, {});
  d.types.assign(n, TokenType::unused);
  std::vector<bool> seen(n, false);
  for (auto& [id, text] : entries) {
    if (seen[id]) return c.bad(fmt::format("model.vocab gives id {} to both '{}' and '{}'", id, d.texts[id], text));
    seen[id] = true;
    d.texts[id] = std::move(text);
    d.types[id] = TokenType::normal;
  }
  for (const json& a : added.is_array() ? added : json::array()) {
    const int32_t id = *as_id(a["id"]);
    const std::string content = a["content"].get<std::string>();
    if (seen[id] && d.texts[id] != content)
      return c.bad(fmt::format("added token {} '{}' differs from the vocabulary's '{}'", id, content, d.texts[id]));
    d.texts[id] = content;
    const bool special = a.contains("special") && a["special"].is_boolean() && a["special"].get<bool>();
    d.types[id] = special ? TokenType::control : TokenType::user_defined;
  }
  d.index.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (d.types[i] != TokenType::unused) d.index.try_emplace(d.texts[i], int32_t(i));
  return {};
}

// merges: "left right" strings or [left, right] pairs.
Status read_merges(const Ctx& c, const json& model, const Data& d,
                   std::vector<std::tuple<int32_t, int32_t, int32_t>>& out) {
  if (!model.contains("merges") || !model["merges"].is_array()) return c.bad("model.merges is missing or not a list");
  const json& merges = model["merges"];
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
      if (space == std::string::npos) return c.bad(fmt::format("model.merges[{}] \"{}\" is not two tokens", i, s));
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return c.bad(fmt::format("model.merges[{}] is neither \"left right\" nor [left, right]", i));
    }
    const auto l = d.index.find(left), r = d.index.find(right), merged = d.index.find(left + right);
    if (l == d.index.end() || r == d.index.end() || merged == d.index.end())
      return c.bad(fmt::format("model.merges[{}] ('{}', '{}') uses or makes a token not in the vocabulary", i, left, right));
    out.emplace_back(l->second, r->second, merged->second);
  }
  return {};
}

int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char ch : text.substr(3, 2)) {
    const int digit = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string replace_space_marks(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kSpaceMark.size()) == kSpaceMark) {
      out.push_back(' ');
      i += kSpaceMark.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

void build_bpe(Data& d, const std::vector<std::tuple<int32_t, int32_t, int32_t>>& merges) {
  const size_t n = d.texts.size();
  d.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (d.types[i] != TokenType::normal) {
      d.pieces[i] = d.texts[i];
      continue;
    }
    const std::string& text = d.texts[i];
    for (size_t pos = 0; pos < text.size();) {
      const Utf8Char ch = decode_utf8(text, pos);
      const int byte = ch.valid ? gpt2_code_point_to_byte(ch.cp) : -1;
      if (byte >= 0) d.pieces[i].push_back(char(byte));
      else d.pieces[i].append(text, pos, ch.len);
      pos += ch.len;
    }
  }
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, gpt2_byte_to_code_point(uint8_t(b)));
    const auto it = d.index.find(s);
    d.byte_tokens[b] = it == d.index.end() ? -1 : it->second;
  }
  d.bpe_merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto [l, r, m] = merges[i];
    d.bpe_merges.try_emplace((uint64_t(uint32_t(l)) << 32) | uint32_t(r), BpeMerge{int32_t(i), m});
  }
}

// SentencePiece-style: merge priority of a token = -(rank of the first merge that makes it).
// Converted SentencePiece vocabularies list every split of every token, ordered by the
// merged token's score, so this is the same order (see docs/hf.md).
Status build_spm(const Ctx& c, Data& d, bool byte_fallback, const std::vector<std::tuple<int32_t, int32_t, int32_t>>& merges) {
  const size_t n = d.texts.size();
  d.byte_tokens.fill(-1);
  d.pieces.resize(n);
  d.spm_priority.assign(n, 0.0f);
  for (size_t i = 0; i < n; ++i) d.spm_priority[i] = -float(merges.size() + i);
  for (size_t i = merges.size(); i-- > 0;) d.spm_priority[std::get<2>(merges[i])] = -float(i);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = d.texts[i];
    const int byte = byte_fallback && d.types[i] == TokenType::normal ? parse_byte_token(text) : -1;
    if (byte >= 0) {
      d.types[i] = TokenType::byte;
      if (d.byte_tokens[byte] < 0) d.byte_tokens[byte] = int32_t(i);
      d.pieces[i] = std::string(1, char(byte));
    } else if (d.types[i] == TokenType::normal) {
      d.pieces[i] = replace_space_marks(text);
      d.spm_index.try_emplace(text, int32_t(i));
    } else {
      d.pieces[i] = text;
    }
  }
  if (byte_fallback && std::count(d.byte_tokens.begin(), d.byte_tokens.end(), -1) == 256)
    return c.bad("model.byte_fallback is true but the vocabulary has no <0xNN> byte tokens");
  return {};
}

Status find_special(const Ctx& c, const Data& d, const std::optional<std::string>& text, std::string_view what, int32_t* out) {
  if (!text) return {};
  const auto it = d.index.find(*text);
  if (it == d.index.end()) return c.bad(fmt::format("{} '{}' is not a token of the vocabulary", what, *text));
  *out = it->second;
  return {};
}

Status read_specials(const Ctx& c, const hf::TokenizerConfig& tc, const HfPipeline& p, const json& model, Data& d) {
  std::optional<std::string> unk = tc.unk_token;
  if (model.contains("unk_token") && model["unk_token"].is_string()) unk = model["unk_token"].get<std::string>();
  EMBER_RETURN_IF_ERROR(find_special(c, d, tc.bos_token, "tokenizer_config bos_token", &d.bos));
  EMBER_RETURN_IF_ERROR(find_special(c, d, tc.eos_token, "tokenizer_config eos_token", &d.eos));
  EMBER_RETURN_IF_ERROR(find_special(c, d, unk, "unk_token", &d.unk));
  EMBER_RETURN_IF_ERROR(find_special(c, d, tc.pad_token, "tokenizer_config pad_token", &d.pad));
  if (d.unk >= 0 && d.types[d.unk] != TokenType::byte) d.types[d.unk] = TokenType::unknown;
  // What the post-processor adds is what Hugging Face adds; add_bos_token/add_eos_token override it.
  d.add_bos = p.bos_text.has_value();
  d.add_eos = p.eos_text.has_value();
  if (p.bos_text) EMBER_RETURN_IF_ERROR(find_special(c, d, p.bos_text, "post_processor token", &d.bos));
  if (p.eos_text && !tc.eos_token) EMBER_RETURN_IF_ERROR(find_special(c, d, p.eos_text, "post_processor token", &d.eos));
  if (tc.add_bos_token) d.add_bos = *tc.add_bos_token;
  if (tc.add_eos_token) d.add_eos = *tc.add_eos_token;
  if (d.add_bos && d.bos < 0) return c.bad("add_bos_token is true but there is no bos_token");
  if (d.add_eos && d.eos < 0) return c.bad("add_eos_token is true but there is no eos_token");
  return {};
}

void build_specials(Data& d) {
  const size_t n = d.texts.size();
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = d.types[i];
    if ((t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) && !d.texts[i].empty())
      d.specials.add(d.texts[i], int32_t(i));
  }
  d.eog.assign(n, false);
  for (int32_t id : {d.eos, d.eot, d.eom})
    if (id >= 0) d.eog[size_t(id)] = true;
  for (std::string_view text : kEndOfGenerationTexts) {
    const auto it = d.index.find(text);
    if (it != d.index.end() && (d.types[it->second] == TokenType::control || d.types[it->second] == TokenType::user_defined))
      d.eog[size_t(it->second)] = true;
  }
}

Status check_model(const Ctx& c, const json& model) {
  if (!model.is_object()) return c.bad("'model' is missing or not an object");
  const std::string type = model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>() : "";
  if (type != "BPE")
    return make_error(ErrorKind::unsupported, "{}: model.type '{}' is not supported (only BPE)", c.file, type);
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0)
    return make_error(ErrorKind::unsupported, "{}: BPE dropout is not supported", c.file);
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      return make_error(ErrorKind::unsupported, "{}: model.{} {} is not supported", c.file, key, model[key].dump());
  return {};
}

Expected<Tokenizer::Data> build(const hf::TokenizerSource& src) {
  const Ctx c{src.path};
  const json& doc = src.json;
  if (!doc.is_object()) return c.bad("not a JSON object");
  const json& model = doc.contains("model") ? doc["model"] : json();
  EMBER_RETURN_IF_ERROR(check_model(c, model));
  auto p = read_hf_pipeline(doc, src.path);
  if (!p) return p.status();
  Data d;
  d.kind = p->byte_level ? ModelKind::bpe : ModelKind::spm;
  d.model_name = p->byte_level ? "gpt2" : "llama";
  d.pre_name = p->pre_name;
  d.pre = p->pre;
  d.add_space_prefix = p->add_space_prefix;
  d.space_prefix_each_segment = p->prefix_each_segment;
  d.space_prefix_if_missing = p->prefix_if_missing;
  d.ignore_merges = model.value("ignore_merges", false);
  EMBER_RETURN_IF_ERROR(read_vocab(c, model, doc.contains("added_tokens") ? doc["added_tokens"] : json(), d));
  std::vector<std::tuple<int32_t, int32_t, int32_t>> merges;
  EMBER_RETURN_IF_ERROR(read_merges(c, model, d, merges));
  if (p->byte_level) build_bpe(d, merges);
  else EMBER_RETURN_IF_ERROR(build_spm(c, d, model.value("byte_fallback", false), merges));
  EMBER_RETURN_IF_ERROR(read_specials(c, src.config, *p, model, d));
  build_specials(d);
  return d;
}

}  // namespace

Expected<Tokenizer> Tokenizer::from_hf(const hf::TokenizerSource& source) {
  try {
    auto d = build(source);
    if (!d) return d.status();
    return Tokenizer(std::make_shared<const Data>(std::move(*d)));
  } catch (const json::exception& e) {  // a field of an unexpected JSON type
    return make_error(ErrorKind::invalid_file, "{}: unexpected value: {}", source.path, e.what());
  }
}

Expected<Tokenizer> Tokenizer::from_hf_dir(const std::string& dir) {
  auto source = hf::read_tokenizer_source(dir);
  if (!source) return source.status();
  return from_hf(*source);
}

}  // namespace ember::tok
