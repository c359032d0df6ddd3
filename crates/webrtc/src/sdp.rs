//! Offer inspection: which codecs and directions an offer carries
//! (RFC 8866 6, RFC 3264 5-6), checked before the stack answers it.

use std::collections::BTreeMap;

use crate::error::Error;

/// Largest offer accepted (bytes). Browsers send 5-10 KB.
pub const MAX_OFFER_LEN: usize = 64 * 1024;

/// A codec this server sends or receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// H.264 (RFC 6184), packetization-mode 1.
    H264,
    /// Opus (RFC 7587), 48000/2.
    Opus,
    /// RTX retransmission stream (RFC 4588).
    Rtx,
    /// Anything else (its encoding name is not kept).
    Other,
}

/// Media kind of an m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
}

/// Direction attribute of an m-line, from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

/// One m-line of an offer, as far as codec negotiation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Audio or video.
    pub kind: MediaKind,
    /// The offerer's direction.
    pub direction: Direction,
    /// Payload types of usable codecs (H.264 constrained baseline with
    /// packetization-mode=1, Opus 48000/2): what we can send.
    pub usable: Vec<u8>,
    /// Payload types we can receive (a WHIP publisher's): H.264 of any
    /// profile with packetization-mode=1, Opus 48000/2.
    pub receivable: Vec<u8>,
    /// Every payload type of this m-line and its codec.
    pub codecs: BTreeMap<u8, Codec>,
    /// Port 0 (rejected or stopped). An m-line with port 0 and
    /// `a=bundle-only` (RFC 8843 6, as GStreamer's webrtcbin offers audio)
    /// is neither: it shares the BUNDLE transport.
    pub port_zero: bool,
}

/// What an offer contains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OfferSummary {
    /// The audio and video m-lines in order (others are skipped).
    pub media: Vec<Media>,
}

impl OfferSummary {
    /// Whether some m-line of `kind` has a usable codec.
    pub fn has_usable(&self, kind: MediaKind) -> bool {
        self.media
            .iter()
            .any(|m| m.kind == kind && !m.port_zero && !m.usable.is_empty())
    }

    /// Whether some m-line of `kind` has a codec we can receive.
    pub fn has_receivable(&self, kind: MediaKind) -> bool {
        self.media
            .iter()
            .any(|m| m.kind == kind && !m.port_zero && !m.receivable.is_empty())
    }
}

/// Whether an H.264 `profile-level-id` (hex, 6 digits) is one our
/// constrained-baseline stream can be sent as: profile_idc 66 with
/// constraint_set1 (42e0.., 42c0..) or plain baseline (4200..), which every
/// baseline decoder accepts (RFC 6184 8.1).
pub fn is_constrained_baseline(profile_level_id: &str) -> bool {
    let p = profile_level_id.trim().to_ascii_lowercase();
    p.len() == 6 && (p.starts_with("42e0") || p.starts_with("4200") || p.starts_with("42c0"))
}

/// One audio or video m-line as both readers below see it (one reader of
/// the format: `summarize` and `payload_types` cannot disagree).
struct Section {
    kind: MediaKind,
    direction: Direction,
    port_zero: bool,
    bundle_only: bool,
    rtpmap: BTreeMap<u8, String>,
    fmtp: BTreeMap<u8, String>,
}

/// The audio and video m-lines of an SDP, in order (others are skipped).
fn sections(sdp: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut cur: Option<Section> = None;
    let mut skipping = false;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            out.extend(cur.take());
            let mut f = rest.split_whitespace();
            let kind = match f.next() {
                Some("audio") => Some(MediaKind::Audio),
                Some("video") => Some(MediaKind::Video),
                _ => None,
            };
            skipping = kind.is_none();
            cur = kind.map(|kind| Section {
                kind,
                direction: Direction::SendRecv,
                port_zero: f.next() == Some("0"),
                bundle_only: false,
                rtpmap: BTreeMap::new(),
                fmtp: BTreeMap::new(),
            });
            continue;
        }
        if skipping {
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        match line {
            "a=sendrecv" => c.direction = Direction::SendRecv,
            "a=sendonly" => c.direction = Direction::SendOnly,
            "a=recvonly" => c.direction = Direction::RecvOnly,
            "a=inactive" => c.direction = Direction::Inactive,
            "a=bundle-only" => c.bundle_only = true,
            _ => {
                if let Some(r) = line.strip_prefix("a=rtpmap:") {
                    if let Some((pt, name)) = split_pt(r) {
                        c.rtpmap.insert(pt, name.trim().to_ascii_lowercase());
                    }
                } else if let Some(r) = line.strip_prefix("a=fmtp:")
                    && let Some((pt, params)) = split_pt(r)
                {
                    c.fmtp.insert(pt, params.trim().to_string());
                }
            }
        }
    }
    out.extend(cur);
    out
}

