//! Reads the `notAfter` time out of a DER X.509 certificate.
//!
//! The proxy only needs the expiry of its certificates (to list them and to renew in time),
//! and none of its dependencies expose it, so this walks the few DER elements in front of
//! the validity field instead of pulling in a full X.509 parser.

use berth_base::civil::days_from_civil;

/// DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// DER tag of the explicit `[0]` version field of a TBSCertificate.
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` as unix seconds, or a description of what is malformed.
pub fn not_after(cert_der: &[u8]) -> Result<i64, String> {
    let (tag, certificate, _) = element(cert_der)?;
    expect(tag, SEQUENCE, "certificate")?;
    let (tag, mut tbs, _) = element(certificate)?;
    expect(tag, SEQUENCE, "tbsCertificate")?;

    // version [0] is optional; serialNumber, signature and issuer always precede validity.
    let (tag, _, rest) = element(tbs)?;
    if tag == VERSION {
        tbs = rest;
    }
    for _field in ["serialNumber", "signature", "issuer"] {
        let (_, _, rest) = element(tbs)?;
        tbs = rest;
    }
    let (tag, validity, _) = element(tbs)?;
    expect(tag, SEQUENCE, "validity")?;
    let (_, _, rest) = element(validity)?;
    let (tag, time, _) = element(rest)?;
    let text = std::str::from_utf8(time).map_err(|_| "notAfter is not ASCII".to_owned())?;
    match tag {
        UTC_TIME => parse_time(text, false),
        GENERALIZED_TIME => parse_time(text, true),
        other => Err(format!("notAfter has unexpected tag {other:#04x}")),
    }
}

fn expect(tag: u8, wanted: u8, what: &str) -> Result<(), String> {
    if tag == wanted {
        Ok(())
    } else {
        Err(format!("{what} is not a DER sequence"))
    }
}

/// Splits one DER element off `input`: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let truncated = || "certificate is truncated".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(truncated)?;
    let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("certificate has an invalid DER length".to_owned());
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return Err(truncated());
    }
    let (contents, rest) = rest.split_at(len);
    Ok((tag, contents, rest))
}

/// Parses `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime), which is all that
/// RFC 5280 allows in certificates.
fn parse_time(text: &str, four_digit_year: bool) -> Result<i64, String> {
    let bad = || format!("notAfter {text:?} is not a valid RFC 5280 time");
    let digits = text.strip_suffix('Z').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (year, rest) = if four_digit_year {
        if digits.len() != 14 {
            return Err(bad());
        }
        (num(&digits[..4]), &digits[4..])
    } else {
        if digits.len() != 12 {
            return Err(bad());
        }
        // RFC 5280 4.1.2.5.1: two-digit years 50..99 are 19xx, 00..49 are 20xx.
        let yy = num(&digits[..2]);
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
    };
    let (month, day) = (num(&rest[0..2]), num(&rest[2..4]));
    let (hour, minute, second) = (num(&rest[4..6]), num(&rest[6..8]), num(&rest[8..10]));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    // The range check above keeps month and day small and positive.
    let days = days_from_civil(year, month as u32, day as u32);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn num(digits: &str) -> i64 {
    digits
        .bytes()
        .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_rcgen_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let cert = params.self_signed(&key).expect("cert");
        // 2031-03-04T00:00:00Z
        assert_eq!(not_after(cert.der()), Ok(1_930_348_800));

        params.not_after = rcgen::date_time_ymd(2051, 1, 1);
        let cert = params.self_signed(&key).expect("cert");
        // GeneralizedTime from 2050 on: 2051-01-01T00:00:00Z
        assert_eq!(not_after(cert.der()), Ok(2_556_144_000));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(not_after(b"").is_err());
        assert!(not_after(&[0x30, 0x05, 0x01]).is_err());
        assert!(not_after(&[0x04, 0x00]).is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(parse_time("491231235959Z", false), Ok(2_524_607_999));
        assert_eq!(parse_time("500101000000Z", false), Ok(-631_152_000));
    }
}
