//! Checks of the text formats the seed's JSON uses.

/// An RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with fields in range.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        (part.bytes().all(|c| c.is_ascii_digit())).then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return false;
    }
    if b[13] != b':' || b[16] != b':' {
        return false;
    }
    let (Some(_year), Some(month), Some(day), Some(hour), Some(min), Some(sec)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 {
        return false;
    }
    if sec > 60 {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &s[i..] {
        "Z" | "z" => true,
        offset => {
            let ob = offset.as_bytes();
            ob.len() == 6
                && matches!(ob[0], b'+' | b'-')
                && ob[3] == b':'
                && offset[1..3].parse::<u32>().is_ok_and(|h| h <= 23)
                && offset[4..6].parse::<u32>().is_ok_and(|m| m <= 59)
                && offset[1..3]
                    .bytes()
                    .chain(offset[4..6].bytes())
                    .all(|c| c.is_ascii_digit())
        }
    }
}

/// Matches `^(\d+h)?(\d+m)?\d+s$`: Go's `time.Duration` string rounded to seconds.
pub fn is_go_seconds_duration(s: &str) -> bool {
    let mut rest = s;
    for unit in ['h', 'm'] {
        if let Some(i) = rest.find(unit) {
            let (n, tail) = rest.split_at(i);
            if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                return false;
            }
            rest = &tail[1..];
        }
    }
    let Some(n) = rest.strip_suffix('s') else {
        return false;
    };
    !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2026-11-26T23:35:55.796248784Z"));
        assert!(is_rfc3339("2026-11-26T23:35:55+01:00"));
        assert!(!is_rfc3339("2026-11-26 23:35:55Z"));
        assert!(!is_rfc3339("2026-13-26T23:35:55Z"));
        assert!(!is_rfc3339("2026-11-26T23:35:55"));
        assert!(!is_rfc3339("2026-11-26T23:35:55.Z"));
    }

    #[test]
    fn go_durations() {
        for ok in ["0s", "7s", "2m5s", "1h30m0s", "1h0s"] {
            assert!(is_go_seconds_duration(ok), "{ok}");
        }
        for bad in ["", "s", "1m", "1.5s", "h1s", "1m1h1s", "5ms"] {
            assert!(!is_go_seconds_duration(bad), "{bad}");
        }
    }
}
