//! Signed ingest and play URLs for a stream, as a console's URL generator
//! makes them. Each URL is signed over its own uri ([`Protocol::uri`]); the
//! ingest URL with the ingest domain's key, the play URLs with the
//! streaming domain's (never the same key: a play URL would publish).
//!
//! ```
//! use rts_auth::urls::{Site, Signing, generate};
//!
//! let site = Site::new("push.example.com", "pull.example.com");
//! let ingest = Signing::new("INGEST-KEY", 1_700_000_000);
//! let play = Signing::new("PLAY-KEY", 1_700_000_000);
//! let urls = generate(&site, "live", "demo", Some("lhd"), &ingest, &play)?;
//! assert!(urls.ingest.starts_with("rtmp://push.example.com/live/demo?auth_key=1700000000-0-0-"));
//! assert!(urls.play.flv.starts_with("http://pull.example.com:8080/live/demo.flv?auth_key="));
//! let names: Vec<_> = urls.named().into_iter().map(|(name, _)| name).collect();
//! assert_eq!(names, ["ingest", "artc", "rtmp", "flv", "hls", "artc_lhd", "rtmp_lhd", "flv_lhd", "hls_lhd"]);
//! # Ok::<(), rts_auth::SignError>(())
//! ```

use crate::{SignError, sign};

/// A way to reach a stream; each is signed over its own uri.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RTMP publish or play: uri `/{app}/{stream}`.
    Rtmp,
    /// WebRTC (`artc://`, served through WHEP/WHIP): uri `/{app}/{stream}`.
    Artc,
    /// HTTP-FLV: uri `/{app}/{stream}.flv`.
    Flv,
    /// HLS: uri `/{app}/{stream}.m3u8`.
    Hls,
}

impl Protocol {
    /// The uri a URL of this protocol is signed over.
    pub fn uri(self, app: &str, stream: &str) -> String {
        match self {
            Protocol::Rtmp | Protocol::Artc => format!("/{app}/{stream}"),
            Protocol::Flv => format!("/{app}/{stream}.flv"),
            Protocol::Hls => format!("/{app}/{stream}.m3u8"),
        }
    }
}

/// The domains and ports URLs point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The ingest (publishing) domain.
    pub ingest_domain: String,
    /// The streaming (playing) domain.
    pub streaming_domain: String,
    /// RTMP port; omitted from URLs when it is 1935.
    pub rtmp_port: u16,
    /// HTTP(S) port of FLV, HLS and WHEP; omitted when it is the scheme's
    /// default.
    pub http_port: u16,
    /// `https://` instead of `http://`.
    pub https: bool,
    /// Extra query parameters put before `auth_key` (for example
    /// `vhost=pull.example.com` when the host is an IP address).
    pub extra_query: Option<String>,
}

impl Site {
    /// Default ports (RTMP 1935, HTTP 8080), plain HTTP.
    pub fn new(ingest_domain: impl Into<String>, streaming_domain: impl Into<String>) -> Self {
        Self {
            ingest_domain: ingest_domain.into(),
            streaming_domain: streaming_domain.into(),
            rtmp_port: 1935,
            http_port: 8080,
            https: false,
            extra_query: None,
        }
    }
}

/// What a URL is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// The domain's primary key.
    pub key: String,
    /// Unix time the validity counts from.
    pub timestamp: u64,
    /// The rand part (no `-`); `0` by default.
    pub rand: String,
    /// The uid part (no `-`); `0` by default.
    pub uid: String,
}

impl Signing {
    /// `rand` and `uid` are `0`.
    pub fn new(key: impl Into<String>, timestamp: u64) -> Self {
        Self {
            key: key.into(),
            timestamp,
            rand: "0".into(),
            uid: "0".into(),
        }
    }
}

/// The play URLs of one stream (or one transcoded rendition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayUrls {
    /// `artc://{streaming-domain}/{app}/{stream}?auth_key=…`
    pub artc: String,
    /// `rtmp://{streaming-domain}/{app}/{stream}?auth_key=…`
    pub rtmp: String,
    /// `http://{streaming-domain}:8080/{app}/{stream}.flv?auth_key=…`
    pub flv: String,
    /// `http://{streaming-domain}:8080/{app}/{stream}.m3u8?auth_key=…`
    pub hls: String,
}

