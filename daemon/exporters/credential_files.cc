#include "daemon/exporters/credential_files.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "daemon/common/file_descriptor.h"

namespace spanrelay::exporters {
namespace {

// A certificate chain or a token is kilobytes; anything this big is a mistake.
constexpr std::size_t kMaxCredentialFileBytes = 1u << 20;

// RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
// "/" ) *"=". Checked loosely (printable, no spaces) so that a token with a
// stray character is refused instead of breaking the header.
bool is_header_safe_token(std::string_view token) {
  if (token.empty()) return false;
  for (const char c : token) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// The token without the trailing newline(s) and spaces an editor or `echo` adds.
std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

Result<std::string> read_token(const std::string& path) {
  auto contents = read_credential_file(path, "exporter.auth.bearer_token_file");
  if (!contents) return contents.error();
  const std::string_view token = trimmed(contents.value());
  if (!is_header_safe_token(token)) {
    return Error{"exporter.auth.bearer_token_file: " + path +
                 " does not hold one token (empty, or spaces or control characters inside)"};
  }
  return std::string(token);
}

}  // namespace

FileStamp stamp_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  return FileStamp{
      true, info.st_dev, info.st_ino,
      static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec,
      static_cast<std::int64_t>(info.st_size)};
}

FileWatch::FileWatch(std::vector<std::string> paths, std::chrono::milliseconds interval)
    : paths_(std::move(paths)), interval_(interval), last_(stamps()) {
  next_look_ = std::chrono::steady_clock::now() + interval_;
}

std::vector<FileStamp> FileWatch::stamps() const {
  std::vector<FileStamp> out;
  out.reserve(paths_.size());
  for (const auto& path : paths_) out.push_back(stamp_of(path));
  return out;
}

bool FileWatch::poll() {
  if (paths_.empty()) return false;
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_look_) return false;
  next_look_ = now + interval_;
  auto current = stamps();
  if (current == last_) return false;
  last_ = std::move(current);
  return true;
}

void FileWatch::retry_later() {
  std::lock_guard lock(mutex_);
  last_.clear();
}

Result<std::string> read_credential_file(const std::string& path, std::string_view what) {
  const auto cannot = [&](const std::string& why) {
    return Error{std::string(what) + ": cannot read " + path + ": " + why};
  };
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.valid()) return cannot(std::generic_category().message(errno));
  std::string contents;
  const auto read = read_all(file.get(), kMaxCredentialFileBytes, contents);
  if (read.status == ReadAllResult::Status::kError) {
    return cannot(std::generic_category().message(read.error_number));
  }
  if (read.status == ReadAllResult::Status::kTooLarge) return cannot("larger than 1MiB");
  return contents;
}

Result<ClientTlsMaterial> read_client_tls_material(const config::ClientTlsConfig& tls) {
  ClientTlsMaterial material;
  const std::pair<const std::string*, std::string*> files[] = {
      {&tls.ca_file, &material.ca_pem},
      {&tls.cert_file, &material.cert_pem},
      {&tls.key_file, &material.key_pem},
  };
  const char* names[] = {"exporter.tls.ca_file", "exporter.tls.cert_file", "exporter.tls.key_file"};
  for (std::size_t i = 0; i < 3; ++i) {
    if (files[i].first->empty()) continue;
    auto contents = read_credential_file(*files[i].first, names[i]);
    if (!contents) return contents.error();
    if (contents.value().find("-----BEGIN") == std::string::npos) {
      return Error{std::string(names[i]) + ": " + *files[i].first + " holds no PEM block"};
    }
    *files[i].second = std::move(contents).value();
  }
  return material;
}

std::vector<std::string> client_tls_files(const config::ClientTlsConfig& tls) {
  std::vector<std::string> files;
  for (const auto* path : {&tls.ca_file, &tls.cert_file, &tls.key_file}) {
    if (!path->empty()) files.push_back(*path);
  }
  return files;
}

Result<std::unique_ptr<BearerToken>> BearerToken::open(const std::string& path) {
  auto token = read_token(path);
  if (!token) return token.error();
  return std::unique_ptr<BearerToken>(new BearerToken(path, std::move(token).value()));
}

BearerToken::BearerToken(std::string path, std::string token)
    : path_(std::move(path)),
      watch_({path_}, kCredentialCheckInterval),
      header_value_("Bearer " + std::move(token)) {}

std::string BearerToken::header_value() {
  if (watch_.poll()) {
    auto token = read_token(path_);
    std::lock_guard lock(mutex_);
    if (token) {
      header_value_ = "Bearer " + std::move(token).value();
      spdlog::info("exporter.auth: bearer token re-read from {}", path_);
    } else {
      spdlog::warn("{}; keeping the previous token", token.error().message);
      watch_.retry_later();
    }
  }
  std::lock_guard lock(mutex_);
  return header_value_;
}

}  // namespace spanrelay::exporters
