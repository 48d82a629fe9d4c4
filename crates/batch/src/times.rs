//! Time values as files write them: RFC 3339, the `2026-11-20 10:00:00` and `2026-11-20` of CRM
//! exports, day-first and month-first dates when told (`dmy`, `mdy`), or any strftime pattern,
//! in a time zone for values without an offset. `leadscore score` (`--time-format`,
//! `--time-zone`) and the service's CSV import (`?time_format=`, `?time_zone=`) read times with
//! these same functions.
//!
//! RFC 3339 with an offset is always tried first with the core's fast parser (batch files hold
//! tens of millions of times); only other values reach the slower paths, which use `jiff` for
//! calendars, time zones and patterns.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use leadscore_core::{Model, Timestamp};

/// How values without an offset are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// Year first: RFC 3339, `2026-11-20 10:00[:00[.fff]]`, `2026-11-20T10:00:00`, `2026-11-20`.
    #[default]
    Iso,
    /// Day first: `20/11/2026`, `20.11.2026 10:00`, `20-11-2026 10:00:00`, `20/11/2026 10:00 PM`
    /// (and the ISO forms, which cannot be mistaken).
    DayFirst,
    /// Month first: `11/20/2026`, `11/20/2026 10:00 AM` (and the ISO forms).
    MonthFirst,
    /// A strftime pattern (`%d/%m/%Y %H:%M`), the only form then read.
    Pattern(String),
}

impl TimeFormat {
    /// Reads an option's value: `iso`, `dmy`, `mdy`, or a pattern (anything with a `%`).
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "iso" => return Ok(TimeFormat::Iso),
            "dmy" => return Ok(TimeFormat::DayFirst),
            "mdy" => return Ok(TimeFormat::MonthFirst),
            _ => {}
        }
        if !text.contains('%') {
            return Err(format!(
                "`{text}` is not a time format: use iso (the default), dmy (day first: 20/11/2026 10:00), mdy (month first: 11/20/2026 10:00 AM) or a strftime pattern such as %d/%m/%Y %H:%M"
            ));
        }
        // A pattern must be able to read what it writes, and what it reads must be a day.
        let sample =
            jiff::civil::date(2026, 11, 20).at(10, 30, 15, 0).to_zoned(TimeZone::UTC).map_err(|e| e.to_string())?;
        let written = jiff::fmt::strtime::format(text, &sample)
            .map_err(|e| format!("`{text}` is not a usable strftime pattern: {e}"))?;
        let read = jiff::fmt::strtime::parse(text, &written)
            .map_err(|e| format!("`{text}` is not a usable strftime pattern: it cannot read `{written}` back: {e}"))?;
        if read.timestamp().is_none() && read.to_date().is_err() {
            return Err(format!(
                "`{text}` is not a usable time pattern: it does not give a day (it needs a year, a month and a day, such as %Y, %m and %d)"
            ));
        }
        Ok(TimeFormat::Pattern(text.to_string()))
    }

    fn example(&self) -> &'static str {
        match self {
            TimeFormat::Iso | TimeFormat::Pattern(_) => "2026-11-20T10:00:00Z, 2026-11-20 10:00:00 or 2026-11-20",
            TimeFormat::DayFirst => "20/11/2026 10:00, 20/11/2026 or 2026-11-20T10:00:00Z",
            TimeFormat::MonthFirst => "11/20/2026 10:00 AM, 11/20/2026 or 2026-11-20T10:00:00Z",
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeFormat::Iso => f.write_str("iso"),
            TimeFormat::DayFirst => f.write_str("dmy"),
            TimeFormat::MonthFirst => f.write_str("mdy"),
            TimeFormat::Pattern(pattern) => write!(f, "{pattern}"),
        }
    }
}

/// The time zone of values without an offset (UTC by default).
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// `None`: UTC.
    zone: Option<TimeZone>,
    name: Option<String>,
}

