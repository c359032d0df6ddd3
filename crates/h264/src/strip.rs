//! The B-frame stripper: access units with B-frames in, access units a
//! WebRTC browser decoder plays out (no B-frames, decode time equal to
//! presentation time, strictly increasing).
//!
//! [`Mode::Auto`] passes through zero-copy until a B-frame appears, then
//! transcodes; [`Mode::Transcode`] always decodes with OpenH264 and
//! re-encodes Constrained Baseline; [`Mode::Drop`] drops non-referenced B
//! access units losslessly. It is a synchronous push/pop object: run it
//! off the async runtime when it transcodes. The I/O loop:
//!
//! ```
//! use bytes::Bytes;
//! use rts_h264::strip::{AccessUnit, Mode, Output, Settings, Stripper};
//!
//! # let record = Bytes::from_static(&[
//! #     0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9,
//! #     0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
//! #     0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x05, 0x68, 0xeb, 0xec, 0xb2, 0x2c,
//! # ]);
//! # let idr = Bytes::from_static(&[0, 0, 0, 4, 0x65, 0x88, 0x84, 0x00]);
//! let mut stripper = Stripper::new(Settings::new(Mode::Auto));
//! stripper.push_config(record)?; // the AVC sequence header
//! stripper.push(AccessUnit { dts: 0, pts: 66, data: idr.clone() })?;
//! while let Some(out) = stripper.pop() {
//!     match out {
//!         Output::Config(record) => { /* send a new sequence header */ }
//!         Output::Frame(f) => {
//!             assert_eq!(f.time, 66); // dts == pts
//!             assert_eq!(f.data.as_ptr(), idr.as_ptr()); // zero copy while no B-frame
//!         }
//!         Output::Event(e) => { /* log it */ }
//!         _ => {}
//!     }
//! }
//! stripper.finish()?; // end of stream: pictures still held come out
//! # Ok::<(), rts_h264::Error>(())
//! ```
//!
//! While transcoding, output lags input by at most the input's reorder
//! depth plus one frame ([`Stripper::max_added_delay_frames`]). Whether the
//! bundled OpenH264 uses its x86 assembly (nasm found at build time) or the
//! portable C path is [`ASM`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use openh264::decoder::{DecodeOptions, DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Level, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use crate::Error;
use crate::avcc::AvcConfig;
use crate::classify::{Classifier, FrameKind};
use crate::nal::{AnnexBIter, AvccIter, NalType, write_annexb, write_avcc};

/// How B-frames are removed (docs/conversion.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Zero-copy passthrough while no B-frame has been seen; transcode from
    /// the first one on.
    #[default]
    Auto,
    /// Always decode and re-encode (Constrained Baseline, no B-frames).
    Transcode,
    /// Lossless: drop non-referenced B access units; a referenced B-frame is
    /// [`Error::ReferencedBFrame`].
    Drop,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Self::Auto),
            "transcode" => Ok(Self::Transcode),
            "drop" => Ok(Self::Drop),
            _ => Err(Error::Invalid("mode must be auto, transcode or drop")),
        }
    }
}

/// Settings of a [`Stripper`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Settings {
    /// The mode.
    pub mode: Mode,
    /// Encoder bitrate in bits per second; `None` derives it from the
    /// measured input rate (see [`Stripper`]).
    pub bitrate: Option<u32>,
}

impl Settings {
    /// Settings for `mode` with the derived bitrate.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            bitrate: None,
        }
    }

    /// With a fixed encoder bitrate in bits per second.
    pub fn with_bitrate(mut self, bps: u32) -> Self {
        self.bitrate = Some(bps);
        self
    }
}

/// An access unit going in (AVCC NAL units with the configuration's length
/// size) with its decode and presentation times in milliseconds (as FLV
/// carries them: `pts = dts + composition time`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// Decode time.
    pub dts: i64,
    /// Presentation time.
    pub pts: i64,
    /// AVCC NAL units.
    pub data: Bytes,
}