/// The codec an rtpmap encoding name (lowercase) stands for.
fn codec_of(name: &str) -> Codec {
    if name.starts_with("h264/") {
        Codec::H264
    } else if name.starts_with("opus/") {
        Codec::Opus
    } else if name.starts_with("rtx/") {
        Codec::Rtx
    } else {
        Codec::Other
    }
}

/// Whether payload type `pt` of section `c` is one we send (`send`) or
/// receive: Opus 48000/2, or H.264 packetization-mode=1, constrained
/// baseline to send, any profile to receive.
fn usable(c: &Section, pt: u8, name: &str, send: bool) -> bool {
    match (c.kind, codec_of(name)) {
        (MediaKind::Audio, Codec::Opus) => name == "opus/48000/2",
        (MediaKind::Video, Codec::H264) => {
            name == "h264/90000"
                && c.fmtp.get(&pt).is_some_and(|f| {
                    let mut mode1 = false;
                    let mut cb = false;
                    for kv in f.split(';') {
                        let mut it = kv.trim().splitn(2, '=');
                        let k = it.next().unwrap_or("").trim().to_ascii_lowercase();
                        let v = it.next().unwrap_or("").trim();
                        if k == "packetization-mode" && v == "1" {
                            mode1 = true;
                        }
                        if k == "profile-level-id" && is_constrained_baseline(v) {
                            cb = true;
                        }
                    }
                    mode1 && (cb || !send)
                })
        }
        _ => false,
    }
}

/// Reads the audio/video m-lines of an offer and their usable codecs.
pub fn summarize(offer: &str) -> Result<OfferSummary, Error> {
    if offer.len() > MAX_OFFER_LEN {
        return Err(Error::MalformedOffer(format!(
            "offer is {} bytes, more than {MAX_OFFER_LEN}",
            offer.len()
        )));
    }
    if !offer.trim_start().starts_with("v=0") {
        return Err(Error::MalformedOffer("does not start with v=0".into()));
    }
    let media: Vec<Media> = sections(offer)
        .into_iter()
        .map(|c| Media {
            kind: c.kind,
            direction: c.direction,
            usable: c
                .rtpmap
                .iter()
                .filter(|(pt, name)| usable(&c, **pt, name, true))
                .map(|(pt, _)| *pt)
                .collect(),
            receivable: c
                .rtpmap
                .iter()
                .filter(|(pt, name)| usable(&c, **pt, name, false))
                .map(|(pt, _)| *pt)
                .collect(),
            codecs: c.rtpmap.iter().map(|(pt, n)| (*pt, codec_of(n))).collect(),
            port_zero: c.port_zero && !c.bundle_only,
        })
        .collect();
    if media.is_empty() {
        return Err(Error::MalformedOffer("no audio or video m-line".into()));
    }
    Ok(OfferSummary { media })
}

fn split_pt(s: &str) -> Option<(u8, &str)> {
    let (pt, rest) = s.split_once(' ')?;
    Some((pt.trim().parse().ok()?, rest))
}

/// The offer as the stack should see it: an m-line offered with port 0 and
/// `a=bundle-only` (RFC 8843 6; GStreamer's webrtcbin offers its audio so)
/// gets port 9 and loses the attribute, so that the stack answers it on the
/// BUNDLE transport instead of treating it as rejected. Other offers come
/// back unchanged.
pub fn normalize_offer(offer: &str) -> std::borrow::Cow<'_, str> {
    if !offer.contains("a=bundle-only") {
        return std::borrow::Cow::Borrowed(offer);
    }
    let lines: Vec<&str> = offer.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut out = String::with_capacity(offer.len());
    let mut i = 0usize;
    while let Some(&line) = lines.get(i) {
        // A section: this line and those up to the next m=.
        let end = lines
            .iter()
            .skip(i.saturating_add(1))
            .position(|l| l.starts_with("m="))
            .map_or(lines.len(), |p| i.saturating_add(1).saturating_add(p));
        let section = lines.get(i..end).unwrap_or_default();
        let bundle_only = line.starts_with("m=") && section.contains(&"a=bundle-only");
        for (n, l) in section.iter().enumerate() {
            if bundle_only && *l == "a=bundle-only" {
                continue;
            }
            if bundle_only && n == 0 {
                let mut f = l.splitn(3, ' ');
                if let (Some(m), Some("0"), Some(rest)) = (f.next(), f.next(), f.next()) {
                    out.push_str(m);
                    out.push_str(" 9 ");
                    out.push_str(rest);
                    out.push_str("\r\n");
                    continue;
                }
            }
            out.push_str(l);
            out.push_str("\r\n");
        }
        i = end;
    }
    std::borrow::Cow::Owned(out)
}

