//! heaplens counts the memory its own graphs hold, so reports do not blame it on the program.
//! (A test binary of its own: the count is process-wide, and other tests build graphs.)

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags};
use heaplens_core::own;
use std::sync::Mutex;

/// The count is process-wide: the tests of this binary take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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

#[test]
fn analyses_count_in_heaplens_memory_once_computed_and_not_after() {
    use heaplens_core::analysis::Analysed;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = own::memory();
    let a = Analysed::new(graph(5_000));
    let graph_only = own::memory();
    a.paths();
    let with_paths = own::memory();
    assert!(with_paths > graph_only, "{with_paths} {graph_only}");
    a.compute_all();
    assert_eq!(own::memory(), before + a.heap_bytes() as u64);
    drop(a);
    assert_eq!(own::memory(), before);
}
