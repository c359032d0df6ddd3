//! Counters for `/metrics` (Prometheus text exposition format 0.0.4).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hub::StreamInfo;

/// Kinds of errors counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URL without a valid auth_key.
    Auth,
    /// A second publisher for a stream.
    AlreadyPublishing,
    /// Play of a stream nobody publishes.
    NotFound,
    /// Malformed RTMP from a peer.
    Protocol,
    /// A media tag whose header does not parse.
    Media,
    /// A viewer ended for falling behind.
    SlowViewer,
    /// A socket error.
    Io,
    /// A request for a domain of the wrong kind or mode.
    Domain,
    /// A bug caught before it took more than one session or stream down
    /// (a panic in a session, a conversion branch or the WebRTC loop).
    Internal,
    /// A request refused because the server is full or shutting down
    /// (buffered bytes, sessions).
    Unavailable,
}

const KINDS: [(ErrorKind, &str); 10] = [
    (ErrorKind::Auth, "auth"),
    (ErrorKind::AlreadyPublishing, "already_publishing"),
    (ErrorKind::NotFound, "not_found"),
    (ErrorKind::Protocol, "protocol"),
    (ErrorKind::Media, "media"),
    (ErrorKind::SlowViewer, "slow_viewer"),
    (ErrorKind::Io, "io"),
    (ErrorKind::Domain, "domain"),
    (ErrorKind::Internal, "internal"),
    (ErrorKind::Unavailable, "unavailable"),
];

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    errors: [AtomicU64; 10],
    /// RTMP connections accepted.
    pub rtmp_connections: AtomicU64,
    /// HTTP-FLV requests served.
    pub flv_requests: AtomicU64,
    /// Bytes received from publishers (all, including ended streams).
    pub bytes_in: AtomicU64,
    /// Bytes sent to viewers (all, including ended streams).
    pub bytes_out: AtomicU64,
    /// Publishers replaced by a new one after going silent.
    pub publisher_takeovers: AtomicU64,
    /// Connections refused at a connection cap, by listener.
    pub refused_rtmp: AtomicU64,
    /// HTTP(S) connections refused at a connection cap.
    pub refused_http: AtomicU64,
    /// Connections closed for missing a deadline before they were
    /// authorised (RTMP handshake/connect, HTTP headers).
    pub deadline_closes: AtomicU64,
}

fn index(kind: ErrorKind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0)
}

