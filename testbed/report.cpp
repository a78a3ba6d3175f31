#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>

#include "testbed.hpp"

namespace duet::testbed {

using json = nlohmann::json;

std::optional<double> ms_after(const std::string& detail) {
  static const std::regex ms(R"(([0-9]+(\.[0-9]+)?) ms after)");
  std::smatch m;
  if (!std::regex_search(detail, m, ms)) return std::nullopt;
  return std::stod(m[1].str());
}

/// The fidelity report: per scenario, whether the two worlds agree, and how their
/// timings differ.
int report(const std::string& path) {
  std::ifstream in(path);
  int agree = 0, disagree = 0, only = 0;
  std::string rows, moves;
  // "reconnected to X 841.0 ms after" -> "841 ms"
  const auto after = [](const json& x, const char* key) -> std::string {
    const auto ms = ms_after(x.value(key, ""));
    return ms ? std::to_string(std::lround(*ms)) + " ms" : "–";
  };
  // Issue 16's bound: the kernel within 10 % of the simulator's time, or within 5 ms.
  int close_firsts = 0, firsts = 0, close_moves = 0, all_moves = 0;
  std::string misses;
  const auto ms_of = [](const std::string& text) -> std::optional<double> {
    static const std::regex after(R"(after ([0-9]+(\.[0-9]+)?) ms)");
    std::smatch m;
    if (!std::regex_search(text, m, after)) return std::nullopt;
    return std::stod(m[1].str());
  };
  const auto close = [](double sim, double kernel) { return std::abs(kernel - sim) <= std::max(5.0, 0.1 * sim); };
  // Against the simulator's range over seeds where the links are random (judge.cpp).
  const auto close_to = [&](const json& x, double sim, double kernel) {
    if (!x.contains("sim_range")) return close(sim, kernel);
    const double lo = x["sim_range"]["min_ms"].get<double>(), hi = x["sim_range"]["max_ms"].get<double>();
    return close(lo, kernel) || close(hi, kernel) || (kernel >= lo && kernel <= hi);
  };
  const auto range_text = [](const json& x) -> std::string {
    if (!x.contains("sim_range")) return "";
    return " (" + std::to_string(x["sim_range"]["seeds"].get<int>()) +
           " seeds: " + std::to_string(x["sim_range"]["min_ms"].get<long>()) + "-" +
           std::to_string(x["sim_range"]["max_ms"].get<long>()) + " ms)";
  };
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("scenario")) continue;
    std::string file = j["scenario"].get<std::string>();
    file = file.substr(file.rfind('/') + 1);
    if (j.contains("simulator_only")) {
      ++only;
      rows += "| " + file + " | – | – | simulator-only | " + j["simulator_only"].get<std::string>() + " |\n";
      continue;
    }
    std::string differ;
    for (const auto& x : j["expectations"]) {
      const std::string sentence = x["sentence"].get<std::string>();
      if (x["kernel"].is_boolean() && x["sim"] != x["kernel"]) {
        differ += "\"" + sentence + "\": sim " + (x["sim"].get<bool>() ? "pass" : "fail") + ", kernel " +
                  (x["kernel"].get<bool>() ? "pass" : "fail") + " (" + x["kernel_detail"].get<std::string>() + "); ";
      }
      if (sentence.find(" reconnects ") != std::string::npos) {
        moves += "| " + file.substr(0, file.find('-')) + " | " + sentence + " | " + after(x, "sim_detail") +
                 range_text(x) + " | " + after(x, "kernel_detail") + " |\n";
        const auto sim_ms = ms_after(x.value("sim_detail", "")), kernel_ms = ms_after(x.value("kernel_detail", ""));
        if (sim_ms && kernel_ms) {
          ++all_moves;
          if (close_to(x, *sim_ms, *kernel_ms)) {
            ++close_moves;
          } else {
            misses += "- " + file.substr(0, file.find('-')) + ", \"" + sentence + "\": simulator " +
                      after(x, "sim_detail") + range_text(x) + ", kernel " + after(x, "kernel_detail") + "\n";
          }
        }
      }
    }
    std::string timing;
    for (const auto& i : j["instances"]) {
      timing += i["name"].get<std::string>() + ": sim " + i["sim"].get<std::string>() + range_text(i) + ", kernel " +
                i["kernel"].get<std::string>() + "; ";
      const auto sim_ms = ms_of(i["sim"].get<std::string>()), kernel_ms = ms_of(i["kernel"].get<std::string>());
      if (sim_ms && kernel_ms) {
        ++firsts;
        if (close_to(i, *sim_ms, *kernel_ms)) {
          ++close_firsts;
        } else {
          misses += "- " + file.substr(0, file.find('-')) + ", " + i["name"].get<std::string>() +
                    "'s first connection: simulator " + std::to_string(static_cast<int>(*sim_ms)) + " ms" +
                    range_text(i) + ", kernel " + std::to_string(static_cast<int>(*kernel_ms)) + " ms\n";
        }
      }
    }
    const bool same = differ.empty();
    (same ? agree : disagree) += 1;
    rows += "| " + file + " | " + (j["sim_passed"].get<bool>() ? "pass" : "FAIL") + " | " +
            (j["kernel_passed"].get<bool>() ? "pass" : "FAIL") + " | " + (same ? "agree" : "**disagree**") + " | " +
            (same ? timing : differ + timing) + " |\n";
  }
  std::cout
      << "| scenario | sim | kernel | verdict | first connections (time from the instance's start) and differences |\n"
         "|---|---|---|---|---|\n"
      << rows << "\n"
      << agree << " agree, " << disagree << " disagree, " << only << " simulator-only.\n";
  if (!moves.empty()) {
    std::cout << "\n## Failover side by side\n\nEvery `reconnects` sentence: the time from the fault to the "
                 "connection it names, in each world.\n\n| scenario | sentence | simulator | kernel |\n"
                 "|---|---|---:|---:|\n"
              << moves;
  }
  std::cout << "\n## Within 10 % or 5 ms\n\nFirst connections: " << close_firsts << " of " << firsts
            << " within 10 % or 5 ms of the simulator's; failovers (`reconnects` sentences): " << close_moves << " of "
            << all_moves << ".\n";
  if (!misses.empty()) std::cout << "\nOutside it:\n\n" << misses;
  return 0;
}

}  // namespace duet::testbed
