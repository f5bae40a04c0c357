//! A picture as Graphviz DOT text, for users who lay it out with Graphviz or feed it to other
//! tools. Marks follow the SVG's palette; each node's label is its lines joined by `\n`.
//!
//! Escaping: DOT strings are double-quoted, and Graphviz expands backslash escapes in labels
//! (`\N` is the node's name, `\G` the graph's), so every backslash and quote is escaped; text has
//! been made one visible line by [`super::text::clean`], so no raw newline or control character
//! reaches the file. `extra_node_attrs` keys and values are quoted the same way, so they cannot
//! open a new statement.

use super::svg::palette;
use super::{text, NodeKind, Picture};
use std::fmt::Write;

/// `text` as the inside of a DOT double-quoted string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The picture as a DOT digraph (top to bottom, referrers above referents).
pub fn write(picture: &Picture) -> String {
    let mut out = String::new();
    out.push_str("digraph heaplens {\n");
    let font = quote(text::FAMILY);
    let _ = writeln!(out, "  graph [rankdir=TB, fontname={font}];");
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fontname={font}, fontsize=11];"
    );
    let _ = writeln!(
        out,
        "  edge [fontname={font}, fontsize=9, color=\"#50596a\"];"
    );
    for (i, node) in picture.nodes.iter().enumerate() {
        let lines: Vec<String> = node.lines().into_iter().map(|(t, _)| t).collect();
        let (fill, stroke, width, title) = palette(node.kind);
        let _ = write!(
            out,
            "  n{i} [label={}, fillcolor=\"{fill}\", color=\"{stroke}\", penwidth={width}, \
             fontcolor=\"{title}\", class=\"{}\"",
            quote(&lines.join("\n")),
            node.kind.name()
        );
        if node.kind == NodeKind::Elided {
            out.push_str(", style=\"rounded,filled,dashed\"");
        }
        for (k, v) in &node.dot_attrs {
            let _ = write!(
                out,
                ", {}={}",
                quote(&text::clean(k, 200)),
                quote(&text::clean(v, 2000))
            );
        }
        out.push_str("];\n");
    }
    for e in &picture.edges {
        let _ = write!(out, "  n{} -> n{}", e.from, e.to);
        let label = e.clean_label();
        let mut attrs = Vec::new();
        if !label.is_empty() {
            attrs.push(format!("label={}", quote(&label)));
        }
        if e.elided {
            attrs.push("style=dotted, color=\"#9e9e9e\"".to_string());
        }
        if !attrs.is_empty() {
            let _ = write!(out, " [{}]", attrs.join(", "));
        }
        out.push_str(";\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::picture::{Edge, Node};

    #[test]
    fn nodes_edges_labels_and_marks_are_written() {
        let mut target = Node::new("Order", "<Order 1>", "56 B", NodeKind::Target);
        target
            .dot_attrs
            .push(("URL".into(), "https://example.invalid/1".into()));
        let picture = Picture {
            nodes: vec![
                Node::new("dict", "1 items", "232 B", NodeKind::Root),
                target,
            ],
            edges: vec![Edge::new(0, 1, "via its 'k' key")],
        };
        let dot = write(&picture);
        assert!(dot.starts_with("digraph heaplens {\n"));
        assert!(dot.trim_end().ends_with('}'));
        assert!(dot.contains("n0 [label=\"dict\\n1 items\\n232 B\""));
        assert!(dot.contains("class=\"target\""));
        assert!(dot.contains("n0 -> n1 [label=\"via its 'k' key\"];"));
        assert!(dot.contains("\"URL\"=\"https://example.invalid/1\""));
    }

    #[test]
    fn hostile_text_cannot_escape_its_string() {
        let evil = "a\"]; n9 -> n9; x [label=\"\\N\\G\n\0";
        let mut node = Node::new(evil, evil, "", NodeKind::Normal);
        node.dot_attrs.push((evil.into(), evil.into()));
        let picture = Picture {
            nodes: vec![node],
            edges: vec![Edge::new(0, 0, evil)],
        };
        let dot = write(&picture);
        assert!(!dot.contains("n9 -> n9;\n"), "{dot}");
        assert!(!dot.contains('\0'));
        // Only the statements heaplens wrote end a line: graph, node, edge, one node, one edge.
        assert_eq!(dot.lines().count(), 7, "{dot}");
        for line in dot.lines().skip(1) {
            // Quotes balance once escaped ones are dropped.
            let unescaped = line.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
        }
        assert!(dot.contains(r"\\N\\G\\n\\x00"));
    }
}
