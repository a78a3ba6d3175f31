// The event loop PosixStack runs on, for code that does not want to know Asio: make a
// Loop, a PosixStack on it, then run() the loop. (PosixStack also takes an
// io_context of the caller's own.)
#pragma once

#include <memory>

#include "duet/net/clock.hpp"

namespace boost::asio {
class io_context;
}

namespace duet::posix {

/// An event loop for PosixStack, run by one thread.
class Loop {
public:
  /// A loop with nothing to do yet.
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// Runs handlers until stop() is called or no work is left.
  void run();
  /// Runs handlers for at most `d` of wall time (or until stop()).
  void run_for(net::Duration d);
  /// Makes run() return as soon as the handler running now returns.
  void stop();
  /// The Asio context underneath.
  boost::asio::io_context& context();

private:
  std::unique_ptr<boost::asio::io_context> io_;
};

}  // namespace duet::posix
