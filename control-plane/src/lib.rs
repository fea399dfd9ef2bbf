//! Control plane of the AI gateway: stores providers, routes and virtual keys, serves the admin
//! REST API, and builds the versioned snapshots pushed to every Envoy's filter.

pub mod api;
pub mod apply;
pub mod audit;
pub mod client;
pub mod console;
pub mod credentials;
pub mod dev_issuer;
pub mod model;
pub mod openapi;
pub mod snapshot;
pub mod store;
pub mod usage;
pub mod watch;
