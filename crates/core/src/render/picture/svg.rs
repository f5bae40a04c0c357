//! A laid-out picture as SVG: one self-contained file, no scripts, no external resources, every
//! string escaped.
//!
//! Text is set in DejaVu Sans (the face the layout measured) with `textLength`, so a viewer that
//! lacks the font and substitutes another still fits each line in its box. Edges come first,
//! their labels over them (on a white ground, so the edge seems to pass behind), nodes last.
//! Elements carry classes (`node target`, `edge`, `label`) for styling and for tests.

use super::layout::{Layout, Rect, Segment, TextLine};
use super::text::FAMILY;
use super::{LineStyle, NodeKind};
use std::fmt::Write;

/// Fill, stroke, stroke width and title colour of each kind of node.
pub(crate) fn palette(kind: NodeKind) -> (&'static str, &'static str, f64, &'static str) {
    match kind {
        NodeKind::Normal => ("#ffffff", "#5f6b7a", 1.0, "#1a1a1a"),
        NodeKind::Target => ("#fde8e6", "#c62828", 2.5, "#b71c1c"),
        NodeKind::Root => ("#e6f4ea", "#2e7d32", 2.0, "#1b5e20"),
        NodeKind::Highlighted => ("#e3ecfa", "#1f5fbf", 2.0, "#0d47a1"),
        NodeKind::Elided => ("#f5f5f5", "#9e9e9e", 1.0, "#616161"),
    }
}

const EDGE_COLOUR: &str = "#50596a";
const ELIDED_COLOUR: &str = "#9e9e9e";
const LEGEND_HEIGHT: f64 = 28.0;

/// Escapes text for XML content and attribute values. Characters XML 1.0 cannot hold at all
/// (most C0 controls, U+FFFE, U+FFFF) become U+FFFD; [`super::text::clean`] has usually made
/// them visible escapes already.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn text_element(out: &mut String, line: &TextLine, fill: &str) {
    let weight = if line.style.bold() {
        " font-weight=\"bold\""
    } else {
        ""
    };
    // textLength keeps the text inside its box in any substitute font. Lines are never empty:
    // nodes leave empty lines out and edges without a label have no label box.
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{}\"{weight} fill=\"{fill}\" text-anchor=\"middle\" \
         textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\">{}</text>",
        line.x,
        line.baseline,
        line.style.size(),
        line.width,
        escape(&line.text)
    );
}

fn rect_attrs(r: &Rect) -> String {
    format!(
        "x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"",
        r.x, r.y, r.w, r.h
    )
}

