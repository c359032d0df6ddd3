//! WHIP (RFC 9725) and WHEP resource protocol, sans-IO, over `http` types.
//!
//! A [`Server`] turns one HTTP request into one HTTP response. It owns the
//! protocol: routes (`POST /{app}/{stream}/whip` and `/whep`, then `PATCH`,
//! `DELETE` on the resource URL it returns in `Location`), content types,
//! `ETag`/`If-Match`, CORS, status codes and their reasons. What a session
//! *is* (a WebRTC peer, a stream in a hub), and which resources exist, is
//! the application's, behind the [`Backend`] trait: the server keeps no
//! state of its own, so a backend can answer an offer without holding the
//! lock its media loop uses, and keep its sessions in one place. No sockets, no clock, no ambient randomness: the caller
//! reads the body (at most [`Config::max_body`] bytes), passes 16 random
//! bytes per request for resource ids, and writes the response.
//!
//! ```
//! use std::collections::HashMap;
//! use bytes::Bytes;
//! use rts_whip::{Backend, Config, CreateError, Denied, IceParams, Resource, ResourceId, Server, Target};
//!
//! #[derive(Default)]
//! struct Echo(HashMap<ResourceId, Resource>);
//! impl Backend for Echo {
//!     fn authorize(&mut self, _: &http::request::Parts, _: &Target) -> Result<(), Denied> { Ok(()) }
//!     fn create(&mut self, target: &Target, offer: &str, id: ResourceId) -> Result<String, CreateError> {
//!         self.0.insert(id, Resource { target: target.clone(), generation: 0 });
//!         Ok(offer.replace("a=sendonly", "a=recvonly"))
//!     }
//!     fn resource(&mut self, id: ResourceId) -> Option<Resource> { self.0.get(&id).cloned() }
//!     fn trickle(&mut self, _: ResourceId, _: &rts_whip::SdpFrag) -> Result<(), CreateError> { Ok(()) }
//!     fn restart_ice(&mut self, id: ResourceId, _: &rts_whip::SdpFrag) -> Result<IceParams, CreateError> {
//!         if let Some(r) = self.0.get_mut(&id) { r.generation += 1 }
//!         Ok(IceParams { ufrag: "u2".into(), pwd: "p".repeat(22) })
//!     }
//!     fn delete(&mut self, id: ResourceId) { self.0.remove(&id); }
//! }
//!
//! let server = Server::new(Config::default());
//! let mut sessions = Echo::default();
//! let req = http::Request::post("/live/demo/whip")
//!     .header("content-type", "application/sdp")
//!     .body(Bytes::from_static(b"v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n"))?;
//! let resp = server.handle(req, &mut sessions, [7; 16]);
//! assert_eq!(resp.status(), 201);
//! let location = resp.headers()["location"].to_str()?;
//! assert_eq!(location, "/live/demo/whip/07070707070707070707070707070707");
//!
//! let delete = http::Request::delete(location).body(Bytes::new())?;
//! assert_eq!(server.handle(delete, &mut sessions, [0; 16]).status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Status codes: 201 created; 204 trickle accepted or CORS preflight; 200
//! ICE restart or deleted; 400 bad SDP; 401/403 from [`Backend::authorize`];
//! 404 unknown path, resource or (WHEP) stream; 405 wrong method; 409 stream
//! already publishing (WHIP); 412 `If-Match` mismatch; 413 body too large;
//! 415 wrong content type; 503 backend unavailable. Error bodies are
//! `text/plain` and say what was wrong and what to do.
//!
//! # Errors and panics
//! Nothing a client sends can panic the server: every path, header and body
//! is checked and answered with a status. Resource ids are 128-bit random
//! values supplied by the caller, so resource URLs are unguessable
//! capabilities; `PATCH` and `DELETE` need no further authorization.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

use std::fmt;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};

mod sdpfrag;

pub use sdpfrag::{IceParams, SdpFrag};

/// Content type of offers and answers.
pub const SDP: &str = "application/sdp";
/// Content type of trickle ICE and ICE restart `PATCH` bodies (RFC 8840).
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Publishing (WHIP) or playing (WHEP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// WebRTC-HTTP ingestion (RFC 9725): the client sends media.
    Whip,
    /// WebRTC-HTTP egress: the client receives media.
    Whep,
}