/// An access unit coming out: decode time equals presentation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Decode and presentation time, strictly increasing.
    pub time: i64,
    /// Whether this is an IDR picture (a random access point).
    pub keyframe: bool,
    /// AVCC NAL units (length size of the last [`Output::Config`]).
    pub data: Bytes,
}

/// Something that happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Auto mode saw its first B-frame and now transcodes.
    TranscodeStarted {
        /// Presentation time of the B-frame.
        pts: i64,
    },
    /// The decoder refused an access unit; input is skipped up to the next IDR.
    DecodeError {
        /// Decode time of the refused access unit.
        dts: i64,
        /// The decoder's message.
        message: String,
    },
    /// The encoder (re)started at this resolution.
    EncoderConfigured {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bitrate in bits per second.
        bitrate: u32,
    },
}

/// What [`Stripper::pop`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// A new AVCDecoderConfigurationRecord; frames after it use it.
    Config(Bytes),
    /// An access unit.
    Frame(Frame),
    /// An event.
    Event(Event),
}

/// Counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Access units pushed.
    pub frames_in: u64,
    /// Access units output.
    pub frames_out: u64,
    /// B access units seen.
    pub b_frames_in: u64,
    /// Access units dropped (drop mode: non-referenced B; transcode: skipped
    /// after a decode error or before the switch in auto mode).
    pub dropped: u64,
    /// Access units decoded and re-encoded.
    pub transcoded: u64,
}

/// Largest number of access units held back (a bound on buffering; the
/// decoder needs at most 16 for reordering).
const MAX_PENDING: usize = 64;
/// Largest GOP kept in auto mode to start transcoding mid-GOP.
const MAX_GOP: usize = 1024;

/// The B-frame stripper. Feed [`push_config`](Self::push_config) and
/// [`push`](Self::push), drain [`pop`](Self::pop), call
/// [`finish`](Self::finish) at the end of the stream.
///
/// In transcode mode the encoder bitrate is [`Settings::bitrate`] or, when
/// unset, 1.5 times the input rate measured up to the first encoded frame,
/// bounded to 0.05..0.3 bits per pixel.
pub struct Stripper {
    settings: Settings,
    classifier: Classifier,
    config: Option<Bytes>,
    /// Annex-B SPS+PPS of the current input configuration.
    param_sets: Vec<u8>,
    transcoding: bool,
    out: VecDeque<Output>,
    stats: Stats,
    last_time: Option<i64>,
    /// Auto mode: the access units since the last IDR, to start decoding.
    gop: Vec<AccessUnit>,
    /// Auto-mode passthrough: access units held back (up to the stream's
    /// reorder depth) and released in presentation order, so pictures
    /// reordered before the first B-frame is seen are still output after
    /// the switch to transcoding (with whether each is an IDR).
    held: Vec<(AccessUnit, bool)>,
    /// Auto-mode passthrough: the smallest composition offset (pts - dts)
    /// seen so far.
    min_offset: Option<i64>,
    tx: Option<Transcoder>,
    keyframe_requested: bool,
    /// Catch-up: transcoded pictures presented before this are not output.
    skip_before: Option<i64>,
    bytes_in: u64,
    first_dts: Option<i64>,
    last_dts: i64,
}

struct Transcoder {
    decoder: Decoder,
    encoder: Option<Encoder>,
    /// Presentation times (and whether the input was an IDR) of access units
    /// in the decoder: decoded pictures come out in presentation order.
    pending: BinaryHeap<Reverse<(i64, bool)>>,
    /// `user_data_unregistered` SEI NAL units of pending pictures, by pts:
    /// carried to the re-encoded picture (wall-clock stamps survive).
    sei: HashMap<i64, Vec<Bytes>>,
    skip_to_idr: bool,
    annexb: Vec<u8>,
    dims: (u32, u32),
    last_config: Option<Bytes>,
    max_pending: usize,
}

