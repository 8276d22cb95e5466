//! Raw declarations of the libtcc API (`/usr/include/libtcc.h`, TinyCC 0.9.27).
//! Nothing here is safe to call without the crate's global lock: TinyCC keeps
//! global state and allows one compilation per process at a time.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
pub struct TCCState {
    _private: [u8; 0],
}

pub type TCCErrorFunc = Option<unsafe extern "C" fn(opaque: *mut c_void, msg: *const c_char)>;

pub const TCC_OUTPUT_MEMORY: c_int = 1;
/// `TCC_RELOCATE_AUTO`: TinyCC allocates and owns the code memory until `tcc_delete`.
pub const TCC_RELOCATE_AUTO: *mut c_void = std::ptr::without_provenance_mut(1);

extern "C" {
    pub fn tcc_new() -> *mut TCCState;
    pub fn tcc_delete(s: *mut TCCState);
    pub fn tcc_set_lib_path(s: *mut TCCState, path: *const c_char);
    pub fn tcc_set_error_func(s: *mut TCCState, opaque: *mut c_void, f: TCCErrorFunc);
    pub fn tcc_set_options(s: *mut TCCState, options: *const c_char);
    pub fn tcc_add_include_path(s: *mut TCCState, path: *const c_char) -> c_int;
    pub fn tcc_add_file(s: *mut TCCState, filename: *const c_char) -> c_int;
    pub fn tcc_compile_string(s: *mut TCCState, buf: *const c_char) -> c_int;
    pub fn tcc_set_output_type(s: *mut TCCState, output_type: c_int) -> c_int;
    pub fn tcc_add_symbol(s: *mut TCCState, name: *const c_char, val: *const c_void) -> c_int;
    pub fn tcc_relocate(s: *mut TCCState, ptr: *mut c_void) -> c_int;
    pub fn tcc_get_symbol(s: *mut TCCState, name: *const c_char) -> *mut c_void;
    /// Internal (`ST_FUNC`), not in libtcc.h: opens a file for the preprocessor.
    /// Declared for the include hook in `files.rs`, which calls it after its checks.
    pub fn tcc_open(s: *mut TCCState, filename: *const c_char) -> c_int;
}
