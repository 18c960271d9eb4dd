//! Arrays on 2 MiB boundaries, marked for transparent huge pages.

/// A zeroed array placed on 2 MiB boundaries and marked for transparent huge pages:
/// lookups touch it at random, and with 4 KiB pages nearly every probe would also miss the
/// TLB (dearer still under virtualisation's nested page tables).
///
/// Large arrays are mapped straight from the kernel rather than taken from the allocator:
/// after a load frees its big temporaries, glibc serves even multi-megabyte requests from
/// heap memory that is already backed by 4 KiB pages, where `madvise` comes too late. A
/// fresh mapping advised before its first touch gets huge pages; on the 200,000-range table
/// that doubled random lookups.
pub struct HugeVec<T: Copy + Default = u64> {
    /// The array: into `store`'s `Vec` or mapping. Kept here so that indexing, on every
    /// lookup, costs no branch on where the memory came from.
    ptr: *mut T,
    len: usize,
    store: Store<T>,
}

enum Store<T> {
    /// Owns the buffer `ptr` points into.
    Heap(#[allow(dead_code)] Vec<T>),
    /// The whole mapping (for `munmap`), of which the array is the aligned part.
    Mapped {
        base: *mut libc::c_void,
        size: usize,
    },
}

// SAFETY: a `Mapped` store owns its mapping exclusively, like a `Vec` owns its buffer, and
// hands out access only through `&self`/`&mut self`.
unsafe impl<T: Copy + Default + Send> Send for HugeVec<T> {}
// SAFETY: as above; shared access is read-only.
unsafe impl<T: Copy + Default + Sync> Sync for HugeVec<T> {}

const HUGE: usize = 2 << 20;

impl<T: Copy + Default> HugeVec<T> {
    pub fn zeroed(len: usize) -> HugeVec<T> {
        let size = std::mem::size_of::<T>().max(1);
        let heap = || {
            let mut v = vec![T::default(); len];
            HugeVec {
                ptr: v.as_mut_ptr(),
                len,
                store: Store::Heap(v),
            }
        };
        // From half a huge page up, round up to whole huge pages: one TLB entry instead of
        // 256 is worth the padding.
        let Some(bytes) = len.checked_mul(size) else {
            return heap();
        };
        if bytes < HUGE / 2 || std::mem::align_of::<T>() > HUGE {
            return heap();
        }
        let body = bytes.next_multiple_of(HUGE);
        let map = body + HUGE;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return heap();
        }
        let start = (base as usize).next_multiple_of(HUGE);
        let ptr = start as *mut T;
        // SAFETY: `start..start + body` lies inside the fresh mapping (`map` has one huge
        // page of slack for the alignment); madvise only changes how the kernel backs it,
        // and failure (no THP) is harmless. Each element is written before any is read,
        // and `start` is aligned for `T` (a multiple of 2 MiB).
        unsafe {
            libc::madvise(start as *mut libc::c_void, body, libc::MADV_HUGEPAGE);
            for i in 0..len {
                ptr.add(i).write(T::default());
            }
        }
        HugeVec {
            ptr,
            len,
            store: Store::Mapped { base, size: map },
        }
    }

    pub fn from_slice(v: &[T]) -> HugeVec<T> {
        let mut h = HugeVec::zeroed(v.len());
        h.copy_from_slice(v);
        h
    }
}

impl<T: Copy + Default> Drop for HugeVec<T> {
    fn drop(&mut self) {
        if let Store::Mapped { base, size } = self.store {
            // SAFETY: `base`/`size` are exactly what mmap returned and no slice of the
            // mapping outlives `self`.
            unsafe {
                libc::munmap(base, size);
            }
        }
    }
}

impl<T: Copy + Default> std::ops::Deref for HugeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised elements owned by `store` (a `Vec`
        // that is never touched again, or the mapping), which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Copy + Default> std::ops::DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
