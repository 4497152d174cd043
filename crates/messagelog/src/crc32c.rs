//! CRC-32C (Castagnoli), the checksum of every frame in segments and archives.
//!
//! Every logged byte passes through it once, on the writer thread, and once more on every read:
//! the `crc32c` crate uses the processor's CRC32 instruction (SSE 4.2 on x86-64, detected at run
//! time) and falls back to a table-driven version elsewhere. The checksum only detects torn or
//! corrupted frames; the hash chain, not the CRC, is what makes tampering evident.

/// The CRC-32C of `data` (as used by iSCSI and ext4; `crc32c("123456789") == 0xE3069283`).
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// The CRC-32C of the bytes whose CRC-32C is `crc`, followed by `data`.
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    /// The plain one-bit-at-a-time CRC (reflected polynomial 0x82F63B78), the reference the
    /// fast version must equal.
    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn fast_equals_bitwise_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for end in start..data.len() {
                let slice = &data[start..end];
                assert_eq!(crc32c(slice), bitwise(slice), "bytes {start}..{end}");
            }
        }
    }
}
