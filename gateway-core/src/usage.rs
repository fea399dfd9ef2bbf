//! Token usage as every translator reports it, whatever the provider called the fields.

use serde::{Deserialize, Serialize};

/// Tokens consumed by one upstream call. `input` counts every prompt token, cached ones included,
/// so that `input + output` is what the caller was billed for in tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from the provider's cache (a subset of `input`).
    pub cache_read: u64,
    /// Prompt tokens written to the provider's cache (a subset of `input`).
    pub cache_creation: u64,
    /// Output tokens spent on reasoning, where the provider reports them (a subset of `output`).
    pub reasoning: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}
