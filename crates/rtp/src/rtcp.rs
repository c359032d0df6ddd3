//! RTCP (RFC 3550 6, RFC 4585, RFC 5104) on top of `rtc-rtcp`'s packet
//! types: a sender-side [`Reporter`] that emits compound SR + SDES CNAME at
//! RFC 3550 6.2 / A.7 intervals with the NTP/RTP mapping used for lip sync,
//! a parser of incoming RTCP into [`Feedback`] (receiver reports with loss,
//! jitter and RTT from LSR/DLSR; generic NACK; PLI; FIR; REMB;
//! transport-wide CC), and builders for the feedback a receiver sends.
//! Time and randomness are passed in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use rtc_rtcp::packet::Packet as RtcpPacket;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

use crate::Error;
use crate::packet::Packet;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (RFC 3550 4) of a wall-clock time.
pub fn ntp(wall: SystemTime) -> u64 {
    let d = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().saturating_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (LSR, RFC 3550 6.4.1).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a reception report (RFC 3550 6.4.1):
/// `A - LSR - DLSR` with `A` the arrival time; `None` if no SR was
/// received by the reporter yet (LSR 0) or the values are inconsistent.
pub fn rtt(arrival_ntp: u64, report: &ReceptionReport) -> Option<Duration> {
    if report.last_sender_report == 0 {
        return None;
    }
    let a = ntp_middle(arrival_ntp);
    let r = a
        .checked_sub(report.last_sender_report)?
        .checked_sub(report.delay)?;
    // 16.16 fixed-point seconds.
    Some(Duration::from_nanos((u64::from(r) * 1_000_000_000) >> 16))
}

/// Inputs to the RTCP transmission interval (RFC 3550 6.3.1, A.7).
#[derive(Debug, Clone, Copy)]
pub struct IntervalParams {
    /// Session members (including us).
    pub members: u32,
    /// Members that sent RTP recently.
    pub senders: u32,
    /// RTCP bandwidth, bytes per second (5% of the session bandwidth).
    pub rtcp_bandwidth: f64,
    /// Whether we sent RTP since the last report.
    pub we_sent: bool,
    /// Average compound RTCP packet size, bytes (with UDP/IP headers).
    pub avg_rtcp_size: f64,
    /// Whether no RTCP was sent yet (halves the minimum).
    pub initial: bool,
    /// Minimum interval (5 s in RFC 3550; WebRTC uses 1 s for video).
    pub min_interval: Duration,
}

/// The randomised RTCP interval (RFC 3550 A.7 `rtcp_interval`).
/// `random` is uniform in `[0, 1)` and is passed in.
pub fn interval(p: &IntervalParams, random: f64) -> Duration {
    // e - 3/2: compensates for the timer reconsideration converging low.
    const COMPENSATION: f64 = std::f64::consts::E - 1.5;
    let mut min = p.min_interval.as_secs_f64();
    if p.initial {
        min /= 2.0;
    }
    let mut n = f64::from(p.members.max(1));
    let mut bw = p.rtcp_bandwidth.max(1.0);
    let senders = f64::from(p.senders);
    if senders <= n * 0.25 {
        if p.we_sent {
            bw *= 0.25;
            n = senders.max(1.0);
        } else {
            bw *= 0.75;
            n = (n - senders).max(1.0);
        }
    }
    let t = (p.avg_rtcp_size * n / bw).max(min);
    let r = random.clamp(0.0, 1.0) + 0.5;
    Duration::from_secs_f64((t * r / COMPENSATION).clamp(0.0, 86_400.0))
}

/// Incoming RTCP, flattened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Feedback {
    /// A sender report (its reception blocks are also given as `Report`).
    SenderReport(SenderReport),
    /// A reception report block about `ssrc` (from an SR or RR), with the
    /// RTT when it answers one of our sender reports.
    Report {
        /// Who sent the report.
        reporter: u32,
        /// The block.
        block: ReceptionReport,
        /// RTT from LSR/DLSR, if computable.
        rtt: Option<Duration>,
    },
    /// Generic NACK (RFC 4585 6.2.1).
    Nack(TransportLayerNack),
    /// Picture loss indication (RFC 4585 6.3.1).
    Pli {
        /// The stream that needs a keyframe.
        media_ssrc: u32,
    },
    /// Full intra request (RFC 5104 4.3.1).
    Fir {
        /// Streams that need a keyframe, with the request sequence number.
        entries: Vec<(u32, u8)>,
    },
    /// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb).
    Remb {
        /// Bits per second.
        bitrate: f32,
        /// Streams it applies to.
        ssrcs: Vec<u32>,
    },
    /// Transport-wide congestion control feedback.
    TransportCc(TransportLayerCc),
    /// SDES CNAMEs: `(ssrc, cname)`.
    Cname(u32, Bytes),
    /// BYE.
    Bye(Vec<u32>),
    /// Anything else (XR, SLI, RRR, unknown types).
    Other,
}

