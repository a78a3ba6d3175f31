#include "duet/posix/loop.hpp"

#include "asio_glue.hpp"

namespace duet::posix {

Loop::Loop() : io_(std::make_unique<boost::asio::io_context>()) {}
Loop::~Loop() = default;

void Loop::run() {
  io_->restart();
  io_->run();
}

void Loop::run_for(net::Duration d) {
  io_->restart();
  io_->run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

void Loop::stop() { io_->stop(); }

boost::asio::io_context& Loop::context() { return *io_; }

}  // namespace duet::posix
