//! Server configuration (TOML): listen addresses, domains, keys, limits.
//!
//! [`Config::parse`] reads and checks a file; [`Config::default_toml`] is
//! the embedded default (`--print-default-config`). A bad file is a
//! [`ConfigError`] that names the field and says what is wrong with it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most domains a server serves (ingest and streaming together).
pub const MAX_DOMAINS: usize = 20;

/// A configuration that cannot be used: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML does not parse or a value has the wrong type.
    #[error("config: {0}")]
    Syntax(String),
    /// The operating system's random number generator failed, so no key or
    /// token could be made (the server does not start on guessable ones).
    #[error(
        "config: the operating system's random number generator failed ({0}); no signing key or API token can be made"
    )]
    Randomness(getrandom::Error),
    /// A field has a value the server cannot use.
    #[error("config: {field}: {problem}")]
    Invalid {
        /// The field, as a TOML path (`domain[1].ingest`).
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen addresses.
    #[serde(default)]
    pub listen: Listen,
    /// The HTTP API.
    #[serde(default)]
    pub api: Api,
    /// HTTPS: when both are set, the HTTP port serves TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Queue and timing limits.
    #[serde(default)]
    pub limits: Limits,
    /// WebRTC play (ARTC / WHEP).
    #[serde(default)]
    pub webrtc: WebRtc,
    /// Ingest and streaming domains (at most [`MAX_DOMAINS`]).
    #[serde(default, rename = "domain")]
    pub domains: Vec<Domain>,
}

/// Listen addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// RTMP (TCP), default `0.0.0.0:1935`.
    pub rtmp: SocketAddr,
    /// HTTP or HTTPS (TCP): HTTP-FLV, API, metrics, player. Default `0.0.0.0:8080`.
    pub http: SocketAddr,
    /// WebRTC (UDP, one socket for every peer), default `0.0.0.0:8000`.
    pub rtc: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            rtmp: SocketAddr::from(([0, 0, 0, 0], 1935)),
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtc: SocketAddr::from(([0, 0, 0, 0], 8000)),
        }
    }
}

/// The HTTP API (`/api/v1/...`, `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Bearer token required by `/api/v1/...` (and `/metrics` unless
    /// `public_metrics`), in an `Authorization: Bearer` header only; a
    /// random one is made (and printed) when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Serve `/metrics` without the token (it lists every stream name);
    /// default false: Prometheus sends the token (`authorization:
    /// credentials:` in its scrape config).
    #[serde(default)]
    pub public_metrics: bool,
}

/// WebRTC play settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtc {
    /// Addresses announced as ICE host candidates (the port is
    /// `listen.rtc`'s). Empty: the `listen.rtc` address when it is not
    /// `0.0.0.0`, else the IP of the request's `Host` when it is an IP
    /// literal, plus 127.0.0.1.
    pub candidates: Vec<std::net::IpAddr>,
    /// B-frame removal for WebRTC viewers.
    pub bframes: BFrames,
    /// Encoder bitrate of the B-frame transcoder in kbit/s; 0 derives it
    /// from the input.
    pub transcode_kbps: u32,
    /// Opus frame of the AAC → Opus conversion, in ms: 10 or 20. 10 ms
    /// halves the audio framing delay (docs/decisions/opus-frame-10ms.md)
    /// for about 16 kbit/s more packet overhead per viewer.
    pub opus_frame_ms: u32,
    /// Seconds a transcoding branch keeps decoding after its last WebRTC
    /// viewer left (0: it stops at once), so that the next viewer starts
    /// from an IDR of the live edge instead of waiting for the cached GOP
    /// to be decoded (docs/decisions/transcode-linger.md). Costs the
    /// decode: no encoding, nothing sent, not metered.
    pub transcode_linger_s: u64,
    /// Starts a paused branch (decoding only, as after its last viewer) for
    /// every published stream with B-frames, so that even a stream's first
    /// WebRTC viewer starts from an IDR of the live edge. Costs the decode
    /// of every such stream, watched or not (off by default).
    pub transcode_warm_on_publish: bool,
    /// Most WebRTC sessions at once.
    pub max_sessions: usize,
    /// ICE-TCP (RFC 6544): also listen on TCP at `listen.rtc`'s IP and port
    /// number and announce a passive TCP candidate, for clients whose
    /// network blocks UDP.
    pub ice_tcp: bool,
    /// Announce the UDP candidates (false: TCP only, with `ice_tcp`).
    pub ice_udp: bool,
    /// STUN/TURN servers offered to WHIP/WHEP clients in `Link` headers
    /// (RFC 9725 4.6), for viewers behind NATs and firewalls
    /// (docs/nat-and-firewalls.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

