//! The small answers of the admin API's change endpoints, and its error body.

use serde::{Deserialize, Serialize};

/// The answer to a change that has nothing else to say: `{"ok": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub ok: bool,
}

impl Done {
    pub fn new() -> Done {
        Done { ok: true }
    }
}

impl Default for Done {
    fn default() -> Done {
        Done::new()
    }
}

/// The answer to `POST /routes/NAME/sets/ID/remove`, after the drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Requests or tunnels still open on the set when the drain timeout passed, closed then.
    pub closed_at_deadline: usize,
}

/// Every refusal, with a status that is not 2xx: `{"error": "what to do"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
