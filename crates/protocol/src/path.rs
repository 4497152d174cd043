use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::ProtocolError;

/// Characters escaped when a canonical segment is written back into a request path: everything
/// outside RFC 3986 `pchar` plus `%`, so that the backend decodes exactly the checked segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A service path after canonicalisation: the form access rights are checked against and the
/// form the provider forwards to its backend, so the two can never disagree.
///
/// Canonicalisation percent-decodes once, treats encoded slashes as separators, drops empty and
/// `.` segments, resolves `..` and refuses anything a backend might read differently: `..`
/// above the root, NUL and control characters, invalid UTF-8, backslashes (raw or encoded),
/// `.`/`..` followed by `;` parameters, and a `%` left after decoding (double encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl CanonicalPath {
    /// Canonicalises the raw (still percent-encoded) path that follows the service id; empty
    /// means the service root.
    pub fn parse(raw: &str) -> Result<Self, ProtocolError> {
        let invalid = |reason| ProtocolError::InvalidPath {
            path: raw.chars().take(300).collect(),
            reason,
        };
        if raw.contains('\\') {
            return Err(invalid("backslashes are not allowed"));
        }
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| invalid("not percent-encoded UTF-8"))?;
        if decoded.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        if decoded.contains('\\') {
            return Err(invalid("backslashes are not allowed"));
        }
        if decoded.contains('%') {
            return Err(invalid(
                "percent signs are not allowed after decoding (double encoding)",
            ));
        }
        let mut segments: Vec<String> = Vec::new();
        for segment in decoded.split('/') {
            let before_parameters = segment.split(';').next().unwrap_or_default();
            if segment.contains(';') && matches!(before_parameters, "." | "..") {
                return Err(invalid("dot segments with parameters are not allowed"));
            }
            match segment {
                "" | "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(invalid("'..' escapes the service root"));
                    }
                }
                other => segments.push(other.to_owned()),
            }
        }
        let trailing_slash = !segments.is_empty() && decoded.ends_with('/');
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// The decoded segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path re-encoded for the backend: `/` for the root, otherwise `/seg/seg[/]`.
    pub fn to_encoded(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            out.extend(utf8_percent_encode(segment, SEGMENT));
        }
        if self.segments.is_empty() || self.trailing_slash {
            out.push('/');
        }
        out
    }
}

impl fmt::Display for CanonicalPath {
    /// The decoded form, `/a/b`, as shown in logs and compared with patterns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    /// `*`: exactly one segment.
    AnySegment,
    /// `**`: any suffix, including none.
    AnySuffix,
}

/// An endpoint of a service: a method (or `*` for any) and a path pattern where `*` stands for one
/// segment and a final `**` for any suffix. Patterns match [`CanonicalPath`]s only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPattern {
    method: Option<http::Method>,
    segments: Vec<PatternSegment>,
    source: String,
}

