use super::*;
use alloc::vec;

fn samples() -> Vec<Body> {
    vec![
        Body::Open {
            flags: 2,
            path: b"/dev/dri/card0".to_vec(),
        },
        Body::Close,
        Body::Dup,
        Body::CreateBo {
            size: 5000,
            flags: 0,
            handle: 3,
        },
        Body::CreateShaderBo {
            size: 64,
            flags: 0,
            handle: 4,
        },
        Body::GemClose { handle: 3 },
        Body::MmapBo {
            handle: 3,
            offset: 0x1_0000_0000,
        },
        Body::Mmap {
            addr: 0x7f00_0000_0000,
            len: 8192,
            offset: 0x1000,
            prot: 3,
            flags: 1,
            handle: 3,
        },
        Body::Munmap {
            addr: 0x7f00_0000_0000,
            len: 8192,
        },
        Body::Madvise {
            handle: 3,
            madv: 1,
            retained: 1,
        },
        Body::SubmitCl(Submit {
            seqno: 7,
            bin_cl_size: 100,
            max_x_tile: 29,
            max_y_tile: 16,
            surfaces: [Surface {
                hindex: u32::MAX,
                ..Surface::default()
            }; 6],
            bo_handle_count: 3,
            handles: vec![3, 4, 9],
            ..Submit::default()
        }),
        Body::WaitSeqno {
            seqno: 7,
            timeout_ns: u64::MAX,
            start_ns: 5,
        },
        Body::WaitBo {
            handle: 3,
            timeout_ns: 0,
            start_ns: 6,
        },
        Body::PrimeExport {
            handle: 3,
            flags: 0x80000,
            dmabuf_fd: 9,
            inode: 1234,
        },
        Body::PrimeImport {
            dmabuf_fd: 9,
            handle: 3,
            inode: 1234,
        },
        Body::AddFb {
            fb_id: 40,
            width: 1920,
            height: 1080,
            pixel_format: 0x34325258,
            handles: [3, 0, 0, 0],
        },
        Body::RmFb { fb_id: 40 },
        Body::SetCrtc {
            crtc_id: 31,
            fb_id: 40,
        },
        Body::PageFlip {
            crtc_id: 31,
            fb_id: 40,
            flags: 1,
            user_data: 0xdead,
        },
        Body::FlipEvent {
            event_type: 2,
            crtc_id: 31,
            sequence: 9,
            tv_sec: 100,
            tv_usec: 5,
            user_data: 0xdead,
        },
        Body::Touch {
            handle: 3,
            map_addr: 0x7f00_0000_0000,
            fault_addr: 0x7f00_0000_0010,
        },
        Body::CreateDumb {
            handle: 5,
            width: 64,
            height: 64,
            bpp: 32,
            size: 16384,
        },
        Body::DestroyDumb { handle: 5 },
        Body::Exit,
        Body::Note {
            text: b"stopped".to_vec(),
        },
    ]
}

#[test]
fn every_kind_round_trips() {
    let header = Header {
        version: VERSION,
        flags: FLAG_TOUCH,
        pid: 42,
        ppid: 1,
        comm: "kmscube".into(),
        exe: "kmscube".into(),
        page_size: 4096,
        pointer_bits: 64,
        ..Header::default()
    };
    let mut bytes = header.encode().to_vec();
    let records: Vec<Record> = samples()
        .into_iter()
        .enumerate()
        .map(|(i, body)| Record {
            time_ns: 1000 + i as u64,
            fd: 3,
            result: if i == 4 { -22 } else { 0 },
            body,
        })
        .collect();
    for r in &records {
        bytes.extend(r.encode());
    }
    let file = parse(&bytes).unwrap();
    assert_eq!(file.header, header);
    assert_eq!(file.records, records);
    assert_eq!(file.truncated_tail, 0);
    let kinds: Vec<u16> = records.iter().map(|r| r.body.kind()).collect();
    assert_eq!(kinds, (1..=25).collect::<Vec<u16>>());
}

#[test]
fn a_torn_last_record_is_reported_and_unknown_kinds_are_skipped() {
    let header = Header::default();
    let mut bytes = header.encode().to_vec();
    let mut unknown = Record {
        time_ns: 1,
        fd: 3,
        result: 0,
        body: Body::RmFb { fb_id: 1 },
    }
    .encode();
    unknown[0] = 200;
    bytes.extend(unknown);
    let good = Record {
        time_ns: 2,
        fd: 3,
        result: 0,
        body: Body::GemClose { handle: 1 },
    };
    bytes.extend(good.encode());
    let torn = Record {
        time_ns: 3,
        fd: 3,
        result: 0,
        body: Body::GemClose { handle: 2 },
    }
    .encode();
    bytes.extend(&torn[..torn.len() - 1]);
    let file = parse(&bytes).unwrap();
    assert_eq!(file.records, vec![good]);
    assert_eq!(file.unknown_records, 1);
    assert_eq!(file.truncated_tail, torn.len() - 1);
}

#[test]
fn bad_files_are_refused() {
    assert_eq!(parse(b"hello"), Err(RawError::NotRaw));
    let mut bytes = Header::default().encode().to_vec();
    bytes[8] = 9;
    assert_eq!(parse(&bytes), Err(RawError::Version(9)));
    let mut bytes = Header::default().encode().to_vec();
    let mut rec = Record {
        time_ns: 1,
        fd: 3,
        result: 0,
        body: Body::GemClose { handle: 1 },
    }
    .encode();
    rec[4] = 30; // longer than a gem_close body
    rec.extend([0u8; 6]);
    bytes.extend(rec);
    assert!(matches!(
        parse(&bytes),
        Err(RawError::BadRecord { kind: 6, .. })
    ));
}

#[test]
fn encode_into_a_short_buffer_fails_cleanly() {
    let r = Record {
        time_ns: 1,
        fd: 3,
        result: 0,
        body: Body::Touch {
            handle: 1,
            map_addr: 2,
            fault_addr: 3,
        },
    };
    let mut small = [0u8; 30];
    assert_eq!(r.encode_into(&mut small), None);
    let mut buf = [0u8; 64];
    assert_eq!(r.encode_into(&mut buf), Some(48));
}
