// Fuzz target: the body decoders of daemon/common/compression.h (gzip,
// deflate, zstd; identity for completeness) with their output cap, which is
// what stands between a compression bomb and the daemon's memory.
//
// Input: one control byte, then the compressed body. The control byte's low
// two bits pick the codec, the next three the cap (kCaps).
//
// Properties, beyond "no crash, no sanitizer report":
// - the output never exceeds the cap, and is empty unless the status is kOk;
// - the cap is exact: a body that decodes to n bytes decodes under cap n and
//   is kTooLarge under cap n - 1;
// - what decodes re-encodes and decodes to the same bytes.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/common/compression.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using spanrelay::Codec;
using spanrelay::DecompressStatus;

constexpr std::array<Codec, 4> kCodecs = {Codec::kIdentity, Codec::kGzip, Codec::kDeflate,
                                          Codec::kZstd};
// Around the daemon's limits: max_request_size is at least 1KiB, 4MiB by default.
constexpr std::array<std::size_t, 8> kCaps = {0,         1,         100,      1024,
                                              16u << 10, 64u << 10, 1u << 20, 4u << 20};

void check_result(const spanrelay::Decompressed& result, std::size_t cap) {
  if (result.status == DecompressStatus::kOk) {
    FUZZ_CHECK(result.bytes.size() <= cap, "output over the cap");
  } else {
    FUZZ_CHECK(result.bytes.empty(), "a refused body left output behind");
    FUZZ_CHECK(!result.message.empty(), "a refusal without a reason");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const Codec codec = kCodecs[data[0] & 0x3];
  const std::size_t cap = kCaps[(data[0] >> 2) & 0x7];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto result = spanrelay::decompress(codec, body, cap);
  check_result(result, cap);
  if (result.status != DecompressStatus::kOk) return 0;

  const std::size_t decoded_size = result.bytes.size();
  const auto exact = spanrelay::decompress(codec, body, decoded_size);
  check_result(exact, decoded_size);
  FUZZ_CHECK(exact.status == DecompressStatus::kOk && exact.bytes == result.bytes,
             "the body does not decode under a cap of exactly its size");
  if (decoded_size > 0) {
    const auto tight = spanrelay::decompress(codec, body, decoded_size - 1);
    check_result(tight, decoded_size - 1);
    FUZZ_CHECK(tight.status == DecompressStatus::kTooLarge,
               "a cap one byte short of the output is not refused as too large");
  }

  const auto recompressed = spanrelay::compress(codec, result.bytes);
  FUZZ_CHECK(recompressed.ok(), "decoded bytes do not compress");
  const auto again = spanrelay::decompress(codec, recompressed.value(), decoded_size);
  FUZZ_CHECK(again.status == DecompressStatus::kOk && again.bytes == result.bytes,
             "decode -> encode -> decode changed the bytes");
  return 0;
}
