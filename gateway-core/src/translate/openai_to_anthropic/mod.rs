//! OpenAI Chat Completions clients served by Anthropic's Messages API.

use super::{PreparedRequest, Target};
use crate::error::{ErrorKind, GatewayError};

pub fn prepare(_body: &[u8], _target: &Target<'_>) -> Result<PreparedRequest, GatewayError> {
    Err(GatewayError::new(ErrorKind::Internal, "OpenAI to Anthropic translation is being built"))
}
