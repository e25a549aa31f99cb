#pragma once
// A small, strict JSON reader and writer for checkpoint headers (RFC 8259, plus Python's Infinity,
// -Infinity and NaN where asked): duplicate keys, bad UTF-8, deep nesting and trailing bytes are errors.
// Every error is a ckpt::Bad, which the loaders turn into a CheckpointError naming the file.

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fastoptim {
namespace ckpt {

inline constexpr int kMaxDepth = 64;
// Values in one document: a parsed value costs ~100 bytes, so a header of tiny values ("0,") would take
// ~50 times its size; this bounds a hostile one to a few hundred MB (real headers hold thousands).
inline constexpr std::size_t kMaxValues = std::size_t(1) << 22;

struct Bad : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ------------------------------------------------------------------------------------------ tiny JSON

struct Json {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool boolean = false;
  double number = 0;
  bool is_int = false;  // a number written without '.', 'e' or 'E' that fits in int64
  std::int64_t integer = 0;
  std::string str;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* get(const std::string& key) const {
    for (const auto& m : members)
      if (m.first == key) return &m.second;
    return nullptr;
  }
};

class JsonParser {
 public:
  JsonParser(const char* p, std::size_t n, bool allow_nan, std::string what, std::size_t max_values = kMaxValues)
      : p_(p), end_(p + n), allow_nan_(allow_nan), what_(std::move(what)), max_values_(max_values) {}

  Json parse() {
    Json v = value(0);
    ws();
    if (p_ != end_) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw Bad(what_ + " is not valid JSON (" + why + ")"); }
  void ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool lit(const char* s) {
    const std::size_t n = std::strlen(s);
    if (static_cast<std::size_t>(end_ - p_) >= n && std::memcmp(p_, s, n) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }
  Json value(int depth) {
    if (depth > kMaxDepth) fail("nested too deeply");
    if (++values_ > max_values_) fail("too many values");
    ws();
    if (p_ == end_) fail("unexpected end");
    Json v;
    const char c = *p_;
    if (c == '{') {
      v.type = Json::Object;
      ++p_;
      ws();
      if (p_ != end_ && *p_ == '}') {
        ++p_;
        return v;
      }
      std::set<std::string> seen;
      for (;;) {
        ws();
        if (p_ == end_ || *p_ != '"') fail("expected a string key");
        std::string key = string();
        if (!seen.insert(key).second) fail("duplicate key '" + key + "'");
        ws();
        if (p_ == end_ || *p_ != ':') fail("expected ':'");
        ++p_;
        v.members.emplace_back(std::move(key), value(depth + 1));
        ws();
        if (p_ != end_ && *p_ == ',') {
          ++p_;
          continue;
        }
        if (p_ != end_ && *p_ == '}') {
          ++p_;
          return v;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = Json::Array;
      ++p_;
      ws();
      if (p_ != end_ && *p_ == ']') {
        ++p_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        ws();
        if (p_ != end_ && *p_ == ',') {
          ++p_;
          continue;
        }
        if (p_ != end_ && *p_ == ']') {
          ++p_;
          return v;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = Json::String;
      v.str = string();
      return v;
    }
    if (lit("true")) {
      v.type = Json::Bool;
      v.boolean = true;
      return v;
    }
    if (lit("false")) {
      v.type = Json::Bool;
      return v;
    }
    if (lit("null")) return v;
    if (allow_nan_) {
      v.type = Json::Number;
      if (lit("NaN")) {
        v.number = std::numeric_limits<double>::quiet_NaN();
        return v;
      }
      if (lit("Infinity")) {
        v.number = std::numeric_limits<double>::infinity();
        return v;
      }
      if (lit("-Infinity")) {
        v.number = -std::numeric_limits<double>::infinity();
        return v;
      }
    }
    return number();
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  Json number() {
    const char* start = p_;
    bool is_int = true;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_ || !digit(*p_)) fail("unexpected character");
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && *p_ == '.') {
      is_int = false;
      ++p_;
      if (p_ == end_ || !digit(*p_)) fail("bad number");
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      is_int = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) fail("bad number");
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    const std::string text(start, p_);
    Json v;
    v.type = Json::Number;
    errno = 0;
    v.number = std::strtod(text.c_str(), nullptr);  // the grammar above was checked, so strtod takes it all
    if (!allow_nan_ && !std::isfinite(v.number)) fail("number out of range");  // 1e999 would be infinity
    if (is_int) {
      std::int64_t i = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), i);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
        v.is_int = true;
        v.integer = i;
      }
    }
    return v;
  }
  static void utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::uint32_t hex4() {
    if (end_ - p_ < 4) fail("bad \\u escape");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++p_;  // the opening quote
    std::string out;
    for (;;) {
      if (p_ == end_) fail("unterminated string");
      const char c = *p_++;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p_ == end_) fail("unterminated string");
      const char e = *p_++;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') fail("unpaired surrogate");
            p_ += 2;
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("unpaired surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const char* p_;
  const char* end_;
  bool allow_nan_;
  std::string what_;
  std::size_t max_values_, values_ = 0;
};

inline bool valid_utf8(const unsigned char* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp < 0xE000))
      return false;
    i += len;
  }
  return true;
}

// Writer helpers.
inline std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += ch;
  }
  return out + "\"";
}