impl Metrics {
    /// Counts one error.
    pub fn error(&self, kind: ErrorKind) {
        if let Some(c) = self.errors.get(index(kind)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Errors of a kind so far.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors
            .get(index(kind))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Adds to a byte counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The Prometheus text for these counters and the current streams.
    pub fn render(&self, streams: &[StreamInfo]) -> String {
        let mut o = String::new();
        let publishing = streams.iter().filter(|s| s.publishing).count();
        let _ = writeln!(
            o,
            "# HELP rts_streams Streams with a publisher (or within its grace period).\n# TYPE rts_streams gauge\nrts_streams {}\nrts_streams_publishing {publishing}",
            streams.len()
        );
        let (mut rtmp, mut flv, mut rtc) = (0u64, 0u64, 0u64);
        for s in streams {
            rtmp = rtmp.saturating_add(s.viewers.rtmp);
            flv = flv.saturating_add(s.viewers.flv);
            rtc = rtc.saturating_add(s.viewers.webrtc);
        }
        let _ = writeln!(
            o,
            "# HELP rts_viewers Viewers now, by protocol.\n# TYPE rts_viewers gauge\nrts_viewers{{protocol=\"rtmp\"}} {rtmp}\nrts_viewers{{protocol=\"flv\"}} {flv}\nrts_viewers{{protocol=\"webrtc\"}} {rtc}"
        );
        let running = streams.iter().filter(|s| s.conversion.running).count();
        let _ = writeln!(
            o,
            "# HELP rts_conversion_branches WebRTC conversion branches running now.\n# TYPE rts_conversion_branches gauge\nrts_conversion_branches {running}"
        );
        let warm = streams.iter().filter(|s| s.conversion.warm).count();
        let _ = writeln!(
            o,
            "# HELP rts_conversion_branches_warm Transcoding branches without viewers, still decoding (webrtc.transcode_linger_s).\n# TYPE rts_conversion_branches_warm gauge\nrts_conversion_branches_warm {warm}"
        );
        let _ = writeln!(
            o,
            "# HELP rts_conversion_seconds_total Seconds of conversion by stream, kind (video, audio: AAC to Opus for WebRTC, opus-to-aac: for RTMP and FLV players) and source resolution tier.\n# TYPE rts_conversion_seconds_total counter"
        );
        for s in streams {
            let c = &s.conversion;
            let stream = format!("{}/{}/{}", s.domain, s.app, s.stream);
            for (tier, secs) in &c.video_transcode_seconds {
                let _ = writeln!(
                    o,
                    "rts_conversion_seconds_total{{stream=\"{stream}\",kind=\"video\",tier=\"{}\"}} {secs:.3}",
                    tier.as_str()
                );
            }
            if c.audio_transcode_seconds > 0.0 {
                let _ = writeln!(
                    o,
                    "rts_conversion_seconds_total{{stream=\"{stream}\",kind=\"audio\"}} {:.3}",
                    c.audio_transcode_seconds
                );
            }
            if c.opus_to_aac.seconds > 0.0 {
                let _ = writeln!(
                    o,
                    "rts_conversion_seconds_total{{stream=\"{stream}\",kind=\"opus-to-aac\"}} {:.3}",
                    c.opus_to_aac.seconds
                );
            }
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "# HELP rts_bytes_in_total Bytes received from publishers.\n# TYPE rts_bytes_in_total counter\nrts_bytes_in_total {}",
            load(&self.bytes_in)
        );
        let _ = writeln!(
            o,
            "# HELP rts_bytes_out_total Bytes sent to viewers.\n# TYPE rts_bytes_out_total counter\nrts_bytes_out_total {}",
            load(&self.bytes_out)
        );
        let _ = writeln!(
            o,
            "# HELP rts_rtmp_connections_total RTMP connections accepted.\n# TYPE rts_rtmp_connections_total counter\nrts_rtmp_connections_total {}",
            load(&self.rtmp_connections)
        );
        let _ = writeln!(
            o,
            "# HELP rts_flv_requests_total HTTP-FLV plays started.\n# TYPE rts_flv_requests_total counter\nrts_flv_requests_total {}",
            load(&self.flv_requests)
        );
        let _ = writeln!(
            o,
            "# HELP rts_publisher_takeovers_total Publishers replaced by a new one after going silent.\n# TYPE rts_publisher_takeovers_total counter\nrts_publisher_takeovers_total {}",
            load(&self.publisher_takeovers)
        );
        let _ = writeln!(
            o,
            "# HELP rts_connections_refused_total Connections refused at a connection cap.\n# TYPE rts_connections_refused_total counter\nrts_connections_refused_total{{listener=\"rtmp\"}} {}\nrts_connections_refused_total{{listener=\"http\"}} {}",
            load(&self.refused_rtmp),
            load(&self.refused_http)
        );
        let _ = writeln!(
            o,
            "# HELP rts_deadline_closes_total Connections closed for missing a deadline before authorisation (RTMP handshake and connect, HTTP headers, TLS handshake).\n# TYPE rts_deadline_closes_total counter\nrts_deadline_closes_total {}",
            load(&self.deadline_closes)
        );
        let _ = writeln!(
            o,
            "# HELP rts_errors_total Errors by kind.\n# TYPE rts_errors_total counter"
        );
        for (kind, name) in KINDS {
            let _ = writeln!(
                o,
                "rts_errors_total{{kind=\"{name}\"}} {}",
                self.errors(kind)
            );
        }
        o
    }
}

/// Appends the GOP-cache gauges.
pub(crate) fn render_buffered(o: &mut String, buffered: usize, limit: usize) {
    let _ = writeln!(
        o,
        "# HELP rts_buffered_bytes Bytes held in the GOP caches of all streams.\n# TYPE rts_buffered_bytes gauge\nrts_buffered_bytes {buffered}\nrts_buffered_bytes_limit {limit}"
    );
}

/// Appends the WebRTC host's gauges and counters.
pub(crate) fn render_webrtc(
    o: &mut String,
    host: &rts_webrtc::host::HostStats,
    sessions: usize,
    loop_restarts: u64,
) {
    let _ = writeln!(
        o,
        "# HELP rts_webrtc_sessions WebRTC sessions now (connected or connecting).\n# TYPE rts_webrtc_sessions gauge\nrts_webrtc_sessions {sessions}"
    );
    for (name, help, v) in [
        (
            "rts_webrtc_datagrams_dropped_total",
            "UDP datagrams no session took (unknown source or unauthenticated STUN).",
            host.datagrams_dropped,
        ),
        (
            "rts_webrtc_connect_timeouts_total",
            "WebRTC sessions closed for not completing ICE and DTLS in time.",
            host.connect_timeouts,
        ),
        (
            "rts_webrtc_session_panics_total",
            "WebRTC sessions ended by a contained panic.",
            host.panics,
        ),
        (
            "rts_webrtc_loop_restarts_total",
            "Times the WebRTC loop started again after a panic.",
            loop_restarts,
        ),
        (
            "rts_webrtc_keyframe_requests_total",
            "Keyframe requests sent to transcoders (joins, PLI, FIR, overflows).",
            host.keyframe_requests,
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.error(ErrorKind::Auth);
        m.error(ErrorKind::Auth);
        Metrics::add(&m.bytes_out, 10);
        let text = m.render(&[]);
        assert!(
            text.contains("rts_errors_total{kind=\"auth\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("rts_bytes_out_total 10\n"));
        assert!(text.contains("rts_viewers{protocol=\"flv\"} 0\n"));
        assert!(text.contains("rts_streams 0\n"));
    }
}
