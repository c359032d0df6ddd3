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

#[cfg(test)]
mod tests {
    const PLAYER: &str = include_str!("../assets/player.html");
    const CALIBRATOR: &str = include_str!("../assets/calibrator.html");

    /// Everything is embedded: no script, style, font or image from
    /// another origin (a player behind a firewall must still work).
    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for (name, page) in [("player", PLAYER), ("calibrator", CALIBRATOR)] {
            let lower = page.to_ascii_lowercase();
            for needle in [
                "src=\"http",
                "src='http",
                "src=\"//",
                "href=\"http",
                "href=\"//",
                "@import",
                "url(http",
                "<script src",
                "<link rel=\"stylesheet",
            ] {
                assert!(!lower.contains(needle), "{name} page contains {needle}");
            }
            assert!(lower.starts_with("<!doctype html>"), "{name} page");
        }
    }

    /// The player speaks the contract the server implements: WHEP at
    /// `{app}/{stream}/whep` with the page's query, `artc://` URLs, the
    /// rts-wallclock-v1 SEI UUID (rts-h264's `WALLCLOCK_UUID`), and the
    /// `window.rtsPlayer` object the browser tests read.
    #[test]
    fn player_page_speaks_the_contract() {
        for needle in [
            "/whep${loc.search}",
            "artc://",
            "'application/sdp'",
            "'rts-wallclock-v1'",
            "window.rtsPlayer = player",
            "method: 'DELETE'",
            "keepalive",
        ] {
            assert!(PLAYER.contains(needle), "player page lacks {needle}");
        }
        assert!(CALIBRATOR.contains("requestAnimationFrame"));
    }
}
