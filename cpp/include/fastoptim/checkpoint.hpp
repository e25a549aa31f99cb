#pragma once
// Portable, safe optimizer checkpoints, in the format Python's fastoptim.save / fastoptim.load use:
//
//   fastoptim::save_checkpoint("opt.safetensors", opt);   // atomic: temp file, fflush + fsync, rename
//   fastoptim::load_checkpoint("opt.safetensors", opt);   // validates everything, then installs; throws
//                                                          // std::runtime_error("checkpoint <path>: <what>")
//
// Format: a safetensors file (https://huggingface.co/docs/safetensors):
//   * 8 bytes: N, the header length, unsigned 64-bit little-endian;
//   * N bytes: a UTF-8 JSON object (padded with spaces to a multiple of 8);
//   * the data section: raw little-endian tensor bytes; the tensors' regions tile it in order, no gaps.
// Header entries: "<name>": {"dtype": "F32"|"F64"|..., "shape": [...], "data_offsets": [begin, end]} (relative
// to the data section), and "__metadata__": {"fastoptim": "<JSON string>"}, where the JSON string is
//   {"format": "fastoptim-checkpoint", "version": 1,
//    "optimizer": {"class": "Adam", "param_groups": [{...options..., "params": [indices]}],
//                  "state_keys": {"<param index>": ["exp_avg", "exp_avg_sq", "step"], ...}},
//    "scheduler": {"class": ..., "state": {...}} | null}
// (the inner JSON may hold Infinity, -Infinity and NaN, as Python's json writes them). Tensors are named
// "state.<param index>.<key>", with the parameter's dtype; "step" is an F32 scalar (shape []), as torch keeps it.
//
// Supported optimizers: SGD, Adam, AdamW and RMSprop (float or double). C++ handles optimizer state only: it
// writes "scheduler": null and ignores (after parsing) a file's scheduler entry. C++ parameters are flat, so
// loading accepts a state tensor of any shape with the parameter's element count and saving writes shape [n];
// Python checks shapes exactly, so files meant for both should use 1-D parameters.

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define FASTOPTIM_CHECKPOINT_POSIX 1
#endif

#include "adam/adam.hpp"
#include "rmsprop/rmsprop.hpp"
#include "sgd/sgd.hpp"

