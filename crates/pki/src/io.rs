//! Reading helpers shared by the readers of sealed archives here and of message-log frames.

use std::io::{self, Read};

/// Reads until `buffer` is full or the input ends; returns how many bytes were read. Unlike
/// [`Read::read_exact`], a short input is not an error: the caller decides what it means (a
/// clean end, or a torn frame).
pub fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}
