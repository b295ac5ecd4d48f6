//! `fraglab-units`: the one way fraglab reads a byte size, wherever one is written (allocator
//! specs, workload spec files, command-line flags).
//!
//! The rule, in full:
//!
//! - a number: decimal digits, optionally with a fraction (`512`, `1.5`, `.5`, `2.`);
//! - optionally whitespace, then an optional unit, case-insensitive: `b` (bytes), `k`/`kb`/`kib`
//!   (2^10), `m`/`mb`/`mib` (2^20), `g`/`gb`/`gib` (2^30), `t`/`tb`/`tib` (2^40). Every unit
//!   is a power of 1024: `64kb` and `64KiB` are both 65,536 bytes;
//! - the result must be a whole number of bytes (`1.5k` is 1,536; `0.5` and `1.3` are refused)
//!   that fits in a `u64`.
//!
//! Leading and trailing whitespace is ignored. Signs, exponents and anything else are refused.
//!
//! ```
//! use fraglab_units::parse_size;
//! assert_eq!(parse_size("64k"), Ok(65_536));
//! assert_eq!(parse_size("1.5 MiB"), Ok(1_572_864));
//! assert!(parse_size("0.5").is_err());
//! ```

/// The longest fraction (after trailing zeros are dropped) that is tried: a fraction that
/// becomes whole under a unit of at most 2^40 has at most 40 decimal places, and 38 keep the
/// arithmetic inside a `u128`.
const MAX_FRACTION_DIGITS: usize = 38;