/// Payload type to codec, read from an SDP (the answer: it holds the
/// negotiated payload types). A payload type mapped in two m-lines keeps
/// the later one.
pub fn payload_types(sdp: &str) -> BTreeMap<u8, (MediaKind, Codec)> {
    let mut out = BTreeMap::new();
    for c in sections(sdp) {
        for (pt, name) in &c.rtpmap {
            out.insert(*pt, (c.kind, codec_of(name)));
        }
    }
    out
}

/// The first `a=ice-ufrag` and `a=ice-pwd` of an SDP (RFC 8839 5.4).
pub fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let mut ufrag = None;
    let mut pwd = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if ufrag.is_none()
            && let Some(v) = line.strip_prefix("a=ice-ufrag:")
        {
            ufrag = Some(v.trim().to_owned());
        } else if pwd.is_none()
            && let Some(v) = line.strip_prefix("a=ice-pwd:")
        {
            pwd = Some(v.trim().to_owned());
        }
    }
    Some((ufrag?, pwd?))
}

/// `sdp` with every `a=ice-ufrag` and `a=ice-pwd` line replaced by the given
/// credentials: the description an ICE restart (RFC 8839 4.4.1.1.1) would
/// carry when only the credentials are signalled (a WHIP/WHEP PATCH).
pub fn with_ice_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len().saturating_add(64));
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// Whether `s` is a valid `ice-ufrag` (`min` 4) or `ice-pwd` (`min` 22)
/// value: 1*256 ice-char (ALPHA / DIGIT / "+" / "/"), RFC 8839 5.4.
pub fn is_ice_credential(s: &str, min: usize) -> bool {
    (min..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_RECVONLY: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 127\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn picks_constrained_baseline_mode1_and_opus() {
        let s = summarize(CHROME_RECVONLY).unwrap();
        assert_eq!(s.media.len(), 2);
        assert_eq!(s.media[0].usable, vec![102]);
        // Main profile (127) can be received from a publisher, not sent;
        // packetization-mode=0 (103) neither.
        assert_eq!(s.media[0].receivable, vec![102, 127]);
        assert_eq!(s.media[0].direction, Direction::RecvOnly);
        assert_eq!(s.media[1].usable, vec![111]);
        assert!(s.has_usable(MediaKind::Video) && s.has_usable(MediaKind::Audio));
    }

    #[test]
    fn vp8_only_offer_has_no_usable_video() {
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        let s = summarize(offer).unwrap();
        assert!(!s.has_usable(MediaKind::Video));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(summarize("hello").is_err());
        assert!(summarize("v=0\r\n").is_err());
        assert!(summarize(&"v=0\n".repeat(MAX_OFFER_LEN)).is_err());
    }

    /// GStreamer webrtcbin 1.22 (Debian 12) as a WHEP player: its audio
    /// m-line has port 0 and `a=bundle-only` (RFC 8843 6).
    const WEBRTCBIN_BUNDLE_ONLY: &str = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE video0 audio1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:video0\r\na=recvonly\r\n\
a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n\
m=audio 0 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:audio1\r\na=recvonly\r\n\
a=rtpmap:97 OPUS/48000/2\r\n";

    #[test]
    fn bundle_only_audio_is_offered_not_rejected() {
        let s = summarize(WEBRTCBIN_BUNDLE_ONLY).unwrap();
        assert!(s.has_usable(MediaKind::Audio), "{s:?}");
        let n = normalize_offer(WEBRTCBIN_BUNDLE_ONLY);
        assert!(n.contains("m=audio 9 UDP/TLS/RTP/SAVPF 97\r\n"), "{n}");
        assert!(!n.contains("bundle-only"));
        assert!(n.contains("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert_eq!(n.lines().count(), WEBRTCBIN_BUNDLE_ONLY.lines().count() - 1);
        // A rejected m-line (port 0 without bundle-only) stays rejected.
        let rejected = WEBRTCBIN_BUNDLE_ONLY.replace("a=bundle-only\r\n", "");
        assert!(!summarize(&rejected).unwrap().has_usable(MediaKind::Audio));
        assert!(matches!(
            normalize_offer(&rejected),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn payload_type_map() {
        let m = payload_types(CHROME_RECVONLY);
        assert_eq!(m.get(&102), Some(&(MediaKind::Video, Codec::H264)));
        assert_eq!(m.get(&97), Some(&(MediaKind::Video, Codec::Rtx)));
        assert_eq!(m.get(&111), Some(&(MediaKind::Audio, Codec::Opus)));
    }
}
