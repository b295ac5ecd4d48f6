//! A warm restart of a slab whose pages are in a file (`slab:file=PATH`), after memcached's
//! (`-e PATH`, `restart.c`): at shutdown the slab writes `PATH.meta`, which says which class
//! each page of the file belongs to; a new slab opens the file, maps every page again at a new
//! base, gives each page back to its class, and asks the owner of the items which chunks hold
//! a live one ([`Slab::adopt_chunks`]); the others go on the free lists.
//!
//! The metadata names pages by their index in the file, never by address:
//!
//! ```text
//! meta = "FRAGSLAB" version:u16 page:u32 classes:u32 chunk_size:u32 * classes
//!        pages:u64 class:u8 * pages     (0: free, 255: the global pool, k: class k)
//! ```

use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::{Slab, SlabConfig, PAGE_SIZE};
use crate::page::PageSource;

const MAGIC: &[u8; 8] = b"FRAGSLAB";
const VERSION: u16 = 1;
const POOL: u8 = 255;
/// The address range reserved for a page file: 64 GiB, never backed unless used.
pub const RESERVED: usize = 1 << 36;

/// The metadata file beside a page file.
pub fn meta_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".meta");
    PathBuf::from(s)
}

impl<P: PageSource> Slab<P> {
    /// Writes `FILE.meta` for the page file (atomically: a temporary file renamed into place);
    /// returns its bytes. An error when the slab's pages are not a file's.
    pub fn save_meta(&self) -> Result<u64, String> {
        let file = self
            .source
            .page_file()
            .ok_or("the slab's pages are not in a file (slab:file=PATH)")?;
        let mut out = Vec::with_capacity(32 + self.classes.len() * 4 + file.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
        out.extend_from_slice(&(self.classes.len() as u32).to_le_bytes());
        for c in &self.classes {
            out.extend_from_slice(&c.size.to_le_bytes());
        }
        out.extend_from_slice(&(file.len() as u64).to_le_bytes());
        let mut pages = vec![0u8; file.len()];
        for (&base, class) in &self.pages {
            let p = NonNull::new(base as *mut u8).expect("page bases are non-null");
            if let Some(i) = file.index_of(p) {
                pages[i] = class.map_or(POOL, |c| c + 1);
            }
        }
        out.extend_from_slice(&pages);
        let meta = meta_path(file.path());
        let tmp = {
            let mut s = meta.as_os_str().to_owned();
            s.push(format!(".tmp-{}", std::process::id()));
            PathBuf::from(s)
        };
        let io = |e: std::io::Error| format!("writing {}: {e}", meta.display());
        std::fs::write(&tmp, &out).map_err(io)?;
        std::fs::rename(&tmp, &meta).map_err(io)?;
        Ok(out.len() as u64)
    }

    /// Takes the chunks of every class page that hold a live item: `live(chunk, chunk_size)`
    /// answers with the item's requested size, or `None` for a free chunk, which goes on its
    /// class's free list. For a slab just [`reopen`](Slab::reopen)ed, whose free lists are
    /// empty.
    pub fn adopt_chunks(&mut self, live: &mut dyn FnMut(NonNull<u8>, usize) -> Option<usize>) {
        for id in 0..self.classes.len() {
            let size = self.classes[id].size as usize;
            let per = self.classes[id].chunks_per_page as usize;
            for p in 0..self.classes[id].page_list.len() {
                let page = self.classes[id].page_list[p];
                for i in 0..per {
                    // SAFETY: `i * size < chunks_per_page * size <= PAGE_SIZE`.
                    let chunk = unsafe { NonNull::new_unchecked(page.as_ptr().add(i * size)) };
                    match live(chunk, size) {
                        Some(requested) => {
                            self.classes[id].requested += requested as u64;
                            self.tally.on_alloc(requested, size);
                        }
                        None => Self::push_free(&mut self.classes[id], chunk.as_ptr()),
                    }
                }
            }
        }
    }
}

fn bad(meta: &Path, at: usize, why: &str) -> String {
    format!("{} byte {at}: {why}", meta.display())
}

/// Reads the metadata, every length checked against what is left.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(self.path, self.at, "the file ends early"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

impl<P: PageSource> Slab<P> {
    /// A warm restart: writes the metadata, then opens the page file again as a new slab with
    /// the same settings and limit, every page mapped at a new base and given to its class
    /// with no free chunk yet (call [`adopt_chunks`](Slab::adopt_chunks) next). Returns the
    /// new slab and the metadata's bytes.
    pub fn restart_slab(&self) -> Result<(Self, u64), String> {
        let meta_bytes = self.save_meta()?;
        let source = self.source.reopen()?;
        let slab = Self::reopen(self.config.clone(), source, self.mem_limit)?;
        Ok((slab, meta_bytes))
    }

