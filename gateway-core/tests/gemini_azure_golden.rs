//! Golden tests against recorded Gemini and Azure OpenAI traffic.
//!
//! Gemini: every recorded response (JSON or SSE) goes through the translator and must keep the
//! recording's text, function calls, finish reason and token counts; every recorded request must
//! be what the translator builds from the equivalent OpenAI request; every stream, split at random
//! offsets, must translate to the same bytes. Azure: the recorded exchange's path, credential-free
//! body and usage. Expected values are derived from the recordings, never hard-coded.

use std::path::PathBuf;

use gateway_core::config::{AzureSettings, AzureUrlForm, Defaults, ProviderConfig, ProviderKind};
use gateway_core::translate::{credential_header, prepare, BodyMode, ClientApi, Target};
use gateway_core::TokenUsage;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn recorded_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recorded")
}

/// One recorded exchange.
struct Recording {
    name: String,
    url: String,
    request: Value,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Recording {
    fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }
}

fn yaml_file(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(yaml).unwrap()
}

/// The vcrpy recordings of `recorded/gemini`, or `None` when the fixtures are absent.
fn gemini_recordings() -> Option<Vec<Recording>> {
    let dir = recorded_dir().join("gemini");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED: recorded fixtures not found at {}", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut out = Vec::new();
    for file in files {
        let doc = yaml_file(&file);
        for (n, i) in doc["interactions"].as_array().unwrap().iter().enumerate() {
            let response = &i["response"];
            let body = match (&response["parsed_body"], &response["body"]["string"]) {
                (Value::Null, Value::String(s)) => s.clone().into_bytes(),
                (parsed, _) => serde_json::to_vec(parsed).unwrap(),
            };
            out.push(Recording {
                name: format!("{}#{n}", file.file_name().unwrap().to_string_lossy()),
                url: i["request"]["uri"].as_str().unwrap().to_owned(),
                request: i["request"]["parsed_body"].clone(),
                status: response["status"]["code"].as_u64().unwrap() as u16,
                content_type: response["headers"]["content-type"][0].as_str().unwrap_or("").to_owned(),
                body,
            });
        }
    }
    Some(out)
}

fn provider(kind: ProviderKind) -> ProviderConfig {
    let mut p = ProviderConfig {
        name: "p".into(),
        kind,
        cluster: "c".into(),
        credential: None,
        path_prefix: None,
        settings: Default::default(),
    };
    p.settings.azure =
        Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-12-01-preview".into()) });
    p
}

/// The recorded URL's model and method, e.g. `gemini-2.0-flash`, `streamGenerateContent?alt=sse`.
fn model_of(url: &str) -> &str {
    let after = url.split("/models/").nth(1).unwrap();
    after.split(':').next().unwrap()
}

// --- the OpenAI request a client would send for a recorded Gemini request ---------------------

fn lower_types(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if k == "type" {
                        Value::String(v.as_str().unwrap().to_ascii_lowercase())
                    } else {
                        lower_types(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_types).collect()),
        other => other.clone(),
    }
}

fn text_of(parts: &Value) -> String {
    parts.as_array().unwrap().iter().filter_map(|p| p["text"].as_str()).collect()
}

