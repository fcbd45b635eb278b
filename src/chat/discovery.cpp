// Chat template discovery: GGUF metadata, Hugging Face files, an override (discovery.h).
#include "chat/discovery.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace ember::chat {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kGgufKey = "tokenizer.chat_template";
constexpr std::uintmax_t kMaxTemplateBytes = 4u << 20;   // a template file
constexpr std::uintmax_t kMaxConfigBytes = 256u << 20;   // tokenizer_config.json (large vocabularies)

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

Expected<std::string> read_file(const fs::path& p, std::uintmax_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec) return make_error(ErrorKind::not_found, "{}: cannot open ({})", p.string(), ec.message());
  if (size > max_bytes)
    return make_error(ErrorKind::invalid_file, "{}: {} bytes, more than the {} a chat template file may have",
                      p.string(), size, max_bytes);
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(ErrorKind::io, "{}: cannot read", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The folder the Hugging Face files live in: the directory itself, or the folder of a
// .gguf / config.json path.
fs::path model_dir(const std::string& model_path) {
  if (model_path.empty()) return {};
  std::error_code ec;
  const fs::path p(model_path);
  if (fs::is_directory(p, ec)) return p;
  return p.has_parent_path() ? p.parent_path() : fs::path(".");
}

bool is_gguf_path(const TemplateQuery& q) {
  std::error_code ec;
  return q.gguf != nullptr || (!q.model_path.empty() && !fs::is_directory(q.model_path, ec) &&
                               fs::path(q.model_path).extension() == ".gguf");
}

// Named templates from a JSON "chat_template" value: a string is "default"; a list holds
// {"name", "template"} entries.
Status named_from_json(const Json& v, const std::string& file, std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_null()) return {};
  if (v.is_string()) {
    out.emplace_back("default", v.get<std::string>());
    return {};
  }
  if (!v.is_array()) return make_error(ErrorKind::invalid_file, "{}: chat_template is neither a string nor a list", file);
  for (const auto& e : v) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
        !e["template"].is_string())
      return make_error(ErrorKind::invalid_file, "{}: chat_template entry {} is not {{\"name\", \"template\"}}", file,
                        e.dump(-1, ' ', false, Json::error_handler_t::replace).substr(0, 80));
    out.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
  }
  return {};
}

// chat_template of a JSON file (tokenizer_config.json, chat_template.json); absent is fine.
Status read_json_templates(const fs::path& p, std::vector<std::pair<std::string, std::string>>& out) {
  if (!is_file(p)) return {};
  auto text = read_file(p, kMaxConfigBytes);
  if (!text) return text.status();
  const Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(ErrorKind::invalid_file, "{}: not a JSON object", p.string());
  if (!j.contains("chat_template")) return {};
  return named_from_json(j["chat_template"], p.string(), out);
}

// Every named template the model ships, in source order; the origin goes with each.
struct Named {
  std::string name, source, origin;
};

Expected<std::vector<Named>> all_named(const TemplateQuery& q) {
  std::vector<Named> out;
  if (q.gguf) {
    if (const std::string* t = q.gguf->get_string(kGgufKey)) out.push_back({"default", *t, std::string(kGgufKey)});
    const std::string prefix = std::string(kGgufKey) + ".";
    for (const auto& [key, value] : q.gguf->metadata())
      if (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0)
        if (const std::string* t = value.as_string()) out.push_back({key.substr(prefix.size()), *t, key});
  }
  const fs::path dir = model_dir(q.model_path);
  if (!is_gguf_path(q) && !dir.empty()) {
    for (const char* file : {"tokenizer_config.json", "chat_template.json"}) {
      std::vector<std::pair<std::string, std::string>> named;
      EMBER_RETURN_IF_ERROR(read_json_templates(dir / file, named));
      for (auto& [name, source] : named) out.push_back({name, std::move(source), (dir / file).string()});
    }
    std::error_code ec;
    const fs::path extra = dir / "additional_chat_templates";
    if (fs::is_directory(extra, ec))
      for (const auto& e : fs::directory_iterator(extra, ec))
        if (e.path().extension() == ".jinja" && is_file(e.path())) {
          auto text = read_file(e.path(), kMaxTemplateBytes);
          if (!text) return text.status();
          out.push_back({e.path().stem().string(), std::move(*text), e.path().string()});
        }
  }
  if (!dir.empty() && is_file(dir / "chat_template.jinja")) {
    auto text = read_file(dir / "chat_template.jinja", kMaxTemplateBytes);
    if (!text) return text.status();
    out.push_back({"default", std::move(*text), (dir / "chat_template.jinja").string()});
  }
  return out;
}

std::optional<Named> find_named(const std::vector<Named>& all, std::string_view name) {
  for (const auto& n : all)
    if (n.name == name) return n;
  return std::nullopt;
}

}  // namespace

const std::string& chatml_template() {
  static const std::string source =
      "{%- for message in messages -%}\n"
      "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
      "{%- if message['content'] is string -%}{{- message['content'] -}}\n"
      "{%- elif message['content'] is not none -%}"
      "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}\n"
      "{%- endif -%}\n"
      "{{- '<|im_end|>\\n' -}}\n"
      "{%- endfor -%}\n"
      "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";
  return source;
}

Expected<std::vector<std::string>> chat_template_names(const TemplateQuery& query) {
  auto all = all_named(query);
  if (!all) return all.status();
  std::vector<std::string> names;
  for (const auto& n : *all)
    if (std::find(names.begin(), names.end(), n.name) == names.end()) names.push_back(n.name);
  return names;
}

Expected<FoundTemplate> find_chat_template(const TemplateQuery& query) {
  auto all = all_named(query);
  if (!all) return all.status();
  if (!query.override_spec.empty()) {
    if (is_file(query.override_spec)) {
      auto text = read_file(query.override_spec, kMaxTemplateBytes);
      if (!text) return text.status();
      return FoundTemplate{std::move(*text), query.override_spec, false};
    }
    if (auto n = find_named(*all, query.override_spec)) return FoundTemplate{n->source, n->origin, false};
    if (query.override_spec == "chatml") return FoundTemplate{chatml_template(), "built-in ChatML", false};
    std::string names;
    for (const auto& n : *all) names += (names.empty() ? "" : ", ") + n.name;
    return make_error(ErrorKind::not_found,
                      "chat template '{}' is neither a readable file nor a template name of this model (names: {})",
                      query.override_spec, names.empty() ? "none; built-in: chatml" : names + "; built-in: chatml");
  }
  if (auto n = find_named(*all, "default")) return FoundTemplate{n->source, n->origin, false};
  return FoundTemplate{chatml_template(), "built-in ChatML", true};
}

}  // namespace ember::chat
