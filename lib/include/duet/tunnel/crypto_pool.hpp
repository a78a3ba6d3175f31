// Crypto beside the event loop: threads that seal and open a batch's messages together.
//
// Fork and join, one batch at a time. The loop decides everything that has an order
// (counters, which keys, the replay window, what is sent or written next) before and
// after; only the cipher runs on the threads, each message into a slot of its own, while
// the loop thread takes its share. So the results come out in the order the loop gave
// them, nothing the loop owns is touched from another thread, and with no pool (the
// default on fewer than four cores, and always in the simulator) nothing changes.
#pragma once

#include <cstddef>
#include <memory>
#include <thread>
#include <type_traits>

namespace duet::tunnel {

class CryptoPool {
public:
  /// `helpers` threads besides the caller's (at least one).
  explicit CryptoPool(std::size_t helpers);
  ~CryptoPool();
  CryptoPool(const CryptoPool&) = delete;
  CryptoPool& operator=(const CryptoPool&) = delete;

  /// The helper threads.
  [[nodiscard]] std::size_t helpers() const;

  /// Calls `job(i)` once for every i < count, on the helpers and the calling thread, and
  /// returns when all have returned. Jobs must touch only what is theirs (slot i).
  template <typename Job>
  void run(std::size_t count, Job&& job) {
    run_erased(count, &job, [](void* j, std::size_t i) { (*static_cast<std::remove_reference_t<Job>*>(j))(i); });
  }

  /// How many helpers `crypto-threads auto` means on a machine with `cores` cores: none
  /// below four (both ends of a tunnel and the applications share them; measured in
  /// bench/RESULTS.md), else all but one, at most eight.
  static std::size_t automatic(unsigned cores = std::thread::hardware_concurrency());

private:
  void run_erased(std::size_t count, void* job, void (*call)(void*, std::size_t));
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace duet::tunnel
