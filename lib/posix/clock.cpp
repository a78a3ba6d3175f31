// The kernel's monotonic clock and Asio timers, as the engine's Clock.
#include "asio_glue.hpp"

namespace duet::posix::detail {

namespace {

// ---------------------------------------------------------------------------------------
// Clock and timers

class PosixClock final : public net::Clock {
public:
  explicit PosixClock(asio::io_context& io) : io_(io), epoch_(std::chrono::steady_clock::now()) {}

  net::TimePoint now() const override {
    return net::TimePoint(std::chrono::duration_cast<net::Duration>(std::chrono::steady_clock::now() - epoch_));
  }

  std::unique_ptr<net::Timer> make_timer() override;

  void post(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }

  std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }

private:
  asio::io_context& io_;
  std::chrono::steady_clock::time_point epoch_;
};

class PosixTimer final : public net::Timer {
public:
  explicit PosixTimer(asio::io_context& io) : state_(std::make_shared<State>(io)) {}
  ~PosixTimer() override { cancel(); }

  void start(net::Duration delay, std::function<void()> handler) override {
    state_->handler = std::move(handler);
    const auto generation = ++state_->generation;
    state_->armed = true;
    state_->timer.expires_after(delay);
    // The wait's operation comes from the timer's own block (a timer re-armed from its
    // handler allocates nothing; one re-armed while a cancelled wait is still queued does).
    state_->timer.async_wait(with_memory(
        state_->memory, [weak = std::weak_ptr<State>(state_), generation](const boost::system::error_code& ec) {
          auto s = weak.lock();
          // A handler queued before cancel() still arrives with success: the generation
          // tells it apart from the current arming.
          if (!s || ec || !s->armed || s->generation != generation) return;
          s->armed = false;
          auto h = std::move(s->handler);
          h();
        }));
  }

  void cancel() override {
    state_->armed = false;
    ++state_->generation;
    state_->handler = nullptr;
    state_->timer.cancel();
  }

  bool pending() const override { return state_->armed; }

private:
  struct State {
    explicit State(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::shared_ptr<HandlerMemory> memory = std::make_shared<HandlerMemory>();
    std::function<void()> handler;
    std::uint64_t generation = 0;
    bool armed = false;
  };
  std::shared_ptr<State> state_;
};

std::unique_ptr<net::Timer> PosixClock::make_timer() { return std::make_unique<PosixTimer>(io_); }

}  // namespace

std::unique_ptr<net::Clock> make_clock(asio::io_context& io) { return std::make_unique<PosixClock>(io); }

}  // namespace duet::posix::detail
