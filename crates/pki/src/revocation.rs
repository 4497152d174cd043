//! The status of the certificates a CA issued, as `openssl ca` keeps it in `index.txt`: what
//! the development OCSP responder answers from and what `passerelle pki revoke` edits.
//!
//! Each line is six tab-separated fields: status (`V` valid, `R` revoked, `E` expired), expiry,
//! revocation (`YYMMDDHHMMSSZ` or `YYMMDDHHMMSSZ,reason`, empty unless revoked), serial
//! (upper-case hex), file name and subject. Lines that do not parse are kept as they are and
//! never match a serial.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::SystemTime;

use crate::{PkiError, encoding};

/// Why a certificate was revoked (RFC 5280 CRLReason), with openssl's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// `unspecified` (0).
    Unspecified,
    /// `keyCompromise` (1).
    KeyCompromise,
    /// `CACompromise` (2).
    CaCompromise,
    /// `affiliationChanged` (3).
    AffiliationChanged,
    /// `superseded` (4).
    Superseded,
    /// `cessationOfOperation` (5).
    CessationOfOperation,
    /// `certificateHold` (6).
    CertificateHold,
    /// `removeFromCRL` (8).
    RemoveFromCrl,
    /// `privilegeWithdrawn` (9).
    PrivilegeWithdrawn,
    /// `AACompromise` (10).
    AaCompromise,
}

impl RevocationReason {
    const ALL: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// openssl's name (`openssl ca -crl_reason`, `index.txt`).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "CACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::RemoveFromCrl => "removeFromCRL",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "AACompromise",
        }
    }

    /// The CRLReason code.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The reason with CRLReason code `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.code() == code)
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    /// openssl's names, compared without regard to case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| PkiError::InvalidIndex {
                reason: format!(
                    "unknown revocation reason {name:?} (expected one of {})",
                    Self::ALL.map(RevocationReason::as_str).join(", ")
                ),
            })
    }
}

/// What the index says about one serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    /// Issued and not revoked (`V`, or `E` for expired, which OCSP still reports as good).
    Valid,
    /// Revoked at a time, for a reason (`unspecified` when the index names none).
    Revoked {
        /// When.
        at: SystemTime,
        /// Why.
        reason: RevocationReason,
    },
}

/// `index.txt`, parsed; unparsable lines are kept verbatim so that saving changes nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationIndex {
    lines: Vec<String>,
}

impl RevocationIndex {
    /// Parses the text of an index file.
    pub fn parse(text: &str) -> Self {
        RevocationIndex {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// Reads an index file.
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let bytes = encoding::read_file(path)?;
        Ok(Self::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Writes the index back, replacing the file atomically (a temporary file then a rename),
    /// so a responder reading it concurrently sees the old or the new index, never half.
    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        let temporary = path.with_extension("txt.new");
        encoding::write_public(&temporary, self.to_text().as_bytes())?;
        std::fs::rename(&temporary, path).map_err(|error| PkiError::io(path, error))
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        self.lines.iter().map(|line| format!("{line}\n")).collect()
    }

    /// The status of the certificate with serial `serial` (big-endian bytes, leading zeros
    /// ignored), or `None` when the index does not list it.
    pub fn status(&self, serial: &[u8]) -> Option<IndexStatus> {
        let serial = crate::asn1::unsigned(serial);
        self.lines
            .iter()
            .filter_map(|line| Line::parse(line))
            .find(|line| line.serial.as_deref() == Some(serial))
            .and_then(|line| line.status())
    }

    /// Marks the certificate with serial `serial_hex` revoked at `now` for `reason`, as
    /// `openssl ca -revoke -crl_reason` does. Revoking a revoked certificate is an error, as
    /// is a serial the index does not list.
    pub fn revoke(
        &mut self,
        serial_hex: &str,
        reason: RevocationReason,
        now: SystemTime,
    ) -> Result<(), PkiError> {
        let wanted =
            hex::decode(pad_even(serial_hex.trim().trim_start_matches("0x"))).map_err(|error| {
                PkiError::InvalidIndex {
                    reason: format!("serial {serial_hex:?} is not hex: {error}"),
                }
            })?;
        let wanted = crate::asn1::unsigned(&wanted).to_vec();
        let Some(line) = self.lines.iter_mut().find(|line| {
            Line::parse(line).is_some_and(|parsed| parsed.serial.as_deref() == Some(&wanted[..]))
        }) else {
            return Err(PkiError::InvalidIndex {
                reason: format!("no certificate with serial {serial_hex} in the index"),
            });
        };
        let mut fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
        if fields.first().map(String::as_str) == Some("R") {
            return Err(PkiError::InvalidIndex {
                reason: format!("certificate {serial_hex} is already revoked"),
            });
        }
        fields[0] = "R".to_owned();
        // openssl writes no reason for `unspecified`.
        fields[2] = match reason {
            RevocationReason::Unspecified => openssl_time(now),
            reason => format!("{},{}", openssl_time(now), reason.as_str()),
        };
        *line = fields.join("\t");
        Ok(())
    }
}

/// One well-formed line.
struct Line<'a> {
    status: &'a str,
    revocation: &'a str,
    serial: Option<Vec<u8>>,
}

impl<'a> Line<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [status, _expiry, revocation, serial, _file, _subject] = fields.as_slice() else {
            return None;
        };
        let serial = hex::decode(pad_even(serial))
            .ok()
            .map(|bytes| crate::asn1::unsigned(&bytes).to_vec());
        Some(Line {
            status,
            revocation,
            serial,
        })
    }

    fn status(&self) -> Option<IndexStatus> {
        match self.status {
            "V" | "E" => Some(IndexStatus::Valid),
            "R" => {
                let (time, reason) = match self.revocation.split_once(',') {
                    Some((time, reason)) => (time, reason.parse().ok()?),
                    None => (self.revocation, RevocationReason::Unspecified),
                };
                Some(IndexStatus::Revoked {
                    at: parse_openssl_time(time)?,
                    reason,
                })
            }
            _ => None,
        }
    }
}

