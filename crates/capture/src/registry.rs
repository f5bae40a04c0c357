//! What the capture knows about each type it meets: its names, how to size its objects, and how to
//! enumerate their references. Worked out once per type per capture, then looked up per object.
//!
//! How references are enumerated follows CPython's own `subtype_traverse`: a class defined in
//! Python adds its `__slots__`, its `__dict__` (or inline attribute values) and a reference to the
//! class itself on top of the nearest base that has a different `tp_traverse` (the "solid" base).
//! When that base is a builtin heaplens has a layout for (dict, list, function, frame, ...), the
//! capture reads the fields itself and labels each edge; otherwise it calls the type's
//! `tp_traverse` (exactly what the garbage collector does) and labels what it can by matching the
//! pointers against member slots.

use crate::abi::Abi;
use crate::env::Env;
use crate::layout::Layout;
use crate::raw::{self, field, read, Obj, Type};
use hashbrown::HashMap;
use heaplens_core::graph::NodeFlags;
use heaplens_core::strings::{StringId, StringTable};
use heaplens_core::types::{TypeFlags, TypeId, TypeInfo, TypeTable};
use pyo3::ffi;
use std::rc::Rc;

/// How the references of an object are enumerated (chosen by its solid base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walker {
    /// No references (str, int, float, bytes, object).
    Nothing,
    Dict,
    DefaultDict,
    OrderedDict,
    List,
    Tuple,
    Set,
    Function,
    Code,
    Cell,
    Method,
    Module,
    Type,
    Frame,
    Generator,
    WeakRef,
    Exception,
    Traceback,
    /// Call the type's `tp_traverse` and label by matching.
    Traverse,
}

/// Which `__sizeof__` the type uses; heaplens replicates the builtin ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeKind {
    /// `object.__sizeof__`: `tp_basicsize + |ob_size| * tp_itemsize`.
    Generic,
    Int,
    Str,
    List,
    Dict,
    Set,
    ByteArray,
    Code,
    Frame,
    Generator,
    Type,
    OrderedDict,
    Deque,
    Array,
    /// A `__sizeof__` heaplens does not replicate: sized as `Generic` and flagged.
    Approximate,
}

/// An object-pointer slot at a fixed offset, with its name.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub offset: usize,
    pub name: StringId,
    /// The offset counts from the end of a variable-size object's items (3.15's
    /// `_Py_AFTER_ITEMS`: `__slots__` of a tuple subclass).
    pub after_items: bool,
}

impl Slot {
    /// The slot's address in the object `o`.
    ///
    /// # Safety
    /// `o` must be a live object of a type that has this slot.
    #[inline]
    pub unsafe fn address(&self, o: Obj) -> *const u8 {
        let mut offset = self.offset;
        if self.after_items {
            unsafe {
                let itemsize = (*raw::ob_type(o)).tp_itemsize.max(0) as usize;
                offset += raw::ob_size(o).unsigned_abs() * itemsize;
            }
        }
        (o as *const u8).wrapping_add(offset)
    }
}

/// Whether the member definition at `m` has `_Py_AFTER_ITEMS` (3.15+).
unsafe fn member_after_items(l: &Layout, m: *const u8) -> bool {
    Layout::has(l.member_after_items)
        && unsafe { read::<i32>(m, l.member_flags) } as usize & l.member_after_items != 0
}

/// Where an object of a type declares how many entries a container holds at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Nowhere.
    None,
    /// A deque (or a subclass): its own `maxlen`.
    DequeMaxlen,
    /// A `functools._lru_cache_wrapper`: the `maxsize` of its `cache` dict.
    LruCache,
}

