//! HTTP endpoints: HTTP-FLV play, the stream API, Prometheus metrics and
//! the web player page.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::{BufMut, Bytes, BytesMut};
use rts_auth::urls::Protocol as UrlProtocol;
use rts_flv::{Tag, TagType};

use crate::config::{DomainKind, query_param};
use crate::hub::{EndReason, Frame, FrameKind, Protocol, StreamKey, Viewer};
use crate::metrics::{ErrorKind, Metrics};
use crate::{Shared, access};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/streams", get(list_streams))
        .route("/api/v1/streams/{app}/{stream}", get(one_stream))
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .merge(crate::web::routes())
        .route("/{app}/{file}", get(flv))
        .route("/{app}/{stream}/{kind}", any(webrtc))
        .route("/{app}/{stream}/{kind}/{id}", any(webrtc))
        .with_state(shared)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body + "\n",
    )
        .into_response()
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// `GET /{app}/{stream}.flv`: the FLV header, onMetaData, the sequence
/// headers and the current GOP, then the live stream, chunked.
async fn flv(
    State(shared): State<Arc<Shared>>,
    Path((app, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(stream) = file.strip_suffix(".flv") else {
        return text(
            StatusCode::NOT_FOUND,
            format!("not found: /{app}/{file} (play /{{app}}/{{stream}}.flv)"),
        );
    };
    let metrics = shared.hub.metrics().clone();
    let query = query.unwrap_or_default();
    let checked = access::play(
        &shared.config,
        host(&headers),
        UrlProtocol::Flv,
        &app,
        stream,
        &[&query],
        access::unix_now(),
    );
    let play = match checked {
        Ok(p) => p,
        Err(access::Refusal { kind, reason: why }) => {
            metrics.error(kind);
            tracing::info!(app, stream, "flv refused: {why}");
            return text(StatusCode::FORBIDDEN, why);
        }
    };
    let key = StreamKey::new(&play.ingest, &app, stream);
    // Opus as published only for a player that asks (`?audio=opus`: an
    // Enhanced FLV player); AAC for everyone else.
    let opus = form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "audio" && v == "opus");
    let viewer = match shared
        .aac
        .play(&shared.hub, &key, Protocol::Flv, opus, Instant::now())
    {
        Ok(v) => v,
        Err(e) => {
            metrics.error(ErrorKind::NotFound);
            return text(StatusCode::NOT_FOUND, format!("{e}: /{app}/{stream}"));
        }
    };
    Metrics::add(&metrics.flv_requests, 1);
    tracing::info!(stream = %key, "flv play");
    let mut head = BytesMut::with_capacity(13);
    rts_flv::Header::new(true, true).encode(&mut head);
    head.put_u32(0);
    let state = FlvBody {
        viewer,
        pending: VecDeque::from([head.freeze()]),
        metrics,
    };
    let body = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(b) = s.pending.pop_front() {
                s.viewer.count_bytes_out(b.len());
                Metrics::add(&s.metrics.bytes_out, b.len());
                return Some((Ok::<_, Infallible>(b), s));
            }
            match s.viewer.recv(64).await {
                Ok(frames) => frames.into_iter().for_each(|f| s.push(f)),
                Err(why) => {
                    if why != EndReason::Unpublished {
                        tracing::info!(stream = %s.viewer.key(), "flv play ended: {why}");
                    }
                    return None;
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/x-flv"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(origin) = play
        .cors_origin
        .and_then(|o| HeaderValue::from_str(&o).ok())
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    resp
}

struct FlvBody {
    viewer: Viewer,
    pending: VecDeque<Bytes>,
    metrics: Arc<Metrics>,
}

impl FlvBody {
    /// Queues a tag as its header (rts-flv), the body (the shared `Bytes`,
    /// not copied) and PreviousTagSize.
    fn push(&mut self, f: Frame) {
        let tag_type = match f.kind {
            FrameKind::Audio => TagType::Audio,
            FrameKind::Video => TagType::Video,
            FrameKind::Metadata => TagType::Script,
        };
        let tag = Tag::new(tag_type, f.timestamp, f.payload);
        let mut head = BytesMut::with_capacity(11);
        if tag.encode_header(&mut head).is_err() {
            // Over 16 MiB: the hub's message limit keeps this from happening.
            return;
        }
        self.pending.push_back(head.freeze());
        let size = Bytes::copy_from_slice(&tag.previous_tag_size().to_be_bytes());
        self.pending.push_back(tag.data);
        self.pending.push_back(size);
    }
}

/// The API token, from an `Authorization: Bearer` header only (a query
/// parameter would end up in access logs and browser history).
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = shared.config.api.token.as_deref().unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let ok = !token.is_empty() && given.is_some_and(|g| token_eq(g, token));
    if ok {
        Ok(())
    } else {
        shared.hub.metrics().error(ErrorKind::Auth);
        Err(Box::new(text(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token: send `Authorization: Bearer <api.token>` (printed at start-up)"
                .into(),
        )))
    }
}

/// Compares SHA-256 digests in constant time, so neither the token's
/// content nor its length shows in the timing.
fn token_eq(given: &str, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given), Sha256::digest(token));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/streams`
async fn list_streams(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return *r;
    }
    let streams = shared.hub.streams(Instant::now());
    json(&serde_json::json!({ "streams": streams }))
}

/// `GET /api/v1/streams/{app}/{stream}` (`?domain=` picks the domain; the
/// Host's, or the default ingest domain, otherwise).
async fn one_stream(
    State(shared): State<Arc<Shared>>,
    Path((app, stream)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&shared, &headers) {
        return *r;
    }
    let q = query.unwrap_or_default();
    let wanted = query_param(&q, "domain");
    let domain = shared
        .config
        .resolve(host(&headers), wanted.as_deref(), DomainKind::Ingest)
        .map(|d| match d.kind {
            DomainKind::Ingest => d.name.clone(),
            DomainKind::Streaming => d.ingest.clone().unwrap_or_default(),
        })
        .unwrap_or_default();
    match shared
        .hub
        .stream(&StreamKey::new(&domain, &app, &stream), Instant::now())
    {
        Some(info) => json(&info),
        None => text(
            StatusCode::NOT_FOUND,
            format!("stream not found: {domain}/{app}/{stream}"),
        ),
    }
}

/// `GET /metrics`: Prometheus text; the API token is needed unless
/// `[api] public_metrics` (the text names every stream).
async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.config.api.public_metrics
        && let Err(r) = authorized(&shared, &headers)
    {
        return *r;
    }
    let mut body = shared
        .hub
        .metrics()
        .render(&shared.hub.streams(Instant::now()));
    let (host, sessions, restarts) = shared.rtc.stats();
    crate::metrics::render_webrtc(&mut body, &host, sessions, restarts);
    crate::metrics::render_buffered(
        &mut body,
        shared.hub.buffered_bytes(),
        shared.config.limits.max_buffered_bytes,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// WHEP (and WHIP) endpoints and resources: `/{app}/{stream}/whep[/{id}]`.
async fn webrtc(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<crate::httpd::Remote>,
    req: axum::extract::Request,
) -> Response {
    crate::rtc::Rtc::http(shared, remote.0, req).await
}

/// `GET /`: what this server serves.
async fn index() -> Response {
    let page = "<!doctype html><meta charset=utf-8><title>rts-server</title>\
<h1>rts-server</h1><ul>\
<li>web player: <code>/play/{app}/{stream}?auth_key=…</code> or <code>/play?url=artc://…</code></li>\
<li>latency calibrator: <a href=\"/calibrator\">/calibrator</a></li>\
<li>WHEP: <code>POST /{app}/{stream}/whep?auth_key=…</code></li>\
<li>HTTP-FLV: <code>/{app}/{stream}.flv?auth_key=…</code></li>\
<li>API: <code>/api/v1/streams</code>, metrics: <code>/metrics</code> (both with <code>Authorization: Bearer</code> and the API token)</li></ul>";
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}
