// core/math.hpp's division by a loop-invariant divisor: x times 1/c in double, rounded once to float, must
// be x / c exactly. Checked bit for bit on every significand of one binade (the proof does not depend on
// the exponent) for many divisors, and on random floats of every exponent (subnormals, overflow) and the
// special values.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <fastoptim/core/math.hpp>

namespace {

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float from_bits(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// The division, kept a division: volatile stops the compiler from rewriting it with the reciprocal.
float divide(float x, float c) {
  volatile float q = x / c;
  return q;
}

long failures = 0;

void check(float x, float c) {
  const float want = divide(x, c);
  const float got = fastoptim::divide_by_inverse(x, 1.0 / static_cast<double>(c));
  const float cls = fastoptim::ConstDivisor<float>(c).divide(x);
  const bool ok = std::isnan(want) ? (std::isnan(got) && std::isnan(cls)) : (bits(got) == bits(want) && bits(cls) == bits(want));
  if (!ok && failures++ < 20) std::printf("FAILED: %.9g / %.9g = %.9g, got %.9g and %.9g\n", x, c, want, got, cls);
}

}  // namespace

int main() {
  std::mt19937 rng(2026);
  std::vector<float> divisors = {1.0f, 0.5f, 3.0f, 0.1f, 0.999f, 1e-30f, 3e38f, std::numeric_limits<float>::denorm_min(),
                                 std::numeric_limits<float>::min(), 1.17549421e-38f /* largest subnormal */};
  // Adam's divisors: sqrt(1 - beta2^t) and 1 - beta^t, as the kernels round them.
  for (double beta : {0.9, 0.99, 0.999, 0.9999})
    for (double t : {1.0, 2.0, 3.0, 10.0, 100.0, 1000.0, 12345.0}) {
      divisors.push_back(static_cast<float>(std::sqrt(1.0 - std::pow(beta, t))));
      divisors.push_back(static_cast<float>(1.0 - std::pow(beta, t)));
    }
  std::uniform_int_distribution<std::uint32_t> any_bits;
  while (divisors.size() < 64) {  // random positive normal divisors of every exponent
    const float c = from_bits(any_bits(rng) & 0x7fffffffu);
    if (std::isnormal(c)) divisors.push_back(c);
  }
  for (const float c : divisors) {
    for (std::uint32_t m = 0; m < (1u << 23); ++m) {  // every significand in [1, 2), both signs
      const float x = from_bits(0x3f800000u | m);
      check(x, c);
      check(-x, c);
    }
    for (int i = 0; i < 200000; ++i) check(from_bits(any_bits(rng)), c);  // every exponent, NaNs included
  }
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::denorm_min(), 1.0f, -2.5f};
  for (const float c : specials)
    for (const float x : specials) check(x, c);
  if (failures) {
    std::printf("%ld failures\n", failures);
    return 1;
  }
  std::printf("divide_by_inverse equals the division on %zu divisors\n", divisors.size());
  return 0;
}
