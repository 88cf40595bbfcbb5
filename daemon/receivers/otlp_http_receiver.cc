#include "daemon/receivers/otlp_http_receiver.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include "daemon/common/compression.h"
#include "daemon/otlp/json_text.h"
#include "spanrelay/rpc/status.pb.h"

namespace spanrelay::receivers {

namespace {

// google.rpc.Code values carried in the error Status (OTLP/HTTP "Failures").
constexpr int kInvalidArgument = 3;
constexpr int kResourceExhausted = 8;
constexpr std::string_view kRetryInfoType = "type.googleapis.com/google.rpc.RetryInfo";

constexpr std::string_view kProtobufType = "application/x-protobuf";
constexpr std::string_view kProtobufAltType = "application/protobuf";
constexpr std::string_view kJsonType = "application/json";

// How the request was encoded, hence how to answer (OTLP/HTTP: "the response
// uses the same encoding as the request").
struct Encoding {
  BodyEncoding body;
  std::string_view content_type;  // echoed in responses
};

std::string trim_lower(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  std::string out(text.substr(first, last - first + 1));
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "application/json; charset=utf-8" -> application/json; parameters are ignored.
std::optional<Encoding> encoding_of(std::string_view content_type) {
  const std::string media = trim_lower(content_type.substr(0, content_type.find(';')));
  if (media == kProtobufType) return Encoding{BodyEncoding::kProtobuf, kProtobufType};
  if (media == kProtobufAltType) return Encoding{BodyEncoding::kProtobuf, kProtobufAltType};
  if (media == kJsonType) return Encoding{BodyEncoding::kJson, kJsonType};
  return std::nullopt;
}

// Beast 1.74 speaks boost::string_view.
std::string_view to_std(boost::beast::string_view text) { return {text.data(), text.size()}; }
boost::beast::string_view to_beast(std::string_view text) { return {text.data(), text.size()}; }

std::string_view path_of(boost::beast::string_view target) {
  const std::string_view text = to_std(target);
  return text.substr(0, text.find('?'));
}

// Length of the valid UTF-8 sequence at the start of `text`, 0 if invalid.
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned min_second = 0x80, max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < min_second || byte(1) > max_second) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Messages may quote client input; both the proto3 string and JSON need UTF-8.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t length = utf8_sequence_length(text);
    if (length == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, length));
      text.remove_prefix(length);
    }
  }
  return out;
}

// One JSON string writer for the whole daemon (the OTLP/JSON transcoder's).
using otlp::json_text::append_json_string;

// An error answer carrying a google.rpc.Status in the request's encoding; a
// positive `retry_after` adds a RetryInfo detail and the Retry-After header.
HttpResponse status_response(http::status http_status, const Encoding& encoding, int code,
                             std::string_view message,
                             std::chrono::seconds retry_after = std::chrono::seconds(0)) {
  HttpResponse response{http_status, 11};
  response.set(http::field::content_type, to_beast(encoding.content_type));
  const std::string text = valid_utf8(message);
  if (encoding.body == BodyEncoding::kJson) {
    std::string& json = response.body();
    json = "{\"code\":" + std::to_string(code) + ",\"message\":";
    append_json_string(json, text);
    if (retry_after.count() > 0) {
      json += ",\"details\":[{\"@type\":\"";
      json += kRetryInfoType;
      json += "\",\"retryDelay\":\"" + std::to_string(retry_after.count()) + "s\"}]";
    }
    json += '}';
  } else {
    rpc::Status status;
    status.set_code(code);
    status.set_message(text);
    if (retry_after.count() > 0) {
      rpc::RetryInfo retry_info;
      retry_info.mutable_retry_delay()->set_seconds(retry_after.count());
      auto* detail = status.add_details();
      detail->set_type_url(std::string(kRetryInfoType));
      detail->set_value(retry_info.SerializeAsString());
    }
    status.SerializeToString(&response.body());
  }
  if (retry_after.count() > 0) {
    response.set(http::field::retry_after, std::to_string(retry_after.count()));
  }
  return response;
}

HttpResponse success_response(const Encoding& encoding) {
  // An empty ExportTraceServiceResponse: no partial_success, every span taken.
  HttpResponse response{http::status::ok, 11};
  response.set(http::field::content_type, to_beast(encoding.content_type));
  if (encoding.body == BodyEncoding::kJson) response.body() = "{}";
  return response;
}

}  // namespace

OtlpHttpReceiver::OtlpHttpReceiver(Ingest& ingest, std::size_t max_request_size)
    : ingest_(ingest), max_request_size_(max_request_size) {}

