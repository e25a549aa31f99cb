#pragma once
// Portable, safe checkpoints of an optimizer and, optionally, its learning-rate scheduler, in the format
// Python's fastoptim.save / fastoptim.load use (a file written by either resumes in the other):
//
//   fastoptim::save_checkpoint("run.safetensors", opt, sched);   // atomic: temp file, fflush + fsync, rename
//   fastoptim::load_checkpoint("run.safetensors", opt, sched);   // validates everything, then installs
//
// `sched` is optional: any fastoptim scheduler (an LRScheduler, composites included, or a
// ReduceLROnPlateau) attached to `opt`. Both functions throw fastoptim::CheckpointError (a
// std::runtime_error) whose what() is "checkpoint <path>: <what>"; a load that throws has changed nothing.
// save_checkpoint also throws std::invalid_argument for a scheduler that is not a fastoptim one.
//
// Format: a safetensors file (https://huggingface.co/docs/safetensors):
//   * 8 bytes: N, the header length, unsigned 64-bit little-endian;
//   * N bytes: a UTF-8 JSON object (padded with spaces to a multiple of 8);
//   * the data section: raw little-endian tensor bytes; the tensors' regions tile it in order, no gaps.
// Header entries: "<name>": {"dtype": "F32"|"F64"|..., "shape": [...], "data_offsets": [begin, end]} (relative
// to the data section), and "__metadata__": {"fastoptim": "<JSON string>"}, where the JSON string is
//   {"format": "fastoptim-checkpoint", "version": 1,
//    "optimizer": {"class": "Adam", "param_groups": [{...torch's group keys..., "params": [indices]}],
//                  "state_keys": {"<param index>": ["exp_avg", "exp_avg_sq", "step"], ...}},
//    "scheduler": {"class": ..., "children": [...] (composites), "state": {...torch's state_dict...}} | null}
// (the inner JSON may hold Infinity, -Infinity and NaN, as Python's json writes them). Tensors are named
// "state.<param index>.<key>", with the parameter's dtype; "step" is an F32 scalar (shape []), as torch keeps it,
// and other per-parameter scalars (ASGD's eta and mu, NAdam's mu_product) are F32 or F64 scalars.
// Values torch's schedulers keep in the param groups (initial_lr, OneCycleLR's max_lr / min_lr /
// max_momentum / base_momentum, CyclicLR's momenta, SWALR's swa_lr) are group keys, as in Python.
//
// Version 2 (written only for LBFGS, whose torch state holds lists and Python numbers) adds to "optimizer"
//   "state_values": {"0": {"func_evals": 12, "prev_loss": 0.25, ...}}   Python numbers of the state
//   "state_lists": {"0": {"old_dirs": {"length": 3, "none": []}, ...}}   element j: tensor
//                  "state.0.old_dirs.<j>", or None when j is in "none" (increasing indices below length)
// A key appears once per parameter across state_keys, state_values and state_lists.
//
// Every optimizer of registry.hpp (Muon: include registry_muon.hpp too), LBFGS and every scheduler of
// checkpoint/schedulers.hpp is supported. Adafactor, Muon and SparseAdam write their state with torch's
// shapes; the other optimizers' parameters are flat, so they write shape [n], and loading accepts a state
// tensor of any shape with the expected element count. Python checks shapes exactly, so files of those
// meant for both languages should use 1-D parameters.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define FASTOPTIM_CHECKPOINT_POSIX 1
#endif

#include "checkpoint/json.hpp"
#include "checkpoint/schedulers.hpp"
#include "registry.hpp"

namespace fastoptim {

class CheckpointError : public std::runtime_error {
 public:
  // io: the file could not be read or written; invalid: it is malformed or does not fit the objects.
  enum class Kind { io, invalid };
  CheckpointError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

namespace ckpt {

inline constexpr const char* kFormat = "fastoptim-checkpoint";
// Version 1: every state entry is a tensor. Version 2 adds, per parameter, "state_values" (Python numbers of
// the state, in the JSON) and "state_lists" (lists of tensors): written only by a state that has them
// (LBFGS), so other files stay readable by version-1 readers.
inline constexpr std::int64_t kVersion = 1;
inline constexpr std::int64_t kVersionLists = 2;
inline constexpr std::uint64_t kMaxHeader = 100ull * 1024 * 1024;
inline constexpr std::uint64_t kMaxTensorBytes = 1ull << 50;

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
  if (!f) throw CheckpointError(CheckpointError::Kind::io, "checkpoint " + path + ": cannot open for reading");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  if (std::ferror(f.get())) throw CheckpointError(CheckpointError::Kind::io, "checkpoint " + path + ": read error");
  return out;
}

struct Tensor {
  std::string dtype;
  std::uint64_t count = 0;
  std::uint64_t begin = 0, end = 0;
  bool scalar = false;
  std::vector<std::uint64_t> shape;
};

// ------------------------------------------------------------------- hyperparameters as JSON

// Writes every hyperparameter as `"key":value` members.
struct OptionsWriter {
  ObjectWriter& w;
  void real(const char* k, double v) { w.real(k, v); }
  void flag(const char* k, bool v) { w.flag(k, v); }
  void integer(const char* k, std::int64_t v) { w.integer(k, v); }
  void pair(const char* k, double a, double b) { w.raw(k, "[" + number(a) + "," + number(b) + "]"); }
  void triple(const char* k, double a, double b, double c) {
    w.raw(k, "[" + number(a) + "," + number(b) + "," + number(c) + "]");
  }
  void opt_pair(const char* k, const std::optional<double>& a, double b) {
    w.raw(k, "[" + (a ? number(*a) : std::string("null")) + "," + number(b) + "]");
  }
  void opt_integer(const char* k, const std::optional<std::int64_t>& v, std::int64_t fallback) {
    w.integer(k, v.value_or(fallback));
  }
  template <class M, class E>
  void choice(const char* k, const M& m, Choices<E> names) {
    for (const auto& n : names)
      if (n.second == m) {
        if (n.first) w.text(k, n.first);
        else w.null(k);
        return;
      }
  }
  void forced(const char* k, bool, bool value) { w.flag(k, value); }
  void mode(const char* k, bool v) { w.flag(k, v); }
  void torch_only(const char* k, TorchFlag f) {
    if (f == TorchFlag::none_or_bool) w.null(k);
    else w.flag(k, false);
  }
};

// Sets the hyperparameter `key` from a JSON value; `found` tells whether the optimizer has that key.
// `strict_forced` (the C API): a forced key given another value is an error rather than overridden (loading
// a file, as Python's loader does), and so is a mode key.
struct OptionReader {
  const std::string& key;
  const Json& value;
  bool strict_forced = false;
  bool found = false;

