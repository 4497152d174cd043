use percent_encoding::percent_decode_str;

use crate::id::ServiceId;
use crate::part::IdError;

/// What is wrong with an X-Road REST request path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with /r1/, the X-Road REST protocol version 1")]
    UnknownProtocolVersion,
    #[error(
        "the path must name a service as /r1/INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE, it has {found} of those 5 segments"
    )]
    MissingSegments { found: usize },
    #[error("path segment {position} is not valid percent-encoded UTF-8")]
    InvalidEncoding { position: usize },
    #[error("invalid service identifier in the path: {0}")]
    InvalidIdentifier(#[from] IdError),
}

/// A client-side request path `/r1/INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/rest]`, split into the
/// service identifier (each segment percent-decoded, then validated) and the remainder that goes
/// to the provider's service, kept exactly as received (still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePath {
    pub service: ServiceId,
    /// Empty, or starting with '/'. Never decoded here: canonicalisation for access checks is the
    /// provider's job, on the exact bytes the client sent.
    pub rest: String,
}

impl ServicePath {
    /// Parses the path part of a request URI (no query).
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let after = path
            .strip_prefix("/r1/")
            .ok_or(PathError::UnknownProtocolVersion)?;
        let mut pieces = after.splitn(6, '/');
        let mut segments = Vec::with_capacity(5);
        for position in 1..=5 {
            let raw = pieces.next().ok_or(PathError::MissingSegments {
                found: position - 1,
            })?;
            let decoded = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| PathError::InvalidEncoding { position })?;
            segments.push(decoded.into_owned());
        }
        let service = ServiceId::from_segments(&segments)?;
        let rest = pieces
            .next()
            .map(|rest| format!("/{rest}"))
            .unwrap_or_default();
        Ok(Self { service, rest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_service_and_rest() {
        let cases = [
            (
                "/r1/BJ/GOV/MINSANTE/patients/vaccinations",
                "BJ/GOV/MINSANTE/patients/vaccinations",
                "",
            ),
            (
                "/r1/BJ/GOV/MINSANTE/patients/vaccinations/",
                "BJ/GOV/MINSANTE/patients/vaccinations",
                "/",
            ),
            (
                "/r1/BJ/GOV/MINSANTE/patients/vaccinations/v1/children/42",
                "BJ/GOV/MINSANTE/patients/vaccinations",
                "/v1/children/42",
            ),
            (
                "/r1/BJ/GOV/MIN%53ANTE/patients/listMethods",
                "BJ/GOV/MINSANTE/patients/listMethods",
                "",
            ),
            ("/r1/BJ/GOV/M/p/s/a%2Fb/../c", "BJ/GOV/M/p/s", "/a%2Fb/../c"),
        ];
        for (path, service, rest) in cases {
            let parsed = ServicePath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(parsed.service.to_string(), service, "{path}");
            assert_eq!(parsed.rest, rest, "{path}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(
            ServicePath::parse("/r2/BJ/GOV/M/p/s"),
            Err(PathError::UnknownProtocolVersion)
        );
        assert_eq!(
            ServicePath::parse("/r1/BJ/GOV/M/p"),
            Err(PathError::MissingSegments { found: 4 })
        );
        assert_eq!(
            ServicePath::parse("/r1/BJ/GOV/M%FF/p/s"),
            Err(PathError::InvalidEncoding { position: 3 })
        );
        // An encoded slash inside an identifier segment decodes to a forbidden character.
        assert!(matches!(
            ServicePath::parse("/r1/BJ/GOV/M%2Fx/p/s"),
            Err(PathError::InvalidIdentifier(IdError::ForbiddenCharacter {
                character: '/',
                ..
            }))
        ));
        assert!(matches!(
            ServicePath::parse("/r1/BJ//M/p/s"),
            Err(PathError::InvalidIdentifier(IdError::EmptyPart {
                part: "member class",
                ..
            }))
        ));
    }
}
