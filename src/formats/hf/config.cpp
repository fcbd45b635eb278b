#include "formats/hf/config.h"

#include <filesystem>

#include "core/mapped_file.h"

namespace ember::hf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string join(const std::string& dir, std::string_view file) { return (fs::path(dir) / file).string(); }

// A special token in tokenizer_config.json: "text" or {"content": "text", ...}.
Status read_special_text(const JsonFields& f, std::string_view key, std::optional<std::string>& out) {
  const json* v = f.find(key);
  if (v == nullptr) return {};
  if (v->is_string()) {
    out = v->get<std::string>();
    return {};
  }
  if (v->is_object() && v->contains("content") && (*v)["content"].is_string()) {
    out = (*v)["content"].get<std::string>();
    return {};
  }
  return f.bad(key, fmt::format("is {}, expected a string or an object with a string 'content'", json_summary(*v)));
}

Status read_optional_bool(const JsonFields& f, std::string_view key, std::optional<bool>& out) {
  if (!f.has(key)) return {};
  auto b = f.bool_or(key, false);
  if (!b) return b.status();
  out = *b;
  return {};
}

// chat_template: a string, or a list of {"name", "template"} (the one named "default" wins).
Status read_chat_template(const JsonFields& f, std::string& out) {
  const json* v = f.find("chat_template");
  if (v == nullptr) return {};
  if (v->is_string()) {
    out = v->get<std::string>();
    return {};
  }
  if (!v->is_array()) return f.bad("chat_template", "is neither a string nor a list of {name, template}");
  for (const json& t : *v) {
    if (!t.is_object() || !t.contains("template") || !t["template"].is_string())
      return f.bad("chat_template", fmt::format("entry {} is not an object with a string 'template'", json_summary(t)));
    const bool is_default = t.contains("name") && t["name"] == "default";
    if (out.empty() || is_default) out = t["template"].get<std::string>();
    if (is_default) break;
  }
  return {};
}

}  // namespace

bool is_model_dir(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fs::is_regular_file(fs::path(path) / "config.json", ec);
  return fs::path(path).filename() == "config.json" && fs::is_regular_file(path, ec);
}

Expected<std::string> resolve_model_dir(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (!fs::is_regular_file(fs::path(path) / "config.json", ec))
      return make_error(ErrorKind::not_found, "{}: a model directory needs a config.json", path);
    return path;
  }
  if (fs::path(path).filename() == "config.json" && fs::is_regular_file(path, ec)) {
    const std::string dir = fs::path(path).parent_path().string();
    return dir.empty() ? std::string(".") : dir;
  }
  return make_error(ErrorKind::not_found, "{}: not a model directory or its config.json", path);
}

