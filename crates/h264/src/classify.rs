//! Access-unit classification: IDR, I, P or B, referenced or not, frame
//! number and POC LSB, from the parameter sets and slice headers.

use std::collections::HashMap;

use bytes::Bytes;

use crate::Error;
use crate::avcc::AvcConfig;
use crate::nal::{AvccIter, Nal, NalType};
use crate::pps::Pps;
use crate::slice::{SliceHeader, SliceType};
use crate::sps::Sps;

/// The kind of picture an access unit carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// An IDR picture (NAL type 5).
    Idr,
    /// A non-IDR picture whose first slice is I or SI.
    I,
    /// First slice P or SP.
    P,
    /// First slice B.
    B,
}

impl FrameKind {
    /// The letter ffprobe prints as `pict_type` (`I` for IDR too).
    pub fn pict_type(self) -> char {
        match self {
            Self::Idr | Self::I => 'I',
            Self::P => 'P',
            Self::B => 'B',
        }
    }
}

/// What an access unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classification {
    /// Kind from the first slice (what ffmpeg reports as `pict_type`).
    pub kind: FrameKind,
    /// Whether any slice of the picture is a B slice.
    pub has_b_slice: bool,
    /// `nal_ref_idc != 0`: other pictures may reference this one.
    pub referenced: bool,
    /// `frame_num` of the first slice.
    pub frame_num: u32,
    /// `pic_order_cnt_lsb` of the first slice (POC type 0).
    pub poc_lsb: Option<u32>,
    /// Number of slice NAL units.
    pub slices: u32,
}

/// Keeps the parameter sets of a stream and classifies its access units.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
    length_size: u8,
    active_sps: Option<u32>,
}

impl Classifier {
    /// A classifier for AVCC access units with 4-byte lengths until a
    /// configuration record says otherwise.
    pub fn new() -> Self {
        Self {
            length_size: 4,
            ..Self::default()
        }
    }

    /// Takes the parameter sets and length size of a decoder configuration.
    pub fn set_config(&mut self, config: &AvcConfig) -> Result<(), Error> {
        self.length_size = config.length_size;
        for n in config.sps.iter().chain(&config.pps) {
            self.add_nal(n)?;
        }
        Ok(())
    }

    /// The AVCC length size in use.
    pub fn length_size(&self) -> u8 {
        self.length_size
    }

    /// Learns an SPS or PPS; other NAL units are ignored.
    pub fn add_nal(&mut self, nal: &Nal) -> Result<(), Error> {
        match nal.nal_type() {
            NalType::Sps => {
                let s = Sps::parse(&nal.rbsp())?;
                if self.sps.len() < 32 || self.sps.contains_key(&s.id) {
                    self.active_sps.get_or_insert(s.id);
                    self.sps.insert(s.id, s);
                }
            }
            NalType::Pps => {
                let p = Pps::parse(&nal.rbsp())?;
                if self.pps.len() < 256 || self.pps.contains_key(&p.id) {
                    self.pps.insert(p.id, p);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The SPS of the last classified picture (or the first one learned).
    pub fn active_sps(&self) -> Option<&Sps> {
        self.sps.get(&self.active_sps?)
    }

    /// Classifies an AVCC access unit; in-band SPS/PPS are learned first.
    /// `Ok(None)` when it holds no slice.
    pub fn classify(&mut self, au: &Bytes) -> Result<Option<Classification>, Error> {
        let iter = AvccIter::new(au.clone(), self.length_size)?;
        self.classify_nals(iter)
    }

    /// Classifies the NAL units of one access unit (from [`AvccIter`] or
    /// [`crate::nal::AnnexBIter`]).
    pub fn classify_nals(
        &mut self,
        nals: impl IntoIterator<Item = Result<Nal, Error>>,
    ) -> Result<Option<Classification>, Error> {
        let mut out: Option<Classification> = None;
        for nal in nals {
            let nal = nal?;
            let t = nal.nal_type();
            if matches!(t, NalType::Sps | NalType::Pps) {
                self.add_nal(&nal)?;
                continue;
            }
            if !matches!(t, NalType::Slice | NalType::IdrSlice) {
                continue;
            }
            let prefix = nal.rbsp_prefix(128);
            let pps_id = SliceHeader::pps_id(&prefix)?;
            let pps = self.pps.get(&pps_id).ok_or(Error::MissingParameterSet)?;
            let sps = self
                .sps
                .get(&pps.sps_id)
                .ok_or(Error::MissingParameterSet)?;
            let h = SliceHeader::parse(&prefix, t, sps, pps)?;
            let is_b = h.slice_type == SliceType::B;
            match &mut out {
                Some(c) => {
                    c.has_b_slice |= is_b;
                    c.slices = c.slices.saturating_add(1);
                }
                None => {
                    self.active_sps = Some(pps.sps_id);
                    let kind = match (t, h.slice_type) {
                        (NalType::IdrSlice, _) => FrameKind::Idr,
                        (_, SliceType::I | SliceType::Si) => FrameKind::I,
                        (_, SliceType::P | SliceType::Sp) => FrameKind::P,
                        (_, SliceType::B) => FrameKind::B,
                    };
                    out = Some(Classification {
                        kind,
                        has_b_slice: is_b,
                        referenced: nal.ref_idc() != 0,
                        frame_num: h.frame_num,
                        poc_lsb: h.pic_order_cnt_lsb,
                        slices: 1,
                    });
                }
            }
        }
        Ok(out)
    }
}
