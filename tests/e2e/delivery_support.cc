#include "tests/e2e/delivery_support.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <stdexcept>

#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::e2e::delivery {

std::string relay_yaml(const RelaySetup& s) {
  std::ostringstream y;
  y << "receivers:\n"
    << "  otlp:\n"
    << "    grpc: { endpoint: 127.0.0.1:0 }\n"
    << "    http: { endpoint: 127.0.0.1:0 }\n"
    << "    max_request_size: 4MiB\n"
    << "batch: " << s.batch << "\n"
    << "exporter:\n"
    << "  type: " << s.exporter << "\n"
    << "  endpoint: " << s.endpoint << "\n"
    << "  compression: gzip\n"
    << "  timeout: 5s\n"
    << "  max_in_flight: " << s.max_in_flight << "\n"
    << "  retry: " << s.retry << "\n"
    << "  queue:\n"
    << "    memory_limit: " << s.memory_limit << "\n";
  if (!s.spool.empty()) y << "    spool: " << s.spool << "\n";
  y << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n  log: { level: info }\n"
    << "service: { shutdown_timeout: " << s.shutdown_timeout << " }\n";
  return y.str();
}

std::string spool_yaml(const std::string& dir, const std::string& options) {
  return "{ dir: " + dir + (options.empty() ? "" : ", " + options) + " }";
}

int unused_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string loopback(int port) { return "127.0.0.1:" + std::to_string(port); }

std::vector<std::string> sink_on(const std::string& grpc_address, std::vector<std::string> extra) {
  // The Sink passes "--grpc 127.0.0.1:0" first; a later flag wins.
  std::vector<std::string> args{"--grpc", grpc_address};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// --- metrics -----------------------------------------------------------------

Scrape::Scrape(const Daemon& daemon) {
  std::istringstream lines(daemon.metrics_text());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    try {
      values_[line.substr(0, space)] = std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      // not a sample line
    }
  }
}

double Scrape::operator[](const std::string& series) const {
  const auto it = values_.find(series);
  return it == values_.end() ? 0 : it->second;
}

double Scrape::sum(const std::string& prefix) const {
  double total = 0;
  for (auto it = values_.lower_bound(prefix);
       it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    total += it->second;
  }
  return total;
}

std::string Balance::describe() const {
  std::ostringstream out;
  out << "accepted " << accepted << " + spool_recovered " << recovered << " vs sent " << sent
      << " + sampled_out " << sampled_out << " + dropped " << dropped << " + queue_spans " << queue
      << " + spool_spans " << spool;
  return out.str();
}

Balance read_balance(const Daemon& daemon) {
  const Scrape m(daemon);
  Balance b;
  b.accepted = m.sum("spanrelay_receiver_accepted_spans_total{");
  b.recovered = m["spanrelay_spool_recovered_spans_total"];
  b.sent = m["spanrelay_exporter_sent_spans_total"];
  b.sampled_out = m["spanrelay_sampling_sampled_out_spans_total"];
  b.dropped = m.sum("spanrelay_dropped_spans_total{");
  b.queue = m["spanrelay_queue_spans"];
  b.spool = m["spanrelay_spool_spans"];
  return b;
}

void check_balance(const Daemon& daemon) {
  Balance last;
  const bool held = wait_until(
      [&] {
        last = read_balance(daemon);
        return last.holds();
      },
      10s);
  CHECK_MESSAGE(held, "accounting does not balance: " << last.describe());
}

bool drained(const Daemon& daemon) {
  const Scrape m(daemon);
  return m["spanrelay_queue_spans"] == 0 && m["spanrelay_spool_spans"] == 0;
}

// --- arrival -----------------------------------------------------------------

std::string Arrival::describe() const {
  std::ostringstream out;
  out << "acked=" << acked << " at_sink=" << at_sink << " missing=" << missing
      << " duplicates=" << duplicates << " unacked_at_sink=" << unacked << " altered=" << altered;
  return out.str();
}

Arrival compare_arrival(const Sink& sink, const std::vector<GeneratedSpan>& acked) {
  std::map<std::string, std::string> expected;  // trace/span -> digest
  for (const auto& s : acked) expected[s.trace_id_hex + "/" + s.span_id_hex] = s.digest;
  std::map<std::string, std::size_t> seen;
  Arrival a;
  a.acked = expected.size();
  for (const auto& span : sink.spans()) {
    ++a.at_sink;
    const std::string key = span.trace_id + "/" + span.span_id;
    if (++seen[key] > 1) ++a.duplicates;
    const auto it = expected.find(key);
    if (it == expected.end()) {
      ++a.unacked;
    } else if (it->second != span.digest) {
      ++a.altered;
    }
  }
  for (const auto& [key, digest] : expected) {
    if (seen.count(key) == 0) ++a.missing;
  }
  return a;
}

