//! The one HTTP listener every endpoint shares (server.md §2.4.13): WebSocket upgrades at each
//! WebSocket endpoint's `urlPath`, the health check, and 404 for the rest.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};

use crate::{
    config::{EndpointOptions, WebSocketEndpointOptions},
    connection::websocket,
    server::Server,
};

/// Which WebSocket endpoint listens on which path.
struct Routes {
    /// (urlPath, options) per WebSocket endpoint.
    websockets: Vec<(String, Arc<WebSocketEndpointOptions>)>,
    /// `httpServer.options.healthCheckPath`.
    health_check_path: String,
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
                EndpointOptions::WebSocket(options) => {
                    Some((options.url_path.clone(), Arc::new(options.clone())))
                }
                _ => None,
            })
            .collect(),
        health_check_path: server.config.http_server_options.health_check_path.clone(),
    });
    if let Ok(address) = listener.local_addr() {
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
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.recv() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors (EMFILE) and similar: refuse for a moment rather
                // than spin; existing connections keep being served.
                tracing::error!(
                    event = "CONNECTION_ERROR",
                    "cannot accept connections: {error}; retrying in 100 ms"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
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

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{body}\r\n\r\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

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
    if request.method() == hyper::Method::GET && path.starts_with(&routes.health_check_path) {
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    Ok(text(StatusCode::NOT_FOUND, "Endpoint not found."))
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
    let handshake = handshake_data(&request, peer);
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let config = websocket::websocket_config(&options);
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                websocket::serve(server, socket, options, handshake).await;
            }
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
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.into())))
        .collect();
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
