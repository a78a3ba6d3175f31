// After a round over the <connection> list failed: how long to wait before the next
// (connect-retry, doubling up to its maximum), and when to stop (resolv-retry: names
// that keep failing to resolve for that long).
#pragma once

#include <optional>

#include "duet/config/config.hpp"
#include "duet/net/clock.hpp"

namespace duet::policy {

/// The wait after `failed_rounds` (1, 2, ...) rounds in a row failed: the first
/// connection's connect-retry, doubled per further round, at most its maximum.
net::Duration retry_wait(const config::Config& cfg, int failed_rounds);

/// Whether the client gives up: no name has resolved since `failing_since` and
/// resolv-retry has passed.
bool resolve_retry_exhausted(const config::Config& cfg, net::TimePoint failing_since, net::TimePoint now);

}  // namespace duet::policy