Expected<Config> read_config(const std::string& dir) {
  Config c;
  c.dir = dir;
  c.path = join(dir, "config.json");
  auto doc = read_json_file(c.path);
  if (!doc) return doc.status();
  if (!doc->is_object()) return make_error(ErrorKind::invalid_file, "{}: not a JSON object", c.path);
  c.root = std::move(*doc);
  const JsonFields root(c.root, c.path);
  const json* archs = root.find("architectures");
  if (archs == nullptr || !archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    return root.bad("architectures", "is missing or not a list of class names");
  c.architecture = (*archs)[0].get<std::string>();
  c.text = c.root;
  if (const json* tc = root.find("text_config")) {
    if (!tc->is_object()) return root.bad("text_config", "is not an object");
    c.text = *tc;
    c.text_prefix = "text_config.";
  }
  auto mt = c.fields().string_or("model_type", "");
  if (!mt) return mt.status();
  c.model_type = *mt;
  return c;
}

Expected<GenerationConfig> parse_generation_config(const json& doc, const std::string& name) {
  if (!doc.is_object()) return make_error(ErrorKind::invalid_file, "{}: not a JSON object", name);
  const JsonFields f(doc, name);
  GenerationConfig g;
  g.present = true;
  const auto opt_float = [&](std::string_view key, double lo, double hi, std::optional<double>& out) -> Status {
    if (!f.has(key)) return {};
    auto v = f.float_or(key, 0, lo, hi);
    if (!v) return v.status();
    out = *v;
    return {};
  };
  const auto opt_int = [&](std::string_view key, int64_t hi, auto& out) -> Status {
    if (!f.has(key)) return {};
    auto v = f.int_or(key, 0, 0, hi);
    if (!v) return v.status();
    out = static_cast<typename std::remove_reference_t<decltype(out)>::value_type>(*v);
    return {};
  };
  EMBER_RETURN_IF_ERROR(read_optional_bool(f, "do_sample", g.do_sample));
  EMBER_RETURN_IF_ERROR(opt_float("temperature", 0.0, 1e6, g.temperature));
  EMBER_RETURN_IF_ERROR(opt_float("top_p", 0.0, 1.0, g.top_p));
  EMBER_RETURN_IF_ERROR(opt_float("min_p", 0.0, 1.0, g.min_p));
  EMBER_RETURN_IF_ERROR(opt_float("repetition_penalty", 0.0, 1e6, g.repetition_penalty));
  EMBER_RETURN_IF_ERROR(opt_int("top_k", INT32_MAX, g.top_k));
  EMBER_RETURN_IF_ERROR(opt_int("max_new_tokens", INT32_MAX, g.max_new_tokens));
  EMBER_RETURN_IF_ERROR(opt_int("max_length", INT32_MAX, g.max_length));
  EMBER_RETURN_IF_ERROR(opt_int("bos_token_id", INT32_MAX, g.bos_token_id));
  EMBER_RETURN_IF_ERROR(opt_int("pad_token_id", INT32_MAX, g.pad_token_id));
  if (const json* eos = f.find("eos_token_id")) {
    const json list = eos->is_array() ? *eos : json::array({*eos});
    for (const json& id : list) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
        return f.bad("eos_token_id", fmt::format("is {}, expected a token id or a list of them", json_summary(*eos)));
      g.eos_token_ids.push_back(int32_t(id.get<int64_t>()));
    }
  }
  return g;
}

Expected<GenerationConfig> read_generation_config(const std::string& dir) {
  const std::string path = join(dir, "generation_config.json");
  auto doc = read_json_file(path);
  if (!doc) return doc.status().kind() == ErrorKind::not_found ? Expected<GenerationConfig>(GenerationConfig{})
                                                               : Expected<GenerationConfig>(doc.status());
  return parse_generation_config(*doc, path);
}

Expected<TokenizerConfig> parse_tokenizer_config(const json& doc, const std::string& name) {
  if (!doc.is_object()) return make_error(ErrorKind::invalid_file, "{}: not a JSON object", name);
  const JsonFields f(doc, name);
  TokenizerConfig c;
  EMBER_RETURN_IF_ERROR(read_special_text(f, "bos_token", c.bos_token));
  EMBER_RETURN_IF_ERROR(read_special_text(f, "eos_token", c.eos_token));
  EMBER_RETURN_IF_ERROR(read_special_text(f, "unk_token", c.unk_token));
  EMBER_RETURN_IF_ERROR(read_special_text(f, "pad_token", c.pad_token));
  EMBER_RETURN_IF_ERROR(read_optional_bool(f, "add_bos_token", c.add_bos_token));
  EMBER_RETURN_IF_ERROR(read_optional_bool(f, "add_eos_token", c.add_eos_token));
  EMBER_RETURN_IF_ERROR(read_chat_template(f, c.chat_template));
  return c;
}

Expected<TokenizerSource> read_tokenizer_source(const std::string& dir) {
  TokenizerSource s;
  s.path = join(dir, "tokenizer.json");
  auto doc = read_json_file(s.path);
  if (!doc) return doc.status();
  s.json = std::move(*doc);
  const std::string config_path = join(dir, "tokenizer_config.json");
  auto config = read_json_file(config_path);
  if (config) {
    auto parsed = parse_tokenizer_config(*config, config_path);
    if (!parsed) return parsed.status();
    s.config = std::move(*parsed);
  } else if (config.status().kind() != ErrorKind::not_found) {
    return config.status();
  }
  // transformers >= 4.43 saves the template next to the config instead of inside it.
  const std::string jinja = join(dir, "chat_template.jinja");
  std::error_code ec;
  if (fs::is_regular_file(jinja, ec)) {
    auto mapped = MappedFile::open(jinja);
    if (!mapped) return mapped.status();
    s.config.chat_template.assign(reinterpret_cast<const char*>(mapped->data()), mapped->size());
  }
  return s;
}

}  // namespace ember::hf
