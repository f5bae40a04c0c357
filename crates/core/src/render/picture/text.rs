//! Text in pictures: the bundled fonts, how wide a string is in them, and how hostile text is
//! made safe to show.
//!
//! The fonts (DejaVu Sans and its bold face, `crates/core/assets/fonts`, with their license) are
//! compiled into the library: a picture comes out the same on a server with no fonts installed as
//! on a laptop, and the widths the layout measures here are the widths the PNG renderer draws.
//! Widths are the sum of the glyphs' advance widths, without kerning: DejaVu's kerning only
//! tightens text, so a box measured this way always fits what is drawn in it.

use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};
use std::sync::OnceLock;

/// DejaVu Sans, the regular face.
pub(crate) const REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold, for node titles.
pub(crate) const BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");
/// The family name both faces declare, used by the SVG and looked up by the PNG renderer.
pub(crate) const FAMILY: &str = "DejaVu Sans";

/// Most characters a line of a picture shows; longer text is cut and ends with an ellipsis, so
/// a 10,000-character repr cannot make a node as wide as a city.
pub const MAX_CHARS: usize = 60;

/// Advance widths of one face, in font units, for the characters pictures use most, with the
/// face's own lookup for the rest.
struct Face {
    font: FontRef<'static>,
    units_per_em: f32,
    /// Advance of U+0000..U+0100, precomputed: nearly all text is ASCII or Latin-1.
    latin: [f32; 256],
    /// Advance of the glyph drawn for characters the face lacks (.notdef).
    missing: f32,
}

impl Face {
    fn load(data: &'static [u8]) -> Face {
        // The bytes are the font compiled in above: failing to parse them is a build defect,
        // caught by every test that measures text.
        let font = FontRef::new(data).expect("the bundled font parses");
        let units_per_em = font
            .metrics(Size::unscaled(), LocationRef::default())
            .units_per_em as f32;
        let metrics = font.glyph_metrics(Size::unscaled(), LocationRef::default());
        let charmap = font.charmap();
        let missing = metrics
            .advance_width(skrifa::GlyphId::new(0))
            .unwrap_or(units_per_em * 0.6);
        let mut latin = [missing; 256];
        for (c, slot) in latin.iter_mut().enumerate() {
            if let Some(g) = charmap.map(c as u32) {
                *slot = metrics.advance_width(g).unwrap_or(missing);
            }
        }
        Face {
            font,
            units_per_em: units_per_em.max(1.0),
            latin,
            missing,
        }
    }

    fn advance(&self, c: char) -> f32 {
        match c as u32 {
            n @ 0..=255 => self.latin[n as usize],
            n => {
                let metrics = self
                    .font
                    .glyph_metrics(Size::unscaled(), LocationRef::default());
                self.font
                    .charmap()
                    .map(n)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(self.missing)
            }
        }
    }
}

fn faces() -> &'static (Face, Face) {
    static FACES: OnceLock<(Face, Face)> = OnceLock::new();
    FACES.get_or_init(|| (Face::load(REGULAR), Face::load(BOLD)))
}

/// The width of `text` in pixels at `size` pixels per em, in the bold or regular face.
pub fn width(text: &str, size: f64, bold: bool) -> f64 {
    let (regular, bold_face) = faces();
    let face = if bold { bold_face } else { regular };
    let units: f32 = text.chars().map(|c| face.advance(c)).sum();
    units as f64 / face.units_per_em as f64 * size
}

/// `text` as a picture shows it: one line, at most `max_chars` characters, every character
/// visible. Control characters become escapes (`\n`, `\x07`), as do the characters that reorder
/// text on screen (bidirectional overrides) and the two XML forbids (U+FFFE, U+FFFF); text that is
/// cut ends with `…`. The result is safe to put in any of the writers' formats once escaped for
/// that format.
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0;
    for c in text.chars() {
        let piece = match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{fffe}' | '\u{ffff}' => {
                format!("\\u{:04x}", c as u32)
            }
            c => c.to_string(),
        };
        let n = piece.chars().count();
        if count + n > max_chars {
            // Keep room for the ellipsis within the limit.
            while count + 1 > max_chars && out.pop().is_some() {
                count -= 1;
            }
            out.push('…');
            return out;
        }
        count += n;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_come_from_the_font_not_a_character_count() {
        let narrow = width("iiiiiiiiii", 12.0, false);
        let wide = width("WWWWWWWWWW", 12.0, false);
        assert!(wide > 2.0 * narrow, "{wide} vs {narrow}");
        assert!(width("dict", 12.0, true) > width("dict", 12.0, false));
        assert_eq!(width("", 12.0, false), 0.0);
        // Doubling the size doubles the width.
        let w = width("heaplens", 10.0, false);
        assert!((width("heaplens", 20.0, false) - 2.0 * w).abs() < 1e-9);
        // Characters the font lacks still take room.
        assert!(width("漢字", 12.0, false) > 5.0);
    }

    #[test]
    fn control_and_reordering_characters_become_visible_escapes() {
        assert_eq!(clean("a\nb\tc\0d\u{7}", 60), r"a\nb\tc\x00d\x07");
        assert_eq!(clean("x\u{202e}y\u{fffe}", 60), r"x\u202ey\ufffe");
        assert_eq!(clean("plain 'text' <ok>", 60), "plain 'text' <ok>");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_within_the_limit() {
        let long = "x".repeat(10_000);
        let c = clean(&long, 20);
        assert_eq!(c.chars().count(), 20);
        assert!(c.ends_with('…'));
        let escapes = "\0".repeat(50);
        let c = clean(&escapes, 10);
        assert!(c.chars().count() <= 10, "{c}");
        assert!(c.ends_with('…'));
        assert_eq!(clean("exactly ten", 11), "exactly ten");
    }
}
