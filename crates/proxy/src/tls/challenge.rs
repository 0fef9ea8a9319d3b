//! Pending http-01 challenge responses, shared between the ACME client and the plain-HTTP
//! listener that answers `/.well-known/acme-challenge/{token}`.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The path prefix under which the ACME server fetches http-01 key authorizations.
pub const CHALLENGE_PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// Tokens and their key authorizations for the http-01 challenges in flight.
///
/// Cloning is cheap and every clone sees the same tokens, so the ACME client can insert a
/// token while the HTTP listener, on another task, answers for it.
#[derive(Clone, Default)]
pub struct Challenges {
    tokens: Arc<RwLock<HashMap<String, String>>>,
}

impl Challenges {
    /// Publishes `key_authorization` as the response for `token`.
    pub fn insert(&self, token: String, key_authorization: String) {
        // A poisoned lock only means another thread panicked while holding it; the map itself
        // is always in a consistent state, so serving challenges carries on.
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, key_authorization);
    }

    /// Withdraws `token`; later requests for it get no answer.
    pub fn remove(&self, token: &str) {
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// The key authorization to answer for `token`, if a challenge for it is in flight.
    pub fn get(&self, token: &str) -> Option<String> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// The key authorization to answer for a request path such as
    /// `/.well-known/acme-challenge/{token}`, or `None` if the path is not a challenge path or
    /// the token is unknown.
    pub fn response_for_path(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(CHALLENGE_PATH_PREFIX)?;
        if token.is_empty() || token.contains('/') {
            return None;
        }
        self.get(token)
    }

    /// How many challenges are in flight; the ACME client removes its tokens when it is done.
    pub fn len(&self) -> usize {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no challenge is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key authorizations are not secret, but tokens are noise in logs; the count is what
        // helps when debugging.
        f.debug_struct("Challenges")
            .field("pending", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_tokens() {
        let a = Challenges::default();
        let b = a.clone();
        a.insert("tok".into(), "tok.thumb".into());
        assert_eq!(b.get("tok").as_deref(), Some("tok.thumb"));
        assert_eq!(
            b.response_for_path("/.well-known/acme-challenge/tok")
                .as_deref(),
            Some("tok.thumb")
        );
        assert_eq!(b.response_for_path("/.well-known/acme-challenge/"), None);
        assert_eq!(b.response_for_path("/other/tok"), None);
        b.remove("tok");
        assert!(a.get("tok").is_none());
        assert!(a.is_empty());
    }
}

impl crate::forward::ChallengeResponder for Challenges {
    fn respond(&self, token: &str) -> Option<String> {
        self.get(token)
    }
}
