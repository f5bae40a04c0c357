//! A layered (Sugiyama) layout for pictures of a few hundred objects at most, top to bottom:
//! a reference points down unless it closes a cycle.
//!
//! The steps are the classic ones, each kept simple and deterministic:
//! 1. **Cycles**: only references within a strongly connected component (Tarjan) may point up.
//!    Inside one, nodes are ordered by where the caller wants them ([`super::Node::level`]: the
//!    walk's depth, so a referrer stays above what it refers to, and a class above its
//!    `__dict__`), then by the greedy heuristic of Eades, Lin and Smyth (sources first, sinks
//!    last, then the node with the most outgoing minus incoming references). The references
//!    that then point up are drawn with their arrow at the top.
//! 2. **Ranks**: longest path from the sources, then each node moved, while its references allow,
//!    to the median of where its neighbours want it (short edges, a leaf right next to its parent).
//! 3. **Layers**: rank `r` is layer `2r`; the odd layers between hold the edge labels. Every edge
//!    becomes a chain with one element per layer it crosses, and its label is the element in the
//!    middle odd layer. A label is thus a box the layout keeps apart from every other box, and the
//!    edge runs through its centre: no label overlaps another or a node, none drifts off its edge.
//! 4. **Order** within layers: barycentre sweeps down and up, keeping the order with the fewest
//!    crossings (counted exactly, with a Fenwick tree), then swaps of neighbours that remove
//!    crossings.
//! 5. **Coordinates**: each sweep moves every element towards the weighted mean of its neighbours
//!    in the adjacent layer, subject to the minimum gaps of its layer. That is an isotonic
//!    regression, solved exactly by pool-adjacent-violators; chains of dummies weigh more, and a
//!    last pass lines up each long edge's bends where their layers leave room, so long edges run
//!    straight.
//! 6. **Routes**: within a layer an edge runs vertically through its element; between layers it is
//!    a cubic curve with vertical tangents. Nothing but edges lives between layers, so an edge
//!    never crosses a box. Edges leave and enter a node at ports spread along its side, ordered
//!    like their other ends.
//!
//! Self-references (a list that contains itself) are a loop on the node's right, with the label
//! beside it; the node's element is widened to hold them.

use super::text;
use super::{Edge, LineStyle, NodeKind, Picture};
use crate::error::Result;

/// Padding inside a node box.
const PAD_X: f64 = 9.0;
const PAD_Y: f64 = 6.0;
/// Horizontal gap between two boxes of a layer, and next to an edge passing through it.
const NODE_GAP: f64 = 26.0;
const EDGE_GAP: f64 = 12.0;
/// Least vertical room for the curves between two layers.
const LAYER_GAP: f64 = 22.0;
/// Space left around the picture.
pub const MARGIN: f64 = 16.0;
/// Edge labels: font size and padding of their box.
pub const LABEL_SIZE: f64 = 11.0;
const LABEL_PAD_X: f64 = 4.0;
const LABEL_PAD_Y: f64 = 2.0;
/// Arrowheads.
pub const ARROW_LENGTH: f64 = 8.0;
pub const ARROW_WIDTH: f64 = 7.0;
/// The space a self-loop takes right of its node before its label.
const LOOP_REACH: f64 = 28.0;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }
}

/// A rectangle by its top-left corner and size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn centre(&self) -> Point {
        Point::new(self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    pub fn right(&self) -> f64 {
        self.x + self.w
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.h
    }

    /// Whether the two rectangles share more than an edge.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }
}

/// One line of text, centred on `x`, with its baseline at `baseline`.
#[derive(Clone, Debug, PartialEq)]
pub struct TextLine {
    pub text: String,
    pub style: LineStyle,
    pub x: f64,
    pub baseline: f64,
    /// The measured width of the text.
    pub width: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeBox {
    pub rect: Rect,
    pub kind: NodeKind,
    pub lines: Vec<TextLine>,
}

/// A piece of an edge's path, from where the previous one ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Segment {
    Line(Point),
    Cubic(Point, Point, Point),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LabelBox {
    pub rect: Rect,
    pub line: TextLine,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EdgeRoute {
    /// The picture's edge this route draws.
    pub from: usize,
    pub to: usize,
    pub start: Point,
    pub segments: Vec<Segment>,
    /// Where the arrowhead's tip is and the unit vector it points along.
    pub arrow_tip: Point,
    pub arrow_dir: Point,
    pub label: Option<LabelBox>,
    pub elided: bool,
}

impl EdgeRoute {
    /// Points along the path, every piece cut into `steps` (for hit tests and checks).
    pub fn sample(&self, steps: usize) -> Vec<Point> {
        let mut out = vec![self.start];
        let mut at = self.start;
        for s in &self.segments {
            match *s {
                Segment::Line(p) => {
                    for i in 1..=steps {
                        let t = i as f64 / steps as f64;
                        out.push(Point::new(at.x + (p.x - at.x) * t, at.y + (p.y - at.y) * t));
                    }
                    at = p;
                }
                Segment::Cubic(c1, c2, p) => {
                    for i in 1..=steps {
                        let t = i as f64 / steps as f64;
                        let u = 1.0 - t;
                        let x = u * u * u * at.x
                            + 3.0 * u * u * t * c1.x
                            + 3.0 * u * t * t * c2.x
                            + t * t * t * p.x;
                        let y = u * u * u * at.y
                            + 3.0 * u * u * t * c1.y
                            + 3.0 * u * t * t * c2.y
                            + t * t * t * p.y;
                        out.push(Point::new(x, y));
                    }
                    at = p;
                }
            }
        }
        out.push(self.arrow_tip);
        out
    }
}

/// Where everything of a picture goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// One per node of the picture, in its order.
    pub nodes: Vec<NodeBox>,
    /// One per edge of the picture, in its order.
    pub edges: Vec<EdgeRoute>,
}

/// A node's box, measured: its size and its lines relative to its top-left corner.
fn measure_node(node: &super::Node) -> (f64, f64, Vec<TextLine>) {
    let mut lines = Vec::new();
    let mut y = PAD_Y;
    let mut width: f64 = 30.0;
    for (text, style) in node.lines() {
        let w = text::width(&text, style.size(), style.bold());
        let line_height = style.size() * 1.3;
        // The baseline sits at about 80% of the line box for DejaVu Sans.
        lines.push(TextLine {
            text,
            style,
            x: 0.0,
            baseline: y + line_height * 0.78,
            width: w,
        });
        y += line_height;
        width = width.max(w);
    }
    let w = (width + 2.0 * PAD_X).ceil();
    let h = (y + PAD_Y).max(2.0 * PAD_Y + 12.0).ceil();
    for l in &mut lines {
        l.x = w / 2.0;
    }
    (w, h, lines)
}

/// A label's box size and its text's width.
fn measure_label(label: &str) -> (f64, f64, f64) {
    let w = text::width(label, LABEL_SIZE, false);
    (
        (w + 2.0 * LABEL_PAD_X).ceil(),
        (LABEL_SIZE * 1.25 + 2.0 * LABEL_PAD_Y).ceil(),
        w,
    )
}

/// What an element of a layer is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum What {
    Node,
    /// The label of a chain.
    Label,
    /// A bend point of a chain.
    Pass,
}

