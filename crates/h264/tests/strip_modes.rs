//! Stripper modes on the fixtures: drop (lossless, refuses referenced B),
//! auto (zero-copy passthrough until a B-frame), keyframe requests,
//! resolution changes and decode errors.

mod common;

use bytes::Bytes;
use rts_h264::classify::{Classifier, FrameKind};
use rts_h264::{AccessUnit, Error, Event, Frame, Mode, Output, Settings, Stripper};

fn fixture(name: &str) -> Option<(Vec<Bytes>, Vec<common::VideoAu>)> {
    let path = rts_testkit::fixture(&format!("media/{name}"))?;
    Some(common::video_of(&common::read_flv(&path)))
}

fn push_all(s: &mut Stripper, aus: &[common::VideoAu]) -> Result<(), Error> {
    for au in aus {
        s.push(AccessUnit {
            dts: au.dts,
            pts: au.dts + au.cts,
            data: au.data.clone(),
        })?;
    }
    Ok(())
}

fn drain(s: &mut Stripper) -> (Vec<Bytes>, Vec<Frame>, Vec<Event>) {
    let (mut c, mut f, mut e) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(o) = s.pop() {
        match o {
            Output::Config(x) => c.push(x),
            Output::Frame(x) => f.push(x),
            Output::Event(x) => e.push(x),
            _ => {}
        }
    }
    (c, f, e)
}

fn assert_increasing(frames: &[Frame]) {
    for w in frames.windows(2) {
        assert!(
            w[1].time > w[0].time,
            "times {} then {}",
            w[0].time,
            w[1].time
        );
    }
}

fn kinds(config: &Bytes, frames: &[Frame]) -> Vec<FrameKind> {
    let mut c = Classifier::new();
    c.set_config(&rts_h264::avcc::AvcConfig::parse(config).unwrap())
        .unwrap();
    frames
        .iter()
        .map(|f| c.classify(&f.data).unwrap().unwrap().kind)
        .collect()
}

#[test]
fn drop_mode_removes_non_referenced_b_losslessly() {
    let Some((configs, aus)) = fixture("main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Drop));
    s.push_config(configs[0].clone()).unwrap();
    push_all(&mut s, &aus).unwrap();
    s.finish().unwrap();
    let (c, frames, _) = drain(&mut s);
    assert_eq!(
        c,
        [configs[0].clone()],
        "the input configuration passes through"
    );
    assert_eq!(frames.len(), 90 - 52);
    assert_eq!(s.stats().dropped, 52);
    assert_increasing(&frames);
    assert!(kinds(&c[0], &frames).iter().all(|k| *k != FrameKind::B));
    // Zero copy: the output access units are the input's bytes.
    let first_p = aus.iter().find(|a| !a.keyframe).unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.data.as_ptr() == first_p.data.as_ptr())
    );
}

#[test]
fn drop_mode_refuses_referenced_b() {
    let Some((configs, aus)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Drop));
    s.push_config(configs[0].clone()).unwrap();
    assert_eq!(push_all(&mut s, &aus), Err(Error::ReferencedBFrame));
}

