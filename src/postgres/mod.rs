//! The boundary with PostgreSQL internals: the only place with `unsafe`.

pub mod citus;
pub mod ddl;
pub mod functions;
pub mod gucs;
pub mod hooks;
pub mod initplans;
pub mod invalidation;
pub mod jsonb;
pub mod measure;
pub mod objects;
pub mod parser;
pub mod query;
pub mod relations;
pub mod resources;
pub mod rows;
pub mod security;
pub mod shared;
pub mod system;

/// A value of this backend read on every statement. A backend runs the
/// extension on one thread (pgrx refuses calls from any other), so a plain
/// static serves; a `thread_local!` would cost a call (`__tls_get_addr`) at
/// each access from a shared library. Only `Copy` values: nothing borrowed.
pub struct BackendCell<T: Copy>(std::cell::Cell<T>);

// SAFETY: only the backend's own thread touches it (see above).
unsafe impl<T: Copy> Sync for BackendCell<T> {}

impl<T: Copy> BackendCell<T> {
    pub const fn new(value: T) -> Self {
        BackendCell(std::cell::Cell::new(value))
    }
    pub fn get(&self) -> T {
        self.0.get()
    }
    pub fn set(&self, value: T) {
        self.0.set(value)
    }
    pub fn replace(&self, value: T) -> T {
        self.0.replace(value)
    }
}

/// A value of this backend that is not `Copy`, read on every statement: a
/// `RefCell` in a plain static, for the reason `BackendCell` gives. Used as
/// a `thread_local!` is (`with`, `with_borrow`, `with_borrow_mut`).
pub struct BackendRefCell<T>(std::cell::RefCell<T>);

// SAFETY: only the backend's own thread touches it (see `BackendCell`).
unsafe impl<T> Sync for BackendRefCell<T> {}

impl<T> BackendRefCell<T> {
    pub const fn new(value: T) -> Self {
        BackendRefCell(std::cell::RefCell::new(value))
    }
    pub fn with<R>(&self, f: impl FnOnce(&std::cell::RefCell<T>) -> R) -> R {
        f(&self.0)
    }
    pub fn with_borrow<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0.borrow())
    }
    pub fn with_borrow_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// What a feature tells the boundary about an object: which relations'
/// changes invalidate, which functions run restricted.
pub type OidTest = fn(pgrx::pg_sys::Oid) -> bool;

/// The cells of a PostgreSQL list (NIL is empty).
///
/// # Safety
/// `list` is NIL or a valid list that outlives the slice.
unsafe fn cells<'a>(list: *const pgrx::pg_sys::List) -> &'a [pgrx::pg_sys::ListCell] {
    if list.is_null() {
        return &[];
    }
    // SAFETY: a list's `elements` holds `length` cells.
    unsafe { std::slice::from_raw_parts((*list).elements, (*list).length as usize) }
}
