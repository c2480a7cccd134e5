//! The direct path's region on files whose length is not a whole number of direct-I/O blocks
//! (a segment vault sized is whole pages; a copied, truncated or foreign file may not be).

mod common;

use vault_segment::{Access, FsStorage, IoPath, Region, Storage};

fn store(region: &dyn Region, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= region.len());
    // SAFETY: the region is writable memory of at least `offset + bytes.len()` bytes that
    // nothing else in this test reads or writes concurrently.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), region.as_ptr().add(offset), bytes.len());
    }
}

#[test]
fn a_sync_reaching_a_short_last_block_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    if !common::direct_io_in(dir.path(), "a_sync_reaching_a_short_last_block_writes_it") {
        return;
    }
    // 8 KiB and 100 bytes: two whole blocks and a short one.
    let len = 8192 + 100;
    let path = dir.path().join("odd-length");
    std::fs::write(&path, vec![0u8; len]).unwrap();
    let region = FsStorage.map(&path, Access::Write(IoPath::Direct)).unwrap();
    assert_eq!(region.len(), len);
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
    store(&*region, 0, &bytes);
    region.sync(0, len).unwrap();
    // A sync of the short block alone, too.
    store(&*region, len - 10, &[0xEE; 10]);
    region.sync(len - 10, 10).unwrap();
    let mut want = bytes;
    want[len - 10..].fill(0xEE);
    assert_eq!(std::fs::read(&path).unwrap(), want);
}
