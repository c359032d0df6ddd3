//! Transcodes the AAC audio of a file to a standard Ogg Opus file (RFC 7845)
//! with rts-audio, and prints a summary:
//!
//! ```text
//! cargo run --release --example aac-to-opus IN OUT.ogg [--bitrate BPS] [--frame MS] [--complexity N]
//! ```
//!
//! IN is an FLV file (AAC audio tags, as RTMP carries them), an ADTS `.aac`
//! file or an MP4/`.m4a` file (demuxed by symphonia's isomp4 reader). The
//! Ogg file's OpusHead pre-skip is the transcoder's delay, so players start
//! exactly at the source's first sample; the last page's granule position
//! trims the padding of the final frame (RFC 7845 4.1, 4.4).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use rts::audio::adts;
use rts::audio::transcode::{AacToOpus, Config, Event, FrameDuration, OpusPacket};
use rts::flv::{AudioCodec, AudioTagHeader, Demuxer, TagType};

/// What the input gives: configs and access units in decode order.
enum Unit {
    Config(Vec<u8>),
    Access(Bytes, Duration),
}

fn read_flv(path: &Path) -> anyhow::Result<Vec<Unit>> {
    let mut buf = BytesMut::from(&std::fs::read(path)?[..]);
    let mut demuxer = Demuxer::new();
    let mut units = Vec::new();
    while let Some(tag) = demuxer.decode_eof(&mut buf)? {
        if tag.tag_type != TagType::Audio {
            continue;
        }
        let (h, payload) = AudioTagHeader::parse(&tag.data)?;
        if h.codec != AudioCodec::Aac {
            bail!("the FLV audio is {:?}, not AAC", h.codec);
        }
        if h.is_sequence_header() {
            units.push(Unit::Config(payload.to_vec()));
        } else {
            units.push(Unit::Access(
                payload,
                Duration::from_millis(u64::from(tag.timestamp)),
            ));
        }
    }
    Ok(units)
}

fn read_adts(path: &Path) -> anyhow::Result<Vec<Unit>> {
    let mut buf = BytesMut::from(&std::fs::read(path)?[..]);
    let mut decoder = adts::Decoder::new();
    let mut units = Vec::new();
    let mut samples: u64 = 0;
    while let Some(frame) = decoder.decode(&mut buf)? {
        let asc = frame.header.to_asc();
        let rate = u64::from(asc.sample_rate());
        units.push(Unit::Config(asc.to_bytes()));
        units.push(Unit::Access(
            frame.payload,
            Duration::from_nanos(samples * 1_000_000_000 / rate),
        ));
        samples += 1024;
    }
    Ok(units)
}