impl Zone {
    /// Reads an option's value: an IANA name (`Europe/Paris`), `UTC`, or an offset (`+01:00`).
    pub fn parse(text: &str) -> Result<Zone, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Zone::default());
        }
        if let Some(offset) = fixed_offset(text) {
            return Ok(Zone { zone: Some(TimeZone::fixed(offset)), name: Some(text.to_string()) });
        }
        match TimeZone::get(text) {
            Ok(zone) => Ok(Zone { zone: Some(zone), name: Some(text.to_string()) }),
            Err(_) => Err(format!(
                "`{text}` is not a time zone: use a name of the IANA time zone database such as Europe/Paris or America/New_York (read from the system's, /usr/share/zoneinfo), UTC, or an offset such as +01:00"
            )),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("UTC")
    }

    fn to_timestamp(&self, at: DateTime) -> Option<i64> {
        let instant = match &self.zone {
            None => TimeZone::UTC.to_timestamp(at),
            Some(zone) => zone.to_timestamp(at),
        };
        instant.ok().map(jiff::Timestamp::as_millisecond)
    }
}

/// `+01:00`, `-05:30`, `+0100`.
fn fixed_offset(text: &str) -> Option<Offset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// How time values are read: their format and the zone of those without an offset.
#[derive(Debug, Clone, Default)]
pub struct TimeOptions {
    pub format: TimeFormat,
    pub zone: Zone,
}

/// A value that is not a time in the format and zone given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a time{how}")]
pub struct TimeError {
    text: String,
    how: String,
}

impl TimeOptions {
    /// Reads a (trimmed) time value.
    pub fn parse(&self, text: &str) -> Result<Timestamp, TimeError> {
        self.parse_bytes(text.as_bytes()).ok_or_else(|| self.error(text.as_bytes()))
    }

    /// Same as [`TimeOptions::parse`] on bytes straight from a file, without saying why not.
    pub fn parse_bytes(&self, bytes: &[u8]) -> Option<Timestamp> {
        if let TimeFormat::Pattern(pattern) = &self.format {
            return self.parse_pattern(pattern, std::str::from_utf8(bytes).ok()?);
        }
        if let Some(at) = Timestamp::parse_rfc3339_bytes(bytes) {
            return Some(at);
        }
        let civil = match self.format {
            TimeFormat::DayFirst => Civil::iso(bytes).or_else(|| Civil::numeric(bytes, true)),
            TimeFormat::MonthFirst => Civil::iso(bytes).or_else(|| Civil::numeric(bytes, false)),
            _ => Civil::iso(bytes),
        }?;
        let date = Date::new(civil.year, civil.month, civil.day).ok()?;
        let time = Time::new(civil.hour, civil.minute, civil.second, civil.millisecond * 1_000_000).ok()?;
        self.zone.to_timestamp(DateTime::from_parts(date, time)).map(Timestamp)
    }

    fn parse_pattern(&self, pattern: &str, text: &str) -> Option<Timestamp> {
        let parsed = jiff::fmt::strtime::parse(pattern, text).ok()?;
        let instant = if parsed.timestamp().is_some() || parsed.offset().is_some() {
            parsed.to_timestamp().ok()?
        } else if parsed.iana_time_zone().is_some() {
            parsed.to_zoned().ok()?.timestamp()
        } else {
            return self.zone.to_timestamp(parsed.to_datetime().ok()?).map(Timestamp);
        };
        Some(Timestamp(instant.as_millisecond()))
    }

    /// Why a value is not a time, with how to write one.
    pub fn error(&self, bytes: &[u8]) -> TimeError {
        let text: String = String::from_utf8_lossy(bytes).chars().take(64).collect();
        let how = match &self.format {
            TimeFormat::Pattern(pattern) => format!(" in the format `{pattern}`"),
            TimeFormat::Iso if Civil::numeric(bytes, true).is_some() || Civil::numeric(bytes, false).is_some() => {
                " in the format iso: is the day or the month first? Say so with the time format dmy or mdy".to_string()
            }
            format => format!(" in the format {format} (write it like {})", format.example()),
        };
        TimeError { text, how }
    }

    /// A lead's time attribute (`created_at`) as the engine reads it: an RFC 3339 value is kept as
    /// written; any other the options read becomes RFC 3339 in UTC; an empty one is missing.
    pub fn normalise(&self, text: &str) -> Result<String, TimeError> {
        let text = text.trim();
        if Timestamp::parse_rfc3339(text).is_ok() && !matches!(self.format, TimeFormat::Pattern(_)) {
            return Ok(text.to_string());
        }
        self.parse(text).map(|at| at.to_string())
    }
}