fn openai_request(recorded: &Value, stream: bool) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = recorded.get("systemInstruction") {
        messages.push(json!({"role": "system", "content": text_of(&system["parts"])}));
    }
    let mut ids: Vec<(String, String)> = Vec::new(); // (gemini call id, name) of the last model turn
    for (turn, content) in recorded["contents"].as_array().unwrap().iter().enumerate() {
        let parts = content["parts"].as_array().unwrap();
        if content["role"] == "model" {
            let calls: Vec<Value> = parts
                .iter()
                .filter_map(|p| p.get("functionCall"))
                .enumerate()
                .map(|(k, c)| {
                    let id = c["id"].as_str().map(str::to_owned).unwrap_or(format!("call_{turn}_{k}"));
                    ids.push((id.clone(), c["name"].as_str().unwrap().to_owned()));
                    json!({"id": id, "type": "function", "function": {"name": c["name"], "arguments": c["args"].to_string()}})
                })
                .collect();
            let text = text_of(&content["parts"]);
            let mut m = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
            if !calls.is_empty() {
                m["tool_calls"] = Value::Array(calls);
            }
            messages.push(m);
            continue;
        }
        for p in parts {
            if let Some(r) = p.get("functionResponse") {
                let id = r["id"].as_str().map(str::to_owned).unwrap_or_else(|| {
                    ids.iter().rev().find(|(_, n)| n == r["name"].as_str().unwrap()).unwrap().0.clone()
                });
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": r["response"].to_string()}));
            } else if let Some(t) = p["text"].as_str() {
                messages.push(json!({"role": "user", "content": t}));
            }
        }
    }
    let mut req = json!({"model": "alias", "messages": messages});
    if stream {
        req["stream"] = json!(true);
        req["stream_options"] = json!({"include_usage": true});
    }
    let config = &recorded["generationConfig"];
    if let Some(t) = config.get("temperature") {
        req["temperature"] = t.clone();
    }
    if let Some(m) = config.get("maxOutputTokens") {
        req["max_tokens"] = m.clone();
    }
    if let Some(tools) = recorded.get("tools") {
        let declarations = tools[0]["functionDeclarations"].as_array().unwrap();
        req["tools"] = Value::Array(
            declarations
                .iter()
                .map(|d| json!({"type": "function", "function": {"name": d["name"], "description": d["description"], "parameters": lower_types(&d["parameters"])}}))
                .collect(),
        );
    }
    if let Some(mode) = recorded.pointer("/toolConfig/functionCallingConfig/mode") {
        req["tool_choice"] = json!(match mode.as_str().unwrap() {
            "ANY" => "required",
            "NONE" => "none",
            _ => "auto",
        });
    }
    req
}

/// The parts of a Gemini request that decide the answer, in one canonical form: type names
/// lower-cased, client-side call ids and signatures, empty descriptions and output-modality or
/// thinking settings (which OpenAI requests cannot express) left out.
fn normalize_gemini_request(body: &Value) -> Value {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    match k.as_str() {
                        "id"
                        | "thoughtSignature"
                        | "responseModalities"
                        | "thinkingConfig"
                        | "allowedFunctionNames" => continue,
                        "description" if v == "" => continue,
                        "type" if v.is_string() => {
                            out.insert(k.clone(), Value::String(v.as_str().unwrap().to_ascii_lowercase()));
                            continue;
                        }
                        _ => {}
                    }
                    out.insert(k.clone(), strip(v));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let mut out = strip(body);
    if let Some(system) = out.get_mut("systemInstruction").and_then(Value::as_object_mut) {
        system.remove("role");
    }
    let empty_config = out.get("generationConfig").is_some_and(|c| c.as_object().is_some_and(Map::is_empty));
    if empty_config {
        out.as_object_mut().unwrap().remove("generationConfig");
    }
    out
}

// --- what a client ends up knowing ------------------------------------------------------------

#[derive(Debug, Default, PartialEq)]
struct Outcome {
    text: String,
    /// (name, arguments), in order; ids are checked separately.
    tool_calls: Vec<(String, Value)>,
    finish_reason: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
}

/// The mapping table of the issue, written out independently of the translator.
fn expected_finish(reason: &str, has_calls: bool) -> &'static str {
    match reason {
        "STOP" if has_calls => "tool_calls",
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => "content_filter",
        other => panic!("finish reason {other} missing from the test table"),
    }
}

fn expected(recording: &Recording) -> Outcome {
    let events: Vec<Value> = if recording.is_stream() {
        std::str::from_utf8(&recording.body)
            .unwrap()
            .split("\r\n\r\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        vec![serde_json::from_slice(&recording.body).unwrap()]
    };
    let mut o = Outcome::default();
    let mut usage = Map::new();
    let mut finish = None;
    for e in &events {
        for part in e["candidates"][0]["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(call) = part.get("functionCall") {
                o.tool_calls
                    .push((call["name"].as_str().unwrap().into(), call.get("args").cloned().unwrap_or(json!({}))));
            } else if part["thought"] != true {
                o.text.push_str(part["text"].as_str().unwrap_or(""));
            }
        }
        if let Some(r) = e["candidates"][0]["finishReason"].as_str() {
            finish = Some(r.to_owned());
        }
        // Later events restate the counts; members an event leaves out keep their earlier value.
        if let Some(u) = e["usageMetadata"].as_object() {
            usage.extend(u.clone());
        }
    }
    let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    o.finish_reason = finish.map(|r| expected_finish(&r, !o.tool_calls.is_empty()).to_owned());
    o.prompt_tokens = count("promptTokenCount") + count("toolUsePromptTokenCount");
    o.completion_tokens = count("candidatesTokenCount") + count("thoughtsTokenCount");
    o.cached_tokens = count("cachedContentTokenCount");
    o
}

