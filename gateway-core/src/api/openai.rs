//! OpenAI wire types.