/// The lead attributes holding a time, which the readers write as RFC 3339 when the time options
/// read them: `created_at` (what CRM exports' creation dates become) and the one the model's
/// `[lead] created_at` names; each with whether the model reads it. A value the model reads that
/// is not a time makes its row a bad row (one the model does not read is kept as written).
pub fn time_attributes(model: Option<&Model>) -> Vec<(String, bool)> {
    let reads = |attribute: &str| model.is_some_and(|m| m.lead_fields().iter().any(|f| f == attribute));
    let mut attributes = vec!["created_at"];
    attributes.extend(model.and_then(Model::created_at_field).filter(|f| *f != "created_at"));
    attributes.into_iter().map(|a| (a.to_string(), reads(a))).collect()
}

/// A date and time without a zone, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i16,
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    millisecond: i32,
}

/// A cursor over a value's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// 1 to `max` digits (exactly `max` when `exact`).
    fn number(&mut self, max: usize, exact: bool) -> Option<i32> {
        let start = self.at;
        while self.at < self.bytes.len() && self.at - start < max && self.bytes[self.at].is_ascii_digit() {
            self.at += 1;
        }
        let n = self.at - start;
        if n == 0 || (exact && n != max) {
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).ok()?.parse().ok()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// `HH:MM[:SS[.fff]]`, `H:MM` when `short_hour`; returns (hour, minute, second, ms).
    fn clock(&mut self, short_hour: bool) -> Option<(i32, i32, i32, i32)> {
        let hour = self.number(2, !short_hour)?;
        if !self.eat(b':') {
            return None;
        }
        let minute = self.number(2, true)?;
        let (mut second, mut millisecond) = (0, 0);
        if self.eat(b':') {
            second = self.number(2, true)?;
            if self.eat(b'.') || self.eat(b',') {
                let start = self.at;
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    if self.at - start < 3 {
                        millisecond = millisecond * 10 + i32::from(self.bytes[self.at] - b'0');
                    }
                    self.at += 1;
                }
                let digits = self.at - start;
                if digits == 0 {
                    return None;
                }
                for _ in digits..3 {
                    millisecond *= 10;
                }
            }
        }
        Some((hour, minute, second, millisecond))
    }
}

impl Civil {
    fn new(date: (i32, i32, i32), clock: (i32, i32, i32, i32)) -> Option<Civil> {
        let (year, month, day) = date;
        let (hour, minute, second, millisecond) = clock;
        Some(Civil {
            year: i16::try_from(year).ok()?,
            month: i8::try_from(month).ok()?,
            day: i8::try_from(day).ok()?,
            hour: i8::try_from(hour).ok()?,
            minute: i8::try_from(minute).ok()?,
            second: i8::try_from(second).ok()?,
            millisecond,
        })
    }

    /// `2026-11-20`, `2026-11-20 10:00`, `2026-11-20T10:00:00.250`.
    fn iso(bytes: &[u8]) -> Option<Civil> {
        let mut r = Reader { bytes, at: 0 };
        let year = r.number(4, true)?;
        if !r.eat(b'-') {
            return None;
        }
        let month = r.number(2, true)?;
        if !r.eat(b'-') {
            return None;
        }
        let day = r.number(2, true)?;
        let mut clock = (0, 0, 0, 0);
        if !r.done() {
            if !(r.eat(b' ') || r.eat(b'T') || r.eat(b't')) {
                return None;
            }
            clock = r.clock(false)?;
        }
        r.done().then_some(())?;
        Civil::new((year, month, day), clock)
    }

