//! RFC 5424 syslog messages carrying one JSON event each.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - {"timestamp":...}
//! ```
//!
//! PRI is the facility times eight plus the severity (alerts have their own
//! severity), TIMESTAMP the wall clock when the event was written, HOSTNAME
//! the sensor's name, MSGID the event type; no structured data. The JSON is
//! the message as it is (RFC 5424's MSG-ANY, no byte-order mark), so a
//! collector parses it like a line of the file output.

use super::spec::SyslogSpec;
use crate::render::rfc3339_micros;

#[derive(Debug, Clone)]
pub struct SyslogFormat {
    facility: u8,
    severity: u8,
    alert_severity: u8,
    /// `HOSTNAME APP-NAME PROCID`, fixed for the run.
    middle: String,
}

/// RFC 5424 header fields are printable US-ASCII without spaces, at most
/// `max` long; anything else becomes `_`, an empty value `-`.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

impl SyslogFormat {
    pub fn new(spec: &SyslogSpec, hostname: &str, pid: u32) -> SyslogFormat {
        SyslogFormat {
            facility: spec.facility,
            severity: spec.severity,
            alert_severity: spec.alert_severity,
            middle: format!(
                "{} {} {pid}",
                header_field(hostname, 255),
                header_field(&spec.app_name, 48)
            ),
        }
    }

    /// Appends the message for an event of `event_type` written at `now_us`.
    pub fn message(&self, event_type: &str, json: &[u8], now_us: i64, out: &mut Vec<u8>) {
        let sev = if event_type == "alert" {
            self.alert_severity
        } else {
            self.severity
        };
        let pri = u16::from(self.facility) * 8 + u16::from(sev);
        out.extend_from_slice(
            format!(
                "<{pri}>1 {} {} {} - ",
                rfc3339_micros(now_us),
                self.middle,
                header_field(event_type, 32)
            )
            .as_bytes(),
        );
        out.extend_from_slice(json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::spec::SyslogTransport;

    fn spec() -> SyslogSpec {
        SyslogSpec {
            transport: SyslogTransport::Udp("h:514".into()),
            facility: 21,
            severity: 6,
            alert_severity: 4,
            app_name: "hostwatch".into(),
            octet_counting: true,
        }
    }

    #[test]
    fn header_as_rfc5424_lays_it_out() {
        let f = SyslogFormat::new(&spec(), "span-01", 4242);
        let mut out = Vec::new();
        // 2026-11-27T01:02:03.456789Z
        f.message("ntlm", b"{\"a\":1}", 1_795_741_323_456_789, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<174>1 2026-11-27T01:02:03.456789Z span-01 hostwatch 4242 ntlm - {\"a\":1}"
        );
        out.clear();
        f.message("alert", b"{}", 0, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "<172>1 1970-01-01T00:00:00.000000Z span-01 hostwatch 4242 alert - {}"
        );
    }

    #[test]
    fn hostile_sensor_names_cannot_break_the_header() {
        let f = SyslogFormat::new(&spec(), "a b\nc\u{e9}", 1);
        let mut out = Vec::new();
        f.message("host", b"{}", 0, &mut out);
        assert!(String::from_utf8_lossy(&out).contains(" a_b_c_ hostwatch 1 host - "));
        let f = SyslogFormat::new(&spec(), "", 1);
        out.clear();
        f.message("host", b"{}", 0, &mut out);
        assert!(String::from_utf8_lossy(&out).contains("Z - hostwatch 1 host - {}"));
    }
}