impl Kind {
    /// The last path segment of the endpoint: `whip` or `whep`.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Whip => "whip",
            Kind::Whep => "whep",
        }
    }
}

/// The stream an endpoint URL names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Publishing or playing.
    pub kind: Kind,
    /// `{app}`.
    pub app: String,
    /// `{stream}`.
    pub stream: String,
}

/// A resource id: 128 random bits, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceId(pub [u8; 16]);

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({self})")
    }
}

impl ResourceId {
    fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let s = std::str::from_utf8(pair).ok()?;
            *o = u8::from_str_radix(s, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// An ICE server announced to clients in a `Link` header (RFC 9725 4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:host:port` or `turn:host:port?transport=udp`.
    pub url: String,
    /// TURN username.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// Endpoint settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `Access-Control-Allow-Origin` value (`*` by default); `None` sends
    /// no CORS headers.
    pub allowed_origin: Option<String>,
    /// Largest accepted body; the I/O layer should stop reading past it.
    pub max_body: usize,
    /// ICE servers announced with `Link` headers on 201 and OPTIONS.
    pub ice_servers: Vec<IceServer>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allowed_origin: Some("*".into()),
            max_body: 64 * 1024,
            ice_servers: Vec::new(),
        }
    }
}

/// A live resource, as the backend keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// What it was created for.
    pub target: Target,
    /// Bumped by every ICE restart; part of the ETag.
    pub generation: u32,
}

impl Resource {
    fn etag(&self, id: ResourceId) -> String {
        format!("\"{id}-{}\"", self.generation)
    }
}

/// The resource URL path of `id` for `target`:
/// `/{app}/{stream}/{whip|whep}/{id}`.
pub fn location(target: &Target, id: ResourceId) -> String {
    format!(
        "/{}/{}/{}/{id}",
        target.app,
        target.stream,
        target.kind.segment()
    )
}

/// A refusal from [`Backend::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// 401 (no or malformed credentials) or 403 (credentials refused).
    pub status: StatusCode,
    /// The response body: why, and what to do.
    pub reason: String,
}

impl Denied {
    /// 401 Unauthorized with a reason.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }
    /// 403 Forbidden with a reason.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
        }
    }
}

/// Why the backend could not create or update a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// WHEP: nothing is published under that name (404).
    #[error("stream {0} is not being published")]
    NotFound(String),
    /// WHIP: someone already publishes that stream (409).
    #[error("stream {0} is already publishing")]
    AlreadyPublishing(String),
    /// The offer cannot be answered, e.g. no usable codec (400).
    #[error("{0}")]
    BadSdp(String),
    /// The server cannot take the session now (503).
    #[error("{0}")]
    Unavailable(String),
}

