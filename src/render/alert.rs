//! The readable view of an alert (`--format pretty`, `hostwatch demo`):
//! a few lines an analyst reads on a terminal, from the alert's JSON event
//! as every other output gets it. Every value from the wire or a list is
//! escaped: names are attacker-controlled.

use serde_json::Value;

use super::escape_control;

/// Terminal colours, or none.
struct Paint {
    red: &'static str,
    yellow: &'static str,
    bold: &'static str,
    dim: &'static str,
    off: &'static str,
}

impl Paint {
    fn new(color: bool) -> Paint {
        if color {
            Paint {
                red: "\x1b[31;1m",
                yellow: "\x1b[33m",
                bold: "\x1b[1m",
                dim: "\x1b[2m",
                off: "\x1b[0m",
            }
        } else {
            Paint {
                red: "",
                yellow: "",
                bold: "",
                dim: "",
                off: "",
            }
        }
    }
}

/// A string value, escaped; empty when absent.
fn s(v: &Value) -> String {
    v.as_str().map(escape_control).unwrap_or_default()
}

/// The strings of an array value, escaped.
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default()
}

/// What the record says besides the name: the logon, the cookie, the lease.
fn record_detail(e: &Value) -> String {
    if let Some(n) = e.get("ntlm") {
        let user = match (n["client"]["user"].as_str(), n["client"]["domain"].as_str()) {
            (Some(u), Some(d)) => {
                format!(" user {} (domain {})", escape_control(u), escape_control(d))
            }
            (Some(u), None) => format!(" user {}", escape_control(u)),
            _ => String::new(),
        };
        return format!("{} {}{user}", s(&n["carrier"]), s(&n["result"]));
    }
    if let Some(r) = e.get("rdp") {
        return format!("rdp cookie {}", s(&r["cookie"]));
    }
    if let Some(d) = e.get("dhcp") {
        return format!("dhcp lease {}", s(&d["assigned_ip"]));
    }
    if let Some(k) = e.get("krb5") {
        return format!("{} {}", s(&k["msg_type"]), s(&k["cname"]));
    }
    if let Some(m) = e.get("smb") {
        return format!("smb {} {}", s(&m["command"]), s(&m["status"]));
    }
    s(&e["app_proto"])
}

/// Which list entry matched, and where it came from.
fn origin(a: &Value) -> String {
    let i = &a["indicator"];
    let matched = match i["address"].as_str() {
        Some(addr) => format!(
            "{} {} in {}",
            s(&i["end"]),
            escape_control(addr),
            s(&i["value"])
        ),
        None => s(&i["value"]),
    };
    let p = &a["provenance"];
    let mut line = format!(
        "list {}: {matched} ({} line {})",
        s(&a["list"]),
        s(&p["file"]),
        p["line"]
    );
    if let Some(n) = p["note"].as_str() {
        line.push_str(": ");
        line.push_str(&escape_control(n));
    }
    line
}

/// The alert `e` (an `alert` event) as lines for a terminal, without a
/// trailing newline; `None` for any other event.
pub fn alert(e: &Value, color: bool) -> Option<String> {
    if e["event_type"] != "alert" {
        return None;
    }
    let p = Paint::new(color);
    let a = &e["alert"];
    let sev = a["severity"].as_u64().unwrap_or(3);
    let c = if sev == 1 { p.red } else { p.yellow };
    // `2026-02-10T09:03:12.023400+0000` read as `2026-02-10 09:03:12`.
    let ts = s(&e["timestamp"]);
    let when = match (ts.get(..10), ts.get(11..19)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => ts.clone(),
    };
    let why = strings(&a["corroboration"]);
    let confidence = match why.is_empty() {
        true => format!("confidence {}", s(&a["confidence"])),
        false => format!("confidence {}: {}", s(&a["confidence"]), why.join("; ")),
    };
    let mut fields = strings(&a["fields"]);
    if fields.is_empty() {
        fields.push(s(&a["evidence"]));
    }
    let mut text = format!(
        "{when}  {c}ALERT sev {sev}{off}  {bold}{}{off} ({}) in {}\n    {}\n    {confidence}\n    {dim}{}:{} -> {}:{}  {}{off}\n    {dim}{}{off}",
        s(&a["hostname"]),
        s(&a["role"]),
        fields.join(", "),
        s(&a["signature"]),
        s(&e["src_ip"]),
        e["src_port"],
        s(&e["dest_ip"]),
        e["dest_port"],
        record_detail(e),
        origin(a),
        off = p.off,
        bold = p.bold,
        dim = p.dim,
    );
    if let Some(n) = a["suppressed"].as_u64() {
        text.push_str(&format!("\n    {n} more held back by --suppress"));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_reads_in_five_lines_with_names_escaped() {
        let e: Value = serde_json::json!({
            "timestamp": "2026-02-10T09:03:14.035350+0000",
            "event_type": "alert",
            "src_ip": "203.0.113.7", "src_port": 49812,
            "dest_ip": "10.20.0.5", "dest_port": 445,
            "alert": {
                "severity": 1, "signature": "Hoster (WIN-\u{1b}[2J)",
                "list": "bad-nets", "hostname": "WIN-\u{1b}[2J", "role": "client",
                "evidence": "src_ip", "fields": ["src_ip", "ntlm.client.workstation"],
                "confidence": "high", "corroboration": ["its logon succeeded"],
                "indicator": {"value": "203.0.113.0/24", "kind": "network", "address": "203.0.113.7", "end": "src"},
                "provenance": {"file": "nets.list", "line": 3, "note": "rented"},
                "suppressed": 2
            },
            "ntlm": {"carrier": "smb2", "result": "success", "client": {"user": "svc"}}
        });
        assert_eq!(
            alert(&e, false).as_deref(),
            Some(
                "2026-02-10 09:03:14  ALERT sev 1  WIN-\\e[2J (client) in src_ip, ntlm.client.workstation\n    \
                 Hoster (WIN-\\e[2J)\n    \
                 confidence high: its logon succeeded\n    \
                 203.0.113.7:49812 -> 10.20.0.5:445  smb2 success user svc\n    \
                 list bad-nets: src 203.0.113.7 in 203.0.113.0/24 (nets.list line 3): rented\n    \
                 2 more held back by --suppress"
            )
        );
        assert_eq!(
            alert(&serde_json::json!({"event_type": "rdp"}), false),
            None
        );
    }
}