#[test]
fn auto_mode_passes_through_without_b_frames() {
    let Some((configs, aus)) = fixture("baseline_aaclc44k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Auto));
    s.push_config(configs[0].clone()).unwrap();
    push_all(&mut s, &aus).unwrap();
    s.finish().unwrap();
    let (c, frames, events) = drain(&mut s);
    assert!(!s.is_transcoding());
    assert!(events.is_empty());
    assert_eq!(c.len(), 1);
    assert_eq!(frames.len(), aus.len());
    assert_eq!(s.max_added_delay_frames(), 0);
    for (f, a) in frames.iter().zip(&aus) {
        assert_eq!(f.data.as_ptr(), a.data.as_ptr(), "zero copy");
        assert_eq!(f.time, a.dts + a.cts);
    }
}

#[test]
fn auto_mode_passthrough_is_not_delayed_without_reordering() {
    // A High-profile SPS that allows reordering, but access units whose
    // composition offset is constant (the I and P pictures of the B-pyramid
    // fixture, shown in decode order): each comes out as it goes in.
    let Some((configs, aus)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let mut c = Classifier::new();
    c.set_config(&rts_h264::avcc::AvcConfig::parse(&configs[0]).unwrap())
        .unwrap();
    let ip: Vec<_> = aus
        .iter()
        .filter(|a| c.classify(&a.data).unwrap().unwrap().kind != FrameKind::B)
        .collect();
    assert!(ip.len() > 10 && ip.len() < aus.len());
    let mut s = Stripper::new(Settings::new(Mode::Auto));
    s.push_config(configs[0].clone()).unwrap();
    assert!(s.max_added_delay_frames() > 0, "the SPS allows reordering");
    for (i, a) in ip.iter().enumerate() {
        s.push(AccessUnit {
            dts: a.dts,
            pts: a.dts + 40,
            data: a.data.clone(),
        })
        .unwrap();
        assert_eq!(s.pending_frames(), 0, "access unit {i} held back");
    }
    let (_, frames, events) = drain(&mut s);
    assert!(events.is_empty());
    assert_eq!(frames.len(), ip.len());
    assert_increasing(&frames);
}

#[test]
fn auto_mode_switches_to_transcode_at_the_first_b_frame() {
    let Some((configs, aus)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Auto));
    s.push_config(configs[0].clone()).unwrap();
    push_all(&mut s, &aus).unwrap();
    s.finish().unwrap();
    let (c, frames, events) = drain(&mut s);
    assert!(s.is_transcoding());
    assert!(
        matches!(events[0], Event::TranscodeStarted { .. }),
        "{events:?}"
    );
    assert_eq!(c.len(), 2, "input config, then the encoder's");
    assert_increasing(&frames);
    // Frames already passed through are not repeated and none is lost at
    // the switch: passthrough holds the stream's reorder depth back, so the
    // pictures reordered behind the first B-frame come out of the encoder.
    assert_eq!(frames.len(), aus.len(), "one output per input");
    assert_eq!(s.stats().frames_out, s.stats().frames_in);
    let passed = frames
        .iter()
        .take_while(|f| f.data.len() < 4 || f.data[4] != 0x67)
        .count();
    eprintln!(
        "{passed} frames passed through before the switch; times {:?}",
        frames.iter().take(6).map(|f| f.time).collect::<Vec<_>>()
    );
    let k = kinds(&c[1], &frames[passed..]);
    assert!(k.iter().all(|k| *k != FrameKind::B));
    assert_eq!(k[0], FrameKind::Idr, "the encoder starts with an IDR");
}

#[test]
fn transcode_keeps_idrs_and_honours_keyframe_requests() {
    let Some((configs, aus)) = fixture("main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.push_config(configs[0].clone()).unwrap();
    let mut frames = Vec::new();
    let mut config = None;
    for (i, au) in aus.iter().enumerate() {
        if i == 45 {
            s.request_keyframe();
        }
        if i == 50 {
            // A repeated, identical sequence header changes nothing.
            s.push_config(configs[0].clone()).unwrap();
        }
        s.push(AccessUnit {
            dts: au.dts,
            pts: au.dts + au.cts,
            data: au.data.clone(),
        })
        .unwrap();
        let (c, f, _) = drain(&mut s);
        config = config.or(c.into_iter().next());
        frames.extend(f);
    }
    s.finish().unwrap();
    frames.extend(drain(&mut s).1);
    assert_eq!(frames.len(), 90);
    let k = kinds(config.as_ref().unwrap(), &frames);
    let idrs: Vec<usize> = k
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == FrameKind::Idr)
        .map(|(i, _)| i)
        .collect();
    // Input IDRs at 0, 30, 60; the request at input 45 lands within the
    // next couple of outputs (the decoder's delay).
    assert_eq!(idrs.len(), 4, "{idrs:?}");
    assert_eq!([idrs[0], idrs[1], idrs[3]], [0, 30, 60]);
    assert!((43..=47).contains(&idrs[2]), "{idrs:?}");
    // SPS and PPS precede every IDR.
    for &i in &idrs {
        let types: Vec<u8> = rts_h264::nal::AvccIter::new(frames[i].data.clone(), 4)
            .unwrap()
            .map(|n| n.unwrap().nal_type().to_u8())
            .collect();
        assert_eq!(types[..3], [7, 8, 5], "frame {i}");
        assert!(frames[i].keyframe);
    }
    // Constrained Baseline, level from 640x360@30: 3.1.
    assert_eq!(config.unwrap()[1..4], [0x42, 0xe0, 31]);
}

#[test]
fn resolution_change_reconfigures_and_decode_errors_skip_to_the_next_idr() {
    let Some((c1, a1)) = fixture("main_bframes_nonref_aaclc48k.flv") else {
        return;
    };
    let Some((c2, a2)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.push_config(c1[0].clone()).unwrap();
    push_all(&mut s, &a1[..30]).unwrap();
    // Garbage slice data in a P-frame: the decoder refuses or conceals it;
    // either way nothing panics and the stream continues.
    let bad = Bytes::from_static(&[0, 0, 0, 6, 0x41, 0x9a, 0xff, 0xff, 0xff, 0xff]);
    s.push(AccessUnit {
        dts: 1000,
        pts: 1000,
        data: bad,
    })
    .unwrap();
    s.push_config(c2[0].clone()).unwrap();
    let shift = 2000;
    for au in &a2[..40] {
        s.push(AccessUnit {
            dts: au.dts + shift,
            pts: au.dts + au.cts + shift,
            data: au.data.clone(),
        })
        .unwrap();
    }
    s.finish().unwrap();
    let (configs, frames, events) = drain(&mut s);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DecodeError { dts: 1000, .. })),
        "{events:?}"
    );
    let sizes: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::EncoderConfigured { width, height, .. } => Some((*width, *height)),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [(640, 360), (1280, 720)]);
    assert_eq!(configs.len(), 2);
    assert_ne!(configs[0], configs[1]);
    assert_increasing(&frames);
    assert!(frames.len() >= 30 + 40 - 2, "{} frames", frames.len());
    let k = kinds(&configs[1], &frames[frames.len() - 40..]);
    assert_eq!(k[0], FrameKind::Idr);
}

