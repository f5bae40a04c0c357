//! Pictures of a few objects and the references between them (objgraph's `show_refs`,
//! `show_backrefs` and `show_chain`), drawn in-process: DOT text, SVG and PNG, with no Graphviz.
//!
//! The input is plain data, a [`Picture`]: boxes with a title (the type), a short repr and a note
//! (the size), each of a [`NodeKind`] (the objects asked about, roots, highlighted objects), and
//! labelled references between them. [`neighbourhood`] picks that subgraph out of a snapshot the
//! way objgraph does (breadth first, `max_depth`, `too_many`, a filter); the caller adds the
//! reprs, which only the live objects can give.
//!
//! Design:
//! - [`layout`] is a layered (Sugiyama) layout written for these pictures rather than taken from
//!   a crate: every edge label is a box of its own in a layer between the edge's ends, so no label
//!   can overlap another label or a node and each sits on its edge; text is measured with the
//!   bundled font ([`text`]), so boxes fit their text. (`layout-rs` measures text as a character
//!   count times the font size, asserts on the inputs it dislikes and places labels without
//!   checking them against each other.)
//! - [`svg`] writes the layout; [`png`] renders that same SVG with `resvg`, loading only the
//!   bundled fonts and no external resource, so PNG and SVG agree and need nothing installed.
//!   [`dot`] writes DOT text for Graphviz users; it needs no layout.
//! - Every string is hostile (reprs are chosen by whoever controls the objects): [`text::clean`]
//!   makes it one visible line of bounded length, and each writer escapes it for its format.
//!
//! Not here: deciding what a node's repr is (the Python layer asks the live object) and running
//! Graphviz (the Python layer does, when asked to).
//!
//! ```
//! use heaplens_core::render::picture::{render, Edge, Format, Node, NodeKind, Picture};
//! let picture = Picture {
//!     nodes: vec![
//!         Node::new("module", "app", "72 B", NodeKind::Root),
//!         Node::new("dict", "3 items", "232 B", NodeKind::Normal),
//!         Node::new("Order", "<Order 42>", "56 B", NodeKind::Target),
//!     ],
//!     edges: vec![
//!         Edge::new(0, 1, "via its .__dict__"),
//!         Edge::new(1, 2, "via its 'k42' key"),
//!     ],
//! };
//! let svg = String::from_utf8(render(&picture, Format::Svg).unwrap()).unwrap();
//! assert!(svg.contains("via its &apos;k42&apos; key"));
//! let png = render(&picture, Format::Png).unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```

pub mod dot;
pub mod layout;
mod neighbourhood;
pub mod png;
pub mod svg;
pub mod text;

pub use neighbourhood::{
    edge_label, is_root, neighbourhood, node_text, Direction, Neighbourhood, Options,
};

use crate::error::{Error, Result};

/// What a node stands for, which decides how it is marked (in every format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NodeKind {
    #[default]
    Normal,
    /// An object the picture was asked about (objgraph draws these in red).
    Target,
    /// A root: a module in `sys.modules`, a thread's stack or one of its frames.
    Root,
    /// An object the caller's `highlight` predicate picked.
    Highlighted,
    /// Not an object: "N more references" that `too_many` left out.
    Elided,
}

