// core/lowp.hpp: float16/bfloat16 conversions and stochastic rounding, as a C++ user calls them.
// Every 16-bit pattern round-trips exactly (widen, then narrow to nearest even gives it back, NaN stays NaN);
// halfway cases round to even; stochastic rounding picks a neighbour, is unbiased and depends only on
// (key, element index). The Python tests compare the same code with numpy and ml_dtypes on millions of values.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#ifdef __F16C__
#include <immintrin.h>
#endif

#include <fastoptim/adam/adam_kernel.hpp>
#include <fastoptim/core/lowp.hpp>
#include <fastoptim/sgd/sgd_kernel.hpp>

namespace {

int failures = 0;

std::vector<float> widened(const std::vector<fastoptim::bfloat16_bits>& x) {
  std::vector<float> out;
  for (auto v : x) out.push_back(fastoptim::widen(v));
  return out;
}

bool same_bits(const std::vector<fastoptim::bfloat16_bits>& x, const std::vector<float>& rounded_from) {
  for (std::size_t i = 0; i < x.size(); ++i)
    if (x[i].bits != fastoptim::f32_to_bf16(rounded_from[i])) return false;
  return true;
}

void check(bool ok, const char* what, double a = 0, double b = 0) {
  if (!ok) {
    std::printf("FAILED: %s (%.9g vs %.9g)\n", what, a, b);
    ++failures;
  }
}

// The all-integer float32 -> float16 rounding lowp.hpp used before its subnormal case became one float add:
// an independent reference for the exhaustive check below.
std::uint16_t integer_f32_to_f16(float f) {
  using fastoptim::mask_of;
  using fastoptim::select;
  const std::uint32_t u = fastoptim::float_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000U;
  const std::uint32_t a = u & 0x7fffffffU;
  const std::uint32_t normal = (a - (112U << 23) + 0xfffU + ((a >> 13) & 1U)) >> 13;
  const std::uint32_t e = a >> 23;
  const std::uint32_t shift_raw = 126U - (e < 126U ? e : 126U);
  const std::uint32_t shift = shift_raw > 31U ? 31U : (shift_raw < 1U ? 1U : shift_raw);
  const std::uint32_t m = (a & 0x7fffffU) | 0x800000U;
  const std::uint32_t q = m >> shift, rem = m & ((1U << shift) - 1U), half = 1U << (shift - 1U);
  const std::uint32_t sub = q + ((rem > half || (rem == half && (q & 1U))) ? 1U : 0U);
  std::uint32_t out = a < 0x38800000U ? sub : normal;
  if (a >= 0x47800000U) out = 0x7c00U;
  if (a > 0x7f800000U) out = 0x7e00U | ((a >> 13) & 0x3ffU);
  return static_cast<std::uint16_t>(sign | out);
}

}  // namespace

