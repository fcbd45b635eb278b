// Interprets tokenizer.json's normalizer, pre_tokenizer and post_processor. Only the
// combinations used by the supported model families are accepted; anything else is an
// `unsupported` error naming the component, so a tokenizer never silently differs.
#include "tokenizer/hf_pipeline.h"

#include <fmt/format.h>

#include <string_view>
#include <vector>

namespace ember::tok {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

// The split regexes of the known byte-level vocabularies, as written in tokenizer.json.
struct KnownPattern {
  std::string_view regex;
  PreTokenizer pre;
  std::string_view name;
};
constexpr KnownPattern kPatterns[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::llama3, "llama3"},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::qwen2, "qwen2"},
    {R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", PreTokenizer::gpt2, "gpt2"},
};

class Reader {
 public:
  Reader(const std::string& file, HfPipeline& p) : file_(file), p_(p) {}

  Status unsupported(std::string_view where, const json& v, std::string_view why = "") const {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 200) s = s.substr(0, 197) + "...";
    return make_error(ErrorKind::unsupported, "{}: {} {} is not supported{}{}", file_, where, s, why.empty() ? "" : ": ",
                      why);
  }

  static std::string type_of(const json& v) {
    return v.is_object() && v.contains("type") && v["type"].is_string() ? v["type"].get<std::string>() : "";
  }

  static bool string_pattern_is(const json& v, std::string_view s) {
    return v.contains("pattern") && v["pattern"].is_object() && v["pattern"].contains("String") &&
           v["pattern"]["String"] == s;
  }

  Status normalizer(const json& n) {
    if (n.is_null()) return {};
    const std::string type = type_of(n);
    if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
      for (const json& item : n["normalizers"]) EMBER_RETURN_IF_ERROR(normalizer(item));
      return {};
    }
    if (type == "Prepend" && n.contains("prepend") && n["prepend"] == kSpaceMark) {
      p_.add_space_prefix = true;
      p_.prefix_each_segment = true;  // normalizers run on each stretch between special tokens
      return {};
    }
    if (type == "Replace" && string_pattern_is(n, " ") && n.contains("content") && n["content"] == kSpaceMark) {
      p_.spm = true;
      return {};
    }
    // NFC leaves text that is already NFC unchanged; ember does not normalize (as on the GGUF path).
    if (type == "NFC") return {};
    return unsupported("normalizer", n);
  }

  Status byte_level(const json& b, bool want_regex) {
    if (b.value("add_prefix_space", false)) return unsupported("pre_tokenizer", b, "add_prefix_space is not supported");
    if (b.value("use_regex", true) != want_regex)
      return unsupported("pre_tokenizer", b, want_regex ? "ByteLevel without its regex needs a Split before it"
                                                        : "ByteLevel after a Split must have use_regex false");
    p_.byte_level = true;
    return {};
  }

  Status metaspace(const json& m) {
    if (m.value("replacement", std::string(kSpaceMark)) != kSpaceMark) return unsupported("pre_tokenizer", m);
    if (m.value("split", false)) return unsupported("pre_tokenizer", m, "Metaspace with split=true");
    std::string scheme = "always";
    if (m.contains("prepend_scheme") && m["prepend_scheme"].is_string()) scheme = m["prepend_scheme"];
    else if (m.contains("add_prefix_space") && m["add_prefix_space"].is_boolean())
      scheme = m["add_prefix_space"].get<bool>() ? "always" : "never";
    if (scheme != "first" && scheme != "always" && scheme != "never")
      return unsupported("pre_tokenizer", m, "unknown prepend_scheme");
    p_.spm = true;
    p_.add_space_prefix = scheme != "never";
    p_.prefix_each_segment = scheme == "always";
    p_.prefix_if_missing = true;
    return {};
  }

  Status split_then_byte_level(const json& split, const json& bl) {
    if (split.value("behavior", "") != "Isolated" || split.value("invert", false))
      return unsupported("pre_tokenizer", split, "only behavior Isolated, invert false");
    const json* regex = split.contains("pattern") && split["pattern"].is_object() && split["pattern"].contains("Regex")
                            ? &split["pattern"]["Regex"] : nullptr;
    if (regex == nullptr || !regex->is_string()) return unsupported("pre_tokenizer", split, "needs a Regex pattern");
    for (const KnownPattern& k : kPatterns) {
      if (*regex != k.regex) continue;
      p_.pre = k.pre;
      p_.pre_name = k.name;
      return byte_level(bl, false);
    }
    return unsupported("pre_tokenizer Split pattern", *regex, "not one of the known llama3 / qwen2 / gpt2 patterns");
  }

  Status pre_tokenizer(const json& pt) {
    if (pt.is_null()) return {};
    const std::string type = type_of(pt);
    if (type == "ByteLevel") {
      p_.pre = PreTokenizer::gpt2;
      p_.pre_name = "gpt2";
      return byte_level(pt, true);
    }
    if (type == "Metaspace") return metaspace(pt);
    // Gemma: after the Replace normalizer there is no " " left, so this split never cuts.
    if (type == "Split" && string_pattern_is(pt, " ") && p_.spm) return {};
    if (type != "Sequence" || !pt.contains("pretokenizers") || !pt["pretokenizers"].is_array())
      return unsupported("pre_tokenizer", pt);
    const json& items = pt["pretokenizers"];
    if (items.size() == 1) return pre_tokenizer(items[0]);
    if (items.size() == 2 && type_of(items[0]) == "Digits" && type_of(items[1]) == "ByteLevel") {
      if (!items[0].value("individual_digits", false)) return unsupported("pre_tokenizer", items[0]);
      p_.pre = PreTokenizer::smollm;
      p_.pre_name = "smollm";
      return byte_level(items[1], true);
    }
    if (items.size() == 2 && type_of(items[0]) == "Split" && type_of(items[1]) == "ByteLevel")
      return split_then_byte_level(items[0], items[1]);
    return unsupported("pre_tokenizer", pt);
  }

  // TemplateProcessing "single": [SpecialToken?, Sequence A, SpecialToken?].
  Status template_processing(const json& t) {
    if (!t.contains("single") || !t["single"].is_array()) return unsupported("post_processor", t);
    const json& single = t["single"];
    bool seen_text = false;
    for (const json& item : single) {
      if (item.contains("Sequence")) {
        seen_text = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id") ||
          !item["SpecialToken"]["id"].is_string())
        return unsupported("post_processor", t);
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      std::optional<std::string>& slot = seen_text ? p_.eos_text : p_.bos_text;
      if (slot) return unsupported("post_processor", t, "more than one special token on a side");
      slot = name;
    }
    return {};
  }

  Status post_processor(const json& pp) {
    if (pp.is_null()) return {};
    const std::string type = type_of(pp);
    if (type == "ByteLevel") return {};  // only adjusts offsets
    if (type == "TemplateProcessing") return template_processing(pp);
    if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
      for (const json& item : pp["processors"]) EMBER_RETURN_IF_ERROR(post_processor(item));
      return {};
    }
    return unsupported("post_processor", pp);
  }

 private:
  const std::string& file_;
  HfPipeline& p_;
};

}  // namespace

Expected<HfPipeline> read_hf_pipeline(const json& doc, const std::string& file) {
  HfPipeline p;
  Reader r(file, p);
  const json null;
  const auto field = [&](const char* key) -> const json& { return doc.contains(key) ? doc[key] : null; };
  EMBER_RETURN_IF_ERROR(r.normalizer(field("normalizer")));
  EMBER_RETURN_IF_ERROR(r.pre_tokenizer(field("pre_tokenizer")));
  EMBER_RETURN_IF_ERROR(r.post_processor(field("post_processor")));
  if (p.byte_level && (p.spm || p.add_space_prefix))
    return make_error(ErrorKind::unsupported, "{}: a ByteLevel pre-tokenizer mixed with U+2581 space handling", file);
  if (!p.byte_level && !p.spm)
    return make_error(ErrorKind::unsupported,
                      "{}: neither a ByteLevel pre-tokenizer nor U+2581 space handling (Replace/Metaspace) was found",
                      file);
  if (p.spm) p.pre_name = "default";
  return p;
}

}  // namespace ember::tok
