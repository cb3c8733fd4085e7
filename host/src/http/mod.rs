//! The one HTTP listener every endpoint shares (server.md §2.4.13): WebSocket upgrades at each
//! WebSocket endpoint's `urlPath`, the health check, the `http` endpoint's JIF API, CORS.

mod accept;
mod api;
mod body;
pub mod jif;

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::{
    config::{EndpointKind, EndpointOptions, HttpEndpointOptions, WebSocketEndpointOptions},
    connection::websocket,
    server::Server,
};

/// Which endpoint serves which path.
struct Routes {
    /// (urlPath, options) per WebSocket endpoint.
    websockets: Vec<(String, Arc<WebSocketEndpointOptions>)>,
    /// `httpServer.options.healthCheckPath`.
    health_check_path: String,
    /// The `http` endpoint's options, when it is configured.
    api: Option<HttpEndpointOptions>,
}

/// Binds the configured address; the error names it.
pub async fn bind(server: &Server) -> Result<TcpListener, String> {
    let options = &server.config.http_server_options;
    let address = format!("{}:{}", options.host, options.port);
    TcpListener::bind(&address)
        .await
        .map_err(|error| format!("httpServer.options: cannot listen on {address}: {error}"))
}

/// Accepts connections until shutdown.
pub async fn serve(server: Arc<Server>, listener: TcpListener) {
    let routes = Arc::new(Routes {
        websockets: server
            .config
            .connection_endpoints
            .iter()
            .filter_map(|endpoint| match &endpoint.options {
                // ws-text and ws-json share the option type but not the protocol: not served.
                EndpointOptions::WebSocket(options) if endpoint.kind == EndpointKind::WsBinary => {
                    Some((options.url_path.clone(), Arc::new(options.clone())))
                }
                _ => None,
            })
            .collect(),
        health_check_path: server.config.http_server_options.health_check_path.clone(),
        api: server
            .config
            .connection_endpoints
            .iter()
            .find_map(|endpoint| match &endpoint.options {
                EndpointOptions::Http(options) => Some(options.clone()),
                _ => None,
            }),
    });
    let mut acceptor = accept::Acceptor::new(listener);
    if let Ok(address) = acceptor.local_addr() {
        tracing::info!(
            event = "INFO",
            "Listening for http connections on {address}"
        );
        tracing::info!(
            event = "INFO",
            "Listening for health checks on path {}",
            routes.health_check_path
        );
    }
    let mut shutdown = server.shutdown_signal();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = acceptor.accept() => accepted,
            _ = shutdown.recv() => return,
        };
        let _ = stream.set_nodelay(true);
        let (server, routes) = (server.clone(), routes.clone());
        tokio::spawn(async move {
            let service =
                service_fn(move |request| respond(server.clone(), routes.clone(), peer, request));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!("http connection from {peer}: {error}");
            }
        });
    }
}

