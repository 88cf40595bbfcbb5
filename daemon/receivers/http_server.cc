#include "daemon/receivers/http_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>

#include "daemon/common/thread_role.h"
#include "daemon/receivers/http_session.h"
#include "daemon/receivers/peer_access.h"
#include "daemon/receivers/unix_socket_file.h"

namespace spanrelay::receivers {

namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
using boost::system::error_code;
using tcp = net::ip::tcp;
using unix_stream = net::local::stream_protocol;
using http_detail::Session;
using http_detail::SessionBase;
using http_detail::SessionConfig;

// A failing accept() (EMFILE...) is retried after a pause, not in a hot loop.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

// The live sessions, so that shutdown can close keep-alive connections.
class SessionRegistry {
 public:
  // False once closed: the caller drops the new session instead of running it.
  bool add(const std::shared_ptr<SessionBase>& session) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    if (sessions_.size() >= purge_at_) {
      std::erase_if(sessions_, [](const auto& weak) { return weak.expired(); });
      purge_at_ = std::max<std::size_t>(64, sessions_.size() * 2);
    }
    sessions_.push_back(session);
    return true;
  }
  void close_all() {
    std::vector<std::weak_ptr<SessionBase>> sessions;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      sessions.swap(sessions_);
    }
    for (auto& weak : sessions) {
      if (auto session = weak.lock()) session->close();
    }
  }

 private:
  std::mutex mutex_;
  bool closed_ = false;
  std::size_t purge_at_ = 64;
  std::vector<std::weak_ptr<SessionBase>> sessions_;
};

class ListenerBase {
 public:
  virtual ~ListenerBase() = default;
  virtual void start() = 0;
  virtual void close() = 0;            // thread-safe (runs on the listener's strand)
  virtual void close_unstarted() = 0;  // only when no io thread ever ran
};

