//! Builds the vendored libopus 1.5.2 (vendor/libopus/, BSD-3-Clause; provenance in vendor/PROVENANCE.md) with the `cc`
//! crate: no cmake, no autotools, no system libopus. Float build (the
//! default of libopus's own configure), with x86 SIMD: SSE/SSE2 presumed on
//! x86_64, SSE4.1 and AVX2/FMA compiled in separate objects and chosen at run
//! time by libopus's CPU detection (OPUS_HAVE_RTCD), as its configure does.
//! Other architectures get the portable C code.

use std::path::{Path, PathBuf};

const CELT: &[&str] = &[
    "bands.c",
    "celt.c",
    "celt_encoder.c",
    "celt_decoder.c",
    "cwrs.c",
    "entcode.c",
    "entdec.c",
    "entenc.c",
    "kiss_fft.c",
    "laplace.c",
    "mathops.c",
    "mdct.c",
    "modes.c",
    "pitch.c",
    "celt_lpc.c",
    "quant_bands.c",
    "rate.c",
    "vq.c",
];

const SILK: &[&str] = &[
    "CNG.c",
    "code_signs.c",
    "init_decoder.c",
    "decode_core.c",
    "decode_frame.c",
    "decode_parameters.c",
    "decode_indices.c",
    "decode_pulses.c",
    "decoder_set_fs.c",
    "dec_API.c",
    "enc_API.c",
    "encode_indices.c",
    "encode_pulses.c",
    "gain_quant.c",
    "interpolate.c",
    "LP_variable_cutoff.c",
    "NLSF_decode.c",
    "NSQ.c",
    "NSQ_del_dec.c",
    "PLC.c",
    "shell_coder.c",
    "tables_gain.c",
    "tables_LTP.c",
    "tables_NLSF_CB_NB_MB.c",
    "tables_NLSF_CB_WB.c",
    "tables_other.c",
    "tables_pitch_lag.c",
    "tables_pulses_per_block.c",
    "VAD.c",
    "control_audio_bandwidth.c",
    "quant_LTP_gains.c",
    "VQ_WMat_EC.c",
    "HP_variable_cutoff.c",
    "NLSF_encode.c",
    "NLSF_VQ.c",
    "NLSF_unpack.c",
    "NLSF_del_dec_quant.c",
    "process_NLSFs.c",
    "stereo_LR_to_MS.c",
    "stereo_MS_to_LR.c",
    "check_control_input.c",
    "control_SNR.c",
    "init_encoder.c",
    "control_codec.c",
    "A2NLSF.c",
    "ana_filt_bank_1.c",
    "biquad_alt.c",
    "bwexpander_32.c",
    "bwexpander.c",
    "debug.c",
    "decode_pitch.c",
    "inner_prod_aligned.c",
    "lin2log.c",
    "log2lin.c",
    "LPC_analysis_filter.c",
    "LPC_inv_pred_gain.c",
    "table_LSF_cos.c",
    "NLSF2A.c",
    "NLSF_stabilize.c",
    "NLSF_VQ_weights_laroia.c",
    "pitch_est_tables.c",
    "resampler.c",
    "resampler_down2_3.c",
    "resampler_down2.c",
    "resampler_private_AR2.c",
    "resampler_private_down_FIR.c",
    "resampler_private_IIR_FIR.c",
    "resampler_private_up2_HQ.c",
    "resampler_rom.c",
    "sigm_Q15.c",
    "sort.c",
    "sum_sqr_shift.c",
    "stereo_decode_pred.c",
    "stereo_encode_pred.c",
    "stereo_find_predictor.c",
    "stereo_quant_pred.c",
    "LPC_fit.c",
];

const SILK_FLOAT: &[&str] = &[
    "apply_sine_window_FLP.c",
    "corrMatrix_FLP.c",
    "encode_frame_FLP.c",
    "find_LPC_FLP.c",
    "find_LTP_FLP.c",
    "find_pitch_lags_FLP.c",
    "find_pred_coefs_FLP.c",
    "LPC_analysis_filter_FLP.c",
    "LTP_analysis_filter_FLP.c",
    "LTP_scale_ctrl_FLP.c",
    "noise_shape_analysis_FLP.c",
    "process_gains_FLP.c",
    "regularize_correlations_FLP.c",
    "residual_energy_FLP.c",
    "warped_autocorrelation_FLP.c",
    "wrappers_FLP.c",
    "autocorrelation_FLP.c",
    "burg_modified_FLP.c",
    "bwexpander_FLP.c",
    "energy_FLP.c",
    "inner_product_FLP.c",
    "k2a_FLP.c",
    "LPC_inv_pred_gain_FLP.c",
    "pitch_analysis_core_FLP.c",
    "scale_copy_vector_FLP.c",
    "scale_vector_FLP.c",
    "schur_FLP.c",
    "sort_FLP.c",
];

const OPUS: &[&str] = &[
    "opus.c",
    "opus_decoder.c",
    "opus_encoder.c",
    "extensions.c",
    "opus_multistream.c",
    "opus_multistream_encoder.c",
    "opus_multistream_decoder.c",
    "repacketizer.c",
    "opus_projection_encoder.c",
    "opus_projection_decoder.c",
    "mapping_matrix.c",
    // float build
    "analysis.c",
    "mlp.c",
    "mlp_data.c",
];

