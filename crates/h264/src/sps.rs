//! Sequence parameter set (H.264 7.3.2.1.1) with VUI (E.1.1).

use crate::Error;
use crate::bits::BitReader;

/// Profiles whose SPS carries chroma format, bit depth and scaling lists
/// (7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The fields of a sequence parameter set that this crate uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Sps {
    /// `profile_idc` (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// The byte of `constraint_set0..5_flag` and reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (10 times the level number; 9 for level 1b).
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0..=31).
    pub id: u32,
    /// `chroma_format_idc` (1 = 4:2:0 when absent).
    pub chroma_format_idc: u32,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u32,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u32,
    /// `log2_max_frame_num_minus4 + 4` (4..=16).
    pub log2_max_frame_num: u32,
    /// `pic_order_cnt_type` (0..=2).
    pub pic_order_cnt_type: u32,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (POC type 0).
    pub log2_max_pic_order_cnt_lsb: u32,
    /// `delta_pic_order_always_zero_flag` (POC type 1).
    pub delta_pic_order_always_zero: bool,
    /// `offset_for_non_ref_pic` (POC type 1).
    pub offset_for_non_ref_pic: i32,
    /// `offset_for_top_to_bottom_field` (POC type 1).
    pub offset_for_top_to_bottom_field: i32,
    /// `offset_for_ref_frame[]` (POC type 1).
    pub offset_for_ref_frame: Vec<i32>,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// `gaps_in_frame_num_value_allowed_flag`.
    pub gaps_in_frame_num_allowed: bool,
    /// `pic_width_in_mbs_minus1 + 1`.
    pub pic_width_in_mbs: u32,
    /// `pic_height_in_map_units_minus1 + 1`.
    pub pic_height_in_map_units: u32,
    /// `frame_mbs_only_flag`: no field coding.
    pub frame_mbs_only: bool,
    /// `mb_adaptive_frame_field_flag`.
    pub mb_adaptive_frame_field: bool,
    /// `direct_8x8_inference_flag`.
    pub direct_8x8_inference: bool,
    /// `frame_crop_{left,right,top,bottom}_offset`, in crop units.
    pub crop: [u32; 4],
    /// VUI parameters, when present.
    pub vui: Option<Vui>,
}

/// Video usability information (E.1.1), the parts used for timing and
/// reordering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Vui {
    /// `(sar_width, sar_height)`, from `aspect_ratio_idc` (Table E-1).
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// `video_full_range_flag`.
    pub full_range: bool,
    /// `(colour_primaries, transfer_characteristics, matrix_coefficients)`.
    pub colour: Option<(u8, u8, u8)>,
    /// `(num_units_in_tick, time_scale, fixed_frame_rate_flag)`.
    pub timing: Option<(u32, u32, bool)>,
    /// `pic_struct_present_flag`.
    pub pic_struct_present: bool,
    /// `max_num_reorder_frames` from `bitstream_restriction`.
    pub max_num_reorder_frames: Option<u32>,
    /// `max_dec_frame_buffering` from `bitstream_restriction`.
    pub max_dec_frame_buffering: Option<u32>,
}