impl std::fmt::Debug for Transcoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcoder")
            .field("pending", &self.pending.len())
            .field("dims", &self.dims)
            .finish()
    }
}

impl std::fmt::Debug for Stripper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripper")
            .field("settings", &self.settings)
            .field("transcoding", &self.transcoding)
            .field("stats", &self.stats)
            .field("tx", &self.tx)
            .finish_non_exhaustive()
    }
}

fn codec_err(e: &openh264::Error) -> String {
    e.to_string()
}

impl Stripper {
    /// A stripper with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            classifier: Classifier::new(),
            config: None,
            param_sets: Vec::new(),
            transcoding: settings.mode == Mode::Transcode,
            out: VecDeque::new(),
            stats: Stats::default(),
            last_time: None,
            gop: Vec::new(),
            held: Vec::new(),
            min_offset: None,
            tx: None,
            keyframe_requested: false,
            skip_before: None,
            bytes_in: 0,
            first_dts: None,
            last_dts: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Whether access units are being decoded and re-encoded.
    pub fn is_transcoding(&self) -> bool {
        self.transcoding
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Asks for an IDR as soon as possible (a new viewer, a PLI). Honoured
    /// while transcoding (the next encoded frame); in passthrough the next
    /// IDR comes from the source.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Catch-up after joining a stream mid-GOP (a server starting a
    /// transcoder for a new viewer from its cached GOP): while transcoding,
    /// pictures presented before `time` are decoded (they are references)
    /// but neither encoded nor output, so the first output is an IDR of the
    /// picture at `time`, not a burst of old pictures. Passthrough output is
    /// not affected.
    pub fn skip_before(&mut self, time: i64) {
        self.skip_before = Some(time);
    }

    /// The time before which transcoded pictures are not output.
    fn not_after(&self) -> Option<i64> {
        match (self.last_time, self.skip_before) {
            (l, None) => l,
            (None, Some(s)) => Some(s.saturating_sub(1)),
            (Some(l), Some(s)) => Some(l.max(s.saturating_sub(1))),
        }
    }

    /// The most frames an output may lag behind its input: the input's
    /// reorder depth (SPS `max_num_reorder_frames`, or its inference) plus
    /// one while transcoding; the reorder depth in auto-mode passthrough
    /// (pictures are released in presentation order; zero for streams that
    /// cannot have B-frames, such as Baseline; streams whose composition
    /// offset is constant are not held at all); zero in drop mode.
    pub fn max_added_delay_frames(&self) -> u32 {
        let depth = self.reorder_depth();
        match (self.transcoding, self.settings.mode) {
            (true, _) => depth.saturating_add(1),
            (false, Mode::Auto) => depth,
            (false, _) => 0,
        }
    }

    fn reorder_depth(&self) -> u32 {
        self.classifier
            .active_sps()
            .map_or(0, |s| s.reorder_depth())
    }

    /// Access units pushed but not yet output (the delay right now).
    pub fn pending_frames(&self) -> usize {
        self.tx
            .as_ref()
            .map_or(0, |t| t.pending.len())
            .saturating_add(self.held.len())
    }

    /// The largest number of frames held at once so far while transcoding.
    pub fn max_pending_frames(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.max_pending)
    }

    /// Takes an AVCDecoderConfigurationRecord (FLV/RTMP AVC sequence header).
    pub fn push_config(&mut self, record: Bytes) -> Result<(), Error> {
        let cfg = AvcConfig::parse(&record)?;
        self.classifier.set_config(&cfg)?;
        self.param_sets.clear();
        write_annexb(
            cfg.sps.iter().chain(&cfg.pps).map(|n| n.bytes().as_ref()),
            &mut self.param_sets,
        );
        if self.config.as_ref() == Some(&record) {
            // A repeated sequence header (republish, or before every keyframe).
            return Ok(());
        }
        self.config = Some(record.clone());
        if !self.transcoding {
            // Held pictures belong to the previous configuration.
            self.release_held(0);
            self.out.push_back(Output::Config(record));
        }
        if let Some(tx) = &mut self.tx {
            // New parameter sets go to the decoder with the next IDR.
            tx.skip_to_idr = true;
        }
        Ok(())
    }