int main() {
  using namespace fastoptim;
  // Round trips of every pattern.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto x = static_cast<std::uint16_t>(h);
    const float b = bf16_to_f32(x), f = f16_to_f32(x);
    if (std::isnan(b))
      check(std::isnan(bf16_to_f32(f32_to_bf16(b))), "bfloat16 NaN stays NaN");
    else
      check(f32_to_bf16(b) == x, "bfloat16 round trip", h, f32_to_bf16(b));
    if (std::isnan(f))
      check(std::isnan(f16_to_f32(f32_to_f16(f))), "float16 NaN stays NaN");
    else
      check(f32_to_f16(f) == x, "float16 round trip", h, f32_to_f16(f));
  }
  // Every float16 to float32, against its definition.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const std::uint32_t e = (h >> 10) & 0x1fU, m = h & 0x3ffU;
    const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                             : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1.0f + m / 1024.0f, static_cast<int>(e) - 15);
    const float want = (h & 0x8000U) ? -mag : mag;
    const float got = f16_to_f32(static_cast<std::uint16_t>(h));
    const bool ok = e == 31 && m ? float_bits(got) == (((h & 0x8000U) << 16) | 0x7f800000U | (m << 13))
                                 : float_bits(got) == float_bits(want);
    if (!ok) check(false, "float16 -> float32", h, got);
  }
  // float32 to float16 against the integer reference (and the F16C instruction where compiled in): every
  // input whose result is subnormal, zero or the smallest normals (exponents 100 to 113, where the rounding
  // position moves), and elsewhere every pattern of the 13 rounded-off bits under 8 patterns of the kept
  // significand (the rest of the input only passes through). About 2^28 inputs, under a second.
  {
    std::uint64_t mismatches = 0;
    std::vector<float> in;
    std::vector<std::uint16_t> out;
    const std::uint32_t kept[8] = {0x000U, 0x001U, 0x155U, 0x1ffU, 0x200U, 0x2aaU, 0x3feU, 0x3ffU};
    for (std::uint32_t top = 0; top < 512; ++top) {  // sign and exponent
      const std::uint32_t e = top & 0xffU;
      in.clear();
      if (e >= 100 && e <= 113) {
        for (std::uint32_t m = 0; m < (1U << 23); ++m) in.push_back(bits_float((top << 23) | m));
      } else {
        for (std::uint32_t k = 0; k < 8; ++k)
          for (std::uint32_t low = 0; low < (1U << 13); ++low) in.push_back(bits_float((top << 23) | (kept[k] << 13) | low));
      }
      out.resize(in.size());
      f32_to_f16(in.data(), out.data(), in.size());  // the vectorized array loop
      for (std::size_t i = 0; i < in.size(); ++i) {
        bool ok = out[i] == integer_f32_to_f16(in[i]);
#ifdef __F16C__
        ok = ok && out[i] == _cvtss_sh(in[i], _MM_FROUND_TO_NEAREST_INT);
#endif
        if (!ok && mismatches++ < 5) check(false, "float32 -> float16", in[i], out[i]);
      }
    }
  }
  // Known values: halfway cases to even, overflow, the smallest subnormal, signed zero.
  check(f16_to_f32(0x3c00) == 1.0f && f16_to_f32(0x0001) == 5.9604644775390625e-8f, "float16 values");
  check(f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "float16 tie to even (down)");
  check(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "float16 tie to even (up)");
  check(f32_to_f16(65520.0f) == 0x7c00 && f32_to_f16(65519.0f) == 0x7bff, "float16 overflow threshold");
  check(f32_to_f16(0x1p-25f) == 0 && f32_to_f16(0x1.000002p-25f) == 1, "float16 smallest subnormal");
  check(f32_to_f16(-0.0f) == 0x8000 && f32_to_bf16(-0.0f) == 0x8000, "signed zero");
  check(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 && f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bfloat16 ties");
  check(f32_to_bf16(INFINITY) == 0x7f80 && f32_to_f16(-INFINITY) == 0xfc00, "infinities");

  // Stochastic rounding: 1 + 2^-10 is 1/8 of the way to the next bfloat16.
  const std::size_t n = 1 << 18;
  std::vector<float> x(n, 1.0f + 0x1p-10f);
  std::vector<std::uint16_t> a(n), b(n), part(1000);
  f32_to_bf16_stochastic(x.data(), a.data(), n, rounding_key(1, 2, 3, 0), 0);
  f32_to_bf16_stochastic(x.data(), b.data(), n, rounding_key(1, 2, 3, 0), 0);
  f32_to_bf16_stochastic(x.data(), part.data(), 1000, rounding_key(1, 2, 3, 0), 5000);
  double mean = 0;
  bool neighbours = true, same = true, split = true;
  for (std::size_t i = 0; i < n; ++i) {
    neighbours = neighbours && (a[i] == 0x3f80 || a[i] == 0x3f81);
    same = same && a[i] == b[i];
    mean += bf16_to_f32(a[i]);
  }
  for (std::size_t i = 0; i < 1000; ++i) split = split && part[i] == a[5000 + i];
  mean /= static_cast<double>(n);
  const double sigma = 0x1p-7 * std::sqrt(0.125 * 0.875 / static_cast<double>(n));
  check(neighbours, "stochastic rounding picks a neighbour");
  check(same, "stochastic rounding is reproducible");
  check(split, "stochastic rounding does not depend on the split");
  check(std::fabs(mean - (1.0 + 0x1p-10)) < 5 * sigma, "stochastic rounding is unbiased", mean, 1.0 + 0x1p-10);
  check(rounding_key(1, 2, 3, 0) != rounding_key(1, 3, 3, 0) && rounding_key(1, 2, 3, 0) != rounding_key(2, 2, 3, 0),
        "keys differ by step and seed");

  // Kernels that load and store 16-bit arrays themselves (adam_step_stored, sgd_step_stored) give the bits of
  // "widen, float32 step, round": all-bfloat16 (parameter, gradient, state), and float32 master weights with
  // a bfloat16 copy written alongside.
  {
    const std::size_t m = 3001;  // a tail after the vector bodies, and two threads' worth with grain 1000
    std::vector<bfloat16_bits> p(m), g(m), s1(m), s2(m), copy(m);
    for (std::size_t i = 0; i < m; ++i) {
      p[i].bits = f32_to_bf16(std::sin(0.37f * static_cast<float>(i)));
      g[i].bits = f32_to_bf16(std::cos(1.3f * static_cast<float>(i)) * 0.1f);
      s1[i].bits = f32_to_bf16(0.01f * std::sin(static_cast<float>(i)));
      s2[i].bits = f32_to_bf16(1e-4f * (1.5f + std::cos(static_cast<float>(i))));
    }
    std::vector<float> pf = widened(p), gf = widened(g), s1f = widened(s1), s2f = widened(s2), master = pf;
    AdamHyper ah;
    ah.weight_decay = 0.01;
    ah.decoupled_weight_decay = true;
    adam_step_stored<float, bfloat16_bits, bfloat16_bits, bfloat16_bits>(p.data(), g.data(), s1.data(), s2.data(),
                                                                          nullptr, nullptr, m, ah, 3.0, 1000);
    std::vector<float> m1 = s1f, m2 = s2f;
    adam_step<float>(pf.data(), gf.data(), m1.data(), m2.data(), nullptr, m, ah, 3.0);
    check(same_bits(p, pf) && same_bits(s1, m1) && same_bits(s2, m2), "all-bfloat16 Adam = float32 Adam rounded");

    std::vector<float> mom = s1f, mom_ref = s1f, master_ref = master;
    SGDHyper sh;
    sh.lr = 0.05;
    sh.momentum = 0.9;
    sh.nesterov = true;
    sgd_step_stored<float, float, bfloat16_bits, float, bfloat16_bits>(master.data(), g.data(), mom.data(), copy.data(),
                                                                       false, m, sh, 1000);
    sgd_step<float>(master_ref.data(), gf.data(), mom_ref.data(), false, m, sh);
    bool ok = same_bits(copy, master_ref);
    for (std::size_t i = 0; i < m; ++i) ok = ok && master[i] == master_ref[i] && mom[i] == mom_ref[i];
    check(ok, "SGD with float32 master weights and a bfloat16 copy = float32 SGD");
  }

  if (failures) return EXIT_FAILURE;
  std::printf("test_lowp: all passed\n");
  return EXIT_SUCCESS;
}
