//! vdu (U4): the disk use of a guest's own data. A plain du counts every
//! unified file in every guest that links it; vdu counts a file only when
//! all its links are inside the tree measured (a file with one link, or a
//! guest's own hard links such as perl / perl5.36.0), and with `--shared`
//! also the tree's share of the files it links with others (size / links
//! for each link inside). One filesystem, no symlink followed.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::Stat;

use super::scan::{self, Visitor};
use crate::Result;

/// Sizes of one directory (with everything below it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The directory as given on the command line, joined with the
    /// walk-relative path.
    pub path: PathBuf,
    /// Own data: directories, and files all of whose links are inside.
    pub bytes: u64,
    /// The same in 512-byte blocks allocated.
    pub blocks: u64,
    /// Own non-directory inodes.
    pub files: u64,
    /// The tree's share of files linked from outside it: size * links
    /// inside / links, summed.
    pub shared_bytes: u64,
    pub shared_blocks: u64,
    /// Inodes linked from outside the tree.
    pub shared_files: u64,
}

impl Usage {
    /// du's unit: KiB of allocated blocks, rounded up.
    pub fn kib(&self) -> u64 {
        self.blocks.div_ceil(2)
    }

    pub fn shared_kib(&self) -> u64 {
        self.shared_blocks.div_ceil(2)
    }
}

struct Inode {
    dir: usize,
    seen: u64,
    nlink: u64,
    size: u64,
    blocks: u64,
}

#[derive(Default)]
struct Du {
    dirs: Vec<(Usage, Option<usize>)>,
    stack: Vec<usize>,
    /// Directory indexes in du's order (a directory after its contents).
    postorder: Vec<usize>,
    linked: HashMap<(u64, u64), Inode>,
}

impl Visitor for Du {
    fn enter(&mut self, _: Option<&OwnedFd>, _: &CStr, rel: &Path, st: &Stat) -> Result<bool> {
        let usage = Usage {
            path: rel.to_path_buf(),
            bytes: st.st_size as u64,
            blocks: st.st_blocks as u64,
            ..Usage::default()
        };
        self.dirs.push((usage, self.stack.last().copied()));
        self.stack.push(self.dirs.len() - 1);
        Ok(true)
    }

    fn leave(&mut self, _: &Path) -> Result<()> {
        if let Some(i) = self.stack.pop() {
            self.postorder.push(i);
        }
        Ok(())
    }

    fn entry(&mut self, _: &OwnedFd, _: &CStr, _: &Path, st: &Stat) -> Result<()> {
        let dir = *self.stack.last().unwrap_or(&0);
        // u32 on some architectures (aarch64).
        #[allow(clippy::unnecessary_cast)]
        let nlink = st.st_nlink as u64;
        if nlink <= 1 {
            let u = &mut self.dirs[dir].0;
            u.bytes += st.st_size as u64;
            u.blocks += st.st_blocks as u64;
            u.files += 1;
            return Ok(());
        }
        self.linked
            .entry((st.st_dev, st.st_ino))
            .or_insert(Inode {
                dir,
                seen: 0,
                nlink,
                size: st.st_size as u64,
                blocks: st.st_blocks as u64,
            })
            .seen += 1;
        Ok(())
    }
}

/// The usage of the tree at `path`: every directory in du's order (the
/// top last), or the top only with `summary`.
pub fn disk_usage(path: &Path, summary: bool) -> Result<Vec<Usage>> {
    let top = scan::open_dir(path)?;
    let mut du = Du::default();
    scan::walk(&top, &mut du)
        .map_err(|e| crate::Error::failure(format!("{}: {}", path.display(), e.message())))?;
    for inode in du.linked.values() {
        let u = &mut du.dirs[inode.dir].0;
        if inode.seen >= inode.nlink {
            u.bytes += inode.size;
            u.blocks += inode.blocks;
            u.files += 1;
        } else {
            // u128: size * links cannot overflow.
            let share = |v: u64| (v as u128 * inode.seen as u128 / inode.nlink as u128) as u64;
            u.shared_bytes += share(inode.size);
            u.shared_blocks += share(inode.blocks);
            u.shared_files += 1;
        }
    }
    // Children come after their parent in the walk: adding in reverse
    // order totals each subtree before it is added to its parent.
    for i in (1..du.dirs.len()).rev() {
        if let (child, Some(p)) = du.dirs[i].clone() {
            let parent = &mut du.dirs[p].0;
            parent.bytes += child.bytes;
            parent.blocks += child.blocks;
            parent.files += child.files;
            parent.shared_bytes += child.shared_bytes;
            parent.shared_blocks += child.shared_blocks;
            parent.shared_files += child.shared_files;
        }
    }
    let order: Vec<usize> = if summary {
        du.postorder.last().copied().into_iter().collect()
    } else {
        du.postorder
    };
    Ok(order
        .into_iter()
        .map(|i| {
            let mut u = du.dirs[i].0.clone();
            u.path = if u.path.as_os_str().is_empty() {
                path.to_path_buf()
            } else {
                path.join(&u.path)
            };
            u
        })
        .collect())
}

/// du's lines: `KIB<TAB>PATH`, or `KIB<TAB>SHARED-KIB<TAB>PATH`.
pub fn text(rows: &[Usage], shared: bool) -> String {
    let mut out = String::new();
    for u in rows {
        if shared {
            out.push_str(&format!("{}\t{}\t", u.kib(), u.shared_kib()));
        } else {
            out.push_str(&format!("{}\t", u.kib()));
        }
        scan::escape_into(&mut out, u.path.as_os_str().as_bytes());
        out.push('\n');
    }
    out
}

/// A JSON array with every figure of every row.
pub fn json(rows: &[Usage]) -> String {
    crate::json::list(rows.iter().map(|u| {
        crate::json::Object::new()
            .str("path", u.path.as_os_str().as_bytes())
            .num("kib", u.kib())
            .num("bytes", u.bytes)
            .num("files", u.files)
            .num("shared_kib", u.shared_kib())
            .num("shared_bytes", u.shared_bytes)
            .num("shared_files", u.shared_files)
    }))
}
