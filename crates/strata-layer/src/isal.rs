//! Raw deflate through ISA-L's igzip (the system's libisal), about 1.4x zlib-rs's speed
//! on x86-64: the inflater of [`crate::Decoder::without_gzip_crc`] (see `build.rs`; the
//! gzip framing around it stays in [`crate::decompress`]).
//!
//! The C state lives behind an opaque pointer (`csrc/isal_shim.c`), allocated and freed
//! by the shim: Rust never sees the layout of ISA-L's `struct inflate_state`.

use std::ffi::{c_int, c_void};
use std::io::{self, BufRead, Read};

#[allow(unsafe_code)]
mod ffi {
    use std::ffi::{c_int, c_void};

    // SAFETY: declarations matching csrc/isal_shim.c, which build.rs compiles whenever
    // this module is compiled (cfg(strata_isal)); the shim loads libisal itself.
    unsafe extern "C" {
        pub(super) fn strata_isal_available() -> c_int;
        pub(super) fn strata_isal_new() -> *mut c_void;
        pub(super) fn strata_isal_free(state: *mut c_void);
        pub(super) fn strata_isal_inflate(
            state: *mut c_void,
            input: *const u8,
            in_len: u32,
            output: *mut u8,
            out_len: u32,
            consumed: *mut u32,
            produced: *mut u32,
            done: *mut c_int,
            rest: *mut u8,
            rest_len: *mut u32,
        ) -> c_int;
    }
}

/// Whether the system's libisal could be loaded: the shim loads it on the first call
/// (once per process), not at start-up.
pub(crate) fn available() -> bool {
    // SAFETY: no arguments; the shim loads the library once (pthread_once) and says
    // whether both functions it calls were found.
    #[allow(unsafe_code)]
    let loaded = unsafe { ffi::strata_isal_available() };
    loaded != 0
}

/// One ISA-L inflate state (about 30 KiB on the heap).
struct State(*mut c_void);

// SAFETY: the state is heap memory owned by this value alone (no thread-local or shared
// data in it); moving it to another thread is moving a pointer to memory nobody else
// touches.
#[allow(unsafe_code)]
unsafe impl Send for State {}

/// What one call to [`State::inflate`] did.
struct Step {
    consumed: usize,
    produced: usize,
    done: bool,
    rest: [u8; 8],
    rest_len: usize,
}

impl State {
    fn new() -> io::Result<State> {
        // SAFETY: no arguments; returns a pointer to a fresh state or null.
        #[allow(unsafe_code)]
        let p = unsafe { ffi::strata_isal_new() };
        if p.is_null() && !available() {
            Err(io::Error::new(io::ErrorKind::Unsupported, "ISA-L (libisal) could not be loaded"))
        } else if p.is_null() {
            Err(io::Error::new(io::ErrorKind::OutOfMemory, "allocating an inflate state"))
        } else {
            Ok(State(p))
        }
    }

    fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> io::Result<Step> {
        let in_len = u32::try_from(input.len()).unwrap_or(u32::MAX);
        let out_len = u32::try_from(output.len()).unwrap_or(u32::MAX);
        let (mut consumed, mut produced, mut done, mut rest_len) = (0u32, 0u32, 0 as c_int, 0u32);
        let mut rest = [0u8; 8];
        // SAFETY: self.0 is a live state; the input and output pointers are valid for
        // in_len and out_len bytes (at most the slices' lengths) for the duration of the
        // call, which keeps no pointer to them afterwards (the shim sets next_in and
        // next_out anew on each call); the out-parameters point to locals; rest has the
        // 8 bytes the shim may write.
        #[allow(unsafe_code)]
        let ret = unsafe {
            ffi::strata_isal_inflate(
                self.0,
                input.as_ptr(),
                in_len,
                output.as_mut_ptr(),
                out_len,
                &mut consumed,
                &mut produced,
                &mut done,
                rest.as_mut_ptr(),
                &mut rest_len,
            )
        };
        if ret < 0 {
            let what = match ret {
                -1 => "invalid deflate block",
                -2 => "invalid deflate symbol",
                -3 => "invalid lookback distance",
                _ => "inflate failed",
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("corrupt deflate stream: {what}")));
        }
        Ok(Step {
            consumed: (consumed as usize).min(input.len()),
            produced: (produced as usize).min(output.len()),
            done: done != 0,
            rest,
            rest_len: (rest_len as usize).min(8),
        })
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: self.0 is a live state from strata_isal_new, freed once, here.
        #[allow(unsafe_code)]
        unsafe {
            ffi::strata_isal_free(self.0)
        }
    }
}

/// A raw deflate stream read from a [`BufRead`], which it consumes up to the end of the
/// stream exactly: bytes ISA-L read ahead past the end are kept in [`Deflate::rest`].
pub(crate) struct Deflate<B> {
    inner: B,
    state: State,
    done: bool,
    rest: Vec<u8>,
}

impl<B: BufRead> Deflate<B> {
    pub(crate) fn new(inner: B) -> io::Result<Self> {
        Ok(Deflate { inner, state: State::new()?, done: false, rest: Vec::new() })
    }

    /// The bytes after the stream's end that were read out of the reader (once the
    /// stream has ended).
    pub(crate) fn rest(&self) -> &[u8] {
        &self.rest
    }

    pub(crate) fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: BufRead> Read for Deflate<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let step = self.state.inflate(input, buf)?;
            self.inner.consume(step.consumed);
            if step.done {
                self.done = true;
                self.rest.extend_from_slice(step.rest.get(..step.rest_len).unwrap_or_default());
                return Ok(step.produced);
            }
            if step.produced > 0 {
                return Ok(step.produced);
            }
            if eof {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "deflate stream truncated"));
            }
            if step.consumed == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream: no progress"));
            }
        }
    }
}
