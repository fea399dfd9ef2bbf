//! Anthropic wire types.
