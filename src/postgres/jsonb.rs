//! A jsonb argument decoded into serde_json without panicking: pgrx's `JsonB`
//! panics (XX000) on a document that serde_json refuses, such as one nested
//! deeper than its recursion limit (128); this raises 22023 instead.

use crate::error::TenancyError::InvalidValue;
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::FromDatum;
use pgrx::nullable::Nullable;
use pgrx::{direct_function_call, impl_sql_translatable, pg_sys};
use std::ffi::CStr;

pub struct Jsonb(pub serde_json::Value);

impl_sql_translatable!(Jsonb, "jsonb");

impl FromDatum for Jsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a jsonb datum of the call's argument; jsonb_out returns a palloc'd string.
        let text = unsafe {
            let detoasted = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
            let cstr = direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())])
                .expect("jsonb_out returns a string");
            let text = cstr.to_string_lossy().into_owned();
            pg_sys::pfree(cstr.as_ptr().cast_mut().cast());
            text
        };
        match serde_json::from_str(&text) {
            Ok(value) => Some(Jsonb(value)),
            Err(e) => InvalidValue(
                format!("unsupported JSON value: {e}"),
                "Nest objects and arrays at most 127 levels deep.".into(),
            )
            .raise(),
        }
    }
}

// SAFETY: the same as pgrx's own FromDatum-based arguments (argue_from_datum!).
unsafe impl<'fcx> ArgAbi<'fcx> for Jsonb {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        // SAFETY: pgrx calls this for a non-NULL jsonb argument.
        unsafe { arg.unbox_arg_using_from_datum() }.expect("a non-NULL argument")
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        // SAFETY: as above; NULL becomes Nullable::Null.
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}
