//! Pure logic of the AI gateway: wire types per API, conversions per direction, the streaming
//! framer, usage accounting, the config schema and the routing decision. No proxy-wasm and no
//! I/O, so everything here is unit-tested natively, fuzzed, and reusable outside Envoy.

pub mod accounting;
pub mod api;
pub mod aws;
mod b64;
pub mod codec;
pub mod config;
pub mod conversation;
pub mod error;
pub mod jwt;
pub mod pricing;
pub mod ratelimit;
pub mod routing;
pub mod snapshot;
pub mod sse;
pub mod translate;
pub mod usage;
pub mod validate;

pub use config::{GatewayConfig, ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
pub use error::{ErrorKind, GatewayError};
pub use routing::{RoutingTable, Selection};
pub use translate::{ClientApi, PreparedRequest, RequestFacts, ResponseTranslator};
pub use usage::TokenUsage;