    /// Takes one access unit.
    pub fn push(&mut self, au: AccessUnit) -> Result<(), Error> {
        if self.config.is_none() {
            return Err(Error::NoConfig);
        }
        self.stats.frames_in = self.stats.frames_in.saturating_add(1);
        self.bytes_in = self.bytes_in.saturating_add(au.data.len() as u64);
        self.first_dts.get_or_insert(au.dts);
        self.last_dts = au.dts;
        let class = self.classifier.classify(&au.data)?;
        let Some(class) = class else {
            // No picture (only SEI or parameter sets): nothing to show.
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            return Ok(());
        };
        let is_b = class.has_b_slice || class.kind == FrameKind::B;
        let idr = class.kind == FrameKind::Idr;
        if is_b {
            self.stats.b_frames_in = self.stats.b_frames_in.saturating_add(1);
        }
        match self.settings.mode {
            Mode::Drop => {
                if is_b {
                    if class.referenced {
                        return Err(Error::ReferencedBFrame);
                    }
                    self.stats.dropped = self.stats.dropped.saturating_add(1);
                    return Ok(());
                }
                self.emit_passthrough(au, idr);
                Ok(())
            }
            Mode::Auto if !self.transcoding => {
                if idr {
                    // Nothing after an IDR is presented before what precedes it.
                    self.release_held(0);
                    self.gop.clear();
                }
                if !is_b {
                    if self.gop.len() < MAX_GOP {
                        self.gop.push(au.clone());
                    }
                    let offset = au.pts.saturating_sub(au.dts);
                    let min = self.min_offset.map_or(offset, |m| m.min(offset));
                    self.min_offset = Some(min);
                    // No later access unit is presented before its decode
                    // time plus the smallest offset seen: a stream without
                    // reordering (constant offset) is not delayed at all.
                    let safe_until = au.dts.saturating_add(min);
                    self.held.push((au, idr));
                    let depth = usize::try_from(self.reorder_depth()).unwrap_or(usize::MAX);
                    self.release_held(depth.min(MAX_PENDING));
                    self.release_until(safe_until);
                    return Ok(());
                }
                self.transcoding = true;
                self.out
                    .push_back(Output::Event(Event::TranscodeStarted { pts: au.pts }));
                let gop = std::mem::take(&mut self.gop);
                let complete = gop.first().is_some_and(|f| self.is_idr(&f.data));
                if complete {
                    // Held pictures are presented after everything output so
                    // far: they come out of the transcoder.
                    self.held.clear();
                    for old in gop {
                        self.transcode(old, true)?;
                    }
                } else {
                    self.release_held(0);
                }
                self.transcode(au, false)
            }
            _ => {
                if !class.referenced && self.skip_before.is_some_and(|t| au.pts < t) {
                    // Catch-up: a non-reference picture that will not be
                    // output need not be decoded at all.
                    self.stats.dropped = self.stats.dropped.saturating_add(1);
                    return Ok(());
                }
                self.transcode(au, false)
            }
        }
    }

    fn is_idr(&self, data: &Bytes) -> bool {
        AvccIter::new(data.clone(), self.classifier.length_size())
            .is_ok_and(|mut it| it.any(|n| n.is_ok_and(|n| n.nal_type() == NalType::IdrSlice)))
    }

