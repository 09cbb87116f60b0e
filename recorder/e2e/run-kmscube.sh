#!/usr/bin/env bash
# End to end against the real graphics stack, on a Debian 12 host without a
# Pi: Mesa's vc4 driver (Debian's mesa source package) on its drm-shim noop
# backend, kmscube recorded through libpoolbed_recorder.so, converted with
# cargo xtask record-convert, checked strictly and replayed in cargo xtask sim.
#
#   recorder/e2e/run-kmscube.sh            # as root (apt-get), from anywhere
#
# Environment (all optional):
#   WORK=/tmp/poolbed-e2e   where Mesa's source, build and the raw files go
#   JOBS=1                  ninja's job count (the Mesa build takes ~15 min at -j1 on 2 cores)
#   FRAMES=900 MODE=rgba    kmscube -c FRAMES -M MODE
#   JOB_US=2000             the fake GPU's time per job (FAKE_VC4_JOB_US)
#   OUT=traces/kmscube-rgba-recorded.log.gz   the trace to write (its .stats.json beside it)
#
# The preload order is recorder, fake device, shim: the recorder sees every
# call the program makes and what came back; the fake adds to the noop shim
# what it lacks (jobs, waits, madvise, shader BOs, PRIME, a KMS display).
# Not part of CI: the Mesa build is far too heavy.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${WORK:-/tmp/poolbed-e2e}"
JOBS="${JOBS:-1}"
FRAMES="${FRAMES:-900}"
MODE="${MODE:-rgba}"
JOB_US="${JOB_US:-2000}"
OUT="${OUT:-$REPO/traces/kmscube-$MODE-recorded.log.gz}"
mkdir -p "$WORK"
cd "$WORK"
export DEBIAN_FRONTEND=noninteractive
# Mesa's meson needs Debian's python3 (with mako), not a pyenv one.
export PATH="/usr/bin:/bin:$PATH"

echo "== packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends meson ninja-build pkg-config gcc g++ libdrm-dev \
  python3-mako python3-ply flex bison libexpat1-dev zlib1g-dev libglvnd-dev libglvnd-core-dev \
  kmscube dpkg-dev >/dev/null

echo "== Mesa source (Debian's package, through a temporary deb-src list)"
if [ ! -d mesa-src ]; then
  mkdir -p apt/lists/partial apt/parts
  cat > apt/parts/deb-src.sources <<SOURCES
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  APT=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$WORK/apt/parts" -o Dir::State::Lists="$WORK/apt/lists")
  apt-get "${APT[@]}" update -qq
  apt-get "${APT[@]}" source mesa >/dev/null
  mv "$(find . -maxdepth 1 -type d -name 'mesa-[0-9]*' | head -n 1)" mesa-src
fi

echo "== Mesa build (vc4 + drm-shim, ninja -j$JOBS)"
if [ ! -f mesa-build/src/broadcom/drm-shim/libvc4_noop_drm_shim.so ]; then
  [ -d mesa-build ] || meson setup mesa-build mesa-src -Dbuildtype=release -Db_ndebug=false \
    -Dgallium-drivers=vc4 -Dvulkan-drivers= -Dtools=drm-shim -Dllvm=disabled -Dplatforms= \
    -Dglx=disabled -Dgbm=enabled -Degl=enabled -Dglvnd=true -Dgles1=disabled -Dgles2=enabled \
    -Dshared-glapi=enabled -Dgallium-va=disabled -Dgallium-vdpau=disabled -Dgallium-xa=disabled \
    -Dgallium-nine=false -Dgallium-opencl=disabled -Dgallium-omx=disabled -Dvalgrind=disabled \
    -Dlibunwind=disabled -Dlmsensors=disabled -Dzstd=disabled -Dbuild-tests=false -Ddri3=disabled \
    -Dxlib-lease=disabled >/dev/null
  nice -n 10 ninja -C mesa-build -j "$JOBS" >ninja.log
fi
B="$WORK/mesa-build"

echo "== recorder and fake device"
cd "$REPO"
cargo xtask recorder --target host
cargo build --quiet --release --package fake-vc4
REC="$REPO/target/release/libpoolbed_recorder.so"
FAKE="$REPO/target/release/libfake_vc4.so"
SHIM="$B/src/broadcom/drm-shim/libvc4_noop_drm_shim.so"

echo "== kmscube -M $MODE -c $FRAMES, recorded"
RAW="$WORK/raw"
rm -rf "$RAW" && mkdir -p "$RAW"
printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s"}}\n' "$B/src/egl/libEGL_mesa.so.0" >"$WORK/mesa-egl.json"
# kmscube's loop ends early when stdin becomes readable: give it a FIFO that
# stays silent (opened read-write here, so it never reaches end of file).
rm -f "$WORK/silent" && mkfifo "$WORK/silent"
exec 3<>"$WORK/silent"
env \
  LD_LIBRARY_PATH="$B/src/gbm:$B/src/egl:$B/src/mapi/shared-glapi" \
  LIBGL_DRIVERS_PATH="$B/src/gallium/targets/dri" \
  __EGL_VENDOR_LIBRARY_FILENAMES="$WORK/mesa-egl.json" \
  MESA_LOADER_DRIVER_OVERRIDE=vc4 MESA_SHADER_CACHE_DISABLE=true \
  FAKE_VC4_OVER_SHIM=1 FAKE_VC4_JOB_US="$JOB_US" POOLBED_RECORD_DIR="$RAW" \
  LD_PRELOAD="$REC $FAKE $SHIM" \
  kmscube -D /dev/dri/card0 -M "$MODE" -c "$FRAMES" <&3 | tail -n 1
exec 3<&-
ls -l "$RAW"

echo "== convert, check, replay"
cargo xtask record-convert "$RAW"/kmscube-*.vc4raw --out "$OUT"
cargo xtask trace check --strict "$OUT"
cargo xtask sim --trace "$OUT" --policy all --pool-size 24MiB --out "$WORK/report"
STATS="${OUT%.log.gz}.stats.json"
python3 - "$STATS" "$REPO/traces/kmscube-rgba.stats.json" <<'PY'
import json, sys
new, old = (json.load(open(p)) for p in sys.argv[1:3])
keys = ["events", "distinct_bos", "gpu_jobs", "scanout_flips", "max_live_bytes",
        "max_live_bytes_userspace_bos", "total_created_bytes", "size_median", "user_bo_size_median", "duration_s"]
print(f"{'':32} {'recorded here':>16} {'kmscube-rgba':>16}")
for k in keys:
    print(f"{k:32} {new.get(k, '-')!s:>16} {old.get(k, '-')!s:>16}")
for k in sorted(set(new["events_by_source"]) | set(old["events_by_source"])):
    print(f"  {k:30} {new['events_by_source'].get(k, 0):>16} {old['events_by_source'].get(k, 0):>16}")
PY
