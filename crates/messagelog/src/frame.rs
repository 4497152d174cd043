//! Framing shared by segments and archives: `[u32 LE length][u32 LE CRC-32C of payload][payload]`.

use std::io::{self, Read, Write};

use passerelle_pki::io::read_full;

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

/// A frame header as read.
enum Header {
    Frame { length: u32, checksum: u32 },
    EndOfFile,
    EndOfFrames,
}

fn read_header(
    reader: &mut impl Read,
    end: Option<&[u8; FRAME_HEADER as usize]>,
) -> Result<Header, FrameError> {
    let mut header = [0u8; FRAME_HEADER as usize];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(Header::EndOfFile),
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
        return Ok(Header::EndOfFrames);
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let length = u32::from_le_bytes([l0, l1, l2, l3]);
    if length > MAX_FRAME {
        return Err(FrameError::Damaged(format!(
            "frame length {length} is implausible"
        )));
    }
    Ok(Header::Frame {
        length,
        checksum: u32::from_le_bytes([c0, c1, c2, c3]),
    })
}

fn check_payload(length: u32, read: u64, stored: u32, computed: u32) -> Result<(), FrameError> {
    if read != u64::from(length) {
        return Err(FrameError::Damaged(format!(
            "frame of {length} bytes cut after {read}"
        )));
    }
    if computed != stored {
        return Err(FrameError::Damaged(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        )));
    }
    Ok(())
}

fn read_frame_until(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
    end: Option<&[u8; FRAME_HEADER as usize]>,
) -> Result<Framed, FrameError> {
    let (length, checksum) = match read_header(reader, end)? {
        Header::Frame { length, checksum } => (length, checksum),
        Header::EndOfFile => return Ok(Framed::EndOfFile),
        Header::EndOfFrames => return Ok(Framed::EndOfFrames),
    };
    payload.clear();
    let read = reader
        .take(u64::from(length))
        .read_to_end(payload)
        .map_err(FrameError::Io)?;
    check_payload(length, read as u64, checksum, crc32c(payload))?;
    Ok(Framed::Read)
}

/// What [`stream_segment_frame`] found.
pub(crate) enum Streamed<'a, R, F> {
    /// A frame whose payload is to be read through the [`FramePayload`].
    Frame(FramePayload<'a, R, F>),
    EndOfFile,
    /// [`END_OF_FRAMES`], which the reader has consumed.
    EndOfFrames,
}

/// Starts reading one segment frame without holding its payload: see [`FramePayload`].
/// `chunk` is the buffer it reads through, kept by the caller from one frame to the next.
pub(crate) fn stream_segment_frame<'a, R: Read, F: FnMut(u64, &[u8])>(
    reader: &'a mut R,
    chunk: &'a mut Vec<u8>,
    observe: F,
) -> Result<Streamed<'a, R, F>, FrameError> {
    chunk.clear();
    Ok(match read_header(reader, Some(&END_OF_FRAMES))? {
        Header::Frame { length, checksum } => Streamed::Frame(FramePayload {
            reader,
            observe,
            length,
            checksum,
            crc: 0,
            pulled: 0,
            chunk,
            served: 0,
            failed: None,
        }),
        Header::EndOfFile => Streamed::EndOfFile,
        Header::EndOfFrames => Streamed::EndOfFrames,
    })
}

/// Bytes a [`FramePayload`] pulls from the file at a time.
const PAYLOAD_CHUNK: usize = 64 * 1024;
/// The largest payload [`FramePayload::whole`] hands over in one slice.
pub(crate) const WHOLE_LIMIT: usize = 1024 * 1024;

/// The payload of one frame, read through a bounded buffer so that a large payload is never held
/// whole. Every chunk is checksummed and handed to `observe`, with its offset in the payload, as it
/// is pulled from the file, whether or not it is then read through [`Read`].
/// [`FramePayload::finish`] reads what is left and checks the length and the checksum. A failed
/// read of the file is never mistaken for damage: once one failed, `finish` reports it.
pub(crate) struct FramePayload<'a, R, F> {
    reader: &'a mut R,
    observe: F,
    length: u32,
    checksum: u32,
    crc: u32,
    /// Payload bytes pulled from the file so far.
    pulled: u64,
    chunk: &'a mut Vec<u8>,
    /// Bytes of `chunk` already read through [`Read`].
    served: usize,
    /// The first read of the file that failed.
    failed: Option<io::Error>,
}