impl Bound {
    /// What `tp` declares. An `lru_cache` wrapper is recognised by its name and its size, as
    /// its type lives in a module's state, not in a symbol.
    ///
    /// # Safety
    /// `tp` must be a live type object.
    unsafe fn of(l: &Layout, tp: Type, size: SizeKind) -> Bound {
        if size == SizeKind::Deque && Layout::has(l.deque_maxlen) {
            return Bound::DequeMaxlen;
        }
        // SAFETY: a live type's name is a C string.
        let lru = Layout::has(l.lru_cache_maxsize)
            && unsafe { (*tp).tp_basicsize } as usize == l.lru_cache_size
            && unsafe { raw::c_str((*tp).tp_name) } == "functools._lru_cache_wrapper";
        if lru {
            Bound::LruCache
        } else {
            Bound::None
        }
    }
}

/// Everything the capture needs about one type.
#[derive(Debug)]
pub struct TypeEntry {
    pub id: TypeId,
    pub walker: Walker,
    pub size: SizeKind,
    /// `__slots__` of the Python-defined levels of the class (`T_OBJECT_EX` members).
    pub slots: Vec<Slot>,
    /// Object members of every level (C `tp_members` too), for labelling `tp_traverse` results.
    pub members: Vec<Slot>,
    /// Instances keep attributes inline (`Py_TPFLAGS_MANAGED_DICT`).
    pub managed_dict: bool,
    /// Offset of a `__dict__` slot added by a Python level (0 for none; negative counts from the
    /// end of a variable-size object, as `tp_dictoffset` does).
    pub dict_offset: isize,
    /// Instances hold a reference to their (heap) type that no traverse reports for us.
    pub class_edge: bool,
    /// Whether the type itself is a heap type.
    pub heap: bool,
    pub node_flags: NodeFlags,
    pub is_exception: bool,
    /// Whether the type matches the caller's type filter (`by_type`).
    pub matched: bool,
    /// Where its objects declare a container's bound.
    pub bound: Bound,
    /// Objects of this type refer to nothing (str, int, float, bytes): a walk can finish with
    /// one the moment it meets it.
    pub leaf: bool,
}

/// The string and type tables a registry writes names into.
pub struct Tables<'a> {
    pub strings: &'a mut StringTable,
    pub types: &'a mut TypeTable,
}

/// Which types a walk is looking for (sets [`TypeEntry::matched`]).
#[derive(Clone, Debug)]
pub enum TypeFilter {
    Nothing,
    Everything,
    /// Types named by this query, as [`TypeTable::matches`] reads it.
    Named(String),
}

/// Per-capture cache of [`TypeEntry`] by type pointer.
pub struct Registry {
    entries: Vec<Rc<TypeEntry>>,
    by_ptr: HashMap<usize, u32>,
    /// A direct-mapped cache in front of `by_ptr`: a heap mixes a few types (str, int, dict,
    /// one class) object after object, and each lookup must cost next to nothing.
    recent: [(usize, u32); RECENT],
    filter: TypeFilter,
}

const RECENT: usize = 64;

impl Registry {
    pub fn new(filter: TypeFilter) -> Self {
        Registry {
            entries: Vec::new(),
            by_ptr: HashMap::new(),
            recent: [(0, 0); RECENT],
            filter,
        }
    }

    /// The entry at `index` (shared, so a walk can hold it while the registry grows).
    pub fn entry(&self, index: u32) -> &Rc<TypeEntry> {
        &self.entries[index as usize]
    }

    /// The type object behind each type id this registry issued: (id, type pointer).
    pub fn type_pointers(
        &self,
    ) -> impl Iterator<Item = (heaplens_core::types::TypeId, usize)> + '_ {
        self.by_ptr
            .iter()
            .map(|(&ptr, &i)| (self.entries[i as usize].id, ptr))
    }

    /// The entry index of `tp`, classifying it on first sight.
    ///
    /// # Safety
    /// `tp` must be a live type object and the GIL held.
    #[inline]
    pub unsafe fn lookup<A: Abi>(&mut self, env: &Env, tp: Type, tables: &mut Tables<'_>) -> u32 {
        let key = tp as usize;
        let slot = (key >> 6) % RECENT;
        if self.recent[slot].0 == key {
            return self.recent[slot].1;
        }
        let index = match self.by_ptr.get(&key) {
            Some(&i) => i,
            None => {
                let entry = unsafe { classify::<A>(env, tp, tables, &self.filter) };
                let i = self.entries.len() as u32;
                self.entries.push(Rc::new(entry));
                self.by_ptr.insert(key, i);
                i
            }
        };
        self.recent[slot] = (key, index);
        index
    }
}