namespace fastoptim {
namespace ckpt {

inline constexpr const char* kFormat = "fastoptim-checkpoint";
inline constexpr std::int64_t kVersion = 1;
inline constexpr std::uint64_t kMaxHeader = 100ull * 1024 * 1024;
inline constexpr std::uint64_t kMaxTensorBytes = 1ull << 50;
inline constexpr int kMaxDepth = 64;

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
  JsonParser(const char* p, std::size_t n, bool allow_nan, std::string what)
      : p_(p), end_(p + n), allow_nan_(allow_nan), what_(std::move(what)) {}

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

// ------------------------------------------------------------- per-optimizer names, options and state

inline const char* class_name(const SGDOptions*) { return "SGD"; }
inline const char* class_name(const AdamOptions*) { return "Adam"; }
inline const char* class_name(const AdamWOptions*) { return "AdamW"; }
inline const char* class_name(const RMSpropOptions*) { return "RMSprop"; }

// Options as torch-layout group entries (besides "params" and "initial_lr").
inline std::string options_json(const SGDOptions& o) {
  return "\"lr\":" + number(o.lr) + ",\"momentum\":" + number(o.momentum) + ",\"dampening\":" + number(o.dampening) +
         ",\"weight_decay\":" + number(o.weight_decay) + ",\"nesterov\":" + boolean(o.nesterov) +
         ",\"maximize\":" + boolean(o.maximize) + ",\"foreach\":null,\"differentiable\":false,\"fused\":null";
}
inline std::string options_json(const AdamOptions& o) {
  return "\"lr\":" + number(o.lr) + ",\"betas\":[" + number(o.beta1) + "," + number(o.beta2) + "],\"eps\":" +
         number(o.eps) + ",\"weight_decay\":" + number(o.weight_decay) + ",\"amsgrad\":" + boolean(o.amsgrad) +
         ",\"maximize\":" + boolean(o.maximize) +
         ",\"foreach\":null,\"capturable\":false,\"differentiable\":false,\"fused\":null,\"decoupled_weight_decay\":" +
         boolean(o.decoupled_weight_decay);
}
inline std::string options_json(const RMSpropOptions& o) {
  return "\"lr\":" + number(o.lr) + ",\"momentum\":" + number(o.momentum) + ",\"alpha\":" + number(o.alpha) +
         ",\"eps\":" + number(o.eps) + ",\"centered\":" + boolean(o.centered) + ",\"weight_decay\":" +
         number(o.weight_decay) + ",\"capturable\":false,\"foreach\":null,\"maximize\":" + boolean(o.maximize) +
         ",\"differentiable\":false";
}

// Reads one group key into the options; false if the key is not one of this optimizer's.
inline bool option_from(SGDOptions& o, const std::string& k, const Json& v) {
  if (k == "lr") o.lr = real(v, k);
  else if (k == "momentum") o.momentum = real(v, k);
  else if (k == "dampening") o.dampening = real(v, k);
  else if (k == "weight_decay") o.weight_decay = real(v, k);
  else if (k == "nesterov") o.nesterov = flag(v, k);
  else if (k == "maximize") o.maximize = flag(v, k);
  else return false;
  return true;
}
inline bool option_from(AdamOptions& o, const std::string& k, const Json& v) {
  if (k == "lr") o.lr = real(v, k);
  else if (k == "betas") {
    if (v.type != Json::Array || v.items.size() != 2) throw Bad("betas must be a pair of numbers");
    o.beta1 = real(v.items[0], "betas[0]");
    o.beta2 = real(v.items[1], "betas[1]");
  } else if (k == "eps") o.eps = real(v, k);
  else if (k == "weight_decay") o.weight_decay = real(v, k);
  else if (k == "amsgrad") o.amsgrad = flag(v, k);
  else if (k == "maximize") o.maximize = flag(v, k);
  else if (k == "decoupled_weight_decay") o.decoupled_weight_decay = flag(v, k);
  else return false;
  return true;
}
inline bool option_from(RMSpropOptions& o, const std::string& k, const Json& v) {
  if (k == "lr") o.lr = real(v, k);
  else if (k == "momentum") o.momentum = real(v, k);
  else if (k == "alpha") o.alpha = real(v, k);
  else if (k == "eps") o.eps = real(v, k);
  else if (k == "centered") o.centered = flag(v, k);
  else if (k == "weight_decay") o.weight_decay = real(v, k);
  else if (k == "maximize") o.maximize = flag(v, k);
  else return false;
  return true;
}
inline void force(SGDOptions&) {}
inline void force(AdamOptions&) {}
inline void force(AdamWOptions& o) { o.decoupled_weight_decay = true; }
inline void force(RMSpropOptions&) {}

// The state's buffers and step counter (nullptr when it keeps none), by torch's key names.
template <class T>
std::vector<std::pair<const char*, std::vector<T>*>> buffers(SGDState<T>& s) {
  return {{"momentum_buffer", &s.momentum_buffer}};
}
template <class T>
std::vector<std::pair<const char*, std::vector<T>*>> buffers(AdamState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}, {"max_exp_avg_sq", &s.max_exp_avg_sq}};
}
template <class T>
std::vector<std::pair<const char*, std::vector<T>*>> buffers(RMSpropState<T>& s) {
  return {{"square_avg", &s.square_avg}, {"momentum_buffer", &s.momentum_buffer}, {"grad_avg", &s.grad_avg}};
}
template <class T>
std::int64_t* step_of(SGDState<T>&) { return nullptr; }
template <class T>
std::int64_t* step_of(AdamState<T>& s) { return &s.step; }
template <class T>
std::int64_t* step_of(RMSpropState<T>& s) { return &s.step; }

// ------------------------------------------------------------------------------------------ bytes

