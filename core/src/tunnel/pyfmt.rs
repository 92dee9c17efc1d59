//! Python's float formatting and rounding, digit for digit, for texts and values that were
//! Python's f-strings before the classifier moved into the core (`:.1f`, `:.0%`, `:g`,
//! `round(x, 3)`, `round(x)`, `10 ** x`, `x ** 2`).
//!
//! Rust's `{:.N}` and `{:.Ne}` print the exact binary value rounded half to even, as CPython's
//! dtoa does; `str::parse::<f64>` is correctly rounded like CPython's strtod. What differs is
//! spelling (NaN, exponents), which these helpers write the Python way.
#![forbid(unsafe_code)]

use std::hint::black_box;

/// Python's `format(x, f".{prec}f")`.
pub fn fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    format!("{x:.prec$}")
}

/// Python's `format(x, ".0%")` (and other precisions): x * 100 in fixed notation, then "%".
pub fn percent(x: f64, prec: usize) -> String {
    format!("{}%", fixed(x * 100.0, prec))
}

/// Python's `format(x, "g")`: 6 significant digits, trailing zeros dropped, scientific
/// notation (two-digit exponent at least) below 1e-4 or from 1e6 on.
pub fn general(x: f64) -> String {
    const P: i32 = 6;
    if let Some(special) = special(x, "0") {
        return special;
    }
    // d.ddddde<exp>: the value correctly rounded to P significant digits.
    let (digits, exp) = digits_and_exponent(&format!("{:.*e}", (P - 1) as usize, x.abs()));
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    spell(sign(x), digits, exp, !(-4..P).contains(&exp), "")
}

/// Python's `repr(x)` of a float (what `json.dumps` writes for it): the shortest digits that
/// read back as `x`, in fixed notation with at least one decimal (`2.0`, `0.0001`) while the
/// decimal exponent is within -5..16, else scientific with a signed two-digit exponent at least
/// (`1e-05`, `1.5e+16`).
pub fn repr(x: f64) -> String {
    let mut out = Vec::with_capacity(24);
    push_repr(&mut out, x);
    // Only ASCII is written.
    String::from_utf8(out).unwrap_or_default()
}

/// `repr(x)` written at the end of `out`.
pub fn push_repr(out: &mut Vec<u8>, x: f64) {
    if let Some(special) = special(x, "0.0") {
        out.extend_from_slice(special.as_bytes());
        return;
    }
    // zmij (Schubfach) gives the shortest digits that read back as `x` and, where two such
    // strings lie equally close, the even one, as CPython's dtoa does; only the spelling differs
    // (`0.00001`, `1e-7`).
    let mut buffer = zmij::Buffer::new();
    let Some(decimal) = Decimal::parse(buffer.format_finite(x.abs())) else {
        // zmij writes at most 17 significant digits and a few zeros: never reached.
        out.extend_from_slice(format!("{:e}", x).as_bytes());
        return;
    };
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let digits = decimal.digits();
    let exp = decimal.exp;
    // CPython's float_repr_style "short": scientific when the point would come after fewer
    // than -3 or more than 16 digits.
    let point = exp + 1;
    if point <= -4 || point > 16 {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(e).as_bytes());
    } else if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(digits);
    } else {
        let point = point as usize;
        if digits.len() <= point {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', point - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

/// A positive decimal: its significant digits (no leading or trailing zero) and the decimal
/// exponent of the first.
struct Decimal {
    digits: [u8; 32],
    len: usize,
    exp: i32,
}

impl Decimal {
    /// `text`: digits with an optional point, then an optional `e` and signed exponent, a
    /// nonzero value.
    fn parse(text: &str) -> Option<Decimal> {
        let (mantissa, exponent) = match text.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().ok()?),
            None => (text, 0),
        };
        let mut d = Decimal {
            digits: [0; 32],
            len: 0,
            exp: 0,
        };
        // Digits before the point, the leading zeros among them, then the fraction's.
        let mut before_point = 0i32;
        let mut seen_point = false;
        let mut leading_zeros = 0i32;
        for b in mantissa.bytes() {
            match b {
                b'.' => seen_point = true,
                b'0'..=b'9' => {
                    if !seen_point {
                        before_point += 1;
                    }
                    if d.len == 0 && b == b'0' {
                        leading_zeros += 1;
                    } else {
                        *d.digits.get_mut(d.len)? = b;
                        d.len += 1;
                    }
                }
                _ => return None,
            }
        }
        while d.len > 1 && d.digits[d.len - 1] == b'0' {
            d.len -= 1;
        }
        if d.len == 0 {
            return None;
        }
        d.exp = before_point - leading_zeros - 1 + exponent;
        Some(d)
    }

    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

/// NaN, the infinities and zero (with `zero` as its spelling) as Python writes them.
fn special(x: f64, zero: &str) -> Option<String> {
    if x.is_nan() {
        return Some("nan".into());
    }
    if x.is_infinite() {
        return Some(if x > 0.0 { "inf" } else { "-inf" }.into());
    }
    (x == 0.0).then(|| format!("{}{zero}", sign(x)))
}

fn sign(x: f64) -> &'static str {
    if x.is_sign_negative() {
        "-"
    } else {
        ""
    }
}

