//! Arrays on 2 MiB boundaries, marked for transparent huge pages.

/// A zeroed array placed on 2 MiB boundaries and marked for transparent huge pages:
/// lookups touch it at random, and with 4 KiB pages nearly every probe would also miss the
/// TLB (dearer still under virtualisation's nested page tables).
pub struct HugeVec<T: Copy + Default = u64> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

const HUGE: usize = 2 << 20;

impl<T: Copy + Default> HugeVec<T> {
    pub fn zeroed(len: usize) -> HugeVec<T> {
        let size = std::mem::size_of::<T>().max(1);
        // From half a huge page up, round up to whole huge pages: one TLB entry instead of
        // 256 is worth the padding.
        if len * size < HUGE / 2 {
            return HugeVec {
                buf: vec![T::default(); len],
                off: 0,
                len,
            };
        }
        let buf = vec![T::default(); (len * size).next_multiple_of(HUGE) / size + HUGE / size];
        let addr = buf.as_ptr() as usize;
        let off = (addr.next_multiple_of(HUGE) - addr) / size;
        let start = buf[off..].as_ptr() as *mut libc::c_void;
        // SAFETY: the range lies inside `buf`'s allocation; madvise only changes how the
        // kernel backs it, and failure (no THP) is harmless.
        unsafe {
            libc::madvise(
                start,
                (len * size).next_multiple_of(HUGE),
                libc::MADV_HUGEPAGE,
            );
        }
        HugeVec { buf, off, len }
    }

    pub fn from_slice(v: &[T]) -> HugeVec<T> {
        let mut h = HugeVec::zeroed(v.len());
        h.copy_from_slice(v);
        h
    }
}

impl<T: Copy + Default> std::ops::Deref for HugeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

impl<T: Copy + Default> std::ops::DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}
