#include "daemon/delivery/crc32c.h"

#include <doctest/doctest.h>

#include <string>

using spanrelay::delivery::crc32c;
using spanrelay::delivery::crc32c_extend;

TEST_CASE("crc32c: known-answer vectors (Castagnoli, RFC 3720 B.4)") {
  CHECK(crc32c("") == 0x00000000u);
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  CHECK(crc32c(ascending) == 0x46DD794Eu);
}

TEST_CASE("crc32c: extending in pieces equals one pass, at every split and alignment") {
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes.push_back(static_cast<char>((i * 131 + 7) & 0xff));
  const std::uint32_t whole = crc32c(bytes);
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    const std::string_view view(bytes);
    CHECK(crc32c_extend(crc32c(view.substr(0, split)), view.substr(split)) == whole);
  }
}

TEST_CASE("crc32c: a single flipped bit changes the checksum") {
  std::string bytes(100, 'a');
  const std::uint32_t original = crc32c(bytes);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    CHECK(crc32c(flipped) != original);
  }
}
