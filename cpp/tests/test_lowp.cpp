// core/lowp.hpp: float16/bfloat16 conversions and stochastic rounding, as a C++ user calls them.
// Every 16-bit pattern round-trips exactly (widen, then narrow to nearest even gives it back, NaN stays NaN);
// halfway cases round to even; stochastic rounding picks a neighbour, is unbiased and depends only on
// (key, element index). The Python tests compare the same code with numpy and ml_dtypes on millions of values.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

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