/// A STUN or TURN server for clients (`[[webrtc.ice_servers]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp` or `turns:host:443?transport=tcp`.
    pub url: String,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl Default for WebRtc {
    fn default() -> Self {
        Self {
            candidates: Vec::new(),
            bframes: BFrames::Auto,
            transcode_kbps: 0,
            opus_frame_ms: 10,
            transcode_linger_s: 120,
            transcode_warm_on_publish: false,
            max_sessions: 2000,
            ice_tcp: true,
            ice_udp: true,
            ice_servers: Vec::new(),
        }
    }
}

/// How B-frames are removed for WebRTC viewers (`[webrtc] bframes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BFrames {
    /// Passthrough until a B-frame is seen, then transcode.
    #[default]
    Auto,
    /// Always decode and re-encode without B-frames.
    Transcode,
    /// Drop non-referenced B-frames (lossless, half the frame rate);
    /// streams whose B-frames are referenced are refused.
    Drop,
}

impl From<BFrames> for rts_h264::Mode {
    fn from(b: BFrames) -> Self {
        match b {
            BFrames::Auto => rts_h264::Mode::Auto,
            BFrames::Transcode => rts_h264::Mode::Transcode,
            BFrames::Drop => rts_h264::Mode::Drop,
        }
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Queue, memory, connection and timing limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Frames a viewer's queue holds before it drops up to the next
    /// keyframe; at least `max_gop_frames`, so a joiner always takes the
    /// cached GOP.
    pub viewer_queue_frames: usize,
    /// A viewer that has been dropping frames for this long is disconnected (ms).
    pub max_behind_ms: u64,
    /// A publisher that comes back within this time keeps its viewers (ms).
    pub publisher_grace_ms: u64,
    /// A publisher from which no frame has arrived for this long (a
    /// half-open connection) loses its stream to a new publisher with a
    /// valid URL (ms).
    pub publisher_silence_ms: u64,
    /// Most frames kept for the last GOP (a longer GOP is not cached: new
    /// viewers wait for the next keyframe).
    pub max_gop_frames: usize,
    /// Most bytes kept for the last GOP of one stream.
    pub max_gop_bytes: usize,
    /// Most bytes of GOP caches over all streams; past it new publishers
    /// are refused.
    pub max_buffered_bytes: usize,
    /// Largest RTMP message accepted from a publisher (bytes).
    pub max_message_bytes: usize,
    /// RTMP handshake, `connect` and the first publish or play must be
    /// done within this (ms).
    pub handshake_timeout_ms: u64,
    /// An HTTP request's headers must arrive within this, also between
    /// keep-alive requests (ms).
    pub http_header_timeout_ms: u64,
    /// An HTTP connection with no bytes in either direction for this long
    /// is closed (ms).
    pub http_idle_ms: u64,
    /// RTMP connections at once, and from one IP address.
    pub max_rtmp_connections: usize,
    /// RTMP connections at once from one IP address.
    pub max_rtmp_per_ip: usize,
    /// HTTP(S) connections at once.
    pub max_http_connections: usize,
    /// HTTP(S) connections at once from one IP address.
    pub max_http_per_ip: usize,
    /// On SIGTERM/SIGINT, the longest the server waits for connections to
    /// end before it closes them and exits (ms).
    pub shutdown_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            viewer_queue_frames: 2048,
            max_behind_ms: 10_000,
            publisher_grace_ms: 5_000,
            publisher_silence_ms: 3_000,
            max_gop_frames: 2048,
            max_gop_bytes: 48 << 20,
            max_buffered_bytes: 1 << 30,
            max_message_bytes: 16 << 20,
            handshake_timeout_ms: 10_000,
            http_header_timeout_ms: 10_000,
            http_idle_ms: 60_000,
            max_rtmp_connections: 4096,
            max_rtmp_per_ip: 64,
            max_http_connections: 16_384,
            max_http_per_ip: 512,
            shutdown_ms: 5_000,
        }
    }
}

impl Limits {
    /// `max_behind_ms` as a duration.
    pub fn max_behind(&self) -> Duration {
        Duration::from_millis(self.max_behind_ms)
    }
    /// `publisher_grace_ms` as a duration.
    pub fn publisher_grace(&self) -> Duration {
        Duration::from_millis(self.publisher_grace_ms)
    }
    /// `publisher_silence_ms` as a duration.
    pub fn publisher_silence(&self) -> Duration {
        Duration::from_millis(self.publisher_silence_ms)
    }
    /// `handshake_timeout_ms` as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    /// `http_header_timeout_ms` as a duration.
    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_timeout_ms)
    }
    /// `http_idle_ms` as a duration.
    pub fn http_idle(&self) -> Duration {
        Duration::from_millis(self.http_idle_ms)
    }
    /// `shutdown_ms` as a duration.
    pub fn shutdown(&self) -> Duration {
        Duration::from_millis(self.shutdown_ms)
    }
}

/// Ingest (publishing) or streaming (playing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainKind {
    /// Publishers push here.
    Ingest,
    /// Viewers play here.
    Streaming,
}

/// Latency mode of a streaming domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Latency {
    /// RTMP ingest; plays over WebRTC, RTMP, FLV and HLS.
    #[default]
    SubSecond,
    /// WHIP ingest, WebRTC playback only.
    HalfSecond,
}