impl EndpointPattern {
    /// Parses `method` (`GET`, `POST`, … or `*`) and `pattern` (`/`, `/public/**`, `/v1/children/*`).
    pub fn parse(method: &str, pattern: &str) -> Result<Self, ProtocolError> {
        let invalid = |reason| ProtocolError::InvalidPattern {
            pattern: format!("{method} {pattern}"),
            reason,
        };
        let method = match method {
            "*" => None,
            name if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase()) => Some(
                http::Method::from_bytes(name.as_bytes()).map_err(|_| invalid("invalid method"))?,
            ),
            _ => return Err(invalid("the method must be upper case, or '*'")),
        };
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(invalid("the path must start with '/'"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for (index, part) in parts.iter().enumerate() {
            let segment = match *part {
                "" => return Err(invalid("empty segments are not allowed")),
                "." | ".." => return Err(invalid("dot segments are not allowed")),
                "**" if index + 1 == parts.len() => PatternSegment::AnySuffix,
                "**" => return Err(invalid("'**' may only end a pattern")),
                "*" => PatternSegment::AnySegment,
                literal
                    if literal.contains('*') || literal.contains('%') || literal.contains('\\') =>
                {
                    return Err(invalid(
                        "'*' must be a whole segment; write literals unencoded",
                    ));
                }
                literal => PatternSegment::Literal(literal.to_owned()),
            };
            segments.push(segment);
        }
        let source = format!("{} {pattern}", method_label(method.as_ref()));
        Ok(Self {
            method,
            segments,
            source,
        })
    }

    /// Whether a request with this method and canonical path is inside the endpoint.
    pub fn matches(&self, method: &http::Method, path: &CanonicalPath) -> bool {
        if self
            .method
            .as_ref()
            .is_some_and(|expected| expected != method)
        {
            return false;
        }
        let mut actual = path.segments().iter();
        for pattern in &self.segments {
            match pattern {
                PatternSegment::AnySuffix => return true,
                PatternSegment::AnySegment => {
                    if actual.next().is_none() {
                        return false;
                    }
                }
                PatternSegment::Literal(literal) => {
                    if actual.next() != Some(literal) {
                        return false;
                    }
                }
            }
        }
        actual.next().is_none()
    }

    /// The method, `None` for any.
    pub fn method(&self) -> Option<&http::Method> {
        self.method.as_ref()
    }

    /// The path pattern as written.
    pub fn path_pattern(&self) -> &str {
        self.source
            .split_once(' ')
            .map(|(_, path)| path)
            .unwrap_or_default()
    }
}

fn method_label(method: Option<&http::Method>) -> &str {
    method.map_or("*", http::Method::as_str)
}

impl fmt::Display for EndpointPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_paths() {
        let cases = [
            ("", "/", "/"),
            ("/", "/", "/"),
            ("/public/a", "/public/a", "/public/a"),
            ("/public//a///b/", "/public/a/b", "/public/a/b/"),
            ("/public/./a", "/public/a", "/public/a"),
            ("/public/x/../a", "/public/a", "/public/a"),
            ("/public%2Fa", "/public/a", "/public/a"),
            ("/public%2fa%2F%2E%2e%2Fb", "/public/b", "/public/b"),
            ("/a%20b/%C3%A9", "/a b/é", "/a%20b/%C3%A9"),
            ("/a;v=1", "/a;v=1", "/a;v=1"),
        ];
        for (raw, display, encoded) in cases {
            let path = CanonicalPath::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(path.to_string(), display, "{raw}");
            assert_eq!(path.to_encoded(), encoded, "{raw}");
        }
    }

    #[test]
    fn refuses_ambiguous_paths() {
        let cases = [
            "/..",
            "/public/../..",
            "/%2e%2e",
            "/a%00b",
            "/a%0d%0a",
            "/a\\b",
            "/a%5cb",
            "/a%5Cb",
            "/public/..;/private",
            "/public/.;x/private",
            "/public/%252e%252e/private",
            "/%ff",
            "/%C3",
        ];
        for raw in cases {
            assert!(
                CanonicalPath::parse(raw).is_err(),
                "{raw} should be refused"
            );
        }
    }

    #[test]
    fn matches_patterns() {
        let get = http::Method::GET;
        let post = http::Method::POST;
        let cases = [
            ("GET", "/public/**", &get, "/public", true),
            ("GET", "/public/**", &get, "/public/a/b", true),
            ("GET", "/public/**", &post, "/public/a", false),
            ("GET", "/public/**", &get, "/publicity", false),
            ("GET", "/public/**", &get, "/public/../private", false),
            ("*", "/v1/children/*", &post, "/v1/children/42", true),
            ("*", "/v1/children/*", &get, "/v1/children", false),
            ("*", "/v1/children/*", &get, "/v1/children/42/x", false),
            ("GET", "/", &get, "", true),
            ("GET", "/", &get, "/a", false),
            ("GET", "/**", &get, "/anything/at/all", true),
            ("GET", "/Public", &get, "/public", false),
        ];
        for (method, pattern, request_method, raw, expected) in cases {
            let endpoint = EndpointPattern::parse(method, pattern).unwrap();
            let matched =
                CanonicalPath::parse(raw).is_ok_and(|path| endpoint.matches(request_method, &path));
            assert_eq!(
                matched, expected,
                "{method} {pattern} vs {request_method} {raw}"
            );
        }
    }

    #[test]
    fn refuses_malformed_patterns() {
        for (method, pattern) in [
            ("get", "/a"),
            ("GET", "a"),
            ("GET", "/a/**/b"),
            ("GET", "/a*"),
            ("GET", "//a"),
            ("GET", "/../a"),
            ("GET", "/a%2Fb"),
        ] {
            assert!(
                EndpointPattern::parse(method, pattern).is_err(),
                "{method} {pattern}"
            );
        }
        assert_eq!(
            EndpointPattern::parse("*", "/a/**").unwrap().to_string(),
            "* /a/**"
        );
    }
}