fn read_mp4(path: &Path) -> anyhow::Result<Vec<Unit>> {
    use symphonia::core::codecs::CodecParameters;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let mss = MediaSourceStream::new(Box::new(File::open(path)?), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("m4a");
    let mut format = symphonia::default::get_probe().probe(
        &hint,
        mss,
        FormatOptions::default(),
        MetadataOptions::default(),
    )?;
    let track = format
        .default_track(TrackType::Audio)
        .context("no audio track")?;
    let Some(CodecParameters::Audio(params)) = &track.codec_params else {
        bail!("the first track has no audio parameters");
    };
    let asc = params
        .extra_data
        .clone()
        .context("no AudioSpecificConfig in the track")?;
    let time_base = track.time_base.context("no time base")?;
    let id = track.id;
    let mut units = vec![Unit::Config(asc.to_vec())];
    while let Some(packet) = format.next_packet()? {
        if packet.track_id != id {
            continue;
        }
        let ts = u64::try_from(packet.pts.get()).unwrap_or(0);
        let nanos = u128::from(ts) * u128::from(time_base.numer.get()) * 1_000_000_000
            / u128::from(time_base.denom.get());
        units.push(Unit::Access(
            Bytes::from(packet.data.into_vec()),
            Duration::from_nanos(nanos as u64),
        ));
    }
    Ok(units)
}

/// RFC 7845 5.1 identification header, channel mapping family 0.
fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// RFC 7845 5.2 comment header.
fn opus_tags() -> Vec<u8> {
    let vendor = concat!("rts-audio ", env!("CARGO_PKG_VERSION"));
    let mut t = b"OpusTags".to_vec();
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

fn main() -> anyhow::Result<()> {
    let mut args = lexopt::Parser::from_env();
    let mut positional: Vec<PathBuf> = Vec::new();
    let mut config = Config::default();
    while let Some(arg) = args.next()? {
        use lexopt::prelude::*;
        match arg {
            Long("bitrate") => config.bitrate = Some(args.value()?.parse()?),
            Long("complexity") => config.complexity = args.value()?.parse()?,
            Long("frame") => {
                config.frame = match args.value()?.parse::<u32>()? {
                    10 => FrameDuration::Ms10,
                    20 => FrameDuration::Ms20,
                    40 => FrameDuration::Ms40,
                    60 => FrameDuration::Ms60,
                    _ => bail!("--frame must be 10, 20, 40 or 60 (ms)"),
                }
            }
            Value(v) => positional.push(v.into()),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let [input, output] = &positional[..] else {
        bail!(
            "usage: aac-to-opus IN(.flv|.aac|.m4a) OUT.ogg [--bitrate BPS] [--frame MS] [--complexity N]"
        );
    };
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let units = match ext.as_str() {
        "flv" => read_flv(input),
        "aac" | "adts" => read_adts(input),
        "m4a" | "mp4" | "mov" => read_mp4(input),
        other => bail!("unknown input type {other:?}: use .flv, .aac (ADTS) or .m4a"),
    }
    .with_context(|| format!("reading {}", input.display()))?;

    let started = Instant::now();
    let mut t = AacToOpus::new(config)?;
    let mut packets: Vec<OpusPacket> = Vec::new();
    let (mut aus, mut first_pts, mut last_pts) = (0u64, None, Duration::ZERO);
    let mut input_rate = 0;
    let mut events = Vec::new();
    for unit in units {
        match unit {
            Unit::Config(asc) => {
                t.set_config(&asc).context("AudioSpecificConfig")?;
                input_rate = t.config().map_or(0, |c| c.sample_rate());
            }
            Unit::Access(au, pts) => {
                t.push(au, pts)?;
                aus += 1;
                first_pts.get_or_insert(pts);
                last_pts = pts;
            }
        }
        packets.extend(std::iter::from_fn(|| t.pop()));
        events.extend(std::iter::from_fn(|| t.poll_event()));
    }
    t.flush()?;
    packets.extend(std::iter::from_fn(|| t.pop()));
    events.extend(std::iter::from_fn(|| t.poll_event()));
    let elapsed = started.elapsed();
    if packets.is_empty() {
        bail!("no audio in {}", input.display());
    }

    // The source's length: the samples the transcoder counted (access units
    // plus silence it inserted for gaps), not pts (FLV rounds them to ms).
    let first = first_pts.unwrap_or_default();
    let (core_rate, out_rate) = t
        .config()
        .map_or((0, 0), |c| (c.sample_rate(), c.output_sample_rate()));
    let source = if core_rate > 0 && out_rate > 0 {
        aus as f64 * 1024.0 / f64::from(core_rate)
            + t.stats().gap_samples as f64 / f64::from(out_rate)
    } else {
        0.0
    };
    let source_48k = (source * 48_000.0).round() as u64;
    let pre_skip = t.delay();
    let mut w = PacketWriter::new(BufWriter::new(File::create(output)?));
    let serial = 0x7274_7361; // "rtsa"
    w.write_packet(
        opus_head(t.channels(), pre_skip as u16, input_rate),
        serial,
        PacketWriteEndInfo::EndPage,
        0,
    )?;
    w.write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)?;
    let mut granule: u64 = 0;
    let end_granule = source_48k + u64::from(pre_skip);
    let n = packets.len();
    let mut discontinuities = 0;
    for (i, p) in packets.iter().enumerate() {
        if i > 0 && p.timestamp != packets[i - 1].timestamp + u64::from(packets[i - 1].duration) {
            discontinuities += 1;
        }
        granule += u64::from(p.duration);
        let last = i + 1 == n;
        let info = if last {
            PacketWriteEndInfo::EndStream
        } else if (i + 1) % 50 == 0 {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        // RFC 7845 4.4: the final granule position trims the padding.
        let gp = if last && discontinuities == 0 {
            granule
                .min(end_granule)
                .max(granule.saturating_sub(u64::from(p.duration)) + 1)
        } else {
            granule
        };
        w.write_packet(p.data.to_vec(), serial, info, gp)?;
    }
    w.into_inner().flush()?;

    let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
    let secs = source.max(1e-9);
    let stats = t.stats();
    println!("input        {} ({ext})", input.display());
    if let Some(c) = t.config() {
        println!(
            "audio        {} {} Hz, {} channel(s)",
            c.profile(),
            c.sample_rate(),
            c.channels().unwrap_or(0)
        );
    }
    println!("access units {aus}, {source:.3} s (pts {first:?} to {last_pts:?})");
    println!(
        "opus packets {} x {} samples, {:.1} kbit/s",
        packets.len(),
        packets[0].duration,
        bytes as f64 * 8.0 / secs / 1000.0
    );
    println!("delay        {pre_skip} samples at 48 kHz (pre-skip)");
    println!(
        "errors       {} corrupt access units, {} restarts, {} discontinuities",
        stats.decode_errors, stats.restarts, discontinuities
    );
    for e in events.iter().take(5) {
        if !matches!(e, Event::GapFilled { .. }) {
            println!("event        {e:?}");
        }
    }
    println!(
        "speed        {:.0}x real time ({:.3} s)",
        secs / elapsed.as_secs_f64().max(1e-9),
        elapsed.as_secs_f64()
    );
    println!("output       {}", output.display());
    Ok(())
}