impl CreateError {
    fn status(&self) -> StatusCode {
        match self {
            CreateError::NotFound(_) => StatusCode::NOT_FOUND,
            CreateError::AlreadyPublishing(_) => StatusCode::CONFLICT,
            CreateError::BadSdp(_) => StatusCode::BAD_REQUEST,
            CreateError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// What the application provides: authorization and the sessions, which
/// are the resources.
pub trait Backend {
    /// Checks a POST's credentials (`Authorization: Bearer …`, the query's
    /// `auth_key`, the `Host`) before anything is created.
    fn authorize(&mut self, request: &http::request::Parts, target: &Target) -> Result<(), Denied>;
    /// Creates the session for `offer` under `id` (a resource of generation
    /// 0); returns the SDP answer. Past the backend's limits: 503
    /// ([`CreateError::Unavailable`]).
    fn create(
        &mut self,
        target: &Target,
        offer: &str,
        id: ResourceId,
    ) -> Result<String, CreateError>;
    /// The live resource `id`, if any (it ended when its session did).
    fn resource(&mut self, id: ResourceId) -> Option<Resource>;
    /// Remote candidates trickled in by the client.
    fn trickle(&mut self, id: ResourceId, frag: &SdpFrag) -> Result<(), CreateError>;
    /// ICE restart with the client's new credentials; returns the server's
    /// new ICE credentials. The resource's generation goes up by one.
    fn restart_ice(&mut self, id: ResourceId, frag: &SdpFrag) -> Result<IceParams, CreateError>;
    /// The client ended the session (DELETE).
    fn delete(&mut self, id: ResourceId);
}

/// The WHIP/WHEP protocol: requests in, responses out (no state of its
/// own; the [`Backend`] keeps the resources).
#[derive(Debug)]
pub struct Server {
    config: Config,
}

enum Route {
    Endpoint(Target),
    Resource(Target, ResourceId),
}

fn parse_path(path: &str) -> Option<Route> {
    let mut segs = path.strip_prefix('/')?.split('/');
    let (app, stream, kind) = (segs.next()?, segs.next()?, segs.next()?);
    let kind = match kind {
        "whip" => Kind::Whip,
        "whep" => Kind::Whep,
        _ => return None,
    };
    rts_auth::urls::check_name("app", app).ok()?;
    rts_auth::urls::check_name("stream", stream).ok()?;
    let target = Target {
        kind,
        app: app.to_owned(),
        stream: stream.to_owned(),
    };
    match (segs.next(), segs.next()) {
        (None, _) | (Some(""), None) => Some(Route::Endpoint(target)),
        (Some(id), None) => Some(Route::Resource(target, ResourceId::parse(id)?)),
        _ => None,
    }
}

fn content_type_is(parts: &http::request::Parts, want: &str) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

impl Server {
    /// An endpoint.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one request. `random` is fresh randomness for the id of a
    /// resource this request may create.
    pub fn handle<B: Backend>(
        &self,
        request: Request<Bytes>,
        backend: &mut B,
        random: [u8; 16],
    ) -> Response<Bytes> {
        let (parts, body) = request.into_parts();
        let mut response = match parse_path(parts.uri.path()) {
            None => text(
                StatusCode::NOT_FOUND,
                "no WHIP/WHEP endpoint here: POST to /{app}/{stream}/whip to publish or /{app}/{stream}/whep to play",
            ),
            Some(Route::Endpoint(target)) => match parts.method {
                Method::POST => self.post(&parts, body, target, backend, ResourceId(random)),
                Method::OPTIONS => self.preflight(true),
                _ => not_allowed("POST, OPTIONS"),
            },
            Some(Route::Resource(target, id)) => match backend.resource(id) {
                Some(r) if r.target == target => match parts.method {
                    Method::PATCH => self.patch(&parts, body, id, &r, backend),
                    Method::DELETE => {
                        backend.delete(id);
                        empty(StatusCode::OK)
                    }
                    Method::OPTIONS => self.preflight(false),
                    _ => not_allowed("PATCH, DELETE, OPTIONS"),
                },
                _ => text(
                    StatusCode::NOT_FOUND,
                    "no such session: it was deleted or has ended",
                ),
            },
        };
        self.cors(&mut response);
        response
    }

    fn post<B: Backend>(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        target: Target,
        backend: &mut B,
        id: ResourceId,
    ) -> Response<Bytes> {
        if let Err(denied) = backend.authorize(parts, &target) {
            return text(denied.status, &denied.reason);
        }
        if !content_type_is(parts, SDP) {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the offer must be sent with Content-Type: application/sdp",
            );
        }
        if body.len() > self.config.max_body {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the offer is larger than {} bytes", self.config.max_body),
            );
        }
        let Ok(offer) = std::str::from_utf8(&body) else {
            return text(StatusCode::BAD_REQUEST, "the offer is not UTF-8 text");
        };
        if !offer.starts_with("v=0") || !offer.contains("\nm=") {
            return text(
                StatusCode::BAD_REQUEST,
                "the body is not an SDP offer (it must start with v=0 and have m= sections)",
            );
        }
        if backend.resource(id).is_some() {
            // 2^-128 unless the caller reuses randomness: refuse rather than alias.
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "resource id collision; retry",
            );
        }
        let answer = match backend.create(&target, offer, id) {
            Ok(answer) => answer,
            Err(e) => return text(e.status(), &e.to_string()),
        };
        let etag = Resource {
            target: target.clone(),
            generation: 0,
        }
        .etag(id);
        let location = location(&target, id);
        let mut response = with_body(StatusCode::CREATED, SDP, Bytes::from(answer));
        let h = response.headers_mut();
        insert(h, header::LOCATION, &location);
        insert(h, header::ETAG, &etag);
        self.links(h);
        response
    }

