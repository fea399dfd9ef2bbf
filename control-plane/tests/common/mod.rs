//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod audit_secrets;
pub mod conformance;
pub mod logs;
pub mod server;
pub mod usage_flow;