  bool is(const char* k) {
    if (key != k) return false;
    found = true;
    return true;
  }
  void real(const char* k, double& m) {
    if (is(k)) m = ckpt::real(value, key);
  }
  void flag(const char* k, bool& m) {
    if (is(k)) m = ckpt::flag(value, key);
  }
  void integer(const char* k, std::int64_t& m) {
    if (is(k)) m = ckpt::integer(value, key);
  }
  void pair(const char* k, double& a, double& b) {
    if (!is(k)) return;
    if (value.type != Json::Array || value.items.size() != 2) throw Bad(key + " must be a pair of numbers");
    a = ckpt::real(value.items[0], key + "[0]");
    b = ckpt::real(value.items[1], key + "[1]");
  }
  void triple(const char* k, double& a, double& b, double& c) {
    if (!is(k)) return;
    if (value.type != Json::Array || value.items.size() != 3) throw Bad(key + " must be a list of 3 numbers");
    a = ckpt::real(value.items[0], key + "[0]");
    b = ckpt::real(value.items[1], key + "[1]");
    c = ckpt::real(value.items[2], key + "[2]");
  }
  void opt_pair(const char* k, std::optional<double>& a, double& b) {
    if (!is(k)) return;
    if (value.type != Json::Array || value.items.size() != 2) throw Bad(key + " must be a pair [number or null, number]");
    a.reset();
    if (value.items[0].type != Json::Null) a = ckpt::real(value.items[0], key + "[0]");
    b = ckpt::real(value.items[1], key + "[1]");
  }
  void opt_integer(const char* k, std::optional<std::int64_t>& m, std::int64_t) {
    if (!is(k)) return;
    if (value.type == Json::Null) m.reset();
    else m = ckpt::integer(value, key);
  }
  template <class E>
  void choice(const char* k, E& m, Choices<E> names) {
    if (!is(k)) return;
    std::string known;
    for (const auto& n : names) {
      if (n.first ? value.type == Json::String && value.str == n.first : value.type == Json::Null) {
        m = n.second;
        return;
      }
      known += (known.empty() ? "" : ", ") + (n.first ? quote(n.first) : std::string("null"));
    }
    throw Bad(key + " must be one of " + known);
  }
  void forced(const char* k, bool& m, bool forced_value) {
    if (!is(k)) return;
    if (ckpt::flag(value, key) != forced_value && strict_forced)
      throw Bad(key + " is always " + boolean(forced_value) + " for this optimizer");
    m = forced_value;
  }
  void mode(const char* k, bool& m) {
    if (!is(k)) return;
    if (strict_forced) throw Bad(key + " cannot be set as an option (it changes with train() and eval())");
    m = ckpt::flag(value, key);
  }
  void torch_only(const char* k, TorchFlag f) {
    if (!is(k)) return;
    if (f == TorchFlag::none_or_bool) {
      if (value.type != Json::Null && value.type != Json::Bool) throw Bad(key + " must be a bool or null");
    } else if (ckpt::flag(value, key)) {
      throw Bad(key + "=true is not supported: fastoptim has no autograd or CUDA graphs");
    }
  }
};

// The keys an optimizer takes, for messages.
struct KeyLister {
  std::string keys;
  void add(const char* k) { keys += (keys.empty() ? "" : ", ") + std::string(k); }
  template <class... A>
  void real(const char* k, A&&...) { add(k); }
  template <class... A>
  void flag(const char* k, A&&...) { add(k); }
  template <class... A>
  void integer(const char* k, A&&...) { add(k); }
  template <class... A>
  void pair(const char* k, A&&...) { add(k); }
  template <class... A>
  void triple(const char* k, A&&...) { add(k); }
  template <class... A>
  void forced(const char* k, A&&...) { add(k); }
  template <class... A>
  void opt_pair(const char* k, A&&...) { add(k); }
  template <class... A>
  void opt_integer(const char* k, A&&...) { add(k); }
  template <class... A>
  void choice(const char* k, A&&...) { add(k); }
  template <class... A>
  void mode(const char* k, A&&...) { add(k); }
  template <class... A>
  void torch_only(const char* k, A&&...) { add(k); }
};

template <class Options>
std::string option_keys() {
  Options o;
  KeyLister l;
  OptimizerInfo<Options>::hyperparameters(o, l);
  return l.keys;
}

// A group's hyperparameters as JSON members (without braces), torch's keys.
template <class Options>
std::string options_json(const Options& o) {
  ObjectWriter w;
  OptionsWriter v{w};
  OptimizerInfo<Options>::hyperparameters(o, v);
  const std::string s = w.str();
  return s.substr(1, s.size() - 2);
}

// Applies every member of a JSON object to `o` (not validated: call o.validate()).
template <class Options>
void apply_options(Options& o, const Json& obj, bool strict_forced, const std::string& where) {
  if (obj.type != Json::Object) throw Bad(where + " must be a JSON object");
  for (const auto& [k, v] : obj.members) {
    OptionReader r{k, v, strict_forced};
    OptimizerInfo<Options>::hyperparameters(o, r);
    if (!r.found)
      throw Bad(where + ": " + OptimizerInfo<Options>::name + " has no hyperparameter '" + k + "' (it has " +
                option_keys<Options>() + ")");
  }
}

// A per-parameter 0-d state entry: a float32 member (f32 set), or a double that the optimizer keeps rounded
// to float32 while *is_f32 (f64 and is_f32 set).
struct ScalarEntry {
  const char* key;
  float* f32 = nullptr;
  double* f64 = nullptr;
  bool* is_f32 = nullptr;
};

// A state's entries by torch's key: buffers, scalars, and the step count where the optimizer keeps one.
template <class T>
struct StateEntries {
  std::vector<std::pair<const char*, std::vector<T>*>> buffers;
  std::vector<ScalarEntry> scalars;
  const char* step_key = nullptr;
  std::int64_t* step_value = nullptr;
  void buffer(const char* k, std::vector<T>& b) { buffers.emplace_back(k, &b); }
  void scalar(const char* k, float& v) { scalars.push_back(ScalarEntry{k, &v, nullptr, nullptr}); }
  void scalar(const char* k, double& v, bool& is_f32) { scalars.push_back(ScalarEntry{k, nullptr, &v, &is_f32}); }
  void step(const char* k, std::int64_t& s) {
    step_key = k;
    step_value = &s;
  }
};

// The state entries of parameter i of an optimizer.
template <class Opt>
StateEntries<typename Opt::value_type> entries_of(Opt& opt, std::size_t i) {
  StateEntries<typename Opt::value_type> e;
  InfoOf<Opt>::state(opt.state(i), e);
  return e;
}

// ---------------------------------------------------------------------------------- the file

// A checked safetensors file: the header, its tensors (all within the data section, tiling it) and the
// parsed fastoptim metadata.
struct File {
  std::string bytes;
  Json header, meta;
  std::map<std::string, Tensor> tensors;
  const unsigned char* data = nullptr;
};

inline File parse_file(const std::string& path) {
  File f;
  f.bytes = read_file(path);
  const auto* bytes = reinterpret_cast<const unsigned char*>(f.bytes.data());
  const std::uint64_t size = f.bytes.size();
  if (size < 8) throw Bad("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = get_le<std::uint64_t>(bytes);
  if (n == 0) throw Bad("header length is 0");
  if (n > kMaxHeader) throw Bad("header length " + std::to_string(n) + " exceeds the limit");
  if (n > size - 8) throw Bad("header length " + std::to_string(n) + " runs past the end of the file");
  if (!valid_utf8(bytes + 8, n)) throw Bad("header is not UTF-8");
  f.header = JsonParser(f.bytes.data() + 8, n, false, "header").parse();
  if (f.header.type != Json::Object) throw Bad("header is not a JSON object");
  const std::uint64_t data_len = size - 8 - n;
  f.data = bytes + 8 + n;

  for (const auto& [name, e] : f.header.members) {
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
      t.shape.push_back(dim);
    }
    const Json& off = need(e, "data_offsets", where);
    if (off.type != Json::Array || off.items.size() != 2) throw Bad(where + " data_offsets must be [begin, end]");
    t.begin = uint(off.items[0], where + " data_offsets begin", data_len);
    t.end = uint(off.items[1], where + " data_offsets end", data_len);
    if (t.end < t.begin) throw Bad(where + " data_offsets are reversed");
    if (t.end - t.begin != t.count * itemsize(t.dtype))
      throw Bad(where + " holds " + std::to_string(t.end - t.begin) + " bytes, its dtype and shape need " +
                std::to_string(t.count * itemsize(t.dtype)));
    f.tensors[name] = t;
  }
  std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::string>> order;
  for (const auto& [name, t] : f.tensors) order.push_back({{t.begin, t.end}, name});
  std::sort(order.begin(), order.end());
  std::uint64_t pos = 0;
  for (const auto& o : order) {
    if (o.first.first != pos) throw Bad("tensor '" + o.second + "' leaves a gap or overlaps another");
    pos = o.first.second;
  }
  if (pos != data_len) throw Bad("tensors do not cover the data section exactly");

  const Json& md = need(f.header, "__metadata__", "header");
  if (md.type != Json::Object) throw Bad("__metadata__ is not an object");
  for (const auto& m : md.members)
    if (m.second.type != Json::String) throw Bad("__metadata__ values must be strings");
  const Json& fo = need(md, "fastoptim", "__metadata__ (not a fastoptim checkpoint)");
  if (!valid_utf8(reinterpret_cast<const unsigned char*>(fo.str.data()), fo.str.size()))
    throw Bad("metadata is not UTF-8");
  f.meta = JsonParser(fo.str.data(), fo.str.size(), true, "metadata 'fastoptim'").parse();
  if (f.meta.type != Json::Object) throw Bad("metadata 'fastoptim' is not an object");
  const Json& format = need(f.meta, "format", "metadata");
  if (format.type != Json::String || format.str != kFormat) throw Bad("format is not fastoptim-checkpoint");
  const Json& version = need(f.meta, "version", "metadata");
  if (version.type != Json::Number || !version.is_int || version.integer < kVersion || version.integer > kVersionLists)
    throw Bad("unsupported version (this fastoptim reads versions 1 and 2)");
  return f;
}

// Writes `blob` to `path` atomically: a temporary file next to it, flushed to disk, then renamed over it.
inline void write_atomic(const std::string& path, const std::string& blob) {
  const auto fail = [&path](const std::string& why) {
    return CheckpointError(CheckpointError::Kind::io, "checkpoint " + path + ": " + why);
  };
#ifdef FASTOPTIM_CHECKPOINT_POSIX
  const std::string tmp = path + ".tmp-fastoptim-" + std::to_string(static_cast<long>(::getpid()));
#else
  const std::string tmp = path + ".tmp-fastoptim";
#endif
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw fail("cannot create " + tmp);
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
    throw fail("write failed");
  }
#ifdef FASTOPTIM_CHECKPOINT_POSIX
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY);
  if (dfd >= 0) {  // makes the rename itself durable
    (void)::fsync(dfd);
    ::close(dfd);
  }
#endif
}