/// Parses a byte size by the rule in the [crate documentation](crate): `512`, `64k`, `64KB`,
/// `1.5m`, `1 GiB`, `2t`. The error says what is wrong with the text, in words fit to follow
/// the name of the flag or field it came from.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty size (examples: 512, 64k, 1.5m, 1GiB)".to_string());
    }
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative; a size is at least 0 bytes"));
    }
    let number_end = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(number_end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(format!(
            "`{t}` is not a size (examples: 512, 64k, 1.5m, 1GiB)"
        ));
    }
    if frac.contains('.') {
        return Err(format!("`{t}` is not a number: it has two decimal points"));
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "unknown unit `{}` in `{t}` (use b, k, m, g or t, optionally written kb or \
                 KiB; all are powers of 1024)",
                unit.trim_start()
            ))
        }
    };
    let too_large = || format!("`{t}` is too large (at most {} bytes)", u64::MAX);
    let whole: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let whole = whole.checked_mul(1u64 << shift).ok_or_else(too_large)?;
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        return Ok(whole);
    }
    let not_whole = || format!("`{t}` is not a whole number of bytes");
    if frac.len() > MAX_FRACTION_DIGITS {
        return Err(not_whole());
    }
    // frac / 10^d of a unit is frac * 2^shift / 10^d bytes: whole only if 10^d divides it.
    let digits: u128 = frac.parse().map_err(|_| not_whole())?;
    let scale = 10u128.pow(frac.len() as u32);
    let scaled = digits.checked_mul(1u128 << shift).ok_or_else(not_whole)?;
    if scaled % scale != 0 {
        return Err(not_whole());
    }
    let part = u64::try_from(scaled / scale).map_err(|_| too_large())?;
    whole.checked_add(part).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn plain_bytes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("  512\t"), Ok(512));
        assert_eq!(parse_size("512b"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("512 b"), Ok(512));
        assert_eq!(parse_size("007"), Ok(7));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn single_letter_units_are_powers_of_1024() {
        for (unit, shift) in [("k", 10), ("m", 20), ("g", 30), ("t", 40)] {
            assert_eq!(parse_size(&format!("3{unit}")), Ok(3 << shift), "{unit}");
            let upper = unit.to_ascii_uppercase();
            assert_eq!(parse_size(&format!("3{upper}")), Ok(3 << shift), "{upper}");
        }
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
    }

    #[test]
    fn b_and_ib_spellings() {
        for (unit, shift) in [("k", 10), ("m", 20), ("g", 30), ("t", 40)] {
            for spelling in [
                format!("{unit}b"),
                format!("{unit}B"),
                format!("{}B", unit.to_ascii_uppercase()),
                format!("{unit}ib"),
                format!("{}iB", unit.to_ascii_uppercase()),
                format!("{}IB", unit.to_ascii_uppercase()),
            ] {
                assert_eq!(
                    parse_size(&format!("5{spelling}")),
                    Ok(5 << shift),
                    "{spelling}"
                );
            }
        }
        assert_eq!(parse_size("64kb"), Ok(65_536));
        assert_eq!(parse_size("64KB"), Ok(65_536));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("64kib"), Ok(65_536));
    }

    #[test]
    fn whitespace_between_number_and_unit() {
        assert_eq!(parse_size("64 k"), Ok(64 << 10));
        assert_eq!(parse_size("1.5 MiB"), Ok(3 << 19));
        assert_eq!(parse_size("2\tGB"), Ok(2 << 30));
        assert_eq!(parse_size(" 1 g "), Ok(1 << 30));
    }

    #[test]
    fn fractions_that_make_whole_bytes() {
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("0.5k"), Ok(512));
        assert_eq!(parse_size(".5k"), Ok(512));
        assert_eq!(parse_size("2."), Ok(2));
        assert_eq!(parse_size("2.0"), Ok(2));
        assert_eq!(
            parse_size("2.000000000000000000000000000000000000000000"),
            Ok(2)
        );
        assert_eq!(parse_size("0.25m"), Ok(1 << 18));
        assert_eq!(parse_size("1.125KiB"), Ok(1152));
        assert_eq!(parse_size("0.0009765625k"), Ok(1));
        // 2^-40 of a TiB: 40 decimal places, more than are tried.
        assert!(parse_size("0.0000000000009094947017729282379150390625t").is_err());
    }

    #[test]
    fn fractions_of_a_byte_are_refused() {
        for s in [
            "0.5",
            "1.3",
            "1.1k",
            "0.3m",
            "0.001k",
            "1.00000000000000000000000000000000000000001",
        ] {
            let e = parse_size(s).unwrap_err();
            assert!(e.contains("not a whole number of bytes"), "{s}: {e}");
        }
    }

    #[test]
    fn overflow_is_refused() {
        for s in [
            "18446744073709551616",
            "99999999999999999999999",
            "16777216t",
            "17179869184g",
            "18446744073709551615k",
            "16777215.99999999999t",
        ] {
            let e = parse_size(s).unwrap_err();
            assert!(
                e.contains("too large") || e.contains("not a whole number"),
                "{s}: {e}"
            );
        }
        assert_eq!(parse_size("16777215t"), Ok(16_777_215 << 40));
        assert!(parse_size("16777216t").unwrap_err().contains("too large"));
    }

    #[test]
    fn empty_negative_and_garbage_are_refused() {
        assert!(parse_size("").unwrap_err().contains("empty"));
        assert!(parse_size("   ").unwrap_err().contains("empty"));
        assert!(parse_size("-1").unwrap_err().contains("negative"));
        assert!(parse_size("-1k").unwrap_err().contains("negative"));
        for s in ["k", "lots", "+5", "b", ".", ".k", "KiB"] {
            let e = parse_size(s).unwrap_err();
            assert!(e.contains("not a size"), "{s}: {e}");
        }
        assert!(parse_size("1.2.3")
            .unwrap_err()
            .contains("two decimal points"));
        for (s, unit) in [
            ("12q", "q"),
            ("1e3", "e3"),
            ("64kk", "kk"),
            ("64 k b", "k b"),
            ("5 bytes", "bytes"),
            ("1kibb", "kibb"),
            ("0x10", "x10"),
            ("1_000", "_000"),
            ("12 q", "q"),
        ] {
            let e = parse_size(s).unwrap_err();
            assert!(e.starts_with(&format!("unknown unit `{unit}`")), "{s}: {e}");
        }
    }
}
