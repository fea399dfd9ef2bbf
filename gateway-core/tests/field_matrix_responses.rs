//! The OpenAI Responses API part of the field matrix (`openai_responses` in
//! `docs/field-matrix.json`, rendered in `docs/field-matrix.md`); the checks are in `matrix`.

mod matrix;

use gateway_core::translate::ClientApi;
use matrix::Client;

const OPENAI_RESPONSES: Client = Client {
    member: "openai_responses",
    api: ClientApi::OpenAiResponses,
    heading: "OpenAI Responses",
    error_body: gateway_core::GatewayError::to_openai_body,
    min_entries: 120,
    min_dropped_names: 30,
};

#[test]
fn openai_responses_fields_behave_as_the_matrix_says() {
    matrix::check_fields(&OPENAI_RESPONSES);
}

#[test]
fn the_document_says_what_the_json_says() {
    matrix::check_document(&OPENAI_RESPONSES);
}
