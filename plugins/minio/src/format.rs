//! Numbers for people: bytes in binary units, ages, plurals.

/// `0 B`, `999 B`, `1.5 KiB`, `12.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `45 s`, `3 min`, `5 h`, `12 d`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// `1 object`, `2 objects`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A signed change in bytes: `+1.5 KiB`, `-20 B`, `±0 B`.
pub fn delta(now: u64, before: u64) -> String {
    match now.cmp(&before) {
        std::cmp::Ordering::Greater => format!("+{}", bytes(now - before)),
        std::cmp::Ordering::Less => format!("-{}", bytes(before - now)),
        std::cmp::Ordering::Equal => "±0 B".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_numbers() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(7200), "2 h");
        assert_eq!(age(-5), "0 s");
        assert_eq!(count(1, "object", "objects"), "1 object");
        assert_eq!(delta(10, 30), "-20 B");
        assert_eq!(delta(5, 5), "±0 B");
    }
}
