use std::fmt;
use std::str::FromStr;

use crate::part::{IdError, Part};

/// The kinds of identifier, with the names of their parts in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Member,
    Subsystem,
    Service,
    SecurityServer,
    GlobalGroup,
}

impl IdKind {
    pub fn name(self) -> &'static str {
        match self {
            IdKind::Member => "member",
            IdKind::Subsystem => "subsystem",
            IdKind::Service => "service",
            IdKind::SecurityServer => "security server",
            IdKind::GlobalGroup => "global group",
        }
    }

    pub fn part_names(self) -> &'static [&'static str] {
        match self {
            IdKind::Member => &["instance", "member class", "member code"],
            IdKind::Subsystem => &["instance", "member class", "member code", "subsystem code"],
            IdKind::Service => &[
                "instance",
                "member class",
                "member code",
                "subsystem code",
                "service code",
            ],
            IdKind::SecurityServer => &["instance", "member class", "member code", "server code"],
            IdKind::GlobalGroup => &["instance", "group code"],
        }
    }

    /// Splits `value` on '/' and validates each part against this kind's shape.
    fn parse_parts(self, value: &str) -> Result<Vec<Part>, IdError> {
        let raw: Vec<&str> = value.split('/').collect();
        self.parse_segments(&raw)
    }

    /// Validates already-split parts against this kind's shape.
    pub(crate) fn parse_segments<S: AsRef<str>>(self, raw: &[S]) -> Result<Vec<Part>, IdError> {
        let names = self.part_names();
        if raw.len() != names.len() {
            return Err(IdError::WrongPartCount {
                kind: self.name(),
                expected: names.len(),
                found: raw.len(),
            });
        }
        raw.iter()
            .zip(names)
            .map(|(value, name)| Part::parse(value.as_ref(), self.name(), name))
            .collect()
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A member of the federation: `INSTANCE/CLASS/CODE`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId {
    instance: Part,
    member_class: Part,
    member_code: Part,
}

/// A subsystem of a member: `INSTANCE/CLASS/CODE/SUBSYSTEM`. This is what acts as a client and
/// what provides services.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubsystemId {
    member: MemberId,
    subsystem_code: Part,
}

/// A service of a subsystem: `INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICECODE`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId {
    subsystem: SubsystemId,
    service_code: Part,
}

/// A security server, owned by a member: `INSTANCE/CLASS/CODE/SERVERCODE`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecurityServerId {
    owner: MemberId,
    server_code: Part,
}

/// A global group of the federation: `INSTANCE/GROUPCODE`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlobalGroupId {
    instance: Part,
    group_code: Part,
}

impl MemberId {
    pub fn new(instance: Part, member_class: Part, member_code: Part) -> Self {
        Self {
            instance,
            member_class,
            member_code,
        }
    }
    pub fn instance(&self) -> &Part {
        &self.instance
    }
    pub fn member_class(&self) -> &Part {
        &self.member_class
    }
    pub fn member_code(&self) -> &Part {
        &self.member_code
    }
    /// The subsystem `code` of this member.
    pub fn subsystem(&self, code: Part) -> SubsystemId {
        SubsystemId {
            member: self.clone(),
            subsystem_code: code,
        }
    }
    /// The security server `code` owned by this member.
    pub fn security_server(&self, code: Part) -> SecurityServerId {
        SecurityServerId {
            owner: self.clone(),
            server_code: code,
        }
    }
    fn from_parts(parts: Vec<Part>) -> Self {
        let mut parts = parts.into_iter();
        // The callers validated the part count against IdKind::Member.
        let (Some(instance), Some(member_class), Some(member_code)) =
            (parts.next(), parts.next(), parts.next())
        else {
            unreachable!("member identifiers have three parts")
        };
        Self {
            instance,
            member_class,
            member_code,
        }
    }
}

