//! H.264 payload format, RFC 6184, packetization-mode 1 (non-interleaved).
//!
//! [`Packetizer`]: single NAL unit packets (RFC 6184 5.6), STAP-A (5.7.1)
//! carrying SPS and PPS before every IDR picture, FU-A (5.8) for NAL units
//! larger than the payload budget, the marker bit on the last packet of an
//! access unit (5.1), access unit delimiters (NAL type 9) and filler data
//! (type 12) removed. Payloads are slices of the access unit's [`Bytes`].
//!
//! [`Depacketizer`]: the reverse, for single NAL, STAP-A and FU-A packets
//! in sequence order (put a [`crate::jitter::ReorderBuffer`] in front); a
//! gap drops the damaged access unit and asks for a keyframe.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Error;
use crate::packet::{HEADER_LEN, Packet, Payload};
use crate::timeline::Timeline;

/// RTP clock rate for H.264 (RFC 6184 5.1).
pub const CLOCK_RATE: u32 = 90_000;
/// Default MTU: whole RTP packet size, header included.
pub const DEFAULT_MTU: usize = 1200;

/// NAL unit type: coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type: supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type: sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type: picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type: access unit delimiter (removed when packetizing).
pub const NAL_AUD: u8 = 9;
/// NAL unit type: filler data (removed when packetizing).
pub const NAL_FILLER: u8 = 12;
/// Payload type: STAP-A (RFC 6184 5.7.1).
pub const STAP_A: u8 = 24;
/// Payload type: FU-A (RFC 6184 5.8).
pub const FU_A: u8 = 28;

/// How NAL units are delimited in an access unit (rts-h264's splitter
/// reads both forms).
pub use rts_h264::nal::Format;

/// Packetizer settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// RTP payload type.
    pub payload_type: u8,
    /// SSRC of the stream.
    pub ssrc: u32,
    /// Largest RTP packet (header included) this packetizer makes.
    pub mtu: usize,
    /// Bytes kept free per packet for header extensions added later.
    pub extension_reserve: usize,
    /// First sequence number (random, passed in; RFC 3550 5.1).
    pub initial_sequence: u16,
    /// Offset added to source timestamps (random, passed in).
    pub initial_timestamp: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            payload_type: 96,
            ssrc: 0,
            mtu: DEFAULT_MTU,
            extension_reserve: 0,
            initial_sequence: 0,
            initial_timestamp: 0,
        }
    }
}

/// Packetizer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Access units packetized.
    pub access_units: u64,
    /// Packets made.
    pub packets: u64,
    /// Payload bytes made.
    pub payload_bytes: u64,
    /// AUD and filler NAL units removed.
    pub removed_nals: u64,
    /// IDR pictures sent with no SPS/PPS known.
    pub idr_without_parameter_sets: u64,
}

fn be16(b: &[u8]) -> Option<usize> {
    let a: [u8; 2] = b.try_into().ok()?;
    Some(usize::from(u16::from_be_bytes(a)))
}