// ------------------------------------------------------------------------- save, type-erased

// One state tensor: "state.<param>.<key>" (or "state.<param>.<key>.<j>", element j of a list), its dtype,
// its shape (empty: 0-d) and its bytes.
struct SavedTensor {
  std::string key;
  const char* dtype;
  std::vector<std::uint64_t> shape;
  std::string bytes;  // little-endian
};

// One parameter's state: tensors, Python numbers (JSON text, version 2) and lists of tensors or None
// (version 2).
struct SavedState {
  std::size_t index = 0;
  std::vector<SavedTensor> tensors;
  std::vector<std::pair<std::string, std::string>> values;
  std::vector<std::pair<std::string, std::vector<std::optional<SavedTensor>>>> lists;
};

inline std::string shape_json(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Writes a checkpoint from what the optimizer template gathered: its class name, each group's
// hyperparameter members, initial_lr and parameter count, and each stepped parameter's state.
inline void write_checkpoint(const std::string& path, const std::string& name,
                             const std::vector<std::string>& group_options,
                             const std::vector<std::optional<double>>& initial_lrs,
                             const std::vector<std::size_t>& group_counts, const std::vector<SavedState>& states,
                             SchedulerView sched) {
  GroupExtras extras;
  SavedScheduler saved_sched;
  if (sched) saved_sched = save_scheduler(sched, extras);

  std::string groups = "[";
  std::int64_t index = 0;
  for (std::size_t gi = 0; gi < group_options.size(); ++gi) {
    std::string g = "{" + group_options[gi];
    if (initial_lrs[gi]) g += ",\"initial_lr\":" + number(*initial_lrs[gi]);
    for (const auto& [key, values] : extras)
      if (gi < values.size()) g += "," + quote(key) + ":" + number(values[gi]);
    g += ",\"params\":[";
    for (std::size_t k = 0; k < group_counts[gi]; ++k) g += (k ? "," : "") + std::to_string(index++);
    groups += (gi ? "," : "") + g + "]}";
  }
  groups += "]";

  ObjectWriter state_keys, state_values, state_lists;
  bool v2 = false;
  std::string tensor_header, data;
  const auto add_tensor = [&](const std::string& tensor_name, const SavedTensor& t) {
    const std::uint64_t begin = data.size();
    data += t.bytes;
    tensor_header += "," + quote(tensor_name) + ":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + shape_json(t.shape) +
                     ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) + "]}";
  };
  for (const SavedState& st : states) {
    const std::string prefix = "state." + std::to_string(st.index) + ".";
    std::string keys = "[";
    for (const SavedTensor& t : st.tensors) {
      keys += (keys.size() > 1 ? "," : "") + quote(t.key);
      add_tensor(prefix + t.key, t);
    }
    state_keys.raw(std::to_string(st.index), keys + "]");
    if (!st.values.empty()) {
      ObjectWriter values;
      for (const auto& [k, v] : st.values) values.raw(k, v);
      state_values.raw(std::to_string(st.index), values.str());
      v2 = true;
    }
    if (!st.lists.empty()) {
      ObjectWriter lists;
      for (const auto& [k, items] : st.lists) {
        std::string none = "[";
        for (std::size_t j = 0; j < items.size(); ++j) {
          if (items[j]) add_tensor(prefix + k + "." + std::to_string(j), *items[j]);
          else none += (none.size() > 1 ? "," : "") + std::to_string(j);
        }
        lists.raw(k, "{\"length\":" + std::to_string(items.size()) + ",\"none\":" + none + "]}");
      }
      state_lists.raw(std::to_string(st.index), lists.str());
      v2 = true;
    }
  }
  std::string meta = std::string("{\"format\":\"") + kFormat + "\",\"version\":" +
                     std::to_string(v2 ? kVersionLists : kVersion) + ",\"optimizer\":{\"class\":" + quote(name) +
                     ",\"param_groups\":" + groups + ",\"state_keys\":" + state_keys.str();
  if (v2) meta += ",\"state_values\":" + state_values.str() + ",\"state_lists\":" + state_lists.str();
  meta += "},\"scheduler\":";
  meta += sched ? saved_sched.desc + ",\"state\":" + saved_sched.state + "}" : std::string("null");
  meta += "}";
  std::string header = "{\"__metadata__\":{\"fastoptim\":" + quote(meta) + "}" + tensor_header + "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string blob;
  put_le<std::uint64_t>(blob, header.size());
  blob += header;
  blob += data;
  write_atomic(path, blob);
}

