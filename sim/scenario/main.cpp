// duet-sim run PATH...: runs scenario files (or every *.toml in folders) in the
// simulator and prints one line per scenario and a summary "N passed, N failed".
// Exit status: 0 all passed, 1 an expectation failed, 2 a scenario file is invalid,
// 3 nondeterminism detected.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "duet/sim/runner.hpp"

#ifndef DUET_VERSION
#define DUET_VERSION "0"
#endif

using namespace duet;

namespace {

std::vector<std::string> collect(const std::vector<std::string>& paths, std::vector<std::string>& missing) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::string> here;
      for (const auto& e : std::filesystem::directory_iterator(p, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".toml") here.push_back(e.path().string());
      }
      std::sort(here.begin(), here.end());
      files.insert(files.end(), here.begin(), here.end());
    } else if (std::filesystem::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      missing.push_back(p);
    }
  }
  return files;
}

struct Outcome {
  enum Kind { passed, failed, invalid, nondeterministic } kind = passed;
};

/// What one run of one scenario with one seed gave.
struct SeedRun {
  Outcome::Kind kind = Outcome::passed;
  std::vector<std::string> notes;
  double wall_ms = 0, virtual_s = 0;
};

struct Flags {
  bool check = false, perturb = false, swarming = false;
  std::string trace_path, pcap_path;
  spdlog::logger* log = nullptr;  ///< only for a single run
};

SeedRun run_seed(const sim::Scenario& scenario, const std::string& file, std::uint64_t seed, const Flags& f,
                 bool last) {
  SeedRun out;
  sim::RunOptions o;
  o.seed = seed;
  o.swarm = f.swarming;
  o.log = f.log;
  std::vector<std::string> trace_a;
  std::ofstream trace_file;
  if (!f.trace_path.empty() && last) trace_file.open(f.trace_path);
  o.trace = [&](std::string_view l) {
    if (f.check) trace_a.emplace_back(l);
    if (trace_file) trace_file << l << '\n';
  };
  if (last) o.pcap = f.pcap_path;
  const auto result = sim::run_scenario(scenario, o);
  out.wall_ms = result.wall_ms;
  out.virtual_s = net::to_ms(result.virtual_time) / 1000;
  if (result.invalid()) {
    out.kind = Outcome::invalid;
    for (const auto& e : result.errors) out.notes.push_back("INVALID " + e.to_string());
    return out;
  }
  if (f.check) {
    std::vector<std::string> trace_b;
    sim::RunOptions again = o;
    again.seed = f.perturb ? seed + 1 : seed;
    again.log = nullptr;
    again.pcap.clear();
    again.trace = [&](std::string_view l) { trace_b.emplace_back(l); };
    sim::run_scenario(scenario, again);
    for (std::size_t i = 0; i < std::max(trace_a.size(), trace_b.size()); ++i) {
      const std::string a = i < trace_a.size() ? trace_a[i] : "(end of trace)";
      const std::string b = i < trace_b.size() ? trace_b[i] : "(end of trace)";
      if (a != b) {
        out.kind = Outcome::nondeterministic;
        out.notes.push_back("nondeterminism with seed " + std::to_string(seed) + ": traces differ first at line " +
                            std::to_string(i + 1) + ":\n      run 1: " + a + "\n      run 2: " + b);
        return out;
      }
    }
  }
  if (!result.passed()) {
    out.kind = Outcome::failed;
    for (const auto& e : result.expectations) {
      if (!e.passed) {
        out.notes.push_back("expected (line " + std::to_string(e.expectation.line) + "): " + e.expectation.text +
                            "\n      saw: " + e.detail);
      }
    }
    out.notes.push_back("replay: duet-sim run " + file + " --seed " + std::to_string(seed) +
                        (f.swarming ? " --swarm 1" : "") + " -v");
  }
  return out;
}