#[derive(Clone, Debug)]
struct Elem {
    layer: usize,
    /// Extent left and right of the element's x.
    left: f64,
    right: f64,
    height: f64,
    what: What,
    /// Elements in the layer above and below it is joined to, with weights.
    up: Vec<(usize, f64)>,
    down: Vec<(usize, f64)>,
}

/// An edge as laid out: elements from the upper end to the lower end.
struct Chain {
    edge: usize,
    elems: Vec<usize>,
    /// The edge points up (its arrow is at the upper end).
    reversed: bool,
}

/// Lays `picture` out. Errors only on an inconsistent picture (see [`Picture::check`]).
pub fn layout(picture: &Picture) -> Result<Layout> {
    picture.check()?;
    let n = picture.nodes.len();
    let measured: Vec<(f64, f64, Vec<TextLine>)> = picture.nodes.iter().map(measure_node).collect();
    let labels: Vec<String> = picture.edges.iter().map(Edge::clean_label).collect();

    // Self-loops, one per node: their labels joined.
    let mut loops: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut others: Vec<usize> = Vec::new();
    for (i, e) in picture.edges.iter().enumerate() {
        if e.from == e.to {
            loops[e.from].push(i);
        } else {
            others.push(i);
        }
    }
    let loop_labels: Vec<String> = loops
        .iter()
        .map(|l| {
            let texts: Vec<&str> = l
                .iter()
                .map(|&i| labels[i].as_str())
                .filter(|s| !s.is_empty())
                .collect();
            text::clean(&texts.join(", "), text::MAX_CHARS)
        })
        .collect();

    let order = break_cycles(picture, &others);
    let mut position = vec![0usize; n];
    for (p, &v) in order.iter().enumerate() {
        position[v] = p;
    }
    // Edges as the layout sees them: (upper, lower, reversed).
    let dag: Vec<(usize, usize, bool)> = others
        .iter()
        .map(|&i| {
            let e = &picture.edges[i];
            if position[e.from] < position[e.to] {
                (e.from, e.to, false)
            } else {
                (e.to, e.from, true)
            }
        })
        .collect();
    let rank = assign_ranks(n, &order, &dag);
    let layers_count = rank.iter().max().map_or(1, |&r| 2 * r + 1);

    // Elements: the nodes, then the chains' elements.
    let mut elems: Vec<Elem> = (0..n)
        .map(|v| {
            let w = measured[v].0;
            let loop_width = if loops[v].is_empty() {
                0.0
            } else {
                LOOP_REACH + measure_label(&loop_labels[v]).0
            };
            Elem {
                layer: 2 * rank[v],
                left: w / 2.0,
                right: w / 2.0 + loop_width,
                height: measured[v].1,
                what: What::Node,
                up: Vec::new(),
                down: Vec::new(),
            }
        })
        .collect();
    let mut chains: Vec<Chain> = Vec::new();
    for (k, &(upper, lower, reversed)) in dag.iter().enumerate() {
        let edge = others[k];
        let (top, bottom) = (2 * rank[upper], 2 * rank[lower]);
        let span = (bottom - top) / 2;
        let label_layer = top + 1 + 2 * ((span - 1) / 2);
        let mut ids = vec![upper];
        for layer in top + 1..bottom {
            let label = &labels[edge];
            let (what, half, height) = if layer == label_layer && !label.is_empty() {
                let (w, h, _) = measure_label(label);
                (What::Label, w / 2.0, h)
            } else {
                (What::Pass, 0.0, 0.0)
            };
            ids.push(elems.len());
            elems.push(Elem {
                layer,
                left: half,
                right: half,
                height,
                what,
                up: Vec::new(),
                down: Vec::new(),
            });
        }
        ids.push(lower);
        for pair in ids.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let dummies = [a, b].iter().filter(|&&x| x >= n).count();
            let weight = [1.0, 2.0, 8.0][dummies];
            elems[a].down.push((b, weight));
            elems[b].up.push((a, weight));
        }
        chains.push(Chain {
            edge,
            elems: ids,
            reversed,
        });
    }

    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_count];
    for v in &order {
        layers[elems[*v].layer].push(*v);
    }
    for (i, e) in elems.iter().enumerate().skip(n) {
        layers[e.layer].push(i);
    }
    order_layers(&elems, &mut layers);
    let mut x = assign_x(&elems, &layers);
    let bends: Vec<Vec<usize>> = chains
        .iter()
        .map(|c| c.elems[1..c.elems.len() - 1].to_vec())
        .collect();
    straighten(&elems, &layers, &bends, &mut x);
    let (layer_top, layer_height) = assign_y(&elems, &layers, &x);

    // Boxes.
    let mut nodes: Vec<NodeBox> = Vec::with_capacity(n);
    for v in 0..n {
        let (w, h, lines) = &measured[v];
        let rect = Rect {
            x: x[v] - w / 2.0,
            y: layer_top[elems[v].layer],
            w: *w,
            h: *h,
        };
        let lines = lines
            .iter()
            .map(|l| TextLine {
                x: rect.x + l.x,
                baseline: rect.y + l.baseline,
                ..l.clone()
            })
            .collect();
        nodes.push(NodeBox {
            rect,
            kind: picture.nodes[v].kind,
            lines,
        });
    }

    let (out_port, in_port) = ports(&chains, &x, &nodes);
    let bands = Bands {
        top: layer_top,
        height: layer_height,
    };
    let mut routes: Vec<Option<EdgeRoute>> = vec![None; picture.edges.len()];
    for (c, chain) in chains.iter().enumerate() {
        let e = &picture.edges[chain.edge];
        let ends = (out_port[c], in_port[c]);
        let route = chain_route(
            chain,
            e,
            ends,
            &labels[chain.edge],
            &elems,
            &x,
            &nodes,
            &bands,
        );
        routes[chain.edge] = Some(route);
    }
    for (v, list) in loops.iter().enumerate() {
        for (k, &i) in list.iter().enumerate() {
            // One loop per node carries the labels of all of them.
            let label = (k == 0 && !loop_labels[v].is_empty()).then_some(loop_labels[v].as_str());
            routes[i] = Some(loop_route(v, nodes[v].rect, label, picture.edges[i].elided));
        }
    }
    let edges: Vec<EdgeRoute> = routes.into_iter().flatten().collect();
    Ok(normalise(nodes, edges))
}