/// One domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// Host name (`push.example.com`), matched against HTTP Host / RTMP tcUrl / `?vhost=`.
    pub name: String,
    /// Ingest or streaming.
    pub kind: DomainKind,
    /// Streaming domains: the ingest domain whose streams they play.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<String>,
    /// Streaming domains: latency mode (default sub-second).
    #[serde(default)]
    pub latency: Latency,
    /// Streaming domains: stream relay. Every stream published on this
    /// domain's ingest domain is also published, inside the process, into
    /// this other ingest domain, whose streaming domains then play it (over
    /// RTMP, FLV, and with their own features): how a half-second domain
    /// gets a sub-second domain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// Ingest domains: every stream published here is also pushed over
    /// RTMP to each of these (`rtmp://host[:port]/app`, the stream's name
    /// appended), reconnecting with back-off while the stream lasts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<Push>,
    /// Whether URLs must carry a valid auth_key (default true).
    #[serde(default = "yes")]
    pub signing: bool,
    /// Primary key; a random one is made when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<String>,
    /// Secondary key (for key rotation), accepted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_key: Option<String>,
    /// Validity of a signed URL in minutes (default 1440).
    #[serde(default = "default_validity")]
    pub validity_minutes: u64,
    /// Streaming domains: `Access-Control-Allow-Origin` (default `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_origin: Option<String>,
    /// The default domain of its kind (unknown hosts map to it). The first
    /// domain of each kind when none says so.
    #[serde(default)]
    pub default: bool,
}

/// A remote RTMP server an ingest domain pushes its streams to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Push {
    /// `rtmp://host[:port]/app`; the stream is published as `app/{stream}`.
    pub url: String,
    /// The remote's ingest key, when it signs URLs as rts does (auth_key
    /// Type A over `/{app}/{stream}`); none: the URL as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Most push targets per ingest domain.
pub const MAX_PUSHES: usize = 8;

fn yes() -> bool {
    true
}

fn default_validity() -> u64 {
    1440
}

/// Name of the default ingest domain.
pub const DEFAULT_INGEST: &str = "push.localhost";
/// Name of the default streaming domain.
pub const DEFAULT_STREAMING: &str = "play.localhost";

impl Domain {
    fn new(name: &str, kind: DomainKind) -> Self {
        Domain {
            name: name.into(),
            kind,
            ingest: None,
            latency: Latency::SubSecond,
            relay: None,
            push: Vec::new(),
            signing: true,
            primary_key: None,
            secondary_key: None,
            validity_minutes: 1440,
            cors_origin: None,
            default: false,
        }
    }

    /// The keys URLs are checked against (empty primary when unset, which
    /// [`Config::finish`] prevents).
    pub fn keys(&self) -> rts_auth::Keys {
        let k = rts_auth::Keys::new(self.primary_key.clone().unwrap_or_default());
        match &self.secondary_key {
            Some(s) => k.with_secondary(s.clone()),
            None => k,
        }
    }

    /// URL validity.
    pub fn validity(&self) -> Duration {
        Duration::from_secs(self.validity_minutes.saturating_mul(60))
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut play = Domain::new(DEFAULT_STREAMING, DomainKind::Streaming);
        play.ingest = Some(DEFAULT_INGEST.into());
        play.cors_origin = Some("*".into());
        Config {
            listen: Listen::default(),
            api: Api::default(),
            tls: None,
            limits: Limits::default(),
            webrtc: WebRtc::default(),
            domains: vec![Domain::new(DEFAULT_INGEST, DomainKind::Ingest), play],
        }
    }
}

/// A random 32-hex-digit secret from the operating system's RNG. A failing
/// RNG is an error, never a guessable key.
pub fn random_secret() -> Result<String, ConfigError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(ConfigError::Randomness)?;
    Ok(b.iter().fold(String::with_capacity(32), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    }))
}

impl Config {
    /// The embedded default configuration as TOML, with comments.
    pub fn default_toml() -> String {
        DEFAULT_TOML.to_owned()
    }

