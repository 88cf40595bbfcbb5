// spanrelayd: parses flags, loads the configuration, runs the Relay until
// SIGTERM/SIGINT, and returns an exit code. Everything else lives in the
// components under daemon/.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "daemon/config/config_loader.h"
#include "daemon/relay.h"
#include "daemon/service/socket_activation.h"
#include "daemon/service/systemd_notifier.h"
#include "daemon/telemetry/log_setup.h"

namespace {

constexpr std::string_view kUsage =
    R"(usage: spanrelayd [--config FILE] [--check-config] [--ready-file FILE]
       spanrelayd --version | --help

A per-host OpenTelemetry trace relay: OTLP/gRPC and OTLP/HTTP in (TCP and Unix
sockets), batching, compression and retry toward an upstream collector.

  --config FILE      YAML configuration (default: built-in defaults, which listen on
                     127.0.0.1:4317/4318 and write spans to ./var/spans.jsonl)
  --check-config     validate the configuration, print a summary and exit
                     (exit 0 when valid, 2 when not)
  --ready-file FILE  once every listener is bound, write their addresses there as
                     JSON (for supervisors and tests; ports chosen with :0 appear)
  --version          print the version and exit
  --help             print this text and exit
)";

struct Flags {
  std::string config_path;
  std::string ready_file;
  bool check_config = false;
};

// Returns the exit code to stop with, or -1 to run.
int parse_flags(int argc, char** argv, Flags& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::cerr << "spanrelayd: " << arg << " needs a value\n" << kUsage;
        return false;
      }
      out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "spanrelayd " << SPANRELAY_VERSION << "\n";
      return 0;
    } else if (arg == "--config" || arg == "-c") {
      if (!value(flags.config_path)) return 2;
    } else if (arg.rfind("--config=", 0) == 0) {
      flags.config_path = std::string(arg.substr(9));
    } else if (arg == "--ready-file") {
      if (!value(flags.ready_file)) return 2;
    } else if (arg == "--check-config") {
      flags.check_config = true;
    } else {
      std::cerr << "spanrelayd: unknown argument " << arg << "\n" << kUsage;
      return 2;
    }
  }
  return -1;
}

bool write_ready_file(const std::string& path, const std::string& json) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

constexpr const char* kReloads = "spanrelay_config_reloads_total";
constexpr const char* kReloadsHelp = "Configuration reloads on SIGHUP, by result (ok, error).";

// SIGHUP: an invalid file is rejected with its error and the running
// configuration stays; settings that need a restart are named.
void reload(spanrelay::Relay& relay, const std::string& config_path) {
  auto& metrics = relay.metrics();
  if (config_path.empty()) {
    spdlog::warn("SIGHUP: running on built-in defaults (no --config): nothing to reload");
    return;
  }
  auto loaded = spanrelay::config::load_config_file(config_path);
  if (!loaded.ok()) {
    metrics.counter(kReloads, kReloadsHelp, {{"result", "error"}}).add();
    spdlog::error("SIGHUP: configuration rejected, the running one stays: {}",
                  loaded.error().message);
    return;
  }
  auto applied = relay.reload(loaded.value());
  if (!applied.ok()) {
    metrics.counter(kReloads, kReloadsHelp, {{"result", "error"}}).add();
    spdlog::error("SIGHUP: configuration rejected, the running one stays: {}",
                  applied.error().message);
    return;
  }
  metrics.counter(kReloads, kReloadsHelp, {{"result", "ok"}}).add();
  spdlog::info("SIGHUP: configuration reloaded from {}", config_path);
  for (const auto& setting : applied.value()) {
    spdlog::warn("SIGHUP: {} changed but needs a restart to take effect", setting);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const int rc = parse_flags(argc, argv, flags); rc >= 0) return rc;

  spanrelay::Result<spanrelay::config::Config> loaded =
      flags.config_path.empty() ? spanrelay::config::load_config_string("", "<defaults>")
                                : spanrelay::config::load_config_file(flags.config_path);
  if (!loaded.ok()) {
    std::cerr << "spanrelayd: invalid configuration: " << loaded.error().message << "\n";
    return 2;
  }
  auto config = std::move(loaded).value();
  if (flags.check_config) {
    std::cout << "configuration OK: " << config.source << "\n"
              << spanrelay::config::describe(config) << "\n";
    return 0;
  }

  if (auto logging = spanrelay::telemetry::setup_logging(config.telemetry.log_level,
                                                         config.telemetry.log_format);
      !logging.ok()) {
    std::cerr << "spanrelayd: " << logging.error().message << "\n";
    return 2;
  }

  // The service manager's variables are read (and unset) while this is the
  // only thread: getenv/unsetenv are not safe once others run.
  auto notifier = spanrelay::service::SystemdNotifier::from_environment();
  auto inherited = spanrelay::service::SocketActivation::from_environment();
  if (!inherited.ok()) {
    spdlog::critical("cannot start: {}", inherited.error().message);
    return 1;
  }

  // Signals are taken synchronously on this thread: block them before any
  // other thread exists so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer closing its socket must be an error code, not the end of the process.
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("spanrelayd {} starting with {}", SPANRELAY_VERSION, config.source);
  spdlog::info("{}", spanrelay::config::describe(config));

  spanrelay::Relay relay(config);
  for (const char* result : {"ok", "error"}) {
    relay.metrics().counter(kReloads, kReloadsHelp, {{"result", result}});
  }
  if (auto started = relay.start(&inherited.value()); !started.ok()) {
    spdlog::critical("cannot start: {}", started.error().message);
    relay.shutdown();
    return 1;
  }
  for (const auto& unclaimed : inherited.value().take_unclaimed()) {
    spdlog::warn(
        "socket activation: passed socket {} ({}) matches no configured listener; closing it",
        unclaimed.address, unclaimed.name);
  }
  if (!flags.ready_file.empty() && !write_ready_file(flags.ready_file, relay.ready_report())) {
    spdlog::error("cannot write ready file {}: {}", flags.ready_file, std::strerror(errno));
  }
  spdlog::info("ready: {}", relay.ready_report());
  if (!notifier.ready("serving " + relay.ready_report())) {
    spdlog::warn("cannot notify the service manager: {}", std::strerror(errno));
  }

  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number == SIGHUP) {
      notifier.reloading();
      reload(relay, flags.config_path);
      notifier.ready("serving " + relay.ready_report());
      continue;
    }
    spdlog::info("{} received: stopping listeners and flushing to the upstream (timeout {} ms)",
                 strsignal(signal_number), config.service.shutdown_timeout.count());
    break;
  }
  notifier.stopping();
  relay.shutdown();
  spdlog::info("stopped");
  return 0;
}
