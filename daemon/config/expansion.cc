#include "daemon/config/expansion.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "daemon/common/file_descriptor.h"
#include "daemon/config/units.h"

namespace spanrelay::config {
namespace {

constexpr std::string_view kEscapeHint = "write $${ for a literal ${";

// POSIX shell names: a letter or '_', then letters, digits and '_'.
bool is_valid_variable_name(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  for (const char c : name) {
    const bool valid =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!valid) return false;
  }
  return true;
}

// Sets *outside when the text comes from the environment, not from a default.
Result<std::string> expand_environment_reference(std::string_view body,
                                                 const EnvironmentLookup& environment,
                                                 bool* outside) {
  const auto default_at = body.find(":-");
  const std::string_view name = body.substr(0, default_at);
  if (!is_valid_variable_name(name)) {
    // "${env:NAME:default}" is a likely slip for the shell's ":-".
    const bool colon = name.find(':') != std::string_view::npos;
    return Error{"invalid environment variable name " + quoted(name) +
                 " in ${env:...} (letters, digits and _, not starting with a digit" +
                 (colon ? "; a default is written ${env:NAME:-default})" : ")")};
  }
  std::optional<std::string> value = environment(name);
  if (default_at != std::string_view::npos && (!value || value->empty())) {
    return std::string(body.substr(default_at + 2));
  }
  if (!value) return Error{"environment variable " + std::string(name) + " is not set"};
  *outside = true;
  return std::move(*value);
}

using spanrelay::FileDescriptor;

Error cannot_read(std::string_view path, int error_number) {
  return Error{"cannot read " + std::string(path) + ": " +
               std::generic_category().message(error_number)};
}

Result<std::string> read_referenced_file(std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return Error{"expected an absolute path in ${file:...}, got " + quoted(path)};
  }
  if (path.find('\0') != std::string_view::npos) {
    return Error{"the path in ${file:...} contains a NUL byte"};
  }
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const FileDescriptor file(
      ::open(std::string(path).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (file.get() < 0) return cannot_read(path, errno);
  struct stat status {};
  if (::fstat(file.get(), &status) != 0) return cannot_read(path, errno);
  if (S_ISDIR(status.st_mode)) return cannot_read(path, EISDIR);
  if (!S_ISREG(status.st_mode)) {
    return Error{"cannot read " + std::string(path) + ": not a regular file"};
  }
  std::string contents;
  const auto read = read_all(file.get(), kMaxReferencedFileBytes, contents);
  if (read.status == ReadAllResult::Status::kError) return cannot_read(path, read.error_number);
  if (read.status == ReadAllResult::Status::kTooLarge) {
    return Error{"cannot read " + std::string(path) + ": larger than " +
                 format_size(kMaxReferencedFileBytes)};
  }
  // Secrets are often written with `echo`, which adds a newline the token
  // does not contain; remove exactly one.
  if (!contents.empty() && contents.back() == '\n') {
    contents.pop_back();
    if (!contents.empty() && contents.back() == '\r') contents.pop_back();
  }
  return contents;
}

Result<std::string> expand_one_reference(std::string_view body,
                                         const EnvironmentLookup& environment, bool* outside) {
  const auto colon = body.find(':');
  const std::string_view scheme = body.substr(0, colon);
  if (colon == std::string_view::npos) {
    return Error{"expected ${env:NAME} or ${file:/path}, got " +
                 config::quoted("${" + std::string(body) + "}") + " (" + std::string(kEscapeHint) +
                 ")"};
  }
  const std::string_view argument = body.substr(colon + 1);
  if (scheme == "env") return expand_environment_reference(argument, environment, outside);
  if (scheme == "file") {
    *outside = true;
    return read_referenced_file(argument);
  }
  return Error{"unknown reference scheme " + quoted(scheme) +
               " (expected ${env:NAME} or ${file:/path}; " + std::string(kEscapeHint) + ")"};
}

}  // namespace

Result<Expansion> expand_references(std::string_view text, const EnvironmentLookup& environment) {
  Expansion expansion;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text.substr(pos, 3) == "$${") {
      expansion.text += "${";
      pos += 3;
      continue;
    }
    if (text.substr(pos, 2) != "${") {
      expansion.text += text[pos++];
      continue;
    }
    const auto close = text.find('}', pos + 2);
    if (close == std::string_view::npos) {
      return Error{"unterminated ${ (" + std::string(kEscapeHint) + ")"};
    }
    const std::string_view body = text.substr(pos + 2, close - pos - 2);
    if (body.find("${") != std::string_view::npos) {
      return Error{"a ${...} reference cannot contain another one"};
    }
    auto value = expand_one_reference(body, environment, &expansion.from_outside);
    if (!value.ok()) return value.error();
    expansion.text += value.value();
    pos = close + 1;
  }
  return expansion;
}

void expand_scalar_values(YAML::Node root, const EnvironmentLookup& environment,
                          YamlReader& reader) {
  struct Pending {
    YAML::Node node;
    std::string path;
  };
  std::vector<Pending> pending;
  pending.push_back({std::move(root), ""});
  // An alias (*name) is the anchored node itself, reached again: visit each
  // node once, so a value is never expanded twice and a tree of aliases of
  // aliases cannot blow up the walk. Nodes are told apart by kind and by
  // where they start in the file.
  std::set<std::pair<int, int>> visited;
  while (!pending.empty() && !reader.failed()) {
    Pending current = std::move(pending.back());
    pending.pop_back();
    YAML::Node& node = current.node;
    const YAML::Mark mark = node.Mark();
    if (!mark.is_null() && !visited.emplace(static_cast<int>(node.Type()), mark.pos).second) {
      continue;
    }
    if (node.IsScalar()) {
      const std::string written = node.Scalar();
      if (written.find("${") == std::string::npos) continue;
      auto expanded = expand_references(written, environment);
      if (!expanded.ok()) {
        return reader.fail_at(mark, current.path + ": " + expanded.error().message);
      }
      node = expanded.value().text;  // assigns through to the node in the tree
      if (expanded.value().from_outside) reader.note_expanded(node, written);
    } else if (node.IsMap()) {
      std::vector<Pending> children;
      for (const auto& entry : node) {  // by value: yaml-cpp's it->first is a dangling proxy
        const YAML::Node key = entry.first;
        // Non-text keys are the schema walk's to reject; nothing under them is read.
        if (!key.IsScalar()) continue;
        children.push_back({entry.second, current.path.empty()
                                              ? key.Scalar()
                                              : current.path + "." + key.Scalar()});
      }
      pending.insert(pending.end(), std::make_move_iterator(children.rbegin()),
                     std::make_move_iterator(children.rend()));
    } else if (node.IsSequence()) {
      for (std::size_t index = node.size(); index-- > 0;) {
        pending.push_back({node[index], current.path + "[" + std::to_string(index) + "]"});
      }
    }
  }
}

}  // namespace spanrelay::config
