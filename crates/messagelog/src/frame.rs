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

/// Appends a frame whose payload `write_payload` appends to `out` itself, so that the payload is
/// not built and then copied; the bytes are those [`write_frame`] writes for the same payload.
pub(crate) fn encode_frame_with(out: &mut Vec<u8>, write_payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    write_payload(out);
    let payload = &out[start + 8..];
    let length = (payload.len() as u32).to_le_bytes();
    let checksum = crc32c(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&length);
    out[start + 4..start + 8].copy_from_slice(&checksum);
}

pub(crate) fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    writer.write_all(&(payload.len() as u32).to_le_bytes())?;
    writer.write_all(&crc32c(payload).to_le_bytes())?;
    writer.write_all(payload)
}

/// Eight zero bytes where a frame header would start: the end of the frames of a preallocated
/// segment, whose unused space is zero-filled. No frame has this header: a segment's payloads
/// are never empty.
pub(crate) const END_OF_FRAMES: [u8; FRAME_HEADER as usize] = [0; FRAME_HEADER as usize];

/// Reads one frame into `payload`. `Ok(false)` at a clean end of file.
pub(crate) fn read_frame(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    Ok(matches!(
        read_frame_until(reader, payload, None)?,
        Framed::Read
    ))
}

/// What [`read_segment_frame`] found.
pub(crate) enum Framed {
    /// A whole frame, now in `payload`.
    Read,
    /// A clean end of file.
    EndOfFile,
    /// [`END_OF_FRAMES`], which the reader has consumed.
    EndOfFrames,
}

/// Reads one segment frame into `payload`, stopping at the end of the file or at
/// [`END_OF_FRAMES`].
pub(crate) fn read_segment_frame(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
) -> Result<Framed, FrameError> {
    read_frame_until(reader, payload, Some(&END_OF_FRAMES))
}

fn read_frame_until(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
    end: Option<&[u8; FRAME_HEADER as usize]>,
) -> Result<Framed, FrameError> {
    let mut header = [0u8; FRAME_HEADER as usize];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(Framed::EndOfFile),
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
    if end == Some(&header) {
        return Ok(Framed::EndOfFrames);
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
    Ok(Framed::Read)
}

#[cfg(test)]
mod tests {
    use super::{encode_frame_with, read_frame, write_frame};

    #[test]
    fn a_frame_built_in_place_equals_a_written_one_and_reads_back() {
        let payloads: [&[u8]; 3] = [b"", b"one", &[7u8; 5000]];
        let mut in_place = b"prefix".to_vec();
        let mut written = b"prefix".to_vec();
        for payload in payloads {
            encode_frame_with(&mut in_place, |out| out.extend_from_slice(payload));
            write_frame(&mut written, payload).unwrap();
        }
        assert_eq!(in_place, written);
        let mut reader = &in_place[b"prefix".len()..];
        let mut read = Vec::new();
        for payload in payloads {
            assert!(read_frame(&mut reader, &mut read).unwrap());
            assert_eq!(read, payload);
        }
        assert!(!read_frame(&mut reader, &mut read).unwrap());
    }
}
