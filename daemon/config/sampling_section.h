#pragma once
// The schema of the `sampling:` section (tail sampling policies). Split from
// config_loader.cc because the policy list is a small language of its own:
// each policy type takes its own keys, and a key of another type is an error.
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

// Reads `sampling:` into *out. Absent (field == nullptr): sampling stays
// disabled (pass-through). Present, even empty: enabled, with the defaults of
// config.h and, when `policies` is omitted, the single policy
// {name: always, type: always}. Errors go to `reader`.
void read_sampling_section(YamlReader& reader, const Field* field, SamplingConfig* out);

// The YAML spelling of a policy type ("status_code"), for describe().
std::string_view policy_type_name(PolicyType type);

}  // namespace spanrelay::config
