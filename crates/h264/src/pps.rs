//! Picture parameter set (H.264 7.3.2.2), up to the fields a slice header
//! needs.

use crate::Error;
use crate::bits::BitReader;

/// The fields of a picture parameter set that slice-header parsing uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Pps {
    /// `pic_parameter_set_id` (0..=255).
    pub id: u32,
    /// `seq_parameter_set_id` (0..=31).
    pub sps_id: u32,
    /// `entropy_coding_mode_flag`: CABAC when set.
    pub entropy_coding_mode: bool,
    /// `bottom_field_pic_order_in_frame_present_flag`.
    pub bottom_field_pic_order_in_frame_present: bool,
    /// `num_slice_groups_minus1 + 1`.
    pub num_slice_groups: u32,
    /// `num_ref_idx_l0_default_active_minus1 + 1`.
    pub num_ref_idx_l0_default_active: u32,
    /// `num_ref_idx_l1_default_active_minus1 + 1`.
    pub num_ref_idx_l1_default_active: u32,
    /// `weighted_pred_flag`.
    pub weighted_pred: bool,
    /// `weighted_bipred_idc`.
    pub weighted_bipred_idc: u32,
    /// `pic_init_qp_minus26 + 26`.
    pub pic_init_qp: i32,
    /// `deblocking_filter_control_present_flag`.
    pub deblocking_filter_control_present: bool,
    /// `redundant_pic_cnt_present_flag`.
    pub redundant_pic_cnt_present: bool,
}

impl Pps {
    /// Parses a PPS RBSP (after the NAL header, emulation prevention removed).
    pub fn parse(rbsp: &[u8]) -> Result<Self, Error> {
        let mut r = BitReader::new(rbsp);
        let mut p = Pps {
            id: r.ue_max(255, "pic_parameter_set_id above 255")?,
            sps_id: r.ue_max(31, "seq_parameter_set_id above 31")?,
            entropy_coding_mode: r.bit()?,
            bottom_field_pic_order_in_frame_present: r.bit()?,
            num_slice_groups: r
                .ue_max(7, "num_slice_groups_minus1 above 7")?
                .saturating_add(1),
            ..Pps::default()
        };
        if p.num_slice_groups > 1 {
            skip_slice_groups(&mut r, p.num_slice_groups)?;
        }
        p.num_ref_idx_l0_default_active = r
            .ue_max(31, "num_ref_idx_l0_default_active_minus1 above 31")?
            .saturating_add(1);
        p.num_ref_idx_l1_default_active = r
            .ue_max(31, "num_ref_idx_l1_default_active_minus1 above 31")?
            .saturating_add(1);
        p.weighted_pred = r.bit()?;
        p.weighted_bipred_idc = r.bits(2)?;
        let qp = r.se()?;
        if !(-26..=25).contains(&qp) {
            return Err(Error::Invalid("pic_init_qp_minus26 out of range"));
        }
        p.pic_init_qp = qp.wrapping_add(26);
        let _pic_init_qs_minus26 = r.se()?;
        let _chroma_qp_index_offset = r.se()?;
        p.deblocking_filter_control_present = r.bit()?;
        let _constrained_intra_pred = r.bit()?;
        p.redundant_pic_cnt_present = r.bit()?;
        Ok(p)
    }
}

fn skip_slice_groups(r: &mut BitReader<'_>, groups: u32) -> Result<(), Error> {
    match r.ue_max(6, "slice_group_map_type above 6")? {
        0 => {
            for _ in 0..groups {
                let _run_length_minus1 = r.ue()?;
            }
        }
        2 => {
            for _ in 1..groups {
                let _top_left = r.ue()?;
                let _bottom_right = r.ue()?;
            }
        }
        3..=5 => {
            let _direction = r.bit()?;
            let _rate_minus1 = r.ue()?;
        }
        6 => {
            let units = r
                .ue_max(1 << 20, "pic_size_in_map_units_minus1 too large")?
                .saturating_add(1);
            // Ceil(Log2(num_slice_groups)) bits per map unit.
            let bits = 32u32.wrapping_sub(groups.saturating_sub(1).leading_zeros());
            r.skip((units as usize).saturating_mul(bits as usize))?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nal::unescape;

    #[test]
    fn x264_high_pps() {
        // PPS of fixtures/media/high_bpyramid_aaclc44k.flv, after the header.
        let p = Pps::parse(&unescape(&hex::decode("ebecb22c").unwrap())).unwrap();
        assert_eq!((p.id, p.sps_id), (0, 0));
        assert!(p.entropy_coding_mode);
        assert_eq!(p.num_slice_groups, 1);
        assert_eq!(p.num_ref_idx_l0_default_active, 3);
        assert!(p.weighted_pred);
        assert_eq!(p.weighted_bipred_idc, 2); // x264 weightb: implicit
        assert!(p.deblocking_filter_control_present);
        assert!(Pps::parse(&[0xeb]).is_err());
    }
}