Arrival wait_for_arrival(const Sink& sink, const std::vector<GeneratedSpan>& acked,
                         std::chrono::milliseconds limit) {
  Arrival last;
  wait_until(
      [&] {
        last = compare_arrival(sink, acked);
        return last.missing == 0;
      },
      limit);
  return last;
}

ExportRequest make_padded_request(const RequestOptions& options, std::size_t padding_bytes,
                                  std::vector<GeneratedSpan>* spans) {
  ExportRequest request = make_request(options, nullptr);
  std::mt19937_64 rng(options.seed * 0x9e3779b97f4a7c15ull + 1);
  for (auto& rs : *request.mutable_resource_spans()) {
    for (auto& ss : *rs.mutable_scope_spans()) {
      for (auto& span : *ss.mutable_spans()) {
        std::string padding(padding_bytes, '\0');
        for (auto& c : padding) c = static_cast<char>(rng() & 0xff);
        auto* attribute = span.add_attributes();
        attribute->set_key("padding");
        attribute->mutable_value()->set_bytes_value(std::move(padding));
        if (spans) {
          spans->push_back(
              {hex(span.trace_id()), hex(span.span_id()), span_digest(span.SerializeAsString())});
        }
      }
    }
  }
  return request;
}

// --- the application side ------------------------------------------------------

std::optional<ClientResult> try_export(const Daemon& daemon, Via via, const std::string& body) {
  try {
    if (via == Via::kGrpc) return grpc_export(daemon.tcp_address("grpc"), body);
    return http_export(daemon.tcp_address("http"), body);
  } catch (const std::exception&) {
    return std::nullopt;  // connection refused or cut: the relay is gone
  }
}

bool is_ok(Via via, const ClientResult& result) {
  return via == Via::kGrpc ? result.status == 0 : result.status == 200;
}

bool is_refused_retry_later(Via via, const ClientResult& result) {
  return via == Via::kGrpc ? result.status == 8 : result.status == 429;
}

bool says_when_to_retry(Via via, const ClientResult& result) {
  if (via == Via::kHttp) {
    const auto it = result.headers.find("Retry-After");
    return it != result.headers.end() && !it->second.empty();
  }
  spanrelay::rpc::Status status;
  if (!status.ParseFromString(result.details)) return false;
  for (const auto& detail : status.details()) {
    if (detail.type_url() == "type.googleapis.com/google.rpc.RetryInfo") return true;
  }
  return false;
}

std::optional<ClientResult> AppSide::send(const Daemon& daemon, Via via,
                                          const ExportRequest& request,
                                          const std::vector<GeneratedSpan>& spans) {
  auto result = try_export(daemon, via, serialize(request));
  std::lock_guard lock(mutex_);
  if (result && is_ok(via, *result)) {
    acked_.insert(acked_.end(), spans.begin(), spans.end());
    ++acked_requests_;
  } else if (result && is_refused_retry_later(via, *result)) {
    ++refused_requests_;
  }
  return result;
}

std::vector<GeneratedSpan> AppSide::acked() const {
  std::lock_guard lock(mutex_);
  return acked_;
}

int AppSide::acked_requests() const {
  std::lock_guard lock(mutex_);
  return acked_requests_;
}

int AppSide::refused_requests() const {
  std::lock_guard lock(mutex_);
  return refused_requests_;
}

Loader::Loader(const Daemon& daemon, AppSide& app, int threads, std::uint64_t first_seed) {
  for (int t = 0; t < threads; ++t) {
    threads_.emplace_back([this, &daemon, &app, t, first_seed] {
      const Via via = t % 2 == 0 ? Via::kGrpc : Via::kHttp;
      for (std::uint64_t i = 0; !stopping_.load(); ++i) {
        std::vector<GeneratedSpan> spans;
        const auto request =
            make_request({.seed = first_seed + std::uint64_t(t) * 1000000 + i}, &spans);
        const auto result = app.send(daemon, via, request, spans);
        if (!result || !is_ok(via, *result)) return;  // the relay went away (or refused)
      }
    });
  }
}

Loader::~Loader() { stop(); }

void Loader::stop() {
  stopping_ = true;
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace spanrelay::e2e::delivery
