//! Fuzzes the `.hlsnap` reader with arbitrary bytes: they must give a graph or an error, never
//! a panic, a hang or an allocation the input does not pay for; a graph that reads must be safe
//! to use and survive a round trip (see [`heaplens_fuzz::check_graph`]).
//!
//! Run from this directory (cargo-fuzz needs nightly features; `RUSTC_BOOTSTRAP=1` unlocks them
//! on a stable toolchain), seeding the corpus with the golden files:
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run snapshot_reader corpus/snapshot_reader ../tests/data seeds/snapshot_reader -- -max_total_time=600
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| heaplens_fuzz::check_graph(data));