    /// Signals the end of the stream: decoded pictures still held are
    /// output.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.release_held(0);
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        let res = self.drain_decoder(&mut tx);
        self.tx = Some(tx);
        res
    }

    /// The next output, if any.
    pub fn pop(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn next_time(&mut self, t: i64) -> i64 {
        let t = match self.last_time {
            Some(last) if t <= last => last.saturating_add(1),
            _ => t,
        };
        self.last_time = Some(t);
        t
    }

    /// Outputs held passthrough pictures, earliest presentation first,
    /// until at most `keep` are held.
    fn release_held(&mut self, keep: usize) {
        while self.held.len() > keep {
            let Some(i) = self
                .held
                .iter()
                .enumerate()
                .min_by_key(|(_, (au, _))| au.pts)
                .map(|(i, _)| i)
            else {
                return;
            };
            let (au, idr) = self.held.remove(i);
            self.emit_passthrough(au, idr);
        }
    }

    /// Outputs held passthrough pictures presented at or before `time`.
    fn release_until(&mut self, time: i64) {
        while self
            .held
            .iter()
            .map(|(au, _)| au.pts)
            .min()
            .is_some_and(|p| p <= time)
        {
            let before = self.held.len();
            self.release_held(before.saturating_sub(1));
        }
    }

    fn emit_passthrough(&mut self, au: AccessUnit, keyframe: bool) {
        let time = self.next_time(au.pts);
        self.stats.frames_out = self.stats.frames_out.saturating_add(1);
        self.out.push_back(Output::Frame(Frame {
            time,
            keyframe,
            data: au.data,
        }));
    }

    fn new_transcoder(&self) -> Result<Transcoder, Error> {
        let cfg = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), cfg)
            .map_err(|_| Error::Codec("openh264 decoder did not start"))?;
        Ok(Transcoder {
            decoder,
            encoder: None,
            pending: BinaryHeap::new(),
            sei: HashMap::new(),
            skip_to_idr: true,
            annexb: Vec::new(),
            dims: (0, 0),
            last_config: None,
            max_pending: 0,
        })
    }

    /// `replay`: an access unit already output in passthrough; decode it
    /// for its references but output nothing at or before the last time.
    fn transcode(&mut self, au: AccessUnit, replay: bool) -> Result<(), Error> {
        if self.classifier.active_sps().is_some_and(|sps| {
            sps.chroma_format_idc != 1 || sps.bit_depth_luma != 8 || sps.bit_depth_chroma != 8
        }) {
            return Err(Error::Unsupported(
                "transcoding needs 8-bit 4:2:0 video (openh264)",
            ));
        }
        let mut tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.new_transcoder()?,
        };
        let res = self.transcode_with(&mut tx, au, replay);
        self.tx = Some(tx);
        res
    }

    fn transcode_with(
        &mut self,
        tx: &mut Transcoder,
        au: AccessUnit,
        replay: bool,
    ) -> Result<(), Error> {
        let idr = self.is_idr(&au.data);
        if tx.skip_to_idr {
            if !idr {
                self.stats.dropped = self.stats.dropped.saturating_add(1);
                return Ok(());
            }
            tx.skip_to_idr = false;
        }
        tx.annexb.clear();
        if idr {
            tx.annexb.extend_from_slice(&self.param_sets);
        }
        let mut seis = Vec::new();
        for nal in AvccIter::new(au.data.clone(), self.classifier.length_size())? {
            let nal = nal?;
            if nal.nal_type() == NalType::Sei && !replay && carries_user_data(nal.bytes()) {
                seis.push(nal.bytes().clone());
            }
            write_annexb([nal.bytes().as_ref()], &mut tx.annexb);
        }
        if !seis.is_empty() {
            if tx.sei.len() >= MAX_PENDING {
                tx.sei.clear();
            }
            tx.sei.insert(au.pts, seis);
        }
        if tx.pending.len() >= MAX_PENDING {
            return Err(Error::Codec("decoder holds too many pictures"));
        }
        // Replayed pictures keep their real pts so the labels stay in
        // presentation order; they are not output as their time is not
        // after the last passed-through one.
        tx.pending.push(Reverse((au.pts, idr)));
        tx.max_pending = tx.max_pending.max(tx.pending.len());
        // OpenH264 holds a picture longer than the stream's reorder depth
        // needs (one frame even without B-frames); once more pictures are
        // pending than the depth, the earliest is final, so flush it out.
        let depth = self
            .classifier
            .active_sps()
            .map_or(0, |s| s.reorder_depth());
        let flush = if tx.pending.len() > depth as usize {
            Flush::Flush
        } else {
            Flush::NoFlush
        };
        let decoded = tx
            .decoder
            .decode_with_options(&tx.annexb, DecodeOptions::new().flush_after_decode(flush));
        match decoded {
            Ok(Some(yuv)) => {
                let Some(Reverse((pts, was_idr))) = tx.pending.pop() else {
                    return Ok(());
                };
                let rate = self.rate();
                let last = self.not_after();
                let (enc, stats) = (&mut tx.encoder, &mut self.stats);
                let res = encode_one(
                    &yuv,
                    enc,
                    pts,
                    was_idr,
                    &mut self.keyframe_requested,
                    last,
                    self.settings,
                    rate,
                    &mut tx.dims,
                    &mut tx.last_config,
                    stats,
                )?;
                let sei = res.frame.as_ref().and_then(|f| tx.sei.remove(&f.0));
                self.push_encoded(res, sei);
            }
            Ok(None) => {}
            Err(e) => {
                self.out.push_back(Output::Event(Event::DecodeError {
                    dts: au.dts,
                    message: codec_err(&e),
                }));
                // A fresh decoder: references are gone, wait for an IDR.
                let fresh = self.new_transcoder()?;
                tx.decoder = fresh.decoder;
                self.stats.dropped = self.stats.dropped.saturating_add(tx.pending.len() as u64);
                tx.pending.clear();
                tx.sei.clear();
                tx.skip_to_idr = true;
            }
        }
        Ok(())
    }

    fn drain_decoder(&mut self, tx: &mut Transcoder) -> Result<(), Error> {
        let frames = match tx.decoder.flush_remaining() {
            Ok(f) => f,
            Err(e) => {
                self.out.push_back(Output::Event(Event::DecodeError {
                    dts: self.last_dts,
                    message: codec_err(&e),
                }));
                Vec::new()
            }
        };
        let mut results = Vec::new();
        let rate = self.rate();
        let last = self.not_after();
        for yuv in &frames {
            let Some(Reverse((pts, was_idr))) = tx.pending.pop() else {
                break;
            };
            results.push(encode_one(
                yuv,
                &mut tx.encoder,
                pts,
                was_idr,
                &mut self.keyframe_requested,
                last,
                self.settings,
                rate,
                &mut tx.dims,
                &mut tx.last_config,
                &mut self.stats,
            )?);
        }
        drop(frames);
        self.stats.dropped = self.stats.dropped.saturating_add(tx.pending.len() as u64);
        tx.pending.clear();
        for r in results {
            let sei = r.frame.as_ref().and_then(|f| tx.sei.remove(&f.0));
            self.push_encoded(r, sei);
        }
        Ok(())
    }

    /// `(bytes in, first dts, last dts, frame rate)` for the encoder
    /// settings: the frame rate from the SPS timing, else from the input
    /// times, else 30.
    fn rate(&self) -> (u64, Option<i64>, i64, f64) {
        let span = self
            .last_dts
            .saturating_sub(self.first_dts.unwrap_or(self.last_dts));
        let measured = (span >= 100)
            .then(|| self.stats.frames_in.saturating_sub(1) as f64 * 1000.0 / span as f64);
        let fps = self
            .classifier
            .active_sps()
            .and_then(|s| s.frame_rate())
            .or(measured)
            .filter(|f| (1.0..=240.0).contains(f))
            .unwrap_or(30.0);
        (self.bytes_in, self.first_dts, self.last_dts, fps)
    }

    fn push_encoded(&mut self, r: Encoded, sei: Option<Vec<Bytes>>) {
        for e in r.events {
            self.out.push_back(Output::Event(e));
        }
        let Some((pts, keyframe, data, config)) = r.frame else {
            return;
        };
        if let Some(c) = config {
            self.out.push_back(Output::Config(c));
        }
        let data = match sei {
            Some(sei) => with_sei(&data, &sei).unwrap_or(data),
            None => data,
        };
        let time = self.next_time(pts);
        self.stats.frames_out = self.stats.frames_out.saturating_add(1);
        self.stats.transcoded = self.stats.transcoded.saturating_add(1);
        self.out.push_back(Output::Frame(Frame {
            time,
            keyframe,
            data,
        }));
    }
}

