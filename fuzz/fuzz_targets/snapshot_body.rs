//! Fuzzes the decoding of a `.hlsnap` body: the input is taken as the decompressed body and
//! wrapped in a valid header and a checksummed zstd frame before it is read. The reader target
//! (`snapshot_reader`) cannot get there on its own: zstd's content checksum rejects nearly every
//! mutated body, and being C code it gives the fuzzer no comparisons to learn the checksum from.
//! The properties are the reader target's: a graph or an error, never a panic, and a graph that
//! reads is safe to use and survives a round trip.
//!
//! Run from this directory, seeded with the body of the golden file:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run snapshot_body corpus/snapshot_body seeds/snapshot_body -- -max_total_time=600
//! ```

#![no_main]

use heaplens_core::graph::GraphBuilder;
use heaplens_core::snapfile;
use heaplens_fuzz::check_graph;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::sync::OnceLock;

fuzz_target!(|body: &[u8]| {
    let mut file = header().to_vec();
    let mut compressor = zstd::Encoder::new(&mut file, 1).expect("a zstd encoder");
    compressor
        .include_checksum(true)
        .expect("the checksum flag");
    compressor.write_all(body).expect("compression into memory");
    compressor.finish().expect("compression into memory");
    check_graph(&file);
});

/// The header of a file heaplens writes: everything before its zstd frame.
fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let mut file = Vec::new();
        let graph = GraphBuilder::new().finish().expect("an empty graph");
        snapfile::write(&graph, &mut file).expect("writing into memory");
        let fields = u32::from_le_bytes(file[12..16].try_into().expect("4 bytes")) as usize;
        file.truncate(16 + fields + 4);
        file
    })
}
