//! Timestamp formatting in Suricata's EVE layout, without a calendar crate: the civil-date
//! conversion below is Howard Hinnant's `civil_from_days`, exact for the proleptic Gregorian
//! calendar, which is all a packet timestamp needs.

use std::fmt::Write;

/// Converts days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a (year, month, day): the inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Formats nanoseconds since the epoch as `2024-05-01T12:00:00.123456+0000` (UTC, microseconds).
pub fn eve_timestamp(ts_ns: u64, out: &mut String) {
    let secs = (ts_ns / 1_000_000_000) as i64;
    let micros = (ts_ns % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let mut s = String::new();
        eve_timestamp(0, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000000+0000");
        s.clear();
        // 2024-05-01T12:00:00.123456Z
        eve_timestamp(1_714_564_800_123_456_789, &mut s);
        assert_eq!(s, "2024-05-01T12:00:00.123456+0000");
        s.clear();
        // leap day 2024-02-29T23:59:59Z
        eve_timestamp(1_709_251_199_000_000_000, &mut s);
        assert_eq!(s, "2024-02-29T23:59:59.000000+0000");
    }
}
