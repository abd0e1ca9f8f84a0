//! OpenWhisk's shapes to lambdaroute's and back: action names to lambda names, parameters to
//! a call's `input`/`datain`, a call's answer to a JSON result, activation records and error
//! bodies. Pure functions: the handlers in the module above do the I/O.

use base64::Engine as _;
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse};
use serde_json::{Map, Value, json};

/// The version OpenWhisk gives entities that were never updated.
pub const VERSION: &str = "0.0.1";

/// Longest action name (OpenWhisk's entity name limit).
const MAX_NAME: usize = 256;

/// The lambda an action names: `{action}` (or `{package}/{action}`) in the caller's own
/// namespace (`_` stands for it), `/{namespace}/{action}` in another one (only with
/// `--no-auth`, where every namespace is open).
pub fn lambda_name(own_namespace: &str, namespace: &str, action: &str) -> String {
    if namespace == "_" || namespace == own_namespace {
        action.to_owned()
    } else {
        format!("/{namespace}/{action}")
    }
}

/// The namespace (`ns` or `ns/package`) and the action's short name a lambda is shown as in
/// `namespace`, or `None` when the lambda belongs to another namespace.
pub fn action_of_lambda(
    own_namespace: &str,
    namespace: &str,
    lambda: &str,
) -> Option<(String, String)> {
    let resolved = if namespace == "_" {
        own_namespace
    } else {
        namespace
    };
    let local = if let Some(rest) = lambda.strip_prefix('/') {
        let (ns, action) = rest.split_once('/')?;
        if ns != resolved || resolved == own_namespace {
            return None;
        }
        action
    } else {
        if resolved != own_namespace {
            return None;
        }
        lambda
    };
    match local.split_once('/') {
        Some((package, action)) if !package.is_empty() && !action.contains('/') => {
            Some((format!("{resolved}/{package}"), action.to_owned()))
        }
        Some(_) => None,
        None if !local.is_empty() => Some((resolved.to_owned(), local.to_owned())),
        None => None,
    }
}

/// Checks an action name from the URL (`action` or `package/action`); the error says why.
pub fn check_action_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "The action name must be 1 to {MAX_NAME} characters long."
        ));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 || parts.iter().any(|p| p.is_empty() || p.starts_with(' ')) {
        return Err(format!(
            "The action name '{}' is not valid: use `action` or `package/action`.",
            lambdaroute_core::text::clip(name)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || "_@.- /".contains(*c)))
    {
        return Err(format!(
            "The action name '{}' has the character '{c}': use letters, digits, `_`, `@`, `.`, `-` and spaces.",
            lambdaroute_core::text::clip(name)
        ));
    }
    Ok(())
}

/// A call of `lambda` with the JSON `params` of an invocation: `datain` (a base64 string) is
/// the call's binary input; the rest is its `input`: empty for `{}`, the string itself for
/// `{"input": "text"}`, else the JSON text of the object (what an OpenWhisk back end
/// (`lambdaroute computer --executor http --openwhisk`) turns back into parameters).
pub fn request(lambda: &str, params: Value) -> Result<LambdaRequest, String> {
    let mut params = match params {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            return Err(format!(
                "The request content was malformed: the parameters must be a JSON object, not {}.",
                kind(&other)
            ));
        }
    };
    let datain = match params.remove("datain") {
        None => Vec::new(),
        Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| {
                format!(
                    "The request content was malformed: parameter `datain` is not base64 ({e}): give the binary input base64-encoded (standard alphabet, padded)."
                )
            })?,
        Some(other) => {
            return Err(format!(
                "The request content was malformed: parameter `datain` must be a base64 string, not {}.",
                kind(&other)
            ));
        }
    };
    let input = match params.len() {
        0 => String::new(),
        1 if params.get("input").is_some_and(Value::is_string) => match params.remove("input") {
            Some(Value::String(text)) => text,
            _ => String::new(),
        },
        _ => Value::Object(params).to_string(),
    };
    Ok(LambdaRequest {
        name: lambda.to_owned(),
        input,
        datain,
        ..Default::default()
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON result of a successful call: its `output` when that is a JSON object, else
/// `{"output": text}` (nothing for an empty output); `dataout` base64-encoded under `dataout`.
pub fn result(response: &LambdaResponse) -> Value {
    let mut object = match serde_json::from_str::<Value>(&response.output) {
        Ok(Value::Object(map)) => map,
        _ if response.output.is_empty() => Map::new(),
        _ => {
            let mut map = Map::new();
            map.insert("output".into(), Value::String(response.output.clone()));
            map
        }
    };
    if !response.dataout.is_empty() {
        object.insert(
            "dataout".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(&response.dataout)),
        );
    }
    Value::Object(object)
}

/// How an activation ended, as OpenWhisk's `response.status` and `statusCode` say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function answered (`retcode` `OK`).
    Success,
    /// The function (the computer) answered with an error `retcode`.
    ApplicationError,
    /// The call found no lambda, or the router refused it.
    DeveloperError,
    /// The router could not be reached or did not answer in time.
    InternalError,
}

