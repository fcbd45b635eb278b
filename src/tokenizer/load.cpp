// Tokenizer::from_gguf: reads and validates tokenizer.ggml.* and builds the lookup tables.
#include <algorithm>
#include <limits>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace ember::tok {
namespace {

using Data = Tokenizer::Data;

constexpr std::string_view kPrefix = "tokenizer.ggml.";
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// Token texts treated as end of generation when the vocabulary marks them special.
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<|return|>", "<|call|>", "<｜end▁of▁sentence｜>",
};

std::string key_name(std::string_view key) { return std::string(kPrefix) + std::string(key); }

Status bad(const gguf::File& file, std::string_view key, std::string_view what) {
  return make_error(ErrorKind::invalid_file, "{}: {}{}: {}", file.name(), kPrefix, key, what);
}

const gguf::Array* find_array(const gguf::File& file, std::string_view key, gguf::ValueType elem, Status* error) {
  const gguf::Value* v = file.find(key_name(key));
  if (v == nullptr) return nullptr;
  const gguf::Array* a = v->as_array();
  if (a == nullptr) {
    *error = bad(file, key, fmt::format("expected an array, found {}", gguf::value_type_name(v->type)));
    return nullptr;
  }
  const bool ok = elem == gguf::ValueType::f32
                      ? (a->elem_type == gguf::ValueType::f32 || a->elem_type == gguf::ValueType::f64)
                  : elem == gguf::ValueType::i32 ? a->items.empty() || a->items[0].as_int().has_value()
                                                 : a->elem_type == elem;
  if (!ok) {
    *error = bad(file, key, fmt::format("unexpected element type {}", gguf::value_type_name(a->elem_type)));
    return nullptr;
  }
  return a;
}

Status read_vocab(const gguf::File& file, Data& d) {
  Status error;
  const gguf::Array* tokens = find_array(file, "tokens", gguf::ValueType::string, &error);
  if (!error.ok()) return error;
  if (tokens == nullptr) return make_error(ErrorKind::not_found, "{}: missing {}tokens", file.name(), kPrefix);
  if (tokens->items.empty()) return bad(file, "tokens", "the vocabulary is empty");
  if (tokens->items.size() > size_t(std::numeric_limits<int32_t>::max()))
    return bad(file, "tokens", fmt::format("{} tokens is too many", tokens->items.size()));
  const size_t n = tokens->items.size();
  d.texts.reserve(n);
  for (const gguf::Value& v : tokens->items) d.texts.push_back(*v.as_string());

  d.types.assign(n, TokenType::normal);
  if (const gguf::Array* types = find_array(file, "token_type", gguf::ValueType::i32, &error)) {
    if (types->items.size() != n)
      return bad(file, "token_type", fmt::format("has {} entries but there are {} tokens", types->items.size(), n));
    for (size_t i = 0; i < n; ++i) {
      const std::optional<int64_t> t = types->items[i].as_int();
      if (!t || *t < 0 || *t > 6)
        return bad(file, "token_type", fmt::format("entry {} is {}, not a token type 0..6", i, t ? *t : -1));
      d.types[i] = static_cast<TokenType>(*t);
    }
  }
  if (!error.ok()) return error;

  const gguf::Array* scores = find_array(file, "scores", gguf::ValueType::f32, &error);
  if (!error.ok()) return error;
  if (scores != nullptr && scores->items.size() != n)
    return bad(file, "scores", fmt::format("has {} entries but there are {} tokens", scores->items.size(), n));
  if (d.kind == ModelKind::spm) {
    if (scores == nullptr) return bad(file, "scores", "missing; a \"llama\" vocabulary needs token scores");
    d.spm_priority.resize(n);
    for (size_t i = 0; i < n; ++i) d.spm_priority[i] = float(*scores->items[i].as_float());
  }
  d.index.reserve(n);
  for (size_t i = 0; i < n; ++i) d.index.try_emplace(d.texts[i], int32_t(i));
  return {};
}

Status read_special_id(const gguf::File& file, std::string_view key, const Data& d, int32_t* out) {
  const gguf::Value* v = file.find(key_name(key));
  if (v == nullptr) return {};
  const std::optional<int64_t> id = v->as_int();
  if (!id) return bad(file, key, fmt::format("expected an integer, found {}", gguf::value_type_name(v->type)));
  if (*id < 0 || *id >= int64_t(d.texts.size()))
    return bad(file, key, fmt::format("token id {} is out of range for a vocabulary of {}", *id, d.texts.size()));
  *out = int32_t(*id);
  return {};
}

