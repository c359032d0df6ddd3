//! The reference Opus codec (libopus 1.5.2, RFC 6716), built from the C
//! sources vendored in `vendor/libopus/` by the `cc` crate: no cmake, no
//! autotools, no system library. Only a C compiler is needed.
//!
//! Two layers:
//! - [`ffi`]: the raw C functions and constants this workspace uses (a
//!   subset of `opus.h` / `opus_defines.h`).
//! - [`Encoder`] and [`Decoder`]: safe owners of a libopus state. Every
//!   `unsafe` block of the workspace's Opus use is in this file, each with
//!   its `// SAFETY:` argument, so rts-audio keeps `#![forbid(unsafe_code)]`.
//!
//! Build: float libopus (as its own configure builds it by default); on
//! x86/x86_64 with GCC or Clang, the SSE4.1 and AVX2 kernels are compiled
//! too and chosen at run time by libopus's CPU detection. Set
//! `RTS_OPUS_NO_SIMD=1` at build time for the portable C code only.
//!
//! ```
//! use rts_opus_sys::{Application, Encoder};
//! let mut enc = Encoder::new(48_000, 2, Application::Audio)?;
//! enc.set_bitrate(64_000)?;
//! enc.set_complexity(5)?;
//! let pcm = vec![0.0f32; 960 * 2]; // 20 ms, interleaved stereo
//! let mut packet = [0u8; 1500];
//! let n = enc.encode_float(&pcm, &mut packet)?;
//! assert!(n > 0 && n <= packet.len());
//! assert_eq!(enc.lookahead()?, 312); // 2.5 ms + 4 ms delay compensation at 48 kHz
//! # Ok::<(), rts_opus_sys::Error>(())
//! ```
//!
//! Errors: every libopus error code becomes [`Error`] (with libopus's own
//! message); nothing here panics on any input.
//!
//! Licence: the Rust code is MIT OR Apache-2.0 like the workspace; libopus is
//! BSD-3-Clause (`vendor/libopus/COPYING`; provenance in `vendor/PROVENANCE.md`).

#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

/// Raw libopus declarations (subset of `include/opus.h`, `opus_defines.h`).
#[allow(missing_docs, non_camel_case_types)]
pub mod ffi {
    use std::ffi::{c_char, c_float, c_int, c_uchar};

    /// Opaque libopus encoder state.
    #[repr(C)]
    pub struct OpusEncoder {
        _private: [u8; 0],
    }

    /// Opaque libopus decoder state.
    #[repr(C)]
    pub struct OpusDecoder {
        _private: [u8; 0],
    }

    pub type opus_int32 = i32;

    pub const OPUS_OK: c_int = 0;
    pub const OPUS_BAD_ARG: c_int = -1;
    pub const OPUS_BUFFER_TOO_SMALL: c_int = -2;
    pub const OPUS_INTERNAL_ERROR: c_int = -3;
    pub const OPUS_INVALID_PACKET: c_int = -4;
    pub const OPUS_UNIMPLEMENTED: c_int = -5;
    pub const OPUS_INVALID_STATE: c_int = -6;
    pub const OPUS_ALLOC_FAIL: c_int = -7;

    pub const OPUS_APPLICATION_VOIP: c_int = 2048;
    pub const OPUS_APPLICATION_AUDIO: c_int = 2049;
    pub const OPUS_APPLICATION_RESTRICTED_LOWDELAY: c_int = 2051;

    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
    pub const OPUS_GET_BITRATE_REQUEST: c_int = 4003;
    pub const OPUS_SET_VBR_REQUEST: c_int = 4006;
    pub const OPUS_SET_COMPLEXITY_REQUEST: c_int = 4010;
    pub const OPUS_GET_COMPLEXITY_REQUEST: c_int = 4011;
    pub const OPUS_SET_INBAND_FEC_REQUEST: c_int = 4012;
    pub const OPUS_SET_PACKET_LOSS_PERC_REQUEST: c_int = 4014;
    pub const OPUS_SET_DTX_REQUEST: c_int = 4016;
    pub const OPUS_GET_LOOKAHEAD_REQUEST: c_int = 4027;
    pub const OPUS_RESET_STATE: c_int = 4028;