/// The digits and the decimal exponent of Rust's `d.ddde<exp>`.
fn digits_and_exponent(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// `digits` times 10^(`exp` + 1 - their count), spelled as Python's formats spell it:
/// scientific (`d.ddd`, `e`, a sign, two exponent digits at least), or fixed, where a whole
/// number ends with `whole_suffix` ("" for `g`, ".0" for `repr`).
fn spell(sign: &str, digits: &str, exp: i32, scientific: bool, whole_suffix: &str) -> String {
    if scientific {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    // Fixed: the point goes after exp + 1 digits.
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}{whole_suffix}", "0".repeat(point - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point);
            format!("{int}.{frac}")
        }
    };
    format!("{sign}{body}")
}

/// Python's `round(x, ndigits)` for ndigits >= 0: the nearest float to the decimal value
/// correctly rounded (half to even) to `ndigits` places.
pub fn round_to(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // x * 10^n is off the exact product by at most half an ulp: away from a half-integer by
    // more than that, its nearest integer k is the decimal Python rounds to, and k / 10^n (both
    // exact, one division) is the float nearest to it, which Python's parse of that decimal
    // gives too. Only ties and near-ties, and magnitudes past exact integers, are decided by the
    // correctly rounded text (an allocation and often the slow exact algorithm: a tenth of a
    // record line's time, when every figure went that way).
    if ndigits <= 15 {
        let scale = POWERS_OF_TEN[ndigits];
        let y = x * scale;
        if y.abs() < TWO_POW_52 {
            let k = y.round();
            let margin = 0.5 - (y - k).abs();
            if margin > y.abs() * NEAR_TIE {
                return k / scale;
            }
            if let Some(k) = nearest_near_a_tie(x, scale, y, k) {
                return (k / scale).copysign(x);
            }
        }
    }
    round_to_by_text(x, ndigits)
}

/// The integer nearest to the exact x * scale, halves to even, when `y` (the rounded product,
/// 1 <= |y| < 2^52, nearest integer `k`) lies near a half: the product's error `r` is exact by
/// a fused multiply-add, and the distances from the halves either side, (y - k ± 1/2) + r, are
/// exact sums but for one rounding, which keeps their sign and their zero. Near a half the
/// text would take the exact algorithm (confidences such as 0.9974999999999999 on every record).
/// None below 1 (y - k ± 1/2 may not be exact there) or where the product's error may be
/// inexact (a tiny x).
fn nearest_near_a_tie(x: f64, scale: f64, y: f64, k: f64) -> Option<f64> {
    if y.abs() < 1.0 || x.abs() < MIN_EXACT_ERROR {
        return None;
    }
    let r = x.mul_add(scale, -y);
    let d = y - k;
    let above = (d - 0.5) + r; // the exact product minus (k + 1/2), its sign
    let below = (d + 0.5) + r; // the exact product minus (k - 1/2)
    let even = |a: f64, b: f64| if a % 2.0 == 0.0 { a } else { b };
    Some(if above > 0.0 {
        k + 1.0
    } else if above == 0.0 {
        even(k, k + 1.0)
    } else if below < 0.0 {
        k - 1.0
    } else if below == 0.0 {
        even(k, k - 1.0)
    } else {
        k
    })
}

