//! Instants and durations as plain integers of milliseconds since the Unix epoch (UTC).
//!
//! The engine never reads a clock: callers pass the "as of" instant. RFC 3339 parsing is written
//! here rather than taken from a date crate because batch scoring parses one timestamp per event
//! (tens of millions per run) and the common shape `YYYY-MM-DDTHH:MM:SS[.fff](Z|±hh:mm)` can be
//! read without allocation or table look-ups; the property tests check it against `jiff`.

use std::fmt;

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A length of time in milliseconds (never negative once compiled into a model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub fn from_days(days: i64) -> Duration {
        Duration(days * DAY_MS)
    }

    /// The duration in (fractional) days.
    pub fn as_days(self) -> f64 {
        self.0 as f64 / DAY_MS as f64
    }

    /// Parses a whole number and a unit: `30d`, `12h`, `45m`, `90s`, `2w`, `3mo`, `1y`, or with
    /// the unit's name, `3 months`, `30 days` (see [`UNITS`]; spaces between them are allowed).
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
            format!("`{text}` has no unit: write it like `30d`, `12h`, `45m`, `90s`, `2w`, `3mo` or `1y`")
        })?;
        let (number, unit) = text.split_at(split);
        if number.is_empty() {
            return Err(format!("`{text}` does not start with a whole number: write it like `30d`"));
        }
        let value: i64 = number.parse().map_err(|_| format!("`{text}` is too long a duration"))?;
        let unit = unit.trim_start();
        let Some(&(_, unit_ms, _)) = UNITS.iter().find(|(_, _, names)| names.contains(&unit)) else {
            // `M` is months in some date libraries and minutes nowhere: say which one to write.
            let hint = if unit == "M" { " (`mo` is months, `m` minutes)" } else { "" };
            return Err(format!("`{text}` has an unknown unit `{unit}`{hint}: use {}", accepted_units()));
        };
        value.checked_mul(unit_ms).map(Duration).ok_or_else(|| format!("`{text}` is too long a duration"))
    }
}

/// Milliseconds in a month: a twelfth of a year, 30.436875 days.
pub const MONTH_MS: i64 = YEAR_MS / 12;

/// Milliseconds in a year: 365.2425 days, the average Gregorian year.
///
/// A duration is a fixed number of milliseconds (windows, half-lives and `within` compare ages
/// with it), so a month or a year cannot follow the calendar. The Gregorian averages keep
/// `12mo` equal to `1y` and make `1y` the average length of a calendar year, so that a window
/// of years drifts by no day over the centuries; both are whole milliseconds. Lengths of whole
/// days are written in days (`30d`, `365d`), which never read back as months.
pub const YEAR_MS: i64 = 3_652_425 * DAY_MS / 10_000;

/// The units of a duration, longest first: the symbol [`Duration`]'s `Display` writes, the
/// length in milliseconds and every spelling [`Duration::parse`] accepts. `m` is minutes;
/// months are `mo`.
pub const UNITS: &[(&str, i64, &[&str])] = &[
    ("y", YEAR_MS, &["y", "year", "years"]),
    ("mo", MONTH_MS, &["mo", "month", "months"]),
    ("w", 7 * DAY_MS, &["w", "week", "weeks"]),
    ("d", DAY_MS, &["d", "day", "days"]),
    ("h", 3_600_000, &["h", "hour", "hours"]),
    ("m", 60_000, &["m", "min", "minute", "minutes"]),
    ("s", 1_000, &["s", "second", "seconds"]),
];

/// Every spelling of every unit, for an error message: `y/year/years, mo/month/months, ...`.
fn accepted_units() -> String {
    let units: Vec<String> = UNITS.iter().map(|(_, _, names)| names.join("/")).collect();
    let (last, rest) = units.split_last().expect("there are units");
    format!("{} or {last}", rest.join(", "))
}

impl fmt::Display for Duration {
    /// The largest unit that divides the duration exactly (`90d` stays `90d`, `3mo` stays `3mo`),
    /// else milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for &(unit, size, _) in UNITS {
            if ms != 0 && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Timestamp {
    /// Parses an RFC 3339 date-time with any UTC offset (`2026-11-01T00:00:00Z`,
    /// `2026-11-01 09:00:00.250+09:00`). A lower-case `t`/`z` and a space instead of `T` are
    /// accepted, as RFC 3339 allows. Fractions finer than a millisecond are truncated.
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        parse_rfc3339(text.as_bytes()).ok_or_else(|| TimestampError(text.chars().take(64).collect()))
    }

    /// Same as [`Timestamp::parse_rfc3339`] on bytes straight from a file.
    pub fn parse_rfc3339_bytes(bytes: &[u8]) -> Option<Timestamp> {
        parse_rfc3339(bytes)
    }

    pub fn saturating_sub(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration.0))
    }

    /// Whole milliseconds from `earlier` to `self`.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A text that is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 date-time (write it like 2026-11-01T00:00:00Z or 2026-11-01T09:00:00+09:00)")]
