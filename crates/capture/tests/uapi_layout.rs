//! The Rust UAPI definitions against the C headers: a C program compiled
//! here prints every struct's size, its fields' offsets and the ioctl
//! numbers, and they must equal ours. Needs gcc and libdrm's headers
//! (Debian's libdrm-dev, /usr/include/libdrm); CI installs both, and with
//! CI set their absence is a failure, not a skip.

use capture::uapi::{self, ioctl};
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

const HEADERS: &str = "/usr/include/libdrm";

macro_rules! layout {
    ($out:ident, $c:literal, $rust:ty, [$($cf:literal => $rf:ident),* $(,)?]) => {
        $out.push((format!("sizeof {}", $c), size_of::<$rust>() as u64));
        $( $out.push((format!("offsetof {}.{}", $c, $cf), offset_of!($rust, $rf) as u64)); )*
    };
}

fn ours() -> Vec<(String, u64)> {
    let mut v = Vec::new();
    layout!(v, "drm_vc4_submit_rcl_surface", uapi::Vc4SubmitRclSurface, ["hindex" => hindex, "offset" => offset, "bits" => bits, "flags" => flags]);
    layout!(v, "drm_vc4_submit_cl", uapi::Vc4SubmitCl, [
        "bin_cl" => bin_cl, "shader_rec" => shader_rec, "uniforms" => uniforms, "bo_handles" => bo_handles,
        "bin_cl_size" => bin_cl_size, "shader_rec_size" => shader_rec_size, "shader_rec_count" => shader_rec_count,
        "uniforms_size" => uniforms_size, "bo_handle_count" => bo_handle_count, "width" => width, "height" => height,
        "min_x_tile" => min_x_tile, "min_y_tile" => min_y_tile, "max_x_tile" => max_x_tile, "max_y_tile" => max_y_tile,
        "color_read" => color_read, "color_write" => color_write, "zs_read" => zs_read, "zs_write" => zs_write,
        "msaa_color_write" => msaa_color_write, "msaa_zs_write" => msaa_zs_write, "clear_color" => clear_color,
        "clear_z" => clear_z, "clear_s" => clear_s, "flags" => flags, "seqno" => seqno, "perfmonid" => perfmonid,
        "in_sync" => in_sync, "out_sync" => out_sync, "pad2" => pad2,
    ]);
    layout!(v, "drm_vc4_wait_seqno", uapi::Vc4WaitSeqno, ["seqno" => seqno, "timeout_ns" => timeout_ns]);
    layout!(v, "drm_vc4_wait_bo", uapi::Vc4WaitBo, ["handle" => handle, "timeout_ns" => timeout_ns]);
    layout!(v, "drm_vc4_create_bo", uapi::Vc4CreateBo, ["size" => size, "flags" => flags, "handle" => handle]);
    layout!(v, "drm_vc4_mmap_bo", uapi::Vc4MmapBo, ["handle" => handle, "flags" => flags, "offset" => offset]);
    layout!(v, "drm_vc4_create_shader_bo", uapi::Vc4CreateShaderBo, ["size" => size, "flags" => flags, "data" => data, "handle" => handle]);
    layout!(v, "drm_vc4_get_param", uapi::Vc4GetParam, ["param" => param, "value" => value]);
    layout!(v, "drm_vc4_set_tiling", uapi::Vc4Tiling, ["handle" => handle, "flags" => flags, "modifier" => modifier]);
    layout!(v, "drm_vc4_label_bo", uapi::Vc4LabelBo, ["handle" => handle, "len" => len, "name" => name]);
    layout!(v, "drm_vc4_gem_madvise", uapi::Vc4GemMadvise, ["handle" => handle, "madv" => madv, "retained" => retained]);
    layout!(v, "drm_gem_close", uapi::GemClose, ["handle" => handle]);
    layout!(v, "drm_prime_handle", uapi::PrimeHandle, ["handle" => handle, "flags" => flags, "fd" => fd]);
    layout!(v, "drm_version", uapi::Version, ["name_len" => name_len, "name" => name, "date_len" => date_len, "desc_len" => desc_len, "desc" => desc]);
    layout!(v, "drm_get_cap", uapi::GetCap, ["capability" => capability, "value" => value]);
    layout!(v, "drm_mode_modeinfo", uapi::ModeInfo, ["clock" => clock, "hdisplay" => hdisplay, "vtotal" => vtotal, "vrefresh" => vrefresh, "flags" => flags, "type" => type_, "name" => name]);
    layout!(v, "drm_mode_card_res", uapi::ModeCardRes, ["fb_id_ptr" => fb_id_ptr, "encoder_id_ptr" => encoder_id_ptr, "count_fbs" => count_fbs, "count_encoders" => count_encoders, "max_height" => max_height]);
    layout!(v, "drm_mode_crtc", uapi::ModeCrtc, ["set_connectors_ptr" => set_connectors_ptr, "count_connectors" => count_connectors, "crtc_id" => crtc_id, "fb_id" => fb_id, "mode_valid" => mode_valid, "mode" => mode]);
    layout!(v, "drm_mode_get_encoder", uapi::ModeGetEncoder, ["encoder_id" => encoder_id, "crtc_id" => crtc_id, "possible_clones" => possible_clones]);
    layout!(v, "drm_mode_get_connector", uapi::ModeGetConnector, ["encoders_ptr" => encoders_ptr, "prop_values_ptr" => prop_values_ptr, "count_modes" => count_modes, "count_encoders" => count_encoders, "encoder_id" => encoder_id, "connector_id" => connector_id, "connection" => connection, "subpixel" => subpixel]);
    layout!(v, "drm_mode_fb_cmd", uapi::ModeFbCmd, ["fb_id" => fb_id, "pitch" => pitch, "handle" => handle]);
    layout!(v, "drm_mode_fb_cmd2", uapi::ModeFbCmd2, ["fb_id" => fb_id, "pixel_format" => pixel_format, "flags" => flags, "handles" => handles, "pitches" => pitches, "offsets" => offsets, "modifier" => modifier]);
    layout!(v, "drm_mode_crtc_page_flip", uapi::ModeCrtcPageFlip, ["crtc_id" => crtc_id, "fb_id" => fb_id, "flags" => flags, "user_data" => user_data]);
    layout!(v, "drm_mode_create_dumb", uapi::ModeCreateDumb, ["bpp" => bpp, "handle" => handle, "pitch" => pitch, "size" => size]);
    layout!(v, "drm_mode_map_dumb", uapi::ModeMapDumb, ["handle" => handle, "offset" => offset]);
    layout!(v, "drm_mode_destroy_dumb", uapi::ModeDestroyDumb, ["handle" => handle]);
    layout!(v, "drm_event", uapi::Event, ["type" => type_, "length" => length]);
    layout!(v, "drm_event_vblank", uapi::EventVblank, ["user_data" => user_data, "tv_sec" => tv_sec, "tv_usec" => tv_usec, "sequence" => sequence, "crtc_id" => crtc_id]);
    for (name, value) in [
        ("DRM_IOCTL_VERSION", ioctl::VERSION),
        ("DRM_IOCTL_GET_UNIQUE", ioctl::GET_UNIQUE),
        ("DRM_IOCTL_GEM_CLOSE", ioctl::GEM_CLOSE),
        ("DRM_IOCTL_GET_CAP", ioctl::GET_CAP),
        ("DRM_IOCTL_SET_CLIENT_CAP", ioctl::SET_CLIENT_CAP),
        ("DRM_IOCTL_SET_MASTER", ioctl::SET_MASTER),
        ("DRM_IOCTL_DROP_MASTER", ioctl::DROP_MASTER),
        ("DRM_IOCTL_PRIME_HANDLE_TO_FD", ioctl::PRIME_HANDLE_TO_FD),
        ("DRM_IOCTL_PRIME_FD_TO_HANDLE", ioctl::PRIME_FD_TO_HANDLE),
        ("DRM_IOCTL_MODE_GETRESOURCES", ioctl::MODE_GETRESOURCES),
        ("DRM_IOCTL_MODE_GETCRTC", ioctl::MODE_GETCRTC),
        ("DRM_IOCTL_MODE_SETCRTC", ioctl::MODE_SETCRTC),
        ("DRM_IOCTL_MODE_GETENCODER", ioctl::MODE_GETENCODER),
        ("DRM_IOCTL_MODE_GETCONNECTOR", ioctl::MODE_GETCONNECTOR),
        ("DRM_IOCTL_MODE_ADDFB", ioctl::MODE_ADDFB),
        ("DRM_IOCTL_MODE_RMFB", ioctl::MODE_RMFB),
        ("DRM_IOCTL_MODE_PAGE_FLIP", ioctl::MODE_PAGE_FLIP),
        ("DRM_IOCTL_MODE_CREATE_DUMB", ioctl::MODE_CREATE_DUMB),
        ("DRM_IOCTL_MODE_MAP_DUMB", ioctl::MODE_MAP_DUMB),
        ("DRM_IOCTL_MODE_DESTROY_DUMB", ioctl::MODE_DESTROY_DUMB),
        ("DRM_IOCTL_MODE_ADDFB2", ioctl::MODE_ADDFB2),
        ("DRM_IOCTL_VC4_SUBMIT_CL", ioctl::VC4_SUBMIT_CL),
        ("DRM_IOCTL_VC4_WAIT_SEQNO", ioctl::VC4_WAIT_SEQNO),
        ("DRM_IOCTL_VC4_WAIT_BO", ioctl::VC4_WAIT_BO),
        ("DRM_IOCTL_VC4_CREATE_BO", ioctl::VC4_CREATE_BO),
        ("DRM_IOCTL_VC4_MMAP_BO", ioctl::VC4_MMAP_BO),
        (
            "DRM_IOCTL_VC4_CREATE_SHADER_BO",
            ioctl::VC4_CREATE_SHADER_BO,
        ),
        ("DRM_IOCTL_VC4_GET_PARAM", ioctl::VC4_GET_PARAM),
        ("DRM_IOCTL_VC4_SET_TILING", ioctl::VC4_SET_TILING),
        ("DRM_IOCTL_VC4_GET_TILING", ioctl::VC4_GET_TILING),
        ("DRM_IOCTL_VC4_LABEL_BO", ioctl::VC4_LABEL_BO),
        ("DRM_IOCTL_VC4_GEM_MADVISE", ioctl::VC4_GEM_MADVISE),
    ] {
        v.push((format!("ioctl {name}"), value as u64));
    }
    for (name, value) in [
        ("VC4_MADV_WILLNEED", uapi::VC4_MADV_WILLNEED as u64),
        ("VC4_MADV_DONTNEED", uapi::VC4_MADV_DONTNEED as u64),
        (
            "DRM_VC4_PARAM_SUPPORTS_MADVISE",
            uapi::param::SUPPORTS_MADVISE as u64,
        ),
        (
            "DRM_VC4_PARAM_SUPPORTS_PERFMON",
            uapi::param::SUPPORTS_PERFMON as u64,
        ),
        (
            "DRM_EVENT_FLIP_COMPLETE",
            uapi::DRM_EVENT_FLIP_COMPLETE as u64,
        ),
        (
            "DRM_MODE_PAGE_FLIP_EVENT",
            uapi::DRM_MODE_PAGE_FLIP_EVENT as u64,
        ),
        (
            "VC4_SUBMIT_CL_USE_CLEAR_COLOR",
            uapi::VC4_SUBMIT_CL_USE_CLEAR_COLOR as u64,
        ),
        (
            "VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES",
            uapi::VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES as u64,
        ),
        ("DRM_CAP_PRIME", uapi::cap::PRIME),
        (
            "DRM_CAP_TIMESTAMP_MONOTONIC",
            uapi::cap::TIMESTAMP_MONOTONIC,
        ),
        ("DRM_CAP_ADDFB2_MODIFIERS", uapi::cap::ADDFB2_MODIFIERS),
        ("DRM_CAP_SYNCOBJ", uapi::cap::SYNCOBJ),
    ] {
        v.push((format!("const {name}"), value));
    }
    v
}