// ------------------------------------------------------------------------- load, type-erased

// What loading needs of an optimizer, whatever its class and dtype. The callbacks stage values (they never
// touch the optimizer); they throw Bad for what does not fit.
// A tensor of the file: its header entry and its bytes.
struct TensorView {
  std::string name;
  const Tensor* tensor;
  const unsigned char* bytes;
};

struct LoadTarget {
  std::string name;                                 // torch's class name
  const char* dtype;                                // of the parameters: "F32" or "F64"
  std::vector<std::vector<std::size_t>> sizes;      // element count of each parameter, per group
  std::function<void(std::size_t group, const Json& hyperparameters)> read_group;
  // Parameter i's state entry `key` from a tensor of `count` elements at `bytes` (little-endian, dtype
  // already checked); false if the optimizer keeps no such entry.
  std::function<bool(std::size_t i, const std::string& key, const unsigned char* bytes, std::size_t count)> read_buffer;
  // Parameter i's 0-d entry `key` (one of scalar_keys, every one required in a parameter's state) from an
  // F32 or F64 scalar; throws Bad for a dtype the optimizer cannot hold.
  std::set<std::string> scalar_keys;
  std::function<void(std::size_t i, const std::string& key, const std::string& dtype, const unsigned char* bytes)>
      read_scalar;
  // Parameter i's step count, or the name of the optimizer's step entry when `key` is it (nullptr: no step).
  const char* step_key = nullptr;
  std::function<void(std::size_t i, std::int64_t step)> read_step;
  // The element count buffer `key` of parameter i must have (empty: the parameter's).
  std::function<std::uint64_t(std::size_t i, const std::string& key)> buffer_count;
  // Version 2: parameter i's Python number `key` (false: the optimizer keeps no such value), and its list
  // `key` (false: no such list), element j a tensor or None (std::nullopt). Empty: the optimizer has none.
  std::function<bool(std::size_t i, const std::string& key, const Json& value)> read_value;
  std::function<bool(std::size_t i, const std::string& key, const std::vector<std::optional<TensorView>>& items)>
      read_list;
  std::function<void()> check_states;
};

struct Loaded {
  std::vector<std::optional<double>> initial_lrs;
  Commit scheduler;
};

