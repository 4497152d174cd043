//! The JSON of log content: byte strings (bodies, signing inputs, signatures, certificates) are
//! written as standard base64 strings straight into the output.
//!
//! The record types serialize their byte strings with `serialize_bytes`, which serde_json hands
//! to its formatter; the formatter here writes them as base64 strings. Base64 needs no escaping,
//! so the bytes are not scanned a second time for characters to escape, as a string would be:
//! that scan was the largest single cost of logging a 100 KiB exchange. Serialize log content
//! with [`to_vec`] and [`to_writer`] (or [`to_vec_pretty`] for people): a plain
//! `serde_json::to_vec` would write byte strings as arrays of numbers, which the record types do
//! not read back.

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};

/// Writes `value` as compact JSON into `writer`.
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    value.serialize(&mut Serializer::with_formatter(
        writer,
        Base64Bytes(CompactFormatter),
    ))
}

/// `value` as compact JSON.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    to_writer(&mut out, value)?;
    Ok(out)
}

/// `value` as indented JSON, for people.
pub fn to_vec_pretty<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    value.serialize(&mut Serializer::with_formatter(
        &mut out,
        Base64Bytes(PrettyFormatter::new()),
    ))?;
    Ok(out)
}

/// Another formatter's layout, with byte strings as base64 strings.
struct Base64Bytes<F>(F);

/// Input bytes encoded per step: a multiple of 3, so that only the last step pads.
const STEP: usize = 3 * 1024;

impl<F: Formatter> Formatter for Base64Bytes<F> {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        let mut encoded = [0u8; STEP / 3 * 4];
        writer.write_all(b"\"")?;
        for step in value.chunks(STEP) {
            let len = STANDARD
                .encode_slice(step, &mut encoded)
                .map_err(io::Error::other)?;
            writer.write_all(&encoded[..len])?;
        }
        writer.write_all(b"\"")
    }

    // The layout (all that `PrettyFormatter` changes), from the inner formatter.
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample<'a> {
        #[serde(with = "serde_bytes_like")]
        bytes: &'a [u8],
        text: &'a str,
        list: Vec<u8>,
    }

    /// `serialize_bytes`, as the record types' byte fields do.
    mod serde_bytes_like {
        pub(super) fn serialize<S: serde::Serializer>(
            bytes: &&[u8],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(bytes)
        }
    }

    #[test]
    fn byte_strings_are_base64_strings_and_the_rest_is_plain_json() {
        // Empty, shorter than a step, and across steps with every remainder modulo 3.
        for len in [
            0,
            1,
            2,
            3,
            STEP - 1,
            STEP,
            STEP + 1,
            2 * STEP + 2,
            3 * STEP + 1,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let sample = Sample {
                bytes: &bytes,
                text: "quote \" and \n",
                list: vec![1, 2],
            };
            let expected = format!(
                r#"{{"bytes":"{}","text":"quote \" and \n","list":[1,2]}}"#,
                STANDARD.encode(&bytes)
            );
            assert_eq!(
                String::from_utf8(to_vec(&sample).unwrap()).unwrap(),
                expected
            );
            let pretty = to_vec_pretty(&sample).unwrap();
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&pretty).unwrap(),
                serde_json::from_str::<serde_json::Value>(&expected).unwrap(),
                "{len}"
            );
            assert!(pretty.starts_with(b"{\n  \"bytes\": \""));
        }
    }
}
