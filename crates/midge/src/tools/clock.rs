//! The time codes of `-F` (`%I`, `%U` and the `@` strftime codes), in the C locale.
//!
//! Only for a process whose local time zone is UTC (`TZ` unset or UTC, and
//! `/etc/localtime` absent or UTC): without a time zone database, other zones cannot be
//! printed as mosquitto_sub prints them, so `-F` refuses time codes there instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The strftime conversions `@X` supports (`@@` aside).
pub(super) const CODES: &[u8] = b"aAbBcCdDeFgGhHIjklmMnNprRsStTuUVwWxXyYzZ";

/// Whether local time is UTC, so that the time codes print what mosquitto_sub prints.
pub(super) fn local_is_utc() -> bool {
    const UTC: [&str; 8] = [
        "UTC",
        "UTC0",
        ":UTC",
        "Etc/UTC",
        ":Etc/UTC",
        "UCT",
        "Etc/UCT",
        "Universal",
    ];
    match std::env::var("TZ") {
        Ok(tz) if !tz.is_empty() => return UTC.contains(&tz.as_str()),
        _ => {}
    }
    match std::fs::canonicalize("/etc/localtime") {
        Err(_) => !std::path::Path::new("/etc/localtime").exists(),
        Ok(path) => {
            let path = path.to_string_lossy();
            ["/UTC", "/UCT", "/Universal", "/Zulu"]
                .iter()
                .any(|end| path.ends_with(end))
        }
    }
}

/// A broken-down UTC time (`struct tm`), with the nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tm {
    secs: i64,
    nanos: u32,
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 0-based day of the year.
    yday: u32,
}

