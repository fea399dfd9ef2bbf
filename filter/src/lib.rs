//! proxy-wasm adapter (being built).