Status read_flag(const gguf::File& file, std::string_view key, bool* out) {
  const gguf::Value* v = file.find(key_name(key));
  if (v == nullptr) return {};
  const std::optional<bool> b = v->as_bool();
  if (!b) return bad(file, key, fmt::format("expected a bool, found {}", gguf::value_type_name(v->type)));
  *out = *b;
  return {};
}

Status read_specials(const gguf::File& file, Data& d) {
  EMBER_RETURN_IF_ERROR(read_special_id(file, "bos_token_id", d, &d.bos));
  EMBER_RETURN_IF_ERROR(read_special_id(file, "eos_token_id", d, &d.eos));
  EMBER_RETURN_IF_ERROR(read_special_id(file, "unknown_token_id", d, &d.unk));
  EMBER_RETURN_IF_ERROR(read_special_id(file, "padding_token_id", d, &d.pad));
  EMBER_RETURN_IF_ERROR(read_special_id(file, "eot_token_id", d, &d.eot));
  EMBER_RETURN_IF_ERROR(read_special_id(file, "eom_token_id", d, &d.eom));
  int32_t unused = -1;
  for (std::string_view key : {"seperator_token_id", "separator_token_id", "cls_token_id", "mask_token_id"})
    EMBER_RETURN_IF_ERROR(read_special_id(file, key, d, &unused));

  d.add_bos = d.kind == ModelKind::spm && d.bos >= 0;
  d.add_space_prefix = d.kind == ModelKind::spm;
  EMBER_RETURN_IF_ERROR(read_flag(file, "add_bos_token", &d.add_bos));
  EMBER_RETURN_IF_ERROR(read_flag(file, "add_eos_token", &d.add_eos));
  EMBER_RETURN_IF_ERROR(read_flag(file, "add_space_prefix", &d.add_space_prefix));
  if (d.add_bos && d.bos < 0) return bad(file, "add_bos_token", "is true but there is no bos_token_id");
  if (d.add_eos && d.eos < 0) return bad(file, "add_eos_token", "is true but there is no eos_token_id");
  return {};
}

// "<0xNN>" -> NN, or -1.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                        : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

std::string replace_space_marks(std::string_view text) {
  std::string out;
  out.reserve(text.size());
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

// A token of spaces only (Gemma's "  ", "   ", ...).
bool is_space_run(std::string_view text) {
  return text.size() >= 2 && std::all_of(text.begin(), text.end(), [](char c) { return c == ' '; });
}

bool is_special_type(TokenType t) {
  return t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown;
}

}  // namespace

namespace {

// `gemma_style`: Gemma stores runs of spaces as user-defined tokens but its tokenizer merges
// them like ordinary pieces ("▁▁"), and its merge order is the token order (which its
// scores follow for normal tokens). Other SentencePiece vocabularies merge by score.
Status build_spm(const gguf::File& file, Data& d, bool gemma_style) {
  const size_t n = d.texts.size();
  d.byte_tokens.fill(-1);
  d.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = d.texts[i];
    const TokenType type = d.types[i];
    if (type == TokenType::byte) {
      const int byte = parse_byte_token(text);
      if (byte < 0) return bad(file, "tokens", fmt::format("byte token {} is \"{}\", not <0xNN>", i, text));
      if (d.byte_tokens[byte] < 0) d.byte_tokens[byte] = int32_t(i);
      d.pieces[i] = std::string(1, char(byte));
      continue;
    }
    if (type == TokenType::normal || type == TokenType::undefined) {
      d.pieces[i] = replace_space_marks(text);
      d.spm_index.try_emplace(text, int32_t(i));
      continue;
    }
    d.pieces[i] = text;
    if (gemma_style && type == TokenType::user_defined && is_space_run(text)) {
      std::string marks;
      for (size_t k = 0; k < text.size(); ++k) marks += kSpaceMark;
      d.spm_index.try_emplace(marks, int32_t(i));
      d.merged_space_runs = true;  // merged like any piece, never matched in the text
    }
  }
  if (gemma_style)
    for (size_t i = 0; i < n; ++i) d.spm_priority[i] = -float(i);
  return {};
}