/// The top and height of each layer.
struct Bands {
    top: Vec<f64>,
    height: Vec<f64>,
}

impl Bands {
    fn bottom(&self, layer: usize) -> f64 {
        self.top[layer] + self.height[layer]
    }
}

/// A label's box, centred on `(x, cy)` horizontally and vertically.
fn label_box(text: &str, x: f64, cy: f64) -> LabelBox {
    let (w, h, tw) = measure_label(text);
    LabelBox {
        rect: Rect {
            x: x - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
        },
        line: TextLine {
            text: text.to_string(),
            style: LineStyle::Text,
            x,
            baseline: cy + LABEL_SIZE * 0.36,
            width: tw,
        },
    }
}

/// Where each chain leaves its upper node and enters its lower one: spread along the node's
/// side in the order of the chains' other ends, so edges fan out instead of sharing one point.
fn ports(chains: &[Chain], x: &[f64], nodes: &[NodeBox]) -> (Vec<f64>, Vec<f64>) {
    let mut down: Vec<Vec<(f64, usize)>> = vec![Vec::new(); nodes.len()];
    let mut up: Vec<Vec<(f64, usize)>> = vec![Vec::new(); nodes.len()];
    for (c, chain) in chains.iter().enumerate() {
        let k = chain.elems.len();
        down[chain.elems[0]].push((x[chain.elems[1]], c));
        up[chain.elems[k - 1]].push((x[chain.elems[k - 2]], c));
    }
    let mut out_port = vec![0.0; chains.len()];
    let mut in_port = vec![0.0; chains.len()];
    for (v, node) in nodes.iter().enumerate() {
        let centre = node.rect.centre().x;
        for (list, ports) in [(&mut down[v], &mut out_port), (&mut up[v], &mut in_port)] {
            list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let k = list.len() as f64;
            let spacing = ((node.rect.w - 12.0) / k.max(1.0)).clamp(0.0, 14.0);
            for (i, &(_, c)) in list.iter().enumerate() {
                ports[c] = centre + (i as f64 - (k - 1.0) / 2.0) * spacing;
            }
        }
    }
    (out_port, in_port)
}

/// The path of an edge laid out as a chain: vertical through each layer it crosses, a curve
/// between layers, the arrowhead at the end the reference points to.
#[allow(clippy::too_many_arguments)]
fn chain_route(
    chain: &Chain,
    edge: &Edge,
    (out_port, in_port): (f64, f64),
    label_text: &str,
    elems: &[Elem],
    x: &[f64],
    nodes: &[NodeBox],
    bands: &Bands,
) -> EdgeRoute {
    let first = chain.elems[0];
    let last = chain.elems[chain.elems.len() - 1];
    // Where the path enters and leaves each layer, top to bottom.
    let mut stops: Vec<(Point, Point)> = Vec::new();
    let top_port = Point::new(out_port, nodes[first].rect.bottom());
    stops.push((
        top_port,
        Point::new(out_port, bands.bottom(elems[first].layer)),
    ));
    let mut label = None;
    for &el in &chain.elems[1..chain.elems.len() - 1] {
        let l = elems[el].layer;
        stops.push((
            Point::new(x[el], bands.top[l]),
            Point::new(x[el], bands.bottom(l)),
        ));
        if elems[el].what == What::Label {
            label = Some(label_box(
                label_text,
                x[el],
                bands.top[l] + bands.height[l] / 2.0,
            ));
        }
    }
    let bottom_port = Point::new(in_port, nodes[last].rect.y);
    stops.push((bottom_port, bottom_port));
    // Leave room for the arrowhead at whichever end it is.
    let (arrow_tip, arrow_dir) = if chain.reversed {
        stops[0].0.y += ARROW_LENGTH;
        stops[0].1.y = stops[0].1.y.max(stops[0].0.y);
        (top_port, Point::new(0.0, -1.0))
    } else {
        let k = stops.len() - 1;
        stops[k].0.y -= ARROW_LENGTH;
        stops[k].1.y -= ARROW_LENGTH;
        (bottom_port, Point::new(0.0, 1.0))
    };
    let start = stops[0].0;
    let mut segments = Vec::new();
    if stops[0].1.y > start.y {
        segments.push(Segment::Line(stops[0].1));
    }
    for pair in stops.windows(2) {
        let (from, to) = (pair[0].1, pair[1].0);
        let k = (to.y - from.y) / 2.0;
        segments.push(Segment::Cubic(
            Point::new(from.x, from.y + k),
            Point::new(to.x, to.y - k),
            to,
        ));
        if pair[1].1.y > to.y {
            segments.push(Segment::Line(pair[1].1));
        }
    }
    EdgeRoute {
        from: edge.from,
        to: edge.to,
        start,
        segments,
        arrow_tip,
        arrow_dir,
        label,
        elided: edge.elided,
    }
}