#[test]
fn access_units_before_a_config_are_refused() {
    let mut s = Stripper::new(Settings::default());
    let au = AccessUnit {
        dts: 0,
        pts: 0,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
    };
    assert_eq!(s.push(au), Err(Error::NoConfig));
}

#[test]
fn high_444_is_refused_with_a_clear_error() {
    // GStreamer's videotestsrc without caps feeds x264enc 4:4:4: OpenH264
    // cannot decode that, so transcoding refuses it up front.
    let Some(gst) = rts_testkit::tool("gst-launch-1.0") else {
        return;
    };
    let Some(()) = rts_testkit::gst_element("x264enc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("y444.flv");
    rts_testkit::run_ok(
        std::process::Command::new(gst)
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=5",
                "!",
                "video/x-raw,format=Y444,width=160,height=120",
            ])
            .args(["!", "x264enc", "bframes=2", "!", "flvmux", "!", "filesink"])
            .arg(format!("location={}", path.display())),
        "gst-launch-1.0",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    let (configs, aus) = common::video_of(&common::read_flv(&path));
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.push_config(configs[0].clone()).unwrap();
    let err = push_all(&mut s, &aus).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("4:2:0"), "{err}");
}

#[test]
fn transcode_carries_user_data_sei_to_the_same_picture() {
    let Some((configs, aus)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    let uuid = *b"rts-wallclock-v1";
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.push_config(configs[0].clone()).unwrap();
    let mut frames = Vec::new();
    for au in &aus {
        let pts = au.dts + au.cts;
        let sei = rts_h264::sei::build(&[rts_h264::sei::SeiMessage::user_data_unregistered(
            uuid,
            &pts.to_be_bytes(),
        )])
        .unwrap();
        let mut data = bytes::BytesMut::new();
        rts_h264::nal::write_avcc([&sei[..]], 4, &mut data).unwrap();
        data.extend_from_slice(&au.data);
        s.push(AccessUnit {
            dts: au.dts,
            pts,
            data: data.freeze(),
        })
        .unwrap();
        frames.extend(drain(&mut s).1);
    }
    s.finish().unwrap();
    frames.extend(drain(&mut s).1);
    assert_eq!(frames.len(), 90);
    for f in &frames {
        let stamps: Vec<i64> = rts_h264::nal::AvccIter::new(f.data.clone(), 4)
            .unwrap()
            .map(|n| n.unwrap())
            .filter(|n| n.nal_type() == rts_h264::nal::NalType::Sei)
            .flat_map(|n| rts_h264::sei::parse(n.bytes()).unwrap())
            .filter_map(|m| {
                let (u, payload) = m.as_user_data_unregistered()?;
                (u == uuid).then(|| i64::from_be_bytes(payload.try_into().unwrap()))
            })
            .collect();
        assert_eq!(stamps, [f.time], "the stamp travels with its picture");
    }
}

#[test]
fn skip_before_starts_transcoded_output_with_an_idr_at_that_time() {
    let Some((configs, aus)) = fixture("high_bpyramid_aaclc44k.flv") else {
        return;
    };
    // A viewer joins at the 20th access unit of the first GOP: the
    // transcoder decodes the GOP from its IDR but outputs nothing earlier.
    let join = aus[20].dts + aus[20].cts;
    let mut s = Stripper::new(Settings::new(Mode::Transcode));
    s.skip_before(join);
    s.push_config(configs[0].clone()).unwrap();
    push_all(&mut s, &aus).unwrap();
    s.finish().unwrap();
    let (c, frames, _) = drain(&mut s);
    let later = aus.iter().filter(|a| a.dts + a.cts >= join).count();
    assert_eq!(
        frames.len(),
        later,
        "one output per picture at or after the join"
    );
    assert!(frames[0].time >= join && frames[0].keyframe);
    assert_eq!(kinds(&c[0], &frames)[0], FrameKind::Idr);
    assert_increasing(&frames);
}