/// Names of a type: (module, `__name__`, `__qualname__`).
///
/// # Safety
/// `tp` must be a live type object.
pub unsafe fn type_names(l: &Layout, tp: Type) -> (String, String, String) {
    unsafe {
        if raw::has_flag(tp, ffi::Py_TPFLAGS_HEAPTYPE) {
            let tpb = tp as *const u8;
            let mut name = String::new();
            let mut qualname = String::new();
            let n = field(tpb, l.ht_name);
            if !n.is_null() && raw::has_flag(raw::ob_type(n), ffi::Py_TPFLAGS_UNICODE_SUBCLASS) {
                raw::str_text(l, n, 200, &mut name);
            }
            let q = field(tpb, l.ht_qualname);
            if !q.is_null() && raw::has_flag(raw::ob_type(q), ffi::Py_TPFLAGS_UNICODE_SUBCLASS) {
                raw::str_text(l, q, 200, &mut qualname);
            }
            if name.is_empty() {
                name = raw::c_str((*tp).tp_name);
            }
            if qualname.is_empty() {
                qualname = name.clone();
            }
            let mut module = String::new();
            let dict = (*tp).tp_dict;
            if !dict.is_null() {
                crate::dicts::for_each_dict_entry(l, dict, |k, v| {
                    if module.is_empty()
                        && raw::str_eq_ascii(l, k, b"__module__")
                        && raw::has_flag(raw::ob_type(v), ffi::Py_TPFLAGS_UNICODE_SUBCLASS)
                    {
                        raw::str_text(l, v, 200, &mut module);
                    }
                });
            }
            (module, name, qualname)
        } else {
            let full = raw::c_str((*tp).tp_name);
            match full.rfind('.') {
                Some(dot) => (
                    full[..dot].to_string(),
                    full[dot + 1..].to_string(),
                    full[dot + 1..].to_string(),
                ),
                None => ("builtins".to_string(), full.clone(), full),
            }
        }
    }
}