    unsafe extern "C" {
        pub fn opus_encoder_create(
            fs: opus_int32,
            channels: c_int,
            application: c_int,
            error: *mut c_int,
        ) -> *mut OpusEncoder;
        pub fn opus_encode_float(
            st: *mut OpusEncoder,
            pcm: *const c_float,
            frame_size: c_int,
            data: *mut c_uchar,
            max_data_bytes: opus_int32,
        ) -> opus_int32;
        pub fn opus_encoder_destroy(st: *mut OpusEncoder);
        pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;

        pub fn opus_decoder_create(
            fs: opus_int32,
            channels: c_int,
            error: *mut c_int,
        ) -> *mut OpusDecoder;
        pub fn opus_decode_float(
            st: *mut OpusDecoder,
            data: *const c_uchar,
            len: opus_int32,
            pcm: *mut c_float,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        pub fn opus_decoder_destroy(st: *mut OpusDecoder);

        pub fn opus_strerror(error: c_int) -> *const c_char;
        pub fn opus_get_version_string() -> *const c_char;
    }
}

/// A libopus error code with libopus's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("libopus: {} ({code})", message(*code))]
pub struct Error {
    /// The negative `OPUS_*` error code.
    pub code: i32,
}

fn message(code: i32) -> &'static str {
    // SAFETY: opus_strerror accepts any int and returns a pointer to a static
    // NUL-terminated string (a fixed table, "unknown error" out of range).
    let s = unsafe { CStr::from_ptr(ffi::opus_strerror(code)) };
    s.to_str().unwrap_or("unknown error")
}

fn check(code: c_int) -> Result<i32, Error> {
    if code < 0 {
        Err(Error { code })
    } else {
        Ok(code)
    }
}

/// The libopus version string, e.g. "libopus 1.5.2".
pub fn version() -> &'static str {
    // SAFETY: returns a pointer to a static NUL-terminated string literal.
    let s = unsafe { CStr::from_ptr(ffi::opus_get_version_string()) };
    s.to_str().unwrap_or("libopus")
}

/// Encoder application (`OPUS_APPLICATION_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Application {
    /// Speech: favours intelligibility.
    Voip,
    /// Music and mixed content: favours fidelity.
    Audio,
    /// Restricted low delay: CELT only, 2.5 ms less lookahead.
    LowDelay,
}

impl Application {
    fn raw(self) -> c_int {
        match self {
            Application::Voip => ffi::OPUS_APPLICATION_VOIP,
            Application::Audio => ffi::OPUS_APPLICATION_AUDIO,
            Application::LowDelay => ffi::OPUS_APPLICATION_RESTRICTED_LOWDELAY,
        }
    }
}

/// Sample rates libopus accepts (RFC 6716 2).
fn valid_rate(rate: u32) -> bool {
    matches!(rate, 8000 | 12000 | 16000 | 24000 | 48000)
}

/// An Opus encoder (owns one libopus `OpusEncoder`).
#[derive(Debug)]
pub struct Encoder {
    st: NonNull<ffi::OpusEncoder>,
    channels: usize,
}

// SAFETY: the OpusEncoder state is plain memory owned exclusively by this
// value (libopus keeps no thread-local or global mutable state for it), so
// moving it to another thread is sound. It is not Sync: every method that
// touches the state takes &mut self.
unsafe impl Send for Encoder {}

