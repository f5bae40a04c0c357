//! Times the Chrome DevTools export on a synthetic heap and reports its size and extra memory.
//!
//! `cargo run --release -p heaplens-core --example chrome_bench -- [NODES] [OUT]`
//! (default 10,000,000 nodes with 2.5 edges each, written to a byte counter; give OUT, a file
//! path, to include the cost of writing it). Extra memory is the peak RSS during the export over
//! the RSS before it (Linux: the peak is reset through `/proc/self/clear_refs`).

use heaplens_core::graph::{Graph, GraphBuilder, NodeFlags};
use heaplens_core::label::Label;
use heaplens_core::render::chrome::write_heapsnapshot;
use std::io::Write;
use std::time::Instant;

/// A heap shaped like a web app's: objects of 50 types in two address regions, attributes from
/// a few dozen names, a million distinct dict keys, list items; modules and thread stacks as roots.
fn heap(nodes: u64) -> Graph {
    let mut b = GraphBuilder::with_capacity(nodes as usize + 300, (nodes * 5 / 2) as usize);
    let builtins = ["dict", "list", "str", "int", "tuple", "function", "module"];
    let mut types: Vec<_> = builtins
        .iter()
        .map(|n| b.intern_type("builtins", n, n))
        .collect();
    for i in 0..43 {
        let name = format!("Model{i}");
        types.push(b.intern_type("app.models", &name, &name));
    }
    let attrs: Vec<_> = (0..40)
        .map(|i| b.strings_mut().intern(&format!("attr_{i}")))
        .collect();
    let keys: Vec<_> = (0..1_000_000)
        .map(|i| b.strings_mut().intern(&format!("key-{i}")))
        .collect();
    // Objects in pymalloc arenas (mmap, high) and in the brk heap (low), 16-byte aligned.
    let addr = |i: u64| {
        if i % 10 == 0 {
            0x5555_5600_0000 + (i / 10) * 64
        } else {
            0x7f3a_0000_0000 + i * 48
        }
    };
    for i in 0..nodes {
        b.add_node(addr(i));
    }
    let mut threads = Vec::new();
    for t in 0..10 {
        let thread = b.add_synthetic("(thread)", &format!("worker-{t}"), NodeFlags::THREAD);
        for f in 0..20 {
            let name = format!("handle_{f} (app/views.py:{})", 10 + f);
            b.add_synthetic("(frame)", &name, NodeFlags::FRAME);
        }
        threads.push(thread);
    }
    let root = b.add_root_node();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..nodes {
        let t = types[(i % types.len() as u64) as usize];
        let mut flags = NodeFlags::GC_TRACKED;
        if i % 7 == 0 && i < 7000 {
            flags |= NodeFlags::MODULE;
        }
        b.set_node(i as u32, t, 16 + (i % 200) * 8, flags);
        let edges = 2 + (i % 2);
        for e in 0..edges {
            let target = (next() % nodes) as u32;
            let label = match (i + e) % 5 {
                0 | 1 => Label::attr(attrs[(next() % 40) as usize]),
                2 => Label::key(keys[(next() % keys.len() as u64) as usize]),
                3 => Label::index(e as usize),
                _ => Label::field(attrs[0]),
            };
            b.push_edge(target, label);
        }
        b.end_node();
    }
    let local = b.strings_mut().intern("request");
    for &thread in &threads {
        for depth in 0..20 {
            b.push_edge(thread + 1 + depth, Label::frame(depth as usize));
        }
        b.end_node();
        for _ in 0..20 {
            b.push_edge((next() % nodes) as u32, Label::local(local));
            b.end_node();
        }
    }
    let module = b.strings_mut().intern("sys.modules['app']");
    for m in (0..7000.min(nodes as u32)).step_by(7) {
        b.push_edge(m, Label::root(module));
    }
    let thread_root = b.strings_mut().intern("thread 'worker'");
    for &thread in &threads {
        b.push_edge(thread, Label::root(thread_root));
    }
    b.end_node();
    debug_assert_eq!(root as usize, b.node_count() - 1);
    let mut g = b.finish().expect("the synthetic heap is consistent");
    // As capture does; random references leave some objects unreachable.
    heaplens_core::reach::mark_unreachable(&mut g);
    g
}

fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let out = args.next();
    let t = Instant::now();
    let g = heap(nodes);
    println!(
        "built {} nodes, {} edges, {} strings in {:.2?}",
        g.node_count(),
        g.edge_count(),
        g.strings().len(),
        t.elapsed()
    );
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status("VmRSS:");
    let t = Instant::now();
    let bytes = match &out {
        Some(path) => {
            let file = std::fs::File::create(path).expect("the output file can be created");
            write_heapsnapshot(&g, file).expect("export");
            std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        }
        None => {
            let mut c = Counter(0);
            write_heapsnapshot(&g, &mut c).expect("export");
            c.0
        }
    };
    let elapsed = t.elapsed();
    let peak = status("VmHWM:");
    println!(
        "export: {:.2?}, {} bytes ({:.1} bytes/node, {:.0} MB/s), extra peak RSS {} KiB",
        elapsed,
        bytes,
        bytes as f64 / g.node_count() as f64,
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        peak.saturating_sub(rss_before)
    );
}
