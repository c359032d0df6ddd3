//! NAL framing and the SPS/PPS/slice/SEI parsers on arbitrary bytes: no
//! panic; AVCC units are zero-copy slices of the input, in order, each
//! right after a length prefix that gives its size (zero-length units are
//! skipped), and re-write to the same units; emulation prevention
//! round-trips and leaves no start-code prefix; SEI messages that parse
//! rebuild to the same messages.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use rts_h264::nal::{AnnexBIter, AvccIter, Nal, NalType, escape, unescape, write_avcc};
use rts_h264::pps::Pps;
use rts_h264::slice::SliceHeader;
use rts_h264::sps::Sps;
use rts_h264::{classify::Classifier, sei};

fn parse_nal(nal: &Nal, classifier: &mut Classifier) {
    let rbsp = nal.rbsp();
    match nal.nal_type() {
        NalType::Sps => {
            if let Ok(s) = Sps::parse(&rbsp) {
                assert!(s.width() > 0 && s.height() > 0);
                assert!(s.width() <= s.coded_width() && s.height() <= s.coded_height());
                let _ = s.reorder_depth();
            }
        }
        NalType::Pps => {
            let _ = Pps::parse(&rbsp);
        }
        NalType::Sei => {
            if let Ok(msgs) = sei::parse(nal.bytes()) {
                let built = sei::build(&msgs).unwrap();
                assert_eq!(sei::parse(&built).unwrap(), msgs);
            }
        }
        NalType::Slice | NalType::IdrSlice => {
            let _ = SliceHeader::pps_id(&rbsp);
            let s = Sps::default();
            let _ = SliceHeader::parse(&rbsp, nal.nal_type(), &s, &Pps::default());
        }
        _ => {}
    }
    let _ = classifier.add_nal(nal);
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let mut classifier = Classifier::new();
    for size in [1u8, 2, 4] {
        let ls = usize::from(size);
        let mut nals = Vec::new();
        let mut end = 0usize;
        for nal in AvccIter::new(bytes.clone(), size).unwrap() {
            let Ok(nal) = nal else { break };
            let at = nal.bytes().as_ptr() as usize - bytes.as_ptr() as usize;
            assert!(at >= end + ls, "units in order, each after its prefix");
            let prefix = data[at - ls..at]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b));
            assert_eq!(prefix, nal.bytes().len());
            end = at + nal.bytes().len();
            parse_nal(&nal, &mut classifier);
            nals.push(nal);
        }
        let mut written = BytesMut::new();
        write_avcc(nals.iter().map(|n| n.bytes().as_ref()), size, &mut written).unwrap();
        let again: Vec<Nal> = AvccIter::new(written.freeze(), size)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(again, nals);
    }
    for nal in AnnexBIter::new(bytes.clone()).flatten() {
        assert!(!nal.bytes().is_empty());
        parse_nal(&nal, &mut classifier);
    }
    let _ = classifier.classify(&bytes);

    let escaped = escape(data);
    assert!(
        !escaped
            .windows(3)
            .any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2)
    );
    let back = unescape(&escaped);
    if back != data {
        // escape() protects a trailing zero with an 03 that unescape keeps.
        assert_eq!(data.last(), Some(&0));
        assert_eq!(&back[..data.len()], data);
        assert_eq!(&back[data.len()..], [3]);
    }
});
