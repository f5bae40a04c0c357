//! Edge labels: how one object refers to another, packed in a `u32`.
//!
//! Layout: bit 31 marks a weak reference (a `weakref.ref` to its referent: it does not keep the
//! referent alive, and retaining-path searches skip it); bits 27..31 hold the [`LabelKind`]; bits
//! 0..27 hold the payload: a list index, or the [`StringId`] of a name (an interned one, or the
//! unindexed text of a dict key only its dict refers to: [`crate::strings::UNINDEXED`]). A payload
//! that does not fit in 27 bits (a list longer than 134 million items, more than 67 million
//! unindexed keys) degrades to a label of the same kind without its payload, never to a wrong one.
//!
//! Labels render the way a path is read: `.cache` (attribute), `['k']` (dict value under a str
//! key), `[3]` (sequence index), `local 'x'` (frame local).

use crate::strings::{StringId, StringTable, UNINDEXED};

/// What kind of reference an edge is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LabelKind {
    /// Unknown: found through `tp_traverse` of a type heaplens has no layout for.
    None = 0,
    /// `[i]`: an item of a list, tuple or other sequence.
    Index = 1,
    /// `.name`: an instance attribute, from the instance `__dict__` or a `__slots__` slot.
    Attr = 2,
    /// `['name']`: a dict value under a str key.
    Key = 3,
    /// `[42]`: a dict value under a key that is not a str (payload: a short form of the key).
    KeyRepr = 4,
    /// `<key 'name'>`: the key object of a dict entry (payload: a short form of the key).
    DictKey = 5,
    /// `.name`: a structural member: `__dict__`, `__class__`, `__globals__`, `__closure__`,
    /// `__mro__`, `__self__`, `__func__`, `cell_contents`, `f_back`, ...
    Field = 6,
    /// `local 'x'`: a local variable (or cell/free variable) of a frame.
    Local = 7,
    /// `<stack>`: a value on a frame's evaluation stack (the iterator of a running `for`, say).
    Stack = 8,
    /// `<member>`: an element of a set or frozenset.
    Member = 9,
    /// A root: the payload names it (`sys.modules['app']`, `thread 'worker'`, ...).
    Root = 10,
    /// `frame`: from a thread stack to one of its frames.
    Frame = 11,
    /// `<external>`: the object is referenced from outside the Python heap (C code or interpreter
    /// state): its reference count exceeds the references heaplens found.
    External = 12,
    /// `<weakref>`: a weak reference's referent (always carries the weak bit).
    Referent = 13,
    /// `<key 'name'>`: the str key object of a dict entry (payload: the key's text).
    DictKeyStr = 14,
}

impl LabelKind {
    fn from_bits(bits: u32) -> LabelKind {
        match bits {
            1 => LabelKind::Index,
            2 => LabelKind::Attr,
            3 => LabelKind::Key,
            4 => LabelKind::KeyRepr,
            5 => LabelKind::DictKey,
            6 => LabelKind::Field,
            7 => LabelKind::Local,
            8 => LabelKind::Stack,
            9 => LabelKind::Member,
            10 => LabelKind::Root,
            11 => LabelKind::Frame,
            12 => LabelKind::External,
            13 => LabelKind::Referent,
            14 => LabelKind::DictKeyStr,
            _ => LabelKind::None,
        }
    }

    /// Whether the payload of this kind is a string id.
    fn payload_is_string(self) -> bool {
        matches!(
            self,
            LabelKind::Attr
                | LabelKind::Key
                | LabelKind::KeyRepr
                | LabelKind::DictKey
                | LabelKind::DictKeyStr
                | LabelKind::Field
                | LabelKind::Local
                | LabelKind::Root
        )
    }
}

/// A packed edge label. See the module documentation for the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Label(pub u32);

const WEAK_BIT: u32 = 1 << 31;
const KIND_SHIFT: u32 = 27;
const PAYLOAD_MASK: u32 = (1 << KIND_SHIFT) - 1;
/// Marks a payload that did not fit: the label keeps its kind but renders without its payload.
const NO_PAYLOAD: u32 = PAYLOAD_MASK;

impl Label {
    pub const NONE: Label = Label(0);

    fn pack(kind: LabelKind, payload: u32) -> Label {
        let payload = if payload >= NO_PAYLOAD {
            NO_PAYLOAD
        } else {
            payload
        };
        Label(((kind as u32) << KIND_SHIFT) | payload)
    }