/// Whether an RTP payload (RFC 6184, packetization-mode 1) carries the start
/// of an IDR slice or a sequence parameter set: where a forwarding server
/// can start a new viewer, and what a keyframe's first packet carries.
pub fn payload_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&hdr) = payload.first() else {
        return false;
    };
    match hdr & 0x1f {
        NAL_IDR | NAL_SPS => true,
        STAP_A => {
            let mut pos = 1usize;
            while let Some(&[hi, lo]) = payload.get(pos..pos.saturating_add(2)) {
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let start = pos.saturating_add(2);
                if matches!(
                    payload.get(start).map(|b| b & 0x1f),
                    Some(NAL_IDR | NAL_SPS)
                ) {
                    return true;
                }
                pos = start.saturating_add(len);
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == NAL_IDR),
        _ => false,
    }
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// RFC 6184 packetizer, packetization-mode 1.
#[derive(Debug)]
pub struct Packetizer {
    config: Config,
    budget: usize,
    seq: u16,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    stap: Option<Bytes>,
    nals: Vec<Bytes>,
    timeline: Timeline,
    stats: Stats,
}

impl Packetizer {
    /// A packetizer; fails when the MTU leaves no room for an FU-A.
    pub fn new(config: Config) -> Result<Self, Error> {
        let budget = config
            .mtu
            .checked_sub(HEADER_LEN)
            .and_then(|b| b.checked_sub(config.extension_reserve))
            .filter(|b| *b >= 3)
            .ok_or(Error::MtuTooSmall(config.mtu))?;
        Ok(Self {
            seq: config.initial_sequence,
            timeline: Timeline::new(config.initial_timestamp, 3000, CLOCK_RATE * 10),
            config,
            budget,
            sps: Vec::new(),
            pps: Vec::new(),
            stap: None,
            nals: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Largest payload per packet.
    pub fn payload_budget(&self) -> usize {
        self.budget
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The next sequence number this packetizer will use.
    pub fn next_sequence_number(&self) -> u16 {
        self.seq
    }

    /// The source restarted (publisher reconnect): sequence numbers go on
    /// and the next timestamp continues one frame after the last one.
    pub fn restart(&mut self) {
        self.timeline.restart();
    }

    /// Sets the SPS/PPS sent before IDR pictures when they are not in-band.
    pub fn set_parameter_sets(&mut self, sps: Vec<Bytes>, pps: Vec<Bytes>) {
        if sps != self.sps || pps != self.pps || self.stap.is_none() {
            self.sps = sps;
            self.pps = pps;
            self.stap = self.build_stap();
        }
    }

    /// Sets the parameter sets from an AVCDecoderConfigurationRecord (the
    /// FLV/RTMP AVC sequence header, read by rts-flv); returns the NAL
    /// length size (1, 2 or 4).
    pub fn set_decoder_config(&mut self, record: &Bytes) -> Result<u8, Error> {
        let rec = rts_flv::AvcDecoderConfigurationRecord::parse(record)?;
        let ls = rec.nal_length_size();
        self.set_parameter_sets(rec.sps, rec.pps);
        Ok(ls)
    }

    /// Current SPS list.
    pub fn sps(&self) -> &[Bytes] {
        &self.sps
    }

    /// Current PPS list.
    pub fn pps(&self) -> &[Bytes] {
        &self.pps
    }

    /// `sprop-parameter-sets` for SDP (RFC 6184 8.1), if SPS and PPS are known.
    pub fn sprop_parameter_sets(&self) -> Option<String> {
        if self.sps.is_empty() || self.pps.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .sps
            .iter()
            .chain(self.pps.iter())
            .map(|s| base64(s))
            .collect();
        Some(parts.join(","))
    }

    /// `profile-level-id` for SDP (RFC 6184 8.1): SPS bytes 1..4 in hex.
    pub fn profile_level_id(&self) -> Option<String> {
        let s = self.sps.first()?.get(1..4)?;
        Some(s.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn build_stap(&self) -> Option<Bytes> {
        if self.sps.is_empty() || self.pps.is_empty() {
            return None;
        }
        let mut nri = 0u8;
        let mut b = BytesMut::new();
        b.put_u8(0);
        for s in self.sps.iter().chain(self.pps.iter()) {
            let len = u16::try_from(s.len()).ok()?;
            nri = nri.max(s.first().map_or(0, |h| h & 0x60));
            b.put_u16(len);
            b.put_slice(s);
        }
        if let Some(h) = b.first_mut() {
            *h = nri | STAP_A;
        }
        Some(b.freeze())
    }

    fn next_seq(&mut self) -> u16 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    fn push(&mut self, ts: u32, payload: Payload, out: &mut Vec<Packet>) {
        let sequence_number = self.next_seq();
        self.stats.packets = self.stats.packets.saturating_add(1);
        self.stats.payload_bytes = self
            .stats
            .payload_bytes
            .saturating_add(payload.len() as u64);
        out.push(Packet {
            marker: false,
            payload_type: self.config.payload_type,
            sequence_number,
            timestamp: ts,
            ssrc: self.config.ssrc,
            payload,
        });
    }

    fn emit_nal(&mut self, ts: u32, nal: Bytes, out: &mut Vec<Packet>) {
        if nal.len() <= self.budget {
            self.push(ts, Payload::from_bytes(nal), out);
            return;
        }
        let Some(&hdr) = nal.first() else { return };
        let indicator = (hdr & 0xe0) | FU_A;
        let kind = hdr & 0x1f;
        let body_len = nal.len().saturating_sub(1);
        let frag_max = self.budget.saturating_sub(2).max(1);
        // Equal-sized fragments but the last (a few bytes shorter, never
        // tiny): one size for a whole run lets a sender hand all of them
        // to the kernel in one UDP GSO send.
        let count = body_len.div_ceil(frag_max).max(1);
        let size = body_len.div_ceil(count).max(1);
        let mut pos = 1usize;
        while pos < nal.len() {
            let this = size;
            let end = pos.saturating_add(this.max(1)).min(nal.len());
            let mut fu = kind;
            if pos == 1 {
                fu |= 0x80;
            }
            if end == nal.len() {
                fu |= 0x40;
            }
            self.push(
                ts,
                Payload::with_prefix(&[indicator, fu], nal.slice(pos..end)),
                out,
            );
            pos = end;
        }
    }

    /// Packetizes one access unit with source timestamp `timestamp` (90 kHz),
    /// appending packets to `out`; returns how many were added. The last has
    /// the marker bit. An access unit with nothing to send adds none.
    pub fn packetize(
        &mut self,
        au: &Bytes,
        format: Format,
        timestamp: u32,
        out: &mut Vec<Packet>,
    ) -> Result<usize, Error> {
        let mut nals = std::mem::take(&mut self.nals);
        nals.clear();
        let mut removed = 0u64;
        let res = rts_h264::nal::split(au, format).and_then(|units| {
            for n in units {
                let n = n?;
                match nal_type(n.bytes()) {
                    NAL_AUD | NAL_FILLER => removed = removed.saturating_add(1),
                    _ => nals.push(n.bytes().clone()),
                }
            }
            Ok(())
        });
        self.stats.removed_nals = self.stats.removed_nals.saturating_add(removed);
        if let Err(e) = res {
            self.nals = nals;
            return Err(e.into());
        }
        let n = self.packetize_nals_inner(&nals, timestamp, out);
        nals.clear();
        self.nals = nals;
        Ok(n)
    }

    /// Packetizes one access unit given as NAL units (AUD and filler are
    /// removed here too).
    pub fn packetize_nals(
        &mut self,
        nals: &[Bytes],
        timestamp: u32,
        out: &mut Vec<Packet>,
    ) -> usize {
        let mut v = std::mem::take(&mut self.nals);
        v.clear();
        for n in nals {
            match nal_type(n) {
                NAL_AUD | NAL_FILLER => {
                    self.stats.removed_nals = self.stats.removed_nals.saturating_add(1)
                }
                _ if n.is_empty() => {}
                _ => v.push(n.clone()),
            }
        }
        let c = self.packetize_nals_inner(&v, timestamp, out);
        v.clear();
        self.nals = v;
        c
    }

    fn packetize_nals_inner(
        &mut self,
        nals: &[Bytes],
        timestamp: u32,
        out: &mut Vec<Packet>,
    ) -> usize {
        if nals.is_empty() {
            return 0;
        }
        let ts = self.timeline.map(timestamp);
        let before = out.len();
        let has_idr = nals.iter().any(|n| nal_type(n) == NAL_IDR);
        if has_idr {
            let sps: Vec<Bytes> = nals
                .iter()
                .filter(|n| nal_type(n) == NAL_SPS)
                .cloned()
                .collect();
            let pps: Vec<Bytes> = nals
                .iter()
                .filter(|n| nal_type(n) == NAL_PPS)
                .cloned()
                .collect();
            if !sps.is_empty() && !pps.is_empty() {
                self.set_parameter_sets(sps, pps);
            }
            match self.stap.clone() {
                Some(stap) if stap.len() <= self.budget => {
                    self.push(ts, Payload::from_bytes(stap), out)
                }
                Some(_) => {
                    for s in self.sps.clone().into_iter().chain(self.pps.clone()) {
                        self.emit_nal(ts, s, out);
                    }
                }
                None => {
                    self.stats.idr_without_parameter_sets =
                        self.stats.idr_without_parameter_sets.saturating_add(1)
                }
            }
        }
        for n in nals {
            let t = nal_type(n);
            if has_idr && (t == NAL_SPS || t == NAL_PPS) && self.stap.is_some() {
                continue;
            }
            self.emit_nal(ts, n.clone(), out);
        }
        if out.len() > before
            && let Some(last) = out.last_mut()
        {
            last.marker = true;
        }
        self.stats.access_units = self.stats.access_units.saturating_add(1);
        out.len().saturating_sub(before)
    }
}

/// Standard base64 (RFC 4648 4) with padding, for `sprop-parameter-sets`.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3).saturating_mul(4));
    for c in data.chunks(3) {
        let b = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx =
            |shift: u32| char::from(T.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'='));
        s.push(idx(18));
        s.push(idx(12));
        s.push(if c.len() > 1 { idx(6) } else { '=' });
        s.push(if c.len() > 2 { idx(0) } else { '=' });
    }
    s
}

/// A depacketized access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// RTP timestamp (90 kHz).
    pub timestamp: u32,
    /// NAL units in decoding order (slices of the packets' payloads, except
    /// FU-A reassemblies).
    pub nals: Vec<Bytes>,
    /// Whether it contains an IDR slice.
    pub keyframe: bool,
}

impl AccessUnit {
    /// The access unit in AVCC form with 4-byte lengths.
    pub fn to_avcc(&self) -> Bytes {
        let len = self.nals.iter().map(|n| n.len().saturating_add(4)).sum();
        let mut b = BytesMut::with_capacity(len);
        for n in &self.nals {
            b.put_u32(u32::try_from(n.len()).unwrap_or(u32::MAX));
            b.put_slice(n);
        }
        b.freeze()
    }

    /// The access unit in Annex B form.
    pub fn to_annexb(&self) -> Bytes {
        let len = self.nals.iter().map(|n| n.len().saturating_add(4)).sum();
        let mut b = BytesMut::with_capacity(len);
        for n in &self.nals {
            b.put_slice(&[0, 0, 0, 1]);
            b.put_slice(n);
        }
        b.freeze()
    }
}

/// What the depacketizer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete, undamaged access unit.
    AccessUnit(AccessUnit),
    /// An access unit was lost or damaged: ask the sender for a keyframe
    /// (PLI/FIR). Reported once per damage until a keyframe arrives.
    KeyframeNeeded,
}

/// Depacketizer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DepacketizerStats {
    /// Access units emitted.
    pub access_units: u64,
    /// Access units dropped (damaged, or waiting for a keyframe).
    pub dropped: u64,
    /// Packets with a payload that could not be used.
    pub malformed: u64,
}

/// RFC 6184 depacketizer (single NAL unit, STAP-A, FU-A) for packets in
/// sequence order, with gaps signalled by [`Depacketizer::lost`].
#[derive(Debug)]
pub struct Depacketizer {
    max_access_unit: usize,
    cur_ts: Option<u32>,
    nals: Vec<Bytes>,
    size: usize,
    fu: Option<BytesMut>,
    damaged: bool,
    gap_at_boundary: bool,
    waiting_keyframe: bool,
    have_params: bool,
    asked: bool,
    events: std::collections::VecDeque<Event>,
    stats: DepacketizerStats,
}

impl Depacketizer {
    /// Default largest access unit accepted (bytes).
    pub const DEFAULT_MAX_ACCESS_UNIT: usize = 16 << 20;

    /// A depacketizer that drops access units larger than `max_access_unit`
    /// bytes. It starts by waiting for a keyframe.
    pub fn new(max_access_unit: usize) -> Self {
        Self {
            max_access_unit,
            cur_ts: None,
            nals: Vec::new(),
            size: 0,
            fu: None,
            damaged: false,
            gap_at_boundary: false,
            waiting_keyframe: true,
            have_params: false,
            asked: false,
            events: std::collections::VecDeque::new(),
            stats: DepacketizerStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DepacketizerStats {
        self.stats
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// One or more packets were lost just before the next one pushed.
    pub fn lost(&mut self) {
        if self.cur_ts.is_some() {
            self.damaged = true;
        }
        self.gap_at_boundary = true;
    }

    /// Feeds the next packet (in sequence order).
    pub fn push(&mut self, marker: bool, timestamp: u32, payload: &Bytes) {
        if self.cur_ts.is_some_and(|t| t != timestamp) {
            self.finish();
        }
        if self.cur_ts.is_none() {
            self.cur_ts = Some(timestamp);
            // A gap just before a new timestamp may have taken this access
            // unit's first packets: only a parameter-set start proves not.
            let starts_clean = matches!(payload.first().map(|b| b & 0x1f), Some(STAP_A | NAL_SPS));
            if self.gap_at_boundary && !starts_clean {
                self.damaged = true;
            }
        }
        self.gap_at_boundary = false;
        if self.parse(payload).is_err() {
            self.stats.malformed = self.stats.malformed.saturating_add(1);
            self.damaged = true;
        }
        if marker {
            self.finish();
        }
    }

    fn add_nal(&mut self, nal: Bytes) -> Result<(), Error> {
        self.size = self.size.saturating_add(nal.len());
        if self.size > self.max_access_unit {
            return Err(Error::TooLarge {
                what: "access unit",
                len: self.size,
                max: self.max_access_unit,
            });
        }
        self.nals.push(nal);
        Ok(())
    }

    fn parse(&mut self, payload: &Bytes) -> Result<(), Error> {
        let hdr = *payload.first().ok_or(Error::Truncated("rtp payload"))?;
        match hdr & 0x1f {
            1..=23 => {
                if self.fu.take().is_some() {
                    self.damaged = true;
                }
                self.add_nal(payload.clone())
            }
            STAP_A => {
                let mut pos = 1usize;
                while pos < payload.len() {
                    let l = payload
                        .get(pos..pos.saturating_add(2))
                        .and_then(be16)
                        .ok_or(Error::Truncated("stap-a nal size"))?;
                    let s = pos.saturating_add(2);
                    let e = s
                        .checked_add(l)
                        .filter(|e| *e <= payload.len() && l > 0)
                        .ok_or(Error::InvalidLength("stap-a nal unit"))?;
                    self.add_nal(payload.slice(s..e))?;
                    pos = e;
                }
                Ok(())
            }
            FU_A => {
                let fu = *payload.get(1).ok_or(Error::Truncated("fu header"))?;
                let body = payload.slice(2..);
                let start = fu & 0x80 != 0;
                let end = fu & 0x40 != 0;
                if start {
                    if self.fu.is_some() {
                        self.damaged = true;
                    }
                    let mut b =
                        BytesMut::with_capacity(body.len().saturating_mul(8).saturating_add(1));
                    b.put_u8((hdr & 0xe0) | (fu & 0x1f));
                    self.fu = Some(b);
                }
                let Some(buf) = self.fu.as_mut() else {
                    return Err(Error::Unsupported("fu-a continuation without a start"));
                };
                let total = buf
                    .len()
                    .saturating_add(body.len())
                    .saturating_add(self.size);
                if total > self.max_access_unit {
                    self.fu = None;
                    return Err(Error::TooLarge {
                        what: "access unit",
                        len: total,
                        max: self.max_access_unit,
                    });
                }
                buf.put_slice(&body);
                if end && let Some(b) = self.fu.take() {
                    self.add_nal(b.freeze())?;
                }
                Ok(())
            }
            _ => Err(Error::Unsupported(
                "nal type not allowed in packetization-mode 1",
            )),
        }
    }

    fn finish(&mut self) {
        let Some(timestamp) = self.cur_ts.take() else {
            return;
        };
        if self.fu.take().is_some() {
            self.damaged = true;
        }
        let nals = std::mem::take(&mut self.nals);
        let damaged = std::mem::replace(&mut self.damaged, false) || nals.is_empty();
        self.size = 0;
        let keyframe = nals.iter().any(|n| nal_type(n) == NAL_IDR);
        let params = nals.iter().any(|n| nal_type(n) == NAL_SPS)
            && nals.iter().any(|n| nal_type(n) == NAL_PPS);
        // A decoder can start only at an IDR with parameter sets in hand.
        if !damaged {
            self.have_params |= params;
        }
        let decodable_start = keyframe && self.have_params;
        if damaged || (self.waiting_keyframe && !decodable_start) {
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            self.waiting_keyframe = true;
            if !self.asked {
                self.asked = true;
                self.events.push_back(Event::KeyframeNeeded);
            }
            return;
        }
        if keyframe {
            self.waiting_keyframe = false;
            self.asked = false;
        }
        self.stats.access_units = self.stats.access_units.saturating_add(1);
        self.events.push_back(Event::AccessUnit(AccessUnit {
            timestamp,
            nals,
            keyframe,
        }));
    }

    /// End of stream: an access unit still open had no marker bit, so its
    /// last packets may be lost (a gap at the very end is invisible); it is
    /// dropped, not reported.
    pub fn flush(&mut self) {
        if self.cur_ts.take().is_some() {
            self.nals.clear();
            self.fu = None;
            self.size = 0;
            self.damaged = false;
            self.stats.dropped = self.stats.dropped.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_starts_are_found_in_each_packetization() {
        assert!(payload_starts_keyframe(&[0x67, 0x42]), "single SPS");
        assert!(payload_starts_keyframe(&[0x65, 0x88]), "single IDR");
        assert!(!payload_starts_keyframe(&[0x41, 0x9a]), "P slice");
        assert!(!payload_starts_keyframe(&[0x68, 0xce]), "PPS alone");
        // STAP-A of SPS and PPS (libwebrtc), and of SEI then IDR.
        assert!(payload_starts_keyframe(&[24, 0, 2, 0x67, 1, 0, 2, 0x68, 2]));
        assert!(payload_starts_keyframe(&[24, 0, 1, 0x06, 0, 2, 0x65, 1]));
        assert!(!payload_starts_keyframe(&[24, 0, 2, 0x41, 1]));
        // FU-A: only the first fragment of an IDR.
        assert!(payload_starts_keyframe(&[0x7c, 0x85, 1]));
        assert!(
            !payload_starts_keyframe(&[0x7c, 0x05, 1]),
            "middle fragment"
        );
        assert!(!payload_starts_keyframe(&[0x7c, 0x81, 1]), "P slice start");
        assert!(!payload_starts_keyframe(&[]));
        assert!(!payload_starts_keyframe(&[24, 0, 9]), "truncated STAP-A");
    }

    fn h(s: &str) -> Bytes {
        Bytes::from(hex::decode(s.replace(' ', "")).unwrap())
    }

    const SPS: &str = "6742c01e d9 00 a0 47 fe c8";
    const PPS: &str = "68ce3c80";

    fn packetizer(mtu: usize) -> Packetizer {
        Packetizer::new(Config {
            mtu,
            ssrc: 0x1234,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn rfc6184_5_6_single_nal_unit_packet() {
        // RFC 6184 5.6: a NAL unit that fits is the payload as-is (the NAL
        // unit header byte is the payload header).
        let mut p = packetizer(1200);
        let mut out = Vec::new();
        let au = h("00000005 41 9a 21 6c 45");
        p.packetize(&au, Format::Avcc { length_size: 4 }, 3000, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].marker);
        assert_eq!(out[0].payload.to_bytes(), h("419a216c45"));
        // Zero-copy: the payload points into the access unit.
        assert_eq!(out[0].payload.body().as_ptr(), au[4..].as_ptr());
    }

    #[test]
    fn rfc6184_5_7_1_stap_a_before_idr() {
        // RFC 6184 5.7.1 figure 7: STAP-A header (F|NRI|24), then for each
        // NAL unit a 16-bit size and the NAL unit. SPS+PPS from the decoder
        // configuration (not in-band), then the IDR as a single NAL unit.
        let mut p = packetizer(1200);
        p.set_parameter_sets(vec![h(SPS)], vec![h(PPS)]);
        let mut out = Vec::new();
        let au = h("00000006 65 88 84 00 33 ff");
        // AUD (type 9) and filler (12) are removed.
        let mut with_aud = h("00000002 09 f0").to_vec();
        with_aud.extend_from_slice(&au);
        with_aud.extend_from_slice(&h("00000003 0c ff ff"));
        p.packetize(
            &Bytes::from(with_aud),
            Format::Avcc { length_size: 4 },
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].payload.to_bytes(),
            h("78 000a 6742c01ed900a047fec8 0004 68ce3c80")
        );
        assert!(!out[0].marker);
        assert_eq!(out[1].payload.to_bytes(), h("6588840033ff"));
        assert!(out[1].marker);
        assert_eq!(
            out[1].sequence_number,
            out[0].sequence_number.wrapping_add(1)
        );
        assert_eq!(p.stats().removed_nals, 2);
        assert_eq!(
            p.sprop_parameter_sets().unwrap(),
            "Z0LAHtkAoEf+yA==,aM48gA=="
        );
        assert_eq!(p.profile_level_id().unwrap(), "42c01e");
    }

    #[test]
    fn rfc6184_5_8_fu_a() {
        // RFC 6184 5.8 figures 14/15: FU indicator (F|NRI|28), FU header
        // (S|E|R|type); the NAL header byte is not repeated in the fragments.
        // MTU 12+6 gives a payload budget of 6, i.e. 4 bytes per fragment;
        // all fragments but the last have one size (one GSO run).
        let mut p = packetizer(18);
        let mut out = Vec::new();
        let nal = h("65 00 01 02 03 04 05 06 07 08 09");
        p.packetize_nals(&[nal], 90, &mut out);
        let got: Vec<Bytes> = out.iter().map(|p| p.payload.to_bytes()).collect();
        assert_eq!(
            got,
            // 10 body bytes in 3 fragments of 4, 4 and the last 2.
            vec![h("7c 85 00010203"), h("7c 05 04050607"), h("7c 45 0809"),]
        );
        assert_eq!(out.iter().filter(|p| p.marker).count(), 1);
        assert!(out[2].marker);
        let mut d = Depacketizer::new(1 << 20);
        d.push(true, 0, &h("78 000a 6742c01ed900a047fec8 0004 68ce3c80"));
        assert_eq!(d.poll_event(), Some(Event::KeyframeNeeded));
        for pk in &out {
            d.push(pk.marker, pk.timestamp, &pk.payload.to_bytes());
        }
        match d.poll_event() {
            Some(Event::AccessUnit(au)) => {
                assert_eq!(au.nals, vec![h("65 00 01 02 03 04 05 06 07 08 09")]);
                assert!(au.keyframe);
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn annexb_input_and_malformed_avcc() {
        let au = h("00000001 67aa 000001 68bb 00 00000001 65cc 0000");
        let mut p = packetizer(1200);
        let mut out = Vec::new();
        assert_eq!(p.packetize(&au, Format::AnnexB, 0, &mut out).unwrap(), 2);
        // The in-band SPS/PPS become the STAP-A before the IDR slice.
        assert_eq!((p.sps(), p.pps()), (&[h("67aa")][..], &[h("68bb")][..]));
        assert_eq!(out[0].payload.to_bytes()[0] & 0x1f, STAP_A);
        assert_eq!(out[1].payload.to_bytes(), h("65cc"));
        assert!(out[1].marker && !out[0].marker);
        let bad = h("00000009 65");
        assert!(
            p.packetize(&bad, Format::Avcc { length_size: 4 }, 0, &mut out)
                .is_err()
        );
        assert!(
            p.packetize(&au, Format::Avcc { length_size: 3 }, 0, &mut out)
                .is_err()
        );
    }

    #[test]
    fn decoder_config_record() {
        // ISO/IEC 14496-15 5.2.4.1: version, profile, compat, level,
        // 0xfc|lengthSizeMinusOne, 0xe0|numSPS, sps, numPPS, pps.
        let rec = h("01 42c01e ff e1 000a 6742c01ed900a047fec8 01 0004 68ce3c80");
        let mut p = packetizer(1200);
        assert_eq!(p.set_decoder_config(&rec).unwrap(), 4);
        assert_eq!((p.sps(), p.pps()), (&[h(SPS)][..], &[h(PPS)][..]));
        assert!(p.set_decoder_config(&rec.slice(..12)).is_err());
    }

    #[test]
    fn lost_fragment_drops_access_unit() {
        let mut p = packetizer(100);
        p.set_parameter_sets(vec![h(SPS)], vec![h(PPS)]);
        let mut out = Vec::new();
        let idr = Bytes::from([&[0x65u8][..], &[7u8; 500]].concat());
        let pf = Bytes::from([&[0x41u8][..], &[9u8; 500]].concat());
        p.packetize_nals(std::slice::from_ref(&idr), 0, &mut out);
        p.packetize_nals(&[pf], 3000, &mut out);
        p.packetize_nals(&[idr], 6000, &mut out);
        let mut d = Depacketizer::new(1 << 20);
        for (i, pk) in out.iter().enumerate() {
            if i == 10 {
                d.lost();
                continue;
            }
            d.push(pk.marker, pk.timestamp, &pk.payload.to_bytes());
        }
        let ev: Vec<Event> = std::iter::from_fn(|| d.poll_event()).collect();
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert!(matches!(&ev[0], Event::AccessUnit(a) if a.timestamp == 0 && a.keyframe));
        assert_eq!(ev[1], Event::KeyframeNeeded);
        assert!(matches!(&ev[2], Event::AccessUnit(a) if a.timestamp == 6000));
        assert_eq!(d.stats().dropped, 1);
    }

    #[test]
    fn restart_continues_sequence_and_time() {
        let mut p = packetizer(1200);
        let mut out = Vec::new();
        p.packetize_nals(&[h("4101")], 0, &mut out);
        p.packetize_nals(&[h("4102")], 3000, &mut out);
        p.restart();
        p.packetize_nals(&[h("4103")], 0, &mut out);
        let ts: Vec<u32> = out.iter().map(|p| p.timestamp).collect();
        let seq: Vec<u16> = out.iter().map(|p| p.sequence_number).collect();
        assert_eq!(ts, vec![0, 3000, 6000]);
        assert_eq!(seq, vec![0, 1, 2]);
    }

    #[test]
    fn base64_rfc4648_10() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