/// A node's reference to itself: a loop out of its right side and back, the label beyond it
/// (in the room the node's element reserved).
fn loop_route(v: usize, r: Rect, label: Option<&str>, elided: bool) -> EdgeRoute {
    let cy = r.y + r.h / 2.0;
    let start = Point::new(r.right(), cy - 7.0);
    let c1 = Point::new(r.right() + LOOP_REACH - 2.0, cy - 24.0);
    let c2 = Point::new(r.right() + LOOP_REACH - 2.0, cy + 24.0);
    let end = Point::new(r.right() + 7.0, cy + 9.0);
    let (dx, dy) = (end.x - c2.x, end.y - c2.y);
    let norm = (dx * dx + dy * dy).sqrt();
    let arrow_dir = Point::new(dx / norm, dy / norm);
    let arrow_tip = Point::new(
        end.x + arrow_dir.x * ARROW_LENGTH,
        end.y + arrow_dir.y * ARROW_LENGTH,
    );
    let label = label.map(|text| {
        let w = measure_label(text).0;
        label_box(text, r.right() + LOOP_REACH + w / 2.0, cy)
    });
    EdgeRoute {
        from: v,
        to: v,
        start,
        segments: vec![Segment::Cubic(c1, c2, end)],
        arrow_tip,
        arrow_dir,
        label,
        elided,
    }
}

/// Moves everything so the picture starts at the margin, and sizes the canvas.
fn normalise(mut nodes: Vec<NodeBox>, mut edges: Vec<EdgeRoute>) -> Layout {
    let mut min = Point::new(f64::INFINITY, f64::INFINITY);
    let mut max = Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut grow = |r: &Rect| {
        min.x = min.x.min(r.x);
        min.y = min.y.min(r.y);
        max.x = max.x.max(r.right());
        max.y = max.y.max(r.bottom());
    };
    for b in &nodes {
        grow(&b.rect);
    }
    for e in &edges {
        if let Some(l) = &e.label {
            grow(&l.rect);
        }
        for p in e.sample(4) {
            grow(&Rect {
                x: p.x,
                y: p.y,
                w: 0.0,
                h: 0.0,
            });
        }
    }
    if !min.x.is_finite() {
        return Layout {
            width: 2.0 * MARGIN,
            height: 2.0 * MARGIN,
            nodes,
            edges,
        };
    }
    let dx = MARGIN - min.x;
    let dy = MARGIN - min.y;
    let shift = |p: &mut Point| {
        p.x += dx;
        p.y += dy;
    };
    for b in &mut nodes {
        b.rect.x += dx;
        b.rect.y += dy;
        for l in &mut b.lines {
            l.x += dx;
            l.baseline += dy;
        }
    }
    for e in &mut edges {
        shift(&mut e.start);
        shift(&mut e.arrow_tip);
        for s in &mut e.segments {
            match s {
                Segment::Line(p) => shift(p),
                Segment::Cubic(a, b, c) => {
                    shift(a);
                    shift(b);
                    shift(c);
                }
            }
        }
        if let Some(l) = &mut e.label {
            l.rect.x += dx;
            l.rect.y += dy;
            l.line.x += dx;
            l.line.baseline += dy;
        }
    }
    Layout {
        width: (max.x - min.x + 2.0 * MARGIN).ceil(),
        height: (max.y - min.y + 2.0 * MARGIN).ceil(),
        nodes,
        edges,
    }
}

/// Step 1: an order of the nodes in which only edges that close a cycle point backwards (those
/// are drawn reversed).
fn break_cycles(picture: &Picture, edges: &[usize]) -> Vec<usize> {
    let n = picture.nodes.len();
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in edges {
        outs[picture.edges[i].from].push(picture.edges[i].to);
    }
    let component = components(&outs);
    let mut greedy = vec![0; n];
    for (p, v) in greedy_order(picture, edges).into_iter().enumerate() {
        greedy[v] = p;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&v| (component[v], picture.nodes[v].level, greedy[v]));
    order
}

