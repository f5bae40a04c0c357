//! heaplens counts the memory its own graphs hold, so reports do not blame it on the program.
//! (A test binary of its own: the count is process-wide, and other tests build graphs.)

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags};
use heaplens_core::own;

fn graph(nodes: u64) -> Graph {
    let mut b = GraphBuilder::new();
    let t = b.intern_type("builtins", "dict", "dict");
    for i in 0..nodes {
        let n = b.add_node(0x1000 + i * 0x40);
        b.set_node(n, t, 64, NodeFlags::GC_TRACKED);
        b.end_node();
    }
    b.finish().unwrap()
}

#[test]
fn graphs_count_in_heaplens_memory_while_they_live() {
    let before = own::memory();
    let g = graph(10_000);
    let held = g.heap_bytes() as u64;
    assert!(held >= 10_000 * 14, "{held}");
    assert_eq!(own::memory(), before + held);
    // Taken apart (to be written or rebuilt), the arrays are no longer a graph's.
    let parts = g.into_parts();
    assert_eq!(own::memory(), before);
    let again = Graph::from_parts(parts).unwrap();
    assert_eq!(own::memory(), before + again.heap_bytes() as u64);
    drop(again);
    assert_eq!(own::memory(), before);
}
