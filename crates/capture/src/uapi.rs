//! The parts of the Linux DRM and vc4 UAPI (`drm.h`, `drm_mode.h`,
//! `vc4_drm.h`) that the recorder decodes and the fake device answers.
//!
//! Field order and sizes follow the kernel headers; every struct and ioctl
//! number is checked against the C headers by `tests/uapi_layout.rs` when
//! libdrm's headers are installed. Layouts are the same on every Linux ABI
//! the Pi runs (the structs use fixed-width fields, 64-bit ones 8-aligned).

/// `_IOC` direction bits (asm-generic/ioctl.h, used by x86, arm and arm64).
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `DRM_IOWR(nr, T)`.
pub const fn drm_iowr(nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, b'd', nr, size)
}

/// `DRM_IOW(nr, T)`.
pub const fn drm_iow(nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, b'd', nr, size)
}

/// `DRM_IO(nr)`.
pub const fn drm_io(nr: u8) -> u32 {
    ioc(0, b'd', nr, 0)
}

/// Driver-private ioctls start here (`DRM_COMMAND_BASE`).
pub const DRM_COMMAND_BASE: u8 = 0x40;

/// The ioctl's number within the `'d'` space (`_IOC_NR`).
pub const fn ioc_nr(request: u32) -> u8 {
    (request & 0xff) as u8
}

/// The ioctl's type byte (`_IOC_TYPE`); `'d'` for DRM.
pub const fn ioc_type(request: u32) -> u8 {
    ((request >> 8) & 0xff) as u8
}

macro_rules! sized {
    ($t:ty) => {
        core::mem::size_of::<$t>()
    };
}

/// `struct drm_vc4_submit_rcl_surface`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4SubmitRclSurface {
    /// Index into `bo_handles`, or `!0` if the surface is not present.
    pub hindex: u32,
    pub offset: u32,
    pub bits: u16,
    pub flags: u16,
}

impl Vc4SubmitRclSurface {
    /// `hindex` of an absent surface.
    pub const ABSENT: u32 = !0;

    pub fn present(&self) -> bool {
        self.hindex != Self::ABSENT
    }
}

/// `VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES`.
pub const VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES: u16 = 1 << 0;
/// `VC4_SUBMIT_CL_USE_CLEAR_COLOR`.
pub const VC4_SUBMIT_CL_USE_CLEAR_COLOR: u32 = 1 << 0;

/// `struct drm_vc4_submit_cl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4SubmitCl {
    pub bin_cl: u64,
    pub shader_rec: u64,
    pub uniforms: u64,
    pub bo_handles: u64,
    pub bin_cl_size: u32,
    pub shader_rec_size: u32,
    pub shader_rec_count: u32,
    pub uniforms_size: u32,
    pub bo_handle_count: u32,
    pub width: u16,
    pub height: u16,
    pub min_x_tile: u8,
    pub min_y_tile: u8,
    pub max_x_tile: u8,
    pub max_y_tile: u8,
    pub color_read: Vc4SubmitRclSurface,
    pub color_write: Vc4SubmitRclSurface,
    pub zs_read: Vc4SubmitRclSurface,
    pub zs_write: Vc4SubmitRclSurface,
    pub msaa_color_write: Vc4SubmitRclSurface,
    pub msaa_zs_write: Vc4SubmitRclSurface,
    pub clear_color: [u32; 2],
    pub clear_z: u32,
    pub clear_s: u8,
    /// The header's `__u32 pad:24` bitfield, packed after `clear_s`.
    pub pad: [u8; 3],
    pub flags: u32,
    /// Out: the job's sequence number.
    pub seqno: u64,
    pub perfmonid: u32,
    pub in_sync: u32,
    pub out_sync: u32,
    pub pad2: u32,
}

/// `struct drm_vc4_wait_seqno`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4WaitSeqno {
    pub seqno: u64,
    pub timeout_ns: u64,
}

/// `struct drm_vc4_wait_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4WaitBo {
    pub handle: u32,
    pub pad: u32,
    pub timeout_ns: u64,
}