inline Loaded read_checkpoint(const File& file, const LoadTarget& target, SchedulerRef sched) {
  const Json& meta = file.meta;
  const Json& o = need(meta, "optimizer", "metadata");
  const Json& cls = need(o, "class", "optimizer entry");
  if (cls.type != Json::String || cls.str != target.name)
    throw Bad("holds a " + (cls.type == Json::String ? cls.str : std::string("?")) + " optimizer, not " + target.name);
  const Json& groups = need(o, "param_groups", "optimizer entry");
  if (groups.type != Json::Array || groups.items.size() != target.sizes.size())
    throw Bad("parameter group count differs from the optimizer's");

  // Groups: hyperparameters, values schedulers keep in the groups, and the saved id -> our index map.
  Loaded out;
  std::map<std::string, std::vector<std::optional<double>>> extra_values;
  std::map<std::uint64_t, std::size_t> id_map;
  std::vector<std::size_t> sizes;
  for (std::size_t gi = 0; gi < groups.items.size(); ++gi) {
    const Json& g = groups.items[gi];
    const std::string where = "parameter group " + std::to_string(gi);
    if (g.type != Json::Object) throw Bad(where + " is not an object");
    std::optional<double> init;
    Json hyper;
    hyper.type = Json::Object;
    for (const auto& [k, v] : g.members) {
      if (k == "params") {
        if (v.type != Json::Array || v.items.size() != target.sizes[gi].size())
          throw Bad(where + " has a different number of parameters");
        for (std::size_t local = 0; local < v.items.size(); ++local) {
          const std::uint64_t sid = uint(v.items[local], where + " parameter id", std::uint64_t(1) << 62);
          if (!id_map.emplace(sid, sizes.size()).second)
            throw Bad("parameter id " + std::to_string(sid) + " appears twice");
          sizes.push_back(target.sizes[gi][local]);
        }
      } else if (k == "initial_lr") {
        if (v.type != Json::Null) init = real(v, where + " initial_lr");
      } else if (is_group_extra(k)) {
        auto& values = extra_values[k];
        values.resize(groups.items.size());
        values[gi] = real(v, where + " " + k);
      } else {
        hyper.members.emplace_back(k, v);
      }
    }
    if (!g.get("lr")) throw Bad(where + " has no 'lr'");
    if (!g.get("params")) throw Bad(where + " has no 'params'");
    target.read_group(gi, hyper);
    out.initial_lrs.push_back(init);
  }
  GroupExtras extras;  // the keys every group has
  for (const auto& [k, values] : extra_values) {
    std::vector<double> all;
    for (const auto& v : values)
      if (v) all.push_back(*v);
    if (all.size() == values.size()) extras[k] = all;
  }

  // State: exactly the tensors state_keys names, with our dtype and element counts.
  const Json& keys = need(o, "state_keys", "optimizer entry");
  if (keys.type != Json::Object) throw Bad("state_keys is not an object");
  const auto param_of = [&](const std::string& key, const char* what) {
    if (key.empty() || key.size() > 18 || key.find_first_not_of("0123456789") != std::string::npos ||
        (key.size() > 1 && key[0] == '0'))  // "00" would be a second name for parameter 0
      throw Bad(std::string(what) + " has a non-index key '" + key + "'");
    const auto it = id_map.find(std::stoull(key));
    if (it == id_map.end()) throw Bad("state of parameter " + key + ", which no parameter group holds");
    return it->second;
  };
  std::set<std::string> expected;
  std::map<std::string, std::set<std::string>> seen_of;  // parameter key -> its state keys
  for (const auto& [key, list] : keys.members) {
    const std::size_t i = param_of(key, "state_keys");
    if (list.type != Json::Array) throw Bad("state_keys of parameter " + key + " is not a list");
    std::set<std::string>& seen = seen_of[key];
    for (const auto& kv : list.items) {
      if (kv.type != Json::String || !seen.insert(kv.str).second)
        throw Bad("state_keys of parameter " + key + " must be distinct strings");
      const std::string name = "state." + key + "." + kv.str;
      const auto t = file.tensors.find(name);
      if (t == file.tensors.end()) throw Bad("tensor '" + name + "' is missing");
      expected.insert(name);
      if (target.scalar_keys.count(kv.str)) {
        if ((t->second.dtype != "F32" && t->second.dtype != "F64") || !t->second.scalar)
          throw Bad("tensor '" + name + "' must be an F32 or F64 scalar");
        target.read_scalar(i, kv.str, t->second.dtype, file.data + t->second.begin);
        continue;
      }
      if (target.step_key && kv.str == target.step_key) {
        if (t->second.dtype != "F32" || !t->second.scalar) throw Bad("tensor '" + name + "' must be an F32 scalar");
        const float s = get_le<float>(file.data + t->second.begin);
        if (!(s >= 0.0f && s <= 16777216.0f) || s != std::floor(s))
          throw Bad("tensor '" + name + "' is not a whole count in [0, 2^24]");
        target.read_step(i, static_cast<std::int64_t>(s));
        continue;
      }
      if (t->second.dtype != target.dtype)
        throw Bad("tensor '" + name + "' has dtype " + t->second.dtype + ", the parameter is " + target.dtype);
      const std::uint64_t want = target.buffer_count ? target.buffer_count(i, kv.str) : sizes[i];
      if (t->second.count != want)
        throw Bad("tensor '" + name + "' has " + std::to_string(t->second.count) + " elements, " +
                  (want == sizes[i] ? "the parameter has " : "expected ") + std::to_string(want));
      if (!target.read_buffer(i, kv.str, file.data + t->second.begin, static_cast<std::size_t>(want)))
        throw Bad("unknown state '" + kv.str + "' for " + target.name);
    }
    // A state without its scalars would resume from made-up values (ASGD's eta, NAdam's mu_product).
    for (const std::string& k : target.scalar_keys)
      if (!seen.count(k)) throw Bad("state of parameter " + key + " has no '" + k + "'");
  }
  // Version 2: Python numbers and lists of the state.
  const Json* values = o.get("state_values");
  const Json* lists = o.get("state_lists");
  if ((values || lists) && need(meta, "version", "metadata").integer < kVersionLists)
    throw Bad("state_values and state_lists need version 2");
  const auto state_key = [&](const std::string& param, const std::string& k) {
    if (!seen_of.count(param)) throw Bad("state of parameter " + param + " is not in state_keys");
    if (k.empty() || k.find('.') != std::string::npos) throw Bad("state key '" + k + "' of parameter " + param + " is invalid");
    if (!seen_of[param].insert(k).second) throw Bad("state '" + k + "' of parameter " + param + " appears twice");
  };
  if (values) {
    if (values->type != Json::Object) throw Bad("state_values is not an object");
    for (const auto& [key, obj] : values->members) {
      const std::size_t i = param_of(key, "state_values");
      if (obj.type != Json::Object) throw Bad("state_values of parameter " + key + " is not an object");
      for (const auto& [k, v] : obj.members) {
        state_key(key, k);
        if (!target.read_value || !target.read_value(i, k, v))
          throw Bad("unknown state value '" + k + "' for " + target.name);
      }
    }
  }
  if (lists) {
    if (lists->type != Json::Object) throw Bad("state_lists is not an object");
    for (const auto& [key, obj] : lists->members) {
      const std::size_t i = param_of(key, "state_lists");
      if (obj.type != Json::Object) throw Bad("state_lists of parameter " + key + " is not an object");
      for (const auto& [k, desc] : obj.members) {
        state_key(key, k);
        const std::string where = "state list '" + k + "' of parameter " + key;
        if (desc.type != Json::Object || desc.members.size() != 2 || !desc.get("length") || !desc.get("none"))
          throw Bad(where + " must be {\"length\": n, \"none\": [indices]}");
        const std::uint64_t length = uint(*desc.get("length"), where + " length", std::uint64_t(1) << 32);
        const Json& none = *desc.get("none");
        if (none.type != Json::Array || none.items.size() > length)
          throw Bad(where + " 'none' must be a list of at most length indices");
        // Every other element is a tensor of the file: a length no file can back allocates nothing.
        if (length - none.items.size() > file.tensors.size())
          throw Bad(where + " has length " + std::to_string(length) + ", more elements than the file has tensors");
        std::vector<std::optional<TensorView>> items(length);
        std::vector<bool> is_none(length, false);
        std::uint64_t previous = 0;
        for (std::size_t n = 0; n < none.items.size(); ++n) {
          const std::uint64_t j = uint(none.items[n], where + " 'none' entry", length ? length - 1 : 0);
          if (j >= length || (n > 0 && j <= previous)) throw Bad(where + " 'none' must list increasing indices below its length");
          is_none[j] = true;
          previous = j;
        }
        for (std::uint64_t j = 0; j < length; ++j) {
          if (is_none[j]) continue;
          const std::string name = "state." + key + "." + k + "." + std::to_string(j);
          const auto t = file.tensors.find(name);
          if (t == file.tensors.end()) throw Bad("tensor '" + name + "' is missing");
          expected.insert(name);
          items[j] = TensorView{name, &t->second, file.data + t->second.begin};
        }
        if (!target.read_list || !target.read_list(i, k, items))
          throw Bad("unknown state list '" + k + "' for " + target.name);
      }
    }
  }
  for (const auto& [name, t] : file.tensors)
    if (!expected.count(name)) throw Bad("unexpected tensor '" + name + "'");
  target.check_states();

  // The scheduler: its state, checked against the given scheduler (which the file must have one for).
  const Json* s = meta.get("scheduler");
  if (s && s->type != Json::Null && s->type != Json::Object) throw Bad("scheduler entry is malformed");
  if (sched) {
    if (!s || s->type == Json::Null) throw Bad("holds no scheduler state, but a scheduler was given");
    const Json* st = s->get("state");
    if (!st || st->type != Json::Object) throw Bad("scheduler entry has no 'state' object");
    out.scheduler = load_scheduler(sched, *s, *st, LoadContext{groups.items.size(), extras}, "scheduler");
  }
  return out;
}

}  // namespace ckpt

