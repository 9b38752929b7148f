//! Timestamps from packet time (UTC), in the forms logs use, and RFC 3339
//! parsing, all through the `time` crate.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// The instant of `ts_us` microseconds since the Unix epoch, clamped to the
/// years `time` can write (a capture's clock is attacker-controlled).
fn utc(ts_us: i64) -> OffsetDateTime {
    let nanos = i128::from(ts_us) * 1000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if ts_us < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

/// EVE's form, `2024-01-31T12:34:56.123456+0000` (Suricata's schema:
/// `\.\d+[+-]\d+$`).
pub fn eve_timestamp(ts_us: i64) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000"
    );
    utc(ts_us).format(&format).unwrap_or_default()
}

/// RFC 3339 with microseconds, `2024-01-31T12:34:56.123456Z`.
pub fn rfc3339_micros(ts_us: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    utc(ts_us).format(&format).unwrap_or_default()
}

/// A certificate's validity time as EVE writes it, `2024-01-31T12:34:56`
/// (seconds since the epoch, no zone).
pub fn x509_time(secs: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    utc(secs.saturating_mul(1_000_000))
        .format(&format)
        .unwrap_or_default()
}

/// An RFC 3339 time (`2026-01-31T12:00:00Z`, `...+02:00`, fractions) as
/// Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            eve_timestamp(1_795_727_534_229_440),
            "2026-11-26T21:12:14.229440+0000"
        );
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(x509_time(1_483_526_923), "2017-01-04T10:48:43");
        // Out of range: clamped, never a panic.
        assert_eq!(eve_timestamp(i64::MAX), "9999-12-31T23:59:59.999999+0000");
        assert!(eve_timestamp(i64::MIN).starts_with("-9999-01-01T00:00:00"));
    }

    #[test]
    fn rfc3339_is_parsed_with_zones_and_fractions() {
        assert_eq!(parse_rfc3339("2017-01-04T10:48:43Z"), Some(1_483_526_923));
        assert_eq!(
            parse_rfc3339("2017-01-04T12:48:43.250+02:00"),
            Some(1_483_526_923)
        );
        assert_eq!(parse_rfc3339("2017-01-04"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