/// Parses a (compound) RTCP packet into feedback. `arrival_ntp` is used to
/// compute RTTs; pass 0 to skip.
pub fn parse(data: &Bytes, arrival_ntp: u64) -> Result<Vec<Feedback>, Error> {
    let mut b = data.clone();
    let packets = rtc_rtcp::packet::unmarshal(&mut b)?;
    let mut out = Vec::with_capacity(packets.len());
    for p in &packets {
        flatten(p.as_ref(), arrival_ntp, &mut out);
    }
    Ok(out)
}

fn flatten(p: &dyn RtcpPacket, arrival_ntp: u64, out: &mut Vec<Feedback>) {
    let any = p.as_any();
    let report = |reporter: u32, blocks: &[ReceptionReport], out: &mut Vec<Feedback>| {
        for block in blocks {
            out.push(Feedback::Report {
                reporter,
                block: block.clone(),
                rtt: if arrival_ntp == 0 {
                    None
                } else {
                    rtt(arrival_ntp, block)
                },
            });
        }
    };
    if let Some(c) = any.downcast_ref::<rtc_rtcp::compound_packet::CompoundPacket>() {
        for q in &c.0 {
            flatten(q.as_ref(), arrival_ntp, out);
        }
    } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
        out.push(Feedback::SenderReport(sr.clone()));
        report(sr.ssrc, &sr.reports, out);
    } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
        report(rr.ssrc, &rr.reports, out);
    } else if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
        out.push(Feedback::Nack(n.clone()));
    } else if let Some(p) = any.downcast_ref::<PictureLossIndication>() {
        out.push(Feedback::Pli {
            media_ssrc: p.media_ssrc,
        });
    } else if let Some(f) = any.downcast_ref::<FullIntraRequest>() {
        out.push(Feedback::Fir {
            entries: f.fir.iter().map(|e| (e.ssrc, e.sequence_number)).collect(),
        });
    } else if let Some(r) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
        out.push(Feedback::Remb {
            bitrate: r.bitrate,
            ssrcs: r.ssrcs.clone(),
        });
    } else if let Some(t) = any.downcast_ref::<TransportLayerCc>() {
        out.push(Feedback::TransportCc(t.clone()));
    } else if let Some(s) = any.downcast_ref::<SourceDescription>() {
        for c in &s.chunks {
            for i in &c.items {
                if i.sdes_type == SdesType::SdesCname {
                    out.push(Feedback::Cname(c.source, i.text.clone()));
                }
            }
        }
    } else if let Some(b) = any.downcast_ref::<rtc_rtcp::goodbye::Goodbye>() {
        out.push(Feedback::Bye(b.sources.clone()));
    } else {
        out.push(Feedback::Other);
    }
}

/// Serialises RTCP packets back to back (a compound packet when the first
/// is an SR or RR, RFC 3550 6.1).
pub fn build(packets: &[Box<dyn RtcpPacket>]) -> Result<Bytes, Error> {
    Ok(rtc_rtcp::packet::marshal(packets)?.freeze())
}

/// A PLI (RFC 4585 6.3.1).
pub fn pli(sender_ssrc: u32, media_ssrc: u32) -> Box<dyn RtcpPacket> {
    Box::new(PictureLossIndication {
        sender_ssrc,
        media_ssrc,
    })
}

/// A FIR (RFC 5104 4.3.1) for one stream.
pub fn fir(sender_ssrc: u32, media_ssrc: u32, seq: u8) -> Box<dyn RtcpPacket> {
    Box::new(FullIntraRequest {
        sender_ssrc,
        media_ssrc: 0,
        fir: vec![FirEntry {
            ssrc: media_ssrc,
            sequence_number: seq,
        }],
    })
}

