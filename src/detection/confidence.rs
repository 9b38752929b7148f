//! How much else agrees with an alert. A template's default name is strong
//! evidence, not proof: legitimate customers rent the same templates. Each
//! alert weighs what the record that carried the name says of the machine
//! (its Windows build against the ones the list entry expects, whether its
//! logon worked, a self-signed certificate in its name) and where it came
//! from (outside `--home-net` into it), and writes the result as
//! `alert.confidence` with `alert.corroboration`, one readable line per
//! signal.
//!
//! Weights (the README lists them): the entry's build seen +2, another
//! build seen -2; a successful logon, ticket or tree connect +1, a failed
//! one -1; a self-signed certificate whose subject is the name +1; the
//! machine outside home-net talking to a host inside +1; its address in a
//! listed network or autonomous system +1; an unconfirmed (candidate)
//! entry -1. A Windows version announced without a build (a browser
//! announcement) that the entry's builds cannot have -2; the right one is
//! shown, unweighted (every Windows since 10 says 10.0). Other carriers
//! that named the same machine at the same address earlier, in exchanges
//! the other side answered (added by the output stage, [`corroborate`]),
//! +1 for one, +2 for two or more.
//! A sum of 2 or more is `high`, 0 or 1 `medium`, below 0 `low`: the
//! name alone is `medium`.

use std::net::IpAddr;

use super::network::HomeNet;
use super::watchlist::Entry;
use crate::analyzers::protocol::Facts;
use crate::events::{Alert, FlowInfo, Role};

/// What a Windows build number is, for the readable line.
pub fn windows_release(build: u32) -> Option<&'static str> {
    Some(match build {
        7601 => "Windows 7 / Server 2008 R2",
        9200 => "Windows 8 / Server 2012",
        9600 => "Windows 8.1 / Server 2012 R2",
        14393 => "Windows Server 2016 / Windows 10 1607",
        17763 => "Windows Server 2019 / Windows 10 1809",
        19041..=19045 => "Windows 10 (2004 to 22H2)",
        20348 => "Windows Server 2022",
        22000 => "Windows 11 21H2",
        22621 => "Windows 11 22H2",
        22631 => "Windows 11 23H2",
        26100 => "Windows 11 24H2 / Server 2025",
        _ => return None,
    })
}

/// The NT version (major, minor) of a Windows build.
pub fn nt_version(build: u32) -> Option<(u8, u8)> {
    Some(match build {
        2600 => (5, 1),
        3790 => (5, 2),
        6000..=6003 => (6, 0),
        7600 | 7601 => (6, 1),
        9200 => (6, 2),
        9600 => (6, 3),
        10240.. => (10, 0),
        _ => return None,
    })
}

fn nt_text((major, minor): (u8, u8)) -> String {
    let what = match (major, minor) {
        (5, 1) => " (Windows XP)",
        (5, 2) => " (Windows Server 2003)",
        (6, 0) => " (Windows Vista / Server 2008)",
        (6, 1) => " (Windows 7 / Server 2008 R2, or Samba)",
        (6, 2) => " (Windows 8 / Server 2012)",
        (6, 3) => " (Windows 8.1 / Server 2012 R2)",
        (10, 0) => " (Windows 10, 11, Server 2016 and later)",
        _ => "",
    };
    format!("{major}.{minor}{what}")
}

fn build_text(build: u32) -> String {
    match windows_release(build) {
        Some(r) => format!("{build} ({r})"),
        None => build.to_string(),
    }
}

/// Weighs (sum and readable lines) an alert on `entry` for a name of `role` whose record says
/// `facts`, seen on `flow`; `listed` names the list holding the machine's
/// address, if one does. What packets nobody answered say of a machine
/// (the build a lone NEGOTIATE declares, an address anyone can forge) is
/// shown, not weighed.
pub fn weigh(
    entry: &Entry,
    role: Role,
    facts: Facts,
    flow: &FlowInfo,
    home: &HomeNet,
    listed: Option<&str>,
) -> (i32, Vec<String>) {
    let mut w = Weights {
        score: 0,
        lines: Vec::new(),
        answered: flow.two_way,
    };
    if let Some(b) = facts.build {
        if entry.builds.contains(&b) {
            w.add(
                2,
                format!("reports Windows build {}, the template's", build_text(b)),
            );
        } else if !entry.builds.is_empty() {
            let want: Vec<String> = entry.builds.iter().map(|b| build_text(*b)).collect();
            w.add(
                -2,
                format!(
                    "reports Windows build {}, not the template's {}",
                    build_text(b),
                    want.join(" or ")
                ),
            );
        }
    }
    if let (None, Some(os)) = (facts.build, facts.os_version) {
        let families: Vec<(u8, u8)> = entry.builds.iter().filter_map(|b| nt_version(*b)).collect();
        if families.contains(&os) {
            w.lines.push(format!(
                "announces Windows {}, the template's family (no build given)",
                nt_text(os)
            ));
        } else if let Some(want) = families.first() {
            w.add(
                -2,
                format!(
                    "announces Windows {}, not the template's {}",
                    nt_text(os),
                    nt_text(*want)
                ),
            );
        }
    }
    match facts.outcome {
        Some(true) => w.add(1, "its logon succeeded".to_string()),
        Some(false) => w.add(-1, "its logon failed".to_string()),
        None => {}
    }
    if facts.self_signed {
        w.add(1, "a self-signed certificate in its name".to_string());
    }
    // The machine named, outside home-net, and its peer inside.
    match role {
        Role::Client
            if !home.contains(flow.src_ip)
                && home.contains(flow.dest_ip)
                && !flow.src_ip.is_unspecified() =>
        {
            w.add(
                1,
                format!(
                    "from {}, outside home-net, to {}",
                    flow.src_ip, flow.dest_ip
                ),
            )
        }
        Role::Server
            if !home.contains(flow.dest_ip)
                && home.contains(flow.src_ip)
                && !flow.dest_ip.is_unspecified() =>
        {
            w.add(
                1,
                format!(
                    "at {}, outside home-net, reached from {}",
                    flow.dest_ip, flow.src_ip
                ),
            )
        }
        _ => {}
    }
    if let Some(list) = listed {
        w.add(1, format!("its address is on list {list}"));
    }
    if entry.candidate {
        // The list's own doubt, whatever the packets.
        w.score -= 1;
        w.lines.push("the list entry is unconfirmed".to_string());
    }
    (w.score, w.lines)
}

