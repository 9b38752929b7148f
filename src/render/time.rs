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
    Stamp::eve(ts_us).as_str().to_owned()
}

/// RFC 3339 with microseconds, `2024-01-31T12:34:56.123456Z`.
pub fn rfc3339_micros(ts_us: i64) -> String {
    Stamp::rfc3339(ts_us).as_str().to_owned()
}

/// A time written without an allocation (one per event, and per time an
/// event carries): years 0 to 9999, which every packet time falls in, are
/// written digit by digit; others (a forged clock) through the `time`
/// crate's formatter, whose result is the same for those years.
pub struct Stamp {
    text: [u8; 31],
    len: usize,
    other: Option<String>,
}

impl Stamp {
    /// EVE's form ([`eve_timestamp`]).
    pub fn eve(ts_us: i64) -> Self {
        Stamp::new(ts_us, b"+0000", formatted_eve)
    }

    /// RFC 3339 with microseconds ([`rfc3339_micros`]).
    pub fn rfc3339(ts_us: i64) -> Self {
        Stamp::new(ts_us, b"Z", formatted_rfc3339)
    }

    fn new(ts_us: i64, zone: &[u8], other: fn(OffsetDateTime) -> String) -> Self {
        let t = utc(ts_us);
        let mut text = *b"0000-00-00T00:00:00.000000+0000";
        let Some(y) = u32::try_from(t.year()).ok().filter(|y| *y <= 9999) else {
            return Stamp {
                text,
                len: 0,
                other: Some(other(t)),
            };
        };
        let fields = [
            (0, 4, y),
            (5, 2, u32::from(u8::from(t.month()))),
            (8, 2, u32::from(t.day())),
            (11, 2, u32::from(t.hour())),
            (14, 2, u32::from(t.minute())),
            (17, 2, u32::from(t.second())),
            (20, 6, t.microsecond()),
        ];
        for (at, width, mut v) in fields {
            for d in text.iter_mut().skip(at).take(width).rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let len = DATE_TIME + zone.len();
        if let Some(z) = text.get_mut(DATE_TIME..len) {
            z.copy_from_slice(zone);
        }
        Stamp {
            text,
            len,
            other: None,
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.other {
            Some(s) => s,
            None => self
                .text
                .get(..self.len)
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or_default(),
        }
    }
}

/// `2024-01-31T12:34:56.123456`, before the zone.
const DATE_TIME: usize = 26;

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// EVE's form through the `time` crate's formatter.
fn formatted_eve(t: OffsetDateTime) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000"
    );
    t.format(&format).unwrap_or_default()
}

/// RFC 3339 through the `time` crate's formatter.
fn formatted_rfc3339(t: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(&format).unwrap_or_default()
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

    /// The digit-by-digit forms are the formatter's, over the whole range of
    /// years it takes, at the ends of days, months and leap years.
    #[test]
    fn stamps_equal_the_formatters() {
        let day = 86_400_000_000_i64;
        let mut times = vec![
            0,
            -1,
            1,
            951_782_400_000_000 - 1,
            951_782_400_000_000,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            -62_167_219_200_000_000,
            -62_167_219_200_000_001,
            i64::MAX,
            i64::MIN,
        ];
        // A day and a microsecond apart over ±10,000 years, from an odd start.
        let mut t = -315_537_897_600_000_000_i64 + 123_457;
        while t < 315_537_897_600_000_000 {
            times.push(t);
            t += 37 * day + 3_600_000_001;
        }
        for t in times {
            assert_eq!(Stamp::eve(t).as_str(), formatted_eve(utc(t)), "at {t} µs");
            assert_eq!(
                Stamp::rfc3339(t).as_str(),
                formatted_rfc3339(utc(t)),
                "at {t} µs"
            );
        }
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
