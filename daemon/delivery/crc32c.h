#pragma once
// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum of the
// spool's records. Chosen over CRC-32 (zlib) because it detects more error
// patterns at these record sizes and is what storage formats (iSCSI, ext4,
// LevelDB logs) use; computed in software (slicing-by-8), no dependency.
#include <cstdint>
#include <string_view>

namespace spanrelay::delivery {

// Continues a CRC over more bytes: crc32c_extend(crc32c(a), b) == crc32c(a + b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view bytes);

inline std::uint32_t crc32c(std::string_view bytes) { return crc32c_extend(0, bytes); }

}  // namespace spanrelay::delivery
