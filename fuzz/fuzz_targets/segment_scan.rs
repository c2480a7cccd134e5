//! The record decoder and segment scan on arbitrary bytes written as a segment file:
//! `Segment::open`, `scan`, `scan_beyond` and iterating the records must never panic, read out
//! of bounds or disagree with each other.
//!
//! Input: a flags byte (which checksums to repair after mutation, see `vault_fuzz`), then the
//! segment file's bytes.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use vault_segment::{segment_file_name, Access, Activation, FsStorage, Segment, DATA_OFFSET};

thread_local! {
    static DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, image)) = data.split_first() else {
        return;
    };
    let mut image = image.to_vec();
    // The name's index is 3, or 7 with flag 0x80; flag 0x40 writes it into the header too.
    let index = if flags & 0x80 != 0 { 7 } else { 3 };
    vault_fuzz::repair_segment(&mut image, flags, (flags & 0x40 != 0).then_some(index));
    let dir = DIR.with(|d| {
        d.borrow_mut()
            .get_or_insert_with(|| vault_fuzz::scratch_dir("scan"))
            .clone()
    });
    let path = dir.join(segment_file_name(0, index, false));
    std::fs::write(&path, &image).expect("write the segment file");
    if let Ok(seg) = Segment::open(&FsStorage, &path, index, Access::Read) {
        assert!(seg.limit() <= image.len());
        let scan = seg.scan();
        assert!(
            scan.end >= DATA_OFFSET && scan.end <= seg.limit(),
            "{scan:?}"
        );
        let beyond = seg.scan_beyond(scan.end);
        assert!(beyond.dirty_end >= scan.end && beyond.dirty_end <= seg.limit());
        if let Some(tail) = image.get(beyond.dirty_end..seg.limit()) {
            assert!(tail.iter().all(|&b| b == 0), "non-zero byte past dirty_end");
        }
        // Looking from anywhere must be safe too.
        for from in [
            0,
            1,
            63,
            64,
            127,
            seg.limit() - 1,
            seg.limit(),
            seg.limit() + 8,
        ] {
            let b = seg.scan_beyond(from);
            assert!(b.dirty_end <= seg.limit());
        }
        let records: Vec<_> = seg.records_from(0).collect();
        match scan.activation {
            Activation::Valid(first) => {
                assert_eq!(records.len() as u64, scan.records);
                assert_eq!(scan.next_lsn, first + scan.records);
                for (i, r) in records.iter().enumerate() {
                    assert_eq!(r.lsn(), first + i as u64);
                    assert!(r.offset() + r.data().len() <= scan.end);
                    // The payload the iterator returns is the bytes in the file.
                    assert_eq!(r.data(), &image[r.offset()..r.offset() + r.data().len()]);
                }
                assert!(scan.attested < scan.next_lsn.max(1));
            }
            Activation::Missing | Activation::Invalid => {
                assert!(records.is_empty());
                assert_eq!(scan.records, 0);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
});
