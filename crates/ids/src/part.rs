use std::fmt;

/// The longest a single identifier part may be, in characters.
pub const MAX_PART_LENGTH: usize = 255;

/// What is wrong with an identifier string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} identifier must have {expected} parts separated by '/', found {found}")]
    WrongPartCount {
        kind: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{kind} identifier has an empty {part}")]
    EmptyPart {
        kind: &'static str,
        part: &'static str,
    },
    #[error(
        "{kind} identifier's {part} is {length} characters long, the limit is {MAX_PART_LENGTH}"
    )]
    PartTooLong {
        kind: &'static str,
        part: &'static str,
        length: usize,
    },
    #[error(
        "{kind} identifier's {part} has the forbidden character {character:?} at position {position}"
    )]
    ForbiddenCharacter {
        kind: &'static str,
        part: &'static str,
        character: char,
        position: usize,
    },
}

/// One validated part of an identifier: 1..=255 characters from
/// `A–Z a–z 0–9 ' ( ) + , - . = ?` and `_`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Part(String);

impl Part {
    /// Validates one part; `kind` and `part` name it in the error.
    pub fn parse(value: &str, kind: &'static str, part: &'static str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Err(IdError::EmptyPart { kind, part });
        }
        let length = value.chars().count();
        if length > MAX_PART_LENGTH {
            return Err(IdError::PartTooLong { kind, part, length });
        }
        if let Some((index, character)) = value.chars().enumerate().find(|(_, c)| !is_allowed(*c)) {
            return Err(IdError::ForbiddenCharacter {
                kind,
                part,
                character,
                position: index + 1,
            });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '\'' | '(' | ')' | '+' | ',' | '-' | '.' | '=' | '?' | '_'
        )
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Part {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