// ------------------------------------------------------------------------------------------------ save

namespace ckpt {

// Optional hooks of an OptimizerInfo (see registry.hpp): state_shape(opt, i, key), the shape of state buffer
// `key` of parameter i (default: [the parameter's element count]); check_state(opt, i, state), the check
// of a loaded state (default: state.check(elements, who)).
template <class Info, class Opt, class = void>
struct has_state_shape : std::false_type {};
template <class Info, class Opt>
struct has_state_shape<Info, Opt,
                       std::void_t<decltype(Info::state_shape(std::declval<const Opt&>(), std::size_t{}, std::string()))>>
    : std::true_type {};
template <class Info, class Opt, class = void>
struct has_check_state : std::false_type {};
template <class Info, class Opt>
struct has_check_state<Info, Opt,
                       std::void_t<decltype(Info::check_state(std::declval<const Opt&>(), std::size_t{},
                                                              std::declval<const typename Opt::state_type&>()))>>
    : std::true_type {};

template <class Opt>
std::vector<std::size_t> param_sizes(const Opt& opt) {
  std::vector<std::size_t> sizes;
  for (const auto& g : opt.param_groups())
    for (const auto& p : g.params) sizes.push_back(p.size());
  return sizes;
}

template <class Opt>
std::vector<std::uint64_t> state_shape(const Opt& opt, std::size_t i, const std::string& key, std::size_t size) {
  if constexpr (has_state_shape<InfoOf<Opt>, Opt>::value) return InfoOf<Opt>::state_shape(opt, i, key);
  else return {static_cast<std::uint64_t>(size)};
}

}  // namespace ckpt

template <class Opt>
void save_checkpoint(const std::string& path, const Opt& opt_in, SchedulerView sched = {}) {
  using namespace ckpt;
  using T = typename Opt::value_type;
  auto& opt = const_cast<Opt&>(opt_in);  // state(i) by reference; read only
  std::vector<std::string> options;
  std::vector<std::optional<double>> initial_lrs;
  std::vector<std::size_t> counts;
  for (const auto& g : opt.param_groups()) {
    options.push_back(options_json(g.options));
    initial_lrs.push_back(g.initial_lr);
    counts.push_back(g.params.size());
  }
  const std::vector<std::size_t> sizes = param_sizes(opt_in);
  std::vector<SavedState> states;
  for (std::size_t i = 0; i < opt.num_params(); ++i) {
    auto e = entries_of(opt, i);
    SavedState st;
    st.index = i;
    for (auto& [key, buf] : e.buffers) {
      if (buf->empty()) continue;
      SavedTensor t{key, dtype_of<T>(), state_shape(opt_in, i, key, sizes[i]), {}};
      for (const T v : *buf) put_le<T>(t.bytes, v);
      st.tensors.push_back(std::move(t));
    }
    if (st.tensors.empty() && !(e.step_value && *e.step_value > 0)) continue;  // never stepped: no state, as torch
    for (const ScalarEntry& s : e.scalars) {
      const bool f32 = s.f32 || *s.is_f32;
      SavedTensor t{s.key, f32 ? "F32" : "F64", {}, {}};
      if (s.f32) put_le<float>(t.bytes, *s.f32);
      else if (f32) put_le<float>(t.bytes, static_cast<float>(*s.f64));
      else put_le<double>(t.bytes, *s.f64);
      st.tensors.push_back(std::move(t));
    }
    if (e.step_value) {
      SavedTensor t{e.step_key, "F32", {}, {}};
      put_le<float>(t.bytes, static_cast<float>(*e.step_value));
      st.tensors.push_back(std::move(t));
    }
    states.push_back(std::move(st));
  }
  write_checkpoint(path, InfoOf<Opt>::name, options, initial_lrs, counts, states, sched);
}

// ------------------------------------------------------------------------------------------------ load