impl<R: Read, F: FnMut(u64, &[u8])> FramePayload<'_, R, F> {
    /// Pulls the next chunk of at most `limit` bytes, as full as the payload and the file allow;
    /// `false` once the payload, or the file, has ended. After a failed read nothing more is
    /// pulled: the bytes it consumed are lost, so the rest could not be checked.
    fn pull(&mut self, limit: usize) -> io::Result<bool> {
        self.chunk.clear();
        self.served = 0;
        if let Some(failed) = &self.failed {
            return Err(io::Error::new(
                failed.kind(),
                "an earlier read of this frame failed",
            ));
        }
        let wanted = (u64::from(self.length) - self.pulled).min(limit as u64) as usize;
        self.chunk.resize(wanted, 0);
        let filled = match read_full(self.reader, self.chunk) {
            Ok(filled) => filled,
            Err(error) => {
                self.chunk.clear();
                let returned = io::Error::new(error.kind(), error.to_string());
                self.failed = Some(error);
                return Err(returned);
            }
        };
        self.chunk.truncate(filled);
        self.crc = crate::crc32c::crc32c_append(self.crc, self.chunk);
        (self.observe)(self.pulled, self.chunk);
        self.pulled += filled as u64;
        Ok(filled > 0)
    }

    /// The whole payload in one slice, when it is at most [`WHOLE_LIMIT`] bytes and nothing was
    /// read yet; it then counts as read. Parsing a slice is several times faster than parsing
    /// through [`Read`], byte by byte.
    pub(crate) fn whole(&mut self) -> io::Result<Option<&[u8]>> {
        if self.pulled > 0 || self.length as usize > WHOLE_LIMIT {
            return Ok(None);
        }
        self.pull(WHOLE_LIMIT)?;
        self.served = self.chunk.len();
        Ok(Some(self.chunk))
    }

    /// Reads the rest of the payload and checks it: the payload's length on success, and the
    /// first failed read of the file, if one failed, before any verdict on the bytes.
    pub(crate) fn finish(mut self) -> Result<u32, FrameError> {
        while let Ok(true) = self.pull(PAYLOAD_CHUNK) {}
        if let Some(failed) = self.failed.take() {
            return Err(FrameError::Io(failed));
        }
        check_payload(self.length, self.pulled, self.checksum, self.crc)?;
        Ok(self.length)
    }
}

