//! A picture's SVG rendered to PNG in-process with `resvg`.
//!
//! The renderer sees only the bundled fonts (loaded from the bytes compiled into the library,
//! never from the system) and resolves no external resource: the SVG is ours and holds none, and
//! the resolvers that would read files or decode images are replaced by ones that refuse. Pictures
//! are drawn at 1.5 pixels per SVG unit, for text that stays sharp when zoomed; a picture so large
//! that its bitmap would pass [`MAX_PIXELS`] is scaled down to fit instead of exhausting memory.

use super::text::{BOLD, FAMILY, REGULAR};
use crate::error::{Error, Result};
use resvg::tiny_skia;
use resvg::usvg;
use std::sync::{Arc, OnceLock};

/// Pixels per SVG unit.
pub const SCALE: f32 = 1.5;
/// The largest bitmap drawn (about 160 MB of RGBA).
pub const MAX_PIXELS: f64 = 40_000_000.0;
/// The longest side drawn.
pub const MAX_SIDE: f64 = 16_384.0;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(REGULAR)));
            db.load_font_source(usvg::fontdb::Source::Binary(Arc::new(BOLD)));
            db.set_sans_serif_family(FAMILY);
            Arc::new(db)
        })
        .clone()
}

/// The scale at which a `width` x `height` SVG is drawn.
fn scale_for(width: f64, height: f64) -> f64 {
    let mut scale = SCALE as f64;
    let area = width * height * scale * scale;
    if area > MAX_PIXELS {
        scale *= (MAX_PIXELS / area).sqrt();
    }
    let side = width.max(height) * scale;
    if side > MAX_SIDE {
        scale *= MAX_SIDE / side;
    }
    scale
}

/// Renders `svg` (a picture written by [`super::svg::write`]) to PNG bytes.
pub fn write(svg: &str) -> Result<Vec<u8>> {
    let options = usvg::Options {
        font_family: FAMILY.to_string(),
        fontdb: fonts(),
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|e| Error::Picture(format!("the SVG could not be read back: {e}")))?;
    let size = tree.size();
    let scale = scale_for(size.width() as f64, size.height() as f64);
    let width = ((size.width() as f64 * scale).ceil() as u32).max(1);
    let height = ((size.height() as f64 * scale).ceil() as u32).max(1);
    let mut pixmap = tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| Error::Picture(format!("no bitmap of {width}x{height} pixels")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale as f32, scale as f32),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| Error::Picture(format!("PNG encoding failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::picture::{render, Edge, Format, Node, NodeKind, Picture};

    /// Width and height from a PNG's IHDR chunk.
    fn dimensions(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        (w, h)
    }

    #[test]
    fn a_picture_renders_at_its_svg_size_times_the_scale() {
        let picture = Picture {
            nodes: vec![
                Node::new("module", "app", "72 B", NodeKind::Root),
                Node::new("Order", "<Order 1>", "56 B", NodeKind::Target),
            ],
            edges: vec![Edge::new(0, 1, "via its .order attribute")],
        };
        let svg = String::from_utf8(render(&picture, Format::Svg).unwrap()).unwrap();
        let png = render(&picture, Format::Png).unwrap();
        let (w, h) = dimensions(&png);
        let attr = |name: &str| -> f64 {
            let start = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            svg[start..start + svg[start..].find('"').unwrap()]
                .parse()
                .unwrap()
        };
        assert_eq!(w as f64, (attr("width") * SCALE as f64).ceil());
        assert_eq!(h as f64, (attr("height") * SCALE as f64).ceil());
    }

    #[test]
    fn text_is_drawn_with_the_bundled_font() {
        // Only the bundled faces are in the database: text renders whatever the system has.
        let db = fonts();
        let families: Vec<String> = db
            .faces()
            .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
            .collect();
        assert_eq!(db.len(), 2);
        assert!(families.iter().all(|f| f == FAMILY), "{families:?}");
        // Ink: a picture with text has many more dark pixels than the same picture without.
        let ink = |title: &str| {
            let picture = Picture {
                nodes: vec![Node::new(title, "", "", NodeKind::Normal)],
                edges: vec![],
            };
            let png = render(&picture, Format::Png).unwrap();
            png.len()
        };
        assert!(ink("WWWWWWWWWWWWWWWWWWWWWWWW") > ink("                        ") + 200);
    }

    #[test]
    fn huge_pictures_are_scaled_down_to_a_bounded_bitmap() {
        assert_eq!(scale_for(100.0, 100.0), SCALE as f64);
        let s = scale_for(40_000.0, 3_000.0);
        assert!(40_000.0 * s <= MAX_SIDE + 0.5);
        let s = scale_for(10_000.0, 10_000.0);
        assert!(10_000.0 * 10_000.0 * s * s <= MAX_PIXELS + 1.0);
    }
}