/// The strongly connected component of each node (Tarjan's algorithm, without recursion),
/// numbered in a topological order of the components: edges between components go from a lower
/// number to a higher one.
fn components(outs: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = outs.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![0; n];
    let mut next = 0;
    let mut count = 0;
    // The walk's own stack: (node, how many of its edges are done).
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        calls.push((root, 0));
        while let Some(&(v, done)) = calls.last() {
            if index[v] == UNSEEN {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = outs[v].get(done) {
                let top = calls.len() - 1;
                calls[top].1 += 1;
                if index[w] == UNSEEN {
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = count;
                    if w == v {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    // Tarjan completes components sinks first.
    component.iter().map(|&c| count - 1 - c).collect()
}

/// The greedy heuristic of Eades, Lin and Smyth: an order in which few edges point backwards.
fn greedy_order(picture: &Picture, edges: &[usize]) -> Vec<usize> {
    let n = picture.nodes.len();
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ins: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in edges {
        let e = &picture.edges[i];
        outs[e.from].push(e.to);
        ins[e.to].push(e.from);
    }
    let mut out_deg: Vec<i64> = outs.iter().map(|l| l.len() as i64).collect();
    let mut in_deg: Vec<i64> = ins.iter().map(|l| l.len() as i64).collect();
    let mut removed = vec![false; n];
    let mut head: Vec<usize> = Vec::with_capacity(n);
    let mut tail: Vec<usize> = Vec::new();
    let mut left = n;
    let remove =
        |v: usize, removed: &mut Vec<bool>, out_deg: &mut Vec<i64>, in_deg: &mut Vec<i64>| {
            removed[v] = true;
            for &w in &outs[v] {
                in_deg[w] -= 1;
            }
            for &u in &ins[v] {
                out_deg[u] -= 1;
            }
        };
    while left > 0 {
        let mut progress = true;
        while progress {
            progress = false;
            for v in 0..n {
                if !removed[v] && out_deg[v] == 0 {
                    remove(v, &mut removed, &mut out_deg, &mut in_deg);
                    tail.push(v);
                    left -= 1;
                    progress = true;
                }
            }
            for v in 0..n {
                if !removed[v] && in_deg[v] == 0 {
                    remove(v, &mut removed, &mut out_deg, &mut in_deg);
                    head.push(v);
                    left -= 1;
                    progress = true;
                }
            }
        }
        let best = (0..n).filter(|&v| !removed[v]).max_by(|&a, &b| {
            (out_deg[a] - in_deg[a])
                .cmp(&(out_deg[b] - in_deg[b]))
                .then(picture.nodes[b].level.cmp(&picture.nodes[a].level))
                .then(b.cmp(&a))
        });
        if let Some(v) = best {
            remove(v, &mut removed, &mut out_deg, &mut in_deg);
            head.push(v);
            left -= 1;
        }
    }
    head.extend(tail.into_iter().rev());
    head
}

/// Step 2: a rank per node such that every edge goes from a lower rank to a higher one.
fn assign_ranks(n: usize, order: &[usize], dag: &[(usize, usize, bool)]) -> Vec<usize> {
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(u, v, _) in dag {
        succs[u].push(v);
        preds[v].push(u);
    }
    let mut rank = vec![0i64; n];
    for &v in order {
        rank[v] = preds[v].iter().map(|&u| rank[u] + 1).max().unwrap_or(0);
    }
    // Move each node to the median of where its edges want it, within what its edges allow;
    // every move shortens the edges, so this ends.
    for _ in 0..64 {
        let mut moved = false;
        for &v in order {
            if preds[v].is_empty() && succs[v].is_empty() {
                continue;
            }
            let lo = preds[v].iter().map(|&u| rank[u] + 1).max();
            let hi = succs[v].iter().map(|&w| rank[w] - 1).min();
            let mut wants: Vec<i64> = preds[v]
                .iter()
                .map(|&u| rank[u] + 1)
                .chain(succs[v].iter().map(|&w| rank[w] - 1))
                .collect();
            wants.sort_unstable();
            let (m1, m2) = (wants[(wants.len() - 1) / 2], wants[wants.len() / 2]);
            let mut r = rank[v].clamp(m1, m2);
            if let Some(lo) = lo {
                r = r.max(lo);
            }
            if let Some(hi) = hi {
                r = r.min(hi);
            }
            if r != rank[v] {
                rank[v] = r;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let min = rank.iter().copied().min().unwrap_or(0);
    rank.iter().map(|&r| (r - min) as usize).collect()
}

/// Crossings between `upper` and the layer below it, given each element's position.
fn crossings_below(elems: &[Elem], upper: &[usize], pos: &[usize], below_len: usize) -> u64 {
    let mut ends: Vec<(usize, usize)> = Vec::new();
    for &a in upper {
        for &(b, _) in &elems[a].down {
            ends.push((pos[a], pos[b]));
        }
    }
    ends.sort_unstable();
    // Count pairs whose lower ends are inverted: a Fenwick tree over lower positions.
    let mut tree = vec![0u64; below_len + 1];
    let mut total = 0u64;
    for (seen, &(_, b)) in ends.iter().enumerate() {
        let mut i = b + 1;
        let mut not_greater = 0;
        while i > 0 {
            not_greater += tree[i];
            i &= i - 1;
        }
        total += seen as u64 - not_greater;
        let mut i = b + 1;
        while i <= below_len {
            tree[i] += 1;
            i += i & i.wrapping_neg();
        }
    }
    total
}

fn total_crossings(elems: &[Elem], layers: &[Vec<usize>], pos: &[usize]) -> u64 {
    layers
        .windows(2)
        .map(|w| crossings_below(elems, &w[0], pos, w[1].len()))
        .sum()
}

fn positions(elems: &[Elem], layers: &[Vec<usize>]) -> Vec<usize> {
    let mut pos = vec![0; elems.len()];
    for layer in layers {
        for (i, &e) in layer.iter().enumerate() {
            pos[e] = i;
        }
    }
    pos
}

/// Step 4: orders each layer to reduce crossings.
fn order_layers(elems: &[Elem], layers: &mut [Vec<usize>]) {
    let mut pos = positions(elems, layers);
    let mut best = layers.to_vec();
    let mut best_count = total_crossings(elems, layers, &pos);
    for sweep in 0..24 {
        let downwards = sweep % 2 == 0;
        let range: Vec<usize> = if downwards {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in range {
            let other_len = if downwards {
                layers[l - 1].len()
            } else {
                layers[l + 1].len()
            } as f64;
            let own_len = layers[l].len() as f64;
            let mut keyed: Vec<(f64, usize)> = layers[l]
                .iter()
                .map(|&e| {
                    let neighbours = if downwards {
                        &elems[e].up
                    } else {
                        &elems[e].down
                    };
                    let key = if neighbours.is_empty() {
                        (pos[e] as f64 + 0.5) / own_len
                    } else {
                        neighbours
                            .iter()
                            .map(|&(o, _)| (pos[o] as f64 + 0.5) / other_len)
                            .sum::<f64>()
                            / neighbours.len() as f64
                    };
                    (key, e)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            layers[l] = keyed.into_iter().map(|(_, e)| e).collect();
            for (i, &e) in layers[l].iter().enumerate() {
                pos[e] = i;
            }
        }
        transpose(elems, layers, &mut pos);
        let count = total_crossings(elems, layers, &pos);
        if count < best_count {
            best_count = count;
            best = layers.to_vec();
        }
        if best_count == 0 {
            break;
        }
    }
    layers.clone_from_slice(&best);
}

/// Crossings between the edges of `a` and `b` (a left of b) with the adjacent layers.
fn pair_crossings(elems: &[Elem], pos: &[usize], a: usize, b: usize) -> usize {
    let mut count = 0;
    for (na, nb) in [
        (&elems[a].up, &elems[b].up),
        (&elems[a].down, &elems[b].down),
    ] {
        for &(x, _) in na {
            for &(y, _) in nb {
                if pos[x] > pos[y] {
                    count += 1;
                }
            }
        }
    }
    count
}

/// Swaps neighbours within layers while that removes crossings.
fn transpose(elems: &[Elem], layers: &mut [Vec<usize>], pos: &mut [usize]) {
    for _ in 0..4 {
        let mut improved = false;
        for layer in layers.iter_mut() {
            for i in 1..layer.len() {
                let (a, b) = (layer[i - 1], layer[i]);
                if pair_crossings(elems, pos, b, a) < pair_crossings(elems, pos, a, b) {
                    layer.swap(i - 1, i);
                    pos[a] = i;
                    pos[b] = i - 1;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// The least distance between the x of two neighbours in a layer.
fn separation(elems: &[Elem], a: usize, b: usize) -> f64 {
    let both_nodes = matches!(elems[a].what, What::Node) && matches!(elems[b].what, What::Node);
    elems[a].right + elems[b].left + if both_nodes { NODE_GAP } else { EDGE_GAP }
}

/// Step 5: x of every element.
fn assign_x(elems: &[Elem], layers: &[Vec<usize>]) -> Vec<f64> {
    let mut x = vec![0.0; elems.len()];
    for layer in layers {
        let mut at = 0.0;
        for (i, &e) in layer.iter().enumerate() {
            if i > 0 {
                at += separation(elems, layer[i - 1], e);
            }
            x[e] = at;
        }
    }
    let place = |x: &mut Vec<f64>, layer: &[usize], up: bool, down: bool| {
        let mut desired = Vec::with_capacity(layer.len());
        let mut weights = Vec::with_capacity(layer.len());
        for &e in layer {
            let mut sum = 0.0;
            let mut weight = 0.0;
            let sides = [(up, &elems[e].up), (down, &elems[e].down)];
            for (_, list) in sides.iter().filter(|(on, _)| *on) {
                for &(o, w) in list.iter() {
                    sum += w * x[o];
                    weight += w;
                }
            }
            if weight > 0.0 {
                desired.push(sum / weight);
                weights.push(weight);
            } else {
                desired.push(x[e]);
                weights.push(0.05);
            }
        }
        let gaps: Vec<f64> = layer
            .windows(2)
            .map(|p| separation(elems, p[0], p[1]))
            .collect();
        let placed = isotonic(&desired, &weights, &gaps);
        for (&e, v) in layer.iter().zip(placed) {
            x[e] = v;
        }
    };
    for sweep in 0..16 {
        let both = sweep >= 12;
        for layer in layers.iter().skip(1) {
            place(&mut x, layer, true, both);
        }
        for layer in layers.iter().rev().skip(1) {
            place(&mut x, layer, both, true);
        }
    }
    x
}

/// Lines up the bends of each long edge where their layers leave room, so the edge runs
/// straight rather than stepping sideways at every layer: each bend moves towards the median of
/// its chain, as far as its neighbours in the layer allow.
fn straighten(elems: &[Elem], layers: &[Vec<usize>], chains: &[Vec<usize>], x: &mut [f64]) {
    let pos = positions(elems, layers);
    for _ in 0..4 {
        for chain in chains.iter().filter(|c| c.len() > 1) {
            let mut xs: Vec<f64> = chain.iter().map(|&e| x[e]).collect();
            xs.sort_by(f64::total_cmp);
            let target = xs[xs.len() / 2];
            for &e in chain {
                let layer = &layers[elems[e].layer];
                let i = pos[e];
                let lo = match i {
                    0 => f64::NEG_INFINITY,
                    _ => x[layer[i - 1]] + separation(elems, layer[i - 1], e),
                };
                let hi = match layer.get(i + 1) {
                    Some(&next) => x[next] - separation(elems, e, next),
                    None => f64::INFINITY,
                };
                if lo <= hi {
                    x[e] = target.clamp(lo, hi);
                }
            }
        }
    }
}

/// The x minimising `sum(weight * (x - desired)^2)` with `x[i + 1] - x[i] >= gaps[i]`:
/// pool-adjacent-violators on `x[i] - offset[i]`, which must not decrease.
fn isotonic(desired: &[f64], weights: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offset = vec![0.0; desired.len()];
    for i in 1..desired.len() {
        offset[i] = offset[i - 1] + gaps[i - 1];
    }
    // Blocks: (weight, weighted sum, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for i in 0..desired.len() {
        blocks.push((weights[i], weights[i] * (desired[i] - offset[i]), 1));
        while blocks.len() > 1 {
            let (w2, s2, c2) = blocks[blocks.len() - 1];
            let (w1, s1, c1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (w1 + w2, s1 + s2, c1 + c2);
        }
    }
    let mut out = Vec::with_capacity(desired.len());
    for (w, s, c) in blocks {
        for _ in 0..c {
            let i = out.len();
            out.push(s / w + offset[i]);
        }
    }
    out
}

/// Step 6 (vertical): the top of each layer and its height. Layers whose curves travel far
/// sideways get more room, so the curves do not flatten.
fn assign_y(elems: &[Elem], layers: &[Vec<usize>], x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let heights: Vec<f64> = layers
        .iter()
        .map(|l| l.iter().map(|&e| elems[e].height).fold(0.0, f64::max))
        .collect();
    let mut tops = vec![0.0; layers.len()];
    for l in 1..layers.len() {
        let widest = layers[l - 1]
            .iter()
            .flat_map(|&a| elems[a].down.iter().map(move |&(b, _)| (x[a] - x[b]).abs()))
            .fold(0.0, f64::max);
        let gap = (widest * 0.12).clamp(LAYER_GAP, 3.0 * LAYER_GAP);
        tops[l] = tops[l - 1] + heights[l - 1] + gap;
    }
    (tops, heights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::picture::{Node, NodeKind};

    fn node(title: &str, text: &str) -> Node {
        Node::new(title, text, "56 B", NodeKind::Normal)
    }

    /// A backrefs-like picture: a module's dict holds a cache dict holding eight objects, a
    /// class attribute and a closure cell hold the target, a list holds itself, and a cycle
    /// runs between the target and its container.
    fn sample() -> Picture {
        let mut nodes = vec![
            Node::new("Leak", "<Leak object>", "48 B", NodeKind::Target),
            Node::new("module", "app", "72 B", NodeKind::Root),
            node("dict", "9 items"),
            node("dict", "8 items"),
            node("type", "Handler"),
            node("cell", "<cell>"),
            node("function", "handler.<locals>.inner"),
            node("list", "1 items"),
        ];
        for i in 0..8 {
            nodes.push(node("Session", &format!("<Session {i}>")));
        }
        for (i, n) in nodes.iter_mut().enumerate() {
            n.level = -(i as i32);
        }
        let mut edges = vec![
            Edge::new(1, 2, "via its .__dict__"),
            Edge::new(2, 3, "via its 'CACHE' key"),
            Edge::new(3, 0, "via its 'k0' key"),
            Edge::new(4, 0, "via its .leak attribute"),
            Edge::new(2, 4, "via its 'Handler' key"),
            Edge::new(6, 5, "via its .__closure__"),
            Edge::new(5, 0, "via its .cell_contents"),
            Edge::new(2, 6, "via its 'inner' key"),
            Edge::new(7, 7, "[0]"),
            Edge::new(0, 7, "via its .history attribute"),
            Edge::new(7, 0, "[1]"),
        ];
        for i in 0..8 {
            edges.push(Edge::new(3, 8 + i, &format!("via its 'session-{i}' key")));
            edges.push(Edge::new(8 + i, 0, "via its .leak attribute"));
        }
        Picture { nodes, edges }
    }

    fn label_rects(l: &Layout) -> Vec<Rect> {
        l.edges
            .iter()
            .filter_map(|e| e.label.as_ref().map(|b| b.rect))
            .collect()
    }

    fn distance_to_route(p: Point, route: &EdgeRoute) -> f64 {
        route
            .sample(24)
            .iter()
            .map(|q| ((q.x - p.x).powi(2) + (q.y - p.y).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn no_two_boxes_overlap() {
        let l = layout(&sample()).unwrap();
        let labels = label_rects(&l);
        assert_eq!(labels.len(), 27);
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                assert!(!a.rect.overlaps(&b.rect), "{a:?} overlaps {b:?}");
            }
            for r in &labels {
                assert!(!a.rect.overlaps(r), "label {r:?} overlaps node {a:?}");
            }
        }
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.overlaps(b), "label {a:?} overlaps label {b:?}");
            }
        }
    }

    #[test]
    fn every_label_sits_on_or_next_to_its_edge() {
        let l = layout(&sample()).unwrap();
        for e in &l.edges {
            if let Some(label) = &e.label {
                let d = distance_to_route(label.rect.centre(), e);
                let allowed = if e.from == e.to {
                    label.rect.w / 2.0 + LOOP_REACH
                } else {
                    1.0
                };
                assert!(
                    d <= allowed,
                    "label {:?} is {d} from its edge",
                    label.line.text
                );
            }
        }
    }

    #[test]
    fn edges_stay_clear_of_the_boxes_they_do_not_join() {
        let l = layout(&sample()).unwrap();
        for e in &l.edges {
            for p in e.sample(24) {
                for (v, b) in l.nodes.iter().enumerate() {
                    if v == e.from || v == e.to {
                        continue;
                    }
                    let inside = p.x > b.rect.x + 0.5
                        && p.x < b.rect.right() - 0.5
                        && p.y > b.rect.y + 0.5
                        && p.y < b.rect.bottom() - 0.5;
                    assert!(!inside, "edge {}->{} crosses node {v}", e.from, e.to);
                }
            }
        }
    }

    #[test]
    fn boxes_fit_their_measured_text_and_the_canvas_holds_everything() {
        let l = layout(&sample()).unwrap();
        for b in &l.nodes {
            for line in &b.lines {
                assert!(
                    line.width + 2.0 * PAD_X <= b.rect.w + 0.01,
                    "{line:?} in {b:?}"
                );
                assert!(line.baseline > b.rect.y && line.baseline < b.rect.bottom());
            }
            assert!(b.rect.x >= MARGIN - 0.01 && b.rect.right() <= l.width);
            assert!(b.rect.y >= MARGIN - 0.01 && b.rect.bottom() <= l.height);
        }
        for r in label_rects(&l) {
            assert!(r.x >= 0.0 && r.right() <= l.width && r.bottom() <= l.height);
        }
    }

    #[test]
    fn referrers_are_drawn_above_what_they_refer_to_and_cycles_point_up_once() {
        let l = layout(&sample()).unwrap();
        let y = |v: usize| l.nodes[v].rect.y;
        assert!(
            y(1) < y(2) && y(2) < y(3) && y(3) < y(0),
            "module > dicts > target"
        );
        assert!(y(4) < y(0) && y(5) < y(0));
        // Of the cycle target -> list -> target, exactly one edge points up.
        let up: Vec<_> = l
            .edges
            .iter()
            .filter(|e| e.from != e.to && e.arrow_dir.y < 0.0)
            .map(|e| (e.from, e.to))
            .collect();
        assert_eq!(up, vec![(0, 7)]);
    }

    #[test]
    fn a_long_edge_bends_through_its_layers_and_keeps_one_label() {
        let picture = Picture {
            nodes: (0..4).map(|i| node("n", &i.to_string())).collect(),
            edges: vec![
                Edge::new(0, 1, "a"),
                Edge::new(1, 2, "b"),
                Edge::new(2, 3, "c"),
                Edge::new(0, 3, "the long one"),
            ],
        };
        let l = layout(&picture).unwrap();
        let long = &l.edges[3];
        assert!(long.segments.len() >= 5, "{:?}", long.segments);
        let label = long.label.as_ref().unwrap();
        assert!(label.rect.y > l.nodes[0].rect.bottom() && label.rect.bottom() < l.nodes[3].rect.y);
        assert!(distance_to_route(label.rect.centre(), long) <= 1.0);
    }

    #[test]
    fn isolated_nodes_empty_pictures_and_unlabelled_edges_lay_out() {
        let l = layout(&Picture::default()).unwrap();
        assert!(l.nodes.is_empty() && l.width > 0.0);
        let picture = Picture {
            nodes: vec![node("a", ""), node("b", ""), node("c", "")],
            edges: vec![Edge::new(0, 1, "")],
        };
        let l = layout(&picture).unwrap();
        assert!(l.edges[0].label.is_none());
        assert!(!l.nodes[2].rect.overlaps(&l.nodes[0].rect));
    }

    #[test]
    fn crossings_are_removed_when_an_order_without_them_exists() {
        // Two parents, each with two children, given in an interleaved order.
        let picture = Picture {
            nodes: vec![
                node("p", "0"),
                node("p", "1"),
                node("c", "1a"),
                node("c", "0a"),
                node("c", "1b"),
                node("c", "0b"),
            ],
            edges: vec![
                Edge::new(0, 3, ""),
                Edge::new(0, 5, ""),
                Edge::new(1, 2, ""),
                Edge::new(1, 4, ""),
            ],
        };
        let l = layout(&picture).unwrap();
        let cx = |v: usize| l.nodes[v].rect.centre().x;
        let left_parent_is_0 = cx(0) < cx(1);
        for (a, b) in [(3, 2), (3, 4), (5, 2), (5, 4)] {
            assert_eq!(cx(a) < cx(b), left_parent_is_0);
        }
    }

    #[test]
    fn components_are_numbered_in_topological_order() {
        // 0 -> {1 <-> 2} -> 3, and 4 alone.
        let outs = vec![vec![1], vec![2], vec![1, 3], vec![], vec![]];
        let c = components(&outs);
        assert_eq!(c[1], c[2]);
        assert!(c[0] < c[1] && c[2] < c[3]);
        assert_eq!(
            [c[0], c[1], c[3], c[4]]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
    }

    #[test]
    fn only_edges_that_close_a_cycle_point_up() {
        // A -> C -> B -> T and A -> T: no cycle, although A is nearer T than C is.
        let mut nodes: Vec<Node> = ["T", "A", "B", "C"].iter().map(|t| node(t, "")).collect();
        for (v, depth) in [(0, 0), (1, 1), (2, 1), (3, 2)] {
            nodes[v].level = -depth;
        }
        let picture = Picture {
            nodes,
            edges: vec![
                Edge::new(1, 3, ""),
                Edge::new(3, 2, ""),
                Edge::new(2, 0, ""),
                Edge::new(1, 0, ""),
            ],
        };
        let l = layout(&picture).unwrap();
        assert!(l.edges.iter().all(|e| e.arrow_dir.y > 0.0));
    }

    #[test]
    fn pool_adjacent_violators_respects_gaps_and_follows_targets() {
        let x = isotonic(&[10.0, 10.0, 10.0], &[1.0, 1.0, 1.0], &[4.0, 4.0]);
        assert_eq!(x, vec![6.0, 10.0, 14.0]);
        let x = isotonic(&[0.0, 100.0], &[1.0, 1.0], &[4.0]);
        assert_eq!(x, vec![0.0, 100.0]);
    }

    #[test]
    fn a_wide_picture_lays_out_quickly() {
        // 1 + 10 + 100 + 1000 nodes: objgraph's defaults at max_depth=3, every edge labelled.
        let mut nodes = vec![node("root", "")];
        let mut edges = Vec::new();
        let mut frontier = vec![0];
        for _ in 0..3 {
            let mut next = Vec::new();
            for &p in &frontier {
                for k in 0..10 {
                    nodes.push(node("dict", &format!("{k} items")));
                    edges.push(Edge::new(
                        p,
                        nodes.len() - 1,
                        &format!("via its 'key {k}' key"),
                    ));
                    next.push(nodes.len() - 1);
                }
            }
            frontier = next;
        }
        let started = std::time::Instant::now();
        let l = layout(&Picture { nodes, edges }).unwrap();
        assert_eq!(l.nodes.len(), 1111);
        assert!(started.elapsed().as_secs_f64() < 20.0);
    }
}
