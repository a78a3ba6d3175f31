// Time as the engine sees it. The engine never reads the wall clock: it asks a Clock,
// which is the kernel's monotonic clock in PosixStack and virtual time in the simulator.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace duet::net {

using Duration = std::chrono::nanoseconds;
/// Time since the clock's epoch (process start for PosixStack, 0 for a simulated world).
using TimePoint = std::chrono::time_point<struct ClockTag, Duration>;

/// A one-shot timer. Its handler is never called after cancel() or destruction.
class Timer {
public:
  virtual ~Timer() = default;
  /// Arms the timer to fire once after `delay`; re-arming replaces any earlier deadline.
  virtual void start(Duration delay, std::function<void()> handler) = 0;
  /// Disarms the timer; the pending handler (if any) will not run.
  virtual void cancel() = 0;
  /// True while armed and not yet fired.
  [[nodiscard]] virtual bool pending() const = 0;
};

/// Time and scheduling on one event loop: the kernel's monotonic clock for PosixStack,
/// virtual time in a SimWorld.
class Clock {
public:
  virtual ~Clock() = default;
  /// Current time on this clock.
  [[nodiscard]] virtual TimePoint now() const = 0;
  /// A new, disarmed timer on this clock's event loop.
  virtual std::unique_ptr<Timer> make_timer() = 0;
  /// Runs `fn` on the event loop soon, after the current handler returns.
  virtual void post(std::function<void()> fn) = 0;
  /// Calendar time, for protocol timestamps only (WireGuard's TAI64N): the system clock
  /// on PosixStack, a fixed epoch plus virtual time in the simulator.
  [[nodiscard]] virtual std::chrono::system_clock::time_point wall_now() const = 0;
};

/// Milliseconds as a double, for log lines and traces.
inline double to_ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace duet::net