impl Sps {
    /// Parses an SPS RBSP (after the NAL header, emulation prevention
    /// removed).
    pub fn parse(rbsp: &[u8]) -> Result<Self, Error> {
        let mut r = BitReader::new(rbsp);
        let mut s = Sps {
            profile_idc: u8::try_from(r.bits(8)?).map_err(|_| Error::Invalid("profile_idc"))?,
            constraint_flags: u8::try_from(r.bits(8)?)
                .map_err(|_| Error::Invalid("constraint flags"))?,
            level_idc: u8::try_from(r.bits(8)?).map_err(|_| Error::Invalid("level_idc"))?,
            id: r.ue_max(31, "seq_parameter_set_id above 31")?,
            chroma_format_idc: 1,
            bit_depth_luma: 8,
            bit_depth_chroma: 8,
            ..Sps::default()
        };
        if HIGH_PROFILES.contains(&s.profile_idc) {
            s.chroma_format_idc = r.ue_max(3, "chroma_format_idc above 3")?;
            if s.chroma_format_idc == 3 {
                s.separate_colour_plane = r.bit()?;
            }
            s.bit_depth_luma = r
                .ue_max(6, "bit_depth_luma_minus8 above 6")?
                .saturating_add(8);
            s.bit_depth_chroma = r
                .ue_max(6, "bit_depth_chroma_minus8 above 6")?
                .saturating_add(8);
            let _qpprime_y_zero_transform_bypass = r.bit()?;
            if r.bit()? {
                let lists = if s.chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        s.log2_max_frame_num = r
            .ue_max(12, "log2_max_frame_num_minus4 above 12")?
            .saturating_add(4);
        s.pic_order_cnt_type = r.ue_max(2, "pic_order_cnt_type above 2")?;
        match s.pic_order_cnt_type {
            0 => {
                s.log2_max_pic_order_cnt_lsb = r
                    .ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 above 12")?
                    .saturating_add(4)
            }
            1 => {
                s.delta_pic_order_always_zero = r.bit()?;
                s.offset_for_non_ref_pic = r.se()?;
                s.offset_for_top_to_bottom_field = r.se()?;
                let n = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle above 255")?;
                for _ in 0..n {
                    s.offset_for_ref_frame.push(r.se()?);
                }
            }
            _ => {}
        }
        s.max_num_ref_frames = r.ue_max(16, "max_num_ref_frames above 16")?;
        s.gaps_in_frame_num_allowed = r.bit()?;
        s.pic_width_in_mbs = r
            .ue_max(1023, "pic_width_in_mbs_minus1 above 1023")?
            .saturating_add(1);
        s.pic_height_in_map_units = r
            .ue_max(1023, "pic_height_in_map_units_minus1 above 1023")?
            .saturating_add(1);
        s.frame_mbs_only = r.bit()?;
        if !s.frame_mbs_only {
            s.mb_adaptive_frame_field = r.bit()?;
        }
        s.direct_8x8_inference = r.bit()?;
        if r.bit()? {
            for c in &mut s.crop {
                *c = r.ue_max(8192, "frame crop offset above 8192")?;
            }
        }
        if r.bit()? {
            s.vui = Some(parse_vui(&mut r)?);
        }
        if s.width() == 0 || s.height() == 0 {
            return Err(Error::Invalid("cropping leaves an empty picture"));
        }
        Ok(s)
    }

    /// `ChromaArrayType` (7.4.2.1.1).
    pub fn chroma_array_type(&self) -> u32 {
        if self.separate_colour_plane {
            0
        } else {
            self.chroma_format_idc
        }
    }

    fn crop_units(&self) -> (u32, u32) {
        let field = if self.frame_mbs_only { 1 } else { 2 };
        let (sub_w, sub_h): (u32, u32) = match self.chroma_array_type() {
            0 => return (1, field),
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        (sub_w, sub_h.saturating_mul(field))
    }

    /// Coded width in luma samples before cropping.
    pub fn coded_width(&self) -> u32 {
        self.pic_width_in_mbs.saturating_mul(16)
    }

    /// Coded height in luma samples before cropping (frames).
    pub fn coded_height(&self) -> u32 {
        let field = if self.frame_mbs_only { 1 } else { 2 };
        self.pic_height_in_map_units
            .saturating_mul(16)
            .saturating_mul(field)
    }

    /// Display width: coded width minus cropping (7.4.2.1.1, equations 7-19, 7-20).
    pub fn width(&self) -> u32 {
        let (ux, _) = self.crop_units();
        let crop = self.crop[0].saturating_add(self.crop[1]).saturating_mul(ux);
        self.coded_width().saturating_sub(crop)
    }

    /// Display height: coded height minus cropping.
    pub fn height(&self) -> u32 {
        let (_, uy) = self.crop_units();
        let crop = self.crop[2].saturating_add(self.crop[3]).saturating_mul(uy);
        self.coded_height().saturating_sub(crop)
    }

    /// Frame rate from VUI timing (`time_scale / (2 * num_units_in_tick)`),
    /// when present and non-zero.
    pub fn frame_rate(&self) -> Option<f64> {
        let (units, scale, _) = self.vui.as_ref()?.timing?;
        if units == 0 || scale == 0 {
            return None;
        }
        Some(f64::from(scale) / (2.0 * f64::from(units)))
    }

    /// How many frames a decoder may have to hold back for reordering:
    /// `max_num_reorder_frames` when signalled, zero for profiles without B
    /// slices (Baseline, or constraint_set3 intra profiles), otherwise the
    /// DPB size bound `max_num_ref_frames` as the spec's inference
    /// (E.2.1) is `MaxDpbFrames`.
    pub fn reorder_depth(&self) -> u32 {
        if let Some(n) = self.vui.as_ref().and_then(|v| v.max_num_reorder_frames) {
            return n;
        }
        if self.profile_idc == 66 || self.pic_order_cnt_type == 2 {
            return 0;
        }
        self.max_num_ref_frames
    }
}

/// 7.3.2.1.1.1 `scaling_list()`: read and discarded.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), Error> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(Error::Invalid("delta_scale out of range"));
            }
            next = last.wrapping_add(delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// E.1.1 `vui_parameters()`.
fn parse_vui(r: &mut BitReader<'_>) -> Result<Vui, Error> {
    let mut v = Vui::default();
    if r.bit()? {
        let idc = r.bits(8)?;
        v.sample_aspect_ratio = match idc {
            255 => {
                let w = u16::try_from(r.bits(16)?).map_err(|_| Error::Invalid("sar"))?;
                let h = u16::try_from(r.bits(16)?).map_err(|_| Error::Invalid("sar"))?;
                Some((w, h))
            }
            // Table E-1.
            1..=16 => {
                const SAR: [(u16, u16); 16] = [
                    (1, 1),
                    (12, 11),
                    (10, 11),
                    (16, 11),
                    (40, 33),
                    (24, 11),
                    (20, 11),
                    (32, 11),
                    (80, 33),
                    (18, 11),
                    (15, 11),
                    (64, 33),
                    (160, 99),
                    (4, 3),
                    (3, 2),
                    (2, 1),
                ];
                SAR.get(usize::try_from(idc).unwrap_or(0).saturating_sub(1))
                    .copied()
            }
            _ => None,
        };
    }
    if r.bit()? {
        let _overscan_appropriate = r.bit()?;
    }
    if r.bit()? {
        let _video_format = r.bits(3)?;
        v.full_range = r.bit()?;
        if r.bit()? {
            let p = r.bits(8)?;
            let t = r.bits(8)?;
            let m = r.bits(8)?;
            v.colour = Some((p as u8, t as u8, m as u8));
        }
    }
    if r.bit()? {
        let _top = r.ue_max(5, "chroma_sample_loc_type above 5")?;
        let _bottom = r.ue_max(5, "chroma_sample_loc_type above 5")?;
    }
    if r.bit()? {
        let units = r.bits(32)?;
        let scale = r.bits(32)?;
        let fixed = r.bit()?;
        v.timing = Some((units, scale, fixed));
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        let _low_delay_hrd = r.bit()?;
    }
    v.pic_struct_present = r.bit()?;
    if r.bit()? {
        let _motion_vectors_over_pic_boundaries = r.bit()?;
        let _max_bytes_per_pic_denom = r.ue()?;
        let _max_bits_per_mb_denom = r.ue()?;
        let _log2_max_mv_length_horizontal = r.ue()?;
        let _log2_max_mv_length_vertical = r.ue()?;
        v.max_num_reorder_frames = Some(r.ue_max(16, "max_num_reorder_frames above 16")?);
        v.max_dec_frame_buffering = Some(r.ue_max(16, "max_dec_frame_buffering above 16")?);
    }
    Ok(v)
}

/// E.1.2 `hrd_parameters()`: read and discarded.
fn skip_hrd(r: &mut BitReader<'_>) -> Result<(), Error> {
    let cpb_cnt = r.ue_max(31, "cpb_cnt_minus1 above 31")?;
    let _bit_rate_scale = r.bits(4)?;
    let _cpb_size_scale = r.bits(4)?;
    for _ in 0..=cpb_cnt {
        let _bit_rate_value_minus1 = r.ue()?;
        let _cpb_size_value_minus1 = r.ue()?;
        let _cbr = r.bit()?;
    }
    r.skip(20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nal::unescape;

    /// SPS of fixtures/media/high_bpyramid_aaclc44k.flv (x264, High 3.1,
    /// 1280x720 30 fps), after the NAL header byte.
    pub(crate) const HIGH_720P: &str = "64001facd9405005bb0110000003001000000303c0f183196";

    #[test]
    fn x264_high_720p() {
        let escaped = hex::decode(format!("{HIGH_720P}0")).unwrap();
        let sps = Sps::parse(&unescape(&escaped)).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc, sps.id), (100, 31, 0));
        assert_eq!((sps.chroma_format_idc, sps.bit_depth_luma), (1, 8));
        assert_eq!((sps.width(), sps.height()), (1280, 720));
        assert_eq!(sps.pic_order_cnt_type, 0);
        assert!(sps.frame_mbs_only);
        assert_eq!(sps.max_num_ref_frames, 4);
        let vui = sps.vui.clone().unwrap();
        assert_eq!(vui.timing, Some((1, 60, false)));
        assert_eq!(sps.frame_rate(), Some(30.0));
        assert_eq!(vui.max_num_reorder_frames, Some(2));
        assert_eq!(sps.reorder_depth(), 2);
    }

    #[test]
    fn truncated_sps_is_an_error_not_a_panic() {
        let escaped = hex::decode(format!("{HIGH_720P}0")).unwrap();
        let rbsp = unescape(&escaped);
        for len in 0..rbsp.len() - 1 {
            assert!(Sps::parse(&rbsp[..len]).is_err(), "len {len}");
        }
    }
}