    pub fn index(i: usize) -> Label {
        Self::pack(LabelKind::Index, u32::try_from(i).unwrap_or(NO_PAYLOAD))
    }
    pub fn attr(name: StringId) -> Label {
        Self::pack(LabelKind::Attr, name.0)
    }
    pub fn key(key: StringId) -> Label {
        Self::pack(LabelKind::Key, key.0)
    }
    pub fn key_repr(short: StringId) -> Label {
        Self::pack(LabelKind::KeyRepr, short.0)
    }
    pub fn dict_key(short: StringId) -> Label {
        Self::pack(LabelKind::DictKey, short.0)
    }
    pub fn dict_key_str(key: StringId) -> Label {
        Self::pack(LabelKind::DictKeyStr, key.0)
    }
    pub fn field(name: StringId) -> Label {
        Self::pack(LabelKind::Field, name.0)
    }
    pub fn local(name: StringId) -> Label {
        Self::pack(LabelKind::Local, name.0)
    }
    pub fn stack() -> Label {
        Self::pack(LabelKind::Stack, 0)
    }
    pub fn member() -> Label {
        Self::pack(LabelKind::Member, 0)
    }
    pub fn root(name: StringId) -> Label {
        Self::pack(LabelKind::Root, name.0)
    }
    pub fn frame(depth: usize) -> Label {
        Self::pack(LabelKind::Frame, u32::try_from(depth).unwrap_or(NO_PAYLOAD))
    }
    pub fn root_external() -> Label {
        Self::pack(LabelKind::External, 0)
    }
    /// The edge from a weak reference to its referent; always weak.
    pub fn referent() -> Label {
        Self::pack(LabelKind::Referent, 0).weak()
    }

    /// The same label, marked weak.
    pub fn weak(self) -> Label {
        Label(self.0 | WEAK_BIT)
    }

    pub fn is_weak(self) -> bool {
        self.0 & WEAK_BIT != 0
    }

    pub fn kind(self) -> LabelKind {
        LabelKind::from_bits((self.0 & !WEAK_BIT) >> KIND_SHIFT)
    }

    fn payload(self) -> Option<u32> {
        let p = self.0 & PAYLOAD_MASK;
        (p != NO_PAYLOAD).then_some(p)
    }

    /// The interned name carried by the label, for kinds that carry one.
    pub fn name(self) -> Option<StringId> {
        if self.kind().payload_is_string() {
            self.payload().map(StringId)
        } else {
            None
        }
    }

    /// The same label naming `name` instead of its own name (weakness kept); labels that carry
    /// no name come back unchanged. For moving labels from one string table to another.
    pub fn with_name(self, name: StringId) -> Label {
        if self.name().is_none() {
            return self;
        }
        let moved = Self::pack(self.kind(), name.0);
        if self.is_weak() {
            moved.weak()
        } else {
            moved
        }
    }

    /// The sequence index or frame depth carried by the label.
    pub fn number(self) -> Option<u32> {
        match self.kind() {
            LabelKind::Index | LabelKind::Frame => self.payload(),
            _ => None,
        }
    }

    /// Renders the label as one hop of a path: `.cache`, `['k']`, `[3]`, `local 'x'`.
    pub fn describe(self, strings: &StringTable) -> String {
        let name = || self.name().map(|id| strings.get(id)).unwrap_or("?");
        let number = || {
            self.number()
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".to_string())
        };
        let text = match self.kind() {
            LabelKind::None => "<ref>".to_string(),
            LabelKind::Index => format!("[{}]", number()),
            LabelKind::Attr | LabelKind::Field => format!(".{}", name()),
            LabelKind::Key => format!("[{}]", quote(name())),
            LabelKind::KeyRepr => format!("[{}]", name()),
            LabelKind::DictKey => format!("<key {}>", name()),
            LabelKind::DictKeyStr => format!("<key {}>", quote(name())),
            LabelKind::Local => format!("local {}", quote(name())),
            LabelKind::Stack => "<stack>".to_string(),
            LabelKind::Member => "<member>".to_string(),
            LabelKind::Root => name().to_string(),
            LabelKind::Frame => format!("frame #{}", number()),
            LabelKind::External => "<external>".to_string(),
            LabelKind::Referent => "<weakref>".to_string(),
        };
        if self.is_weak() && self.kind() != LabelKind::Referent {
            format!("{text} (weak)")
        } else {
            text
        }
    }
}

/// Adds a label's name that is met once (the text of a dict key only its dict refers to) to
/// `strings` without interning it ([`StringTable::add_unindexed_with`]: `write` appends the text),
/// when a label can still carry the id it gets. `None` otherwise, or when `write` fails: the
/// caller interns the text instead.
#[inline]
pub fn add_unindexed_name(
    strings: &mut StringTable,
    write: impl FnOnce(&mut String) -> bool,
) -> Option<StringId> {
    if UNINDEXED as usize + strings.unindexed_len() >= NO_PAYLOAD as usize {
        return None;
    }
    let id = strings.add_unindexed_with(write);
    (id != StringId::EMPTY).then_some(id)
}