unsafe fn classify<A: Abi>(
    env: &Env,
    tp: Type,
    tables: &mut Tables<'_>,
    filter: &TypeFilter,
) -> TypeEntry {
    let l = env.layout;
    let k = &env.types;
    unsafe {
        let (module, name, qualname) = type_names(l, tp);
        let size = sizeof_kind::<A>(env, tp);
        let mut flags = TypeFlags::default();
        if size == SizeKind::Approximate {
            flags = flags | TypeFlags::APPROXIMATE_SIZE;
        }
        let info = TypeInfo {
            module: tables.strings.intern(&module),
            name: tables.strings.intern(&name),
            qualname: tables.strings.intern(&qualname),
            flags,
        };
        let id = tables.types.push(info).unwrap_or(TypeId(0));
        let matched = match filter {
            TypeFilter::Nothing => false,
            TypeFilter::Everything => true,
            TypeFilter::Named(query) => tables.types.matches(id, tables.strings, query),
        };

        // Python-defined levels, as subtype_traverse walks them.
        let mut slots = Vec::new();
        let mut base = tp;
        while !base.is_null()
            && Env::traverse_of(base) == env.subtype_traverse
            && env.subtype_traverse != 0
        {
            let nslots = raw::ob_size(base as Obj);
            if nslots > 0 {
                let members =
                    (base as *const u8).add((*raw::ob_type(base as Obj)).tp_basicsize as usize);
                for i in 0..nslots as usize {
                    let m = members.add(i * l.member_size);
                    if read::<i32>(m, l.member_type) as usize == l.t_object_ex {
                        let n = raw::c_str(read::<*const std::ffi::c_char>(m, l.member_name));
                        slots.push(Slot {
                            offset: read::<isize>(m, l.member_offset) as usize,
                            name: tables.strings.intern(&n),
                            after_items: member_after_items(l, m),
                        });
                    }
                }
            }
            base = (*base).tp_base;
        }
        let solid = if base.is_null() { tp } else { base };
        let python_levels = solid != tp;

        let traverse = Env::traverse_of(solid);
        let is = |t: Type| traverse != 0 && traverse == Env::traverse_of(t);
        let walker = if is(k.dict) {
            Walker::Dict
        } else if is(k.list) {
            Walker::List
        } else if is(k.tuple) {
            Walker::Tuple
        } else if is(k.set) || is(k.frozenset) {
            Walker::Set
        } else if is(k.function) {
            Walker::Function
        } else if is(k.cell) {
            Walker::Cell
        } else if is(k.method) {
            Walker::Method
        } else if is(k.module) {
            Walker::Module
        } else if is(k.type_) {
            Walker::Type
        } else if is(k.frame) {
            Walker::Frame
        } else if is(k.generator) || is(k.coroutine) || is(k.async_generator) {
            Walker::Generator
        } else if is(k.weakref) {
            Walker::WeakRef
        } else if is(k.base_exception) {
            Walker::Exception
        } else if is(k.traceback) {
            Walker::Traceback
        } else if is(k.defaultdict) {
            Walker::DefaultDict
        } else if is(k.odict) {
            Walker::OrderedDict
        } else if solid == k.code {
            Walker::Code
        } else if traverse != 0 {
            Walker::Traverse
        } else {
            Walker::Nothing
        };

        // C-level object members of every level, for labelling tp_traverse results.
        let mut members = Vec::new();
        let mut t = tp;
        let mut guard = 0;
        while !t.is_null() && guard < 64 {
            let mut m = (*t).tp_members as *const u8;
            let mut n = 0;
            while !m.is_null() && n < 256 {
                let name_ptr = read::<*const std::ffi::c_char>(m, l.member_name);
                if name_ptr.is_null() {
                    break;
                }
                let mt = read::<i32>(m, l.member_type) as usize;
                if mt == l.t_object || mt == l.t_object_ex {
                    let off = read::<isize>(m, l.member_offset);
                    if off > 0 {
                        members.push(Slot {
                            offset: off as usize,
                            name: tables.strings.intern(&raw::c_str(name_ptr)),
                            after_items: member_after_items(l, m),
                        });
                    }
                }
                m = m.add(l.member_size);
                n += 1;
            }
            t = (*t).tp_base;
            guard += 1;
        }

        let managed_dict =
            python_levels && raw::has_flag(tp, l.tpflags_managed_dict as std::ffi::c_ulong);
        let dict_offset =
            if python_levels && !managed_dict && (*tp).tp_dictoffset != (*solid).tp_dictoffset {
                (*tp).tp_dictoffset
            } else {
                0
            };
        let heap = raw::has_flag(tp, ffi::Py_TPFLAGS_HEAPTYPE);
        let node_flags = match walker {
            Walker::Module => NodeFlags::MODULE,
            Walker::Type => NodeFlags::TYPE,
            Walker::Frame => NodeFlags::FRAME,
            _ => NodeFlags::empty(),
        };
        let class_edge = heap && walker != Walker::Traverse;
        TypeEntry {
            leaf: walker == Walker::Nothing
                && !class_edge
                && slots.is_empty()
                && !managed_dict
                && dict_offset == 0,
            id,
            walker,
            size,
            slots,
            members,
            managed_dict,
            dict_offset,
            class_edge,
            heap,
            node_flags,
            is_exception: raw::has_flag(tp, ffi::Py_TPFLAGS_BASE_EXC_SUBCLASS),
            matched,
            bound: Bound::of(l, tp, size),
        }
    }
}

