//! The sizes of the kernel's own BOs, by the kernel's arithmetic.

use crate::raw::{surface, Submit};
use crate::uapi::{VC4_SUBMIT_CL_USE_CLEAR_COLOR, VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES};

pub(super) fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// Bytes of the exec BO `vc4_get_bcl` allocates (before page rounding): the
/// binner CL padded to 16 bytes, then the shader records, then the uniforms.
pub fn exec_bo_bytes(s: &Submit) -> u64 {
    round_up(s.bin_cl_size as u64, 16) + s.shader_rec_size as u64 + s.uniforms_size as u64
}

/// Bytes of the render-control list `vc4_create_rcl_bo` allocates (before
/// page rounding), from the packet sizes of `vc4_packet.h`: the rendering
/// mode config, an optional clear, then per tile the loads, the branch to
/// the tile's binned list and the stores, with tile coordinates between stores.
pub fn rcl_bo_bytes(s: &Submit) -> u64 {
    const TILE_RENDERING_MODE_CONFIG: u64 = 11;
    const TILE_COORDINATES: u64 = 3;
    const CLEAR_COLORS: u64 = 14;
    const STORE_TILE_BUFFER_GENERAL: u64 = 7;
    const LOAD_TILE_BUFFER_GENERAL: u64 = 7;
    const LOAD_FULL_RES_TILE_BUFFER: u64 = 5;
    const STORE_FULL_RES_TILE_BUFFER: u64 = 5;
    const WAIT_ON_SEMAPHORE: u64 = 1;
    const BRANCH_TO_SUB_LIST: u64 = 5;
    const STORE_MS_TILE_BUFFER: u64 = 1;

    let has = |i: usize| s.surfaces[i].present();
    let full_res = |i: usize| s.surfaces[i].flags & VC4_SUBMIT_RCL_SURFACE_READ_IS_FULL_RES != 0;
    let load = |i: usize| {
        if full_res(i) {
            LOAD_FULL_RES_TILE_BUFFER
        } else {
            LOAD_TILE_BUFFER_GENERAL
        }
    };
    // The kernel counts tiles in u8.
    let xtiles = s.max_x_tile.wrapping_sub(s.min_x_tile).wrapping_add(1) as u64;
    let ytiles = s.max_y_tile.wrapping_sub(s.min_y_tile).wrapping_add(1) as u64;

    let mut size = TILE_RENDERING_MODE_CONFIG;
    let mut body = TILE_COORDINATES;
    if s.flags & VC4_SUBMIT_CL_USE_CLEAR_COLOR != 0 {
        size += CLEAR_COLORS + TILE_COORDINATES + STORE_TILE_BUFFER_GENERAL;
    }
    if has(surface::COLOR_READ) {
        body += load(surface::COLOR_READ);
    }
    if has(surface::ZS_READ) {
        if has(surface::COLOR_READ) {
            body += TILE_COORDINATES + STORE_TILE_BUFFER_GENERAL;
        }
        body += load(surface::ZS_READ);
    }
    if s.bin_cl_size != 0 {
        size += WAIT_ON_SEMAPHORE;
        body += BRANCH_TO_SUB_LIST;
    }
    let writes = [
        surface::MSAA_COLOR_WRITE,
        surface::MSAA_ZS_WRITE,
        surface::COLOR_WRITE,
        surface::ZS_WRITE,
    ]
    .iter()
    .filter(|&&i| has(i))
    .count() as u64;
    if has(surface::MSAA_COLOR_WRITE) {
        body += STORE_FULL_RES_TILE_BUFFER;
    }
    if has(surface::MSAA_ZS_WRITE) {
        body += STORE_FULL_RES_TILE_BUFFER;
    }
    if has(surface::ZS_WRITE) {
        body += STORE_TILE_BUFFER_GENERAL;
    }
    if has(surface::COLOR_WRITE) {
        body += STORE_MS_TILE_BUFFER;
    }
    // The kernel refuses a job with no write surface, so writes >= 1 here.
    body += TILE_COORDINATES * writes.saturating_sub(1);
    size + xtiles * ytiles * body
}