impl Tm {
    pub(super) fn at(time: SystemTime) -> Tm {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since.as_secs() as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1)) as u32;
        Tm {
            secs,
            nanos: since.subsec_nanos(),
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday,
        }
    }

    /// `%U`'s text: seconds and nanoseconds since the epoch.
    pub(super) fn unix(&self) -> String {
        format!("{}.{:09}", self.secs, self.nanos)
    }

    /// `%j`'s `tst`: `%Y-%m-%dT%H:%M:%S.` microseconds, `Z`, then `%z` (sic).
    pub(super) fn json_timestamp(&self) -> String {
        let mut out = String::new();
        self.strftime(b'F', &mut out);
        out.push('T');
        self.strftime(b'T', &mut out);
        out.push_str(&format!(".{:06}Z", self.nanos / 1000));
        self.strftime(b'z', &mut out);
        out
    }

    /// `%I`: strftime's `%FT%T%z`.
    pub(super) fn iso8601(&self) -> String {
        let mut out = String::new();
        self.strftime(b'F', &mut out);
        out.push('T');
        self.strftime(b'T', &mut out);
        self.strftime(b'z', &mut out);
        out
    }

    /// strftime's `%<code>` (C locale); `@N` is the nanoseconds.
    pub(super) fn strftime(&self, code: u8, out: &mut String) {
        const DAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let day_name = DAYS[self.weekday as usize];
        let month_name = MONTHS[self.month as usize - 1];
        let hour12 = match self.hour % 12 {
            0 => 12,
            h => h,
        };
        let (iso_year, iso_week) = self.iso_week();
        let text = match code {
            b'a' => day_name[..3].to_owned(),
            b'A' => day_name.to_owned(),
            b'b' | b'h' => month_name[..3].to_owned(),
            b'B' => month_name.to_owned(),
            b'c' => format!(
                "{} {} {:2} {:02}:{:02}:{:02} {}",
                &day_name[..3],
                &month_name[..3],
                self.day,
                self.hour,
                self.minute,
                self.second,
                self.year
            ),
            b'C' => format!("{:02}", self.year.div_euclid(100)),
            b'd' => format!("{:02}", self.day),
            b'D' | b'x' => format!(
                "{:02}/{:02}/{:02}",
                self.month,
                self.day,
                self.year.rem_euclid(100)
            ),
            b'e' => format!("{:2}", self.day),
            b'F' => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
            b'g' => format!("{:02}", iso_year.rem_euclid(100)),
            b'G' => iso_year.to_string(),
            b'H' => format!("{:02}", self.hour),
            b'I' => format!("{hour12:02}"),
            b'j' => format!("{:03}", self.yday + 1),
            b'k' => format!("{:2}", self.hour),
            b'l' => format!("{hour12:2}"),
            b'm' => format!("{:02}", self.month),
            b'M' => format!("{:02}", self.minute),
            b'n' => "\n".to_owned(),
            b'N' => format!("{:09}", self.nanos),
            b'p' => if self.hour < 12 { "AM" } else { "PM" }.to_owned(),
            b'r' => format!(
                "{hour12:02}:{:02}:{:02} {}",
                self.minute,
                self.second,
                if self.hour < 12 { "AM" } else { "PM" }
            ),
            b'R' => format!("{:02}:{:02}", self.hour, self.minute),
            b's' => self.secs.to_string(),
            b'S' => format!("{:02}", self.second),
            b't' => "\t".to_owned(),
            b'T' | b'X' => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
            b'u' => (if self.weekday == 0 { 7 } else { self.weekday }).to_string(),
            b'U' => format!("{:02}", (self.yday + 7 - self.weekday) / 7),
            b'V' => format!("{iso_week:02}"),
            b'w' => self.weekday.to_string(),
            b'W' => format!("{:02}", (self.yday + 7 - (self.weekday + 6) % 7) / 7),
            b'y' => format!("{:02}", self.year.rem_euclid(100)),
            b'Y' => self.year.to_string(),
            b'z' => "+0000".to_owned(),
            b'Z' => "UTC".to_owned(),
            _ => String::new(),
        };
        out.push_str(&text);
    }

    /// ISO 8601 week-based year and week number (`%G`, `%V`).
    fn iso_week(&self) -> (i64, u32) {
        let iso_weekday = (self.weekday + 6) % 7 + 1;
        let week = (i64::from(self.yday) + 1 - i64::from(iso_weekday) + 10) / 7;
        if week < 1 {
            (self.year - 1, weeks_in_year(self.year - 1))
        } else if week > i64::from(weeks_in_year(self.year)) {
            (self.year + 1, 1)
        } else {
            (self.year, week as u32)
        }
    }
}

fn weeks_in_year(year: i64) -> u32 {
    let p = |y: i64| (y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)).rem_euclid(7);
    if p(year) == 4 || p(year - 1) == 3 {
        53
    } else {
        52
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(secs: u64, nanos: u32, codes: &str) -> String {
        let tm = Tm::at(UNIX_EPOCH + Duration::new(secs, nanos));
        let mut out = String::new();
        for (i, code) in codes.bytes().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            tm.strftime(code, &mut out);
        }
        out
    }

    #[test]
    fn matches_glibc_strftime() {
        // Taken from mosquitto_sub on Debian (TZ=UTC) at 1795518634.393014178.
        assert_eq!(
            render(1_795_518_634, 393_014_178, "aAbBejuwyZsNCDRThpIlkGgVUWxXr"),
            "Tue Tuesday Nov November 24 328 2 2 26 UTC 1795518634 393014178 20 \
             11/24/26 11:10 11:10:34 Nov AM 11 11 11 2026 26 48 47 47 11/24/26 \
             11:10:34 11:10:34 AM"
        );
        assert_eq!(render(1_795_518_634, 0, "c"), "Tue Nov 24 11:10:34 2026");
        let tm = Tm::at(UNIX_EPOCH + Duration::new(1_795_518_634, 0));
        assert_eq!(tm.iso8601(), "2026-11-24T11:10:34+0000");
        // ISO week edge: 2021-01-01 is in week 53 of 2020.
        assert_eq!(render(1_609_459_200, 0, "GVF"), "2020 53 2021-01-01");
    }
}
