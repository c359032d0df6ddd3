//! The web pages the server serves itself (embedded in the binary, no
//! external CDN): the WHEP player at `/play/{app}/{stream}` and
//! `/play?url=artc://…`, and the latency calibrator at `/calibrator`.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Shared;

/// The routes of the pages.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/play/{app}/{stream}", get(player))
        .route("/play", get(player))
        .route("/calibrator", get(calibrator))
}

fn html(page: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// The player reads the stream from its own URL (path and query).
async fn player() -> Response {
    html(include_str!("../assets/player.html"))
}

/// A large millisecond clock for OBS's browser source.
async fn calibrator() -> Response {
    html(include_str!("../assets/calibrator.html"))
}