fn outcome_from_completion(v: &Value) -> (Outcome, Vec<String>) {
    let message = &v["choices"][0]["message"];
    let calls = message["tool_calls"].as_array().cloned().unwrap_or_default();
    let outcome = Outcome {
        text: message["content"].as_str().unwrap_or("").to_owned(),
        tool_calls: calls
            .iter()
            .map(|c| {
                (
                    c["function"]["name"].as_str().unwrap().into(),
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap(),
                )
            })
            .collect(),
        finish_reason: v["choices"][0]["finish_reason"].as_str().map(Into::into),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap(),
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap(),
        cached_tokens: v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap(),
    };
    assert_eq!(v["usage"]["total_tokens"].as_u64().unwrap(), outcome.prompt_tokens + outcome.completion_tokens);
    (outcome, calls.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect())
}

fn outcome_from_stream(out: &[u8]) -> (Outcome, Vec<String>) {
    let mut o = Outcome::default();
    let mut ids = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        if let Some(u) = chunk.get("usage") {
            o.prompt_tokens = u["prompt_tokens"].as_u64().unwrap();
            o.completion_tokens = u["completion_tokens"].as_u64().unwrap();
            o.cached_tokens = u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
            assert_eq!(u["total_tokens"].as_u64().unwrap(), o.prompt_tokens + o.completion_tokens);
        }
        let Some(choice) = chunk["choices"].get(0) else { continue };
        o.text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(index, ids.len());
                ids.push(id.to_owned());
                o.tool_calls.push((call["function"]["name"].as_str().unwrap().into(), Value::Null));
                args.push(String::new());
            }
            args[index].push_str(call["function"]["arguments"].as_str().unwrap());
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            assert!(o.finish_reason.is_none(), "two finish reasons");
            o.finish_reason = Some(f.into());
        }
    }
    for (call, a) in o.tool_calls.iter_mut().zip(&args) {
        call.1 = serde_json::from_str(a).unwrap();
    }
    (o, ids)
}

fn target<'a>(p: &'a ProviderConfig, model: &'a str, d: &'a Defaults) -> Target<'a> {
    Target { provider: p, model, defaults: d, created_unix: 1_700_000_000 }
}

#[test]
fn every_gemini_recording_translates_to_what_it_says() {
    let Some(recordings) = gemini_recordings() else { return };
    let p = provider(ProviderKind::Gemini);
    let d = Defaults::default();
    let mut checked = 0;
    for r in &recordings {
        assert_eq!(r.status, 200, "{}: only successful exchanges are recorded", r.name);
        let model = model_of(&r.url);
        let request = openai_request(&r.request, r.is_stream());
        let prepared = prepare(ClientApi::OpenAiChat, &target(&p, model, &d), request.to_string().as_bytes()).unwrap();

        // The request: the recorded path and an equivalent body.
        let recorded_path = &r.url[r.url.find("/v1beta/").unwrap()..];
        assert_eq!(prepared.path, recorded_path, "{}", r.name);
        let sent: Value = serde_json::from_slice(prepared.body.as_ref().unwrap()).unwrap();
        assert_eq!(normalize_gemini_request(&sent), normalize_gemini_request(&r.request), "{}", r.name);

        // The response.
        let mut t = prepared.translator;
        let want = expected(r);
        let (got, ids) = if r.is_stream() {
            assert_eq!(t.on_headers(200, Some(&r.content_type)), BodyMode::Streaming);
            outcome_from_stream(&t.translate_chunk(&r.body, true))
        } else {
            assert_eq!(t.on_headers(200, Some(&r.content_type)), BodyMode::Buffered);
            let out = t.translate_body(&r.body).unwrap().unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["object"], "chat.completion");
            outcome_from_completion(&v)
        };
        assert_eq!(got, want, "{}", r.name);
        assert_eq!(
            t.usage(),
            TokenUsage {
                input: want.prompt_tokens,
                output: want.completion_tokens,
                cache_read: want.cached_tokens,
                cache_creation: 0,
                reasoning: want_thoughts(r),
            },
            "{}",
            r.name
        );
        // Tool call ids: unique, and the same for the same bytes.
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique.len(), want.tool_calls.len(), "{}", r.name);
        checked += 1;
    }
    assert_eq!(checked, recordings.len());
}

