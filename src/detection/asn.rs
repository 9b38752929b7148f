//! Autonomous systems: a MaxMind-format ASN database (GeoLite2-ASN or
//! compatible, read with the `maxminddb` crate) names the network an
//! address belongs to. Every event gets `src_asn`/`src_as_org` and
//! `dest_asn`/`dest_as_org` for its endpoints outside `--home-net`, and
//! watch-list entries `asn:N` alert on any handshake from or to such a
//! network.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

use super::network::HomeNet;

pub struct AsnDb {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for AsnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsnDb({})", self.reader.metadata().database_type)
    }
}

impl AsnDb {
    /// Opens a database; one line saying what is wrong otherwise.
    pub fn open(path: &Path) -> Result<AsnDb, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|e| format!("{}: not a MaxMind database: {e}", path.display()))?;
        Ok(AsnDb { reader })
    }

    /// The autonomous system holding `ip`: number and organisation.
    pub fn lookup(&self, ip: IpAddr) -> Option<(u32, String)> {
        let found = self.reader.lookup(ip).ok()?;
        let asn: AsnRecord<'_> = found.decode().ok()??;
        let number = u32::try_from(asn.autonomous_system_number?.0).ok()?;
        let org = asn.autonomous_system_organization.unwrap_or_default();
        Some((number, org.to_string()))
    }
}

/// A GeoLite2-ASN record. The number is read whatever unsigned width the
/// writer chose (GeoLite2 uses uint32; other writers pick the smallest).
#[derive(Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<AnyUnsigned>,
    #[serde(borrow)]
    autonomous_system_organization: Option<&'a str>,
}

struct AnyUnsigned(u64);

impl<'de> Deserialize<'de> for AnyUnsigned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AnyUnsigned;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AnyUnsigned, E> {
                Ok(AnyUnsigned(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AnyUnsigned, E> {
                u64::try_from(v)
                    .map(AnyUnsigned)
                    .map_err(|_| E::custom("a negative AS number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The database and the home networks: what the output adds to events.
#[derive(Debug)]
pub struct Enrichment {
    pub db: std::sync::Arc<AsnDb>,
    pub home: HomeNet,
}

impl crate::events::AsnLookup for Enrichment {
    /// The autonomous system of `ip` when it is outside home-net.
    fn asn_of(&self, ip: IpAddr) -> Option<(u32, String)> {
        if self.home.contains(ip) {
            return None;
        }
        self.db.lookup(ip)
    }
}