impl<R: Read, F: FnMut(u64, &[u8])> Read for FramePayload<'_, R, F> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.served == self.chunk.len() && !self.pull(PAYLOAD_CHUNK)? {
            return Ok(0);
        }
        let count = buffer.len().min(self.chunk.len() - self.served);
        buffer[..count].copy_from_slice(&self.chunk[self.served..self.served + count]);
        self.served += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::{
        FrameError, PAYLOAD_CHUNK, Streamed, WHOLE_LIMIT, encode_frame_with, read_frame,
        stream_segment_frame, write_frame,
    };

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

    /// A file that gives at most 1000 bytes per read, as a buffered reader does at the end of
    /// its buffer.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let count = buffer.len().min(self.0.len()).min(1000);
            buffer[..count].copy_from_slice(&self.0[..count]);
            self.0 = &self.0[count..];
            Ok(count)
        }
    }

    /// A payload read through [`super::FramePayload`] in chunks, or in one slice when it fits in
    /// one, reads back whole; every chunk is observed once, in order; damage is found either way.
    #[test]
    fn a_streamed_payload_reads_back_whole_and_its_damage_is_found() {
        for size in [
            1,
            33,
            PAYLOAD_CHUNK,
            PAYLOAD_CHUNK + 1,
            3 * PAYLOAD_CHUNK + 7,
            WHOLE_LIMIT,
            WHOLE_LIMIT + 1,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let mut frame = Vec::new();
            write_frame(&mut frame, &payload).unwrap();
            // Read through `Read` from the start; through `whole` first; after a first read.
            for mode in 0..3 {
                let mut observed = Vec::new();
                let mut chunk = Vec::new();
                let mut reader = Trickle(&frame);
                let observe = |at: u64, bytes: &[u8]| {
                    assert_eq!(at as usize, observed.len());
                    observed.extend_from_slice(bytes);
                };
                let Streamed::Frame(mut streamed) =
                    stream_segment_frame(&mut reader, &mut chunk, observe).unwrap()
                else {
                    panic!("a frame")
                };
                let mut read = Vec::new();
                if mode == 2 {
                    read.resize(5, 0);
                    let first = streamed.read(&mut read).unwrap();
                    read.truncate(first);
                }
                let whole = match mode {
                    0 => None,
                    _ => streamed.whole().unwrap().map(<[u8]>::to_vec),
                };
                assert_eq!(whole.is_some(), mode == 1 && size <= WHOLE_LIMIT);
                streamed.read_to_end(&mut read).unwrap();
                assert_eq!(streamed.finish().unwrap() as usize, size);
                match whole {
                    Some(whole) => {
                        assert_eq!(whole, payload);
                        assert!(read.is_empty(), "the slice counts as read");
                    }
                    None => assert_eq!(read, payload),
                }
                assert_eq!(observed, payload);
            }
            let damaged = |frame: &[u8]| {
                let mut chunk = Vec::new();
                let mut reader = Trickle(frame);
                match stream_segment_frame(&mut reader, &mut chunk, |_, _| {}) {
                    Ok(Streamed::Frame(streamed)) => streamed.finish(),
                    _ => panic!("a frame header"),
                }
            };
            let mut flipped = frame.clone();
            flipped[8 + size / 2] ^= 1;
            assert!(
                matches!(damaged(&flipped), Err(FrameError::Damaged(reason)) if reason.contains("checksum")),
            );
            assert!(
                matches!(damaged(&frame[..frame.len() - 1]), Err(FrameError::Damaged(reason)) if reason.contains("cut after")),
            );
        }
    }

    /// A file whose read fails once at byte `at`, after giving every byte before it.
    struct FailOnce<'a> {
        bytes: &'a [u8],
        at: usize,
        position: usize,
        failed: bool,
    }

    impl Read for FailOnce<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if !self.failed && self.position == self.at {
                self.failed = true;
                return Err(std::io::Error::other("transient read error"));
            }
            let end = if self.failed {
                self.bytes.len()
            } else {
                self.at
            };
            let count = buffer.len().min(end - self.position).min(1000);
            buffer[..count].copy_from_slice(&self.bytes[self.position..self.position + count]);
            self.position += count;
            Ok(count)
        }
    }

    /// A read that fails while a payload is read, whether whole, through [`Read`] or by
    /// `finish`, at a chunk's edge or inside one, is reported as a failed read: never as damage
    /// (which would have the log cut there), even though the read goes on afterwards.
    #[test]
    fn a_failed_read_is_reported_as_such_and_never_as_damage() {
        let cases = [
            (1000, 8 + 500),
            (200_000, 8 + PAYLOAD_CHUNK),
            (200_000, 8 + 100_000),
            (WHOLE_LIMIT + 5, 8 + PAYLOAD_CHUNK + 3),
        ];
        for (size, at) in cases {
            let payload: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let mut frame = Vec::new();
            write_frame(&mut frame, &payload).unwrap();
            for mode in 0..3 {
                let mut reader = FailOnce {
                    bytes: &frame,
                    at,
                    position: 0,
                    failed: false,
                };
                let mut chunk = Vec::new();
                let Streamed::Frame(mut streamed) =
                    stream_segment_frame(&mut reader, &mut chunk, |_, _| {}).unwrap()
                else {
                    panic!("a frame")
                };
                match mode {
                    0 => {
                        let _ = streamed.whole();
                    }
                    1 => {
                        let _ = streamed.read_to_end(&mut Vec::new());
                    }
                    _ => {}
                }
                assert!(
                    matches!(streamed.finish(), Err(FrameError::Io(_))),
                    "size {size}, failing at {at}, mode {mode}"
                );
            }
        }
    }
}
