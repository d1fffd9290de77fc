//! The text buffer `/metrics` renders into, kept between scrapes: an exposition of many MB
//! written into fresh memory spends as long in page faults as in formatting (10 k series,
//! 19.6 MB: ≈ 19 ms of CPU into fresh memory, ≈ 9 ms into a reused buffer; `cargo xtask bench`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The largest buffer kept for the next scrape (≈ 16 k live series); a larger exposition is
/// rendered into fresh memory each time, so what is kept between scrapes stays bounded.
const KEEP_MAX_BYTES: usize = 32 << 20;

/// The spare buffer, and how long the previous exposition was.
#[derive(Debug, Default)]
pub(crate) struct RenderBuffers {
    spare: Mutex<String>,
    last_len: AtomicUsize,
}

impl RenderBuffers {
    /// An empty buffer with room for an exposition as long as the previous one and an eighth
    /// more, or `estimate` bytes if more (so a text of many MB is not grown by doubling, each
    /// step a copy).
    pub fn take(self: &Arc<Self>, estimate: usize) -> Exposition {
        let mut text = std::mem::take(&mut *self.lock());
        let last = self.last_len.load(Ordering::Relaxed);
        text.reserve((last + last / 8).max(estimate) + 16 * 1024);
        Exposition {
            text,
            home: Arc::clone(self),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, String> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A rendered exposition; its buffer goes back to the [`RenderBuffers`] when it is dropped
/// (for an HTTP answer: once the body is sent).
#[derive(Debug)]
pub struct Exposition {
    text: String,
    home: Arc<RenderBuffers>,
}

impl Exposition {
    /// The buffer to write into.
    pub(crate) fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }

    /// Marks the text finished: the next render is sized from its length.
    pub(crate) fn finish(self) -> Self {
        self.home.last_len.store(self.text.len(), Ordering::Relaxed);
        self
    }
}

impl std::ops::Deref for Exposition {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<[u8]> for Exposition {
    fn as_ref(&self) -> &[u8] {
        self.text.as_bytes()
    }
}

impl Drop for Exposition {
    fn drop(&mut self) {
        if self.text.capacity() > KEEP_MAX_BYTES {
            return;
        }
        let mut spare = self.home.lock();
        if spare.capacity() < self.text.capacity() {
            self.text.clear();
            *spare = std::mem::take(&mut self.text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_and_sized_from_the_last_text() {
        let buffers = Arc::new(RenderBuffers::default());
        let mut first = buffers.take(0);
        first.text_mut().push_str(&"x".repeat(100_000));
        let first = first.finish();
        let kept = first.text.as_ptr();
        drop(first);
        let second = buffers.take(0);
        assert_eq!(second.text.as_ptr(), kept, "the same memory");
        assert!(second.is_empty());
        assert!(second.text.capacity() >= 100_000 + 100_000 / 8);
        // Taken while another is out: a fresh buffer, still sized from the last text.
        let third = buffers.take(10);
        assert!(third.text.capacity() >= 100_000);
        assert!(
            buffers.take(1 << 20).text.capacity() >= 1 << 20,
            "an estimate above it"
        );
    }

    #[test]
    fn a_huge_buffer_is_not_kept() {
        let buffers = Arc::new(RenderBuffers::default());
        let mut huge = buffers.take(0);
        huge.text_mut().reserve(KEEP_MAX_BYTES + 1);
        drop(huge);
        assert_eq!(buffers.lock().capacity(), 0);
    }
}
