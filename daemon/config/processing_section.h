#pragma once
// The schema of the `redaction:` and `resource:` sections (data hygiene at
// ingest, issue 7). Split from config_loader.cc: each is a small language of
// its own (key lists, RE2 patterns, built-in mask patterns).
#include "daemon/config/config.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

// Reads `redaction:` into *out. Absent (field == nullptr): no redaction.
// Present: enabled; every regex is compiled here so that a bad one is reported
// with its file position. Errors go to `reader`.
void read_redaction_section(YamlReader& reader, const Field* field, RedactionConfig* out);

// Reads `resource:` ({attributes: {key: value, ...}, override: bool}) into *out.
void read_resource_section(YamlReader& reader, const Field* field, ResourceConfig* out);

}  // namespace spanrelay::config