/// Runs `count` jobs on `threads` threads (job i by `work(i)`); every job's result lands in
/// its own slot, so the output does not depend on the number of threads.
void run_jobs(std::size_t count, unsigned threads, const std::function<void(std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < count;) work(i);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < std::min<std::size_t>(threads, count); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

/// One verdict from several runs' JSON summaries (a swarm split across machines by seed
/// range): a scenario passes when it passed in every part; the first failing seed of each
/// failing one is kept; exit status as for run.
int merge_summaries(const std::vector<std::string>& parts) {
  struct Merged {
    std::string name, result = "PASS";
    std::uint64_t seeds = 0, failing_seed = 0;
    std::vector<std::string> notes;
  };
  std::map<std::string, Merged> by_file;
  std::vector<std::string> order;
  for (const auto& path : parts) {
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("scenarios")) {
      std::cerr << "duet-sim merge: " << path << " is not a duet-sim run --json summary\n";
      return 2;
    }
    for (const auto& sc : j["scenarios"]) {
      const std::string file = sc.value("file", "");
      if (!by_file.contains(file)) order.push_back(file);
      Merged& m = by_file[file];
      m.name = sc.value("name", file);
      m.seeds += sc.value("seeds", std::uint64_t{0});
      const std::string result = sc.value("result", "INVALID");
      if (result != "PASS" && m.result == "PASS") {
        m.result = result;
        m.failing_seed = sc.value("failing_seed", std::uint64_t{0});
        m.notes = sc.value("notes", std::vector<std::string>{});
      } else if (result == "FAIL" && m.result == "FAIL" &&
                 sc.value("failing_seed", std::uint64_t{0}) < m.failing_seed) {
        m.failing_seed = sc.value("failing_seed", std::uint64_t{0});
        m.notes = sc.value("notes", std::vector<std::string>{});
      }
    }
  }
  int passed = 0, failed = 0;
  bool invalid = false, nondeterministic = false;
  for (const auto& file : order) {
    const Merged& m = by_file[file];
    std::cout << m.result << "  " << m.name << "  (" << m.seeds << " seeds in " << parts.size() << " parts)\n";
    for (const auto& n : m.notes) std::cout << "    " << n << "\n";
    (m.result == "PASS" ? passed : failed) += 1;
    invalid = invalid || m.result == "INVALID";
    nondeterministic = nondeterministic || m.result == "NONDETERMINISTIC";
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  if (nondeterministic) return 3;
  if (invalid) return 2;
  return failed > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-sim: dual-stack scenarios in a deterministic simulator"};
  app.set_version_flag("--version", std::string("duet-sim ") + DUET_VERSION);
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "run scenario files or folders of them");
  std::vector<std::string> paths;
  std::optional<std::uint64_t> seed;
  std::string seeds;
  int swarm = 0;
  std::string trace_path, pcap_path;
  bool check = false, as_json = false, verbose = false, perturb = false;
  run->add_option("paths", paths, "scenario files or folders")->required();
  run->add_option("--seed", seed, "seed (default: the scenario's own, else 1)");
  run->add_option("--seeds", seeds, "a range of seeds, e.g. 1..100");
  run->add_option("--swarm", swarm,
                  "run K seeds (or those of --seeds) with link properties drawn from each scenario's [swarm] bounds");
  run->add_option("--trace", trace_path, "write the trace (JSON lines) of the last run here");
  run->add_option("--pcap", pcap_path, "write the packets of the last run here");
  run->add_flag("--check-determinism", check, "run every scenario twice per seed and compare the traces");
  run->add_flag("--json", as_json, "print results as JSON");
  run->add_flag("-v,--verbose", verbose, "print every engine event in virtual time (same as --log-level info)");
  std::string level;
  run->add_option("--log-level", level, "engine events to print: trace, debug, info, warn, error, off");
  run->add_flag("--self-test-perturb", perturb, "self-test of the determinism check: change the second run's seed");
  unsigned jobs_wanted = std::max(1u, std::thread::hardware_concurrency());
  run->add_option("-j,--jobs", jobs_wanted,
                  "runs at once, on threads (default: every core); results do not depend on it")
      ->check(CLI::Range(1u, 1024u));
  auto* merge = app.add_subcommand("merge", "merge the --json summaries of runs split by --seeds into one verdict");
  std::vector<std::string> parts;
  merge->add_option("files", parts, "JSON summaries (duet-sim run ... --json > part.json)")->required();
  CLI11_PARSE(app, argc, argv);
  if (merge->parsed()) return merge_summaries(parts);

  auto logger = spdlog::stdout_color_mt("duet-sim");
  logger->set_pattern("    %v");
  logger->set_level(verbose ? spdlog::level::info : spdlog::level::off);
  if (!level.empty()) {
    const auto l = spdlog::level::from_str(level);
    if (l == spdlog::level::off && level != "off") {
      std::cerr << "duet-sim: unknown log level '" << level << "'\n";
      return 2;
    }
    logger->set_level(l);
    verbose = l != spdlog::level::off;
  }

  std::vector<std::uint64_t> seed_list;
  if (!seeds.empty()) {
    auto dots = seeds.find("..");
    try {
      if (dots == std::string::npos) throw std::invalid_argument("no ..");
      const auto a = std::stoull(seeds.substr(0, dots));
      const auto b = std::stoull(seeds.substr(dots + 2));
      if (b < a || b - a > 100000) throw std::invalid_argument("range");
      for (auto s = a; s <= b; ++s) seed_list.push_back(s);
    } catch (const std::exception&) {
      std::cerr << "duet-sim: --seeds wants A..B with A <= B (at most 100000 seeds), not '" << seeds << "'\n";
      return 2;
    }
  }

  std::vector<std::string> missing;
  const auto files = collect(paths, missing);
  for (const auto& m : missing) std::cerr << m << ": no such file or folder\n";
  if (files.empty() && missing.empty()) {
    std::cerr << "duet-sim: no scenario files (*.toml) found\n";
    return 2;
  }
  int passed = 0, failed = 0;
  bool any_invalid = !missing.empty(), any_nondeterministic = false;
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  const auto wall_start = std::chrono::steady_clock::now();

  // Load every file, then run every (file, seed) as its own job: --jobs spreads them over
  // threads, and each file's verdict is taken from its seeds in order, as one job would.
  struct File {
    std::string path;
    std::optional<sim::Scenario> scenario;
    std::vector<sim::ScenarioError> errors;
    std::vector<std::uint64_t> seeds;
    std::vector<SeedRun> runs;
  };
  std::vector<File> loaded;
  std::vector<std::pair<std::size_t, std::size_t>> jobs;  // (file, seed index)
  Flags flags{check, perturb, swarm > 0, trace_path, pcap_path, nullptr};
  for (const auto& file : files) {
    File f;
    f.path = file;
    f.scenario = sim::load_scenario(file, f.errors);
    if (f.scenario) {
      f.seeds = seed_list;
      if (f.seeds.empty()) f.seeds.push_back(seed.value_or(f.scenario->seed));
      if (swarm > 0 && seed_list.empty()) {  // with --seeds, a swarm runs those seeds
        f.seeds.clear();
        const auto base = seed.value_or(f.scenario->seed);
        for (int k = 0; k < swarm; ++k) f.seeds.push_back(base + static_cast<std::uint64_t>(k));
      }
      f.runs.resize(f.seeds.size());
      for (std::size_t k = 0; k < f.seeds.size(); ++k) jobs.emplace_back(loaded.size(), k);
    }
    loaded.push_back(std::move(f));
  }
  const bool single = jobs.size() == 1;
  if (verbose && single) flags.log = logger.get();
  if (single && verbose)
    std::cout << "  " << loaded[jobs[0].first].scenario->name << " (seed " << loaded[jobs[0].first].seeds[0] << ")\n";
  run_jobs(jobs.size(), jobs_wanted, [&](std::size_t j) {
    auto& f = loaded[jobs[j].first];
    const std::size_t k = jobs[j].second;
    f.runs[k] = run_seed(*f.scenario, f.path, f.seeds[k], flags, k + 1 == f.seeds.size());
  });

  for (const auto& f : loaded) {
    if (!f.scenario) {
      any_invalid = true;
      ++failed;
      std::vector<std::string> v;
      for (const auto& e : f.errors) {
        std::cout << "INVALID " << e.to_string() << "\n";
        v.push_back(e.to_string());
      }
      report.push_back({{"file", f.path}, {"result", "invalid"}, {"errors", v}});
      continue;
    }
    Outcome::Kind kind = Outcome::passed;
    std::vector<std::string> notes;
    double wall_ms = 0, virtual_s = 0;
    std::uint64_t failing_seed = 0;
    for (std::size_t k = 0; k < f.runs.size(); ++k) {
      const SeedRun& r = f.runs[k];
      wall_ms += r.wall_ms;
      virtual_s = r.virtual_s;
      if (r.kind != Outcome::passed) {  // the first seed that did not pass decides
        kind = r.kind;
        notes = r.notes;
        if (r.kind == Outcome::failed) failing_seed = f.seeds[k];
        break;
      }
    }
    const auto& run_seeds = f.seeds;
    const auto& scenario = f.scenario;
    const auto& file = f.path;
    const char* word = kind == Outcome::passed    ? "PASS"
                       : kind == Outcome::failed  ? "FAIL"
                       : kind == Outcome::invalid ? "INVALID"
                                                  : "NONDETERMINISTIC";
    char timing[128];
    if (run_seeds.size() == 1) {
      std::snprintf(timing, sizeof timing, "seed %llu, virtual %.3f s, wall %.1f ms",
                    static_cast<unsigned long long>(run_seeds[0]), virtual_s, wall_ms);
    } else {
      std::snprintf(timing, sizeof timing, "%zu seeds from %llu, wall %.1f ms", run_seeds.size(),
                    static_cast<unsigned long long>(run_seeds[0]), wall_ms);
    }
    if (!as_json) {
      std::cout << word << "  " << scenario->name << "  (" << timing << ")\n";
      for (const auto& n : notes) std::cout << "    " << n << "\n";
    }
    report.push_back({{"file", file},
                      {"name", scenario->name},
                      {"result", word},
                      {"seeds", run_seeds.size()},
                      {"first_seed", run_seeds[0]},
                      {"failing_seed", failing_seed},
                      {"wall_ms", wall_ms},
                      {"notes", notes}});
    if (kind == Outcome::passed)
      ++passed;
    else
      ++failed;
    any_invalid = any_invalid || kind == Outcome::invalid;
    any_nondeterministic = any_nondeterministic || kind == Outcome::nondeterministic;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (as_json) {
    std::cout << nlohmann::ordered_json{{"passed", passed}, {"failed", failed}, {"wall_s", wall}, {"scenarios", report}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("%d passed, %d failed\n", passed, failed);
  }
  if (any_nondeterministic) return 3;
  if (any_invalid) return 2;
  return failed > 0 ? 1 : 0;
}
