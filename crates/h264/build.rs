//! Mirrors how openh264-sys2's build script (0.9) decides whether to build
//! OpenH264's x86 assembly: x86/x86_64 target, `OPENH264_NO_ASM` unset, and
//! a `nasm` (from `$NASM` or `PATH`) that runs. It falls back to C silently,
//! so we repeat the check and expose the answer as `rts_h264::ASM`.
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rts_h264_asm)");
    println!("cargo::rerun-if-env-changed=OPENH264_NO_ASM");
    println!("cargo::rerun-if-env-changed=NASM");
    println!("cargo::rerun-if-env-changed=PATH");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let x86 = arch == "x86_64" || arch == "x86";
    let disabled = std::env::var_os("OPENH264_NO_ASM").is_some();
    let nasm = std::env::var_os("NASM").unwrap_or_else(|| "nasm".into());
    let runs = Command::new(nasm)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if x86 && !disabled && runs {
        println!("cargo::rustc-cfg=rts_h264_asm");
    }
}
