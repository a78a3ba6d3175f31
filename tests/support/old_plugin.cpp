// A plugin built against a future ABI (version 99): the host must refuse it by name.
#include "duet/plugin.h"

namespace {
const duet_plugin kOld = {99u,     "from-the-future", DUET_PLUGIN_STREAM,
                          nullptr, nullptr,           nullptr,
                          nullptr, nullptr,           nullptr,
                          nullptr, nullptr,           nullptr,
                          nullptr};
}

extern "C" __attribute__((visibility("default"))) const duet_plugin* duet_plugin_entry(uint32_t) { return &kOld; }
