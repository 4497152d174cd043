//! Framing shared by segments and archives: `[u32 LE length][u32 LE CRC-32C of payload][payload]`.

use std::io::{self, Read, Write};

use crate::crc32c::crc32c;

/// Bytes of the frame header.
pub(crate) const FRAME_HEADER: u64 = 8;
/// Largest payload accepted; anything larger is treated as a damaged length.
pub(crate) const MAX_FRAME: u32 = 512 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The file ends inside a frame, or its length or checksum is wrong.
    Damaged(String),
    Io(io::Error),
}

pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    writer.write_all(&(payload.len() as u32).to_le_bytes())?;
    writer.write_all(&crc32c(payload).to_le_bytes())?;
    writer.write_all(payload)
}

/// Reads one frame into `payload`. `Ok(false)` at a clean end of file.
pub(crate) fn read_frame(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut header = [0u8; 8];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(FrameError::Damaged(format!(
                    "short frame header ({filled} bytes)"
                )));
            }
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let length = u32::from_le_bytes([l0, l1, l2, l3]);
    let checksum = u32::from_le_bytes([c0, c1, c2, c3]);
    if length > MAX_FRAME {
        return Err(FrameError::Damaged(format!(
            "frame length {length} is implausible"
        )));
    }
    payload.clear();
    let read = reader
        .take(u64::from(length))
        .read_to_end(payload)
        .map_err(FrameError::Io)?;
    if read != length as usize {
        return Err(FrameError::Damaged(format!(
            "frame of {length} bytes cut after {read}"
        )));
    }
    let actual = crc32c(payload);
    if actual != checksum {
        return Err(FrameError::Damaged(format!(
            "checksum mismatch (stored {checksum:08x}, computed {actual:08x})"
        )));
    }
    Ok(true)
}