impl Outcome {
    /// OpenWhisk's `response.status`.
    pub fn status(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ApplicationError => "application error",
            Outcome::DeveloperError => "action developer error",
            Outcome::InternalError => "whisk internal error",
        }
    }

    /// OpenWhisk's `response.statusCode`.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::ApplicationError => 1,
            Outcome::DeveloperError => 2,
            Outcome::InternalError => 3,
        }
    }
}

/// What the gateway knows of a finished call, to build its activation record.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The activation's id.
    pub id: String,
    /// Its namespace (resolved: never `_`), with the package if any (`guest/pkg`).
    pub namespace: String,
    /// The action's short name.
    pub name: String,
    /// Who called (the key's namespace).
    pub subject: String,
    /// Start and end, ms since the Unix epoch.
    pub start: u64,
    /// End, ms since the Unix epoch.
    pub end: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The result (`{"error": ...}` for an error).
    pub result: Value,
    /// The answer's executing computer, hops, processing time and load, when there was one.
    pub answer: Option<LambdaResponse>,
}

/// The activation record of a finished call, as OpenWhisk answers `GET .../activations/{id}`.
pub fn activation(finished: &Finished) -> Value {
    let path = format!("{}/{}", finished.namespace, finished.name);
    let mut annotations = vec![
        json!({"key": "path", "value": path}),
        json!({"key": "kind", "value": "lambdaroute"}),
        json!({"key": "waitTime", "value": 0}),
    ];
    let mut log = format!(
        "{} stdout: lambdaroute: {} {}",
        rfc3339_ms(finished.end),
        path,
        finished.outcome.status()
    );
    if let Some(answer) = &finished.answer {
        annotations.extend([
            json!({"key": "responder", "value": answer.responder}),
            json!({"key": "hops", "value": answer.hops}),
            json!({"key": "ptime", "value": answer.ptime}),
            json!({"key": "load1", "value": answer.load1}),
        ]);
        log.push_str(&format!(
            " (responder {}, hops {}, ptime {} ms, retcode {})",
            if answer.responder.is_empty() {
                "unknown"
            } else {
                &answer.responder
            },
            answer.hops,
            answer.ptime,
            lambdaroute_core::text::clip(&answer.retcode)
        ));
    }
    json!({
        "namespace": finished.namespace,
        "name": finished.name,
        "version": VERSION,
        "subject": finished.subject,
        "activationId": finished.id,
        "start": finished.start,
        "end": finished.end,
        "duration": finished.end.saturating_sub(finished.start),
        "statusCode": finished.outcome.code(),
        "response": {
            "status": finished.outcome.status(),
            "statusCode": finished.outcome.code(),
            "success": finished.outcome == Outcome::Success,
            "result": finished.result,
        },
        "logs": [log],
        "annotations": annotations,
        "publish": false,
    })
}

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (OpenWhisk's log timestamps).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// OpenWhisk's error body: `{"error": ..., "code": <transaction id>}`.
pub fn error_body(message: &str, code: &str) -> Value {
    json!({"error": message, "code": code})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_lambdas_and_back() {
        assert_eq!(lambda_name("guest", "_", "hello"), "hello");
        assert_eq!(lambda_name("guest", "guest", "pkg/hello"), "pkg/hello");
        assert_eq!(lambda_name("guest", "other", "hello"), "/other/hello");
        assert_eq!(
            action_of_lambda("guest", "_", "hello"),
            Some(("guest".into(), "hello".into()))
        );
        assert_eq!(
            action_of_lambda("guest", "guest", "pkg/hello"),
            Some(("guest/pkg".into(), "hello".into()))
        );
        assert_eq!(action_of_lambda("guest", "_", "/other/hello"), None);
        assert_eq!(
            action_of_lambda("guest", "other", "/other/hello"),
            Some(("other".into(), "hello".into()))
        );
        assert_eq!(action_of_lambda("guest", "other", "hello"), None);
        assert_eq!(action_of_lambda("guest", "_", "a/b/c"), None);
        assert!(check_action_name("hello").is_ok());
        assert!(check_action_name("pkg/hello-1.x").is_ok());
        assert!(check_action_name("a/b/c").is_err());
        assert!(check_action_name("").is_err());
        assert!(check_action_name("x$").unwrap_err().contains("'$'"));
    }

    #[test]
    fn parameters_become_input_and_datain() {
        let r = request("f", json!({})).unwrap();
        assert_eq!((r.name.as_str(), r.input.as_str()), ("f", ""));
        let r = request("f", json!({"input": "hello"})).unwrap();
        assert_eq!(r.input, "hello");
        let r = request("f", json!({"name": "x", "n": 1})).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&r.input).unwrap(),
            json!({"name": "x", "n": 1})
        );
        let r = request("f", json!({"datain": "AAEC"})).unwrap();
        assert_eq!(
            (r.input.as_str(), r.datain.as_slice()),
            ("", &[0u8, 1, 2][..])
        );
        assert!(
            request("f", json!({"datain": "!"}))
                .unwrap_err()
                .contains("`datain` is not base64")
        );
        assert!(
            request("f", json!({"datain": 3}))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            request("f", json!([1]))
                .unwrap_err()
                .contains("not an array")
        );
    }

    #[test]
    fn answers_become_json_results() {
        let answer = |output: &str, dataout: &[u8]| LambdaResponse {
            output: output.into(),
            dataout: dataout.to_vec(),
            ..Default::default()
        };
        assert_eq!(result(&answer(r#"{"a":1}"#, b"")), json!({"a": 1}));
        assert_eq!(result(&answer("hello", b"")), json!({"output": "hello"}));
        assert_eq!(result(&answer("[1]", b"")), json!({"output": "[1]"}));
        assert_eq!(result(&answer("", b"")), json!({}));
        assert_eq!(result(&answer("", &[0, 1, 2])), json!({"dataout": "AAEC"}));
    }

    #[test]
    fn activation_records_have_openwhisk_fields() {
        let record = activation(&Finished {
            id: "abc".into(),
            namespace: "guest".into(),
            name: "hello".into(),
            subject: "guest".into(),
            start: 1_700_000_000_000,
            end: 1_700_000_000_012,
            outcome: Outcome::ApplicationError,
            result: json!({"error": "Error: boom"}),
            answer: Some(LambdaResponse {
                retcode: "Error: boom".into(),
                responder: "127.0.0.1:10000".into(),
                hops: 2,
                ..Default::default()
            }),
        });
        assert_eq!(record["duration"], 12);
        assert_eq!(record["response"]["status"], "application error");
        assert_eq!(record["response"]["statusCode"], 1);
        assert_eq!(record["response"]["success"], false);
        assert_eq!(record["annotations"][0]["value"], "guest/hello");
        let log = record["logs"][0].as_str().unwrap();
        assert!(log.starts_with("2023-11-14T22:13:20.012Z stdout: lambdaroute: guest/hello application error (responder 127.0.0.1:10000, hops 2"), "{log}");
    }

    #[test]
    fn timestamps_are_civil_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_825_600_001), "2000-02-29T12:00:00.001Z");
    }
}