/// `struct drm_vc4_create_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4CreateBo {
    pub size: u32,
    pub flags: u32,
    /// Out.
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_vc4_mmap_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4MmapBo {
    pub handle: u32,
    pub flags: u32,
    /// Out: the offset to pass to mmap() on the DRM fd.
    pub offset: u64,
}

/// `struct drm_vc4_create_shader_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4CreateShaderBo {
    pub size: u32,
    pub flags: u32,
    pub data: u64,
    /// Out.
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_vc4_get_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4GetParam {
    pub param: u32,
    pub pad: u32,
    pub value: u64,
}

/// `struct drm_vc4_get_tiling` and `struct drm_vc4_set_tiling` (same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4Tiling {
    pub handle: u32,
    pub flags: u32,
    pub modifier: u64,
}

/// `struct drm_vc4_label_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4LabelBo {
    pub handle: u32,
    pub len: u32,
    pub name: u64,
}

/// `struct drm_vc4_gem_madvise`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vc4GemMadvise {
    pub handle: u32,
    pub madv: u32,
    /// Out: 0 if the BO was purged while it was DONTNEED.
    pub retained: u32,
    pub pad: u32,
}

/// `VC4_MADV_WILLNEED`.
pub const VC4_MADV_WILLNEED: u32 = 0;
/// `VC4_MADV_DONTNEED`.
pub const VC4_MADV_DONTNEED: u32 = 1;

/// `DRM_VC4_PARAM_*`.
pub mod param {
    pub const V3D_IDENT0: u32 = 0;
    pub const V3D_IDENT1: u32 = 1;
    pub const V3D_IDENT2: u32 = 2;
    pub const SUPPORTS_BRANCHES: u32 = 3;
    pub const SUPPORTS_ETC1: u32 = 4;
    pub const SUPPORTS_THREADED_FS: u32 = 5;
    pub const SUPPORTS_FIXED_RCL_ORDER: u32 = 6;
    pub const SUPPORTS_MADVISE: u32 = 7;
    pub const SUPPORTS_PERFMON: u32 = 8;
}

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GemClose {
    pub handle: u32,
    pub pad: u32,
}

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}

/// `struct drm_version` (pointers as u64 on 64-bit, `usize`-sized on 32-bit:
/// this one has `size_t` and pointer fields, so its layout is the target's).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Version {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: usize,
    pub name: *mut u8,
    pub date_len: usize,
    pub date: *mut u8,
    pub desc_len: usize,
    pub desc: *mut u8,
}

/// `struct drm_get_cap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetCap {
    pub capability: u64,
    pub value: u64,
}

/// `struct drm_set_client_cap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetClientCap {
    pub capability: u64,
    pub value: u64,
}

/// `DRM_CAP_*` the fake device answers.
pub mod cap {
    pub const DUMB_BUFFER: u64 = 0x1;
    pub const VBLANK_HIGH_CRTC: u64 = 0x2;
    pub const DUMB_PREFERRED_DEPTH: u64 = 0x3;
    pub const DUMB_PREFER_SHADOW: u64 = 0x4;
    pub const PRIME: u64 = 0x5;
    pub const TIMESTAMP_MONOTONIC: u64 = 0x6;
    pub const ASYNC_PAGE_FLIP: u64 = 0x7;
    pub const CURSOR_WIDTH: u64 = 0x8;
    pub const CURSOR_HEIGHT: u64 = 0x9;
    pub const ADDFB2_MODIFIERS: u64 = 0x10;
    pub const SYNCOBJ: u64 = 0x13;
}

/// `struct drm_mode_modeinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeInfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    pub type_: u32,
    pub name: [u8; 32],
}

/// `struct drm_mode_card_res`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeCardRes {
    pub fb_id_ptr: u64,
    pub crtc_id_ptr: u64,
    pub connector_id_ptr: u64,
    pub encoder_id_ptr: u64,
    pub count_fbs: u32,
    pub count_crtcs: u32,
    pub count_connectors: u32,
    pub count_encoders: u32,
    pub min_width: u32,
    pub max_width: u32,
    pub min_height: u32,
    pub max_height: u32,
}

/// `struct drm_mode_crtc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeCrtc {
    pub set_connectors_ptr: u64,
    pub count_connectors: u32,
    pub crtc_id: u32,
    pub fb_id: u32,
    pub x: u32,
    pub y: u32,
    pub gamma_size: u32,
    pub mode_valid: u32,
    pub mode: ModeInfo,
}

