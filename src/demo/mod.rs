//! `passerelle demo`: a whole federation on loopback, and the manifest scripts rely on.

pub(crate) mod manifest;