fn want_thoughts(r: &Recording) -> u64 {
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let mut last = 0;
    let values: Vec<Value> = if r.is_stream() {
        text.split("\r\n\r\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    for v in values {
        if let Some(t) = v["usageMetadata"]["thoughtsTokenCount"].as_u64() {
            last = t;
        }
    }
    last
}

#[test]
fn recorded_function_call_ids_round_trip_into_the_next_request() {
    let Some(recordings) = gemini_recordings() else { return };
    let p = provider(ProviderKind::Gemini);
    let d = Defaults::default();
    // The first interaction of the tool recording asks for a call; the client sends the id we
    // made up back with the result, and the translator must find the function's name through it.
    let first = recordings.iter().find(|r| r.name == "test_google_tool_output.yaml#0").expect("tool recording");
    let request = openai_request(&first.request, false);
    let mut t = prepare(ClientApi::OpenAiChat, &target(&p, "gemini-2.0-flash", &d), request.to_string().as_bytes())
        .unwrap()
        .translator;
    t.on_headers(200, Some("application/json"));
    let answer: Value = serde_json::from_slice(&t.translate_body(&first.body).unwrap().unwrap()).unwrap();
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    let mut follow_up = request.clone();
    let messages = follow_up["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "Mexico"}));
    let sent =
        prepare(ClientApi::OpenAiChat, &target(&p, "gemini-2.0-flash", &d), follow_up.to_string().as_bytes()).unwrap();
    let body: Value = serde_json::from_slice(&sent.body.unwrap()).unwrap();
    let last = body["contents"].as_array().unwrap().last().unwrap();
    assert_eq!(last["parts"][0]["functionResponse"]["name"], call["function"]["name"]);
    assert_eq!(last["parts"][0]["functionResponse"]["response"], json!({"content": "Mexico"}));
}

fn stream_recordings() -> Vec<Recording> {
    gemini_recordings().unwrap_or_default().into_iter().filter(Recording::is_stream).collect()
}

fn translate_split(r: &Recording, cuts: &[usize]) -> (Vec<u8>, TokenUsage) {
    let p = provider(ProviderKind::Gemini);
    let d = Defaults::default();
    let request = openai_request(&r.request, true);
    let mut t = prepare(ClientApi::OpenAiChat, &target(&p, model_of(&r.url), &d), request.to_string().as_bytes())
        .unwrap()
        .translator;
    t.on_headers(200, Some("text/event-stream"));
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (r.body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts {
        out.extend(t.translate_chunk(&r.body[start..cut], false));
        start = cut;
    }
    out.extend(t.translate_chunk(&r.body[start..], true));
    (out, t.usage())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn gemini_streams_translate_identically_however_split(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        let recordings = stream_recordings();
        for r in &recordings {
            let whole = translate_split(r, &[]);
            let split = translate_split(r, &cuts);
            prop_assert_eq!(&split.0, &whole.0, "{}", r.name);
            prop_assert_eq!(split.1, whole.1);
        }
    }
}

#[test]
fn gemini_streams_split_at_every_byte() {
    for r in stream_recordings() {
        let whole = translate_split(&r, &[]);
        let every: Vec<usize> = (1..r.body.len()).collect();
        assert_eq!(translate_split(&r, &every), whole, "{}", r.name);
    }
}

// --- Azure OpenAI -----------------------------------------------------------------------------

#[test]
fn azure_recording_path_body_credential_and_usage() {
    let path = recorded_dir().join("openai/azure-chat-basic.yaml");
    if !path.exists() {
        eprintln!("SKIPPED: {} not found", path.display());
        return;
    }
    let doc = yaml_file(&path);
    let interaction = &doc["interactions"][0];
    let url = interaction["request"]["url"].as_str().unwrap();
    let api_version = interaction["request"]["form"]["api-version"][0].as_str().unwrap();
    let recorded_body: Value = serde_json::from_str(interaction["request"]["body"].as_str().unwrap()).unwrap();
    let deployment = url.split("/deployments/").nth(1).unwrap().split('/').next().unwrap();

    let mut p = provider(ProviderKind::AzureOpenai);
    p.settings.azure =
        Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some(api_version.to_owned()) });
    let d = Defaults::default();
    let client_body = json!({"model": "my-alias", "messages": recorded_body["messages"]});
    let prepared =
        prepare(ClientApi::OpenAiChat, &target(&p, deployment, &d), client_body.to_string().as_bytes()).unwrap();
    let recorded_path = &url[url.find("/openai/").unwrap()..];
    assert_eq!(prepared.path, format!("{recorded_path}?api-version={api_version}"));
    let sent: Value = serde_json::from_slice(&prepared.body.unwrap()).unwrap();
    assert_eq!(sent, recorded_body);
    assert_eq!(credential_header(ProviderKind::AzureOpenai, "k"), ("api-key", "k".to_owned()));

    let response = &interaction["response"];
    let body = response["body"].as_str().unwrap().as_bytes();
    let recorded: Value = serde_json::from_slice(body).unwrap();
    let mut t = prepared.translator;
    assert_eq!(t.on_headers(response["code"].as_u64().unwrap() as u16, Some("application/json")), BodyMode::Buffered);
    // Azure's success body is OpenAI's plus content-filter annotations: returned byte for byte.
    assert_eq!(t.translate_body(body).unwrap(), None);
    let u = &recorded["usage"];
    assert_eq!(
        t.usage(),
        TokenUsage {
            input: u["prompt_tokens"].as_u64().unwrap(),
            output: u["completion_tokens"].as_u64().unwrap(),
            cache_read: u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap(),
            cache_creation: 0,
            reasoning: u["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap(),
        }
    );

    // The v1 form: same body, Azure's v1 path, model in the body.
    p.settings.azure = Some(AzureSettings { url_form: AzureUrlForm::V1, api_version: None });
    let prepared =
        prepare(ClientApi::OpenAiChat, &target(&p, deployment, &d), client_body.to_string().as_bytes()).unwrap();
    assert_eq!(prepared.path, "/openai/v1/chat/completions");
}

#[test]
fn azure_errors_reach_the_client_in_openai_shape_with_the_status() {
    let mut p = provider(ProviderKind::AzureOpenai);
    p.settings.azure =
        Some(AzureSettings { url_form: AzureUrlForm::Deployment, api_version: Some("2024-10-21".into()) });
    let d = Defaults::default();
    let body = br#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#;
    let mut t = prepare(ClientApi::OpenAiChat, &target(&p, "dep", &d), body).unwrap().translator;
    assert_eq!(t.on_headers(400, Some("application/json")), BodyMode::Buffered);
    assert_eq!(t.content_type(), Some("application/json"));
    let azure_error = json!({"error": {"message": "filtered", "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"violence": {"filtered": true, "severity": "medium"}}}}});
    let out: Value =
        serde_json::from_slice(&t.translate_body(azure_error.to_string().as_bytes()).unwrap().unwrap()).unwrap();
    let error = out["error"].as_object().unwrap();
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    assert_eq!(error["code"], "content_filter");
    assert_eq!(error["type"], "invalid_request_error");

    // OpenAI's own errors stay byte for byte.
    let mut p = provider(ProviderKind::Openai);
    p.settings.azure = None;
    let mut t = prepare(ClientApi::OpenAiChat, &target(&p, "gpt", &d), body).unwrap().translator;
    t.on_headers(400, Some("application/json"));
    assert_eq!(t.translate_body(azure_error.to_string().as_bytes()).unwrap(), None);
}
