#pragma once
// CosineAnnealingWarmRestarts: SGDR cosine annealing with warm restarts every T_i epochs, T_i growing by
// T_mult after each restart (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts). Like torch, step()
// keeps its own T_cur / T_i bookkeeping and does not count steps (step_count stays 0).

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  struct Params {
    std::int64_t T_0 = 1;
    std::int64_t T_mult = 1;
    double eta_min = 0.0;
    std::int64_t T_i = 1;  // the current period (state)
    double T_cur = 0.0;    // epochs since the last restart (state; fractional after step(epoch))
  };

  CosineAnnealingWarmRestarts(GroupsAccess& groups, std::int64_t T_0, std::int64_t T_mult = 1, double eta_min = 0.0,
                              std::int64_t last_epoch = -1)
      : LRScheduler((check(T_0, T_mult), groups), last_epoch),
        params{T_0, T_mult, eta_min, T_0, static_cast<double>(last_epoch)} {
    initial_step();
  }

  static void check(std::int64_t T_0, std::int64_t T_mult) {
    if (T_0 <= 0) throw std::invalid_argument("Expected positive integer T_0, but got " + std::to_string(T_0));
    if (T_mult < 1) throw std::invalid_argument("Expected integer T_mult >= 1, but got " + std::to_string(T_mult));
    // The next period T_0 * T_mult must stay within 2^53, as a checkpoint requires of T_i * T_mult.
    if (T_0 > kMaxEpoch / T_mult)
      throw std::invalid_argument("T_0 * T_mult must be at most 2^53, got T_0 " + std::to_string(T_0) + " and T_mult " +
                                  std::to_string(T_mult));
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  void step() override { step_impl(std::nullopt); }
  // torch's step(epoch): jump to a (possibly fractional) epoch.
  void step(double epoch) { step_impl(epoch); }

  std::vector<double> get_lr() override {
    constexpr double pi = 3.14159265358979323846;
    std::vector<double> lrs = base_lrs_;
    const double c = 1 + std::cos(pi * params.T_cur / static_cast<double>(params.T_i));
    for (double& lr : lrs) lr = params.eta_min + (lr - params.eta_min) * c / 2;
    return lrs;
  }

 private:
  // Computes the new T_cur / T_i / last_epoch first and commits them only when nothing threw. Periods stay
  // within 2^53 / T_mult (so the next T_i * T_mult cannot overflow), epochs below 2^53.
  void step_impl(std::optional<double> epoch) {
    if (!epoch && last_epoch_ < 0) epoch = 0.0;
    if (params.T_0 <= 0 || params.T_mult < 1 || params.T_i <= 0)
      throw std::invalid_argument("CosineAnnealingWarmRestarts: T_0, T_i must be positive and T_mult >= 1");
    const std::int64_t limit = kMaxEpoch / params.T_mult;  // the largest period allowed
    Params next = params;
    double e;
    if (!epoch) {
      if (last_epoch_ >= kMaxEpoch) throw std::domain_error("CosineAnnealingWarmRestarts step: last_epoch would pass 2^53");
      e = static_cast<double>(last_epoch_ + 1);
      next.T_cur = params.T_cur + 1;
      if (next.T_cur >= static_cast<double>(params.T_i)) {
        if (params.T_i > limit / params.T_mult)
          throw std::domain_error("CosineAnnealingWarmRestarts: the next period T_i * T_mult would pass 2^53");
        next.T_cur = py_mod(next.T_cur, static_cast<double>(params.T_i));
        next.T_i = params.T_i * params.T_mult;
      }
    } else {
      e = *epoch;
      // torch's math.floor(epoch) raises for NaN (ValueError) and infinity; huge epochs would overflow int64.
      if (std::isnan(e)) throw std::invalid_argument("cannot convert float NaN to integer");
      if (!(std::fabs(e) < static_cast<double>(kMaxEpoch)))
        throw std::invalid_argument("Expected a finite epoch below 2^53, but got " + repr(e));
      if (e < 0) throw std::invalid_argument("Expected non-negative epoch, but got " + repr(e));
      const double T0 = static_cast<double>(params.T_0);
      if (e >= T0) {
        if (params.T_mult == 1) {
          next.T_cur = py_mod(e, T0);
        } else {
          const double m = static_cast<double>(params.T_mult);
          const auto n = static_cast<std::int64_t>(std::log(e / T0 * (m - 1) + 1) / std::log(m));
          // p = T_mult ** n with T_0 * p <= limit, checked before each multiply.
          std::int64_t p = 1;
          for (std::int64_t k = 0; k < n; ++k) {
            if (p > limit / params.T_0 / params.T_mult)
              throw std::domain_error("CosineAnnealingWarmRestarts: the period T_i for epoch " + repr(e) +
                                        " would pass 2^53");
            p *= params.T_mult;
          }
          next.T_cur = e - static_cast<double>(params.T_0 * (p - 1)) / (m - 1);
          next.T_i = params.T_0 * p;
        }
      } else {
        next.T_i = params.T_0;
        next.T_cur = e;
      }
    }
    const Params saved = params;
    const std::int64_t saved_epoch = last_epoch_;
    params = next;
    last_epoch_ = static_cast<std::int64_t>(std::floor(e));
    try {
      apply(get_lr());
    } catch (...) {
      params = saved;
      last_epoch_ = saved_epoch;
      throw;
    }
  }

  static double py_mod(double a, double b) {
    double r = std::fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
  static std::string repr(double v) {
    char buf[32];
    for (int prec = 1; prec <= 17; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    std::string s(buf);
    if (s.find_first_of(".eni") == std::string::npos) s += ".0";
    return s;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