/// Every URL of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSet {
    /// The RTMP publishing URL.
    pub ingest: String,
    /// The play URLs of the stream as published.
    pub play: PlayUrls,
    /// The template id and play URLs of `{stream}_{template}`, when asked.
    pub transcoded: Option<(String, PlayUrls)>,
}

impl UrlSet {
    /// `(name, url)` pairs: `ingest`, `artc`, `rtmp`, `flv`, `hls`, then
    /// `artc_{template}`… for the transcoded rendition.
    pub fn named(&self) -> Vec<(String, &str)> {
        let mut out = vec![("ingest".to_owned(), self.ingest.as_str())];
        out.extend(self.play.named(""));
        if let Some((template, p)) = &self.transcoded {
            out.extend(p.named(&format!("_{template}")));
        }
        out
    }
}

impl PlayUrls {
    fn named(&self, suffix: &str) -> [(String, &str); 4] {
        [
            ("artc", &self.artc),
            ("rtmp", &self.rtmp),
            ("flv", &self.flv),
            ("hls", &self.hls),
        ]
        .map(|(name, url)| (format!("{name}{suffix}"), url.as_str()))
    }
}

/// Checks a name used as one path segment of a URL: 1 to 128 of
/// `A-Z a-z 0-9 - _ .`, not starting with `.`.
pub fn check_name(what: &'static str, value: &str) -> Result<(), SignError> {
    let why = "use 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'";
    let ok = (1..=128).contains(&value.len())
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SignError::Name {
            what,
            value: value.to_owned(),
            why,
        })
    }
}

fn check_template(value: &str) -> Result<(), SignError> {
    let ok = (1..=32).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SignError::Name {
            what: "template id",
            value: value.to_owned(),
            why: "use 1 to 32 letters or digits (the rendition is {stream}_{template})",
        })
    }
}

fn check_domain(value: &str) -> Result<(), SignError> {
    let ok = (1..=253).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SignError::Name {
            what: "domain",
            value: value.to_owned(),
            why: "use a host name or IPv4 address without scheme, port or path",
        })
    }
}

