//! What the fuzz targets check about a snapshot file, shared by the target that mutates whole
//! files and the one that mutates decompressed bodies.

use heaplens_core::graph::{Graph, NodeId};
use heaplens_core::snapfile;
use heaplens_core::Error;

/// The memory a graph read here may take: the reader's floor, under which no file is held to
/// its 10,000-times bound (so the round trip below reads back what it wrote). The crafted seeds
/// (600 million nodes in 146 KB) are refused at once under it, rather than decoding hundreds
/// of megabytes of zeros per run under the sanitizer before the reader's own bound stops them.
const MEMORY_LIMIT: u64 = 64 << 20;

/// Reads `file`. Bad bytes must be a format error (nothing else can fail when reading from
/// memory); a graph that reads must be safe to walk, and must write and read back unchanged.
pub fn check_graph(file: &[u8]) {
    let graph = match snapfile::read_limited(file, MEMORY_LIMIT) {
        Ok(graph) => graph,
        Err(Error::Format { .. } | Error::Version { .. }) => return,
        Err(e) => panic!("reading from memory failed with something else than bad data: {e:?}"),
    };
    let described = describe(&graph);
    let mut again = Vec::new();
    match snapfile::write(&graph, &mut again) {
        Ok(()) => {}
        // The writer puts its own producer in the header, which can push metadata that was
        // just under the header's limit over it.
        Err(Error::TooLarge { .. }) => return,
        Err(e) => panic!("a graph that was read does not write: {e}"),
    }
    let reread = snapfile::read(&again[..]).expect("a file we wrote reads back");
    assert_eq!(
        describe(&reread),
        described,
        "the graph changed on a round trip"
    );
}

/// Everything a user of the graph can see, as text (which also exercises every accessor).
fn describe(graph: &Graph) -> Vec<String> {
    let mut lines = vec![format!(
        "{} nodes, {} edges, root {}, python {:?}, pid {}, at {}",
        graph.node_count(),
        graph.edge_count(),
        graph.root(),
        graph.meta().python_version,
        graph.meta().pid,
        graph.meta().taken_at_ms,
    )];
    for n in 0..graph.node_count() as NodeId {
        lines.push(format!(
            "{n}: {:#x} {} {} {:?} {:?}",
            graph.addr(n),
            graph.type_name(n),
            graph.size(n),
            graph.flags(n).names(),
            graph.name(n),
        ));
        for (target, label) in graph.edges(n) {
            lines.push(format!(
                "  -> {target} {} (a {})",
                graph.describe_label(label),
                graph.type_name(target)
            ));
        }
    }
    lines
}
