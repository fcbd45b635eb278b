#include "chat/lexer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "chat/error.h"
#include "chat/pystr.h"

namespace ember::chat {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// jinja2 normalises every newline to \n and drops one trailing newline.
std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string rstrip_ws(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0 && is_ws(s[end - 1])) --end;
  return std::string(s.substr(0, end));
}

enum class TagKind { variable, block, comment };

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& opts) : src_(normalize_source(source)), opts_(opts) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      std::size_t start = find_tag(pos_);
      if (start == std::string::npos) {
        emit_text(src_.substr(pos_), pos_);
        break;
      }
      lex_tag(start);
    }
    Token eof{Tok::eof, "", 0, 0};
    set_position(eof, src_.size());
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  std::string src_;
  LexOptions opts_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  bool line_starting_ = true;

  [[noreturn]] void fail(std::size_t at, const std::string& message) {
    Token t{Tok::eof, ""};
    set_position(t, at);
    throw TemplateError(ErrorSource::syntax, message, t.line, t.column);
  }

  void set_position(Token& t, std::size_t at) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    std::size_t line = static_cast<std::size_t>(it - line_starts_.begin());
    t.line = static_cast<int>(line);
    t.column = static_cast<int>(at - line_starts_[line - 1] + 1);
  }

  void push(Tok type, std::string value, std::size_t at) {
    Token t{type, std::move(value)};
    set_position(t, at);
    tokens_.push_back(std::move(t));
  }

  void emit_text(std::string_view text, std::size_t at) {
    if (!text.empty()) push(Tok::text, std::string(text), at);
  }

  std::size_t find_tag(std::size_t from) const {
    for (std::size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // Whitespace rules for the text before a tag.
  std::string strip_before(std::string_view text, TagKind kind, char sign) const {
    if (sign == '-') return rstrip_ws(text);
    if (sign == '+' || !opts_.lstrip_blocks || kind == TagKind::variable) return std::string(text);
    std::size_t line_start = text.rfind('\n');
    line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
    if (line_start == 0 && !line_starting_) return std::string(text);
    std::string_view tail = text.substr(line_start);
    bool blank = !tail.empty() && std::all_of(tail.begin(), tail.end(), [](char c) { return is_ws(c); });
    return std::string(blank ? text.substr(0, line_start) : text);
  }

  // Consumes what follows an end marker; `sign` is the char before it.
  void after_end(std::size_t end, char sign, bool trims) {
    if (sign == '-') {
      while (end < src_.size() && is_ws(src_[end])) ++end;
    } else if (sign != '+' && trims && opts_.trim_blocks && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  void lex_tag(std::size_t start) {
    char c = src_[start + 1];
    TagKind kind = c == '{' ? TagKind::variable : c == '%' ? TagKind::block : TagKind::comment;
    char sign = start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+') ? src_[start + 2] : 0;
    emit_text(strip_before(std::string_view(src_).substr(pos_, start - pos_), kind, sign), pos_);
    std::size_t body = start + 2 + (sign ? 1 : 0);
    if (kind == TagKind::comment) return lex_comment(start, body);
    if (kind == TagKind::block && lex_raw(start, body)) return;
    push(kind == TagKind::block ? Tok::block_begin : Tok::var_begin, "", start);
    lex_expression(body, kind);
  }

  void lex_comment(std::size_t start, std::size_t body) {
    std::size_t close = src_.find("#}", body);
    if (close == std::string::npos) fail(start, "missing end of comment tag");
    char sign = close > body && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    after_end(close + 2, sign, true);
  }

  // {% raw %}...{% endraw %}: the body is text, untouched.
  bool lex_raw(std::size_t start, std::size_t body) {
    std::size_t i = body;
    while (i < src_.size() && is_ws(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0 || (i + 3 < src_.size() && is_name_char(src_[i + 3]))) return false;
    i += 3;
    while (i < src_.size() && is_ws(src_[i])) ++i;
    char sign = i < src_.size() && (src_[i] == '-' || src_[i] == '+') ? src_[i] : 0;
    if (src_.compare(i + (sign ? 1 : 0), 2, "%}") != 0) fail(i, "expected '%}' after 'raw'");
    std::size_t content = i + (sign ? 1 : 0) + 2;
    if (sign == '-') {
      while (content < src_.size() && is_ws(src_[content])) ++content;
    }
    for (std::size_t at = find_tag(content); at != std::string::npos; at = find_tag(at + 1)) {
      if (src_[at + 1] != '%') continue;
      std::size_t j = at + 2;
      char end_sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : 0;
      j += end_sign ? 1 : 0;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_ws(src_[j])) ++j;
      char close_sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j] : 0;
      if (src_.compare(j + (close_sign ? 1 : 0), 2, "%}") != 0) continue;
      std::string_view text = std::string_view(src_).substr(content, at - content);
      emit_text(end_sign == '-' ? rstrip_ws(text) : std::string(text), content);
      after_end(j + (close_sign ? 1 : 0) + 2, close_sign, true);
      return true;
    }
    fail(start, "missing end of raw directive");
  }

  // Matches the end marker of the tag at i; returns its length (0: none) and its sign.
  std::size_t match_end(std::size_t i, TagKind kind, char& sign) const {
    const char* marker = kind == TagKind::block ? "%}" : "}}";
    sign = 0;
    if ((src_[i] == '-' || src_[i] == '+') && src_.compare(i + 1, 2, marker) == 0) {
      sign = src_[i];
      return 3;
    }
    return src_.compare(i, 2, marker) == 0 ? 2 : 0;
  }

  void lex_expression(std::size_t i, TagKind kind) {
    int balance = 0;
    while (true) {
      while (i < src_.size() && is_ws(src_[i])) ++i;
      if (i >= src_.size()) {
        fail(i, kind == TagKind::block ? "unexpected end of template, expected '%}'"
                                       : "unexpected end of template, expected '}}'");
      }
      char sign = 0;
      std::size_t n = balance == 0 ? match_end(i, kind, sign) : 0;
      if (n > 0) {
        push(kind == TagKind::block ? Tok::block_end : Tok::var_end, "", i);
        after_end(i + n, sign, kind == TagKind::block);
        return;
      }
      i = lex_one(i, balance);
    }
  }

  std::size_t lex_one(std::size_t i, int& balance) {
    char c = src_[i];
    if (is_name_start(c)) {
      std::size_t j = i;
      while (j < src_.size() && is_name_char(src_[j])) ++j;
      push(Tok::name, src_.substr(i, j - i), i);
      return j;
    }
    if (is_digit(c)) return lex_number(i);
    if (c == '\'' || c == '"') return lex_string(i);
    static const char* kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "*", "/", "%", "~", "<", ">",
                                 "=",  ".",  ",",  ":",  "|",  "(",  ")", "[", "]", "{", "}", ";"};
    for (const char* op : kOps) {
      std::size_t len = std::char_traits<char>::length(op);
      if (src_.compare(i, len, op) != 0) continue;
      if (c == '(' || c == '[' || c == '{') ++balance;
      if (c == ')' || c == ']' || c == '}') {
        if (balance == 0) fail(i, std::string("unexpected '") + c + "'");
        --balance;
      }
      push(Tok::op, op, i);
      return i + len;
    }
    fail(i, std::string("unexpected char '") + c + "'");
  }

  std::size_t scan_digits(std::size_t j) const {
    while (j < src_.size() && (is_digit(src_[j]) || (src_[j] == '_' && j + 1 < src_.size() && is_digit(src_[j + 1])))) {
      ++j;
    }
    return j;
  }

  std::size_t lex_number(std::size_t i) {
    std::size_t j = scan_digits(i);
    bool is_float = false;
    if (j + 1 < src_.size() && src_[j] == '.' && is_digit(src_[j + 1])) {
      j = scan_digits(j + 1);
      is_float = true;
    }
    if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      std::size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        j = scan_digits(k);
        is_float = true;
      }
    }
    std::string text;
    for (std::size_t k = i; k < j; ++k) {
      if (src_[k] != '_') text.push_back(src_[k]);
    }
    Token t{is_float ? Tok::floating : Tok::integer, text};
    set_position(t, i);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) fail(i, "integer literal too large: " + text);
    }
    tokens_.push_back(std::move(t));
    return j;
  }

  std::size_t lex_string(std::size_t i) {
    char quote = src_[i];
    std::string value;
    std::size_t j = i + 1;
    while (true) {
      if (j >= src_.size()) fail(i, "unterminated string");
      char c = src_[j];
      if (c == quote) break;
      if (c != '\\' || j + 1 >= src_.size()) {
        value.push_back(c);
        ++j;
        continue;
      }
      j = decode_escape(j, value);
    }
    push(Tok::string, std::move(value), i);
    return j + 1;
  }

  // Python's unicode-escape rules; unknown escapes stay as written.
  std::size_t decode_escape(std::size_t j, std::string& value) {
    char e = src_[j + 1];
    switch (e) {
      case 'n': value.push_back('\n'); return j + 2;
      case 't': value.push_back('\t'); return j + 2;
      case 'r': value.push_back('\r'); return j + 2;
      case '\\': value.push_back('\\'); return j + 2;
      case '\'': value.push_back('\''); return j + 2;
      case '"': value.push_back('"'); return j + 2;
      case 'a': value.push_back('\a'); return j + 2;
      case 'b': value.push_back('\b'); return j + 2;
      case 'f': value.push_back('\f'); return j + 2;
      case 'v': value.push_back('\v'); return j + 2;
      case '\n': return j + 2;
      default: break;
    }
    int hex_digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (hex_digits > 0) {
      std::string hex = src_.substr(j + 2, static_cast<std::size_t>(hex_digits));
      if (hex.size() != static_cast<std::size_t>(hex_digits) ||
          !std::all_of(hex.begin(), hex.end(), [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); })) {
        fail(j, "truncated \\" + std::string(1, e) + " escape in string");
      }
      auto cp = static_cast<char32_t>(std::strtoul(hex.c_str(), nullptr, 16));
      if (cp > 0x10ffff) fail(j, "illegal Unicode character in string");
      pystr::append_utf8(value, cp);
      return j + 2 + static_cast<std::size_t>(hex_digits);
    }
    if (e >= '0' && e <= '7') {
      std::size_t k = j + 1;
      char32_t cp = 0;
      while (k < src_.size() && k < j + 4 && src_[k] >= '0' && src_[k] <= '7') cp = cp * 8 + (src_[k++] - '0');
      pystr::append_utf8(value, cp);
      return k;
    }
    value.push_back('\\');
    return j + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& opts) { return Lexer(source, opts).run(); }

}  // namespace ember::chat
