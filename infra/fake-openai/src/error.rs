//! OpenAI's error envelope, `{"error":{"message","type","param","code"}}`, as an axum response, with
//! constructors for the validation errors the real API returns.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One error response: status, the four envelope fields, optional extra keys inside `error` (such as
/// `moderation_details`) and extra headers (such as `retry-after`).
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) kind: String,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<String>,
    /// Boxed because most errors have none, and a small error keeps every `Result` small.
    pub(crate) extras: Option<Box<Extras>>,
}

/// The rarer parts of an error response.
#[derive(Clone, Debug, Default)]
pub(crate) struct Extras {
    /// Extra keys inside `error`.
    pub(crate) body: Vec<(String, Value)>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: kind.to_owned(),
            param: None,
            code: None,
            extras: None,
        }
    }

    pub(crate) fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub(crate) fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub(crate) fn extra(mut self, key: &str, value: Value) -> Self {
        self.extras
            .get_or_insert_default()
            .body
            .push((key.to_owned(), value));
        self
    }

    #[cfg(test)]
    pub(crate) fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        self.extras.as_ref().map_or(&[], |e| &e.headers)
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.extras
                .get_or_insert_default()
                .headers
                .push((HeaderName::from_static(name), v));
        }
        self
    }

    /// A 400 `invalid_request_error` naming `param`.
    pub(crate) fn invalid(param: &str, code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .param(param)
            .code(code)
    }

    /// A value outside the field's allowed set.
    pub(crate) fn invalid_value(param: &str, message: impl Into<String>) -> Self {
        Self::invalid(param, "invalid_value", message)
    }

    pub(crate) fn missing(param: &str) -> Self {
        Self::invalid(
            param,
            "missing_required_parameter",
            format!("Missing required parameter: '{param}'."),
        )
    }

    pub(crate) fn unknown_parameter(param: &str) -> Self {
        Self::invalid(
            param,
            "unknown_parameter",
            format!("Unknown parameter: '{param}'."),
        )
    }

    pub(crate) fn invalid_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::invalid(
            param,
            "invalid_type",
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                type_name(got)
            ),
        )
    }

    /// The body could not be parsed at all.
    pub(crate) fn unparseable_body(why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.) ({why})"
            ),
        )
    }

    /// A model that has been shut down, as the real API reports it.
    pub(crate) fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .param("model")
        .code("model_not_found")
    }

    /// Maps one of core's validation errors (from the shared catalog) onto the wire.
    pub(crate) fn from_core(err: imagemcp_core::Error) -> Self {
        match err {
            imagemcp_core::Error::Invalid { field, reason } => {
                Self::invalid_value(&field, format!("Invalid value for '{field}': {reason}."))
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                other.to_string(),
            ),
        }
    }

    pub(crate) fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        });
        if let (Some(map), Some(extras)) = (error.as_object_mut(), &self.extras) {
            for (k, v) in &extras.body {
                map.insert(k.clone(), v.clone());
            }
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.extras.map(|e| e.headers).unwrap_or_default() {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The JSON type name OpenAI's validation messages use.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_all_four_keys_even_when_null() {
        let body = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "boom").body();
        let err = body["error"].as_object().unwrap();
        for key in ["message", "type", "param", "code"] {
            assert!(err.contains_key(key), "missing {key}");
        }
        assert!(err["param"].is_null());
    }

    #[test]
    fn core_errors_keep_their_field() {
        let e = ApiError::from_core(imagemcp_core::Error::invalid("size", "too big"));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("size"));
        assert_eq!(e.kind, "invalid_request_error");
    }
}