/// The sum and lines of an alert's signals.
struct Weights {
    score: i32,
    lines: Vec<String>,
    /// The other side answered: what the packets say weighs.
    answered: bool,
}

impl Weights {
    fn add(&mut self, weight: i32, line: String) {
        if self.answered {
            self.score += weight;
            self.lines.push(line);
        } else {
            self.lines
                .push(format!("{line} (not weighed: nobody answered)"));
        }
    }
}

/// Adds to `alert` the other carriers (protocols) that named its machine
/// at `ip` before it, on other connections: in exchanges the other side
/// answered (weighed), and only in packets nobody answered (named, not
/// weighed: their source address may be forged).
pub fn corroborate(alert: &mut Alert, ip: IpAddr, answered: &[&str], unanswered: &[&str]) {
    if !answered.is_empty() {
        alert.score += i32::try_from(answered.len()).unwrap_or(2).min(2);
        alert
            .corroboration
            .push(format!("also named at {ip} by {}", answered.join(", ")));
    }
    if !unanswered.is_empty() {
        alert.corroboration.push(format!(
            "also named at {ip} by {} in packets nobody answered (not weighed)",
            unanswered.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Transport;
    use crate::detection::Matcher;
    use crate::events::Confidence;

    #[test]
    fn an_announced_version_is_shown_and_weighs_only_when_wrong() -> Result<(), String> {
        let m = Matcher::with_builtins(true, Vec::new()).map_err(|e| e.to_string())?;
        let entry = m.lookup("WIN-LIVFRVQFMKO").ok_or("built-in entry")?;
        let flow = FlowInfo {
            flow_id: 1,
            transport: Transport::Udp,
            src_ip: [10, 20, 0, 77].into(),
            src_port: 138,
            dest_ip: [10, 20, 0, 255].into(),
            dest_port: 138,
            vlans: Default::default(),
            iface: None,
            two_way: true,
            handshake: true,
            overlap: None,
        };
        let home = HomeNet::default();
        let announced = |os| Facts {
            os_version: Some(os),
            ..Facts::default()
        };
        assert_eq!(
            weigh(entry, Role::Client, announced((10, 0)), &flow, &home, None),
            (
                0,
                vec![
                    "announces Windows 10.0 (Windows 10, 11, Server 2016 and later), the template's family (no build given)"
                        .to_string()
                ]
            )
        );
        assert_eq!(
            weigh(entry, Role::Client, announced((5, 1)), &flow, &home, None),
            (
                -2,
                vec!["announces Windows 5.1 (Windows XP), not the template's 10.0 (Windows 10, 11, Server 2016 and later)".to_string()]
            )
        );
        // In a packet nobody answered (a broadcast announcement, or a
        // forged one) it is shown, not weighed.
        let lone = FlowInfo {
            two_way: false,
            ..flow.clone()
        };
        assert_eq!(
            weigh(entry, Role::Client, announced((5, 1)), &lone, &home, None),
            (
                0,
                vec!["announces Windows 5.1 (Windows XP), not the template's 10.0 (Windows 10, 11, Server 2016 and later) (not weighed: nobody answered)".to_string()]
            )
        );
        // A build says more than an announced version: the version is not
        // weighed beside it.
        let both = Facts {
            build: Some(17763),
            os_version: Some((6, 1)),
            ..Facts::default()
        };
        let (score, lines) = weigh(entry, Role::Client, both, &flow, &home, None);
        assert_eq!((score, lines.len()), (2, 1));
        assert_eq!(Confidence::of(score), Confidence::High);
        assert_eq!(Confidence::of(-1), Confidence::Low);
        assert_eq!(nt_version(26100), Some((10, 0)));
        assert_eq!(nt_version(7601), Some((6, 1)));
        assert_eq!(nt_version(1), None);
        Ok(())
    }

    #[test]
    fn networks_parse_and_contain() -> Result<(), String> {
        let home: HomeNet = "10.0.0.0/8, 2001:db8::/32,192.0.2.7".parse()?;
        assert!(home.contains("10.200.1.1".parse().map_err(|_| "ip")?));
        assert!(home.contains("2001:db8::1".parse().map_err(|_| "ip")?));
        assert!(home.contains("192.0.2.7".parse().map_err(|_| "ip")?));
        assert!(!home.contains("192.0.2.8".parse().map_err(|_| "ip")?));
        assert!(!home.contains("11.0.0.1".parse().map_err(|_| "ip")?));
        assert!("10.0.0.0/33".parse::<HomeNet>().is_err());
        assert!("ten".parse::<HomeNet>().is_err());
        let all: HomeNet = "0.0.0.0/0".parse()?;
        assert!(all.contains("203.0.113.1".parse().map_err(|_| "ip")?));
        assert!(HomeNet::default().contains("172.31.255.1".parse().map_err(|_| "ip")?));
        assert!(!HomeNet::default().contains("172.32.0.1".parse().map_err(|_| "ip")?));
        Ok(())
    }
}