template <class Opt>
void load_checkpoint(const std::string& path, Opt& opt, SchedulerRef sched = {}) {
  using namespace ckpt;
  using T = typename Opt::value_type;
  using Options = typename Opt::options_type;
  using State = typename Opt::state_type;
  using Info = OptimizerInfo<Options>;
  try {
    const File file = parse_file(path);
    std::vector<Options> options;
    std::vector<State> states(opt.num_params());
    std::vector<std::size_t> flat_sizes;
    LoadTarget target;
    target.name = Info::name;
    target.dtype = dtype_of<T>();
    for (const auto& g : opt.param_groups()) {
      target.sizes.emplace_back();
      for (const auto& p : g.params) {
        target.sizes.back().push_back(p.size());
        flat_sizes.push_back(p.size());
      }
    }
    target.read_group = [&](std::size_t gi, const Json& hyper) {
      const std::string where = "parameter group " + std::to_string(gi);
      Options op = opt.param_groups()[gi].options;
      apply_options(op, hyper, /*strict_forced=*/false, where);
      try {
        op.validate(/*stepping=*/true);  // what step() takes: a schedule may leave lr a hair below 0
      } catch (const std::invalid_argument& e) {
        throw Bad(where + ": " + e.what());
      }
      options.push_back(op);
    };
    State blank;
    StateEntries<T> probe;
    Info::state(blank, probe);
    target.step_key = probe.step_key;
    for (const ScalarEntry& s : probe.scalars) target.scalar_keys.insert(s.key);
    target.read_scalar = [&](std::size_t i, const std::string& key, const std::string& dtype,
                             const unsigned char* bytes) {
      StateEntries<T> e;
      Info::state(states[i], e);
      for (const ScalarEntry& s : e.scalars) {
        if (key != s.key) continue;
        if (s.f32) {  // a float32 member: a float64 value would not resume bit-identically
          if (dtype != "F32") throw Bad("state '" + key + "' of parameter " + std::to_string(i) + " must be F32");
          *s.f32 = get_le<float>(bytes);
        } else {
          *s.is_f32 = dtype == "F32";
          *s.f64 = *s.is_f32 ? static_cast<double>(get_le<float>(bytes)) : get_le<double>(bytes);
        }
      }
    };
    target.read_step = [&](std::size_t i, std::int64_t step) {
      StateEntries<T> e;
      Info::state(states[i], e);
      *e.step_value = step;
    };
    target.read_buffer = [&](std::size_t i, const std::string& key, const unsigned char* bytes, std::size_t n) {
      StateEntries<T> e;
      Info::state(states[i], e);
      for (auto& [k, buf] : e.buffers) {
        if (key != k) continue;
        buf->resize(n);
        for (std::size_t j = 0; j < n; ++j) (*buf)[j] = get_le<T>(bytes + j * sizeof(T));
        return true;
      }
      return false;
    };
    target.buffer_count = [&](std::size_t i, const std::string& key) {
      std::uint64_t n = 1;
      for (const std::uint64_t d : state_shape(opt, i, key, flat_sizes[i])) n *= d;
      return n;
    };
    target.check_states = [&] {
      for (std::size_t i = 0; i < states.size(); ++i) {
        try {
          if constexpr (has_check_state<Info, Opt>::value) Info::check_state(opt, i, states[i]);
          else states[i].check(flat_sizes[i], "parameter " + std::to_string(i));
        } catch (const std::invalid_argument& e) {
          throw Bad(e.what());
        }
      }
    };
    Loaded loaded = read_checkpoint(file, target, sched);

    // Everything checked: install.
    for (std::size_t gi = 0; gi < options.size(); ++gi) {
      opt.param_groups()[gi].options = options[gi];
      opt.param_groups()[gi].initial_lr = loaded.initial_lrs[gi];
    }
    for (std::size_t i = 0; i < states.size(); ++i) opt.load_state(i, std::move(states[i]));
    if (loaded.scheduler) loaded.scheduler();
  } catch (const Bad& e) {
    throw CheckpointError(CheckpointError::Kind::invalid, "checkpoint " + path + ": " + e.what());
  }
}

// ------------------------------------------------------------------------------------------------ LBFGS
// torch keeps LBFGS's whole state on its first parameter, with lists (version 2 of the format):
//   tensors       d, prev_flat_grad ([n], n the parameters' total element count); t and H_diag when 0-d
//                 tensors ([], the parameters' dtype)
//   state_values  func_evals, n_iter (integers), prev_loss, and t and H_diag when Python numbers
//   state_lists   old_dirs, old_stps (tensors [n]), ro (0-d tensors), al (0-d tensors or None):
//                 "state.0.old_dirs.<j>" for j < length

namespace ckpt {

template <class T>
SavedTensor scalar_tensor(const std::string& key, T value) {
  SavedTensor t{key, dtype_of<T>(), {}, {}};
  put_le<T>(t.bytes, value);
  return t;
}

template <class T>
SavedTensor vector_tensor(const std::string& key, const std::vector<T>& v) {
  SavedTensor t{key, dtype_of<T>(), {static_cast<std::uint64_t>(v.size())}, {}};
  for (const T x : v) put_le<T>(t.bytes, x);
  return t;
}

}  // namespace ckpt

template <class T>
void save_checkpoint(const std::string& path, const LBFGS<T>& opt, SchedulerView sched = {}) {
  using namespace ckpt;
  std::vector<std::string> options;
  std::vector<std::optional<double>> initial_lrs;
  std::vector<std::size_t> counts;
  for (const auto& g : opt.param_groups()) {
    options.push_back(options_json(g.options));
    initial_lrs.push_back(g.initial_lr);
    counts.push_back(g.params.size());
  }
  const LBFGSState<T>& s = opt.state();
  std::vector<SavedState> states;
  if (s.func_evals > 0 || s.n_iter > 0) {  // no state before the first step, as torch
    SavedState st;
    st.index = 0;
    st.values.emplace_back("func_evals", std::to_string(s.func_evals));
    st.values.emplace_back("n_iter", std::to_string(s.n_iter));
    if (!s.al.empty()) {
      std::vector<std::optional<SavedTensor>> al;
      for (const auto& a : s.al) al.push_back(a ? std::optional<SavedTensor>(scalar_tensor<T>("", *a)) : std::nullopt);
      st.lists.emplace_back("al", std::move(al));
    }
    if (s.n_iter > 0) {
      st.tensors.push_back(vector_tensor<T>("d", s.d));
      st.tensors.push_back(vector_tensor<T>("prev_flat_grad", s.prev_flat_grad));
      const auto scalar = [&](const char* key, const LBFGSScalar& v) {
        if (v.tensor) st.tensors.push_back(scalar_tensor<T>(key, static_cast<T>(v.value)));
        else if (std::string(key) == "H_diag" && v.value == 1.0) st.values.emplace_back(key, "1");  // torch's int 1
        else st.values.emplace_back(key, number(v.value));
      };
      scalar("t", s.t);
      scalar("H_diag", s.H_diag);
      st.values.emplace_back("prev_loss", number(s.prev_loss));
      std::vector<std::optional<SavedTensor>> dirs, stps, ro;
      for (std::size_t j = 0; j < s.old_dirs.size(); ++j) {
        dirs.push_back(vector_tensor<T>("", s.old_dirs[j]));
        stps.push_back(vector_tensor<T>("", s.old_stps[j]));
        ro.push_back(scalar_tensor<T>("", s.ro[j]));
      }
      st.lists.emplace_back("old_dirs", std::move(dirs));
      st.lists.emplace_back("old_stps", std::move(stps));
      st.lists.emplace_back("ro", std::move(ro));
    }
    states.push_back(std::move(st));
  }
  write_checkpoint(path, OptimizerInfo<LBFGSOptions>::name, options, initial_lrs, counts, states, sched);
}

