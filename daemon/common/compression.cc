#include "daemon/common/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <memory>

namespace spanrelay {

std::optional<Codec> codec_from_name(std::string_view name) {
  if (name.empty() || name == "identity") return Codec::kIdentity;
  if (name == "gzip" || name == "x-gzip") return Codec::kGzip;
  if (name == "deflate") return Codec::kDeflate;
  if (name == "zstd") return Codec::kZstd;
  return std::nullopt;
}

std::string_view codec_name(Codec codec) {
  switch (codec) {
    case Codec::kIdentity:
      return "identity";
    case Codec::kGzip:
      return "gzip";
    case Codec::kDeflate:
      return "deflate";
    case Codec::kZstd:
      return "zstd";
  }
  return "identity";
}

namespace {

constexpr std::size_t kChunk = 64 * 1024;

Decompressed too_large(std::size_t max_output) {
  return {DecompressStatus::kTooLarge,
          {},
          "decompressed body exceeds the limit of " + std::to_string(max_output) + " bytes"};
}

Decompressed corrupt(std::string what) { return {DecompressStatus::kCorrupt, {}, std::move(what)}; }

struct InflateStream {
  z_stream stream{};
  bool initialised = false;
  ~InflateStream() {
    if (initialised) inflateEnd(&stream);
  }
};

// windowBits 15+16 reads gzip framing, 15 reads zlib framing.
Decompressed inflate_body(std::string_view input, std::size_t max_output, int window_bits) {
  InflateStream z;
  if (inflateInit2(&z.stream, window_bits) != Z_OK) return corrupt("zlib initialisation failed");
  z.initialised = true;
  Decompressed out;
  z.stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  z.stream.avail_in = static_cast<uInt>(input.size());
  std::array<char, kChunk> buffer{};
  for (;;) {
    z.stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    z.stream.avail_out = static_cast<uInt>(buffer.size());
    const int rc = inflate(&z.stream, Z_NO_FLUSH);
    const std::size_t produced = buffer.size() - z.stream.avail_out;
    if (out.bytes.size() + produced > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), produced);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are one body (RFC 1952 2.2).
      if (z.stream.avail_in == 0) return out;
      if (inflateReset(&z.stream) != Z_OK) return corrupt("gzip stream reset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && z.stream.avail_in == 0) return corrupt("truncated compressed body");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return corrupt(std::string("invalid compressed body: ") +
                     (z.stream.msg ? z.stream.msg : "zlib error " + std::to_string(rc)));
    }
  }
}

struct ZstdDStreamDeleter {
  void operator()(ZSTD_DStream* s) const { ZSTD_freeDStream(s); }
};

Decompressed unzstd_body(std::string_view input, std::size_t max_output) {
  // Refuse early when the frame header already declares too much.
  const auto declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return corrupt("invalid zstd frame header");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > max_output) return too_large(max_output);

  std::unique_ptr<ZSTD_DStream, ZstdDStreamDeleter> stream(ZSTD_createDStream());
  if (!stream) return corrupt("zstd initialisation failed");
  Decompressed out;
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  std::array<char, kChunk> buffer{};
  std::size_t last_rc = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer chunk{buffer.data(), buffer.size(), 0};
    last_rc = ZSTD_decompressStream(stream.get(), &chunk, &in);
    if (ZSTD_isError(last_rc))
      return corrupt(std::string("invalid zstd body: ") + ZSTD_getErrorName(last_rc));
    if (out.bytes.size() + chunk.pos > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), chunk.pos);
  }
  // Flush what the decoder still holds once all input is consumed.
  while (last_rc != 0) {
    ZSTD_outBuffer chunk{buffer.data(), buffer.size(), 0};
    last_rc = ZSTD_decompressStream(stream.get(), &chunk, &in);
    if (ZSTD_isError(last_rc))
      return corrupt(std::string("invalid zstd body: ") + ZSTD_getErrorName(last_rc));
    if (out.bytes.size() + chunk.pos > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), chunk.pos);
    if (chunk.pos == 0 && last_rc != 0) return corrupt("truncated zstd body");
  }
  return out;
}

Result<std::string> deflate_body(std::string_view input, int window_bits) {
  z_stream stream{};
  if (deflateInit2(&stream, 1, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error{"zlib initialisation failed"};
  }
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(input.size())));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) return Error{"gzip compression failed"};
  return out;
}

}  // namespace

Decompressed decompress(Codec codec, std::string_view input, std::size_t max_output) {
  switch (codec) {
    case Codec::kIdentity:
      if (input.size() > max_output) return too_large(max_output);
      return {DecompressStatus::kOk, std::string(input), {}};
    case Codec::kGzip:
      return inflate_body(input, max_output, 15 + 16);
    case Codec::kDeflate:
      return inflate_body(input, max_output, 15);
    case Codec::kZstd:
      return unzstd_body(input, max_output);
  }
  return corrupt("unknown codec");
}

Result<std::string> compress(Codec codec, std::string_view input) {
  switch (codec) {
    case Codec::kIdentity:
      return std::string(input);
    case Codec::kGzip:
      return deflate_body(input, 15 + 16);
    case Codec::kDeflate:
      return deflate_body(input, 15);
    case Codec::kZstd: {
      std::string out;
      out.resize(ZSTD_compressBound(input.size()));
      const auto n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 1);
      if (ZSTD_isError(n))
        return Error{std::string("zstd compression failed: ") + ZSTD_getErrorName(n)};
      out.resize(n);
      return out;
    }
  }
  return Error{"unknown codec"};
}

}  // namespace spanrelay
