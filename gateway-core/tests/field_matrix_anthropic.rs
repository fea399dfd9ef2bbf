//! The Anthropic Messages part of the field matrix (`anthropic_messages` in
//! `docs/field-matrix.json`, rendered in `docs/field-matrix.md`); the checks are in `matrix`.

mod matrix;

use gateway_core::translate::ClientApi;
use matrix::Client;

const ANTHROPIC_MESSAGES: Client = Client {
    member: "anthropic_messages",
    api: ClientApi::AnthropicMessages,
    heading: "Anthropic Messages",
    error_body: gateway_core::GatewayError::to_anthropic_body,
    min_entries: 200,
    min_dropped_names: 20,
};

#[test]
fn anthropic_messages_fields_behave_as_the_matrix_says() {
    matrix::check_fields(&ANTHROPIC_MESSAGES);
}

#[test]
fn the_document_says_what_the_json_says() {
    matrix::check_document(&ANTHROPIC_MESSAGES);
}
