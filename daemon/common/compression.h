#pragma once
// Body codecs for OTLP: gzip (required of every OTLP server), deflate (zlib
// framing, accepted for leniency) and zstd (common over OTLP/HTTP).
// Decompression takes an output cap so that a compression bomb is refused
// after at most `max_output` bytes of work, never expanded in full.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/common/result.h"

namespace spanrelay {

enum class Codec { kIdentity, kGzip, kDeflate, kZstd };

// Maps a Content-Encoding / grpc-encoding value; nullopt for unsupported ones.
std::optional<Codec> codec_from_name(std::string_view name);
std::string_view codec_name(Codec codec);

enum class DecompressStatus { kOk, kCorrupt, kTooLarge };
struct Decompressed {
  DecompressStatus status = DecompressStatus::kOk;
  std::string bytes;    // valid when status == kOk
  std::string message;  // why, when not ok
};

Decompressed decompress(Codec codec, std::string_view input, std::size_t max_output);

// Compresses with the codec's default level (gzip 6 is too slow for a relay on
// the hot path; level 1 keeps most of the ratio at a fraction of the CPU).
Result<std::string> compress(Codec codec, std::string_view input);

}  // namespace spanrelay
