//! Arbitrary RTCP: parsing never panics; feedback we build from what was
//! parsed parses back to the same feedback.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rts_rtp::rtc_rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, TransportLayerCc,
};
use rts_rtp::rtcp::{self, Feedback};

fn twcc_consistent(t: &TransportLayerCc) -> bool {
    let mut n = 0usize;
    for c in &t.packet_chunks {
        let k = match c {
            PacketStatusChunk::RunLengthChunk(r) => usize::from(r.run_length),
            PacketStatusChunk::StatusVectorChunk(v) => v.symbol_list.len(),
        };
        if k == 0 {
            return false;
        }
        n += k;
    }
    n == usize::from(t.packet_status_count)
}

fuzz_target!(|data: &[u8]| {
    let Ok(fb) = rtcp::parse(&Bytes::copy_from_slice(data), 0xe000_0000_0000_0000) else {
        return;
    };
    for f in fb {
        let rebuilt = match &f {
            Feedback::Nack(n) => rtcp::build(&[Box::new(n.clone())]),
            Feedback::Pli { media_ssrc } => rtcp::build(&[rtcp::pli(0, *media_ssrc)]),
            Feedback::Remb { bitrate, ssrcs } if ssrcs.len() < 256 => {
                rtcp::build(&[rtcp::remb(0, *bitrate, ssrcs.clone())])
            }
            // rtc-rtcp parses inconsistent TWCC leniently (more statuses in
            // the chunks than packet_status_count, empty chunks): only consistent ones
            // must round trip.
            Feedback::TransportCc(t) if twcc_consistent(t) => rtcp::build(&[Box::new(t.clone())]),
            _ => continue,
        };
        let Ok(bytes) = rebuilt else { continue };
        let again =
            rtcp::parse(&bytes, 0).unwrap_or_else(|e| panic!("{f:?} rebuilt does not parse: {e}"));
        assert_eq!(again.len(), 1);
        match (&f, &again[0]) {
            (Feedback::Pli { media_ssrc: a }, Feedback::Pli { media_ssrc: b }) => assert_eq!(a, b),
            (Feedback::Remb { ssrcs: a, .. }, Feedback::Remb { ssrcs: b, .. }) => assert_eq!(a, b),
            (Feedback::Nack(a), Feedback::Nack(b)) => {
                let la: Vec<u16> = a.nacks.iter().flat_map(|p| p.packet_list()).collect();
                let lb: Vec<u16> = b.nacks.iter().flat_map(|p| p.packet_list()).collect();
                assert_eq!(la, lb);
            }
            (Feedback::TransportCc(a), Feedback::TransportCc(b)) => {
                assert_eq!(a.base_sequence_number, b.base_sequence_number);
                assert_eq!(a.packet_status_count, b.packet_status_count);
            }
            (a, b) => panic!("{a:?} rebuilt as {b:?}"),
        }
    }
});