impl Encoder {
    /// A new encoder: `rate` 8/12/16/24/48 kHz, `channels` 1 or 2.
    pub fn new(rate: u32, channels: u8, application: Application) -> Result<Self, Error> {
        if !valid_rate(rate) || !(1..=2).contains(&channels) {
            return Err(Error {
                code: ffi::OPUS_BAD_ARG,
            });
        }
        let mut err: c_int = ffi::OPUS_OK;
        // SAFETY: arguments validated above; `err` is a valid out pointer.
        // libopus returns NULL (and sets err) on failure, checked below.
        let st = unsafe {
            ffi::opus_encoder_create(
                rate as i32,
                c_int::from(channels),
                application.raw(),
                &mut err,
            )
        };
        check(err)?;
        let st = NonNull::new(st).ok_or(Error {
            code: ffi::OPUS_ALLOC_FAIL,
        })?;
        Ok(Self {
            st,
            channels: usize::from(channels),
        })
    }

    fn set(&mut self, request: c_int, value: i32) -> Result<(), Error> {
        // SAFETY: `st` is a live encoder; every SET request used here takes
        // exactly one opus_int32 vararg (opus_defines.h), which we pass.
        check(unsafe { ffi::opus_encoder_ctl(self.st.as_ptr(), request, value) }).map(|_| ())
    }

    fn get(&mut self, request: c_int) -> Result<i32, Error> {
        let mut value: i32 = 0;
        // SAFETY: `st` is live; every GET request used here takes exactly one
        // `opus_int32 *` vararg, which points at `value` for the call.
        check(unsafe { ffi::opus_encoder_ctl(self.st.as_ptr(), request, &mut value as *mut i32) })?;
        Ok(value)
    }

    /// Target bitrate in bit/s (500 to 512000).
    pub fn set_bitrate(&mut self, bits_per_second: i32) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_BITRATE_REQUEST, bits_per_second)
    }

    /// The bitrate the encoder uses, in bit/s.
    pub fn bitrate(&mut self) -> Result<i32, Error> {
        self.get(ffi::OPUS_GET_BITRATE_REQUEST)
    }

    /// Computational complexity 0 (fastest) to 10 (best).
    pub fn set_complexity(&mut self, complexity: i32) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_COMPLEXITY_REQUEST, complexity)
    }

    /// The complexity in use.
    pub fn complexity(&mut self) -> Result<i32, Error> {
        self.get(ffi::OPUS_GET_COMPLEXITY_REQUEST)
    }

    /// Variable bitrate (default on).
    pub fn set_vbr(&mut self, on: bool) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_VBR_REQUEST, i32::from(on))
    }

    /// In-band forward error correction (SILK LBRR).
    pub fn set_inband_fec(&mut self, on: bool) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_INBAND_FEC_REQUEST, i32::from(on))
    }

    /// Expected packet loss in percent (0 to 100).
    pub fn set_packet_loss_perc(&mut self, percent: i32) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_PACKET_LOSS_PERC_REQUEST, percent)
    }

    /// Discontinuous transmission.
    pub fn set_dtx(&mut self, on: bool) -> Result<(), Error> {
        self.set(ffi::OPUS_SET_DTX_REQUEST, i32::from(on))
    }

    /// Samples (at the encoder's rate) the decoder output lags the input:
    /// the pre-skip of an Ogg Opus stream.
    pub fn lookahead(&mut self) -> Result<i32, Error> {
        self.get(ffi::OPUS_GET_LOOKAHEAD_REQUEST)
    }

    /// Back to the freshly created state, settings kept.
    pub fn reset_state(&mut self) -> Result<(), Error> {
        // SAFETY: `st` is live; OPUS_RESET_STATE takes no argument.
        check(unsafe { ffi::opus_encoder_ctl(self.st.as_ptr(), ffi::OPUS_RESET_STATE) }).map(|_| ())
    }

    /// Encodes one frame of interleaved samples (2.5 to 60 ms: the frame
    /// size is `pcm.len() / channels`) into `packet`; returns the packet's
    /// length in bytes.
    pub fn encode_float(&mut self, pcm: &[f32], packet: &mut [u8]) -> Result<usize, Error> {
        let bad = Error {
            code: ffi::OPUS_BAD_ARG,
        };
        if pcm.len().checked_rem(self.channels) != Some(0) {
            return Err(bad);
        }
        let frames = pcm.len().checked_div(self.channels).ok_or(bad)?;
        let frame = c_int::try_from(frames).map_err(|_| bad)?;
        let max = i32::try_from(packet.len()).unwrap_or(i32::MAX);
        // SAFETY: `st` is live; `pcm` holds exactly `frame * channels`
        // readable floats; `packet` has `max` writable bytes (max <=
        // packet.len()). libopus checks the frame size and returns
        // OPUS_BAD_ARG for an invalid one, and writes at most max bytes.
        let n = check(unsafe {
            ffi::opus_encode_float(
                self.st.as_ptr(),
                pcm.as_ptr(),
                frame,
                packet.as_mut_ptr(),
                max,
            )
        })?;
        usize::try_from(n).map_err(|_| bad)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from opus_encoder_create and is destroyed once.
        unsafe { ffi::opus_encoder_destroy(self.st.as_ptr()) }
    }
}

