//! Where the configuration lives: /etc/vservers.conf and /etc/vservers/ by
//! default, movable as a whole for tests and relocated installs.

use std::path::{Path, PathBuf};

/// The directory that holds vservers.conf and vservers/ (normally /etc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRoot {
    dir: PathBuf,
}

impl ConfigRoot {
    pub const DEFAULT: &'static str = "/etc";
    /// The environment variable that moves the configuration root.
    pub const ENV: &'static str = "VSBOX_CONFIG_ROOT";

    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ConfigRoot { dir: dir.into() }
    }

    /// The root from an explicit option, else $VSBOX_CONFIG_ROOT, else /etc.
    pub fn select(option: Option<PathBuf>) -> Self {
        let env = std::env::var_os(Self::ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        ConfigRoot::new(
            option
                .or(env)
                .unwrap_or_else(|| PathBuf::from(Self::DEFAULT)),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// vservers.conf: the site-wide defaults.
    pub fn global_file(&self) -> PathBuf {
        self.dir.join("vservers.conf")
    }

    /// vservers/: one NAME.conf per guest.
    pub fn guests_dir(&self) -> PathBuf {
        self.dir.join("vservers")
    }

    pub fn guest_file(&self, name: &str) -> PathBuf {
        self.guests_dir().join(format!("{name}.conf"))
    }

    /// Seed files say `source /etc/vservers.conf`: when the root is moved,
    /// /etc/vservers.conf and /etc/vservers/... move with it. Other absolute
    /// paths stay as written.
    pub fn map_default_path(&self, path: &Path) -> PathBuf {
        let default = Path::new(Self::DEFAULT);
        if let Ok(rest) = path.strip_prefix(default) {
            let first = rest.components().next().map(|c| c.as_os_str().to_owned());
            if first.is_some_and(|f| f == "vservers.conf" || f == "vservers") {
                return self.dir.join(rest);
            }
        }
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_paths_move_with_the_root() {
        let root = ConfigRoot::new("/tmp/x");
        assert_eq!(
            root.map_default_path(Path::new("/etc/vservers.conf")),
            Path::new("/tmp/x/vservers.conf")
        );
        assert_eq!(
            root.map_default_path(Path::new("/etc/vservers/a.sh")),
            Path::new("/tmp/x/vservers/a.sh")
        );
        assert_eq!(
            root.map_default_path(Path::new("/etc/passwd")),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            root.map_default_path(Path::new("/etc/vservers.confx")),
            Path::new("/etc/vservers.confx")
        );
        assert_eq!(
            root.guest_file("web1"),
            Path::new("/tmp/x/vservers/web1.conf")
        );
    }
}
