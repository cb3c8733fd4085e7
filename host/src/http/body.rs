//! Reading a POST body as JSON (server.md §2.4.13): `application/json` only, gzip/deflate
//! accepted, at most `httpServer.options.maxMessageSize` bytes, object or array at the top.

use std::io::Read;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, body::Incoming, header};

use super::text;

/// The body as JSON, or the error response to send.
pub async fn read_json(
    request: Request<Incoming>,
    limit: u64,
) -> Result<serde_json::Value, Response<Full<Bytes>>> {
    let headers = request.headers();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid \"Content-Type\" header. Supported media types: \"application/json\"",
        ));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let failed = |reason: &str| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Failed to parse body of request: {reason}"),
        )
    };
    let raw = Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map_err(|_| failed("request entity too large"))?
        .to_bytes();
    let decoded = match encoding.as_deref() {
        None | Some("identity") => raw.to_vec(),
        Some(kind @ ("gzip" | "deflate")) => {
            inflate(kind, &raw, limit).map_err(|reason| failed(&reason))?
        }
        Some(other) => return Err(failed(&format!("unsupported content encoding {other}"))),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&decoded).map_err(|error| failed(&error.to_string()))?;
    if !(value.is_object() || value.is_array()) {
        return Err(failed("the body must be a JSON object or array"));
    }
    Ok(value)
}

/// Decompresses, refusing to grow beyond `limit` (a small gzip bomb stays small).
fn inflate(kind: &str, raw: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read> = if kind == "gzip" {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else {
        Box::new(flate2::read::ZlibDecoder::new(raw))
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| format!("invalid {kind} body: {error}"))?;
    if out.len() > limit {
        return Err("request entity too large".into());
    }
    Ok(out)
}