inline std::string number(double v) {  // shortest round-trip form; always reads back as a float in Python
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

inline std::string boolean(bool b) { return b ? "true" : "false"; }

// --------------------------------------------------------------------------------- field accessors

inline const Json& need(const Json& obj, const std::string& key, const std::string& where) {
  const Json* v = obj.type == Json::Object ? obj.get(key) : nullptr;
  if (!v) throw Bad(where + " has no '" + key + "'");
  return *v;
}
inline double real(const Json& v, const std::string& what) {
  if (v.type != Json::Number) throw Bad(what + " must be a number");
  return v.number;
}
inline bool flag(const Json& v, const std::string& what) {
  if (v.type != Json::Bool) throw Bad(what + " must be a bool");
  return v.boolean;
}
inline std::uint64_t uint(const Json& v, const std::string& what, std::uint64_t hi) {
  if (v.type != Json::Number || !v.is_int || v.integer < 0 || static_cast<std::uint64_t>(v.integer) > hi)
    throw Bad(what + " must be an integer in [0, " + std::to_string(hi) + "]");
  return static_cast<std::uint64_t>(v.integer);
}

inline std::int64_t integer(const Json& v, const std::string& what) {
  if (v.type != Json::Number || !v.is_int) throw Bad(what + " must be an integer");
  return v.integer;
}
inline const std::string& text(const Json& v, const std::string& what) {
  if (v.type != Json::String) throw Bad(what + " must be a string");
  return v.str;
}
inline const Json& array(const Json& v, const std::string& what) {
  if (v.type != Json::Array) throw Bad(what + " must be a list");
  return v;
}
inline std::vector<double> reals(const Json& v, const std::string& what) {
  std::vector<double> out;
  for (const Json& x : array(v, what).items) out.push_back(real(x, what + " entry"));
  return out;
}
inline std::vector<std::int64_t> integers(const Json& v, const std::string& what) {
  std::vector<std::int64_t> out;
  for (const Json& x : array(v, what).items) out.push_back(integer(x, what + " entry"));
  return out;
}

// Builds a JSON object member by member (keys in insertion order, as Python's json writes dicts).
class ObjectWriter {
 public:
  ObjectWriter& raw(const std::string& key, const std::string& json) {
    out_ += (out_.size() > 1 ? "," : "") + quote(key) + ":" + json;
    return *this;
  }
  ObjectWriter& real(const std::string& key, double v) { return raw(key, number(v)); }
  ObjectWriter& integer(const std::string& key, std::int64_t v) { return raw(key, std::to_string(v)); }
  ObjectWriter& flag(const std::string& key, bool v) { return raw(key, boolean(v)); }
  ObjectWriter& text(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
  ObjectWriter& null(const std::string& key) { return raw(key, "null"); }
  ObjectWriter& reals(const std::string& key, const std::vector<double>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + number(v[i]);
    return raw(key, s + "]");
  }
  ObjectWriter& integers(const std::string& key, const std::vector<std::int64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return raw(key, s + "]");
  }
  std::string str() const { return out_ + "}"; }

 private:
  std::string out_ = "{";
};

}  // namespace ckpt
}  // namespace fastoptim
