//! The web pages the server serves itself (embedded in the binary, no
//! external CDN): the WHEP player at `/play/{app}/{stream}` and
//! `/play?url=artc://…`, the WHIP publish page ("Try RTS") at
//! `/publish/{app}/{stream}?auth_key=…`, and the latency calibrator at
//! `/calibrator`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rts_auth::urls::Protocol;

use crate::config::DomainKind;
use crate::{Shared, access};

/// The routes of the pages.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/play/{app}/{stream}", get(player))
        .route("/play", get(player))
        .route("/publish/{app}/{stream}", get(publisher))
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

const PUBLISH_PAGE: &str = include_str!("../assets/publish.html");

/// The publish page, for a valid ingest key only (it is checked as a WHIP
/// publish of the stream would be, so a refused page is a refused
/// publish, with the same reason). The page gets a signed player URL of
/// the stream on the streaming domain its ingest domain feeds.
async fn publisher(
    State(shared): State<Arc<Shared>>,
    Path((app, stream)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let now = access::unix_now();
    let ingest = match access::publish(
        &shared.config,
        host,
        access::Ingest::Whip,
        &app,
        &stream,
        &[&query],
        now,
    ) {
        Ok(d) => d,
        Err(access::Refusal { kind, reason }) => {
            shared.hub.metrics().error(kind);
            return (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("cannot publish {app}/{stream} here: {reason}\n"),
            )
                .into_response();
        }
    };
    let player = player_url(&shared, &ingest, &app, &stream, now).unwrap_or_default();
    let page = PUBLISH_PAGE.replace("{{PLAYER}}", &player);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

/// `/play/{app}/{stream}?vhost=…&auth_key=…` on the first streaming domain
/// fed by `ingest` (signed with its primary key when it signs).
fn player_url(shared: &Shared, ingest: &str, app: &str, stream: &str, now: u64) -> Option<String> {
    let play = shared
        .config
        .domains
        .iter()
        .find(|d| d.kind == DomainKind::Streaming && d.ingest.as_deref() == Some(ingest))?;
    let mut url = format!("/play/{app}/{stream}?vhost={}", play.name);
    if play.signing {
        let key = play.primary_key.as_deref()?;
        let auth = rts_auth::sign(&Protocol::Artc.uri(app, stream), now, "0", "0", key).ok()?;
        url.push_str(&format!("&auth_key={auth}"));
    }
    Some(url)
}

/// A large millisecond clock for OBS's browser source.
async fn calibrator() -> Response {
    html(include_str!("../assets/calibrator.html"))
}

#[cfg(test)]
mod tests {
    const PLAYER: &str = include_str!("../assets/player.html");
    const CALIBRATOR: &str = include_str!("../assets/calibrator.html");
    const PUBLISH: &str = super::PUBLISH_PAGE;

    /// Everything is embedded: no script, style, font or image from
    /// another origin (a player behind a firewall must still work).
    #[test]
    fn pages_load_nothing_from_elsewhere() {
        for (name, page) in [
            ("player", PLAYER),
            ("calibrator", CALIBRATOR),
            ("publish", PUBLISH),
        ] {
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
        // The publish page POSTs to the WHIP endpoint with its own query
        // and explains the secure-origin rule.
        for needle in [
            "${path}/whip${loc.search}",
            "isSecureContext",
            "getDisplayMedia",
            "{{PLAYER}}",
            "window.rtsPublish = state",
        ] {
            assert!(PUBLISH.contains(needle), "publish page lacks {needle}");
        }
    }
}
