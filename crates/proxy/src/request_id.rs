//! X-Request-Id values for requests that arrive without one.

use hyper::header::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};

/// A per-process random prefix and a counter: unique across restarts and processes
/// without a random draw per request.
pub struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let hash = splitmix(seed ^ u128::from(std::process::id()));
        RequestIds {
            prefix: format!("{hash:012x}"),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Formatted by hand into one buffer: this runs for every request.
        let mut id = [0u8; 29];
        id[..12].copy_from_slice(&self.prefix.as_bytes()[..12]);
        id[12] = b'-';
        for (i, byte) in id[13..].iter_mut().enumerate() {
            *byte = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        // Hex digits and a dash only, so the value is always a valid header.
        HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("berth"))
    }
}

/// Mixes the seed's bits (splitmix64) so that prefixes of processes started in the same
/// nanosecond range still differ in every digit.
fn splitmix(seed: u128) -> u64 {
    let mut z = (seed as u64) ^ ((seed >> 64) as u64);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 0xFFFF_FFFF_FFFF
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_valid() {
        let ids = super::RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert!(a.to_str().unwrap().len() > 12);
    }
}
