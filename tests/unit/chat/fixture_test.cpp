// Acceptance test: every (template, context) pair in tests/fixtures/templates/cases.json,
// rendered by Python jinja2 configured like transformers (scripts/make_template_fixtures.py),
// must render byte for byte the same with ember's engine.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "chat/template.h"

namespace ember::chat {
namespace {

using Json = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixtures_dir() { return std::string(EMBER_SOURCE_DIR) + "/tests/fixtures/templates/"; }

// 2024-07-26 10:30:00, a Friday: the date the fixture script gives strftime_now.
std::tm fixed_now() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 10;
  t.tm_min = 30;
  t.tm_wday = 5;
  t.tm_yday = 207;
  return t;
}

// First differing byte, with some context, for a readable failure.
std::string first_difference(const std::string& want, const std::string& got) {
  std::size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  std::size_t from = i > 40 ? i - 40 : 0;
  return "at byte " + std::to_string(i) + "\n  want: " + Json(want.substr(from, 100)).dump() +
         "\n  got:  " + Json(got.substr(from, 100)).dump();
}

struct Outcome {
  int matched = 0;
  int total = 0;
};

// Checks one case; returns true when ember agrees with jinja2.
bool check_case(const Template& tmpl, const Json& c, std::string& why) {
  auto out = tmpl.render(c["context"]);
  if (c.contains("expected")) {
    if (!out.ok()) {
      why = "render failed: " + out.status().message();
      return false;
    }
    const std::string want = c["expected"].get<std::string>();
    if (*out != want) {
      why = first_difference(want, *out);
      return false;
    }
    return true;
  }
  if (out.ok()) {
    why = "expected an error (" + c["error"].get<std::string>() + "), got output " + Json(*out).dump();
    return false;
  }
  if (c["raised"].get<bool>() && out.status().message() != c["error"].get<std::string>()) {
    why = "raise_exception message differs: want " + c["error"].dump() + ", got " + Json(out.status().message()).dump();
    return false;
  }
  return true;
}

Json load_cases() {
  std::string text = read_file(fixtures_dir() + "cases.json");
  return Json::parse(text);
}

TEST(ChatFixtures, TemplatesMatchJinja2ByteForByte) {
  Json all = load_cases();
  TemplateOptions opts;
  opts.fixed_now = fixed_now();
  std::map<std::string, Template> templates;
  Outcome outcome;
  for (const Json& c : all["cases"]) {
    std::string file = c["template"].get<std::string>();
    if (!templates.count(file)) {
      auto t = Template::parse(read_file(fixtures_dir() + file), opts);
      ASSERT_TRUE(t.ok()) << file << ": " << t.status().message();
      templates.emplace(file, std::move(*t));
    }
    std::string why;
    ++outcome.total;
    if (check_case(templates.at(file), c, why)) {
      ++outcome.matched;
    } else {
      ADD_FAILURE() << c["name"].get<std::string>() << ": " << why;
    }
  }
  std::cout << "[fixtures] " << outcome.matched << "/" << outcome.total << " template cases match jinja2\n";
  EXPECT_GT(outcome.total, 400);
}

TEST(ChatFixtures, SnippetsMatchJinja2) {
  Json all = load_cases();
  TemplateOptions opts;
  opts.fixed_now = fixed_now();
  Outcome outcome;
  for (const Json& c : all["snippets"]) {
    ++outcome.total;
    auto t = Template::parse(c["source"].get<std::string>(), opts);
    if (!t.ok()) {
      ADD_FAILURE() << c["name"].get<std::string>() << " parse: " << t.status().message() << "\n  "
                    << c["source"].dump();
      continue;
    }
    std::string why;
    if (check_case(*t, c, why)) {
      ++outcome.matched;
    } else {
      ADD_FAILURE() << c["name"].get<std::string>() << ": " << why << "\n  source: " << c["source"].dump();
    }
  }
  std::cout << "[fixtures] " << outcome.matched << "/" << outcome.total << " snippets match jinja2\n";
}

}  // namespace
}  // namespace ember::chat