/// x264 writes its version and settings as `user_data_unregistered` with
/// this UUID; it does not describe the re-encoded stream, so it is not carried.
const X264_UUID: [u8; 16] = [
    0xdc, 0x45, 0xe9, 0xbd, 0xe6, 0xd9, 0x48, 0xb7, 0x96, 0x2c, 0xd8, 0x20, 0xd9, 0x23, 0xee, 0xef,
];

fn carries_user_data(nal: &[u8]) -> bool {
    crate::sei::parse(nal).is_ok_and(|msgs| {
        msgs.iter().any(|m| {
            m.as_user_data_unregistered()
                .is_some_and(|(uuid, _)| uuid != X264_UUID)
        })
    })
}

/// `data` (AVCC, 4-byte lengths) with `sei` inserted before the first slice.
fn with_sei(data: &Bytes, sei: &[Bytes]) -> Result<Bytes, Error> {
    let mut out = BytesMut::with_capacity(
        data.len()
            .saturating_add(sei.iter().map(|s| s.len().saturating_add(4)).sum()),
    );
    let mut inserted = false;
    for nal in AvccIter::new(data.clone(), 4)? {
        let nal = nal?;
        if !inserted && nal.nal_type().is_vcl() {
            write_avcc(sei.iter().map(|s| s.as_ref()), 4, &mut out)?;
            inserted = true;
        }
        write_avcc([nal.bytes().as_ref()], 4, &mut out)?;
    }
    Ok(out.freeze())
}