/// Far above the subnormals, a product's rounding error is a float itself.
const MIN_EXACT_ERROR: f64 = 1e-280;

/// 10^n for n in 0..=15, each exact.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Below 2^52 a float still has a fraction to round.
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
/// Two ulps of a float, relative to its magnitude: closer than that to a half, the product's
/// rounding error could put it on either side.
const NEAR_TIE: f64 = 2.0 * f64::EPSILON;

/// `round_to` by the correctly rounded decimal text, parsed back.
fn round_to_by_text(x: f64, ndigits: usize) -> f64 {
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// Parquet's `_micros` (`portwatch/report/parquet.py`): Python's `round(ts * 1e6)` (halves to
/// even), None outside the open range of a signed 64-bit integer or for a time not finite.
pub fn micros_in_i64(ts: f64) -> Option<i64> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63, exact
    let m = (ts * 1e6).round_ties_even();
    // An integer-valued float compared with 2^63 exactly, as Python compares its int; the cast is
    // exact for every value inside.
    (m.is_finite() && m > -LIMIT && m < LIMIT).then_some(m as i64)
}

/// Python's `round(x)` of a float: the nearest integer, halves to even (saturating where
/// Python would raise for inf or NaN).
pub fn round_int(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// Python's `10 ** x` for a float x: libm's pow(10, x). The base is hidden from the optimizer,
/// which would otherwise call exp10 (not always the same last digit).
pub fn pow10(x: f64) -> f64 {
    black_box(10.0f64).powf(x)
}

/// Python's `x ** 2` for a float: pow(|x|, 2) from libm (CPython takes the sign off first).
pub fn square(x: f64) -> f64 {
    x.abs().powf(black_box(2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_is_pythons() {
        // repr(x) in Python 3.11 for each.
        let cases = [
            (0.0_f64, "0.0"),
            (-0.0_f64, "-0.0"),
            (1.0_f64, "1.0"),
            (2.0_f64, "2.0"),
            (0.1_f64, "0.1"),
            (0.0001_f64, "0.0001"),
            (1e-05_f64, "1e-05"),
            (1e+16_f64, "1e+16"),
            (1000000000000000.0_f64, "1000000000000000.0"),
            (1.2345678901234568e+17_f64, "1.2345678901234568e+17"),
            (1.5e+16_f64, "1.5e+16"),
            (7.28_f64, "7.28"),
            (4.157_f64, "4.157"),
            (1e-07_f64, "1e-07"),
            (2.5e-05_f64, "2.5e-05"),
            (1234.5_f64, "1234.5"),
            (-3.75_f64, "-3.75"),
            (9007199254740992.0_f64, "9007199254740992.0"),
            (1e+22_f64, "1e+22"),
            (5e-324_f64, "5e-324"),
            (1.7976931348623157e+308_f64, "1.7976931348623157e+308"),
            (0.30000000000000004_f64, "0.30000000000000004"),
            (100.0_f64, "100.0"),
            (1e+100_f64, "1e+100"),
            // Exactly halfway between two shortest spellings: the even one.
            (4027792551163.0 + 0.15625, "4027792551163.1562"),
            (804713949537561.0 + 0.25, "804713949537561.2"),
        ];
        for (x, want) in cases {
            assert_eq!(repr(x), want, "{x:e}");
        }
    }

    /// `repr` as it was spelled from Rust's own formatting: the shortest digits (`{:e}`), the
    /// even one of two equally close (correctly rounded to as many digits, when that reads back
    /// as `x`), then Python's spelling. Slow and plainly right: the oracle for zmij's digits.
    fn repr_by_std_formatting(x: f64) -> String {
        if let Some(special) = special(x, "0.0") {
            return special;
        }
        let shortest = format!("{:e}", x.abs());
        let n = digits_and_exponent(&shortest).0.len();
        let rounded = format!("{:.*e}", n.saturating_sub(1), x.abs());
        let sci = if rounded.parse::<f64>() == Ok(x.abs()) {
            rounded
        } else {
            shortest
        };
        let (digits, exp) = digits_and_exponent(&sci);
        let point = exp + 1;
        spell(sign(x), &digits, exp, point <= -4 || point > 16, ".0")
    }

    #[test]
    fn repr_agrees_with_std_formatting() {
        let mut s = 0x9E37_79B9_7F4A_7C15_u64;
        let mut ties = 0;
        for i in 0..100_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = match i % 5 {
                // Any bit pattern.
                0 => f64::from_bits(s),
                // Dyadic fractions: exact halfway cases among them.
                1 => (s >> 11) as f64 / (1u64 << (s % 61)) as f64,
                2 => (s >> 20) as f64 + (s % 64) as f64 / 64.0,
                // Times and sizes as the records carry them.
                3 => (s % 10_000_000) as f64 / 1000.0,
                _ => (s % 100_000) as f64 * 10f64.powi((s >> 40) as i32 % 60 - 30),
            };
            if !x.is_finite() {
                continue;
            }
            let want = repr_by_std_formatting(x);
            ties += usize::from(want != repr_by_std_formatting_upper(x));
            assert_eq!(repr(x), want, "{x:e}");
            assert_eq!(repr(-x), repr_by_std_formatting(-x), "{x:e}");
        }
        assert!(ties > 500, "only {ties} halfway cases");
    }

    /// The oracle without its half-to-even step (Rust's upper choice): tells the ties apart.
    fn repr_by_std_formatting_upper(x: f64) -> String {
        let (digits, exp) = digits_and_exponent(&format!("{:e}", x.abs()));
        let point = exp + 1;
        spell(sign(x), &digits, exp, point <= -4 || point > 16, ".0")
    }

    #[test]
    fn micros_round_as_python_and_stop_at_64_bits() {
        // round(x * 1e6) in Python 3.11 for each.
        assert_eq!(micros_in_i64(1715680800.0), Some(1_715_680_800_000_000));
        assert_eq!(micros_in_i64(1715680801.00688), Some(1_715_680_801_006_880));
        assert_eq!(micros_in_i64(0.0000025), Some(2)); // 2.5: halves to even
        assert_eq!(micros_in_i64(0.0000035), Some(4));
        assert_eq!(micros_in_i64(-0.0000025), Some(-2));
        assert_eq!(micros_in_i64(9.2e12), Some(9_200_000_000_000_000_000));
        assert_eq!(micros_in_i64(9.3e12), None); // 9.3e18 us is past 2^63
        assert_eq!(micros_in_i64(-9.3e12), None);
        assert_eq!(micros_in_i64(f64::INFINITY), None);
        assert_eq!(micros_in_i64(f64::NAN), None);
    }

    #[test]
    fn fixed_rounds_the_exact_value_half_to_even() {
        // Expected strings are CPython 3.11's f"{x:.Nf}".
        assert_eq!(fixed(0.5, 0), "0");
        assert_eq!(fixed(1.5, 0), "2");
        assert_eq!(fixed(2.5, 0), "2");
        assert_eq!(fixed(0.125, 2), "0.12");
        assert_eq!(fixed(0.375, 2), "0.38");
        assert_eq!(fixed(2.675, 2), "2.67"); // 2.67499999... in binary
        assert_eq!(fixed(0.05, 1), "0.1"); // 0.05000000000000000277
        assert_eq!(fixed(0.25, 1), "0.2");
        assert_eq!(fixed(-0.0, 1), "-0.0");
        assert_eq!(fixed(-0.04, 1), "-0.0");
        assert_eq!(fixed(1e16, 1), "10000000000000000.0");
        assert_eq!(fixed(1e-5, 1), "0.0");
        assert_eq!(fixed(f64::INFINITY, 1), "inf");
        assert_eq!(fixed(f64::NAN, 0), "nan");
        assert_eq!(fixed(123.456, 1), "123.5");
    }

    #[test]
    fn percent_is_times_100_then_fixed() {
        assert_eq!(percent(0.0, 0), "0%");
        assert_eq!(percent(1.0, 0), "100%");
        assert_eq!(percent(0.125, 0), "12%"); // 12.5 -> even
        assert_eq!(percent(0.135, 0), "14%"); // 13.500000000000002
        assert_eq!(percent(0.145, 0), "14%"); // 0.145 * 100 = 14.499999999999998
        assert_eq!(percent(2.0 / 3.0, 0), "67%");
        assert_eq!(percent(0.005, 0), "0%"); // 0.5 -> even
        assert_eq!(percent(0.015, 0), "2%"); // 1.5 -> even
    }

    #[test]
    fn general_matches_python_g() {
        let cases: &[(f64, &str)] = &[
            (0.375, "0.375"),
            (1.2007, "1.2007"),
            (-0.5641, "-0.5641"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (999999.5, "1e+06"),
            (999999.4, "999999"),
            (1e16, "1e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345678, "0.000123457"),
            (0.000099999, "9.9999e-05"),
            (1.5e-7, "1.5e-07"),
            (2.5, "2.5"),
            (0.1 + 0.2, "0.3"),
            (1.0000005, "1"), // 1.00000049999... rounds down
            (1.0000015, "1"),
            (12.34565, "12.3456"), // below the half in binary
            (1e300, "1e+300"),
            (5e-324, "4.94066e-324"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for &(x, want) in cases {
            assert_eq!(general(x), want, "{x:e}");
        }
    }

    #[test]
    fn round_to_matches_python_round() {
        assert_eq!(round_to(0.9145, 3), 0.914); // 0.91449999999999997513
        assert_eq!(round_to(0.0005, 3), 0.001); // 0.00050000000000000001
        assert_eq!(round_to(0.0015, 3), 0.002); // 0.00150000000000000003
        assert_eq!(round_to(0.0025, 3), 0.003); // 0.00250000000000000005
        assert_eq!(round_to(0.125, 2), 0.12); // exact half: even
        assert_eq!(round_to(2.0 / 3.0, 3), 0.667);
        assert_eq!(round_to(1.0, 3), 1.0);
        assert!(round_to(-0.0001, 3).is_sign_negative());
        assert_eq!(round_to(1e16, 3), 1e16);
        assert_eq!(round_to(1e-5, 3), 0.0);
        assert!(round_to(f64::NAN, 3).is_nan());
        assert_eq!(round_int(2.5), 2);
        assert_eq!(round_int(3.5), 4);
        assert_eq!(round_int(-0.5), 0);
        assert_eq!(round_int(6.999999999999999), 7);
    }

    #[test]
    fn round_to_is_the_correctly_rounded_text_parsed_back() {
        // Floats of every magnitude and those next to decimals and to their halves, where the
        // product's rounding could mislead: the same float as the text's, sign of zero included.
        let mut values = vec![
            0.0625,
            0.0625f64.next_up(),
            0.125,
            2.5,
            0.9145,
            0.9974999999999999,
            0.9775,
            -0.9975,
            1e-300,
            5e15,
            4.5e15,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bits = f64::from_bits(state);
            if bits.is_finite() {
                values.push(bits);
            }
            let magnitude = 10f64.powi((state % 24) as i32 - 8);
            values.push((state >> 11) as f64 / (1u64 << 53) as f64 * magnitude);
        }
        for k in -1000..1000 {
            for n in [1.0, 2.0, 1000.0, 2000.0, 1e6] {
                let x = f64::from(k) / n;
                values.extend([x, x.next_up(), x.next_down()]);
            }
        }
        for &x in &values {
            for ndigits in [0, 1, 2, 3, 6, 15, 16] {
                let (fast, text) = (round_to(x, ndigits), round_to_by_text(x, ndigits));
                assert_eq!(fast.to_bits(), text.to_bits(), "round({x:e}, {ndigits})");
            }
        }
    }

    #[test]
    fn powers_are_libm_s() {
        assert_eq!(pow10(2.0), 100.0);
        assert_eq!(pow10(0.0), 1.0);
        assert_eq!(square(-3.0), 9.0);
        assert_eq!(square(0.1), 0.1f64.powf(2.0));
        // 10 ** log10(1 + k) - 1 rounds back to k, as Python's round() did.
        for k in 0..2048 {
            assert_eq!(round_int(pow10((1.0 + k as f64).log10()) - 1.0), k);
        }
    }
}