/// Appends the decimal text of `v`, as `write!(out, "{v}")` would, without the formatting
/// machinery: a dict of millions of int keys formats each one.
#[inline]
pub fn push_int(out: &mut String, v: i64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v.unsigned_abs();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    if v < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or(""));
}

/// A short, bounded rendering of a non-str dict key: `42`, `None`, `b'ab'`, `(1, 'x')`, `<Point>`.
/// Quotes a name the way Python's `repr` of a str would (single quotes, escapes for quotes,
/// backslashes and control characters), so hostile names cannot break a rendered path.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_moved_to_another_name_keeps_its_kind_and_weakness() {
        let (a, b) = (StringId(3), StringId(UNINDEXED + 7));
        assert_eq!(Label::attr(a).with_name(b), Label::attr(b));
        assert_eq!(Label::key(a).weak().with_name(b), Label::key(b).weak());
        assert_eq!(Label::dict_key_str(a).with_name(b).name(), Some(b));
        // Labels without a name are left as they are.
        assert_eq!(Label::index(5).with_name(b), Label::index(5));
        assert_eq!(Label::referent().with_name(b), Label::referent());
    }

    #[test]
    fn labels_render_as_path_hops() {
        let mut s = StringTable::new();
        let cache = s.intern("cache");
        let k = s.intern("k");
        let x = s.intern("x");
        assert_eq!(Label::attr(cache).describe(&s), ".cache");
        assert_eq!(Label::field(s.intern("__dict__")).describe(&s), ".__dict__");
        assert_eq!(Label::key(k).describe(&s), "['k']");
        assert_eq!(Label::key_repr(s.intern("42")).describe(&s), "[42]");
        assert_eq!(Label::index(3).describe(&s), "[3]");
        assert_eq!(Label::local(x).describe(&s), "local 'x'");
        assert_eq!(Label::referent().describe(&s), "<weakref>");
        assert_eq!(Label::dict_key_str(k).describe(&s), "<key 'k'>");
        assert_eq!(Label::dict_key(s.intern("42")).describe(&s), "<key 42>");
        assert_eq!(Label::NONE.describe(&s), "<ref>");
    }

    #[test]
    fn labels_naming_unindexed_key_texts_render_alike() {
        let mut s = StringTable::new();
        let k = add_unindexed_name(&mut s, |out| {
            out.push_str("order-7");
            true
        })
        .unwrap();
        let n = s.add_unindexed("140234567890123");
        assert_eq!(Label::key(k).describe(&s), "['order-7']");
        assert_eq!(Label::dict_key_str(k).describe(&s), "<key 'order-7'>");
        assert_eq!(Label::key_repr(n).describe(&s), "[140234567890123]");
        assert_eq!(Label::dict_key(n).name(), Some(n));
        assert_eq!(add_unindexed_name(&mut s, |_| false), None);
    }

    #[test]
    fn kind_weakness_and_payload_survive_packing() {
        let mut s = StringTable::new();
        let id = s.intern("name");
        let l = Label::attr(id).weak();
        assert!(l.is_weak());
        assert_eq!(l.kind(), LabelKind::Attr);
        assert_eq!(l.name(), Some(id));
        assert!(Label::referent().is_weak());
        assert!(!Label::index(7).is_weak());
        assert_eq!(Label::index(7).number(), Some(7));
        assert_eq!(Label::index(7).name(), None);
    }

    #[test]
    fn oversized_payloads_keep_their_kind_but_lose_the_payload() {
        let s = StringTable::new();
        let huge = Label::index(usize::MAX);
        assert_eq!(huge.kind(), LabelKind::Index);
        assert_eq!(huge.number(), None);
        assert_eq!(huge.describe(&s), "[?]");
        let big_id = Label::attr(StringId(u32::MAX));
        assert_eq!(big_id.kind(), LabelKind::Attr);
        assert_eq!(big_id.name(), None);
    }

    #[test]
    fn ints_are_written_as_rust_formats_them() {
        for v in [
            0,
            7,
            -7,
            10,
            42,
            -100,
            1_000_000_007,
            140_234_567_890_123,
            (1 << 60) - 1,
            -(1 << 60) + 1,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::from("x");
            push_int(&mut out, v);
            assert_eq!(out, format!("x{v}"));
        }
    }

    #[test]
    fn hostile_names_are_quoted_and_escaped() {
        let mut s = StringTable::new();
        let evil = s.intern("a'b\\c\n\u{7}");
        assert_eq!(Label::key(evil).describe(&s), r"['a\'b\\c\n\x07']");
    }
}