/// A plain-text response: `<message>\r\n\r\n` (server.md §2.4.13 encoding).
fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{}\r\n\r\n", body.into()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A JSON success response.
fn json_response(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{value}\r\n\r\n"))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
const ALLOWED_HEADERS: [&str; 4] = [
    "X-Requested-With",
    "X-HTTP-Method-Override",
    "Content-Type",
    "Accept",
];

async fn respond(
    server: Arc<Server>,
    routes: Arc<Routes>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    // Match on the path alone: the client may append a query string (protocol.md §1.1).
    if let Some((_, options)) = routes
        .websockets
        .iter()
        .find(|(url_path, _)| url_path == path)
    {
        return Ok(upgrade(server, options.clone(), peer, request));
    }
    let options = &server.config.http_server_options;
    let cors = match cors_origin(options, &request) {
        Ok(cors) => cors,
        Err(response) => return Ok(response),
    };
    let mut response = route(&server, &routes, request).await;
    let headers = response.headers_mut();
    match cors {
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Some(origin) => {
            if let Ok(origin) = HeaderValue::from_str(&origin) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    Ok(response)
}

/// CORS (server.md §2.4.13): `Ok(None)` = every origin allowed, `Ok(Some(origin))` = this one.
#[allow(clippy::result_large_err)]
fn cors_origin(
    options: &crate::config::HttpServerOptions,
    request: &Request<Incoming>,
) -> Result<Option<String>, Response<Full<Bytes>>> {
    if options.allow_all_origins {
        return Ok(None);
    }
    let headers = request.headers();
    if let Some(host_url) = &options.host_url {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if host != host_url {
            return Err(text(StatusCode::FORBIDDEN, "Forbidden Host."));
        }
    }
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|o| o.to_str().ok())
        .ok_or_else(|| {
            text(
                StatusCode::FORBIDDEN,
                "CORS is configured for this. All requests must set a valid \"Origin\" header.",
            )
        })?;
    if !options.origins.iter().any(|allowed| allowed == origin) {
        return Err(text(
            StatusCode::FORBIDDEN,
            format!("Origin \"{origin}\" is forbidden."),
        ));
    }
    Ok(Some(origin.to_owned()))
}

/// Registered prefixes are tried longest-name-first (reverse lexicographic, so `/api/auth`
/// before `/api`); the first `starts_with` wins.
async fn route(
    server: &Arc<Server>,
    routes: &Routes,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    match request.method().as_str() {
        "OPTIONS" => preflight(&request),
        "GET" => {
            if path.starts_with(&routes.health_check_path) {
                return Response::new(Full::new(Bytes::new()));
            }
            match &routes.api {
                Some(api) if path.starts_with(&api.get_path) => text(
                    StatusCode::BAD_REQUEST,
                    "Reading records via HTTP GET is not yet implemented, please use a post request instead.",
                ),
                _ => text(StatusCode::NOT_FOUND, "Endpoint not found."),
            }
        }
        "POST" => {
            let Some(api) = &routes.api else {
                return text(StatusCode::NOT_FOUND, "Endpoint not found.");
            };
            let is_auth = api.enable_auth_endpoint && path.starts_with(&api.auth_path);
            if !is_auth && !path.starts_with(&api.post_path) {
                return text(StatusCode::NOT_FOUND, "Endpoint not found.");
            }
            let connection_data = serde_json::json!({
                "headers": header_map(&request),
                "url": request.uri().to_string(),
            });
            let body =
                match body::read_json(request, server.config.http_server_options.max_message_size)
                    .await
                {
                    Ok(body) => body,
                    Err(response) => return response,
                };
            let result = if is_auth {
                api::auth(server, api, &connection_data, body).await
            } else {
                api::batch(server, api, &connection_data, body).await
            };
            match result {
                Ok(value) => json_response(&value),
                Err((status, message)) => text(status, message),
            }
        }
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Unsupported method. Supported methods: {ALLOWED_METHODS}"),
        ),
    }
}

/// Answers a CORS preflight.
fn preflight(request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let Some(method) = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "Missing header \"Access-Control-Request-Method\".",
        );
    };
    if !["GET", "POST", "OPTIONS"].contains(&method) {
        return text(
            StatusCode::FORBIDDEN,
            format!("Method {method} is forbidden. Supported methods: {ALLOWED_METHODS}"),
        );
    }
    let Some(requested) = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|h| h.to_str().ok())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "Missing header \"Access-Control-Request-Headers\".",
        );
    };
    for name in requested
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        if !ALLOWED_HEADERS
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
        {
            return text(
                StatusCode::FORBIDDEN,
                format!(
                    "Header {name} is forbidden. Supported headers: {}",
                    ALLOWED_HEADERS.join(", ")
                ),
            );
        }
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("X-Requested-With, X-HTTP-Method-Override, Content-Type, Accept"),
    );
    response
}

fn header_map(request: &Request<Incoming>) -> serde_json::Map<String, serde_json::Value> {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.into())))
        .collect()
}

/// Answers a WebSocket upgrade and hands the socket to the endpoint.
fn upgrade(
    server: Arc<Server>,
    options: Arc<WebSocketEndpointOptions>,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let headers = request.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade)
    else {
        return text(StatusCode::BAD_REQUEST, "Expected a WebSocket upgrade.");
    };
    let accept = derive_accept_key(key.as_bytes());
    // Boxed: the connection's task keeps only a pointer until the login drops it.
    let handshake = Box::new(handshake_data(&request, peer));
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            // Take the socket back from hyper: the transport reads and writes it directly.
            Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let stream = parts.io.into_inner();
                    // A task of its own: this one (and what it holds) ends here.
                    tokio::spawn(websocket::serve(
                        server,
                        stream,
                        parts.read_buf,
                        options,
                        handshake,
                    ));
                }
                Err(_) => tracing::error!("websocket upgrade from {peer}: not a TCP stream"),
            },
            Err(error) => tracing::debug!("websocket upgrade from {peer} failed: {error}"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// `{remoteAddress, headers, referer}` for authentication (server.md §2.4.1); the address is
/// `X-Forwarded-For` when a proxy set it.
fn handshake_data(request: &Request<Incoming>, peer: SocketAddr) -> serde_json::Value {
    let headers = header_map(request);
    let remote_address = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| peer.ip().to_string());
    let referer = request
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok());
    serde_json::json!({ "remoteAddress": remote_address, "headers": headers, "referer": referer })
}
