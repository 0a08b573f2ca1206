//! How sops writes and reads typed scalars.
//!
//! sops encrypts (and feeds to the MAC) the text of a value as Go formats it: integers in
//! decimal, floats as `strconv.FormatFloat(f, 'f', -1, 64)`, booleans as `True`/`False`.
//! Decrypted files show floats the way go-yaml writes them (`1.234568e+09`).

/// The plaintext sops encrypts for a float (Go `'f'` format, shortest digits).
pub(crate) fn float_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display prints the shortest round-trip digits without an exponent, as Go does.
        format!("{f}")
    }
}

/// The plaintext sops encrypts for a boolean.
pub(crate) fn bool_plain(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A float as a YAML/JSON scalar that still reads back as a float: Go's `'g'` shortest form
/// (as go-yaml writes it), with `.0` added when it would otherwise read as an integer.
pub(crate) fn float_yaml(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let mut out = if !(-4..6).contains(&exp) {
        let mut s = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
        s
    } else {
        format!("{f}")
    };
    if !out.contains(['.', 'e']) {
        out.push_str(".0");
    }
    out
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat` for the forms sops writes.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

/// A YAML core-schema integer (`12`, `-3`, `0x1F`, `0o17`).
pub(crate) fn parse_yaml_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A YAML core-schema float (`1.5`, `1e3`, `.inf`, `-.Inf`, `.nan`).
pub(crate) fn parse_yaml_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        ".inf" | "+.inf" => Some(f64::INFINITY),
        "-.inf" => Some(f64::NEG_INFINITY),
        ".nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(float_plain(1234568000.0), "1234568000");
        assert_eq!(float_plain(1.5), "1.5");
        assert_eq!(float_plain(1e21), "1000000000000000000000");
        assert_eq!(float_plain(1e-7), "0.0000001");
        assert_eq!(float_plain(f64::INFINITY), "+Inf");
        assert_eq!(float_yaml(1234568000.0), "1.234568e+09");
        assert_eq!(float_yaml(1e6), "1e+06");
        assert_eq!(float_yaml(100000.0), "100000.0");
        assert_eq!(float_yaml(0.5), "0.5");
        assert_eq!(float_yaml(-0.00001), "-1e-05");
        assert_eq!(float_yaml(0.0001), "0.0001");
        assert_eq!(float_yaml(0.0), "0.0");
        assert_eq!(float_yaml(f64::NEG_INFINITY), "-.inf");
        for f in [
            1234568000.0,
            1e6,
            0.5,
            -1e-5,
            3.25e-300,
            1.7976931348623157e308,
        ] {
            assert_eq!(parse_yaml_float(&float_yaml(f)), Some(f));
            assert_eq!(parse_go_float(&float_plain(f)), Some(f));
        }
    }

    #[test]
    fn ints_and_bools() {
        assert_eq!(parse_yaml_int("0x1F"), Some(31));
        assert_eq!(parse_yaml_int("-0o17"), Some(-15));
        assert_eq!(parse_yaml_int("+42"), Some(42));
        assert_eq!(parse_yaml_int("99999999999999999999"), None);
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("yes"), None);
    }
}
