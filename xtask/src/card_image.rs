//! The SD card image a Pi 3 boots from: an MBR partition table with one FAT32
//! partition holding the boot files, written into a plain file by this
//! process (the `fatfs` crate makes the file system; the 512-byte MBR is our
//! own), so that building it needs no `mkfs`, loop device, `mount` or root.
//! [`read_image`] takes an image apart again, for tests and for checks.
//!
//! What the Pi 3's boot ROM needs, and where each choice comes from:
//!
//! - The ROM reads `bootcode.bin` from a FAT16 or FAT32 partition of the SD
//!   card; `bootcode.bin` then loads `start.elf` and `fixup.dat`, `start.elf`
//!   reads `config.txt` and loads the kernel (Raspberry Pi documentation,
//!   "Boot sequence" / "bootflow" for the BCM2837, and "The boot folder").
//! - Partition type 0x0c (FAT32, LBA): what Raspberry Pi OS images use (pi-gen
//!   `export-image/prerun.sh`: `fdisk ... t c`). The BCM2837 ROM also boots
//!   0x0b but not 0xef (EFI system), and the ROM cannot be updated
//!   (raspberrypi/firmware issue 1711).
//! - Boot flag 0x00: pi-gen never sets it (its fdisk script has no `a`
//!   command) and those images boot, so the ROM does not need it.
//! - Start at 4 MiB (LBA 8192): pi-gen's start sector and alignment, and a
//!   common SD card allocation unit, so FAT writes do not straddle one.
//! - FAT32 with 512-byte clusters (one sector per cluster): "All Raspberry Pi
//!   OS images use FAT-32 with either 1 or 4 sectors per cluster. For maximum
//!   compatibility I would suggest using that" (a Raspberry Pi engineer,
//!   raspberrypi/firmware issue 1738); some Compute Module 3 ROMs fail on
//!   more than one sector per cluster (raspberrypi-ua-netinst pull request
//!   125). FAT32 needs at least 65525 clusters (Microsoft's FAT specification
//!   decides the FAT type by cluster count alone), i.e. 32 MiB of 512-byte
//!   clusters: the 64 MiB floor keeps the volume twice that, so no reader can
//!   take it for FAT16. The BPB is fatfs's, with its hidden-sectors field set
//!   to the partition's start as the specification asks (fatfs leaves it 0).
//! - Names: `bootcode.bin`, `start.elf`, `fixup.dat`, `config.txt`,
//!   `kernel8.img` and `command.bin` are all valid 8.3 names, so each short
//!   (8.3) entry carries the exact name in upper case (`BOOTCODEBIN`) and a
//!   reader that knows only short names, as the ROM may, finds it. fatfs
//!   also writes a long-name (VFAT) entry before every short one, as Linux
//!   does for lower-case names since `shortname=mixed` became its default
//!   (kernel commit 955234755ce4); pi-gen copies the boot files onto such a
//!   mount, so Raspberry Pi OS cards carry the same pairs. Short-name-only
//!   readers skip the long-name entries (attribute 0x0F). [`write_image`]
//!   refuses names that are not 8.3, where the short name would be a
//!   generated `NAME~1` the firmware never asks for.
//!
//! Timestamps are the FAT epoch and the serial numbers derive from the
//! content, so the same files always give the same image, byte for byte.

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes in a sector: SD cards address 512-byte blocks, and the MBR and the
/// FAT32 BPB are built on that.
pub const SECTOR_BYTES: u64 = 512;
/// Where the FAT32 partition starts: 4 MiB.
pub const PARTITION_START_LBA: u32 = 8192;
/// MBR partition type: FAT32 addressed by LBA.
pub const PARTITION_TYPE_FAT32_LBA: u8 = 0x0c;
/// The smallest partition written, whatever the content (see the module docs).
pub const MIN_PARTITION_BYTES: u64 = 64 << 20;
/// A boot partition larger than this means something went wrong upstream;
/// it would also be held in memory whole while it is written.
pub const MAX_PARTITION_BYTES: u64 = 1 << 30;
/// Partitions are sized in whole 4 MiB units, like the start, so the image
/// ends on an allocation-unit boundary.
const PARTITION_ALIGN_BYTES: u64 = 4 << 20;
const CLUSTER_BYTES: u32 = 512;
/// The disk geometry fdisk assumes, used in the MBR's CHS fields and in the
/// BPB's matching fields (only INT 13h-era code reads either).
const CHS_HEADS: u32 = 255;
const CHS_SECTORS: u32 = 63;
/// Volume label, padded to the 11 bytes of the BPB field.
const VOLUME_LABEL: [u8; 11] = *b"POOLBED    ";
/// Offset of BPB_HiddSec in the FAT boot sector, and of BPB_BkBootSec (the
/// backup boot sector's sector number, FAT32 only).
const BPB_HIDDEN_SECTORS: usize = 28;
const BPB_BACKUP_BOOT_SECTOR: usize = 50;
/// The MBR layout: a 4-byte disk signature, then four 16-byte partition
/// entries, then 0x55 0xAA.
const MBR_DISK_SIGNATURE: usize = 440;
const MBR_PARTITION_TABLE: usize = 446;
const MBR_ENTRY_BYTES: usize = 16;
const MBR_BOOT_SIGNATURE: [u8; 2] = [0x55, 0xaa];

