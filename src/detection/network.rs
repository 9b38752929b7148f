//! Networks: a CIDR block, and the home networks alerts are weighed
//! against (Suricata's HOME_NET). Used by watch lists (`net:` entries),
//! the ASN enrichment and the confidence of alerts.

use std::net::IpAddr;

/// A network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// `ip` with the host bits of a `/prefix` cleared, as a number (IPv4
    /// and IPv6 kept apart by `is_v6`): the key of the network holding it.
    pub fn key(ip: IpAddr, prefix: u8) -> (bool, u128) {
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(prefix.min(32)))
                    .unwrap_or(0);
                (false, u128::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(prefix.min(128)))
                    .unwrap_or(0);
                (true, u128::from(a) & mask)
            }
        }
    }

    /// This network's key (see [`Cidr::key`]).
    pub fn own_key(&self) -> (bool, u128) {
        Cidr::key(self.addr, self.prefix)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// The networks that are home (Suricata's HOME_NET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeNet(Vec<Cidr>);

impl Default for HomeNet {
    /// The private, shared, link-local and loopback ranges.
    fn default() -> Self {
        let nets = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "fc00::/7",
            "fe80::/10",
            "::1/128",
        ];
        HomeNet(nets.iter().filter_map(|n| n.parse().ok()).collect())
    }
}

impl std::str::FromStr for HomeNet {
    type Err = String;

    /// Networks separated by commas.
    fn from_str(s: &str) -> Result<HomeNet, String> {
        s.split(',')
            .filter(|n| !n.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, String>>()
            .map(HomeNet)
    }
}

impl HomeNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}
