#include "daemon/common/compression.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstdint>
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

constexpr std::size_t kChunk = std::size_t{64} * 1024;

Decompressed too_large(std::size_t max_output) {
  return {DecompressStatus::kTooLarge,
          {},
          "decompressed body exceeds the limit of " + std::to_string(max_output) + " bytes"};
}

Decompressed corrupt(std::string what) { return {DecompressStatus::kCorrupt, {}, std::move(what)}; }

// Compression contexts are kept per thread and reset between bodies, not
// made anew for each: zlib's and zstd's set-up allocates and clears hundreds of
// KiB, which cost as much as compressing a small batch (issue 6). Each holder
// frees its context when its thread ends.
class ZlibStream {
 public:
  ZlibStream(bool inflating, int window_bits) : inflating_(inflating) {
    const int rc = inflating
                       ? inflateInit2(&stream_, window_bits)
                       : deflateInit2(&stream_, 1, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    ready_ = rc == Z_OK;
  }
  ~ZlibStream() {
    if (!ready_) return;
    if (inflating_) {
      inflateEnd(&stream_);
    } else {
      deflateEnd(&stream_);
    }
  }
  ZlibStream(const ZlibStream&) = delete;
  ZlibStream& operator=(const ZlibStream&) = delete;

  // The stream, reset for a new body; null when zlib could not set it up.
  z_stream* fresh() {
    if (!ready_) return nullptr;
    const int rc = inflating_ ? inflateReset(&stream_) : deflateReset(&stream_);
    return rc == Z_OK ? &stream_ : nullptr;
  }

 private:
  z_stream stream_{};
  bool inflating_;
  bool ready_ = false;
};

// windowBits 15+16 is gzip framing, 15 zlib framing: one stream per thread
// for each kind, made on first use (a deflate stream holds ~270 KiB, which a
// receiver thread that only inflates should not carry).
z_stream* thread_zlib_stream(bool inflating, int window_bits) {
  if (inflating) {
    if (window_bits == 15 + 16) {
      thread_local ZlibStream gzip_inflate(true, 15 + 16);
      return gzip_inflate.fresh();
    }
    thread_local ZlibStream zlib_inflate(true, 15);
    return zlib_inflate.fresh();
  }
  if (window_bits == 15 + 16) {
    thread_local ZlibStream gzip_deflate(false, 15 + 16);
    return gzip_deflate.fresh();
  }
  thread_local ZlibStream zlib_deflate(false, 15);
  return zlib_deflate.fresh();
}

// windowBits 15+16 reads gzip framing, 15 reads zlib framing.
Decompressed inflate_body(std::string_view input, std::size_t max_output, int window_bits) {
  z_stream* stream = thread_zlib_stream(true, window_bits);
  if (stream == nullptr) return corrupt("zlib initialisation failed");
  Decompressed out;
  stream->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream->avail_in = static_cast<uInt>(input.size());
  std::array<char, kChunk> buffer{};
  for (;;) {
    stream->next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream->avail_out = static_cast<uInt>(buffer.size());
    const int rc = inflate(stream, Z_NO_FLUSH);
    const std::size_t produced = buffer.size() - stream->avail_out;
    if (out.bytes.size() + produced > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), produced);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are one body (RFC 1952 2.2).
      if (stream->avail_in == 0) return out;
      if (inflateReset(stream) != Z_OK) return corrupt("gzip stream reset failed");
      continue;
    }
    if (rc == Z_BUF_ERROR && stream->avail_in == 0) return corrupt("truncated compressed body");
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return corrupt(std::string("invalid compressed body: ") +
                     (stream->msg ? stream->msg : "zlib error " + std::to_string(rc)));
    }
  }
}