/// Where the partition went and how the file system is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLayout {
    pub partition_start_lba: u32,
    pub partition_sectors: u32,
    pub cluster_bytes: u32,
}

impl ImageLayout {
    /// The image file's length: the gap before the partition, then the
    /// partition to the end.
    pub fn image_bytes(&self) -> u64 {
        (u64::from(self.partition_start_lba) + u64::from(self.partition_sectors)) * SECTOR_BYTES
    }
}

/// Writes `path`: an MBR with one FAT32 partition (type 0x0c, at LBA 8192)
/// holding `files` (name, content) in its root directory. The file appears
/// whole or not at all: it is written beside `path` and renamed into place.
pub fn write_image(path: &Path, files: &[(&str, &[u8])]) -> Result<ImageLayout> {
    check_names(files)?;
    let partition_bytes = partition_bytes_for(files)?;
    let layout = ImageLayout {
        partition_start_lba: PARTITION_START_LBA,
        partition_sectors: u32::try_from(partition_bytes / SECTOR_BYTES)
            .context("partition too large for an MBR")?,
        cluster_bytes: CLUSTER_BYTES,
    };
    let serials = content_serials(files);
    let partition = fat32_volume(partition_bytes, files, serials.volume_id)?;
    let mbr = master_boot_record(
        serials.disk_signature,
        layout.partition_start_lba,
        layout.partition_sectors,
    );

    let file_name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut partial_name = file_name.to_os_string();
    partial_name.push(".partial");
    let partial = path.with_file_name(partial_name);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if let Err(error) = write_sparse(&partial, &mbr, &layout, &partition) {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(|| format!("writing {}", partial.display()));
    }
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    Ok(layout)
}

/// Writes `files` into `dir` (made if missing), for copying onto a card that
/// already has a FAT partition, and removes each of `obsolete` that is there
/// and not among `files` (a `command.bin` left by an earlier build). Other
/// files in `dir` are left alone.
pub fn write_boot_dir(dir: &Path, files: &[(&str, &[u8])], obsolete: &[&str]) -> Result<()> {
    check_names(files)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in files {
        let to = dir.join(name);
        std::fs::write(&to, bytes).with_context(|| format!("writing {}", to.display()))?;
    }
    for name in obsolete {
        if files
            .iter()
            .any(|(kept, _)| kept.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let stale = dir.join(name);
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("removing {}", stale.display()))
            }
        }
    }
    Ok(())
}

/// The partition size for `files`: twice what they take in clusters, so a
/// kernel8.img twice the size, or files added by hand, still fit on a card
/// made from this image without re-imaging it; at least 64 MiB (see the
/// module docs); whole 4 MiB units.
pub fn partition_bytes_for(files: &[(&str, &[u8])]) -> Result<u64> {
    partition_bytes_for_lengths(files.iter().map(|(_, bytes)| bytes.len() as u64))
}

fn partition_bytes_for_lengths(lengths: impl Iterator<Item = u64>) -> Result<u64> {
    let cluster = u64::from(CLUSTER_BYTES);
    let content: u64 = lengths.map(|len| len.div_ceil(cluster) * cluster).sum();
    let wanted = (2 * content)
        .max(MIN_PARTITION_BYTES)
        .div_ceil(PARTITION_ALIGN_BYTES)
        * PARTITION_ALIGN_BYTES;
    ensure!(
        wanted <= MAX_PARTITION_BYTES,
        "the boot files take {} MiB; a boot partition of {} MiB is more than the {} MiB allowed",
        content >> 20,
        wanted >> 20,
        MAX_PARTITION_BYTES >> 20
    );
    Ok(wanted)
}