/// An Opus decoder (owns one libopus `OpusDecoder`).
#[derive(Debug)]
pub struct Decoder {
    st: NonNull<ffi::OpusDecoder>,
    channels: usize,
}

// SAFETY: as for Encoder: exclusively owned plain memory, no thread affinity.
unsafe impl Send for Decoder {}

impl Decoder {
    /// A new decoder: `rate` 8/12/16/24/48 kHz, `channels` 1 or 2.
    pub fn new(rate: u32, channels: u8) -> Result<Self, Error> {
        if !valid_rate(rate) || !(1..=2).contains(&channels) {
            return Err(Error {
                code: ffi::OPUS_BAD_ARG,
            });
        }
        let mut err: c_int = ffi::OPUS_OK;
        // SAFETY: arguments validated; `err` is a valid out pointer; NULL
        // is checked below.
        let st = unsafe { ffi::opus_decoder_create(rate as i32, c_int::from(channels), &mut err) };
        check(err)?;
        let st = NonNull::new(st).ok_or(Error {
            code: ffi::OPUS_ALLOC_FAIL,
        })?;
        Ok(Self {
            st,
            channels: usize::from(channels),
        })
    }

    /// Decodes one packet (or, with an empty `packet`, conceals a lost one)
    /// into interleaved `pcm`; returns the samples per channel written.
    pub fn decode_float(&mut self, packet: &[u8], pcm: &mut [f32]) -> Result<usize, Error> {
        let bad = Error {
            code: ffi::OPUS_BAD_ARG,
        };
        let frames = pcm.len().checked_div(self.channels).ok_or(bad)?;
        let frame = c_int::try_from(frames).unwrap_or(c_int::MAX);
        let len = i32::try_from(packet.len()).map_err(|_| bad)?;
        let data = if packet.is_empty() {
            std::ptr::null()
        } else {
            packet.as_ptr()
        };
        // SAFETY: `st` is live; `data` is NULL (packet loss) or `len`
        // readable bytes; `pcm` has room for `frame * channels` floats and
        // libopus writes at most that many (it returns BUFFER_TOO_SMALL
        // otherwise).
        let n = check(unsafe {
            ffi::opus_decode_float(self.st.as_ptr(), data, len, pcm.as_mut_ptr(), frame, 0)
        })?;
        usize::try_from(n).map_err(|_| bad)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `st` came from opus_decoder_create and is destroyed once.
        unsafe { ffi::opus_decoder_destroy(self.st.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, frames: usize) -> Vec<f32> {
        (0..frames * 960)
            .flat_map(|i| {
                let s = (2.0 * std::f32::consts::PI * freq * i as f32 / 48_000.0).sin() * 0.5;
                [s, s]
            })
            .collect()
    }

    #[test]
    fn version_is_the_vendored_one() {
        assert_eq!(version(), "libopus 1.5.2");
    }

    #[test]
    fn round_trip_keeps_the_tone() {
        let mut enc = Encoder::new(48_000, 2, Application::Audio).unwrap();
        enc.set_bitrate(64_000).unwrap();
        enc.set_complexity(5).unwrap();
        enc.set_inband_fec(true).unwrap();
        enc.set_packet_loss_perc(5).unwrap();
        assert_eq!(enc.complexity().unwrap(), 5);
        assert_eq!(enc.bitrate().unwrap(), 64_000);
        let lookahead = enc.lookahead().unwrap() as usize;
        assert_eq!(lookahead, 312);
        let input = tone(1000.0, 50);
        let mut dec = Decoder::new(48_000, 2).unwrap();
        let mut out = Vec::new();
        let mut packet = [0u8; 4000];
        let mut pcm = [0f32; 960 * 2];
        for frame in input.chunks(960 * 2) {
            let n = enc.encode_float(frame, &mut packet).unwrap();
            assert!(n > 10 && n < 400, "{n} bytes for 20 ms at 64 kbit/s");
            let got = dec.decode_float(&packet[..n], &mut pcm).unwrap();
            assert_eq!(got, 960);
            out.extend_from_slice(&pcm);
        }
        // SNR against the input, delayed by the lookahead, after the first
        // 100 ms (encoder start-up).
        let (mut sig, mut noise) = (0f64, 0f64);
        for i in (4800 * 2)..input.len() {
            let x = f64::from(input[i - lookahead * 2]);
            let y = f64::from(out[i]);
            sig += x * x;
            noise += (x - y) * (x - y);
        }
        let snr = 10.0 * (sig / noise).log10();
        assert!(snr > 20.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn non_finite_input_does_not_break_the_encoder() {
        // libopus's float API zeroes frames with NaN or absurd energy.
        let mut enc = Encoder::new(48_000, 2, Application::Audio).unwrap();
        let mut dec = Decoder::new(48_000, 2).unwrap();
        let mut packet = [0u8; 4000];
        let mut pcm = [0f32; 960 * 2];
        let mut bad = tone(440.0, 1);
        bad[7] = f32::NAN;
        bad[8] = f32::INFINITY;
        bad[100] = 1e30;
        for frame in [bad.as_slice(), &tone(440.0, 1)] {
            let n = enc.encode_float(frame, &mut packet).unwrap();
            assert_eq!(dec.decode_float(&packet[..n], &mut pcm).unwrap(), 960);
            assert!(pcm.iter().all(|s| s.is_finite() && s.abs() <= 2.0));
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(
            Encoder::new(44_100, 2, Application::Audio)
                .unwrap_err()
                .code,
            ffi::OPUS_BAD_ARG
        );
        assert!(Encoder::new(48_000, 3, Application::Audio).is_err());
        let mut enc = Encoder::new(48_000, 1, Application::Voip).unwrap();
        let mut packet = [0u8; 1500];
        // 7 ms is not an Opus frame size.
        let err = enc.encode_float(&[0.0; 336], &mut packet).unwrap_err();
        assert_eq!(err.code, ffi::OPUS_BAD_ARG);
        assert!(err.to_string().contains("invalid argument"), "{err}");
        // Odd sample count for stereo.
        let mut st = Encoder::new(48_000, 2, Application::Audio).unwrap();
        assert!(st.encode_float(&[0.0; 961], &mut packet).is_err());
        assert!(enc.set_complexity(11).is_err());
        // No room at all for the packet.
        assert!(enc.encode_float(&[0.0; 960], &mut []).is_err());
        let mut dec = Decoder::new(48_000, 1).unwrap();
        let mut pcm = [0f32; 960];
        // Packet loss concealment with an empty packet.
        assert_eq!(dec.decode_float(&[], &mut pcm).unwrap(), 960);
    }
}