struct ZstdDStreamDeleter {
  void operator()(ZSTD_DStream* s) const { ZSTD_freeDStream(s); }
};
struct ZstdCCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// Reset for a new frame; null when zstd could not allocate it.
ZSTD_DStream* thread_zstd_dstream() {
  thread_local std::unique_ptr<ZSTD_DStream, ZstdDStreamDeleter> stream(ZSTD_createDStream());
  if (!stream || ZSTD_isError(ZSTD_DCtx_reset(stream.get(), ZSTD_reset_session_only))) {
    return nullptr;
  }
  return stream.get();
}

ZSTD_CCtx* thread_zstd_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter> context(ZSTD_createCCtx());
  return context.get();
}

// True when every frame in the body is a current zstd frame or a skippable
// one. Debian's libzstd still decodes the pre-1.0 "legacy" formats, whose
// frames declare a content size they need not keep to (fuzzing found one that
// declares more than it yields), so a body's result would depend on the cap.
// No OTLP sender writes them; they are refused as corrupt.
bool only_current_zstd_frames(std::string_view input) {
  while (!input.empty()) {
    if (input.size() < 4) return false;
    const auto byte = [&](std::size_t i) {
      return static_cast<std::uint32_t>(static_cast<unsigned char>(input[i]));
    };
    const std::uint32_t magic = byte(0) | byte(1) << 8 | byte(2) << 16 | byte(3) << 24;
    if (magic != ZSTD_MAGICNUMBER &&
        (magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START) {
      return false;
    }
    const std::size_t frame_size = ZSTD_findFrameCompressedSize(input.data(), input.size());
    // A truncated or broken frame is left to the decoder, which names the fault.
    if (ZSTD_isError(frame_size)) return true;
    input.remove_prefix(frame_size);
  }
  return true;
}

Decompressed unzstd_body(std::string_view input, std::size_t max_output) {
  if (!only_current_zstd_frames(input)) {
    return corrupt("invalid zstd body: not a zstd frame (legacy pre-1.0 formats are refused)");
  }
  // Refuse early when the frame header already declares too much.
  const auto declared = ZSTD_getFrameContentSize(input.data(), input.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return corrupt("invalid zstd frame header");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > max_output) return too_large(max_output);

  ZSTD_DStream* const stream = thread_zstd_dstream();
  if (stream == nullptr) return corrupt("zstd initialisation failed");
  Decompressed out;
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  std::array<char, kChunk> buffer{};
  std::size_t last_rc = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer chunk{buffer.data(), buffer.size(), 0};
    last_rc = ZSTD_decompressStream(stream, &chunk, &in);
    if (ZSTD_isError(last_rc))
      return corrupt(std::string("invalid zstd body: ") + ZSTD_getErrorName(last_rc));
    if (out.bytes.size() + chunk.pos > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), chunk.pos);
  }
  // Flush what the decoder still holds once all input is consumed.
  while (last_rc != 0) {
    ZSTD_outBuffer chunk{buffer.data(), buffer.size(), 0};
    last_rc = ZSTD_decompressStream(stream, &chunk, &in);
    if (ZSTD_isError(last_rc))
      return corrupt(std::string("invalid zstd body: ") + ZSTD_getErrorName(last_rc));
    if (out.bytes.size() + chunk.pos > max_output) return too_large(max_output);
    out.bytes.append(buffer.data(), chunk.pos);
    if (chunk.pos == 0 && last_rc != 0) return corrupt("truncated zstd body");
  }
  return out;
}

Result<std::string> deflate_body(std::string_view input, int window_bits) {
  z_stream* const reset = thread_zlib_stream(false, window_bits);
  if (reset == nullptr) return Error{"zlib initialisation failed"};
  z_stream& stream = *reset;
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(input.size())));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
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
      ZSTD_CCtx* const context = thread_zstd_cctx();
      if (context == nullptr) return Error{"zstd initialisation failed"};
      const auto n =
          ZSTD_compressCCtx(context, out.data(), out.size(), input.data(), input.size(), 1);
      if (ZSTD_isError(n))
        return Error{std::string("zstd compression failed: ") + ZSTD_getErrorName(n)};
      out.resize(n);
      return out;
    }
  }
  return Error{"unknown codec"};
}

}  // namespace spanrelay
