//! Unwinding a copied stack with framehop: DWARF CFI (.eh_frame, .debug_frame) where the
//! module has it, frame pointers where it does not.
//!
//! /proc/PID/task/TID/syscall gives SP and PC only. RBP, which frame-pointer frames need, is
//! recovered by CFI once a frame saved it; until then it is unknown (0 here). When the walk
//! stops at a frame that uses the frame pointer before RBP was recovered (code built with
//! frame pointers, called from a libc wrapper that did not save RBP), the frame pointer is
//! guessed from the copy: the first slot above SP that starts a plausible frame record (a saved
//! RBP pointing further up the stack, or 0, or one from which the walk goes on two frames,
//! followed by a return address into code).

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{FrameAddress, Unwinder};

/// Frames kept at most per thread: deep recursion is cut, and said so.
pub const MAX_FRAMES: usize = 256;
/// How far above SP the frame pointer is looked for.
const GUESS_SPAN: u64 = 64 * 1024;

/// A copy of a thread's stack: `bytes` were at `base` in the target.
pub struct StackCopy {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl StackCopy {
    pub fn word(&self, addr: u64) -> Result<u64, ()> {
        let off = addr.checked_sub(self.base).ok_or(())? as usize;
        let b = self
            .bytes
            .get(off..off.checked_add(8).ok_or(())?)
            .ok_or(())?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Ok(u64::from_le_bytes(w))
    }

    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }
}

/// The walk's result.
#[derive(Debug, Default)]
pub struct Walk {
    pub frames: Vec<FrameAddress>,
    /// Why it stopped early; `None` when it reached an outermost frame.
    pub incomplete: Option<String>,
    pub guessed_bp: bool,
}

/// Walks from `pc`/`sp` (and `bp`, 0 when unknown). `is_root(addr)` says the function at a frame's lookup address is
/// where a thread starts (nothing to find above it); `in_code(addr)` that an address is in a
/// module's executable mapping.
#[allow(clippy::too_many_arguments)]
pub fn walk(
    unwinder: &UnwinderX86_64<Vec<u8>>,
    cache: &mut CacheX86_64,
    copy: &StackCopy,
    pc: u64,
    sp: u64,
    bp: u64,
    is_root: &dyn Fn(u64) -> bool,
    in_code: &dyn Fn(u64) -> bool,
) -> Walk {
    let mut read = |addr: u64| copy.word(addr);
    let mut regs = UnwindRegsX86_64::new(pc, sp, bp);
    let mut addr = FrameAddress::from_instruction_pointer(pc);
    let mut w = Walk {
        frames: vec![addr],
        ..Walk::default()
    };
    loop {
        if w.frames.len() >= MAX_FRAMES {
            w.incomplete = Some(format!("cut at {MAX_FRAMES} frames"));
            break;
        }
        let before = regs;
        match unwinder.unwind_frame(addr, &mut regs, cache, &mut read) {
            Ok(Some(ra)) => match FrameAddress::from_return_address(ra) {
                Some(a) => {
                    addr = a;
                    w.frames.push(a);
                }
                None => break,
            },
            Ok(None) => {
                if before.bp() == 0 && !w.guessed_bp && !is_root(addr.address_for_lookup()) {
                    // Whether the walk goes on two frames from a record at `at`: this frame by
                    // its frame pointer, and its caller by whatever it uses.
                    let mut goes_on = |at: u64| -> bool {
                        let mut r = before;
                        r.set_bp(at);
                        let mut read = |a: u64| copy.word(a);
                        let Ok(Some(ra)) = unwinder.unwind_frame(addr, &mut r, cache, &mut read)
                        else {
                            return false;
                        };
                        let Some(next) = FrameAddress::from_return_address(ra) else {
                            return false;
                        };
                        if !in_code(ra) {
                            return false;
                        }
                        match unwinder.unwind_frame(next, &mut r, cache, &mut read) {
                            Ok(Some(ra2)) => in_code(ra2),
                            Ok(None) => is_root(next.address_for_lookup()),
                            Err(_) => false,
                        }
                    };
                    if let Some(bp) = guess_bp(copy, before.sp(), in_code, &mut goes_on) {
                        regs = before;
                        regs.set_bp(bp);
                        w.guessed_bp = true;
                        continue;
                    }
                    w.incomplete = Some(
                        "a frame uses the frame pointer, which is not known at a syscall and \
                         was not found in the stack copy"
                            .into(),
                    );
                }
                break;
            }
            Err(e) => {
                w.incomplete = Some(e.to_string());
                break;
            }
        }
    }
    w
}

/// The frame pointer of the frame whose SP is `sp`: the first slot at or above SP holding a
/// frame record, a saved frame pointer followed by a return address into code, where the saved
/// frame pointer is 0, or points further up into the copy to another record, or `goes_on`
/// says the walk continues from there by the caller's CFI. The last is the case of code built
/// with frame pointers (Rust's std) called from code built without (a Rust program at -O):
/// the caller's RBP, saved in the record, is whatever the caller had in that register.
fn guess_bp(
    copy: &StackCopy,
    sp: u64,
    in_code: &dyn Fn(u64) -> bool,
    goes_on: &mut dyn FnMut(u64) -> bool,
) -> Option<u64> {
    let start = sp.checked_add(7)? & !7;
    let stop = copy.end().min(start.saturating_add(GUESS_SPAN));
    let record = |at: u64| -> Option<u64> {
        let saved = copy.word(at).ok()?;
        let ra = copy.word(at + 8).ok()?;
        in_code(ra).then_some(saved)
    };
    (start..stop).step_by(8).find(|&at| match record(at) {
        Some(0) => true,
        Some(next) => (next > at && next < copy.end() && record(next).is_some()) || goes_on(at),
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three frame records, as code built with frame pointers leaves them, and junk below.
    #[test]
    fn frame_pointer_found_in_copy() {
        let base = 0x7000_0000u64;
        let mut words = vec![0u64; 32];
        words[0] = 0x1234; // junk: not code
        words[1] = 0x7000_0100; // points up, but not followed by code
        words[4] = base + 8 * 8; // record 1: saved bp → record 2
        words[5] = 0x40_1010; // return address
        words[8] = 0; // record 2: outermost
        words[9] = 0x40_2020;
        let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let copy = StackCopy { base, bytes };
        let in_code = |a: u64| (0x40_0000..0x50_0000).contains(&a);
        let no = &mut |_| false;
        assert_eq!(guess_bp(&copy, base, &in_code, no), Some(base + 4 * 8));
        assert_eq!(
            guess_bp(&copy, base + 6 * 8, &in_code, no),
            Some(base + 8 * 8)
        );
        assert_eq!(guess_bp(&copy, base + 10 * 8, &in_code, no), None);
        // A saved frame pointer that is junk (the caller did not use RBP as one): taken when
        // the walk goes on from there.
        words[4] = 0x1234;
        let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let copy = StackCopy { base, bytes };
        assert_eq!(guess_bp(&copy, base, &in_code, no), Some(base + 8 * 8));
        let at_4 = &mut |at| at == base + 4 * 8;
        assert_eq!(guess_bp(&copy, base, &in_code, at_4), Some(base + 4 * 8));
    }
}