HttpResponse OtlpHttpReceiver::handle(HttpRequest&& request) {
  if (path_of(request.target()) != kTracesPath) {
    return make_text_response(http::status::not_found,
                              "not found: OTLP/HTTP traces are accepted at POST /v1/traces");
  }
  if (request.method() != http::verb::post) {
    auto response = make_text_response(http::status::method_not_allowed,
                                       "method not allowed: /v1/traces accepts POST only");
    response.set(http::field::allow, "POST");
    return response;
  }
  const std::string_view content_type = to_std(request[http::field::content_type]);
  const auto encoding = encoding_of(content_type);
  if (!encoding) {
    ingest_.count_refused_request("unsupported_media_type");
    return make_text_response(http::status::unsupported_media_type,
                              "unsupported content type '" + valid_utf8(content_type) +
                                  "': use application/x-protobuf or application/json");
  }
  const std::string content_encoding = trim_lower(to_std(request[http::field::content_encoding]));
  const auto codec = codec_from_name(content_encoding);
  if (!codec) {
    ingest_.count_refused_request("unsupported_media_type");
    return make_text_response(http::status::unsupported_media_type,
                              "unsupported content encoding '" + valid_utf8(content_encoding) +
                                  "': use gzip, deflate, zstd or identity");
  }

  std::string body = std::move(request.body());
  if (*codec != Codec::kIdentity) {
    // The output cap makes a compression bomb cost at most max_request_size,
    // and at most max_decompression_ratio times the bytes sent.
    const std::size_t cap = std::min(max_request_size_, ingest_.limits().inflate_cap(body.size()));
    auto decompressed = decompress(*codec, body, cap);
    switch (decompressed.status) {
      case DecompressStatus::kOk:
        body = std::move(decompressed.bytes);
        break;
      case DecompressStatus::kCorrupt:
        ingest_.count_refused_request("bad_compression");
        return status_response(
            http::status::bad_request, *encoding, kInvalidArgument,
            "invalid " + std::string(codec_name(*codec)) + " body: " + decompressed.message);
      case DecompressStatus::kTooLarge:
        if (ingest_.limits().cap_is_ratio(cap)) {
          ingest_.count_refused_request("decompression_ratio");
          return status_response(http::status::payload_too_large, *encoding, kResourceExhausted,
                                 decompressed.message + " (max_decompression_ratio " +
                                     std::to_string(ingest_.limits().max_decompression_ratio) +
                                     ")");
        }
        ingest_.count_refused_request("too_large");
        return status_response(http::status::payload_too_large, *encoding, kResourceExhausted,
                               decompressed.message);
    }
  }

  // Ingest counts its own refusals (decode_error, too_large, memory_limit...).
  const IngestOutcome outcome = ingest_.ingest(std::move(body), encoding->body, "http");
  switch (outcome.kind) {
    case IngestOutcome::Kind::kAccepted:
      return success_response(*encoding);
    case IngestOutcome::Kind::kBadRequest:
      return status_response(http::status::bad_request, *encoding, kInvalidArgument,
                             outcome.message);
    case IngestOutcome::Kind::kTooLarge:
      return status_response(http::status::payload_too_large, *encoding, kResourceExhausted,
                             outcome.message);
    case IngestOutcome::Kind::kRefused:
      // OTLP/HTTP: 429 is retryable, and the SDK honours Retry-After.
      return status_response(http::status::too_many_requests, *encoding, kResourceExhausted,
                             outcome.message,
                             std::max(outcome.retry_after, std::chrono::seconds(1)));
  }
  return make_text_response(http::status::internal_server_error, "unexpected ingest outcome");
}

HttpResponse OtlpHttpReceiver::transport_error(const HttpRequestHeader& header, http::status status,
                                               std::string_view message) {
  const bool is_traces = path_of(header.target()) == kTracesPath;
  if (is_traces && status == http::status::payload_too_large) {
    ingest_.count_refused_request("too_large");
  }
  const auto encoding = encoding_of(to_std(header[http::field::content_type]));
  if (!is_traces || !encoding) return make_text_response(status, message);
  const int code =
      status == http::status::payload_too_large ? kResourceExhausted : kInvalidArgument;
  return status_response(status, *encoding, code, message);
}

HttpServerOptions OtlpHttpReceiver::server_options(std::string name, std::size_t io_threads) {
  HttpServerOptions options;
  options.body_limit = max_request_size_;
  options.io_threads = io_threads;
  options.name = std::move(name);
  options.error_responder = [this](const HttpRequestHeader& header, http::status status,
                                   std::string_view message) {
    return transport_error(header, status, message);
  };
  if (limits_) {
    options.header_limit = static_cast<std::uint32_t>(limits_->max_header_size);
    options.read_timeout = limits_->read_timeout;
    options.idle_timeout = limits_->idle_timeout;
  }
  options.access = access_.get();
  return options;
}

void OtlpHttpReceiver::set_connection_limits(const config::ReceiverLimitsConfig& limits,
                                             std::shared_ptr<PeerAccess> access) {
  limits_ = limits;
  access_ = std::move(access);
}

HttpHandler OtlpHttpReceiver::handler() {
  return [this](HttpRequest&& request) { return handle(std::move(request)); };
}

}  // namespace spanrelay::receivers