/// `struct drm_mode_get_encoder`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeGetEncoder {
    pub encoder_id: u32,
    pub encoder_type: u32,
    pub crtc_id: u32,
    pub possible_crtcs: u32,
    pub possible_clones: u32,
}

/// `struct drm_mode_get_connector`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeGetConnector {
    pub encoders_ptr: u64,
    pub modes_ptr: u64,
    pub props_ptr: u64,
    pub prop_values_ptr: u64,
    pub count_modes: u32,
    pub count_props: u32,
    pub count_encoders: u32,
    pub encoder_id: u32,
    pub connector_id: u32,
    pub connector_type: u32,
    pub connector_type_id: u32,
    pub connection: u32,
    pub mm_width: u32,
    pub mm_height: u32,
    pub subpixel: u32,
    pub pad: u32,
}

/// `struct drm_mode_fb_cmd` (legacy ADDFB).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeFbCmd {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pitch: u32,
    pub bpp: u32,
    pub depth: u32,
    pub handle: u32,
}

/// `struct drm_mode_fb_cmd2`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeFbCmd2 {
    pub fb_id: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub flags: u32,
    pub handles: [u32; 4],
    pub pitches: [u32; 4],
    pub offsets: [u32; 4],
    pub modifier: [u64; 4],
}

/// `struct drm_mode_crtc_page_flip`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeCrtcPageFlip {
    pub crtc_id: u32,
    pub fb_id: u32,
    pub flags: u32,
    pub reserved: u32,
    pub user_data: u64,
}

/// `DRM_MODE_PAGE_FLIP_EVENT`.
pub const DRM_MODE_PAGE_FLIP_EVENT: u32 = 0x01;

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    /// Out.
    pub handle: u32,
    /// Out.
    pub pitch: u32,
    /// Out.
    pub size: u64,
}

/// `struct drm_mode_map_dumb`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeMapDumb {
    pub handle: u32,
    pub pad: u32,
    /// Out.
    pub offset: u64,
}

/// `struct drm_mode_destroy_dumb`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeDestroyDumb {
    pub handle: u32,
}

/// `struct drm_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub type_: u32,
    pub length: u32,
}

/// `struct drm_event_vblank`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventVblank {
    pub base: Event,
    pub user_data: u64,
    pub tv_sec: u32,
    pub tv_usec: u32,
    pub sequence: u32,
    pub crtc_id: u32,
}

/// `DRM_EVENT_VBLANK`.
pub const DRM_EVENT_VBLANK: u32 = 0x01;
/// `DRM_EVENT_FLIP_COMPLETE`.
pub const DRM_EVENT_FLIP_COMPLETE: u32 = 0x02;

/// Driver ioctl numbers within the driver range (`DRM_VC4_*`).
pub mod vc4_nr {
    pub const SUBMIT_CL: u8 = 0x00;
    pub const WAIT_SEQNO: u8 = 0x01;
    pub const WAIT_BO: u8 = 0x02;
    pub const CREATE_BO: u8 = 0x03;
    pub const MMAP_BO: u8 = 0x04;
    pub const CREATE_SHADER_BO: u8 = 0x05;
    pub const GET_HANG_STATE: u8 = 0x06;
    pub const GET_PARAM: u8 = 0x07;
    pub const SET_TILING: u8 = 0x08;
    pub const GET_TILING: u8 = 0x09;
    pub const LABEL_BO: u8 = 0x0a;
    pub const GEM_MADVISE: u8 = 0x0b;
}

/// The full ioctl request numbers.
pub mod ioctl {
    use super::*;