/// The C program that prints the same lines from the headers.
fn c_source(names: &[(String, u64)]) -> String {
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include <drm.h>\n#include <drm_mode.h>\n#include <vc4_drm.h>\nint main(void) {\n");
    for (name, _) in names {
        let expr = if let Some(t) = name.strip_prefix("sizeof ") {
            format!("sizeof(struct {t})")
        } else if let Some(f) = name.strip_prefix("offsetof ") {
            let (t, field) = f.split_once('.').unwrap();
            format!("offsetof(struct {t}, {field})")
        } else if let Some(i) = name.strip_prefix("ioctl ") {
            format!("(unsigned long)({i})")
        } else {
            format!(
                "(unsigned long long)({})",
                name.strip_prefix("const ").unwrap()
            )
        };
        c.push_str(&format!(
            "  printf(\"%s %llu\\n\", \"{name}\", (unsigned long long)({expr}));\n"
        ));
    }
    c.push_str("  return 0;\n}\n");
    c
}

#[test]
fn definitions_match_the_c_headers() {
    let have_gcc = Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !Path::new(HEADERS).join("vc4_drm.h").exists() || !have_gcc {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have gcc and {HEADERS}/vc4_drm.h (libdrm-dev)"
        );
        println!("skipped: gcc or {HEADERS}/vc4_drm.h missing (apt-get install gcc libdrm-dev)");
        return;
    }
    let names = ours();
    let dir = std::env::temp_dir().join(format!("capture-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, c_source(&names)).unwrap();
    let built = Command::new("gcc")
        .arg(format!("-I{HEADERS}"))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let theirs: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse().unwrap())
        })
        .collect();
    assert_eq!(theirs.len(), names.len());
    let mismatches: Vec<String> = names
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}: ours {} ({:#x}), C {} ({:#x})", a.0, a.1, a.1, b.1, b.1))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    println!(
        "{} sizes, offsets and numbers agree with {HEADERS}",
        names.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