inline bool little_endian() {
  const std::uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <class V>
void put_le(std::string& out, V v) {
  unsigned char b[sizeof(V)];
  std::memcpy(b, &v, sizeof(V));
  if (!little_endian())
    for (std::size_t i = 0; i < sizeof(V) / 2; ++i) std::swap(b[i], b[sizeof(V) - 1 - i]);
  out.append(reinterpret_cast<const char*>(b), sizeof(V));
}

template <class V>
V get_le(const unsigned char* p) {
  unsigned char b[sizeof(V)];
  std::memcpy(b, p, sizeof(V));
  if (!little_endian())
    for (std::size_t i = 0; i < sizeof(V) / 2; ++i) std::swap(b[i], b[sizeof(V) - 1 - i]);
  V v;
  std::memcpy(&v, b, sizeof(V));
  return v;
}

inline std::size_t itemsize(const std::string& dtype) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I64", 8}, {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4},  {"U16", 2},     {"U8", 1},      {"BOOL", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

template <class T>
const char* dtype_of() {
  return std::is_same_v<T, float> ? "F32" : "F64";
}

inline std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw std::runtime_error("checkpoint " + path + ": cannot open for reading");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  if (std::ferror(f.get())) throw std::runtime_error("checkpoint " + path + ": read error");
  return out;
}

struct Tensor {
  std::string dtype;
  std::uint64_t count = 0;
  std::uint64_t begin = 0, end = 0;
  bool scalar = false;
};

}  // namespace ckpt

// ------------------------------------------------------------------------------------------------ save

template <class Derived, class T, class Options, class State>
void save_checkpoint(const std::string& path, const Optimizer<Derived, T, Options, State>& opt_in) {
  using namespace ckpt;
  auto& opt = const_cast<Optimizer<Derived, T, Options, State>&>(opt_in);  // buffers() takes non-const; read only
  std::string groups = "[";
  std::size_t index = 0;
  for (std::size_t gi = 0; gi < opt.param_groups().size(); ++gi) {
    const auto& g = opt.param_groups()[gi];
    groups += (gi ? ",{" : "{") + options_json(static_cast<const Options&>(g.options));
    if (g.initial_lr) groups += ",\"initial_lr\":" + number(*g.initial_lr);
    groups += ",\"params\":[";
    for (std::size_t k = 0; k < g.params.size(); ++k) groups += (k ? "," : "") + std::to_string(index++);
    groups += "]}";
  }
  groups += "]";

  std::string state_keys = "{", tensor_header, data;
  bool first_entry = true;
  for (std::size_t i = 0; i < opt.num_params(); ++i) {
    State& st = opt.state(i);
    std::int64_t* step = step_of(st);
    auto bufs = buffers(st);
    bool any = step && *step > 0;
    for (auto& b : bufs) any = any || !b.second->empty();
    if (!any) continue;
    std::vector<std::string> keys;
    for (auto& b : bufs) {
      if (b.second->empty()) continue;
      keys.push_back(b.first);
      const std::uint64_t begin = data.size();
      for (const T v : *b.second) put_le<T>(data, v);
      tensor_header += ",\"state." + std::to_string(i) + "." + b.first + "\":{\"dtype\":\"" + dtype_of<T>() +
                       "\",\"shape\":[" + std::to_string(b.second->size()) + "],\"data_offsets\":[" +
                       std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
    }
    if (step) {
      keys.push_back("step");
      const std::uint64_t begin = data.size();
      put_le<float>(data, static_cast<float>(*step));
      tensor_header += ",\"state." + std::to_string(i) + ".step\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[" +
                       std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
    }
    state_keys += std::string(first_entry ? "" : ",") + "\"" + std::to_string(i) + "\":[";
    for (std::size_t k = 0; k < keys.size(); ++k) state_keys += (k ? ",\"" : "\"") + keys[k] + "\"";
    state_keys += "]";
    first_entry = false;
  }
  state_keys += "}";
  const std::string meta = std::string("{\"format\":\"") + kFormat + "\",\"version\":" + std::to_string(kVersion) +
                           ",\"optimizer\":{\"class\":\"" + class_name(static_cast<const Options*>(nullptr)) +
                           "\",\"param_groups\":" + groups + ",\"state_keys\":" + state_keys + "},\"scheduler\":null}";
  std::string header = "{\"__metadata__\":{\"fastoptim\":" + quote(meta) + "}" + tensor_header + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string blob;
  put_le<std::uint64_t>(blob, header.size());
  blob += header;
  blob += data;

  // Atomic replace: a temporary file next to the target, flushed to disk, then renamed over it.
#ifdef FASTOPTIM_CHECKPOINT_POSIX
  const std::string tmp = path + ".tmp-fastoptim-" + std::to_string(static_cast<long>(::getpid()));
#else
  const std::string tmp = path + ".tmp-fastoptim";
#endif
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("checkpoint " + path + ": cannot create " + tmp);
  bool ok = std::fwrite(blob.data(), 1, blob.size(), f) == blob.size() && std::fflush(f) == 0;
#ifdef FASTOPTIM_CHECKPOINT_POSIX
  ok = ok && ::fsync(::fileno(f)) == 0;
#endif
  ok = (std::fclose(f) == 0) && ok;
#ifdef _WIN32
  if (ok) std::remove(path.c_str());  // rename does not replace on Windows (so this step is not atomic there)
#endif
  ok = ok && std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    std::remove(tmp.c_str());
    throw std::runtime_error("checkpoint " + path + ": write failed");
  }