    pub const VERSION: u32 = drm_iowr(0x00, sized!(Version));
    pub const GET_UNIQUE: u32 = drm_iowr(0x01, 2 * core::mem::size_of::<usize>());
    pub const GEM_CLOSE: u32 = drm_iow(0x09, sized!(GemClose));
    pub const GET_CAP: u32 = drm_iowr(0x0c, sized!(GetCap));
    pub const SET_CLIENT_CAP: u32 = drm_iow(0x0d, sized!(SetClientCap));
    pub const SET_MASTER: u32 = drm_io(0x1e);
    pub const DROP_MASTER: u32 = drm_io(0x1f);
    pub const PRIME_HANDLE_TO_FD: u32 = drm_iowr(0x2d, sized!(PrimeHandle));
    pub const PRIME_FD_TO_HANDLE: u32 = drm_iowr(0x2e, sized!(PrimeHandle));
    pub const MODE_GETRESOURCES: u32 = drm_iowr(0xa0, sized!(ModeCardRes));
    pub const MODE_GETCRTC: u32 = drm_iowr(0xa1, sized!(ModeCrtc));
    pub const MODE_SETCRTC: u32 = drm_iowr(0xa2, sized!(ModeCrtc));
    pub const MODE_GETENCODER: u32 = drm_iowr(0xa6, sized!(ModeGetEncoder));
    pub const MODE_GETCONNECTOR: u32 = drm_iowr(0xa7, sized!(ModeGetConnector));
    pub const MODE_ADDFB: u32 = drm_iowr(0xae, sized!(ModeFbCmd));
    pub const MODE_RMFB: u32 = drm_iowr(0xaf, sized!(u32));
    pub const MODE_PAGE_FLIP: u32 = drm_iowr(0xb0, sized!(ModeCrtcPageFlip));
    pub const MODE_CREATE_DUMB: u32 = drm_iowr(0xb2, sized!(ModeCreateDumb));
    pub const MODE_MAP_DUMB: u32 = drm_iowr(0xb3, sized!(ModeMapDumb));
    pub const MODE_DESTROY_DUMB: u32 = drm_iowr(0xb4, sized!(ModeDestroyDumb));
    pub const MODE_ADDFB2: u32 = drm_iowr(0xb8, sized!(ModeFbCmd2));

    const fn vc4(nr: u8, size: usize) -> u32 {
        drm_iowr(DRM_COMMAND_BASE + nr, size)
    }
    pub const VC4_SUBMIT_CL: u32 = vc4(vc4_nr::SUBMIT_CL, sized!(Vc4SubmitCl));
    pub const VC4_WAIT_SEQNO: u32 = vc4(vc4_nr::WAIT_SEQNO, sized!(Vc4WaitSeqno));
    pub const VC4_WAIT_BO: u32 = vc4(vc4_nr::WAIT_BO, sized!(Vc4WaitBo));
    pub const VC4_CREATE_BO: u32 = vc4(vc4_nr::CREATE_BO, sized!(Vc4CreateBo));
    pub const VC4_MMAP_BO: u32 = vc4(vc4_nr::MMAP_BO, sized!(Vc4MmapBo));
    pub const VC4_CREATE_SHADER_BO: u32 = vc4(vc4_nr::CREATE_SHADER_BO, sized!(Vc4CreateShaderBo));
    pub const VC4_GET_PARAM: u32 = vc4(vc4_nr::GET_PARAM, sized!(Vc4GetParam));
    pub const VC4_SET_TILING: u32 = vc4(vc4_nr::SET_TILING, sized!(Vc4Tiling));
    pub const VC4_GET_TILING: u32 = vc4(vc4_nr::GET_TILING, sized!(Vc4Tiling));
    pub const VC4_LABEL_BO: u32 = vc4(vc4_nr::LABEL_BO, sized!(Vc4LabelBo));
    pub const VC4_GEM_MADVISE: u32 = vc4(vc4_nr::GEM_MADVISE, sized!(Vc4GemMadvise));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_encode_direction_size_type_and_number() {
        // DRM_IOWR(0x43, struct drm_vc4_create_bo): read|write, 16 bytes, 'd', 0x43.
        assert_eq!(ioctl::VC4_CREATE_BO, 0xc010_6443);
        assert_eq!(ioc_nr(ioctl::VC4_CREATE_BO), 0x43);
        assert_eq!(ioc_type(ioctl::VC4_CREATE_BO), b'd');
        // DRM_IOW(0x09, struct drm_gem_close): write only.
        assert_eq!(ioctl::GEM_CLOSE, 0x4008_6409);
        assert_eq!(core::mem::size_of::<Vc4SubmitCl>(), 176);
    }
}
