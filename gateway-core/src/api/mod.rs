//! Wire types of each API the gateway speaks, one module per API, with no conversion logic.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
