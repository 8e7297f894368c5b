//! The framing MD5 and SHA-256 share: input cut into 64-byte blocks for a
//! compression function, then padded with 0x80, zeros and the message's
//! length in bits (little-endian for MD5, big-endian for SHA-256).

#[derive(Clone)]
pub struct Blocks {
    buf: [u8; 64],
    buffered: usize,
    len: u64,
}

impl Default for Blocks {
    fn default() -> Self {
        Blocks {
            buf: [0; 64],
            buffered: 0,
            len: 0,
        }
    }
}

impl Blocks {
    /// Feeds `data`, calling `compress` for every full block.
    pub fn update(&mut self, mut data: &[u8], mut compress: impl FnMut(&[u8; 64])) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let n = (64 - self.buffered).min(data.len());
            self.buf[self.buffered..self.buffered + n].copy_from_slice(&data[..n]);
            self.buffered += n;
            data = &data[n..];
            if self.buffered < 64 {
                return;
            }
            compress(&self.buf);
            self.buffered = 0;
        }
        let mut chunks = data.chunks_exact(64);
        for block in &mut chunks {
            compress(block.try_into().expect("a 64-byte chunk"));
        }
        let rest = chunks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// Pads the message, with its length in bits encoded by `length`, and
    /// compresses the last block or two.
    pub fn finish(mut self, length: fn(u64) -> [u8; 8], compress: impl FnMut(&[u8; 64])) {
        let bits = self.len.wrapping_mul(8);
        let pad = if self.buffered < 56 {
            56 - self.buffered
        } else {
            120 - self.buffered
        };
        let mut tail = [0u8; 72];
        tail[0] = 0x80;
        tail[pad..pad + 8].copy_from_slice(&length(bits));
        self.update(&tail[..pad + 8], compress);
    }
}
