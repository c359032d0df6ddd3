//! Which domain a request is for, and whether its URL is signed: the checks
//! every entry point (RTMP publish and play, HTTP-FLV) shares.

use std::time::{SystemTime, UNIX_EPOCH};

use rts_auth::urls::{Protocol, check_name};

use crate::config::{Config, DomainKind, Latency, query_param};
use crate::metrics::ErrorKind;

/// A refused request: what to count, and the text the peer sees (why, and
/// what to do about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The error counter it goes to.
    pub(crate) kind: ErrorKind,
    /// The reason, as the peer sees it.
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Refusal {
            kind,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first query (of those given, in order) with a `name` parameter.
pub(crate) fn param(queries: &[&str], name: &str) -> Option<String> {
    queries.iter().find_map(|q| query_param(q, name))
}

fn check_names(app: &str, stream: &str) -> Result<(), Refusal> {
    check_name("app", app)
        .and_then(|()| check_name("stream", stream))
        .map_err(|e| Refusal::new(ErrorKind::Domain, e.to_string()))
}

fn check_signature(
    domain: &crate::config::Domain,
    uri: &str,
    queries: &[&str],
    now: u64,
) -> Result<(), Refusal> {
    if !domain.signing {
        return Ok(());
    }
    // The auth_key may come with the stream name or with the app (connect).
    let query = queries
        .iter()
        .find(|q| matches!(rts_auth::auth_key_from_query(q), Ok(Some(_)) | Err(_)))
        .copied();
    rts_auth::verify_query(uri, query, &domain.keys(), domain.validity(), now)
        .map(|_| ())
        .map_err(|e| Refusal::new(ErrorKind::Auth, e.to_string()))
}

/// How a publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ingest {
    Rtmp,
    Whip,
}

/// Checks a publish of `/{app}/{stream}` over `via`; returns the ingest
/// domain name. An ingest domain whose streaming domains are all
/// half-second takes WHIP only (the mode is WHIP in, WebRTC out).
pub(crate) fn publish(
    config: &Config,
    host: Option<&str>,
    via: Ingest,
    app: &str,
    stream: &str,
    queries: &[&str],
    now: u64,
) -> Result<String, Refusal> {
    let vhost = param(queries, "vhost");
    let domain = config
        .resolve(host, vhost.as_deref(), DomainKind::Ingest)
        .ok_or_else(|| {
            Refusal::new(
                ErrorKind::Domain,
                "no ingest domain is configured".to_owned(),
            )
        })?;
    if domain.kind != DomainKind::Ingest {
        return Err(Refusal::new(
            ErrorKind::Domain,
            format!(
                "{} is a streaming domain: publish to its ingest domain {}",
                domain.name,
                domain.ingest.as_deref().unwrap_or("?")
            ),
        ));
    }
    if via == Ingest::Rtmp {
        let mut fed = config
            .domains
            .iter()
            .filter(|d| {
                d.kind == DomainKind::Streaming && d.ingest.as_deref() == Some(&domain.name)
            })
            .peekable();
        if fed.peek().is_some() && fed.all(|d| d.latency == Latency::HalfSecond) {
            return Err(Refusal::new(
                ErrorKind::Domain,
                format!(
                    "{} feeds half-second streaming domains only: publish over WHIP (POST /{app}/{stream}/whip), or to an ingest domain with a sub-second streaming domain",
                    domain.name
                ),
            ));
        }
    }
    check_names(app, stream)?;
    if let Some(ext) = PLAY_EXTENSIONS.iter().find(|e| stream.ends_with(*e)) {
        return Err(Refusal::new(
            ErrorKind::Domain,
            format!(
                "stream name {stream:?} ends in {ext}, which names a play URL (/{app}/{stream} would be ambiguous); publish it without the extension"
            ),
        ));
    }
    check_signature(domain, &Protocol::Rtmp.uri(app, stream), queries, now)?;
    Ok(domain.name.clone())
}

/// Extensions of play URLs: a stream may not be published under a name
/// that ends in one (`x.flv` is the FLV form of `x`).
const PLAY_EXTENSIONS: [&str; 4] = [".flv", ".m3u8", ".m4s", ".ts"];

/// A play that passed the checks.
#[derive(Debug)]
pub(crate) struct Play {
    /// The ingest domain whose stream is played.
    pub(crate) ingest: String,
    /// `Access-Control-Allow-Origin` of the streaming domain.
    pub(crate) cors_origin: Option<String>,
}