    /// `20/11/2026`, `20.11.2026 10:00`, `11-20-2026 10:00:00 PM`: day first when `day_first`,
    /// else month first; the same separator twice; a four-digit year.
    fn numeric(bytes: &[u8], day_first: bool) -> Option<Civil> {
        let mut r = Reader { bytes, at: 0 };
        let first = r.number(2, false)?;
        let separator = r.peek().filter(|b| matches!(b, b'/' | b'.' | b'-'))?;
        r.eat(separator);
        let second = r.number(2, false)?;
        if !r.eat(separator) {
            return None;
        }
        let year = r.number(4, true)?;
        let (day, month) = if day_first { (first, second) } else { (second, first) };
        let mut clock = (0, 0, 0, 0);
        if !r.done() {
            if !(r.eat(b' ') || r.eat(b'T')) {
                return None;
            }
            while r.eat(b' ') {}
            clock = r.clock(true)?;
            while r.eat(b' ') {}
            let rest = &bytes[r.at..];
            if !rest.is_empty() {
                // A 12-hour clock: 12 AM is midnight, 12 PM noon.
                let pm = if rest.eq_ignore_ascii_case(b"am") {
                    false
                } else if rest.eq_ignore_ascii_case(b"pm") {
                    true
                } else {
                    return None;
                };
                if !(1..=12).contains(&clock.0) {
                    return None;
                }
                clock.0 = clock.0 % 12 + if pm { 12 } else { 0 };
            }
        }
        Civil::new((year, month, day), clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        Timestamp::parse_rfc3339(text).unwrap().0
    }

    fn options(format: &str, zone: &str) -> TimeOptions {
        TimeOptions { format: TimeFormat::parse(format).unwrap(), zone: Zone::parse(zone).unwrap() }
    }

    #[test]
    fn the_default_reads_rfc_3339_crm_date_times_and_dates_in_utc() {
        let iso = TimeOptions::default();
        for (text, expected) in [
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z"),
            ("2026-11-20T11:00:00+01:00", "2026-11-20T10:00:00Z"),
            ("2026-11-20 10:00:00", "2026-11-20T10:00:00Z"),
            ("2026-11-20 10:00", "2026-11-20T10:00:00Z"),
            ("2026-11-20T10:00:00.25", "2026-11-20T10:00:00.250Z"),
            ("2026-11-20", "2026-11-20T00:00:00Z"),
        ] {
            assert_eq!(iso.parse(text).map(|t| t.0), Ok(at(expected)), "{text}");
        }
        for bad in ["", "20/11/2026", "2026-11-31", "2026-11-20 25:00", "2026-11-20 10", "2026-11-20x", "yesterday"] {
            assert!(iso.parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            iso.parse("20/11/2026").unwrap_err().to_string(),
            "`20/11/2026` is not a time in the format iso: is the day or the month first? Say so with the time format dmy or mdy"
        );
        assert_eq!(
            iso.parse("soon").unwrap_err().to_string(),
            "`soon` is not a time in the format iso (write it like 2026-11-20T10:00:00Z, 2026-11-20 10:00:00 or 2026-11-20)"
        );
    }

    #[test]
    fn day_first_and_month_first_read_the_same_instant() {
        let dmy = options("dmy", "UTC");
        let mdy = options("MDY", "UTC");
        for text in ["20/11/2026 10:00", "20.11.2026 10:00:00", "20-11-2026 10:00", "20/11/2026 10:00 AM"] {
            assert_eq!(dmy.parse(text).map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")), "{text}");
        }
        for text in ["11/20/2026 10:00", "11/20/2026 10:00:00 am", "11/20/2026 10:00 AM"] {
            assert_eq!(mdy.parse(text).map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")), "{text}");
        }
        assert_eq!(mdy.parse("11/20/2026 12:30 PM").map(|t| t.0), Ok(at("2026-11-20T12:30:00Z")));
        assert_eq!(mdy.parse("11/20/2026 12:30 AM").map(|t| t.0), Ok(at("2026-11-20T00:30:00Z")));
        assert_eq!(mdy.parse("3/4/2026").map(|t| t.0), Ok(at("2026-03-04T00:00:00Z")));
        assert_eq!(dmy.parse("3/4/2026").map(|t| t.0), Ok(at("2026-04-03T00:00:00Z")));
        // The ISO forms cannot be mistaken, and stay accepted.
        assert_eq!(dmy.parse("2026-11-20 10:00").map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")));
        for bad in ["20/11/26", "20/11-2026", "31/02/2026", "20/11/2026 13:00 PM", "11/20/2026"] {
            assert!(dmy.parse(bad).is_err(), "{bad}");
        }
        assert!(
            dmy.parse("11/20/2026")
                .unwrap_err()
                .to_string()
                .contains("in the format dmy (write it like 20/11/2026 10:00")
        );
    }

    #[test]
    fn values_without_an_offset_are_in_the_time_zone_given() {
        let paris = options("iso", "Europe/Paris");
        assert_eq!(paris.zone.name(), "Europe/Paris");
        assert_eq!(paris.parse("2026-11-20 10:00:00").map(|t| t.0), Ok(at("2026-11-20T09:00:00Z")));
        assert_eq!(paris.parse("2026-07-20").map(|t| t.0), Ok(at("2026-07-19T22:00:00Z")), "summer time");
        // A value with an offset keeps it.
        assert_eq!(paris.parse("2026-11-20T10:00:00Z").map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")));
        // A clock time skipped by the change to summer time is moved forward by the gap.
        assert_eq!(paris.parse("2026-03-29 02:30").map(|t| t.0), Ok(at("2026-03-29T01:30:00Z")));
        let fixed = options("iso", "-05:00");
        assert_eq!(fixed.parse("2026-11-20 10:00").map(|t| t.0), Ok(at("2026-11-20T15:00:00Z")));
        for bad in ["Europe/Pariss", "Mars/Olympus", "+25:00", "0100", ""] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
        assert!(Zone::parse("utc").is_ok());
    }

    #[test]
    fn a_strftime_pattern_is_the_only_form_then_read() {
        let pattern = options("%d/%m/%Y %H:%M", "Europe/Paris");
        assert_eq!(pattern.parse("20/11/2026 10:00").map(|t| t.0), Ok(at("2026-11-20T09:00:00Z")));
        assert!(pattern.parse("2026-11-20T10:00:00Z").is_err());
        assert_eq!(
            pattern.parse("20/11/2026").unwrap_err().to_string(),
            "`20/11/2026` is not a time in the format `%d/%m/%Y %H:%M`"
        );
        let with_offset = options("%Y%m%d %H%M %z", "Europe/Paris");
        assert_eq!(with_offset.parse("20261120 1000 +0000").map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")));
        let date_only = options("%d.%m.%Y", "UTC");
        assert_eq!(date_only.parse("20.11.2026").map(|t| t.0), Ok(at("2026-11-20T00:00:00Z")));
        let unix = options("%s", "UTC");
        assert_eq!(unix.parse("1795168800").map(|t| t.0), Ok(at("2026-11-20T10:00:00Z")));
        for bad in ["dd/mm/yyyy", "%H:%M", "%Q %d", "%d/%m/%Y %!", "european"] {
            assert!(TimeFormat::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_time_attribute_is_kept_when_it_is_rfc_3339_and_written_so_otherwise() {
        let dmy = options("dmy", "Europe/Paris");
        assert_eq!(dmy.normalise(" 2026-11-20T10:00:00+09:00 "), Ok("2026-11-20T10:00:00+09:00".to_string()));
        assert_eq!(dmy.normalise("20/11/2026 10:00"), Ok("2026-11-20T09:00:00Z".to_string()));
        assert!(dmy.normalise("last week").is_err());
        let model = |source: &str| leadscore_core::compile(source).unwrap().model;
        let signed_up = model("[lead]\ncreated_at = \"signed_up\"\n[scores.s]\n");
        assert_eq!(time_attributes(Some(&signed_up)), [("created_at".into(), false), ("signed_up".into(), true)]);
        let created_at = model("[lead]\ncreated_at = \"created_at\"\n[scores.s]\n");
        assert_eq!(time_attributes(Some(&created_at)), [("created_at".into(), true)]);
        assert_eq!(time_attributes(None), [("created_at".into(), false)]);
    }

    proptest::proptest! {
        #[test]
        fn no_value_makes_a_reader_panic(text in "[0-9/.:T +-]{0,24}( ?(AM|pm|Z))?|.{0,40}") {
            for format in ["iso", "dmy", "mdy", "%d/%m/%Y %H:%M", "%s"] {
                let _ = options(format, "Europe/Paris").parse(&text);
                let _ = options(format, "UTC").normalise(&text);
            }
        }
    }
}