/// A REMB.
pub fn remb(sender_ssrc: u32, bitrate: f32, ssrcs: Vec<u32>) -> Box<dyn RtcpPacket> {
    Box::new(ReceiverEstimatedMaximumBitrate {
        sender_ssrc,
        bitrate,
        ssrcs,
    })
}

/// A generic NACK for `seqs` (RFC 4585 6.2.1).
pub fn nack(sender_ssrc: u32, media_ssrc: u32, seqs: &[u16]) -> Box<dyn RtcpPacket> {
    Box::new(TransportLayerNack {
        sender_ssrc,
        media_ssrc,
        nacks:
            rtc_rtcp::transport_feedbacks::transport_layer_nack::nack_pairs_from_sequence_numbers(
                seqs,
            ),
    })
}

/// An SDES packet with one CNAME (RFC 3550 6.5.1).
pub fn sdes_cname(ssrc: u32, cname: &str) -> Box<dyn RtcpPacket> {
    Box::new(SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem {
                sdes_type: SdesType::SdesCname,
                text: Bytes::copy_from_slice(cname.as_bytes()),
            }],
        }],
    })
}

/// Sender-side RTCP for one outgoing stream: counts what was sent, keeps the
/// NTP/RTP mapping and emits compound SR + SDES CNAME on schedule.
#[derive(Debug)]
pub struct Reporter {
    ssrc: u32,
    clock_rate: u32,
    cname: String,
    min_interval: Duration,
    rtcp_bandwidth: f64,
    packets: u32,
    octets: u32,
    last_rtp: Option<(Instant, u32)>,
    sent_since_report: bool,
    next_report: Option<Instant>,
    reports_sent: u64,
    avg_size: f64,
}

impl Reporter {
    /// `rtcp_bandwidth` in bytes/s (5% of the stream's bitrate is usual);
    /// `min_interval` is RFC 3550's 5 s or WebRTC's 1 s.
    pub fn new(
        ssrc: u32,
        clock_rate: u32,
        cname: &str,
        rtcp_bandwidth: f64,
        min_interval: Duration,
    ) -> Self {
        Self {
            ssrc,
            clock_rate,
            cname: cname.to_owned(),
            min_interval,
            rtcp_bandwidth,
            packets: 0,
            octets: 0,
            last_rtp: None,
            sent_since_report: false,
            next_report: None,
            reports_sent: 0,
            avg_size: 100.0,
        }
    }

    /// Sender reports made.
    pub fn reports_sent(&self) -> u64 {
        self.reports_sent
    }