/// An 8.3 name: 1 to 8 characters, optionally a dot and 1 to 3 more, from
/// the characters FAT short names allow (letters, digits, `_-!#$%&'()@^`{}~`).
fn is_short_name(name: &str) -> bool {
    fn part_ok(part: &str, max: usize) -> bool {
        (1..=max).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-!#$%&'()@^`{}~".contains(&b))
    }
    match name.split_once('.') {
        Some((base, ext)) => part_ok(base, 8) && part_ok(ext, 3),
        None => part_ok(name, 8),
    }
}

fn check_names(files: &[(&str, &[u8])]) -> Result<()> {
    for (i, (name, _)) in files.iter().enumerate() {
        ensure!(
            is_short_name(name),
            "`{name}` is not an 8.3 file name; the Pi's boot firmware looks files up by their \
             8.3 names"
        );
        if files[..i]
            .iter()
            .any(|(earlier, _)| earlier.eq_ignore_ascii_case(name))
        {
            bail!("`{name}` is given twice (FAT names ignore case)");
        }
    }
    Ok(())
}

struct Serials {
    disk_signature: u32,
    volume_id: u32,
}

/// The MBR disk signature and the FAT volume id: both should differ between
/// cards (Linux names partitions by the first, as PARTUUID), and both should
/// be the same for the same content, so they are taken from its hash.
fn content_serials(files: &[(&str, &[u8])]) -> Serials {
    let mut hash = Sha256::new();
    for (name, bytes) in files {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    let digest = hash.finalize();
    let word =
        |i: usize| u32::from_le_bytes([digest[i], digest[i + 1], digest[i + 2], digest[i + 3]]);
    Serials {
        disk_signature: word(0),
        volume_id: word(4),
    }
}

/// Directory entry times: the FAT epoch (1980-01-01 00:00), a valid date
/// that keeps images reproducible.
#[derive(Debug)]
struct FatEpoch;

impl fatfs::TimeProvider for FatEpoch {
    fn get_current_date(&self) -> fatfs::Date {
        fatfs::Date {
            year: 1980,
            month: 1,
            day: 1,
        }
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: self.get_current_date(),
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FAT_EPOCH: FatEpoch = FatEpoch;

/// The partition's bytes: a FAT32 volume with `files` in its root directory.
fn fat32_volume(bytes: u64, files: &[(&str, &[u8])], volume_id: u32) -> Result<Vec<u8>> {
    let mut volume = vec![0u8; usize::try_from(bytes).context("partition size")?];
    fatfs::format_volume(
        Cursor::new(&mut volume[..]),
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .bytes_per_cluster(CLUSTER_BYTES)
            .sectors_per_track(CHS_SECTORS as u16)
            .heads(CHS_HEADS as u16)
            .volume_id(volume_id)
            .volume_label(VOLUME_LABEL),
    )
    .context("formatting the FAT32 partition")?;
    {
        let fs = fatfs::FileSystem::new(
            Cursor::new(&mut volume[..]),
            fatfs::FsOptions::new().time_provider(&FAT_EPOCH),
        )
        .context("opening the new FAT32 partition")?;
        for (name, content) in files {
            let mut file = fs
                .root_dir()
                .create_file(name)
                .with_context(|| format!("creating {name} in the FAT32 partition"))?;
            file.write_all(content)
                .with_context(|| format!("writing {name} into the FAT32 partition"))?;
            file.flush()?;
        }
        // Counting the free clusters fills in FSInfo's free count, which
        // unmount writes; left unknown (0xFFFFFFFF, allowed), fsck.fat
        // mentions it and every reader has to count for itself.
        fs.stats()?;
        fs.unmount().context("closing the FAT32 partition")?;
    }
    set_hidden_sectors(&mut volume, PARTITION_START_LBA)?;
    Ok(volume)
}

/// BPB_HiddSec is "the count of hidden sectors preceding the partition that
/// contains this FAT volume" (Microsoft's FAT specification); set it in the
/// boot sector and in its FAT32 backup copy.
fn set_hidden_sectors(volume: &mut [u8], hidden: u32) -> Result<()> {
    let sector = SECTOR_BYTES as usize;
    let backup = usize::from(u16::from_le_bytes([
        volume[BPB_BACKUP_BOOT_SECTOR],
        volume[BPB_BACKUP_BOOT_SECTOR + 1],
    ]));
    ensure!(
        backup != 0 && (backup + 1) * sector <= volume.len(),
        "the FAT32 boot sector names no backup boot sector"
    );
    for boot_sector in [0, backup * sector] {
        let at = boot_sector + BPB_HIDDEN_SECTORS;
        volume[at..at + 4].copy_from_slice(&hidden.to_le_bytes());
    }
    Ok(())
}

/// A classic MBR: no boot code, `disk_signature`, one partition entry, the
/// 0x55AA signature.
fn master_boot_record(disk_signature: u32, start_lba: u32, sectors: u32) -> [u8; 512] {
    let mut mbr = [0u8; 512];
    mbr[MBR_DISK_SIGNATURE..MBR_DISK_SIGNATURE + 4].copy_from_slice(&disk_signature.to_le_bytes());
    let entry = &mut mbr[MBR_PARTITION_TABLE..MBR_PARTITION_TABLE + MBR_ENTRY_BYTES];
    entry[0] = 0x00; // not active: see the module docs
    entry[1..4].copy_from_slice(&chs(start_lba));
    entry[4] = PARTITION_TYPE_FAT32_LBA;
    entry[5..8].copy_from_slice(&chs(start_lba + sectors - 1));
    entry[8..12].copy_from_slice(&start_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    mbr[510..512].copy_from_slice(&MBR_BOOT_SIGNATURE);
    mbr
}

/// The cylinder/head/sector address of `lba` in the 255-head, 63-sector
/// geometry fdisk assumes, as the MBR packs it (head; sector in bits 0-5
/// with cylinder bits 8-9 above; cylinder bits 0-7). Past cylinder 1023 it
/// saturates to 1023/254/63, the "use LBA" marker. Only pre-LBA BIOSes read
/// these fields, but partitioning tools check them against the LBA fields.
fn chs(lba: u32) -> [u8; 3] {
    const HEADS: u32 = CHS_HEADS;
    const SECTORS: u32 = CHS_SECTORS;
    let cylinder = lba / (HEADS * SECTORS);
    let (cylinder, head, sector) = if cylinder > 1023 {
        (1023, 254, 63)
    } else {
        (cylinder, (lba / SECTORS) % HEADS, lba % SECTORS + 1)
    };
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        cylinder as u8,
    ]
}

/// Writes the image leaving all-zero stretches as holes: a fresh file reads
/// zeros there, and the mostly empty partition costs little disk and time.
fn write_sparse(
    path: &Path,
    mbr: &[u8; 512],
    layout: &ImageLayout,
    partition: &[u8],
) -> Result<()> {
    const CHUNK: usize = 64 << 10;
    let mut file = std::fs::File::create(path)?;
    file.write_all(mbr)?;
    let start = u64::from(layout.partition_start_lba) * SECTOR_BYTES;
    for (i, chunk) in partition.chunks(CHUNK).enumerate() {
        if chunk.iter().any(|&b| b != 0) {
            file.seek(SeekFrom::Start(start + (i * CHUNK) as u64))?;
            file.write_all(chunk)?;
        }
    }
    file.set_len(layout.image_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// One entry of an MBR partition table, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrPartition {
    pub boot_flag: u8,
    pub partition_type: u8,
    pub start_lba: u32,
    pub sectors: u32,
}

impl MbrPartition {
    pub fn is_empty(&self) -> bool {
        self.partition_type == 0 && self.sectors == 0
    }
}

/// A file in the image's FAT root directory, as read back.
#[derive(Debug, Clone)]
pub struct ImageFile {
    /// The name as written (the long name where there is one).
    pub name: String,
    /// The 8.3 name in the short entry, as the ROM sees it (`BOOTCODE.BIN`).
    pub short_name: String,
    pub bytes: Vec<u8>,
}

/// What [`read_image`] found in an image.
#[derive(Debug, Clone)]
pub struct ImageContents {
    pub image_bytes: u64,
    pub disk_signature: u32,
    pub partitions: [MbrPartition; 4],
    pub fat_type: fatfs::FatType,
    pub cluster_bytes: u32,
    pub total_clusters: u32,
    pub hidden_sectors: u32,
    pub volume_label: String,
    pub files: Vec<ImageFile>,
}

/// Reads an image back: its MBR (the 0x55AA signature checked), and the FAT
/// file system of its first partition with every root directory file's
/// bytes. Errors where the table is missing or points outside the file.
pub fn read_image(path: &Path) -> Result<ImageContents> {
    let mut image = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut image))
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        image.len() >= 512,
        "{} is shorter than an MBR",
        path.display()
    );
    ensure!(
        image[510..512] == MBR_BOOT_SIGNATURE,
        "{} has no MBR (no 0x55AA signature)",
        path.display()
    );
    let disk_signature = u32::from_le_bytes(
        image[MBR_DISK_SIGNATURE..MBR_DISK_SIGNATURE + 4]
            .try_into()
            .expect("four bytes"),
    );
    let partitions: [MbrPartition; 4] = std::array::from_fn(|i| {
        let at = MBR_PARTITION_TABLE + i * MBR_ENTRY_BYTES;
        let e = &image[at..at + MBR_ENTRY_BYTES];
        MbrPartition {
            boot_flag: e[0],
            partition_type: e[4],
            start_lba: u32::from_le_bytes(e[8..12].try_into().expect("four bytes")),
            sectors: u32::from_le_bytes(e[12..16].try_into().expect("four bytes")),
        }
    });
    let first = partitions[0];
    ensure!(
        !first.is_empty(),
        "{}: the first partition entry is empty",
        path.display()
    );
    let start = u64::from(first.start_lba) * SECTOR_BYTES;
    let end = start + u64::from(first.sectors) * SECTOR_BYTES;
    ensure!(
        end <= image.len() as u64 && first.start_lba > 0,
        "{}: partition 1 (sectors {}..{}) lies outside the {}-byte file",
        path.display(),
        first.start_lba,
        u64::from(first.start_lba) + u64::from(first.sectors),
        image.len()
    );
    let image_bytes = image.len() as u64;
    let volume = &mut image[start as usize..end as usize];
    let hidden_sectors = u32::from_le_bytes(
        volume[BPB_HIDDEN_SECTORS..BPB_HIDDEN_SECTORS + 4]
            .try_into()
            .expect("four bytes"),
    );
    let fs = fatfs::FileSystem::new(Cursor::new(volume), fatfs::FsOptions::new())
        .with_context(|| format!("{}: partition 1 holds no FAT file system", path.display()))?;
    let stats = fs.stats()?;
    let mut files = Vec::new();
    for entry in fs.root_dir().iter() {
        let entry = entry?;
        if !entry.is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        entry.to_file().read_to_end(&mut bytes)?;
        files.push(ImageFile {
            name: entry.file_name(),
            short_name: entry.short_file_name(),
            bytes,
        });
    }
    Ok(ImageContents {
        image_bytes,
        disk_signature,
        partitions,
        fat_type: fs.fat_type(),
        cluster_bytes: stats.cluster_size(),
        total_clusters: stats.total_clusters(),
        hidden_sectors,
        volume_label: fs.volume_label(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset and between files, so a misplaced
    /// cluster or a swapped file shows.
    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }

    /// The six files of a poolbed card, with sizes that cross cluster edges.
    fn card_files() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("bootcode.bin", pattern(52_460, 1)),
            ("start.elf", pattern(2_973_536, 2)),
            ("fixup.dat", pattern(7_262, 3)),
            ("config.txt", b"arm_64bit=1\nkernel=kernel8.img\n".to_vec()),
            ("kernel8.img", pattern(512 * 700, 4)),
            ("command.bin", pattern(8, 5)),
        ]
    }

    fn as_refs<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
        files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
    }

    #[test]
    fn every_file_reads_back_byte_identical_from_fat32() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        let files = card_files();
        let layout = write_image(&path, &as_refs(&files)).unwrap();
        let image = read_image(&path).unwrap();

        assert_eq!(image.fat_type, fatfs::FatType::Fat32);
        assert_eq!(image.cluster_bytes, 512);
        assert!(
            image.total_clusters >= 65_525,
            "{} clusters",
            image.total_clusters
        );
        assert_eq!(image.hidden_sectors, PARTITION_START_LBA);
        assert_eq!(image.volume_label, "POOLBED");
        assert_eq!(image.files.len(), files.len());
        for (name, bytes) in &files {
            let found = image
                .files
                .iter()
                .find(|f| f.name == *name)
                .unwrap_or_else(|| panic!("{name} missing from the image"));
            assert_eq!(found.short_name, name.to_ascii_uppercase(), "{name}");
            assert!(found.bytes == *bytes, "{name} differs after the round trip");
        }
        assert_eq!(layout.image_bytes(), image.image_bytes);
    }

    #[test]
    fn the_partition_table_is_one_fat32_lba_partition_from_4_mib_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        write_image(&path, &as_refs(&card_files())).unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(&raw[510..512], &[0x55, 0xaa]);
        let image = read_image(&path).unwrap();
        let [first, rest @ ..] = image.partitions;
        assert_eq!(first.boot_flag, 0x00);
        assert_eq!(first.partition_type, 0x0c);
        assert_eq!(first.start_lba, 8192);
        assert_eq!(u64::from(first.sectors), raw.len() as u64 / 512 - 8192);
        assert!(u64::from(first.sectors) * 512 >= MIN_PARTITION_BYTES);
        assert_eq!(raw.len() as u64 % (4 << 20), 0);
        assert!(rest.iter().all(|p| p.is_empty() && p.boot_flag == 0));
        // The FAT boot sector sits where the table says, with its own 0x55AA.
        let boot = 8192 * 512;
        assert_eq!(&raw[boot + 510..boot + 512], &[0x55, 0xaa]);
        assert_eq!(&raw[boot + 82..boot + 90], b"FAT32   ");
        // CHS fields as fdisk writes them for this geometry.
        assert_eq!(&raw[447..450], &chs(8192));
        assert_eq!(chs(8192), [130, 3, 0]);
        assert_ne!(image.disk_signature, 0);
    }

    #[test]
    fn chs_saturates_past_cylinder_1023() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(63 * 255), [0, 1, 1]);
        assert_eq!(chs(1024 * 255 * 63 - 1), [254, 63 | 0xc0, 0xff]);
        assert_eq!(chs(1024 * 255 * 63), [254, 0xff, 0xff]);
        assert_eq!(chs(u32::MAX), [254, 0xff, 0xff]);
    }

    #[test]
    fn the_same_files_give_the_same_image_and_other_files_another_signature() {
        let dir = tempfile::tempdir().unwrap();
        let files = card_files();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        write_image(&a, &as_refs(&files)).unwrap();
        write_image(&b, &as_refs(&files)).unwrap();
        assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
        let mut other = files.clone();
        other[3].1 = b"arm_64bit=1\n".to_vec();
        write_image(&c, &as_refs(&other)).unwrap();
        assert_ne!(
            read_image(&a).unwrap().disk_signature,
            read_image(&c).unwrap().disk_signature
        );
        assert!(!dir.path().join("a.partial").exists());
    }

    #[test]
    fn the_partition_grows_with_the_content_in_4_mib_steps() {
        let size = |lengths: &[u64]| partition_bytes_for_lengths(lengths.iter().copied()).unwrap();
        assert_eq!(size(&[]), 64 << 20);
        assert_eq!(size(&[3 << 20, 52_460]), 64 << 20);
        assert_eq!(size(&[40 << 20]), 80 << 20);
        assert_eq!(size(&[(40 << 20) + 1]), 84 << 20);
        let too_big = partition_bytes_for_lengths([600 << 20].into_iter()).unwrap_err();
        assert!(
            too_big.to_string().contains("more than the 1024 MiB"),
            "{too_big}"
        );
    }

    #[test]
    fn a_large_kernel_still_fits_in_the_grown_partition() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.img");
        let kernel = pattern(40 << 20, 9);
        let layout = write_image(&path, &[("kernel8.img", &kernel)]).unwrap();
        assert_eq!(u64::from(layout.partition_sectors) * 512, 80 << 20);
        let image = read_image(&path).unwrap();
        assert!(image.files[0].bytes == kernel);
    }

    #[test]
    fn names_that_are_not_8_3_or_repeat_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        for bad in [
            "kernel8.image",
            "overlong1.bin",
            "two words.txt",
            "",
            ".txt",
            "a.b.c",
        ] {
            let error = write_image(&path, &[(bad, b"x")]).unwrap_err();
            assert!(error.to_string().contains("not an 8.3"), "{bad}: {error}");
        }
        let error = write_image(&path, &[("config.txt", b"a"), ("CONFIG.TXT", b"b")]).unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
        assert!(!path.exists());
        assert!(
            is_short_name("kernel8.img") && is_short_name("README") && is_short_name("a_b-c.~1")
        );
    }

    #[test]
    fn a_file_without_a_valid_table_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        write_image(&path, &[("config.txt", b"x")]).unwrap();
        let mut raw = std::fs::read(&path).unwrap();

        raw[511] = 0;
        std::fs::write(&path, &raw).unwrap();
        let error = read_image(&path).unwrap_err();
        assert!(error.to_string().contains("no MBR"), "{error}");

        raw[511] = 0xaa;
        raw.truncate(raw.len() - 512);
        std::fs::write(&path, &raw).unwrap();
        let error = read_image(&path).unwrap_err();
        assert!(error.to_string().contains("outside"), "{error}");
    }

    #[test]
    fn the_boot_dir_gets_the_files_and_loses_only_the_obsolete_ones() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("command.bin"), b"old").unwrap();
        std::fs::write(boot.join("cmdline.txt"), b"mine").unwrap();
        let files = card_files();
        let kept: Vec<_> = as_refs(&files)
            .into_iter()
            .filter(|(n, _)| *n != "command.bin")
            .collect();
        write_boot_dir(&boot, &kept, &["command.bin", "config.txt"]).unwrap();
        for (name, bytes) in &kept {
            assert!(std::fs::read(boot.join(name)).unwrap() == *bytes, "{name}");
        }
        assert!(!boot.join("command.bin").exists());
        assert_eq!(std::fs::read(boot.join("cmdline.txt")).unwrap(), b"mine");
    }

    /// A second opinion from another FAT implementation: mtools reads the
    /// partition in place (`IMAGE@@OFFSET`) and fsck.fat checks it. Needs
    /// `apt-get install mtools dosfstools`; run with `--ignored`.
    #[test]
    #[ignore = "needs mtools and dosfstools installed"]
    fn mtools_and_fsck_fat_agree() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        let files = card_files();
        write_image(&path, &as_refs(&files)).unwrap();
        let at = format!("{}@@{}", path.display(), 8192 * 512);
        let listing = Command::new("mdir")
            .args(["-i", &at, "-b", "::/"])
            .output()
            .expect("mdir (mtools) is not installed");
        assert!(
            listing.status.success(),
            "{}",
            String::from_utf8_lossy(&listing.stderr)
        );
        let listing = String::from_utf8_lossy(&listing.stdout);
        for (name, bytes) in &files {
            assert!(
                listing.contains(name),
                "mdir does not list {name}:\n{listing}"
            );
            let out = dir.path().join(format!("out-{name}"));
            let status = Command::new("mcopy")
                .args(["-n", "-i", &at, &format!("::/{name}")])
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "mcopy {name}");
            assert!(
                std::fs::read(&out).unwrap() == *bytes,
                "mcopy's {name} differs"
            );
        }
        let raw = std::fs::read(&path).unwrap();
        let partition = dir.path().join("partition.fat");
        std::fs::write(&partition, &raw[8192 * 512..]).unwrap();
        let fsck = Command::new("fsck.fat")
            .args(["-n", "-v"])
            .arg(&partition)
            .output()
            .expect("fsck.fat (dosfstools) is not installed");
        let report = String::from_utf8_lossy(&fsck.stdout);
        assert!(
            fsck.status.success(),
            "fsck.fat:\n{report}{}",
            String::from_utf8_lossy(&fsck.stderr)
        );
        assert!(report.contains("512 bytes per cluster"), "{report}");
        assert!(report.contains("8192 hidden sectors"), "{report}");
        assert!(!report.contains("uninitialized"), "{report}");
    }

    /// Prints how long a card image takes to build and read back; no
    /// assertion on time. `cargo test -p xtask --release image_build_time -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn image_build_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        let files = card_files();
        for round in 0..3 {
            let start = std::time::Instant::now();
            let layout = write_image(&path, &as_refs(&files)).unwrap();
            let written = start.elapsed();
            read_image(&path).unwrap();
            let on_disk =
                std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap()) * 512;
            println!(
                "round {round}: {} MiB image ({} MiB of files, {} MiB on disk) written in {:.0} ms, \
                 read back in {:.0} ms",
                layout.image_bytes() >> 20,
                files.iter().map(|(_, b)| b.len()).sum::<usize>() >> 20,
                on_disk >> 20,
                written.as_secs_f64() * 1e3,
                (start.elapsed() - written).as_secs_f64() * 1e3
            );
        }
    }
}