#ifdef FASTOPTIM_CHECKPOINT_POSIX
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
#endif
}

// ------------------------------------------------------------------------------------------------ load

template <class Derived, class T, class Options, class State>
void load_checkpoint(const std::string& path, Optimizer<Derived, T, Options, State>& opt) {
  using namespace ckpt;
  const std::string file = read_file(path);
  try {
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    const std::uint64_t size = file.size();
    if (size < 8) throw Bad("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    const std::uint64_t n = get_le<std::uint64_t>(bytes);
    if (n == 0) throw Bad("header length is 0");
    if (n > kMaxHeader) throw Bad("header length " + std::to_string(n) + " exceeds the limit");
    if (n > size - 8) throw Bad("header length " + std::to_string(n) + " runs past the end of the file");
    if (!valid_utf8(bytes + 8, n)) throw Bad("header is not UTF-8");
    const Json header = JsonParser(file.data() + 8, n, false, "header").parse();
    if (header.type != Json::Object) throw Bad("header is not a JSON object");
    const std::uint64_t data_len = size - 8 - n;
    const unsigned char* data = bytes + 8 + n;

    // Tensors: dtype, shape and offsets, all within the data section and tiling it.
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, e] : header.members) {
      if (name == "__metadata__") continue;
      const std::string where = "tensor '" + name + "'";
      if (e.type != Json::Object || e.members.size() != 3) throw Bad(where + " must have dtype, shape, data_offsets");
      Tensor t;
      const Json& dt = need(e, "dtype", where);
      if (dt.type != Json::String || itemsize(dt.str) == 0) throw Bad(where + " has an unknown dtype");
      t.dtype = dt.str;
      const Json& shape = need(e, "shape", where);
      if (shape.type != Json::Array || shape.items.size() > 64) throw Bad(where + " has an invalid shape");
      t.scalar = shape.items.empty();
      t.count = 1;
      for (const auto& d : shape.items) {
        const std::uint64_t dim = uint(d, where + " shape entry", kMaxTensorBytes);
        if (dim != 0 && t.count > kMaxTensorBytes / dim) throw Bad(where + " is too large");
        t.count *= dim;
      }
      const Json& off = need(e, "data_offsets", where);
      if (off.type != Json::Array || off.items.size() != 2) throw Bad(where + " data_offsets must be [begin, end]");
      t.begin = uint(off.items[0], where + " data_offsets begin", data_len);
      t.end = uint(off.items[1], where + " data_offsets end", data_len);
      if (t.end < t.begin) throw Bad(where + " data_offsets are reversed");
      if (t.end - t.begin != t.count * itemsize(t.dtype))
        throw Bad(where + " holds " + std::to_string(t.end - t.begin) + " bytes, its dtype and shape need " +
                  std::to_string(t.count * itemsize(t.dtype)));
      tensors[name] = t;
    }
    {
      std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::string>> order;
      for (const auto& [name, t] : tensors) order.push_back({{t.begin, t.end}, name});
      std::sort(order.begin(), order.end());
      std::uint64_t pos = 0;
      for (const auto& o : order) {
        if (o.first.first != pos) throw Bad("tensor '" + o.second + "' leaves a gap or overlaps another");
        pos = o.first.second;
      }
      if (pos != data_len) throw Bad("tensors do not cover the data section exactly");
    }

    // Metadata.
    const Json& md = need(header, "__metadata__", "header");
    if (md.type != Json::Object) throw Bad("__metadata__ is not an object");
    for (const auto& m : md.members)
      if (m.second.type != Json::String) throw Bad("__metadata__ values must be strings");
    const Json& fo = need(md, "fastoptim", "__metadata__ (not a fastoptim checkpoint)");
    if (!valid_utf8(reinterpret_cast<const unsigned char*>(fo.str.data()), fo.str.size()))
      throw Bad("metadata is not UTF-8");
    const Json meta = JsonParser(fo.str.data(), fo.str.size(), true, "metadata 'fastoptim'").parse();
    if (meta.type != Json::Object) throw Bad("metadata 'fastoptim' is not an object");
    const Json& format = need(meta, "format", "metadata");
    if (format.type != Json::String || format.str != kFormat) throw Bad("format is not fastoptim-checkpoint");
    const Json& version = need(meta, "version", "metadata");
    if (version.type != Json::Number || !version.is_int || version.integer != kVersion)
      throw Bad("unsupported version (this fastoptim reads version 1)");
    const Json& o = need(meta, "optimizer", "metadata");
    const Json& cls = need(o, "class", "optimizer entry");
    const std::string want = class_name(static_cast<const Options*>(nullptr));
    if (cls.type != Json::String || cls.str != want)
      throw Bad("holds a " + (cls.type == Json::String ? cls.str : std::string("?")) + " optimizer, not " + want);
    const Json& groups = need(o, "param_groups", "optimizer entry");
    if (groups.type != Json::Array || groups.items.size() != opt.param_groups().size())
      throw Bad("parameter group count differs from the optimizer's");

    // Groups: options and the saved id -> our index map.
    std::vector<Options> options;
    std::vector<std::optional<double>> initial;
    std::map<std::uint64_t, std::size_t> id_map;
    std::vector<std::size_t> sizes;
    std::size_t index = 0;
    for (std::size_t gi = 0; gi < groups.items.size(); ++gi) {
      const Json& g = groups.items[gi];
      const std::string where = "parameter group " + std::to_string(gi);
      if (g.type != Json::Object) throw Bad(where + " is not an object");
      const auto& group = opt.param_groups()[gi];
      Options op = group.options;
      std::optional<double> init;
      bool has_lr = false;
      for (const auto& [k, v] : g.members) {
        if (k == "params") {
          if (v.type != Json::Array || v.items.size() != group.params.size())
            throw Bad(where + " has a different number of parameters");
          std::size_t local = 0;
          for (const auto& id : v.items) {
            const std::uint64_t sid = uint(id, where + " parameter id", std::uint64_t(1) << 62);
            if (!id_map.emplace(sid, index).second) throw Bad("parameter id " + std::to_string(sid) + " appears twice");
            sizes.push_back(group.params[local++].size());
            ++index;
          }
        } else if (k == "initial_lr") {
          if (v.type != Json::Null) init = real(v, "initial_lr");
        } else if (k == "foreach" || k == "fused") {
          if (v.type != Json::Null && v.type != Json::Bool) throw Bad(where + " " + k + " must be a bool or null");
        } else if (k == "capturable" || k == "differentiable") {
          if (flag(v, k)) throw Bad(where + " has " + k + "=true, which fastoptim does not support");
        } else if (option_from(op, k, v)) {
          has_lr = has_lr || k == "lr";
        } else {
          throw Bad(where + " has an unknown option '" + k + "'");
        }
      }
      if (!has_lr) throw Bad(where + " has no 'lr'");
      if (!g.get("params")) throw Bad(where + " has no 'params'");
      force(op);
      try {
        op.validate();
      } catch (const std::invalid_argument& e) {
        throw Bad(where + ": " + e.what());
      }
      options.push_back(op);
      initial.push_back(init);
    }

    // State: exactly the tensors state_keys names, with our dtype and element counts.
    std::vector<State> states(opt.num_params());
    const Json& keys = need(o, "state_keys", "optimizer entry");
    if (keys.type != Json::Object) throw Bad("state_keys is not an object");
    std::set<std::string> expected;
    for (const auto& [key, list] : keys.members) {
      if (key.empty() || key.size() > 18 || key.find_first_not_of("0123456789") != std::string::npos)
        throw Bad("state_keys has a non-index key '" + key + "'");
      const std::uint64_t sid = std::stoull(key);
      const auto it = id_map.find(sid);
      if (it == id_map.end()) throw Bad("state of parameter " + key + ", which no parameter group holds");
      const std::size_t i = it->second;
      State& st = states[i];
      const std::size_t want_n = sizes[i];
      if (list.type != Json::Array) throw Bad("state_keys of parameter " + key + " is not a list");
      std::set<std::string> seen;
      for (const auto& kv : list.items) {
        if (kv.type != Json::String || !seen.insert(kv.str).second)
          throw Bad("state_keys of parameter " + key + " must be distinct strings");
        const std::string name = "state." + key + "." + kv.str;
        const auto t = tensors.find(name);
        if (t == tensors.end()) throw Bad("tensor '" + name + "' is missing");
        expected.insert(name);
        if (kv.str == "step") {
          std::int64_t* step = step_of(st);
          if (!step) throw Bad("tensor '" + name + "': " + want + " keeps no step");
          if (t->second.dtype != "F32" || !t->second.scalar) throw Bad("tensor '" + name + "' must be an F32 scalar");
          const float s = get_le<float>(data + t->second.begin);
          if (!(s >= 0.0f && s <= 16777216.0f) || s != std::floor(s))
            throw Bad("tensor '" + name + "' is not a whole count in [0, 2^24]");
          *step = static_cast<std::int64_t>(s);
          continue;
        }
        std::vector<T>* buf = nullptr;
        for (auto& b : buffers(st))
          if (kv.str == b.first) buf = b.second;
        if (!buf) throw Bad("unknown state '" + kv.str + "' for " + want);
        if (t->second.dtype != dtype_of<T>())
          throw Bad("tensor '" + name + "' has dtype " + t->second.dtype + ", the parameter is " + dtype_of<T>());
        if (t->second.count != want_n)
          throw Bad("tensor '" + name + "' has " + std::to_string(t->second.count) +
                    " elements, the parameter has " + std::to_string(want_n));
        buf->resize(want_n);
        for (std::size_t k = 0; k < want_n; ++k) (*buf)[k] = get_le<T>(data + t->second.begin + k * sizeof(T));
      }
    }
    for (const auto& [name, t] : tensors)
      if (!expected.count(name)) throw Bad("unexpected tensor '" + name + "'");
    if (const Json* s = meta.get("scheduler"); s && s->type != Json::Null && s->type != Json::Object)
      throw Bad("scheduler entry is malformed");

    // Everything checked: install.
    for (std::size_t gi = 0; gi < options.size(); ++gi) {
      opt.param_groups()[gi].options = options[gi];
      opt.param_groups()[gi].initial_lr = initial[gi];
    }
    for (std::size_t i = 0; i < states.size(); ++i) opt.load_state(i, std::move(states[i]));
  } catch (const Bad& e) {
    throw std::runtime_error("checkpoint " + path + ": " + e.what());
  }
}

}  // namespace fastoptim