fn authority(host: &str, port: u16, default: u16) -> String {
    if port == default {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

fn signed(
    scheme: &str,
    authority: &str,
    protocol: Protocol,
    app: &str,
    stream: &str,
    site: &Site,
    s: &Signing,
) -> Result<String, SignError> {
    let uri = protocol.uri(app, stream);
    let key = sign(&uri, s.timestamp, &s.rand, &s.uid, &s.key)?;
    let extra = site
        .extra_query
        .as_deref()
        .map(|q| format!("{q}&"))
        .unwrap_or_default();
    Ok(format!("{scheme}://{authority}{uri}?{extra}auth_key={key}"))
}

fn play_urls(site: &Site, app: &str, stream: &str, s: &Signing) -> Result<PlayUrls, SignError> {
    let host = &site.streaming_domain;
    let (http, http_default) = if site.https {
        ("https", 443)
    } else {
        ("http", 80)
    };
    let http_auth = authority(host, site.http_port, http_default);
    Ok(PlayUrls {
        artc: signed("artc", host, Protocol::Artc, app, stream, site, s)?,
        rtmp: signed(
            "rtmp",
            &authority(host, site.rtmp_port, 1935),
            Protocol::Rtmp,
            app,
            stream,
            site,
            s,
        )?,
        flv: signed(http, &http_auth, Protocol::Flv, app, stream, site, s)?,
        hls: signed(http, &http_auth, Protocol::Hls, app, stream, site, s)?,
    })
}

/// Builds and signs every URL of `{app}/{stream}` (and of
/// `{stream}_{template}` when a template id is given): the ingest URL with
/// `ingest`, the play URLs with `play`. One key for both is
/// [`SignError::SharedKey`].
pub fn generate(
    site: &Site,
    app: &str,
    stream: &str,
    template: Option<&str>,
    ingest: &Signing,
    play: &Signing,
) -> Result<UrlSet, SignError> {
    check_domain(&site.ingest_domain)?;
    check_domain(&site.streaming_domain)?;
    check_name("app", app)?;
    check_name("stream", stream)?;
    if ingest.key.is_empty() || play.key.is_empty() {
        return Err(SignError::EmptyKey);
    }
    if ingest.key == play.key {
        return Err(SignError::SharedKey);
    }
    let signing = ingest;
    let ingest_auth = authority(&site.ingest_domain, site.rtmp_port, 1935);
    let ingest = signed(
        "rtmp",
        &ingest_auth,
        Protocol::Rtmp,
        app,
        stream,
        site,
        signing,
    )?;
    let transcoded = match template {
        Some(t) => {
            check_template(t)?;
            Some((
                t.to_owned(),
                play_urls(site, app, &format!("{stream}_{t}"), play)?,
            ))
        }
        None => None,
    };
    let play = play_urls(site, app, stream, play)?;
    Ok(UrlSet {
        ingest,
        play,
        transcoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keys, verify};
    use std::time::Duration;

    fn parts(url: &str) -> (&str, &str) {
        let (before, key) = url.split_once("auth_key=").unwrap();
        let path_start = before.find("://").unwrap() + 3;
        let path = &before[path_start..];
        let path = &path[path.find('/').unwrap()..];
        (path.split('?').next().unwrap(), key)
    }

    #[test]
    fn every_url_verifies_over_its_own_uri() {
        let site = Site::new("push.example.com", "pull.example.com");
        let (ingest, play) = (Signing::new("IN", 1000), Signing::new("PLAY", 1000));
        let set = generate(&site, "live", "demo", Some("lld"), &ingest, &play).unwrap();
        for (name, url) in set.named() {
            let (uri, key) = parts(url);
            let keys = Keys::new(if name == "ingest" { "IN" } else { "PLAY" });
            verify(uri, key, &keys, Duration::from_secs(60), 1060)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The RTMP play URL does not verify as a publish (other key).
        let (uri, key) = parts(&set.play.rtmp);
        assert!(verify(uri, key, &Keys::new("IN"), Duration::from_secs(60), 1060).is_err());
        assert_eq!(
            set.transcoded
                .as_ref()
                .unwrap()
                .1
                .flv
                .split('?')
                .next()
                .unwrap(),
            "http://pull.example.com:8080/live/demo_lld.flv"
        );
        assert!(
            set.play
                .artc
                .starts_with("artc://pull.example.com/live/demo?auth_key=")
        );
        assert!(
            set.play
                .hls
                .starts_with("http://pull.example.com:8080/live/demo.m3u8?auth_key=")
        );
        assert!(
            set.play
                .rtmp
                .starts_with("rtmp://pull.example.com/live/demo?auth_key=")
        );
        // RTMP and ARTC share a uri, FLV differs.
        assert_eq!(parts(&set.play.artc).1, parts(&set.play.rtmp).1);
        assert_ne!(parts(&set.play.artc).1, parts(&set.play.flv).1);
    }

    #[test]
    fn ports_and_extra_query() {
        let mut site = Site::new("127.0.0.1", "127.0.0.1");
        site.rtmp_port = 19350;
        site.http_port = 443;
        site.https = true;
        site.extra_query = Some("vhost=pull.example.com".into());
        let set = generate(
            &site,
            "live",
            "demo",
            None,
            &Signing::new("k", 1),
            &Signing::new("p", 1),
        )
        .unwrap();
        assert!(set.ingest.starts_with(
            "rtmp://127.0.0.1:19350/live/demo?vhost=pull.example.com&auth_key=1-0-0-"
        ));
        assert!(
            set.play
                .flv
                .starts_with("https://127.0.0.1/live/demo.flv?vhost=")
        );
        assert!(set.transcoded.is_none());
        assert_eq!(set.named().len(), 5);
    }

    #[test]
    fn bad_names_are_caller_errors() {
        let site = Site::new("push.example.com", "pull.example.com");
        let s = Signing::new("k", 1);
        let p = Signing::new("p", 1);
        for (app, stream, template) in [
            ("", "s", None),
            ("a/b", "s", None),
            ("a", ".s", None),
            ("a", "s", Some("x_y")),
            ("a", "s", Some("")),
        ] {
            let err = generate(&site, app, stream, template, &s, &p).unwrap_err();
            assert!(matches!(err, SignError::Name { .. }), "{err}");
        }
        assert!(generate(&Site::new("http://x", "y"), "a", "s", None, &s, &p).is_err());
        assert_eq!(
            generate(&site, "a", "s", None, &Signing::new("", 1), &p),
            Err(SignError::EmptyKey)
        );
        assert_eq!(
            generate(&site, "a", "s", None, &s, &s),
            Err(SignError::SharedKey)
        );
        let mut bad_rand = Signing::new("k", 1);
        bad_rand.rand = "a-b".into();
        assert!(matches!(
            generate(&site, "a", "s", None, &bad_rand, &p),
            Err(SignError::Rand(_))
        ));
    }
}
