#pragma once
// SHA-256 (FIPS 180-4) for hashing attribute values in redaction. Small and
// self-contained so the daemon needs no crypto library for it; incremental so
// a salt and a value are hashed without being concatenated first.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spanrelay::processing {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256();
  void update(std::string_view bytes);
  // Pads and returns the digest; the object must not be updated afterwards.
  Digest finish();

  static Digest of(std::string_view bytes);

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> block_{};
  std::size_t block_size_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// Lowercase hex of a digest: 64 characters.
std::string to_hex(const Sha256::Digest& digest);

}  // namespace spanrelay::processing