pub struct TimestampError(pub String);

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 in UTC, with milliseconds only when there are any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(DAY_MS);
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
        write!(f, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}")?;
        if ms != 0 {
            write!(f, ".{ms:03}")?;
        }
        f.write_str("Z")
    }
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = bytes.get(at..at + n)?;
    let mut value = 0i64;
    for &b in slice {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

fn parse_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // RFC 3339 allows a leap second (60); it is folded onto the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 3 {
                millis = millis * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let n_digits = at - start;
        if n_digits == 0 {
            return None;
        }
        for _ in n_digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(at)? {
        b'Z' | b'z' => {
            at += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, at + 1, 2)?;
            if b.get(at + 3) != Some(&b':') {
                return None;
            }
            let om = digits(b, at + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            at += 6;
            let minutes = oh * 60 + om;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    if at != b.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp(seconds * 1000 + millis))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_utc_and_offsets() {
        let utc = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
        assert_eq!(utc.0, 1_793_491_200_000);
        let tokyo = Timestamp::parse_rfc3339("2026-11-01T09:00:00+09:00").unwrap();
        assert_eq!(tokyo, utc);
        let ny = Timestamp::parse_rfc3339("2026-10-31 20:00:00.5-04:00").unwrap();
        assert_eq!(ny.0, utc.0 + 500);
        assert_eq!(utc.to_string(), "2026-11-01T00:00:00Z");
        assert_eq!(ny.to_string(), "2026-11-01T00:00:00.500Z");
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            "",
            "2026-11-01",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01T00:00:00Zjunk",
            "2026-11-01T00:00:00.Z",
            "2026-11-01T00:00:00+0900",
            "２０２６-11-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("30d").unwrap(), Duration::from_days(30));
        assert_eq!(Duration::parse("2w").unwrap(), Duration::from_days(14));
        assert_eq!(Duration::parse("90s").unwrap().0, 90_000);
        assert_eq!(Duration::parse("45m").unwrap().0, 45 * 60_000, "`m` is minutes");
        assert!(Duration::parse("30").is_err());
        assert!(Duration::parse("d").is_err());
        assert!(Duration::parse("-3d").is_err());
        assert!(Duration::parse("1.5d").is_err());
        assert!(Duration::parse("1d12h").is_err());
        assert!(Duration::parse("99999999999999999999d").is_err());
        assert!(Duration::parse("99999999999y").is_err());
        assert_eq!(Duration::from_days(30).to_string(), "30d");
        assert_eq!(Duration::from_days(14).to_string(), "2w");
    }

    #[test]
    fn every_spelling_of_a_unit_is_the_same_length() {
        for (text, same) in [
            ("2w", ["2week", "2weeks", "2 weeks", " 2 week "]),
            ("30d", ["30day", "30days", "30 days", "30  days"]),
            ("12h", ["12hour", "12hours", "12 hours", "12 hour"]),
            ("45m", ["45min", "45 minutes", "45minute", "45 min"]),
            ("90s", ["90second", "90seconds", "90 seconds", "90 second"]),
            ("3mo", ["3month", "3months", "3 months", "3 month"]),
            ("2y", ["2year", "2years", "2 years", "2 year"]),
        ] {
            for spelling in same {
                assert_eq!(Duration::parse(spelling), Duration::parse(text), "{spelling:?}");
            }
        }
    }

    #[test]
    fn a_month_is_a_twelfth_of_an_average_gregorian_year() {
        // 400 Gregorian years have 146,097 days.
        assert_eq!(Duration::parse("400y").unwrap(), Duration::from_days(146_097));
        assert_eq!(Duration::parse("1y").unwrap().0, 31_556_952_000);
        assert_eq!(Duration::parse("12mo").unwrap(), Duration::parse("1y").unwrap());
        assert_eq!(Duration::parse("1mo").unwrap().0, 2_629_746_000, "30.436875 days");
        assert!(Duration::parse("1mo").unwrap() > Duration::from_days(30));
        assert!(Duration::parse("3mo").unwrap() < Duration::from_days(92));
        assert!(Duration::parse("3mo").unwrap() > Duration::from_days(91));
    }

    #[test]
    fn durations_display_in_the_unit_they_were_written_in() {
        for text in ["3mo", "1y", "2y", "6mo", "18mo", "90d", "30d", "365d", "2w", "36h", "45m", "90s"] {
            assert_eq!(Duration::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Duration::parse("12 months").unwrap().to_string(), "1y");
        assert_eq!(Duration::parse("7 days").unwrap().to_string(), "1w");
        assert_eq!(Duration(1_500).to_string(), "1500ms");
    }

    #[test]
    fn an_unknown_unit_is_answered_with_every_accepted_one() {
        let message = Duration::parse("3 fortnights").unwrap_err();
        assert_eq!(
            message,
            "`3 fortnights` has an unknown unit `fortnights`: use y/year/years, mo/month/months, \
             w/week/weeks, d/day/days, h/hour/hours, m/min/minute/minutes or s/second/seconds"
        );
        for &(_, _, names) in UNITS {
            for name in names {
                assert!(message.contains(name), "{name}");
                assert!(Duration::parse(&format!("1{name}")).is_ok(), "{name}");
            }
        }
        assert!(Duration::parse("3M").unwrap_err().contains("(`mo` is months, `m` minutes)"));
        for bad in ["3Mo", "3D", "3mos", "3yr", "3 m o", "3ms"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_jiff(secs in -2_000_000_000i64..5_000_000_000i64, millis in 0i64..1000, offset_min in -(23*60+59)..(23*60+59i64)) {
            let instant = jiff::Timestamp::from_millisecond(secs * 1000 + millis).unwrap();
            let offset = jiff::tz::Offset::from_seconds((offset_min * 60) as i32).unwrap();
            let text = instant.display_with_offset(offset).to_string();
            let ours = Timestamp::parse_rfc3339(&text).unwrap();
            prop_assert_eq!(ours.0, secs * 1000 + millis, "{}", text);
            prop_assert_eq!(Timestamp::parse_rfc3339(&ours.to_string()).unwrap(), ours);
        }

        #[test]
        fn never_panics_on_any_text(text in ".{0,40}") {
            let _ = Timestamp::parse_rfc3339(&text);
        }
    }
}