    /// An RTP packet was sent at `now`.
    pub fn on_rtp_sent(&mut self, now: Instant, packet: &Packet) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(packet.payload.len() as u32);
        self.last_rtp = Some((now, packet.timestamp));
        self.sent_since_report = true;
    }

    /// The RTP timestamp that corresponds to `now` (extrapolated from the
    /// last packet sent; the NTP/RTP mapping of RFC 3550 6.4.1).
    pub fn rtp_time_at(&self, now: Instant) -> Option<u32> {
        let (t, ts) = self.last_rtp?;
        let el = now.saturating_duration_since(t);
        let ticks = el.as_nanos().saturating_mul(u128::from(self.clock_rate)) / 1_000_000_000;
        Some(ts.wrapping_add(ticks as u32))
    }

    /// When the next report is due (`None` until the first RTP is sent).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }

    fn schedule(&mut self, now: Instant, random: f64) {
        let d = interval(
            &IntervalParams {
                members: 2,
                senders: 1,
                rtcp_bandwidth: self.rtcp_bandwidth,
                we_sent: self.sent_since_report,
                avg_rtcp_size: self.avg_size,
                initial: self.reports_sent == 0,
                min_interval: self.min_interval,
            },
            random,
        );
        self.next_report = now.checked_add(d);
    }

    /// Makes the compound SR + SDES now (whatever the schedule) and
    /// schedules the next one. `wall` is the wall-clock time of `now`.
    pub fn report(&mut self, now: Instant, wall: SystemTime, random: f64) -> Result<Bytes, Error> {
        let sr = SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp(wall),
            rtp_time: self.rtp_time_at(now).unwrap_or(0),
            packet_count: self.packets,
            octet_count: self.octets,
            reports: Vec::new(),
            profile_extensions: Bytes::new(),
        };
        let out = build(&[Box::new(sr), sdes_cname(self.ssrc, &self.cname)])?;
        // RFC 3550 A.7: avg_rtcp_size = 1/16 * packet_size + 15/16 * avg, with 28 bytes of UDP/IPv4.
        self.avg_size = (out.len() as f64 + 28.0) / 16.0 + self.avg_size * 15.0 / 16.0;
        self.schedule(now, random);
        self.sent_since_report = false;
        self.reports_sent = self.reports_sent.saturating_add(1);
        Ok(out)
    }

    /// The compound SR + SDES + BYE (RFC 3550 6.6) to send when the stream
    /// ends; receivers such as ffmpeg stop reading on it.
    pub fn bye(&mut self, now: Instant, wall: SystemTime) -> Result<Bytes, Error> {
        let sr = SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp(wall),
            rtp_time: self.rtp_time_at(now).unwrap_or(0),
            packet_count: self.packets,
            octet_count: self.octets,
            reports: Vec::new(),
            profile_extensions: Bytes::new(),
        };
        self.next_report = None;
        build(&[
            Box::new(sr),
            sdes_cname(self.ssrc, &self.cname),
            Box::new(rtc_rtcp::goodbye::Goodbye {
                sources: vec![self.ssrc],
                reason: Bytes::new(),
            }),
        ])
    }

    /// Emits a report when one is due at `now`. The first RTP packet sent
    /// starts the schedule (half the minimum interval, RFC 3550 6.2).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        wall: SystemTime,
        random: f64,
    ) -> Result<Option<Bytes>, Error> {
        match self.next_report {
            None if self.last_rtp.is_some() => {
                self.schedule(now, random);
                Ok(None)
            }
            Some(t) if now >= t => self.report(now, wall, random).map(Some),
            _ => Ok(None),
        }
    }
}