/// Checks a play of `app/stream` over `protocol` (its uri is what is signed).
pub(crate) fn play(
    config: &Config,
    host: Option<&str>,
    protocol: Protocol,
    app: &str,
    stream: &str,
    queries: &[&str],
    now: u64,
) -> Result<Play, Refusal> {
    let vhost = param(queries, "vhost");
    let domain = config
        .resolve(host, vhost.as_deref(), DomainKind::Streaming)
        .ok_or_else(|| {
            Refusal::new(
                ErrorKind::Domain,
                "no streaming domain is configured".to_owned(),
            )
        })?;
    if domain.kind != DomainKind::Streaming {
        return Err(Refusal::new(
            ErrorKind::Domain,
            format!(
                "{} is an ingest domain: play from a streaming domain",
                domain.name
            ),
        ));
    }
    if domain.latency == Latency::HalfSecond && protocol != Protocol::Artc {
        return Err(Refusal::new(
            ErrorKind::Domain,
            format!(
                "{} is a half-second domain: it plays over WebRTC (artc://) only; use a sub-second domain for RTMP, FLV or HLS",
                domain.name
            ),
        ));
    }
    check_names(app, stream)?;
    check_signature(domain, &protocol.uri(app, stream), queries, now)?;
    Ok(Play {
        ingest: domain.ingest.clone().unwrap_or_default(),
        cors_origin: domain.cors_origin.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::default();
        c.set_default_key(DomainKind::Ingest, "k1");
        c.set_default_key(DomainKind::Streaming, "p1");
        c.domains[0].secondary_key = Some("k2".into());
        c.finish().unwrap();
        c
    }

    #[test]
    fn publish_checks() {
        let c = config();
        let now = 1_700_000_000;
        let key = rts_auth::sign("/live/demo", now, "0", "0", "k1").unwrap();
        let q = format!("auth_key={key}");
        assert_eq!(
            publish(
                &c,
                Some("1.2.3.4"),
                Ingest::Rtmp,
                "live",
                "demo",
                &[&q],
                now
            )
            .unwrap(),
            "push.localhost"
        );
        // Key on the connect URL instead.
        assert!(publish(&c, None, Ingest::Rtmp, "live", "demo", &["", &q], now).is_ok());
        let key2 = rts_auth::sign("/live/demo", now, "0", "0", "k2").unwrap();
        assert!(
            publish(
                &c,
                None,
                Ingest::Rtmp,
                "live",
                "demo",
                &[&format!("auth_key={key2}")],
                now
            )
            .is_ok()
        );
        let e = publish(&c, None, Ingest::Rtmp, "live", "other", &[&q], now).unwrap_err();
        assert!(e.reason.starts_with("invalid md5hash="), "{e:?}");
        let e = publish(&c, None, Ingest::Rtmp, "live", "demo", &[""], now).unwrap_err();
        assert!(e.reason.starts_with("missing auth_key"), "{e:?}");
        let e = publish(
            &c,
            None,
            Ingest::Rtmp,
            "live",
            "demo",
            &[&q],
            now + 1441 * 60,
        )
        .unwrap_err();
        assert!(e.reason.starts_with("expired timestamp="), "{e:?}");
        let e = publish(
            &c,
            Some("play.localhost"),
            Ingest::Rtmp,
            "live",
            "demo",
            &[&q],
            now,
        )
        .unwrap_err();
        assert!(e.reason.contains("streaming domain"), "{e:?}");
        let e = publish(&c, None, Ingest::Rtmp, "live", "de mo", &[&q], now).unwrap_err();
        assert!(e.reason.contains("stream"), "{e:?}");
        // A name that is also a play URL, even when signed.
        let flv = rts_auth::sign("/live/demo.flv", now, "0", "0", "k1").unwrap();
        let e = publish(
            &c,
            None,
            Ingest::Rtmp,
            "live",
            "demo.flv",
            &[&format!("auth_key={flv}")],
            now,
        )
        .unwrap_err();
        assert!(e.reason.contains("ends in .flv"), "{e:?}");
        assert!(publish(&c, None, Ingest::Rtmp, "live", "demo.m3u8", &[&q], now).is_err());
        // A play URL (streaming key) never publishes.
        let play_key = rts_auth::sign("/live/demo", now, "0", "0", "p1").unwrap();
        let e = publish(
            &c,
            None,
            Ingest::Rtmp,
            "live",
            "demo",
            &[&format!("auth_key={play_key}")],
            now,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
    }

    #[test]
    fn play_checks() {
        let mut c = config();
        let now = 1_700_000_000;
        let flv = rts_auth::sign("/live/demo.flv", now, "0", "0", "p1").unwrap();
        let q = format!("auth_key={flv}");
        let p = play(
            &c,
            Some("x:8080"),
            Protocol::Flv,
            "live",
            "demo",
            &[&q],
            now,
        )
        .unwrap();
        assert_eq!(p.ingest, "push.localhost");
        assert_eq!(p.cors_origin.as_deref(), Some("*"));
        // An FLV key does not open RTMP (another uri).
        assert!(play(&c, None, Protocol::Rtmp, "live", "demo", &[&q], now).is_err());
        let e = play(
            &c,
            None,
            Protocol::Flv,
            "live",
            "demo",
            &[&format!("vhost=push.localhost&{q}")],
            now,
        )
        .unwrap_err();
        assert!(e.reason.contains("ingest domain"));
        c.domains[1].latency = Latency::HalfSecond;
        let e = play(&c, None, Protocol::Flv, "live", "demo", &[&q], now).unwrap_err();
        assert!(e.reason.contains("half-second"));
        c.disable_signing();
        // Its ingest domain then takes WHIP, not RTMP.
        let e = publish(&c, None, Ingest::Rtmp, "live", "demo", &[""], now).unwrap_err();
        assert!(e.reason.contains("over WHIP"), "{}", e.reason);
        assert!(publish(&c, None, Ingest::Whip, "live", "demo", &[""], now).is_ok());
        c.domains[1].latency = Latency::SubSecond;
        assert!(publish(&c, None, Ingest::Rtmp, "live", "demo", &[""], now).is_ok());
        assert!(play(&c, None, Protocol::Rtmp, "live", "demo", &[""], now).is_ok());
    }
}
