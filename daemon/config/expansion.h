#pragma once
// ${env:NAME}, ${env:NAME:-default} and ${file:/path} references in config
// values, so that an endpoint can come from the environment and a token from a
// mounted Kubernetes secret:
//   endpoint: ${env:UPSTREAM}
//   headers: { authorization: "Bearer ${file:/var/run/secrets/token}" }
// Rules:
// - Every scalar value is expanded, before it is read as its type (so a
//   duration or a size may come from the environment too); keys never are.
// - A value may hold several references; "$${" is a literal "${".
// - Substituted text is not scanned again: a variable holding "${file:/x}"
//   yields that text, not the file.
// - ${env:NAME}: an unset variable is an error naming it; a set but empty one
//   expands to "". ${env:NAME:-default} uses `default` when NAME is unset or
//   empty (as the shell's ${NAME:-default} does).
// - ${file:/path}: an absolute path to a regular file of at most 64KiB, read
//   whole, with one trailing newline ("\n" or "\r\n") removed.
// - Errors name the variable or the path, never a value or file contents:
//   those are often credentials.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/environment.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

inline constexpr std::size_t kMaxReferencedFileBytes = 64u << 10;

struct Expansion {
  std::string text;
  // Text from a variable or a file went in (not only defaults and "$${"):
  // the result may hold a secret.
  bool from_outside = false;
};

// Expands the references in one value. Errors carry the reason only; the
// caller adds file:line:column: key.
Result<Expansion> expand_references(std::string_view text, const EnvironmentLookup& environment);

// Expands every scalar value under `root` in place, in document order. The
// first error is recorded in `reader` at the scalar ("dotted.key: why"); each
// scalar whose text came from a reference is registered with the reader, so
// later errors about its value show what was written instead of the value.
void expand_scalar_values(YAML::Node root, const EnvironmentLookup& environment,
                          YamlReader& reader);

}  // namespace spanrelay::config
