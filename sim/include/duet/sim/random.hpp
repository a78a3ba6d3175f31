// The simulator's only source of randomness: xoshiro256** seeded through splitmix64,
// with distributions written here so a seed means the same run with any standard library.
#pragma once

#include <cstdint>

#include "duet/net/clock.hpp"

namespace duet::sim {

/// A seeded generator with distributions of its own, so a seed means the same run
/// with any standard library.
class Random {
public:
  /// The generator for `seed`.
  explicit Random(std::uint64_t seed);

  /// Next raw 64-bit value.
  std::uint64_t next();
  /// Uniform integer in [0, bound); bound 0 gives 0.
  std::uint64_t below(std::uint64_t bound);
  /// Uniform in [0, 1) with 53 bits of precision.
  double unit();
  /// True with probability p (p <= 0 never draws a value, so it costs no randomness).
  bool chance(double p);
  /// Uniform duration in [0, max].
  net::Duration up_to(net::Duration max);

private:
  std::uint64_t s_[4];
};

}  // namespace duet::sim
