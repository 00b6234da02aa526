//! The REST routes' extractors: axum's `Query`, `Path` and `Bytes` under the same names, but a
//! request they refuse is answered with the documented JSON error (`{"error": {"code", "message",
//! "field"}}`) where axum answers in plain text: a query string or path parameter that does not
//! parse (400, naming the parameter), a body over the route's limit (413, `payload_too_large`) or
//! one that cannot be read (400). [`json_body`] parses a JSON body the same way for every route.

use std::ops::Deref;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use imagemcp_core::Error;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ApiError;
use imagemcp_service::images::params::{json_kind, parse_args};

/// The query string, deserialized; a parameter that does not parse is `invalid_argument` naming
/// it (`?limit=abc` → `field: "limit"`).
pub(super) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let params =
            serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(params)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "query".to_owned()
                } else {
                    path
                };
                ApiError(Error::invalid(
                    field,
                    format!("{} (in the query string)", e.into_inner()),
                ))
            })
    }
}

/// The path parameters, deserialized; one that does not decode is `invalid_argument` naming it.
pub(super) struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_owned(),
                };
                Err(ApiError(Error::invalid(field, e.body_text())))
            }
            // A route declared without the parameters its handler reads: our bug, not the caller's.
            Err(e) => Err(ApiError(Error::internal(e.body_text()))),
        }
    }
}

/// The request body's bytes (axum's `Bytes`, which it dereferences to).
pub(super) struct Bytes(pub axum::body::Bytes);

impl Deref for Bytes {
    type Target = axum::body::Bytes;

    fn deref(&self) -> &axum::body::Bytes {
        &self.0
    }
}

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Bytes)
            .map_err(body_rejection)
    }
}

/// What is wrong with a body axum could not take: its status (413 over the route's limit, else
/// 400) and why, in words that follow "the request body".
pub(super) fn body_problem(rejection: &BytesRejection) -> (StatusCode, String) {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "is larger than this route accepts".to_owned(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            format!("could not be read: {}", rejection.body_text()),
        ),
    }
}

/// A body axum could not take, as the REST error (`payload_too_large` over the limit).
fn body_rejection(rejection: BytesRejection) -> Response {
    let (status, why) = body_problem(&rejection);
    let mut body = imagemcp_service::error::rest_body(&Error::invalid("body", why));
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        body["error"]["code"] = json!("payload_too_large");
    }
    (status, axum::Json(body)).into_response()
}

/// A JSON body parsed into `T` so that errors name the field: an empty body reads as `{}`, and
/// anything but a JSON object is refused as the body.
pub(super) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return parse_args(Value::Null);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Error::invalid(
            "body",
            format!("must be a JSON object, not {}", json_kind(&value)),
        ));
    }
    parse_args(value)
}

/// The answer to a request for a route that does not exist.
pub(super) async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError(Error::not_found(format!("route {method} {}", uri.path())))
}

/// The answer to a method a route does not have (axum adds the `Allow` header).
pub(super) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let error = Error::invalid(
        "method",
        format!("{method} is not allowed on {}", uri.path()),
    );
    let mut body = imagemcp_service::error::rest_body(&error);
    body["error"]["code"] = json!("method_not_allowed");
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
