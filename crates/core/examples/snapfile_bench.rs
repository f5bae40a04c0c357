//! Measures the `.hlsnap` format on a large synthetic heap shaped like a Python one: file size
//! per (node + edge), and the time of `snapfile::save` and `snapfile::load` (and of `write` and
//! `read` in memory, to tell the disk apart).
//!
//! Not a test: timings depend on the machine, so this runs only when asked, in release mode:
//!
//! ```text
//! cargo run --release -p heaplens-core --example snapfile_bench [NODES] [DIR]
//! ```
//!
//! `NODES` defaults to ten million (about 25 million edges), `DIR` (where the file is saved) to
//! the system's temporary directory. The heap: addresses mostly increasing in 16-byte steps
//! with occasional jumps; 200 types of which a few hold most objects; leaves (str, int),
//! sequences labelled by index, dicts labelled by a few thousand keys, instances labelled by
//! their class's attributes; about 2.5 references per object, most to nearby objects (the ones
//! allocated or discovered together), the rest anywhere in the heap.

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags, NodeId};
use heaplens_core::label::Label;
use heaplens_core::snapfile;
use heaplens_core::strings::StringId;
use heaplens_core::types::TypeId;
use std::time::Instant;

const TYPES: usize = 200;
const ATTR_NAMES: usize = 300;
const DICT_KEYS: usize = 2000;

/// splitmix64: enough randomness for a synthetic heap, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Skewed towards 0: `floor(n * u^3)`, so the first few of `n` choices dominate.
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64) * u * u * u) as usize
    }
}

/// What an object's references look like, by the kind of its type.
#[derive(Clone, Copy)]
enum Shape {
    Leaf,
    Sequence,
    Dict,
    Instance,
}

fn shape_of(t: usize) -> Shape {
    match t % 8 {
        0..=2 => Shape::Leaf,
        3 => Shape::Sequence,
        4 => Shape::Dict,
        _ => Shape::Instance,
    }
}

fn build(nodes: usize) -> Graph {
    let mut rng = Rng(0x5eed);
    let mut b = GraphBuilder::with_capacity(nodes, nodes * 5 / 2);
    let types: Vec<TypeId> = (0..TYPES)
        .map(|i| b.intern_type("app.models", &format!("T{i}"), &format!("T{i}")))
        .collect();
    let attrs: Vec<StringId> = (0..ATTR_NAMES)
        .map(|i| b.strings_mut().intern(&format!("attr_{i}")))
        .collect();
    let keys: Vec<StringId> = (0..DICT_KEYS)
        .map(|i| b.strings_mut().intern(&format!("key_{i}")))
        .collect();
    let real = nodes - 1;
    let mut addr = 0x7f12_3400_0000u64;
    for _ in 0..real {
        b.add_node(addr);
        addr += if rng.chance(3) {
            16 * (1 + rng.below(1 << 16))
        } else {
            16 * (1 + rng.skewed(4) as u64)
        };
    }
    for n in 0..real as NodeId {
        let t = rng.skewed(TYPES);
        let size = if rng.below(10_000) == 0 {
            70_000 + rng.below(1 << 20)
        } else {
            16 * (1 + rng.skewed(12) as u64) + 8
        };
        let (degree, flags) = match shape_of(t) {
            Shape::Leaf => (0, NodeFlags::empty()),
            Shape::Sequence | Shape::Dict => (rng.skewed(24), NodeFlags::GC_TRACKED),
            Shape::Instance => (3 + t % 5, NodeFlags::GC_TRACKED),
        };
        b.set_node(n, types[t], size, flags);
        for i in 0..degree {
            let target = if rng.chance(60) {
                let near = n as u64 + 1 + rng.skewed(64) as u64;
                if rng.chance(30) {
                    (2 * n as u64).saturating_sub(near)
                } else {
                    near.min(real as u64 - 1)
                }
            } else {
                rng.below(real as u64)
            } as NodeId;
            let label = match shape_of(t) {
                Shape::Leaf => unreachable!("leaves have no references"),
                Shape::Sequence => Label::index(i),
                Shape::Dict => Label::key(keys[rng.skewed(DICT_KEYS)]),
                Shape::Instance => Label::attr(attrs[(t * 7 + i) % ATTR_NAMES]),
            };
            b.push_edge(target, label);
        }
        b.end_node();
    }
    b.add_root_node();
    for i in 0..100 {
        b.push_edge(rng.below(real as u64) as NodeId, Label::index(i));
    }
    b.end_node();
    b.meta_mut().python_version = "3.12.3 (main, Apr 10 2024) [GCC 13.2.0]".into();
    b.finish().expect("a valid synthetic graph")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args
        .next()
        .map(|a| a.parse().expect("NODES is a number"))
        .unwrap_or(10_000_000);
    let dir = args.next().map_or_else(std::env::temp_dir, Into::into);
    let started = Instant::now();
    let graph = build(nodes);
    let (n, e) = (graph.node_count(), graph.edge_count());
    println!(
        "graph: {n} nodes, {e} edges ({:.2} per node), built in {:.2?}",
        e as f64 / n as f64,
        started.elapsed()
    );

    // In memory first, to tell encoding and compression apart from the disk.
    let mut file = Vec::new();
    let started = Instant::now();
    snapfile::write(&graph, &mut file).expect("write");
    let write_time = started.elapsed();
    let started = Instant::now();
    let from_memory = snapfile::read(&file[..]).expect("read");
    let read_time = started.elapsed();
    drop((file, from_memory));
    println!("in memory: write {write_time:.2?}, read {read_time:.2?}");

    let path = dir.join("snapfile_bench.hlsnap");
    let started = Instant::now();
    snapfile::save(&graph, &path).expect("save");
    let save_time = started.elapsed();
    let bytes = std::fs::metadata(&path).expect("the saved file").len();

    let started = Instant::now();
    let loaded = snapfile::load(&path).expect("load");
    let load_time = started.elapsed();
    assert_eq!(loaded.node_count(), n);
    assert_eq!(loaded.edge_count(), e);
    std::fs::remove_file(&path).expect("remove the file");

    println!(
        "file: {bytes} bytes = {:.2} bytes per (node + edge)",
        bytes as f64 / (n + e) as f64
    );
    println!("save: {save_time:.2?} (including fsync)   load: {load_time:.2?}");
}