/// Serialises an RTCP packet to bytes in a caller-owned buffer.
pub fn encode_into(packet: &dyn RtcpPacket, buf: &mut BytesMut) -> Result<usize, Error> {
    let start = buf.len();
    let n = packet.marshal_size();
    buf.resize(start.saturating_add(n), 0);
    let w = packet.marshal_to(buf.get_mut(start..).unwrap_or(&mut []))?;
    buf.truncate(start.saturating_add(w));
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Payload;

    #[test]
    fn sr_maps_ntp_to_rtp_and_carries_cname() {
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut r = Reporter::new(0x11, 90_000, "rts@example", 1000.0, Duration::from_secs(1));
        assert_eq!(r.poll_timeout(), None);
        let p = Packet {
            timestamp: 90_000,
            payload: Payload::from_bytes(Bytes::from_static(&[0; 100])),
            ..Default::default()
        };
        r.on_rtp_sent(t0, &p);
        assert_eq!(r.handle_timeout(t0, wall, 0.5).unwrap(), None);
        let due = r.poll_timeout().unwrap();
        // Initial: min/2 * 1.0 / 1.21828 = 0.41 s.
        assert!(due > t0 + Duration::from_millis(400) && due < t0 + Duration::from_millis(420));
        let now = t0 + Duration::from_millis(500);
        let sr = r
            .handle_timeout(now, wall + Duration::from_millis(500), 0.5)
            .unwrap()
            .unwrap();
        let fb = parse(&sr, 0).unwrap();
        match &fb[0] {
            Feedback::SenderReport(s) => {
                assert_eq!(s.rtp_time, 90_000 + 45_000);
                assert_eq!(s.packet_count, 1);
                assert_eq!(s.octet_count, 100);
                assert_eq!(s.ntp_time >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
                assert_eq!(s.ntp_time & 0xffff_ffff, 1 << 31);
            }
            f => panic!("{f:?}"),
        }
        assert_eq!(
            fb[1],
            Feedback::Cname(0x11, Bytes::from_static(b"rts@example"))
        );
    }

    #[test]
    fn rfc3550_a7_interval() {
        let p = IntervalParams {
            members: 2,
            senders: 1,
            rtcp_bandwidth: 100.0,
            we_sent: true,
            avg_rtcp_size: 1000.0,
            initial: false,
            min_interval: Duration::from_secs(5),
        };
        // senders (1) > members/4: no split; t = 1000*2/100 = 20 s.
        let lo = interval(&p, 0.0).as_secs_f64();
        let hi = interval(&p, 1.0).as_secs_f64();
        assert!((lo - 10.0 / 1.218_281_8).abs() < 1e-3, "{lo}");
        assert!((hi - 30.0 / 1.218_281_8).abs() < 1e-3, "{hi}");
        let small = IntervalParams {
            avg_rtcp_size: 10.0,
            ..p
        };
        assert!((interval(&small, 0.5).as_secs_f64() - 5.0 / 1.218_281_8).abs() < 1e-3);
    }

    #[test]
    fn rr_rtt_from_lsr_dlsr() {
        // RFC 3550 6.4.1 figure 2: A = 0xb710:8000 (46864.500 s), LSR =
        // 0xb705:2000 (46853.125 s), DLSR = 0x0005:4000 (5.250 s): RTT 6.125 s.
        let rr = ReceiverReport {
            ssrc: 9,
            reports: vec![ReceptionReport {
                ssrc: 0x11,
                fraction_lost: 64,
                total_lost: 3,
                last_sequence_number: 1000,
                jitter: 90,
                last_sender_report: 0xb705_2000,
                delay: 0x0005_4000,
            }],
            profile_extensions: Bytes::new(),
        };
        let data = build(&[Box::new(rr), sdes_cname(9, "viewer")]).unwrap();
        let arrival = 0xb710_8000u64 << 16;
        let fb = parse(&data, arrival).unwrap();
        match &fb[0] {
            Feedback::Report {
                reporter,
                block,
                rtt,
            } => {
                assert_eq!(*reporter, 9);
                assert_eq!(block.fraction_lost, 64);
                assert_eq!(block.jitter, 90);
                assert_eq!(*rtt, Some(Duration::from_millis(6125)));
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn feedback_round_trip() {
        let data = build(&[
            Box::new(ReceiverReport {
                ssrc: 1,
                ..Default::default()
            }),
            pli(1, 2),
            fir(1, 2, 7),
            remb(1, 1_000_000.0, vec![2, 3]),
            nack(1, 2, &[5, 6, 40]),
        ])
        .unwrap();
        let fb = parse(&data, 0).unwrap();
        assert!(fb.contains(&Feedback::Pli { media_ssrc: 2 }));
        assert!(fb.contains(&Feedback::Fir {
            entries: vec![(2, 7)]
        }));
        assert!(fb.contains(&Feedback::Remb {
            bitrate: 1_000_000.0,
            ssrcs: vec![2, 3]
        }));
        let n = fb
            .iter()
            .find_map(|f| match f {
                Feedback::Nack(n) => Some(n),
                _ => None,
            })
            .unwrap();
        let seqs: Vec<u16> = n.nacks.iter().flat_map(|p| p.packet_list()).collect();
        assert_eq!(seqs, vec![5, 6, 40]);
        assert!(parse(&Bytes::from_static(&[0x80, 200, 0, 9]), 0).is_err());
    }

    #[test]
    fn transport_cc_parse_and_rebuild() {
        // draft-holmer-rmcat-transport-wide-cc-extensions-01 3.1: one packet
        // (base seq 153) received with a small delta of 37 ms (148 * 250 us).
        let raw = Bytes::from(
            hex::decode("afcd0005fa17fa17 43032fa0 0099 0001 3de802 17 2001 9401".replace(" ", ""))
                .unwrap(),
        );
        let fb = parse(&raw, 0).unwrap();
        let Feedback::TransportCc(t) = &fb[0] else {
            panic!("{fb:?}")
        };
        assert_eq!(
            (t.media_ssrc, t.base_sequence_number, t.packet_status_count),
            (1124282272, 153, 1)
        );
        assert_eq!(t.recv_deltas[0].delta, 37000);
        let again = build(&[Box::new(t.clone())]).unwrap();
        assert_eq!(again, raw);
    }
}
