// The crypto threads (crypto-threads): the pool runs every job of a batch exactly once and
// returns only when all are done, and data messages sealed and opened on it are the same
// bytes, in the same order, as on one thread. Also built with ThreadSanitizer in CI
// (.ci/test): the pool and the cipher's per-thread contexts must show no race.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "duet/tunnel/crypto.hpp"
#include "duet/tunnel/crypto_pool.hpp"
#include "duet/tunnel/noise.hpp"

namespace duet::tunnel {
namespace {

TEST(CryptoPool, EveryJobOfEveryBatchRunsOnceBeforeRunReturns) {
  for (const std::size_t helpers : {1, 3}) {
    CryptoPool pool(helpers);
    EXPECT_EQ(pool.helpers(), helpers);
    std::vector<std::atomic<int>> runs(300);
    for (std::size_t batch = 0; batch < 500; ++batch) {
      const std::size_t count = batch % 300;
      for (auto& r : runs) r.store(0, std::memory_order_relaxed);
      pool.run(count, [&](std::size_t i) { runs[i].fetch_add(1, std::memory_order_relaxed); });
      for (std::size_t i = 0; i < runs.size(); ++i) {
        ASSERT_EQ(runs[i].load(), i < count ? 1 : 0) << "job " << i << " of a batch of " << count;
      }
    }
  }
}

TEST(CryptoPool, AutomaticLeavesMachinesBelowFourCoresOnOneThread) {
  EXPECT_EQ(CryptoPool::automatic(1), 0u);
  EXPECT_EQ(CryptoPool::automatic(2), 0u);
  EXPECT_EQ(CryptoPool::automatic(3), 0u);
  EXPECT_EQ(CryptoPool::automatic(4), 3u);
  EXPECT_EQ(CryptoPool::automatic(64), 8u);
}

// As the device does it: counters given out in order on the calling thread, each message
// sealed into its own slot on the pool, then opened on the pool; the bytes equal what one
// thread makes, and every packet comes back.
TEST(CryptoPool, MessagesSealedAndOpenedOnThreadsAreTheOneThreadBytes) {
  ASSERT_TRUE(crypto_init());
  Keypair send, receive;
  send.send = receive.receive = Key{7};
  send.remote_index = receive.local_index = 42;
  std::vector<Bytes> packets;
  for (std::size_t i = 0; i < 200; ++i) {
    Bytes p(60 + (i * 37) % 1360);
    for (std::size_t b = 0; b < p.size(); ++b) p[b] = static_cast<std::uint8_t>(i + b * 3);
    packets.push_back(std::move(p));
  }
  CryptoPool pool(3);
  for (int round = 0; round < 20; ++round) {
    std::vector<Bytes> sealed(packets.size()), opened(packets.size());
    std::vector<std::optional<std::uint64_t>> counters(packets.size());
    const std::uint64_t first = static_cast<std::uint64_t>(round) * packets.size();
    for (std::size_t i = 0; i < packets.size(); ++i) sealed[i].resize(data_message_size(packets[i].size(), 1420));
    pool.run(packets.size(),
             [&](std::size_t i) { (void)encrypt_data_to(send, first + i, packets[i], sealed[i], 1420); });
    for (std::size_t i = 0; i < packets.size(); ++i) {
      Bytes reference;
      encrypt_data_into(send, first + i, packets[i], reference, 1420);
      ASSERT_EQ(sealed[i], reference) << "message " << i;
      opened[i].resize(sealed[i].size() - kDataMinLength);
    }
    pool.run(packets.size(), [&](std::size_t i) { counters[i] = decrypt_data_to(receive, sealed[i], opened[i]); });
    for (std::size_t i = 0; i < packets.size(); ++i) {
      ASSERT_EQ(counters[i], first + i);
      EXPECT_EQ(Bytes(opened[i].begin(), opened[i].begin() + static_cast<std::ptrdiff_t>(packets[i].size())),
                packets[i]);
    }
  }
}

}  // namespace
}  // namespace duet::tunnel