    /// Parses and checks a TOML configuration (see [`Config::finish`]).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().replace('\n', " / ")))?;
        if c.domains.is_empty() {
            c.domains = Config::default().domains;
        }
        c.finish()?;
        Ok(c)
    }

    /// Checks the configuration and fills what is left to the server:
    /// random keys and API token.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if !self.webrtc.ice_udp && !self.webrtc.ice_tcp {
            return Err(invalid(
                "webrtc.ice_udp",
                "with ice_tcp off too, WebRTC clients would get no candidate; turn one on",
            ));
        }
        if self.webrtc.transcode_linger_s > 3600 {
            return Err(invalid(
                "webrtc.transcode_linger_s",
                format!("is {}; at most 3600", self.webrtc.transcode_linger_s),
            ));
        }
        if !matches!(self.webrtc.opus_frame_ms, 10 | 20) {
            return Err(invalid(
                "webrtc.opus_frame_ms",
                format!("is {}; 10 or 20", self.webrtc.opus_frame_ms),
            ));
        }
        for (i, ice) in self.webrtc.ice_servers.iter().enumerate() {
            let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| ice.url.starts_with(p));
            let header_safe = [
                Some(&ice.url),
                ice.username.as_ref(),
                ice.credential.as_ref(),
            ]
            .into_iter()
            .flatten()
            .all(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"'));
            if !scheme_ok || !header_safe {
                return Err(invalid(
                    format!("webrtc.ice_servers[{i}]"),
                    "needs a stun:, stuns:, turn: or turns: url, and printable ASCII without quotes",
                ));
            }
            if ice.url.starts_with("turn") && (ice.username.is_none() || ice.credential.is_none()) {
                return Err(invalid(
                    format!("webrtc.ice_servers[{i}]"),
                    "a TURN server needs username and credential",
                ));
            }
        }
        if self.domains.len() > MAX_DOMAINS {
            return Err(invalid(
                "domain",
                format!(
                    "{} domains configured, at most {MAX_DOMAINS} are allowed",
                    self.domains.len()
                ),
            ));
        }
        let mut names = HashSet::new();
        for (i, d) in self.domains.iter().enumerate() {
            let field = |f: &str| format!("domain[{i}].{f}");
            let name_ok = (1..=253).contains(&d.name.len())
                && d.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
            if !name_ok {
                return Err(invalid(
                    field("name"),
                    format!(
                        "{:?} is not a host name (letters, digits, '-' and '.', no port or scheme)",
                        d.name
                    ),
                ));
            }
            if !names.insert(d.name.to_ascii_lowercase()) {
                return Err(invalid(
                    field("name"),
                    format!(
                        "{:?} is configured twice; a domain is either ingest or streaming, once",
                        d.name
                    ),
                ));
            }
            if d.validity_minutes == 0 {
                return Err(invalid(
                    field("validity_minutes"),
                    "must be at least 1 minute",
                ));
            }
            for (f, k) in [
                ("primary_key", &d.primary_key),
                ("secondary_key", &d.secondary_key),
            ] {
                if k.as_deref() == Some("") {
                    return Err(invalid(
                        field(f),
                        "is empty; remove the line for a random key",
                    ));
                }
            }
            match d.kind {
                DomainKind::Ingest => {
                    if d.ingest.is_some() {
                        return Err(invalid(
                            field("ingest"),
                            "only a streaming domain names its ingest domain",
                        ));
                    }
                    if d.relay.is_some() {
                        return Err(invalid(
                            field("relay"),
                            "only a streaming domain relays (its ingest domain's streams)",
                        ));
                    }
                    if d.push.len() > MAX_PUSHES {
                        return Err(invalid(
                            field("push"),
                            format!("{} targets; at most {MAX_PUSHES}", d.push.len()),
                        ));
                    }
                    for p in &d.push {
                        let rest = p.url.strip_prefix("rtmp://").unwrap_or("");
                        let ok = rest.split_once('/').is_some_and(|(host, app)| {
                            !host.is_empty() && !app.is_empty() && !app.contains('/')
                        });
                        if !ok {
                            return Err(invalid(
                                field("push"),
                                format!("{:?} is not rtmp://host[:port]/app", p.url),
                            ));
                        }
                    }
                }
                DomainKind::Streaming => {
                    if !d.push.is_empty() {
                        return Err(invalid(
                            field("push"),
                            "only an ingest domain pushes (its streams); put push on the ingest domain",
                        ));
                    }
                    let Some(ing) = &d.ingest else {
                        return Err(invalid(
                            field("ingest"),
                            "a streaming domain must name the ingest domain it plays from",
                        ));
                    };
                    let target = self
                        .domains
                        .iter()
                        .find(|x| x.name.eq_ignore_ascii_case(ing));
                    match target {
                        Some(t) if t.kind == DomainKind::Ingest => {}
                        Some(_) => {
                            return Err(invalid(
                                field("ingest"),
                                format!("{ing:?} is a streaming domain, not an ingest domain"),
                            ));
                        }
                        None => {
                            return Err(invalid(
                                field("ingest"),
                                format!("no domain named {ing:?} is configured"),
                            ));
                        }
                    }
                    if let Some(to) = &d.relay {
                        let target = self
                            .domains
                            .iter()
                            .find(|x| x.name.eq_ignore_ascii_case(to));
                        if !target.is_some_and(|t| t.kind == DomainKind::Ingest) {
                            return Err(invalid(
                                field("relay"),
                                format!("{to:?} is not a configured ingest domain"),
                            ));
                        }
                        if to.eq_ignore_ascii_case(ing) {
                            return Err(invalid(
                                field("relay"),
                                format!("{to:?} is this domain's own ingest domain"),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(from) = self.relay_cycle() {
            return Err(invalid(
                "domain.relay",
                format!("relays from {from:?} come back to it; a stream would be relayed forever"),
            ));
        }
        for kind in [DomainKind::Ingest, DomainKind::Streaming] {
            let n = self
                .domains
                .iter()
                .filter(|d| d.kind == kind && d.default)
                .count();
            let what = match kind {
                DomainKind::Ingest => "ingest",
                DomainKind::Streaming => "streaming",
            };
            if n > 1 {
                return Err(invalid(
                    "domain.default",
                    format!("{n} {what} domains say default = true; at most one may"),
                ));
            }
            if !self.domains.iter().any(|d| d.kind == kind) {
                return Err(invalid(
                    "domain",
                    format!("at least one {what} domain is required"),
                ));
            }
        }
        if self.limits.viewer_queue_frames < 16 {
            return Err(invalid("limits.viewer_queue_frames", "must be at least 16"));
        }
        if self.limits.max_gop_frames < 16 {
            return Err(invalid("limits.max_gop_frames", "must be at least 16"));
        }
        if self.limits.viewer_queue_frames < self.limits.max_gop_frames {
            return Err(invalid(
                "limits.viewer_queue_frames",
                format!(
                    "is {} but limits.max_gop_frames is {}: a new viewer could not take the cached GOP; make it at least max_gop_frames",
                    self.limits.viewer_queue_frames, self.limits.max_gop_frames
                ),
            ));
        }
        if self.limits.max_gop_bytes < 1 << 20 {
            return Err(invalid(
                "limits.max_gop_bytes",
                "must be at least 1 MiB (1048576)",
            ));
        }
        if self.limits.max_buffered_bytes < self.limits.max_gop_bytes {
            return Err(invalid(
                "limits.max_buffered_bytes",
                "must be at least limits.max_gop_bytes (one stream's GOP)",
            ));
        }
        for (f, v, min) in [
            (
                "limits.handshake_timeout_ms",
                self.limits.handshake_timeout_ms,
                100,
            ),
            (
                "limits.http_header_timeout_ms",
                self.limits.http_header_timeout_ms,
                100,
            ),
            ("limits.http_idle_ms", self.limits.http_idle_ms, 100),
            (
                "limits.publisher_silence_ms",
                self.limits.publisher_silence_ms,
                100,
            ),
        ] {
            if v < min {
                return Err(invalid(f, format!("must be at least {min} ms")));
            }
        }
        for (f, v) in [
            (
                "limits.max_rtmp_connections",
                self.limits.max_rtmp_connections,
            ),
            ("limits.max_rtmp_per_ip", self.limits.max_rtmp_per_ip),
            (
                "limits.max_http_connections",
                self.limits.max_http_connections,
            ),
            ("limits.max_http_per_ip", self.limits.max_http_per_ip),
        ] {
            if v == 0 {
                return Err(invalid(f, "must be at least 1"));
            }
        }
        if self.limits.max_message_bytes < 4096 {
            return Err(invalid("limits.max_message_bytes", "must be at least 4096"));
        }
        if let Some(tls) = &self.tls {
            for (f, p) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if p.as_os_str().is_empty() {
                    return Err(invalid(f, "is empty; give the path of a PEM file"));
                }
            }
        }
        if self.api.token.as_deref() == Some("") {
            return Err(invalid(
                "api.token",
                "is empty; remove the line for a random token",
            ));
        }
        for d in &mut self.domains {
            if d.primary_key.is_none() {
                d.primary_key = Some(random_secret()?);
            }
        }
        self.check_keys_not_shared()?;
        if self.api.token.is_none() {
            self.api.token = Some(random_secret()?);
        }
        Ok(())
    }

    /// An ingest domain and a streaming domain never share a key: both sign
    /// `/{app}/{stream}` for RTMP, so a shared key would let any viewer's
    /// play URL publish (or squat a stream while its owner is offline).
    fn check_keys_not_shared(&self) -> Result<(), ConfigError> {
        let keys = |d: &Domain| -> Vec<String> {
            [&d.primary_key, &d.secondary_key]
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        };
        for (i, a) in self.domains.iter().enumerate() {
            if a.kind != DomainKind::Ingest || !a.signing {
                continue;
            }
            for (j, b) in self.domains.iter().enumerate() {
                if b.kind != DomainKind::Streaming || !b.signing {
                    continue;
                }
                let (ka, kb) = (keys(a), keys(b));
                if ka.iter().any(|k| kb.contains(k)) {
                    return Err(invalid(
                        format!("domain[{i}].primary_key"),
                        format!(
                            "ingest domain {:?} (domain[{i}]) and streaming domain {:?} (domain[{j}]) share a signing key, so a play URL could publish; give each its own key",
                            a.name, b.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sets the primary key of the default domain of `kind`
    /// (`--ingest-key`, `--auth-key`). Giving both kinds the same key is
    /// refused by [`Config::finish`].
    pub fn set_default_key(&mut self, kind: DomainKind, key: &str) {
        if let Some(i) = self.default_index(kind)
            && let Some(d) = self.domains.get_mut(i)
        {
            d.primary_key = Some(key.to_owned());
        }
    }

    /// Turns signing off on every domain (`--no-auth`).
    pub fn disable_signing(&mut self) {
        for d in &mut self.domains {
            d.signing = false;
        }
    }

    fn default_index(&self, kind: DomainKind) -> Option<usize> {
        self.domains
            .iter()
            .position(|d| d.kind == kind && d.default)
            .or_else(|| self.domains.iter().position(|d| d.kind == kind))
    }

    /// The ingest domains `ingest`'s streams are relayed into (by its
    /// streaming domains' `relay`).
    pub fn relays_from(&self, ingest: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .domains
            .iter()
            .filter(|d| {
                d.kind == DomainKind::Streaming
                    && d.ingest
                        .as_deref()
                        .is_some_and(|i| i.eq_ignore_ascii_case(ingest))
            })
            .filter_map(|d| d.relay.as_deref())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// An ingest domain whose relays lead back to it, if any.
    fn relay_cycle(&self) -> Option<&str> {
        for start in self.domains.iter().filter(|d| d.kind == DomainKind::Ingest) {
            let start = start.name.as_str();
            let mut seen = vec![start];
            let mut frontier = self.relays_from(start);
            while let Some(next) = frontier.pop() {
                if next.eq_ignore_ascii_case(start) {
                    return Some(start);
                }
                if seen.iter().any(|s| s.eq_ignore_ascii_case(next)) {
                    continue;
                }
                seen.push(next);
                frontier.extend(self.relays_from(next));
            }
        }
        None
    }

    /// The default domain of a kind (unknown hosts map to it).
    pub fn default_domain(&self, kind: DomainKind) -> Option<&Domain> {
        self.default_index(kind).and_then(|i| self.domains.get(i))
    }

    /// The domain named `name` (case-insensitive).
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The domain a request is for: `vhost` when given, else `host` (an
    /// HTTP Host or tcUrl host, port allowed); a name that matches no
    /// domain maps to the default domain of `kind`. The result may be of
    /// the other kind (a publisher naming a streaming domain); callers
    /// refuse that.
    pub fn resolve(
        &self,
        host: Option<&str>,
        vhost: Option<&str>,
        kind: DomainKind,
    ) -> Option<&Domain> {
        let name = vhost.filter(|v| !v.is_empty()).or(host.map(strip_port));
        name.and_then(|n| self.domain(n))
            .or_else(|| self.default_domain(kind))
    }
}

/// `host:port` or `[v6]:port` to the host.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// The host of an RTMP tcUrl (`rtmp://host:port/app`).
pub fn tc_url_host(tc_url: &str) -> Option<&str> {
    let rest = tc_url.split_once("://").map_or(tc_url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!authority.is_empty()).then(|| strip_port(authority))
}

/// The value of `name` in a query string (percent-decoded), if present.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

const DEFAULT_TOML: &str = r#"# rts-server configuration (TOML). Every field is optional.

[listen]
rtmp = "0.0.0.0:1935"   # RTMP ingest and play (TCP)
http = "0.0.0.0:8080"   # HTTP-FLV, API, metrics, web player (TCP; HTTPS with [tls])
rtc = "0.0.0.0:8000"    # WebRTC, one UDP socket for every peer

[api]
# Bearer token (Authorization header) for /api/v1/... and /metrics; random
# (and printed at start-up) when absent.
# token = "change-me"
public_metrics = false       # true: /metrics without the token (it lists stream names)

# [tls]                  # serve HTTPS on the http port
# cert = "/etc/rts/cert.pem"
# key = "/etc/rts/key.pem"

[limits]
viewer_queue_frames = 2048   # a viewer further behind drops frames up to the next keyframe
max_behind_ms = 10000        # ... and is disconnected after dropping for this long
publisher_grace_ms = 5000    # a publisher back within this keeps its viewers
publisher_silence_ms = 3000  # a silent (half-open) publisher loses its stream to a new one
max_gop_frames = 2048        # frames kept for the last GOP (instant start)
max_gop_bytes = 50331648     # bytes kept for the last GOP of one stream (48 MiB)
max_buffered_bytes = 1073741824 # GOP bytes of all streams; past it publishers are refused
max_message_bytes = 16777216 # largest RTMP message from a publisher
handshake_timeout_ms = 10000 # RTMP handshake + connect + publish/play
http_header_timeout_ms = 10000 # HTTP request headers (also between keep-alive requests)
http_idle_ms = 60000         # an HTTP connection silent both ways is closed
max_rtmp_connections = 4096
max_rtmp_per_ip = 64
max_http_connections = 16384
max_http_per_ip = 512
shutdown_ms = 5000           # SIGTERM/SIGINT: longest wait for connections to end

[webrtc]
# ICE host candidates announced to browsers (the port is listen.rtc's). Empty:
# the listen.rtc IP, else the IP the browser used in the URL, plus 127.0.0.1.
candidates = []
bframes = "auto"             # auto | transcode | drop (B-frame removal for WebRTC)
transcode_kbps = 0           # 0: from the input's bitrate
opus_frame_ms = 10           # 10 | 20: Opus frame of the AAC -> Opus conversion
transcode_linger_s = 120     # a transcoder keeps decoding this long after its last viewer
transcode_warm_on_publish = false  # decode every B-frame stream from its publish on
max_sessions = 2000
ice_tcp = true               # also TCP (ICE-TCP passive) on listen.rtc's port number
ice_udp = true               # announce the UDP candidates
# STUN/TURN servers announced to WHIP/WHEP clients (Link headers), e.g. for
# viewers behind firewalls that block UDP (docs/nat-and-firewalls.md):
# [[webrtc.ice_servers]]
# url = "turn:turn.example.com:3478?transport=udp"
# username = "rts"
# credential = "change-me"

# At most 20 domains. Unknown hosts map to the default (first) domain of the
# kind the request needs; ?vhost=NAME picks a domain explicitly. An ingest
# and a streaming domain never share a key (a play URL would publish).
[[domain]]
name = "push.localhost"
kind = "ingest"
signing = true            # URLs need ?auth_key=...
# primary_key = "..."     # random when absent (printed at start-up)
# secondary_key = "..."   # accepted too, for key rotation
validity_minutes = 1440
# push = [{ url = "rtmp://other.example.com/live" }]  # also push every stream there
#                                  # (key = "..." signs it for a remote rts)

[[domain]]
name = "play.localhost"
kind = "streaming"
ingest = "push.localhost" # the ingest domain whose streams it plays
latency = "sub-second"    # or "half-second" (WHIP in, WebRTC out only)
# relay = "push2.localhost" # also publish its streams into that ingest domain
signing = true
validity_minutes = 1440
cors_origin = "*"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_to_the_default() {
        let mut a = Config::parse(DEFAULT_TOML).unwrap();
        let mut b = Config::default();
        b.finish().unwrap();
        for d in a.domains.iter_mut().chain(b.domains.iter_mut()) {
            assert_eq!(d.primary_key.as_ref().unwrap().len(), 32);
            d.primary_key = None;
        }
        a.api.token = None;
        b.api.token = None;
        assert_eq!(a, b);
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_secret().unwrap(), random_secret().unwrap());
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn relays_must_name_another_ingest_domain_and_never_loop() {
        let two = "[[domain]]\nname='a'\nkind='ingest'\n[[domain]]\nname='b'\nkind='ingest'\n\
            [[domain]]\nname='half'\nkind='streaming'\ningest='a'\nlatency='half-second'\n";
        let ok = Config::parse(&format!("{two}relay='b'\n")).unwrap();
        assert_eq!(ok.relays_from("a"), ["b"]);
        assert!(ok.relays_from("b").is_empty());
        assert_eq!(
            err(&format!("{two}relay='half'\n")),
            "config: domain[2].relay: \"half\" is not a configured ingest domain"
        );
        assert_eq!(
            err(&format!("{two}relay='a'\n")),
            "config: domain[2].relay: \"a\" is this domain's own ingest domain"
        );
        let cycle = format!(
            "{two}relay='b'\n[[domain]]\nname='back'\nkind='streaming'\ningest='b'\nrelay='a'\n"
        );
        assert!(err(&cycle).contains("come back to it"), "{}", err(&cycle));
        assert!(
            err("[[domain]]\nname='a'\nkind='ingest'\nrelay='a'\n")
                .contains("only a streaming domain relays")
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err("[[domain]]\nname='a'\nkind='ingest'\n[[domain]]\nname='b'\nkind='streaming'\n"),
            "config: domain[1].ingest: a streaming domain must name the ingest domain it plays from"
        );
        assert_eq!(
            err(
                "[[domain]]\nname='a'\nkind='ingest'\n[[domain]]\nname='b'\nkind='streaming'\ningest='c'\n"
            ),
            "config: domain[1].ingest: no domain named \"c\" is configured"
        );
        assert!(
            err("[listen]\nrtmp='nope'\n").contains("rtmp"),
            "{}",
            err("[listen]\nrtmp='nope'\n")
        );
        assert!(err("[limits]\nbogus=1\n").contains("bogus"));
        let e = err("[webrtc]\nbframes='sometimes'\n");
        assert!(
            e.contains("bframes") && e.contains("`auto`, `transcode`"),
            "{e}"
        );
        assert_eq!(
            Config::parse("[webrtc]\nbframes='drop'\n")
                .unwrap()
                .webrtc
                .bframes,
            BFrames::Drop
        );
        assert_eq!(
            err("[limits]\nviewer_queue_frames=2\n"),
            "config: limits.viewer_queue_frames: must be at least 16"
        );
        let mut many = String::new();
        for i in 0..21 {
            many.push_str(&format!("[[domain]]\nname='d{i}'\nkind='ingest'\n"));
        }
        assert!(err(&many).contains("at most 20"));
        assert!(
            err("[[domain]]\nname='a b'\nkind='ingest'\n").starts_with("config: domain[0].name:")
        );
        assert!(
            err("[[domain]]\nname='a'\nkind='ingest'\n[[domain]]\nname='A'\nkind='streaming'\ningest='a'\n")
                .contains("configured twice")
        );
        assert!(
            err("[[domain]]\nname='a'\nkind='ingest'\n").contains("streaming domain is required")
        );
    }

    #[test]
    fn opus_frame_is_10_or_20_ms() {
        assert_eq!(Config::parse("").unwrap().webrtc.opus_frame_ms, 10);
        let twenty = Config::parse("[webrtc]\nopus_frame_ms=20\n").unwrap();
        assert_eq!(twenty.webrtc.opus_frame_ms, 20);
        assert!(err("[webrtc]\nopus_frame_ms=5\n").contains("webrtc.opus_frame_ms"));
    }

    #[test]
    fn ice_servers_are_checked() {
        let ok = Config::parse(
            "[[webrtc.ice_servers]]\nurl='turn:t.example:3478?transport=udp'\nusername='u'\ncredential='p'\n",
        )
        .unwrap();
        assert_eq!(ok.webrtc.ice_servers.len(), 1);
        assert!(
            err("[[webrtc.ice_servers]]\nurl='turn:t.example:3478'\n")
                .contains("needs username and credential")
        );
        assert!(err("[[webrtc.ice_servers]]\nurl='http://x'\n").contains("webrtc.ice_servers[0]"));
        assert!(
            err("[[webrtc.ice_servers]]\nurl='stun:x'\nusername='a\\\"b'\n").contains("quotes")
        );
    }

    #[test]
    fn resolution() {
        let mut c = Config::parse(
            "[[domain]]\nname='push.x'\nkind='ingest'\n\
             [[domain]]\nname='push.y'\nkind='ingest'\ndefault=true\n\
             [[domain]]\nname='play.x'\nkind='streaming'\ningest='push.x'\n",
        )
        .unwrap();
        let name = |c: &Config, h: Option<&str>, v: Option<&str>, k| {
            c.resolve(h, v, k).unwrap().name.clone()
        };
        assert_eq!(
            name(&c, Some("push.x:1935"), None, DomainKind::Ingest),
            "push.x"
        );
        assert_eq!(
            name(&c, Some("127.0.0.1"), None, DomainKind::Ingest),
            "push.y"
        );
        assert_eq!(
            name(&c, Some("127.0.0.1:8080"), None, DomainKind::Streaming),
            "play.x"
        );
        assert_eq!(
            name(&c, Some("push.y"), Some("play.x"), DomainKind::Ingest),
            "play.x"
        );
        assert_eq!(name(&c, Some("PLAY.X"), None, DomainKind::Ingest), "play.x");
        c.set_default_key(DomainKind::Ingest, "k");
        c.set_default_key(DomainKind::Streaming, "p");
        assert_eq!(
            c.domain("push.y").unwrap().primary_key.as_deref(),
            Some("k")
        );
        assert_eq!(
            c.domain("play.x").unwrap().primary_key.as_deref(),
            Some("p")
        );
        assert_ne!(
            c.domain("push.x").unwrap().primary_key.as_deref(),
            Some("k")
        );
        c.finish().unwrap();
        // The same key on an ingest and a streaming domain is refused,
        // naming both.
        c.set_default_key(DomainKind::Streaming, "k");
        let e = c.finish().unwrap_err().to_string();
        assert!(
            e.contains("\"push.y\" (domain[1])") && e.contains("\"play.x\" (domain[2])"),
            "{e}"
        );
        let mut shared = Config::default();
        shared.domains[0].primary_key = Some("a".into());
        shared.domains[1].secondary_key = Some("a".into());
        assert!(
            shared
                .finish()
                .unwrap_err()
                .to_string()
                .contains("share a signing key")
        );
        // Not when one of them does not sign.
        shared.domains[1].signing = false;
        shared.finish().unwrap();
        c.disable_signing();
        assert!(c.domains.iter().all(|d| !d.signing));
    }

    #[test]
    fn hosts() {
        assert_eq!(tc_url_host("rtmp://push.x:1935/live"), Some("push.x"));
        assert_eq!(
            tc_url_host("rtmp://127.0.0.1/live?vhost=a"),
            Some("127.0.0.1")
        );
        assert_eq!(tc_url_host("rtmp://[::1]:19/live"), Some("::1"));
        assert_eq!(tc_url_host("rtmp:///live"), None);
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("a.b"), "a.b");
        assert_eq!(
            query_param("?x=1&vhost=a%2Eb", "vhost").as_deref(),
            Some("a.b")
        );
        assert_eq!(query_param("", "vhost"), None);
    }
}