template <class Protocol>
class Listener : public ListenerBase, public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  Listener(net::io_context& ioc, std::shared_ptr<const SessionConfig> config,
           std::shared_ptr<SessionRegistry> registry)
      : ioc_(ioc),
        acceptor_(net::make_strand(ioc)),
        retry_timer_(acceptor_.get_executor()),
        config_(std::move(config)),
        registry_(std::move(registry)) {}

  // Synchronous: runs before the listener is shared with any io thread.
  Status open(const typename Protocol::endpoint& endpoint, bool reuse_address) {
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec && reuse_address) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Error{ec.message()};
    return Ok{};
  }

  // Takes over a socket that is already bound and listening.
  Status assign(const Protocol& protocol, int listening_fd) {
    error_code ec;
    acceptor_.assign(protocol, listening_fd, ec);
    if (ec) return Error{ec.message()};
    return Ok{};
  }

  typename Protocol::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start() override {
    net::dispatch(acceptor_.get_executor(),
                  beast::bind_front_handler(&Listener::do_accept, this->shared_from_this()));
  }

  void close() override {
    net::dispatch(acceptor_.get_executor(), [self = this->shared_from_this()] {
      error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_timer_.cancel();
    });
  }

  void close_unstarted() override {
    error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void do_accept() {
    if (!acceptor_.is_open()) return;
    // Each connection gets its own strand.
    acceptor_.async_accept(
        net::make_strand(ioc_),
        beast::bind_front_handler(&Listener::on_accept, this->shared_from_this()));
  }

  void on_accept(error_code ec, typename Protocol::socket socket) {
    if (!acceptor_.is_open() || ec == net::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("{}: accept failed: {} (retrying)", config_->options.name, ec.message());
      retry_timer_.expires_after(kAcceptRetryDelay);
      retry_timer_.async_wait([self = this->shared_from_this()](error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    if (!admit(socket)) return do_accept();
    if constexpr (std::is_same_v<Protocol, tcp>) {
      if (const auto& tls = config_->options.tls) {
        start_session(std::make_shared<Session<http_detail::TlsTcpStream>>(
            std::move(socket), tls->current(), config_));
        return do_accept();
      }
    }
    start_session(
        std::make_shared<Session<beast::basic_stream<Protocol>>>(std::move(socket), config_));
    do_accept();
  }

  template <class S>
  void start_session(const std::shared_ptr<S>& session) {
    session->hold_connection_slot(std::move(slot_));
    if (registry_->add(session)) session->run();
  }

  // Access checks (PeerAccess) before any byte is read: a refused connection
  // is closed at once, and counted by PeerAccess.
  bool admit(typename Protocol::socket& socket) {
    PeerAccess* access = config_->options.access;
    slot_.reset();
    if (access == nullptr) return true;
    error_code ignored;
    if (access->check(socket.native_handle()) != nullptr) {
      socket.close(ignored);
      return false;
    }
    slot_ = access->take_connection_slot();
    if (!slot_) {
      socket.close(ignored);
      return false;
    }
    return true;
  }

  net::io_context& ioc_;
  typename Protocol::acceptor acceptor_;
  net::steady_timer retry_timer_;
  std::shared_ptr<const SessionConfig> config_;
  std::shared_ptr<SessionRegistry> registry_;
  std::shared_ptr<void> slot_;  // from admit() to the session that holds it
};

struct HostPort {
  std::string host;
  std::string port;
};

Result<HostPort> split_host_port(const std::string& host_port) {
  HostPort out;
  std::size_t colon;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find("]:");
    if (close == std::string::npos) return Error{"expected [address]:port"};
    out.host = host_port.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = host_port.rfind(':');
    if (colon == std::string::npos) return Error{"expected host:port"};
    out.host = host_port.substr(0, colon);
    if (out.host.find(':') != std::string::npos) {
      return Error{"an IPv6 address needs brackets: [address]:port"};
    }
  }
  out.port = host_port.substr(colon + 1);
  unsigned port = 0;
  const auto* end = out.port.data() + out.port.size();
  auto [ptr, ec] = std::from_chars(out.port.data(), end, port);
  if (out.port.empty() || ec != std::errc() || ptr != end || port > 65535) {
    return Error{"invalid port '" + out.port + "'"};
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  return out;
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace

HttpResponse make_text_response(http::status status, std::string_view text, unsigned version) {
  HttpResponse response{status, version};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.body().assign(text);
  if (!response.body().empty() && response.body().back() != '\n') response.body() += '\n';
  return response;
}

struct HttpServer::State {
  // Declared first, destroyed last: acceptors and sockets need it to close.
  net::io_context ioc;
  std::shared_ptr<const SessionConfig> config;
  std::shared_ptr<SessionRegistry> registry = std::make_shared<SessionRegistry>();

  mutable std::mutex mutex;
  std::vector<std::shared_ptr<ListenerBase>> listeners;
  std::vector<std::string> addresses;
  std::vector<std::pair<std::string, SocketFileId>> unix_paths;
  std::vector<std::thread> threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  bool started = false;
  bool stopped = false;

  State(HttpServerOptions options, HttpHandler handler)
      : ioc(static_cast<int>(std::max<std::size_t>(1, options.io_threads))),
        config(std::make_shared<const SessionConfig>(
            SessionConfig{std::move(options), std::move(handler)})) {}

  const std::string& name() const { return config->options.name; }

  // Caller holds `mutex`.
  void add_listener(std::shared_ptr<ListenerBase> listener, std::string address) {
    if (started) listener->start();
    listeners.push_back(std::move(listener));
    addresses.push_back(std::move(address));
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : state_(std::make_unique<State>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { shutdown(); }

Status HttpServer::listen_tcp(const std::string& host_port) {
  auto fail = [&](const std::string& why) {
    return Error{state_->name() + ": cannot listen on " + host_port + ": " + why};
  };
  auto parsed = split_host_port(host_port);
  if (!parsed.ok()) return fail(parsed.error().message);
  const auto& [host, port] = parsed.value();

  error_code ec;
  tcp::resolver resolver(state_->ioc);
  const auto resolved =
      resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || resolved.empty()) return fail("cannot resolve '" + host + "': " + ec.message());

  std::lock_guard lock(state_->mutex);
  if (state_->stopped) return fail("the server is shut down");
  auto listener = std::make_shared<Listener<tcp>>(state_->ioc, state_->config, state_->registry);
  if (auto opened = listener->open(resolved.begin()->endpoint(), true); !opened.ok()) {
    return fail(opened.error().message);
  }
  const std::string address = endpoint_text(listener->local_endpoint());
  spdlog::info("{}: listening on {}", state_->name(), address);
  state_->add_listener(std::move(listener), address);
  return Ok{};
}

Status HttpServer::listen_unix(const std::string& path, std::uint32_t mode) {
  auto fail = [&](const std::string& why) {
    return Error{state_->name() + ": cannot listen on unix:" + path + ": " + why};
  };
  std::lock_guard lock(state_->mutex);
  if (state_->stopped) return fail("the server is shut down");
  if (auto prepared = prepare_unix_socket_path(path); !prepared.ok()) {
    return fail(prepared.error().message);
  }
  auto listener =
      std::make_shared<Listener<unix_stream>>(state_->ioc, state_->config, state_->registry);
  if (auto opened = listener->open(unix_stream::endpoint(path), false); !opened.ok()) {
    return fail(opened.error().message);
  }
  const auto bound = socket_file_id(path);
  state_->unix_paths.emplace_back(path, bound);  // from here on, shutdown removes the file
  if (auto chmoded = apply_unix_socket_mode(path, mode); !chmoded.ok()) {
    listener->close_unstarted();
    remove_unix_socket_file(path, bound);
    state_->unix_paths.pop_back();
    return fail(chmoded.error().message);
  }
  spdlog::info("{}: listening on unix:{}", state_->name(), path);
  state_->add_listener(std::move(listener), "unix:" + path);
  return Ok{};
}

Status HttpServer::adopt(FileDescriptor listening_socket, const std::string& address) {
  const int listening_fd = listening_socket.get();
  auto fail = [&](const std::string& why) {
    return Error{state_->name() + ": cannot serve the passed socket " + address + ": " + why};
  };
  sockaddr_storage bound{};
  socklen_t size = sizeof(bound);
  if (getsockname(listening_fd, reinterpret_cast<sockaddr*>(&bound), &size) != 0) {
    return fail(std::strerror(errno));
  }
  std::lock_guard lock(state_->mutex);
  if (state_->stopped) return fail("the server is shut down");
  std::shared_ptr<ListenerBase> adopted;
  Status assigned = Ok{};
  if (bound.ss_family == AF_UNIX) {
    auto listener =
        std::make_shared<Listener<unix_stream>>(state_->ioc, state_->config, state_->registry);
    assigned = listener->assign(unix_stream(), listening_fd);
    adopted = std::move(listener);
  } else {
    auto listener = std::make_shared<Listener<tcp>>(state_->ioc, state_->config, state_->registry);
    assigned = listener->assign(bound.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), listening_fd);
    adopted = std::move(listener);
  }
  if (!assigned.ok()) return fail(assigned.error().message);
  listening_socket.release();  // the acceptor owns it now
  spdlog::info("{}: serving {} (passed by the service manager)", state_->name(), address);
  state_->add_listener(std::move(adopted), address);
  return Ok{};
}

void HttpServer::start() {
  std::lock_guard lock(state_->mutex);
  if (state_->started || state_->stopped) return;
  state_->started = true;
  state_->work.emplace(state_->ioc.get_executor());
  for (auto& listener : state_->listeners) listener->start();
  const std::size_t threads = std::max<std::size_t>(1, state_->config->options.io_threads);
  for (std::size_t i = 0; i < threads; ++i) {
    state_->threads.emplace_back([state = state_.get()] {
      set_current_thread_role(state->name() + "-io", ThreadRole::kAckPath);
      for (;;) {
        try {
          state->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("{}: io thread caught: {}", state->name(), e.what());
        }
      }
    });
  }
}

void HttpServer::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopped = true;
    state_->registry->close_all();
    for (auto& listener : state_->listeners) {
      if (state_->started) {
        listener->close();
      } else {
        listener->close_unstarted();
      }
    }
    // Without the guard, run() returns once the closed sockets' handlers ran.
    state_->work.reset();
    threads.swap(state_->threads);
  }
  for (auto& thread : threads) thread.join();
  std::lock_guard lock(state_->mutex);
  for (const auto& [path, bound] : state_->unix_paths) remove_unix_socket_file(path, bound);
  if (!state_->unix_paths.empty() || !state_->addresses.empty()) {
    spdlog::info("{}: stopped", state_->name());
  }
}

std::vector<std::string> HttpServer::bound_addresses() const {
  std::lock_guard lock(state_->mutex);
  return state_->addresses;
}

}  // namespace spanrelay::receivers