/// The layout as an SVG document.
pub fn write(layout: &Layout) -> String {
    let kinds: Vec<NodeKind> = [NodeKind::Target, NodeKind::Root, NodeKind::Highlighted]
        .into_iter()
        .filter(|k| layout.nodes.iter().any(|n| n.kind == *k))
        .collect();
    let legend = !kinds.is_empty();
    let width = if legend {
        layout.width.max(330.0)
    } else {
        layout.width
    };
    let height = layout.height + if legend { LEGEND_HEIGHT } else { 0.0 };
    let mut out = String::with_capacity(512 + layout.nodes.len() * 600 + layout.edges.len() * 500);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"'{FAMILY}', Verdana, sans-serif\">"
    );
    let _ = writeln!(
        out,
        "<title>heaplens: {} objects, {} references</title>",
        layout.nodes.len(),
        layout.edges.len()
    );
    out.push_str("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");

    out.push_str("<g class=\"edges\" fill=\"none\">\n");
    for e in &layout.edges {
        let colour = if e.elided { ELIDED_COLOUR } else { EDGE_COLOUR };
        let dash = if e.elided {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let mut d = format!("M{:.1},{:.1}", e.start.x, e.start.y);
        for s in &e.segments {
            match s {
                Segment::Line(p) => {
                    let _ = write!(d, " L{:.1},{:.1}", p.x, p.y);
                }
                Segment::Cubic(a, b, p) => {
                    let _ = write!(
                        d,
                        " C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                        a.x, a.y, b.x, b.y, p.x, p.y
                    );
                }
            }
        }
        let (t, u) = (e.arrow_tip, e.arrow_dir);
        let base = (
            t.x - u.x * super::layout::ARROW_LENGTH,
            t.y - u.y * super::layout::ARROW_LENGTH,
        );
        let half = super::layout::ARROW_WIDTH / 2.0;
        let _ = writeln!(
            out,
            "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\"><path d=\"{d}\" stroke=\"{colour}\" \
             stroke-width=\"1.2\"{dash}/><path d=\"M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z\" \
             fill=\"{colour}\"/></g>",
            e.from,
            e.to,
            t.x,
            t.y,
            base.0 - u.y * half,
            base.1 + u.x * half,
            base.0 + u.y * half,
            base.1 - u.x * half,
        );
    }
    out.push_str("</g>\n<g class=\"labels\">\n");
    for e in &layout.edges {
        if let Some(label) = &e.label {
            let _ = writeln!(
                out,
                "<g class=\"label\" data-from=\"{}\" data-to=\"{}\"><rect {} rx=\"3\" fill=\"#ffffff\" \
                 fill-opacity=\"0.92\" stroke=\"#d5dae0\" stroke-width=\"0.8\"/>",
                e.from,
                e.to,
                rect_attrs(&label.rect)
            );
            text_element(&mut out, &label.line, "#37474f");
            out.push_str("</g>\n");
        }
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for (i, n) in layout.nodes.iter().enumerate() {
        let (fill, stroke, stroke_width, title_colour) = palette(n.kind);
        let dash = if n.kind == NodeKind::Elided {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let tooltip: Vec<&str> = n.lines.iter().map(|l| l.text.as_str()).collect();
        let _ = writeln!(
            out,
            "<g class=\"node {}\" id=\"n{i}\"><title>{}</title><rect {} rx=\"4\" fill=\"{fill}\" \
             stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"{dash}/>",
            n.kind.name(),
            escape(&tooltip.join("\n")),
            rect_attrs(&n.rect)
        );
        for line in &n.lines {
            let colour = match line.style {
                LineStyle::Title => title_colour,
                LineStyle::Text => "#263238",
                LineStyle::Note => "#78909c",
            };
            text_element(&mut out, line, colour);
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");
    if legend {
        write_legend(&mut out, &kinds, layout.height);
    }
    out.push_str("</svg>\n");
    out
}

/// A row of swatches under the picture naming the marks it uses.
fn write_legend(out: &mut String, kinds: &[NodeKind], top: f64) {
    let names = |k: NodeKind| match k {
        NodeKind::Target => "asked about",
        NodeKind::Root => "root (module, thread)",
        _ => "highlighted",
    };
    out.push_str("<g class=\"legend\">\n");
    let mut x = super::layout::MARGIN;
    let y = top - 6.0;
    for &k in kinds {
        let (fill, stroke, stroke_width, _) = palette(k);
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"18\" height=\"12\" rx=\"2\" fill=\"{fill}\" \
             stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"/>"
        );
        let label = names(k);
        let w = super::text::width(label, 11.0, false);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#455a64\" textLength=\"{w:.1}\" \
             lengthAdjust=\"spacingAndGlyphs\">{}</text>",
            x + 24.0,
            y + 10.0,
            escape(label)
        );
        x += 24.0 + w + 18.0;
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::picture::layout::layout;
    use crate::render::picture::{Edge, Node, Picture};

    #[test]
    fn markup_in_text_is_escaped_and_forbidden_characters_never_reach_the_file() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &apos;b&apos;&lt;/script&gt;"
        );
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{ffff}"),
            "a\u{fffd}b\u{fffd}c\u{fffd}"
        );
    }

    #[test]
    fn hostile_reprs_and_labels_stay_text() {
        let hostile = "\u{0}\u{7}\"><img src=x onerror=alert(1)><script>alert(2)</script>]]>";
        let picture = Picture {
            nodes: vec![
                Node::new(hostile, hostile, hostile, NodeKind::Target),
                Node::new("dict", &"x".repeat(10_000), "", NodeKind::Normal),
            ],
            edges: vec![Edge::new(1, 0, hostile)],
        };
        let svg = write(&layout(&picture).unwrap());
        assert!(!svg.contains("<img"));
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("]]>"));
        assert!(!svg.contains('\u{0}') && !svg.contains('\u{7}'));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(
            svg.contains(r"\x00\x07"),
            "control characters are shown, escaped"
        );
        // The 10,000-character repr is cut.
        assert!(!svg.contains(&"x".repeat(100)));
        // Every element opened is closed: a crude well-formedness check (Python's tests parse it).
        assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    }

    #[test]
    fn kinds_are_marked_and_named_in_a_legend() {
        let picture = Picture {
            nodes: vec![
                Node::new("module", "app", "", NodeKind::Root),
                Node::new("Order", "", "", NodeKind::Target),
                Node::new("dict", "", "", NodeKind::Highlighted),
            ],
            edges: vec![
                Edge::new(0, 2, "via its .__dict__"),
                Edge::new(2, 1, "via its 'k' key"),
            ],
        };
        let svg = write(&layout(&picture).unwrap());
        assert!(svg.contains("class=\"node root\""));
        assert!(svg.contains("class=\"node target\""));
        assert!(svg.contains("class=\"node highlighted\""));
        assert!(svg.contains("asked about") && svg.contains("root (module, thread)"));
        assert!(svg.contains("via its &apos;k&apos; key"));
        assert_eq!(svg.matches("class=\"edge\"").count(), 2);
    }
}
