//! Parsed input types: a value of these types has already passed validation ("parse, don't
//! validate"), so handlers and queries never see a raw, unchecked string.

mod device;
mod email;
mod location;
mod password;
mod text;

pub(crate) use device::device_name;
pub(crate) use email::Email;
pub(crate) use location::GeoIp;
pub(crate) use password::Password;
pub(crate) use text::{Country, Name};

/// Why an input was refused; becomes a 422 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub String);