/// Finds which `__sizeof__` `tp` inherits, by looking it up along the MRO (reading the type
/// dicts; no attribute lookup machinery runs).
unsafe fn sizeof_kind<A: Abi>(env: &Env, tp: Type) -> SizeKind {
    let l = env.layout;
    let k = &env.types;
    unsafe {
        let mut found: Obj = std::ptr::null_mut();
        let mro = (*tp).tp_mro;
        let mut lookup_in = |t: Type| {
            let dict = A::type_dict(env, t as Obj);
            if found.is_null() && !dict.is_null() {
                crate::dicts::for_each_dict_entry(l, dict, |key, v| {
                    if found.is_null() && raw::str_eq_ascii(l, key, b"__sizeof__") {
                        found = v;
                    }
                });
            }
        };
        if !mro.is_null() && raw::ob_type(mro) == k.tuple {
            let n = raw::ob_size(mro);
            let items = (mro as *const u8).add(l.tuple_items) as *const Obj;
            for i in 0..n.max(0) as usize {
                lookup_in(*items.add(i) as Type);
            }
        } else {
            let mut t = tp;
            while !t.is_null() {
                lookup_in(t);
                t = (*t).tp_base;
            }
        }
        if found.is_null() {
            return SizeKind::Generic;
        }
        if raw::ob_type(found) != k.method_descriptor {
            return SizeKind::Approximate;
        }
        let owner = field(found as *const u8, l.descr_type) as Type;
        if owner == k.object {
            SizeKind::Generic
        } else if owner == k.int {
            SizeKind::Int
        } else if owner == k.str_ {
            SizeKind::Str
        } else if owner == k.list {
            SizeKind::List
        } else if owner == k.dict {
            SizeKind::Dict
        } else if owner == k.set || owner == k.frozenset {
            SizeKind::Set
        } else if owner == k.bytearray {
            SizeKind::ByteArray
        } else if owner == k.code {
            SizeKind::Code
        } else if owner == k.frame {
            SizeKind::Frame
        } else if owner == k.generator || owner == k.coroutine || owner == k.async_generator {
            SizeKind::Generator
        } else if owner == k.type_ {
            SizeKind::Type
        } else if owner == k.odict {
            SizeKind::OrderedDict
        } else if owner == k.deque {
            SizeKind::Deque
        } else if raw::c_str((*owner).tp_name) == "array.array" {
            SizeKind::Array
        } else {
            SizeKind::Approximate
        }
    }
}

/// The name a path shows for a module (`app`), a class (`app.models.Order`, `dict` for
/// builtins) or a function (`app.views.handle`); `None` for other objects.
///
/// # Safety
/// `o` must be a live object of the type `t` describes, GIL held.
pub unsafe fn object_name(l: &Layout, o: Obj, t: &TypeEntry) -> Option<String> {
    let text = |s: Obj| {
        let mut out = String::new();
        // SAFETY: `s` is checked to be a str before it is read.
        let ok = !s.is_null()
            && unsafe { raw::has_flag(raw::ob_type(s), ffi::Py_TPFLAGS_UNICODE_SUBCLASS) }
            && unsafe { raw::str_text(l, s, 200, &mut out) };
        ok.then_some(out)
    };
    let ob = o as *const u8;
    unsafe {
        match t.walker {
            Walker::Module => text(field(ob, l.module_name)),
            Walker::Type => {
                let (module, _, qualname) = type_names(l, o as Type);
                Some(if module.is_empty() || module == "builtins" {
                    qualname
                } else {
                    format!("{module}.{qualname}")
                })
            }
            Walker::Function => {
                let qualname = text(field(ob, l.func_qualname))?;
                Some(match text(field(ob, l.func_module)) {
                    Some(module) if module != "builtins" => format!("{module}.{qualname}"),
                    _ => qualname,
                })
            }
            _ => None,
        }
    }
}
