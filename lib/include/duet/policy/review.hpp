// The socket policy's verdicts on a configuration as written, before anything runs: a
// bind that cannot reach a remote's literal addresses (rule 6 of the "Socket Rework"
// note; names get the same check, in the same words, once they resolve) and a Happy
// Eyeballs delay outside RFC 8305's bounds. The loader checks the language; this checks
// what the language says against the policy.
#pragma once

#include "duet/config/config.hpp"
#include "duet/config/loader.hpp"
#include "duet/net/clock.hpp"

namespace duet::policy {

/// RFC 8305's connection attempt delay for a connection: 0 stays 0 (racing off), anything
/// else is clamped into [100 ms, 2 s]. The one place the bounds are applied.
net::Duration attempt_delay(const config::Connection& c);

/// Warnings and errors of the policy about `cfg`, tied to the lines they are about.
config::Diagnostics review(const config::Config& cfg);

/// `loaded` with review()'s diagnostics added (when it loaded without errors).
config::LoadResult reviewed(config::LoadResult loaded);

}  // namespace duet::policy
