//! Session location from the client address: "City, Country" from a MaxMind City database when one
//! is configured, "Local Network" for private and loopback addresses, "Unknown" otherwise.
//!
//! A missing or unreadable database is not an error: location becomes "Unknown" and health reports
//! geoip "disabled" (the old service answered 500 on every request without the file).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

pub(super) const LOCAL_NETWORK: &str = "Local Network";
pub(super) const UNKNOWN: &str = "Unknown";

#[derive(Clone, Default)]
pub struct GeoIp {
    reader: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
}

#[derive(Deserialize)]
struct Names {
    names: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct CityRecord {
    city: Option<Names>,
    country: Option<Names>,
    registered_country: Option<Names>,
}

fn english(n: &Option<Names>) -> Option<String> {
    n.as_ref()?.names.as_ref()?.get("en").cloned()
}

impl GeoIp {
    /// Opens the database; on any failure logs why and runs without it.
    pub fn open(path: Option<&Path>) -> Self {
        let Some(path) = path else {
            return Self::default();
        };
        match maxminddb::Reader::open_readfile(path) {
            Ok(reader) => {
                tracing::info!(path = %path.display(), "GeoIP database loaded");
                Self {
                    reader: Some(Arc::new(reader)),
                }
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "GeoIP database unavailable; locations will be \"Unknown\"");
                Self::default()
            }
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.reader.is_some()
    }

    pub fn locate(&self, ip: Option<IpAddr>) -> String {
        let Some(ip) = ip else {
            return UNKNOWN.to_string();
        };
        if is_local(ip) {
            return LOCAL_NETWORK.to_string();
        }
        let Some(reader) = &self.reader else {
            return UNKNOWN.to_string();
        };
        let record: Option<CityRecord> = reader
            .lookup(ip)
            .ok()
            .and_then(|r| r.decode().ok())
            .flatten();
        let Some(record) = record else {
            return UNKNOWN.to_string();
        };
        let country = english(&record.country).or_else(|| english(&record.registered_country));
        match (english(&record.city), country) {
            (Some(city), Some(country)) => format!("{city}, {country}"),
            (None, Some(country)) => country,
            (Some(city), None) => city,
            (None, None) => UNKNOWN.to_string(),
        }
    }
}

/// Private, loopback, link-local and unique-local addresses never resolve to a place.
pub(super) fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_unknown() {
        let geo = GeoIp::open(None);
        assert!(!geo.is_enabled());
        for ip in [
            "192.168.1.5",
            "10.0.0.1",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.0.1",
            "100.64.0.1",
        ] {
            assert_eq!(geo.locate(Some(ip.parse().unwrap())), LOCAL_NETWORK, "{ip}");
        }
        assert_eq!(geo.locate(Some("81.2.69.142".parse().unwrap())), UNKNOWN);
        assert_eq!(geo.locate(None), UNKNOWN);
    }

    #[test]
    fn broken_database_is_disabled_not_an_error() {
        let dir = std::env::temp_dir().join(format!("geo-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let geo = GeoIp::open(Some(&path));
        assert!(!geo.is_enabled());
        assert_eq!(geo.locate(Some("81.2.69.142".parse().unwrap())), UNKNOWN);
        let missing = GeoIp::open(Some(&dir.join("missing.mmdb")));
        assert!(!missing.is_enabled());
    }
}