Status build_bpe(const gguf::File& file, Data& d) {
  const size_t n = d.texts.size();
  d.pieces.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = d.texts[i];
    if (d.types[i] != TokenType::normal && d.types[i] != TokenType::undefined) {
      d.pieces[i] = text;
      continue;
    }
    std::string& piece = d.pieces[i];
    for (size_t pos = 0; pos < text.size();) {
      const Utf8Char c = decode_utf8(text, pos);
      const int byte = c.valid ? gpt2_code_point_to_byte(c.cp) : -1;
      if (byte >= 0) piece.push_back(char(byte));
      else piece.append(text, pos, c.len);  // not byte-level spelling: keep the text
      pos += c.len;
    }
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, gpt2_byte_to_code_point(uint8_t(b)));
    const auto it = d.index.find(ch);
    d.byte_tokens[b] = it == d.index.end() ? -1 : it->second;
  }
  Status error;
  const gguf::Array* merges = find_array(file, "merges", gguf::ValueType::string, &error);
  if (!error.ok()) return error;
  if (merges == nullptr)
    return make_error(ErrorKind::not_found, "{}: missing {}merges (needed by a \"gpt2\" vocabulary)", file.name(),
                      kPrefix);
  d.bpe_merges.reserve(merges->items.size());
  for (size_t i = 0; i < merges->items.size(); ++i) {
    const std::string& m = *merges->items[i].as_string();
    const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (space == std::string::npos)
      return bad(file, "merges", fmt::format("entry {} \"{}\" is not two tokens separated by a space", i, m));
    const std::string_view left = std::string_view(m).substr(0, space);
    const std::string_view right = std::string_view(m).substr(space + 1);
    const auto l = d.index.find(left);
    const auto r = d.index.find(right);
    const auto merged = d.index.find(std::string(left) + std::string(right));
    if (l == d.index.end() || r == d.index.end() || merged == d.index.end())
      return bad(file, "merges", fmt::format("entry {} \"{}\" uses or makes a token not in the vocabulary", i, m));
    const uint64_t key = (uint64_t(uint32_t(l->second)) << 32) | uint32_t(r->second);
    d.bpe_merges.try_emplace(key, BpeMerge{int32_t(i), merged->second});
  }
  return {};
}

void build_specials(Data& d) {
  const size_t n = d.texts.size();
  for (size_t i = 0; i < n; ++i) {
    if (!is_special_type(d.types[i]) || d.texts[i].empty()) continue;
    if (d.merged_space_runs && is_space_run(d.texts[i])) continue;
    d.specials.add(d.texts[i], int32_t(i));
  }
  d.eog.assign(n, false);
  for (int32_t id : {d.eos, d.eot, d.eom})
    if (id >= 0) d.eog[id] = true;
  for (std::string_view text : kEndOfGenerationTexts) {
    const auto it = d.index.find(text);
    if (it != d.index.end() && is_special_type(d.types[it->second])) d.eog[it->second] = true;
  }
}

}  // namespace

Expected<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  auto d = std::make_shared<Data>();
  const std::string* model = file.get_string(key_name("model"));
  if (model == nullptr) return make_error(ErrorKind::not_found, "{}: missing {}model", file.name(), kPrefix);
  d->model_name = *model;
  if (*model == "llama") {
    d->kind = ModelKind::spm;
  } else if (*model == "gpt2") {
    d->kind = ModelKind::bpe;
  } else {
    return make_error(ErrorKind::unsupported, "{}: {}model \"{}\" is not supported (only \"llama\" and \"gpt2\")",
                      file.name(), kPrefix, *model);
  }
  const std::string* pre = file.get_string(key_name("pre"));
  d->pre_name = pre != nullptr ? *pre : "default";
  if (d->kind == ModelKind::bpe) {
    const std::optional<PreTokenizer> kind = pre_tokenizer_from_name(d->pre_name);
    if (!kind)
      return make_error(ErrorKind::unsupported,
                        "{}: {}pre \"{}\" is not supported (supported: default, gpt2, llama3, llama-bpe, qwen2, "
                        "smollm)",
                        file.name(), kPrefix, d->pre_name);
    d->pre = *kind;
    d->ignore_merges = *kind == PreTokenizer::llama3;
  }
  EMBER_RETURN_IF_ERROR(read_vocab(file, *d));
  EMBER_RETURN_IF_ERROR(read_specials(file, *d));
  if (d->kind == ModelKind::spm) {
    const std::string* arch = file.get_string("general.architecture");
    EMBER_RETURN_IF_ERROR(build_spm(file, *d, arch != nullptr && arch->starts_with("gemma")));
  } else {
    EMBER_RETURN_IF_ERROR(build_bpe(file, *d));
  }
  build_specials(*d);
  return Tokenizer(std::move(d));
}

uint32_t gpt2_byte_to_code_point(uint8_t byte) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? uint32_t(b) : next++;
    }
    return t;
  }();
  return table[byte];
}

int gpt2_code_point_to_byte(uint32_t cp) {
  static const std::array<int16_t, 512> table = [] {
    std::array<int16_t, 512> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[gpt2_byte_to_code_point(uint8_t(b))] = int16_t(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

}  // namespace ember::tok