    /// A slab over `source` (a page file opened again) as the file's metadata says.
    fn reopen(config: SlabConfig, source: P, limit: Option<u64>) -> Result<Self, String> {
        let file = source
            .page_file()
            .ok_or("the slab's pages are not in a file")?;
        let path = file.path().to_path_buf();
        let meta = meta_path(&path);
        let bytes = std::fs::read(&meta).map_err(|e| format!("reading {}: {e}", meta.display()))?;
        let mut m = Cursor {
            bytes: &bytes,
            at: 0,
            path: &meta,
        };
        if m.take(8)? != MAGIC {
            return Err(bad(&meta, 0, "not a fraglab slab metadata file"));
        }
        let v = m.u16()?;
        if v != VERSION {
            return Err(bad(
                &meta,
                8,
                &format!("version {v}, this build reads {VERSION}"),
            ));
        }
        let page = m.u32()? as usize;
        let n = m.u32()? as usize;
        if page != PAGE_SIZE || n > super::MAX_CLASSES {
            return Err(bad(
                &meta,
                10,
                &format!("pages of {page} bytes and {n} classes"),
            ));
        }
        let table = config.classes().map_err(|e| e.to_string())?;
        let mut sizes = Vec::with_capacity(n);
        for _ in 0..n {
            sizes.push(m.u32()?);
        }
        let want: Vec<u32> = table.iter().map(|c| c.chunk_size).collect();
        if sizes != want {
            return Err(format!(
                "{}: the file was written with chunk sizes {sizes:?}, and this slab's are {want:?} (another factor, min or chunk_max)",
                meta.display()
            ));
        }
        let pages_at = m.at;
        let pages = m.u64()?;
        if pages != file.len() as u64 {
            return Err(bad(
                &meta,
                pages_at,
                &format!("{pages} pages, but the file holds {}", file.len()),
            ));
        }
        let first = m.at;
        let classes = m.take(pages as usize)?.to_vec();
        let mut free = Vec::new();
        let mut placed = Vec::new();
        for (i, &c) in classes.iter().enumerate() {
            match c {
                0 => free.push(i),
                POOL => placed.push((file.page_at(i), None)),
                k if (k as usize) <= n => placed.push((file.page_at(i), Some(k - 1))),
                k => return Err(bad(&meta, first + i, &format!("class {k} of {n}"))),
            }
        }
        let mut source = source;
        source.page_file_mut().expect("a page file").set_free(free);
        let mut slab = Slab::with_source(config, source).map_err(|e| e.to_string())?;
        slab.set_mem_limit(limit);
        for (p, class) in placed {
            slab.mem_malloced += PAGE_SIZE as u64;
            slab.pages.insert(p.as_ptr() as usize, class);
            match class {
                None => slab.pool.push(p),
                Some(id) => {
                    let c = &mut slab.classes[id as usize];
                    c.pages += 1;
                    c.page_list.push(p);
                }
            }
        }
        Ok(slab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Allocator;

    /// A damaged metadata file is refused, naming the byte; nothing is allocated for a count
    /// the file does not back.
    #[test]
    fn a_damaged_metadata_file_is_refused_at_its_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let config = SlabConfig {
            item_max: 512 << 10,
            factor: 2.0,
            file: Some(dir.join("slabs")),
            ..SlabConfig::default()
        };
        let mut slab = Slab::new(config).unwrap();
        for n in [100, 1000, 5000, 100_000] {
            slab.alloc(n).unwrap();
        }
        slab.save_meta().unwrap();
        let meta = meta_path(&dir.join("slabs"));
        let good = std::fs::read(&meta).unwrap();
        let reopen = |bytes: &[u8], config: SlabConfig| -> Result<(), String> {
            std::fs::write(&meta, bytes).unwrap();
            Slab::reopen(config, slab.source.reopen()?, None).map(|_| ())
        };
        let config = slab.config.clone();
        reopen(&good, config.clone()).unwrap();
        for len in 0..good.len() {
            let e = reopen(&good[..len], config.clone()).unwrap_err();
            assert!(e.contains("byte"), "cut at {len}: {e}");
        }
        let damaged = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            reopen(&b, config.clone()).unwrap_err()
        };
        assert!(damaged(0, b'X').contains("byte 0: not a fraglab"));
        assert!(damaged(8, 99).contains("version 99"));
        // The page count: more pages than the file holds.
        let pages_at = 8 + 2 + 4 + 4 + 4 * slab.classes.len();
        assert!(damaged(pages_at, 0xff).contains("pages, but the file holds"));
        let last = good.len() - 1;
        assert!(damaged(last, 200).contains(&format!("byte {last}: class 200")));
        let other = SlabConfig {
            factor: 1.25,
            ..config.clone()
        };
        let e = reopen(&good, other).unwrap_err();
        assert!(e.contains("chunk sizes"), "{e}");
        drop(slab);
    }
}