    fn patch<B: Backend>(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        id: ResourceId,
        resource: &Resource,
        backend: &mut B,
    ) -> Response<Bytes> {
        if !content_type_is(parts, SDPFRAG) {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "PATCH takes Content-Type: application/trickle-ice-sdpfrag",
            );
        }
        if body.len() > self.config.max_body {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "the sdpfrag is too large");
        }
        let if_match = parts
            .headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let frag = match std::str::from_utf8(&body)
            .map_err(|_| "the sdpfrag is not UTF-8")
            .and_then(SdpFrag::parse)
        {
            Ok(f) => f,
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        };
        // RFC 9725 4.4.2: an ICE restart carries new credentials and If-Match: "*".
        let restart = if_match == Some("*") && frag.ice.is_some();
        if !restart
            && let Some(tag) = if_match
            && tag != "*"
            && tag != resource.etag(id)
        {
            return text(
                StatusCode::PRECONDITION_FAILED,
                "If-Match does not match the session's ETag (an ICE restart changed it)",
            );
        }
        if restart {
            match backend.restart_ice(id, &frag) {
                Ok(ice) => {
                    let etag = backend.resource(id).map_or_else(
                        || {
                            Resource {
                                target: resource.target.clone(),
                                generation: resource.generation.wrapping_add(1),
                            }
                            .etag(id)
                        },
                        |r| r.etag(id),
                    );
                    let mut response =
                        with_body(StatusCode::OK, SDPFRAG, Bytes::from(ice.to_sdpfrag()));
                    insert(response.headers_mut(), header::ETAG, &etag);
                    response
                }
                Err(e) => text(e.status(), &e.to_string()),
            }
        } else {
            match backend.trickle(id, &frag) {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => text(e.status(), &e.to_string()),
            }
        }
    }

    fn preflight(&self, endpoint: bool) -> Response<Bytes> {
        let mut response = empty(StatusCode::NO_CONTENT);
        let h = response.headers_mut();
        if endpoint {
            insert(h, header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS");
            insert(h, header::HeaderName::from_static("accept-post"), SDP);
            self.links(h);
        } else {
            insert(
                h,
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "PATCH, DELETE, OPTIONS",
            );
            insert(h, header::HeaderName::from_static("accept-patch"), SDPFRAG);
        }
        insert(
            h,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, If-Match",
        );
        insert(h, header::ACCESS_CONTROL_MAX_AGE, "86400");
        response
    }

    fn cors(&self, response: &mut Response<Bytes>) {
        if let Some(origin) = &self.config.allowed_origin {
            let h = response.headers_mut();
            insert(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            insert(
                h,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                "Location, ETag, Link, Accept-Patch, Accept-Post",
            );
        }
    }

    fn links(&self, h: &mut http::HeaderMap) {
        for server in &self.config.ice_servers {
            let mut link = format!("<{}>; rel=\"ice-server\"", server.url);
            if let (Some(user), Some(cred)) = (&server.username, &server.credential) {
                link.push_str(&format!(
                    "; username=\"{user}\"; credential=\"{cred}\"; credential-type=\"password\""
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.append(header::LINK, v);
            }
        }
    }
}

fn insert(h: &mut http::HeaderMap, name: header::HeaderName, value: &str) {
    // Values we build are ASCII; one that is not is dropped, never a panic.
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

fn with_body(status: StatusCode, content_type: &str, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    insert(response.headers_mut(), header::CONTENT_TYPE, content_type);
    response
}

fn text(status: StatusCode, message: &str) -> Response<Bytes> {
    with_body(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("{message}\n")),
    )
}

fn empty(status: StatusCode) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}

fn not_allowed(allow: &str) -> Response<Bytes> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; use {allow}"),
    );
    insert(response.headers_mut(), header::ALLOW, allow);
    response
}

#[cfg(test)]
mod tests;