struct Encoded {
    events: Vec<Event>,
    frame: Option<(i64, bool, Bytes, Option<Bytes>)>,
}

/// Level (Table A-1) for a frame size and rate: the lowest whose MaxFS and
/// MaxMBPS fit, never below 3.1 (what browsers offer: 42e01f).
pub fn level_for(width: u32, height: u32, fps: f64) -> (u8, u32) {
    // (level_idc, MaxMBPS, MaxFS)
    const TABLE: [(u8, u32, u32); 6] = [
        (31, 108_000, 3_600),
        (32, 216_000, 5_120),
        (40, 245_760, 8_192),
        (42, 522_240, 8_704),
        (50, 589_824, 22_080),
        (51, 983_040, 36_864),
    ];
    let mbs = width.div_ceil(16).saturating_mul(height.div_ceil(16));
    let mbps = f64::from(mbs) * fps.max(1.0);
    for (idc, max_mbps, max_fs) in TABLE {
        if mbs <= max_fs && mbps <= f64::from(max_mbps) {
            return (idc, mbs);
        }
    }
    (52, mbs)
}

fn level_enum(idc: u8) -> Level {
    match idc {
        31 => Level::Level_3_1,
        32 => Level::Level_3_2,
        40 => Level::Level_4_0,
        42 => Level::Level_4_2,
        50 => Level::Level_5_0,
        51 => Level::Level_5_1,
        _ => Level::Level_5_2,
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_one(
    yuv: &DecodedYUV<'_>,
    encoder: &mut Option<Encoder>,
    pts: i64,
    was_idr: bool,
    keyframe_requested: &mut bool,
    last_time: Option<i64>,
    settings: Settings,
    rate: (u64, Option<i64>, i64, f64),
    dims: &mut (u32, u32),
    last_config: &mut Option<Bytes>,
    stats: &mut Stats,
) -> Result<Encoded, Error> {
    let mut events = Vec::new();
    // Replayed pictures (auto mode switch) and anything not after the last
    // output only serve as references.
    if last_time.is_some_and(|l| pts <= l) {
        stats.dropped = stats.dropped.saturating_add(1);
        return Ok(Encoded {
            events,
            frame: None,
        });
    }
    let (w, h) = yuv.dimensions();
    let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
    if encoder.is_none() || *dims != (w, h) {
        let fps = rate.3;
        let (level, _) = level_for(w, h, fps);
        let pixels_per_sec = f64::from(w) * f64::from(h) * fps;
        let bitrate = settings.bitrate.unwrap_or_else(|| {
            let (bytes, first, last, _) = rate;
            let span_ms = last.saturating_sub(first.unwrap_or(last)).max(33) as f64;
            let measured = bytes as f64 * 8.0 * 1000.0 / span_ms * 1.5;
            measured.clamp(pixels_per_sec * 0.05, pixels_per_sec * 0.3) as u32
        });
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            .profile(Profile::Baseline)
            .level(level_enum(level))
            .complexity(Complexity::Low)
            .usage_type(UsageType::CameraVideoRealTime)
            .scene_change_detect(false)
            .background_detection(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), cfg)
            .map_err(|_| Error::Codec("openh264 encoder did not start"))?;
        *encoder = Some(enc);
        *dims = (w, h);
        events.push(Event::EncoderConfigured {
            width: w,
            height: h,
            bitrate,
        });
    }
    let Some(enc) = encoder.as_mut() else {
        return Err(Error::Codec("openh264 encoder missing"));
    };
    if was_idr || std::mem::take(keyframe_requested) {
        enc.force_intra_frame();
    }
    let ts = Timestamp::from_millis(u64::try_from(pts).unwrap_or(0));
    let bs = enc
        .encode_at(yuv, ts)
        .map_err(|_| Error::Codec("openh264 could not encode a picture"))?;
    let annexb = Bytes::from(bs.to_vec());
    let mut sps = None;
    let mut pps = None;
    let mut nals: Vec<Bytes> = Vec::new();
    let mut keyframe = false;
    for nal in AnnexBIter::new(annexb) {
        let nal = nal?;
        match nal.nal_type() {
            NalType::Sps => {
                // Constrained Baseline: constraint_set0/1/2 as in 42e01f.
                let mut b = nal.bytes().to_vec();
                if let Some(flags) = b.get_mut(2) {
                    *flags |= 0xe0;
                }
                let b = Bytes::from(b);
                sps = Some(b.clone());
                nals.push(b);
            }
            NalType::Pps => {
                pps = Some(nal.bytes().clone());
                nals.push(nal.bytes().clone());
            }
            t => {
                keyframe |= t == NalType::IdrSlice;
                nals.push(nal.bytes().clone());
            }
        }
    }
    if nals.is_empty() {
        return Ok(Encoded {
            events,
            frame: None,
        });
    }
    let mut config = None;
    if let (Some(s), Some(p)) = (sps, pps) {
        let rec = AvcConfig::from_parameter_sets(s, p)?.to_bytes()?;
        if last_config.as_ref() != Some(&rec) {
            *last_config = Some(rec.clone());
            config = Some(rec);
        }
    }
    let mut data = BytesMut::new();
    write_avcc(nals.iter().map(|n| n.as_ref()), 4, &mut data)?;
    Ok(Encoded {
        events,
        frame: Some((pts, keyframe, data.freeze(), config)),
    })
}

/// Whether the OpenH264 in this build uses its x86 assembly (nasm was found
/// when it was built); `false` means the portable C path.
pub const ASM: bool = cfg!(rts_h264_asm);
