#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <regex>

#include "testbed.hpp"

namespace duet::testbed {

using json = nlohmann::json;

/// The fidelity report: per scenario, whether the two worlds agree, and how their
/// timings differ.
int report(const std::string& path) {
  std::ifstream in(path);
  int agree = 0, disagree = 0, only = 0;
  std::string rows, moves;
  // "reconnected to X 841.0 ms after" -> "841 ms"
  const auto after = [](const json& x, const char* key) -> std::string {
    static const std::regex ms(R"(([0-9]+)(\.[0-9]+)? ms after)");
    std::smatch m;
    const std::string d = x.value(key, "");
    return std::regex_search(d, m, ms) ? m[1].str() + " ms" : "–";
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
        moves += "| " + file.substr(0, file.find('-')) + " | " + sentence + " | " + after(x, "sim_detail") + " | " +
                 after(x, "kernel_detail") + " |\n";
      }
    }
    std::string timing;
    for (const auto& i : j["instances"]) {
      timing += i["name"].get<std::string>() + ": sim " + i["sim"].get<std::string>() + ", kernel " +
                i["kernel"].get<std::string>() + "; ";
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
  return 0;
}

}  // namespace duet::testbed
