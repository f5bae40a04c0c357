//! Text from the observed heap made safe to show: names and strings are the program's data,
//! so attacker-controlled. The characters that would hide, look like a space or reorder the
//! text around them are written as Python's `repr` writes them; in a bare name, backslashes are
//! doubled too, so that no name can pass for another by spelling an escape. Used by the
//! reports (before they align columns) and by the dashboard (on every string it sends).

/// Whether `c` would be invisible, look like a space, or rearrange the text around it: control
/// characters; the bidirectional marks, embeddings, overrides and isolates (U+202E shows "evil"
/// as "live"); zero-width and invisible formatting characters (U+200B-U+200D, U+2060-U+2064,
/// U+FEFF, the soft hyphen U+00AD, U+034F, U+180E, the Hangul fillers, variation selectors
/// and tag characters: `Order\u200b` would look exactly like `Order`); and the line and
/// paragraph separators U+2028 and U+2029 (shown as spaces or breaks).
pub fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// `text` with invisible characters escaped (`\x1b`, `\u202e`); newlines are kept when
/// `keep_newlines` (a multi-line report), else escaped too. For text whose names are already
/// quoted as `repr` quotes them (labels, paths, reports); a bare name goes through
/// [`visible_name`].
pub fn visible(text: &str, keep_newlines: bool) -> std::borrow::Cow<'_, str> {
    escaped(text, |c| !invisible(c) || (keep_newlines && c == '\n'))
}

/// A bare name from the heap (a type, a program) as [`visible`] writes it, with every backslash
/// doubled too, so that its escapes are unambiguous: a class literally named
/// `evil\u202etxt.exe` shows as `evil\\u202etxt.exe`, and cannot pass for the one whose name
/// holds U+202E.
pub fn visible_name(name: &str) -> std::borrow::Cow<'_, str> {
    escaped(name, |c| c != '\\' && !invisible(c))
}

/// `text` with the characters `keep` refuses escaped.
fn escaped(text: &str, keep: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write;
    if text.chars().all(&keep) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if keep(c) => out.push(c),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}
