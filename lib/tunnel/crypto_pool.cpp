#include "duet/tunnel/crypto_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace duet::tunnel {

struct CryptoPool::Shared {
  std::mutex mutex;
  std::condition_variable wake, finished;
  std::uint64_t generation = 0;  ///< bumped for every batch
  bool stopping = false;
  // The batch in progress (set under the mutex before `generation` is bumped).
  void* job = nullptr;
  void (*call)(void*, std::size_t) = nullptr;
  std::size_t count = 0;
  std::atomic<std::size_t> next{0};
  std::size_t busy = 0;  ///< helpers not yet done with this batch
  std::vector<std::thread> threads;

  /// Takes jobs until none is left.
  void work(void* j, void (*c)(void*, std::size_t), std::size_t n) {
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) c(j, i);
  }

  void helper() {
    std::uint64_t seen = 0;
    for (;;) {
      void* j = nullptr;
      void (*c)(void*, std::size_t) = nullptr;
      std::size_t n = 0;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || generation != seen; });
        if (stopping) return;
        seen = generation;
        j = job;
        c = call;
        n = count;
      }
      work(j, c, n);
      const std::lock_guard lock(mutex);
      if (--busy == 0) finished.notify_one();
    }
  }
};

CryptoPool::CryptoPool(std::size_t helpers) : shared_(std::make_shared<Shared>()) {
  for (std::size_t i = 0; i < std::max<std::size_t>(helpers, 1); ++i)
    shared_->threads.emplace_back([s = shared_.get()] { s->helper(); });
}

CryptoPool::~CryptoPool() {
  {
    const std::lock_guard lock(shared_->mutex);
    shared_->stopping = true;
  }
  shared_->wake.notify_all();
  for (auto& t : shared_->threads) t.join();
}

std::size_t CryptoPool::helpers() const { return shared_->threads.size(); }

void CryptoPool::run_erased(std::size_t count, void* job, void (*call)(void*, std::size_t)) {
  Shared& s = *shared_;
  if (count == 0) return;
  if (count == 1) {  // not worth a wake-up
    call(job, 0);
    return;
  }
  {
    const std::lock_guard lock(s.mutex);
    s.job = job;
    s.call = call;
    s.count = count;
    s.next.store(0);
    s.busy = s.threads.size();
    ++s.generation;
  }
  s.wake.notify_all();
  s.work(job, call, count);
  // Every helper checks in, even one that found nothing left: none may still be reading
  // this batch's job when the next one is set.
  std::unique_lock lock(s.mutex);
  s.finished.wait(lock, [&] { return s.busy == 0; });
}

std::size_t CryptoPool::automatic(unsigned cores) { return cores < 4 ? 0 : std::min<std::size_t>(cores - 1, 8); }

}  // namespace duet::tunnel