const X86_RTCD: &[&str] = &[
    "celt/x86/x86cpu.c",
    "celt/x86/x86_celt_map.c",
    "silk/x86/x86_silk_map.c",
];
const X86_SSE: &[&str] = &["celt/x86/pitch_sse.c"];
const X86_SSE2: &[&str] = &["celt/x86/pitch_sse2.c", "celt/x86/vq_sse2.c"];
const X86_SSE4_1: &[&str] = &[
    "celt/x86/celt_lpc_sse4_1.c",
    "celt/x86/pitch_sse4_1.c",
    "silk/x86/NSQ_sse4_1.c",
    "silk/x86/NSQ_del_dec_sse4_1.c",
    "silk/x86/VAD_sse4_1.c",
    "silk/x86/VQ_WMat_EC_sse4_1.c",
];
const X86_AVX2: &[&str] = &[
    "celt/x86/pitch_avx.c",
    "silk/x86/NSQ_del_dec_avx2.c",
    "silk/float/x86/inner_product_FLP_avx2.c",
];

fn base(root: &Path, defines: &[(&str, Option<&str>)]) -> cc::Build {
    let mut b = cc::Build::new();
    for dir in ["include", "celt", "silk", "silk/float", "src", ""] {
        b.include(root.join(dir));
    }
    for (k, v) in defines {
        b.define(k, *v);
    }
    // Test builds of the workspace run at opt-level 0; an unoptimised
    // encoder makes the transcoding tests ~5x slower. libopus is always
    // built optimised (-O2, or -O3 when the profile asks for it).
    let opt: u32 = std::env::var("OPT_LEVEL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    b.opt_level(opt.max(2));
    b.warnings(false);
    b
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("vendor/libopus");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=vendor/libopus");
    // Set RTS_OPUS_NO_SIMD=1 to build the portable C code only (for comparison).
    println!("cargo:rerun-if-env-changed=RTS_OPUS_NO_SIMD");

    let target_arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let msvc = target_env == "msvc";

    let mut defines: Vec<(&str, Option<&str>)> = vec![
        ("OPUS_BUILD", None),
        ("HAVE_LRINTF", Some("1")),
        ("HAVE_LRINT", Some("1")),
        ("PACKAGE_VERSION", Some("\"1.5.2\"")),
    ];
    // MSVC has no C99 variable-length arrays; it has alloca in <malloc.h>,
    // which libopus's stack_alloc.h includes on _WIN32.
    defines.push(if msvc {
        ("USE_ALLOCA", None)
    } else {
        ("VAR_ARRAYS", None)
    });

    let no_simd = std::env::var_os("RTS_OPUS_NO_SIMD").is_some_and(|v| v != "0");
    let probe = cc::Build::new().get_compiler();
    let gnu = probe.is_like_gnu() || probe.is_like_clang();
    let x86 = !no_simd && gnu && (target_arch == "x86_64" || target_arch == "x86");
    if x86 {
        defines.extend([
            ("OPUS_HAVE_RTCD", Some("1")),
            ("CPU_INFO_BY_C", Some("1")),
            ("OPUS_X86_MAY_HAVE_SSE", Some("1")),
            ("OPUS_X86_MAY_HAVE_SSE2", Some("1")),
            ("OPUS_X86_MAY_HAVE_SSE4_1", Some("1")),
            ("OPUS_X86_MAY_HAVE_AVX2", Some("1")),
        ]);
        if target_arch == "x86_64" {
            // x86_64 always has SSE and SSE2.
            defines.extend([
                ("OPUS_X86_PRESUME_SSE", Some("1")),
                ("OPUS_X86_PRESUME_SSE2", Some("1")),
            ]);
        }
    }

    let mut lib = base(&root, &defines);
    for f in CELT {
        lib.file(root.join("celt").join(f));
    }
    for f in SILK {
        lib.file(root.join("silk").join(f));
    }
    for f in SILK_FLOAT {
        lib.file(root.join("silk/float").join(f));
    }
    for f in OPUS {
        lib.file(root.join("src").join(f));
    }
    if x86 {
        for f in X86_RTCD.iter().chain(X86_SSE).chain(X86_SSE2) {
            lib.file(root.join(f));
        }
        if target_arch == "x86" {
            lib.flag("-msse2");
        }
        // Separate objects with their own instruction-set flags, called only
        // after the run-time CPU check says the CPU has them.
        let mut sse41 = base(&root, &defines);
        sse41.flag("-msse4.1");
        for f in X86_SSE4_1 {
            sse41.file(root.join(f));
        }
        let sse41_objects = sse41.compile_intermediates();
        let mut avx2 = base(&root, &defines);
        avx2.flag("-mavx").flag("-mfma").flag("-mavx2");
        for f in X86_AVX2 {
            avx2.file(root.join(f));
        }
        let avx2_objects = avx2.compile_intermediates();
        // One archive: the dispatch tables and the SIMD objects refer to
        // each other, so no link order works with three.
        lib.objects(sse41_objects).objects(avx2_objects);
    }
    lib.compile("opus");
    println!("cargo:include={}", root.join("include").display());
}
