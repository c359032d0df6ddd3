//! Slice header (H.264 7.3.3), as far as classification needs: slice type,
//! frame number, field flags, IDR id and picture order count fields.

use crate::Error;
use crate::bits::BitReader;
use crate::nal::{Nal, NalType};
use crate::pps::Pps;
use crate::sps::Sps;

/// `slice_type % 5` (Table 7-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceType {
    /// 0: P.
    P,
    /// 1: B.
    B,
    /// 2: I.
    I,
    /// 3: SP.
    Sp,
    /// 4: SI.
    Si,
}

impl SliceType {
    /// From a `slice_type` value (0..=9).
    pub fn from_u32(v: u32) -> Result<Self, Error> {
        Ok(match v {
            0 | 5 => Self::P,
            1 | 6 => Self::B,
            2 | 7 => Self::I,
            3 | 8 => Self::Sp,
            4 | 9 => Self::Si,
            _ => return Err(Error::Invalid("slice_type above 9")),
        })
    }
}

/// The leading fields of a slice header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SliceHeader {
    /// `first_mb_in_slice`: zero for the first slice of a picture.
    pub first_mb_in_slice: u32,
    /// `slice_type`.
    pub slice_type: SliceType,
    /// `pic_parameter_set_id`.
    pub pps_id: u32,
    /// `frame_num`.
    pub frame_num: u32,
    /// `field_pic_flag`.
    pub field_pic: bool,
    /// `bottom_field_flag`.
    pub bottom_field: bool,
    /// `idr_pic_id`, for IDR slices.
    pub idr_pic_id: Option<u32>,
    /// `pic_order_cnt_lsb` (POC type 0).
    pub pic_order_cnt_lsb: Option<u32>,
    /// `delta_pic_order_cnt_bottom` (POC type 0).
    pub delta_pic_order_cnt_bottom: i32,
    /// `delta_pic_order_cnt[0..2]` (POC type 1).
    pub delta_pic_order_cnt: [i32; 2],
}

impl SliceHeader {
    /// The PPS id of a slice, read before the PPS is known.
    pub fn pps_id(rbsp: &[u8]) -> Result<u32, Error> {
        let mut r = BitReader::new(rbsp);
        let _first_mb = r.ue()?;
        let _slice_type = r.ue_max(9, "slice_type above 9")?;
        r.ue_max(255, "pic_parameter_set_id above 255")
    }

    /// Parses the header of a slice NAL unit of type `nal_type` from its RBSP.
    pub fn parse(rbsp: &[u8], nal_type: NalType, sps: &Sps, pps: &Pps) -> Result<Self, Error> {
        let mut r = BitReader::new(rbsp);
        let first_mb_in_slice = r.ue()?;
        let slice_type = SliceType::from_u32(r.ue()?)?;
        let pps_id = r.ue_max(255, "pic_parameter_set_id above 255")?;
        if sps.separate_colour_plane {
            let _colour_plane_id = r.bits(2)?;
        }
        let frame_num = r.bits(sps.log2_max_frame_num)?;
        let (mut field_pic, mut bottom_field) = (false, false);
        if !sps.frame_mbs_only {
            field_pic = r.bit()?;
            if field_pic {
                bottom_field = r.bit()?;
            }
        }
        let idr_pic_id = if nal_type == NalType::IdrSlice {
            Some(r.ue_max(65_535, "idr_pic_id above 65535")?)
        } else {
            None
        };
        let mut h = SliceHeader {
            first_mb_in_slice,
            slice_type,
            pps_id,
            frame_num,
            field_pic,
            bottom_field,
            idr_pic_id,
            pic_order_cnt_lsb: None,
            delta_pic_order_cnt_bottom: 0,
            delta_pic_order_cnt: [0, 0],
        };
        if sps.pic_order_cnt_type == 0 {
            h.pic_order_cnt_lsb = Some(r.bits(sps.log2_max_pic_order_cnt_lsb)?);
            if pps.bottom_field_pic_order_in_frame_present && !field_pic {
                h.delta_pic_order_cnt_bottom = r.se()?;
            }
        }
        if sps.pic_order_cnt_type == 1 && !sps.delta_pic_order_always_zero {
            h.delta_pic_order_cnt[0] = r.se()?;
            if pps.bottom_field_pic_order_in_frame_present && !field_pic {
                h.delta_pic_order_cnt[1] = r.se()?;
            }
        }
        Ok(h)
    }

    /// Parses the header of `nal` (a slice NAL unit).
    pub fn parse_nal(nal: &Nal, sps: &Sps, pps: &Pps) -> Result<Self, Error> {
        // The fields read here fit within 128 bytes (a few Exp-Golomb codes of at most 65 bits).
        Self::parse(&nal.rbsp_prefix(128), nal.nal_type(), sps, pps)
    }
}
