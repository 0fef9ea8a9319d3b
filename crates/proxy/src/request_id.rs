//! X-Request-Id values for requests that arrive without one.

use hyper::header::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};

/// A per-process random prefix and a counter: unique across restarts and processes
/// without a random draw per request.
pub struct RequestIds {
    prefix: String,
    /// Hands out blocks of numbers; each thread counts through its block on its own, so
    /// the data-plane threads do not contend for one cache line on every request.
    counter: AtomicU64,
    /// Tells the blocks of different instances (proxies in one test process) apart.
    instance: u64,
}

/// Numbers a thread takes from the shared counter at a time.
const BLOCK: u64 = 1024;

static INSTANCES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's block: (instance, next number, end of the block).
    static BLOCK_LEFT: std::cell::Cell<(u64, u64, u64)> = const { std::cell::Cell::new((u64::MAX, 0, 0)) };
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
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn next(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = BLOCK_LEFT.with(|left| {
            let (instance, mut next, mut end) = left.get();
            if instance != self.instance || next == end {
                next = self.counter.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            left.set((self.instance, next + 1, end));
            next
        });
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

    #[test]
    fn threads_and_instances_never_share_an_id() {
        let ids = std::sync::Arc::new(super::RequestIds::new());
        let other = super::RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            assert!(seen.insert(ids.next()));
            // Another instance on the same thread must not disturb this one's block.
            other.next();
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || (0..3000).map(|_| ids.next()).collect::<Vec<_>>())
            })
            .collect();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(seen.insert(id), "an id was handed out twice");
            }
        }
    }
}