impl NodeKind {
    /// The name used in SVG classes and by the Python layer.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Normal => "normal",
            NodeKind::Target => "target",
            NodeKind::Root => "root",
            NodeKind::Highlighted => "highlighted",
            NodeKind::Elided => "elided",
        }
    }

    /// The kind `name` names (see [`NodeKind::name`]).
    pub fn from_name(name: &str) -> Option<NodeKind> {
        [
            NodeKind::Normal,
            NodeKind::Target,
            NodeKind::Root,
            NodeKind::Highlighted,
            NodeKind::Elided,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// One box: up to three lines of text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// The first line, in bold: the type (`dict`, `app.Order`, `frame`).
    pub title: String,
    /// A short repr (`3 items`, `'abc…'`, `run (app.py:12)`); may be empty.
    pub text: String,
    /// A note in grey: the size, and whatever the caller adds; may be empty.
    pub note: String,
    pub kind: NodeKind,
    /// Where the caller would rather see the node when a cycle leaves the choice, smaller
    /// higher: the walk's depth for `show_refs`, minus it for `show_backrefs`, so a referrer
    /// stays above what it refers to.
    pub level: i32,
    /// Extra Graphviz attributes (objgraph's `extra_node_attrs`), written to DOT only.
    pub dot_attrs: Vec<(String, String)>,
}

impl Node {
    pub fn new(title: &str, text: &str, note: &str, kind: NodeKind) -> Node {
        Node {
            title: title.to_string(),
            text: text.to_string(),
            note: note.to_string(),
            kind,
            level: 0,
            dot_attrs: Vec::new(),
        }
    }

    /// The node's lines as drawn: cleaned, empty ones left out, the title first.
    pub(crate) fn lines(&self) -> Vec<(String, LineStyle)> {
        [
            (&self.title, LineStyle::Title),
            (&self.text, LineStyle::Text),
            (&self.note, LineStyle::Note),
        ]
        .into_iter()
        .filter(|(s, _)| !s.is_empty())
        .map(|(s, style)| (text::clean(s, text::MAX_CHARS), style))
        .collect()
    }
}

/// How a line of a node is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineStyle {
    Title,
    Text,
    Note,
}

impl LineStyle {
    /// Font size in pixels.
    pub fn size(self) -> f64 {
        match self {
            LineStyle::Title => 13.0,
            LineStyle::Text => 12.0,
            LineStyle::Note => 11.0,
        }
    }

    pub fn bold(self) -> bool {
        self == LineStyle::Title
    }
}

/// A reference: `from` refers to `to`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// How it refers (`via its 'cache' key`, `[3]`, `local 'x'`); may be empty.
    pub label: String,
    /// The dotted edge to an [`NodeKind::Elided`] node, rather than a reference.
    pub elided: bool,
}

impl Edge {
    pub fn new(from: usize, to: usize, label: &str) -> Edge {
        Edge {
            from,
            to,
            label: label.to_string(),
            elided: false,
        }
    }

    /// The edge's label as drawn.
    pub(crate) fn clean_label(&self) -> String {
        text::clean(&self.label, text::MAX_CHARS)
    }
}

/// What to draw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Picture {
    /// An error unless every edge joins two nodes of the picture.
    pub fn check(&self) -> Result<()> {
        let n = self.nodes.len();
        match self.edges.iter().find(|e| e.from >= n || e.to >= n) {
            Some(e) => Err(Error::Picture(format!(
                "an edge joins node {} to node {}, but the picture has {n} nodes",
                e.from, e.to
            ))),
            None => Ok(()),
        }
    }
}

/// The file formats a picture is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Graphviz's DOT text.
    Dot,
    Svg,
    Png,
}

impl Format {
    /// The format `name` names: `dot`, `svg` or `png`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "dot" => Some(Format::Dot),
            "svg" => Some(Format::Svg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// The picture as a file of `format`: UTF-8 text for DOT and SVG, PNG bytes.
pub fn render(picture: &Picture, format: Format) -> Result<Vec<u8>> {
    picture.check()?;
    match format {
        Format::Dot => Ok(dot::write(picture).into_bytes()),
        Format::Svg => Ok(svg::write(&layout::layout(picture)?).into_bytes()),
        Format::Png => png::write(&svg::write(&layout::layout(picture)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_to_a_missing_node_is_an_error_not_a_panic() {
        let picture = Picture {
            nodes: vec![Node::new("a", "", "", NodeKind::Normal)],
            edges: vec![Edge::new(0, 3, "x")],
        };
        for format in [Format::Dot, Format::Svg, Format::Png] {
            assert!(matches!(render(&picture, format), Err(Error::Picture(_))));
        }
    }

    #[test]
    fn node_kinds_round_trip_through_their_names() {
        for k in [
            NodeKind::Normal,
            NodeKind::Target,
            NodeKind::Root,
            NodeKind::Highlighted,
            NodeKind::Elided,
        ] {
            assert_eq!(NodeKind::from_name(k.name()), Some(k));
        }
        assert_eq!(NodeKind::from_name("other"), None);
    }
}