template <class T>
void load_checkpoint(const std::string& path, LBFGS<T>& opt, SchedulerRef sched = {}) {
  using namespace ckpt;
  try {
    const File file = parse_file(path);
    std::vector<LBFGSOptions> options;
    LoadTarget target;
    target.name = "LBFGS";
    target.dtype = dtype_of<T>();
    for (const auto& g : opt.param_groups()) {
      target.sizes.emplace_back();
      for (const auto& p : g.params) target.sizes.back().push_back(p.size());
    }
    const std::size_t n = opt.num_elements();
    target.read_group = [&](std::size_t gi, const Json& hyper) {
      const std::string where = "parameter group " + std::to_string(gi);
      LBFGSOptions op = opt.param_groups()[gi].options;
      apply_options(op, hyper, /*strict_forced=*/false, where);
      try {
        op.validate(/*stepping=*/true);  // what step() takes: a schedule may leave lr a hair below 0
      } catch (const std::invalid_argument& e) {
        throw Bad(where + ": " + e.what());
      }
      options.push_back(op);
    };
    LBFGSState<T> state;
    std::set<std::string> present;
    const auto first = [&](std::size_t i, const std::string& key) {
      if (i != 0) throw Bad("LBFGS keeps its state on parameter 0, the file has some for parameter " + std::to_string(i));
      present.insert(key);
    };
    target.buffer_count = [&](std::size_t, const std::string& key) -> std::uint64_t {
      return key == "t" || key == "H_diag" ? 1 : n;
    };
    target.read_buffer = [&](std::size_t i, const std::string& key, const unsigned char* bytes, std::size_t count) {
      first(i, key);
      if (key == "d" || key == "prev_flat_grad") {
        auto& v = key == "d" ? state.d : state.prev_flat_grad;
        v.resize(count);
        for (std::size_t j = 0; j < count; ++j) v[j] = get_le<T>(bytes + j * sizeof(T));
        return true;
      }
      if (key == "t" || key == "H_diag") {
        (key == "t" ? state.t : state.H_diag) = LBFGSScalar{static_cast<double>(get_le<T>(bytes)), true};
        return true;
      }
      return false;
    };
    target.read_value = [&](std::size_t i, const std::string& key, const Json& v) {
      first(i, key);
      if (key == "func_evals" || key == "n_iter") {
        if (v.type != Json::Number || !v.is_int || v.integer < 0 || v.integer > (std::int64_t(1) << 53))
          throw Bad("state '" + key + "' must be an integer in [0, 2^53]");  // each step adds to it
        (key == "func_evals" ? state.func_evals : state.n_iter) = v.integer;
        return true;
      }
      if (key == "t" || key == "H_diag") {
        (key == "t" ? state.t : state.H_diag) = LBFGSScalar{real(v, "state '" + key + "'"), false};
        return true;
      }
      if (key == "prev_loss") {
        state.prev_loss = real(v, "state 'prev_loss'");
        return true;
      }
      return false;
    };
    target.read_list = [&](std::size_t i, const std::string& key, const std::vector<std::optional<TensorView>>& items) {
      first(i, key);
      const bool vectors = key == "old_dirs" || key == "old_stps";
      if (!vectors && key != "ro" && key != "al") return false;
      const auto element = [&](const TensorView& t) {
        if (t.tensor->dtype != target.dtype) throw Bad("tensor '" + t.name + "' must be " + target.dtype);
        if (vectors && (t.tensor->shape.size() != 1 || t.tensor->count != n))
          throw Bad("tensor '" + t.name + "' must have shape [" + std::to_string(n) + "]");
        if (!vectors && !t.tensor->scalar) throw Bad("tensor '" + t.name + "' must be 0-d");
      };
      for (const auto& item : items) {
        if (!item && key != "al") throw Bad("state list '" + key + "' cannot hold None");
        if (item) element(*item);
      }
      for (const auto& item : items) {
        if (key == "al") {
          state.al.push_back(item ? std::optional<T>(get_le<T>(item->bytes)) : std::nullopt);
        } else if (key == "ro") {
          state.ro.push_back(get_le<T>(item->bytes));
        } else {
          std::vector<T> v(n);
          for (std::size_t j = 0; j < n; ++j) v[j] = get_le<T>(item->bytes + j * sizeof(T));
          (key == "old_dirs" ? state.old_dirs : state.old_stps).push_back(std::move(v));
        }
      }
      return true;
    };
    target.check_states = [&] {
      if (present.empty()) return;  // never stepped
      for (const char* k : {"func_evals", "n_iter"})
        if (!present.count(k)) throw Bad("LBFGS state has no '" + std::string(k) + "'");
      const char* iteration[] = {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad", "prev_loss"};
      for (const char* k : iteration) {
        if (state.n_iter > 0 && !present.count(k))
          throw Bad("LBFGS state has n_iter > 0 but no '" + std::string(k) + "'");
        if (state.n_iter == 0 && present.count(k))
          throw Bad("LBFGS state has n_iter 0 but holds '" + std::string(k) + "'");
      }
      try {
        state.check(n);
      } catch (const std::invalid_argument& e) {
        throw Bad(e.what());
      }
    };
    Loaded loaded = read_checkpoint(file, target, sched);
    for (std::size_t gi = 0; gi < options.size(); ++gi) {
      opt.param_groups()[gi].options = options[gi];
      opt.param_groups()[gi].initial_lr = loaded.initial_lrs[gi];
    }
    opt.load_state(std::move(state));
    if (loaded.scheduler) loaded.scheduler();
  } catch (const Bad& e) {
    throw CheckpointError(CheckpointError::Kind::invalid, "checkpoint " + path + ": " + e.what());
  }
}

}  // namespace fastoptim
