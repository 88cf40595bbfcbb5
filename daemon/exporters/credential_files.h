#pragma once
// Credentials that live in files and are rotated while the daemon runs
// (Kubernetes swaps mounted Secrets by moving a symlink): TLS certificates and
// keys, and the bearer token. The exporters look at the files at most every
// kCredentialCheckInterval before an export and rebuild what depends on them
// when they changed; exports already in flight finish on what they started with.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"

namespace spanrelay::exporters {

inline constexpr std::chrono::milliseconds kCredentialCheckInterval{2000};

// What stat() tells about a file's content: a replaced or rewritten file
// changes its inode, size or modification time.
struct FileStamp {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t size = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp stamp_of(const std::string& path);

// Says when any of a set of files changed; looks at most once per interval.
class FileWatch {
 public:
  FileWatch(std::vector<std::string> paths, std::chrono::milliseconds interval);
  // True when a look was due and some file differs from the last look.
  // Thread-safe; only one caller sees a given change.
  bool poll();
  // The last look is forgotten: the next due poll() says "changed" again (a
  // reload that failed on a half-written file is retried).
  void retry_later();

 private:
  std::vector<FileStamp> stamps() const;

  const std::vector<std::string> paths_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::vector<FileStamp> last_;                        // guarded by mutex_
  std::chrono::steady_clock::time_point next_look_{};  // guarded by mutex_
};

// A whole small file (PEM, token): bounded, errors name the file.
Result<std::string> read_credential_file(const std::string& path, std::string_view what);

// PEM text of exporter.tls's files (empty strings for the unset ones).
struct ClientTlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};
Result<ClientTlsMaterial> read_client_tls_material(const config::ClientTlsConfig& tls);
// The files of exporter.tls that are set, to watch.
std::vector<std::string> client_tls_files(const config::ClientTlsConfig& tls);

// exporter.auth.bearer_token_file: "Bearer <token>", re-read when the file
// changes. The token is never logged; errors name the file only.
class BearerToken {
 public:
  // Reads the file once: a missing or empty token file is a startup error.
  static Result<std::unique_ptr<BearerToken>> open(const std::string& path);
  // The authorization header value as of now. A file that became unreadable
  // or empty keeps the last good token (rotation writes are not atomic).
  std::string header_value();
  const std::string& path() const { return path_; }

 private:
  BearerToken(std::string path, std::string token);

  const std::string path_;
  FileWatch watch_;
  std::mutex mutex_;
  std::string header_value_;  // guarded by mutex_
};

}  // namespace spanrelay::exporters