fn pad_even(hex: &str) -> String {
    if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_owned()
    }
}

/// `YYMMDDHHMMSSZ` for years 1950–2049, `YYYYMMDDHHMMSSZ` otherwise, as openssl writes.
fn openssl_time(time: SystemTime) -> String {
    let datetime = time::OffsetDateTime::from(time);
    let year = datetime.year();
    let year = if (1950..2050).contains(&year) {
        format!("{:02}", year % 100)
    } else {
        format!("{year:04}")
    };
    format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(datetime.month()),
        datetime.day(),
        datetime.hour(),
        datetime.minute(),
        datetime.second()
    )
}

fn parse_openssl_time(text: &str) -> Option<SystemTime> {
    let digits = text.strip_suffix('Z')?;
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match digits.len() {
        12 => {
            let short: i32 = digits[..2].parse().ok()?;
            (
                if short < 50 {
                    2000 + short
                } else {
                    1900 + short
                },
                &digits[2..],
            )
        }
        14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let number = |range: std::ops::Range<usize>| rest.get(range)?.parse::<u8>().ok();
    let date = time::Date::from_calendar_date(
        year,
        time::Month::try_from(number(0..2)?).ok()?,
        number(2..4)?,
    )
    .ok()?;
    let time = time::Time::from_hms(number(4..6)?, number(6..8)?, number(8..10)?).ok()?;
    Some(date.with_time(time).assume_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "V\t361231000000Z\t\t0A1B\tunknown\t/CN=a\n\
                         R\t361231000000Z\t260101120000Z,keyCompromise\t0FFF\tunknown\t/CN=b\n\
                         not a line\n";

    #[test]
    fn statuses_come_from_the_index() {
        let index = RevocationIndex::parse(INDEX);
        assert_eq!(index.status(&[0x0a, 0x1b]), Some(IndexStatus::Valid));
        assert_eq!(index.status(&[0x00, 0x0a, 0x1b]), Some(IndexStatus::Valid));
        let Some(IndexStatus::Revoked { at, reason }) = index.status(&[0x0f, 0xff]) else {
            panic!("0FFF is revoked");
        };
        assert_eq!(reason, RevocationReason::KeyCompromise);
        assert_eq!(openssl_time(at), "260101120000Z");
        assert_eq!(index.status(&[0x01]), None);
    }

    #[test]
    fn revoking_rewrites_only_that_line() {
        let mut index = RevocationIndex::parse(INDEX);
        let now = parse_openssl_time("20260315080000Z").unwrap();
        index
            .revoke("a1b", RevocationReason::Superseded, now)
            .unwrap();
        let text = index.to_text();
        assert!(text.starts_with("R\t361231000000Z\t260315080000Z,superseded\t0A1B\t"));
        assert!(text.ends_with("not a line\n"));
        assert!(
            index
                .revoke("0A1B", RevocationReason::KeyCompromise, now)
                .is_err()
        );
        assert!(
            index
                .revoke("77", RevocationReason::KeyCompromise, now)
                .is_err()
        );
    }
}