impl SubsystemId {
    pub fn new(member: MemberId, subsystem_code: Part) -> Self {
        Self {
            member,
            subsystem_code,
        }
    }
    pub fn member(&self) -> &MemberId {
        &self.member
    }
    pub fn instance(&self) -> &Part {
        &self.member.instance
    }
    pub fn subsystem_code(&self) -> &Part {
        &self.subsystem_code
    }
    /// The service `code` of this subsystem.
    pub fn service(&self, code: Part) -> ServiceId {
        ServiceId {
            subsystem: self.clone(),
            service_code: code,
        }
    }
    /// Parses a subsystem from four already-split (and already-decoded) parts.
    pub fn from_segments<S: AsRef<str>>(segments: &[S]) -> Result<Self, IdError> {
        let mut parts = IdKind::Subsystem.parse_segments(segments)?;
        let subsystem_code = parts.remove(3);
        Ok(Self {
            member: MemberId::from_parts(parts),
            subsystem_code,
        })
    }
}

impl ServiceId {
    pub fn new(subsystem: SubsystemId, service_code: Part) -> Self {
        Self {
            subsystem,
            service_code,
        }
    }
    pub fn subsystem(&self) -> &SubsystemId {
        &self.subsystem
    }
    pub fn member(&self) -> &MemberId {
        &self.subsystem.member
    }
    pub fn instance(&self) -> &Part {
        self.subsystem.instance()
    }
    pub fn service_code(&self) -> &Part {
        &self.service_code
    }
    /// Parses a service from five already-split (and already-decoded) parts.
    pub fn from_segments<S: AsRef<str>>(segments: &[S]) -> Result<Self, IdError> {
        let mut parts = IdKind::Service.parse_segments(segments)?;
        let service_code = parts.remove(4);
        let subsystem_code = parts.remove(3);
        Ok(Self {
            subsystem: MemberId::from_parts(parts).subsystem(subsystem_code),
            service_code,
        })
    }
}

impl SecurityServerId {
    pub fn new(owner: MemberId, server_code: Part) -> Self {
        Self { owner, server_code }
    }
    pub fn owner(&self) -> &MemberId {
        &self.owner
    }
    pub fn instance(&self) -> &Part {
        &self.owner.instance
    }
    pub fn server_code(&self) -> &Part {
        &self.server_code
    }
}

impl GlobalGroupId {
    pub fn new(instance: Part, group_code: Part) -> Self {
        Self {
            instance,
            group_code,
        }
    }
    pub fn instance(&self) -> &Part {
        &self.instance
    }
    pub fn group_code(&self) -> &Part {
        &self.group_code
    }
}

impl FromStr for MemberId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        IdKind::Member.parse_parts(value).map(Self::from_parts)
    }
}

impl FromStr for SubsystemId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        let raw: Vec<&str> = value.split('/').collect();
        Self::from_segments(&raw)
    }
}

impl FromStr for ServiceId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        let raw: Vec<&str> = value.split('/').collect();
        Self::from_segments(&raw)
    }
}

impl FromStr for SecurityServerId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        let mut parts = IdKind::SecurityServer.parse_parts(value)?;
        let server_code = parts.remove(3);
        Ok(Self {
            owner: MemberId::from_parts(parts),
            server_code,
        })
    }
}

impl FromStr for GlobalGroupId {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        let mut parts = IdKind::GlobalGroup.parse_parts(value)?.into_iter();
        match (parts.next(), parts.next()) {
            (Some(instance), Some(group_code)) => Ok(Self {
                instance,
                group_code,
            }),
            _ => unreachable!("global group identifiers have two parts"),
        }
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.instance, self.member_class, self.member_code
        )
    }
}

impl fmt::Display for SubsystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.member, self.subsystem_code)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.subsystem, self.service_code)
    }
}

impl fmt::Display for SecurityServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.server_code)
    }
}

impl fmt::Display for GlobalGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.group_code)
    }
}

/// Debug prints the canonical string, which is what an operator wants to read in a log.
macro_rules! debug_serde_as_string {
    ($($ty:ty),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.to_string())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                value.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

debug_serde_as_string!(
    MemberId,
    SubsystemId,
    ServiceId,
    SecurityServerId,
    GlobalGroupId
);
