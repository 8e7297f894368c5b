//! Guest creation: `vserver NAME build` (seed: `vserver build`, newvserver,
//! vbuild).
//!
//! A build writes /etc/vservers/NAME.conf, fills a new directory by one of
//! the methods, gives the guest its own /etc/hostname and /etc/hosts, makes
//! /dev from a fixed list, gives it a machine-id, gives a copy of another
//! system new sshd host keys (identity.rs) and runs
//! /etc/vservers/install-post.sh. It is all or nothing: the tree is made in
//! a temporary directory next to the final one (same filesystem) and renamed
//! into place at the end; any failure removes the temporary tree, the final
//! directory if the rename was done, and every configuration file written.
//!
//! Security. A clone source is another guest, so its tree is hostile: it is
//! walked with directory descriptors and O_NOFOLLOW, symlinks are copied as
//! symlinks (their text, never followed), device nodes are never copied
//! (/dev comes from a fixed list), and the walk stays on the source's
//! filesystem. Hard links are shared inodes: the source guest's root can
//! still write to a file it shares with the new guest (the seed protected
//! them with its immutable-linkage flag; see vunify). So a clone copies,
//! never links, everything under /etc, /var, /root, /home and /tmp, and
//! every setuid or setgid file; the rest (programs and libraries) is linked,
//! and the report says so. Never clone from a guest you do not trust.
//! The host method copies everything (never links host files into a guest).

mod apt_sources;
pub(crate) mod copy;
mod debootstrap;
pub use debootstrap::parse_include;
pub use identity::ssh_host_keys;
pub(crate) mod identity;
mod interrupt;
mod populate;
pub(crate) mod tree;

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::conf::eval::Evaluator;
use crate::conf::guest::{DEFAULT_VSERVERS_ROOT, check_name};
use crate::conf::vars::Variables;
use crate::conf::{self, ConfError, ConfigRoot, GuestConfig};
use crate::context::vroot::check_vservers_root;
use crate::error::Context;
use crate::net::iproot::IpRoot;
use crate::progress::{Progress, Style};
use crate::{Error, Result};
use interrupt::Interrupts;

/// Directories whose files a build leaves out, keeping only their directory
/// structure (seed: newvserver's defaults).
pub const DEFAULT_EXCLUDED: [&str; 3] = ["/var/log", "/var/run", "/var/spool/mail"];

/// The directories the host method copies from the root server, when they
/// exist (symlinks, as on merged-/usr systems, are copied as symlinks).
pub const HOST_DIRS: [&str; 10] = [
    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "var", "opt",
];

/// How the guest's tree is filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// The standard directories, /dev and a few /etc files; nothing to run.
    Skeleton,
    /// A busybox-static userland: /bin/busybox and its applet links,
    /// passwd, group, inittab and an rc script. Needs no network.
    Busybox,
    /// A copy of the root server's system directories (the seed's method).
    Host,
    /// A hard-link clone of another guest (vbuild).
    Clone(String),
    /// Debian's bootstrapper, when it is installed (needs the network).
    Debootstrap {
        suite: String,
        mirror: Option<String>,
    },
}

impl FromStr for Method {
    type Err = Error;

    /// `skeleton`, `busybox`, `host`, `clone:OTHER`, `debootstrap`,
    /// `debootstrap:SUITE` or `debootstrap:SUITE:MIRROR`.
    fn from_str(s: &str) -> Result<Self> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("skeleton", None) => Ok(Method::Skeleton),
            ("busybox", None) => Ok(Method::Busybox),
            ("host", None) => Ok(Method::Host),
            ("clone", Some(other)) if !other.is_empty() => Ok(Method::Clone(other.to_string())),
            ("debootstrap", None) => Ok(Method::Debootstrap {
                suite: "stable".into(),
                mirror: None,
            }),
            ("debootstrap", Some(rest)) if !rest.is_empty() => {
                let (suite, mirror) = match rest.split_once(':') {
                    Some((s, m)) => (s, Some(m.to_string())),
                    None => (rest, None),
                };
                Ok(Method::Debootstrap {
                    suite: suite.to_string(),
                    mirror,
                })
            }
            _ => Err(Error::usage(format!(
                "'{}' is not a build method (busybox, skeleton, host, clone:OTHER, debootstrap[:SUITE[:MIRROR]])",
                crate::error::shown(s)
            ))),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Skeleton => f.write_str("skeleton"),
            Method::Busybox => f.write_str("busybox"),
            Method::Host => f.write_str("host"),
            Method::Clone(other) => write!(f, "clone:{other}"),
            Method::Debootstrap { suite, mirror } => {
                write!(f, "debootstrap:{suite}")?;
                match mirror {
                    Some(m) => write!(f, ":{m}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub method: Method,
    /// The guest's host name (default: S_HOSTNAME of an existing
    /// configuration, else NAME).
    pub hostname: Option<String>,
    /// IPROOT, as in vserver.conf(5).
    pub ip: Option<String>,
    /// The `# Description:` of the configuration file.
    pub description: Option<String>,
    /// Guest paths copied as directory structure only (clone and host).
    pub excluded: Vec<PathBuf>,
    /// true: write vservers/NAME.conf (refused if it exists). false: use
    /// the existing one, which must exist.
    pub write_config: bool,
    /// VSERVERS_ROOT for a new vservers.conf, or written into NAME.conf
    /// when vservers.conf exists.
    pub vservers_root: Option<PathBuf>,
    /// The busybox binary for the busybox method (a static one).
    pub busybox: PathBuf,
    /// The host method's source directories (default `HOST_DIRS`); tests
    /// restrict it, since /usr alone may be gigabytes.
    pub host_dirs: Option<Vec<String>>,
    /// Replace the sshd host keys of a copy (clone, host) by new ones,
    /// made by the guest's own ssh-keygen.
    pub reset_ssh_keys: bool,
    /// debootstrap's --variant (None: its default, with systemd).
    pub variant: Option<String>,
    /// Packages debootstrap installs too (its --include).
    pub include: Vec<String>,
    /// The status line while the host and clone methods copy, and of
    /// debootstrap's progress (see build/debootstrap.rs).
    pub progress: Style,
}

impl BuildOptions {
    pub fn new(method: Method) -> Self {
        BuildOptions {
            method,
            hostname: None,
            ip: None,
            description: None,
            excluded: DEFAULT_EXCLUDED.iter().map(PathBuf::from).collect(),
            write_config: true,
            vservers_root: None,
            busybox: PathBuf::from("/bin/busybox"),
            host_dirs: None,
            reset_ssh_keys: true,
            variant: None,
            include: Vec::new(),
            progress: Style::Off,
        }
    }
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions::new(Method::Busybox)
    }
}

/// What a build did, for the applet to print (`--stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// The guest's root directory.
    pub path: PathBuf,
    /// The configuration file written, if any.
    pub config: Option<PathBuf>,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub files_linked: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs and the /dev nodes made.
    pub specials: u64,
    /// Entries left out: files in excluded directories, sockets, device
    /// nodes, other filesystems.
    pub skipped: u64,
    /// rc?.d start links removed (host method).
    pub services_off: u64,
    /// sshd host keys removed.
    pub ssh_keys_removed: u64,
    /// New sshd host keys were made by the guest's ssh-keygen.
    pub ssh_keys_made: bool,
    pub warnings: Vec<String>,
}

impl BuildReport {
    /// The seed's vbuild --stats, one count per line.
    pub fn stats(&self) -> String {
        format!(
            "Directories created: {}\nFiles copied: {} ({} bytes)\nFiles linked: {}\n\
             Symbolic links: {}\nSpecial files: {}\nEntries skipped: {}\n",
            self.dirs,
            self.files_copied,
            self.bytes_copied,
            self.files_linked,
            self.symlinks,
            self.specials,
            self.skipped
        )
    }

    /// The counts of a status line (see crate::progress).
    pub fn progress(&self) -> String {
        format!(
            "{} directories, {} files copied ({}), {} linked",
            self.dirs,
            self.files_copied,
            crate::progress::bytes(self.bytes_copied),
            self.files_linked
        )
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.warnings.push(text.into());
    }
}

/// Creates guest `name`: see the module documentation.
pub fn build(root: &ConfigRoot, name: &str, opts: &BuildOptions) -> Result<BuildReport> {
    check_name(name).map_err(Error::usage)?;
    let checked = check_options(name, opts)?;
    // Dropped last: a signal that interrupted the build ends the process
    // only once `undo` has removed what the build made.
    let interrupts = Interrupts::block()?;
    let mut undo = Undo::default();
    let result = build_inner(root, name, opts, &checked, &interrupts, &mut undo);
    if result.is_ok() {
        undo.commit();
    }
    result
}

/// The options, validated before anything is written.
struct Checked {
    excluded: Vec<PathBuf>,
    ip: Option<IpRoot>,
}

fn check_options(name: &str, opts: &BuildOptions) -> Result<Checked> {
    if let Some(h) = &opts.hostname {
        check_hostname(h)?;
    }
    let ip =
        match &opts.ip {
            Some(text) => Some(IpRoot::parse(text).map_err(|e| {
                Error::usage(format!("--ip '{}': {}", crate::error::shown(text), e,))
            })?),
            None => None,
        };
    if let Some(d) = &opts.description
        && d.contains(['\n', '\r'])
    {
        return Err(Error::usage("the description must be one line"));
    }
    if let Some(r) = &opts.vservers_root
        && (!r.is_absolute() || !is_plain_text(&r.to_string_lossy()))
    {
        return Err(Error::usage(format!(
            "VSERVERS_ROOT '{}' must be an absolute path without quotes, '$', '`' or '\\'",
            r.display()
        )));
    }
    let mut excluded = Vec::new();
    for dir in &opts.excluded {
        excluded.push(relative_guest_path(dir)?);
    }
    if !matches!(opts.method, Method::Debootstrap { .. })
        && (opts.variant.is_some() || !opts.include.is_empty())
    {
        return Err(Error::usage(
            "--variant and --include are options of the debootstrap method",
        ));
    }
    if let Some(v) = &opts.variant {
        debootstrap::check_variant(v)?;
    }
    if !opts.include.is_empty() {
        debootstrap::parse_include(&opts.include.join(","))?;
    }
    if let Method::Clone(other) = &opts.method {
        check_name(other).map_err(Error::usage)?;
        if other == name {
            return Err(Error::usage(format!(
                "{name}: a guest cannot be cloned from itself"
            )));
        }
    }
    Ok(Checked { excluded, ip })
}

/// A host name as written into the configuration and /etc/hostname.
fn check_hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !h.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "'{}' is not a valid host name (letters, digits, '-' and '.', at most 64)",
            crate::error::shown(h)
        )))
    }
}

/// Text safe inside double quotes of a configuration file.
fn is_plain_text(t: &str) -> bool {
    !t.contains(['"', '$', '`', '\\', '\n'])
}

/// "/var/log" -> "var/log"; refuses "..", "/" and the empty path.
fn relative_guest_path(dir: &Path) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for c in dir.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => rel.push(n),
            _ => {
                return Err(Error::usage(format!(
                    "excluded directory '{}' must not contain '..'",
                    dir.display()
                )));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(Error::usage(format!(
            "'{}' cannot be an excluded directory",
            dir.display()
        )));
    }
    Ok(rel)
}

fn build_inner(
    root: &ConfigRoot,
    name: &str,
    opts: &BuildOptions,
    checked: &Checked,
    interrupts: &Interrupts,
    undo: &mut Undo,
) -> Result<BuildReport> {
    let mut report = BuildReport::default();
    // The clone source first: a missing one must leave nothing behind.
    let clone_source = match &opts.method {
        Method::Clone(other) => {
            let source = conf::load(root, other, None)
                .map_err(|e| Error::failure(format!("cannot clone {other}: {e}")))?;
            let dir = source.vserver_dir;
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                _ => {
                    return Err(Error::failure(format!(
                        "cannot clone {other}: {} is not a directory",
                        dir.display()
                    )));
                }
            }
            Some(dir)
        }
        _ => None,
    };
    if let Method::Debootstrap { .. } = &opts.method {
        debootstrap::find()?;
    }

    // A new configuration is written under a hidden name and renamed into
    // place with the tree: a build that is killed leaves no guest behind,
    // only hidden leftovers, which the next build of NAME removes.
    let config_file = root.guest_file(name);
    let (config, temp_config) = if opts.write_config {
        if std::fs::symlink_metadata(&config_file).is_ok() {
            return Err(Error::failure(format!(
                "{name}: {} already exists",
                config_file.display()
            )));
        }
        remove_stale(&root.guests_dir(), &format!(".{name}.conf.build-"));
        let temp = write_configs(root, name, opts, checked, undo)?;
        let config = load_file(root, name, &temp).map_err(|e| {
            Error::failure(format!(
                "the configuration written does not load (a bug): {e}"
            ))
        })?;
        (config, Some(temp))
    } else {
        (conf::load(root, name, None)?, None)
    };
    let hostname = opts
        .hostname
        .clone()
        .or_else(|| config.hostname.clone())
        .unwrap_or_else(|| name.to_string());
    let ip = checked.ip.clone().unwrap_or_else(|| config.ip_root.clone());

    let final_dir = config.vserver_dir.clone();
    if std::fs::symlink_metadata(&final_dir).is_ok() {
        return Err(Error::failure(format!(
            "{name}: {} already exists",
            final_dir.display()
        )));
    }
    let vroot_existed = std::fs::symlink_metadata(&config.vservers_root).is_ok();
    check_vservers_root(&config.vservers_root)?;
    if !vroot_existed {
        undo.empty_dirs.push(config.vservers_root.clone());
    }
    let parent = final_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::failure(format!("{} has no parent", final_dir.display())))?;
    if !parent.is_dir() {
        return Err(Error::failure(format!(
            "{name}: {} is not a directory",
            parent.display()
        )));
    }
    remove_stale(parent, &format!(".{name}.build-"));
    let temp = parent.join(format!(".{name}.build-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&temp)
        .context(|| format!("cannot create {}", temp.display()))?;
    undo.dirs.push(temp.clone());
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))
        .context(|| format!("cannot set the mode of {}", temp.display()))?;
    let guest = tree::open_dir_path(&temp)?;

    let progress = Progress::new(&format!("vserver {name}"), opts.progress);
    let ctx = populate::Ctx {
        root,
        opts,
        excluded: &checked.excluded,
        temp: &temp,
        vservers_root: &config.vservers_root,
        interrupts,
        progress: &progress,
    };
    match &opts.method {
        Method::Skeleton => {}
        Method::Busybox => populate::busybox(&ctx, &guest, &mut report)?,
        Method::Host => {
            progress.phase("copying the host", "");
            populate::host(&ctx, &guest, &mut report)?;
            progress.finish(&report.progress());
        }
        Method::Clone(other) => {
            let source = clone_source
                .as_deref()
                .ok_or_else(|| Error::failure(format!("cannot clone {other}: no directory")))?;
            progress.phase("cloning", "");
            populate::clone(&ctx, source, &guest, &mut report)?;
            progress.finish(&report.progress());
            report.warn(format!(
                "{name} shares the inodes of {} linked files with {other}: {other}'s root can \
                 change them (files under /etc, /var, /root, /home and setuid files were copied)",
                report.files_linked
            ));
        }
        Method::Debootstrap { suite, mirror } => {
            debootstrap::run(&ctx, suite, mirror.as_deref())?;
        }
    }
    interrupts.check()?;
    populate::finish(&ctx, &guest, &hostname, &ip, &mut report)?;
    drop(guest);
    interrupts.check()?;

    tree::rename_noreplace(&temp, &final_dir)?;
    undo.dirs.retain(|d| d != &temp);
    undo.dirs.push(final_dir.clone());
    report.path = final_dir.clone();
    if let Some(temp) = temp_config {
        tree::rename_noreplace(&temp, &config_file)?;
        undo.files.retain(|f| f != &temp);
        undo.files.push(config_file.clone());
        report.config = Some(config_file);
    }
    // In a context of the guest's own: the guest and its configuration
    // are in place now (and still undone if this fails).
    if report.ssh_keys_removed > 0 {
        report.ssh_keys_made = identity::ssh_host_keys(root, name, &final_dir)?;
    }
    run_install_post(root, &final_dir)?;
    Ok(report)
}

/// vservers.conf if there is none, and vservers/NAME.conf under a hidden
/// name, returned.
fn write_configs(
    root: &ConfigRoot,
    name: &str,
    opts: &BuildOptions,
    checked: &Checked,
    undo: &mut Undo,
) -> Result<PathBuf> {
    let guests = root.guests_dir();
    if !guests.is_dir() {
        std::fs::create_dir_all(&guests)
            .context(|| format!("cannot create {}", guests.display()))?;
    }
    let global = root.global_file();
    let mut guest_root = opts.vservers_root.clone();
    if std::fs::symlink_metadata(&global).is_err() {
        let vroot = guest_root
            .take()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_VSERVERS_ROOT));
        let text = format!(
            "# Site-wide defaults for the guests (vserver.conf(5)); each\n\
             # vservers/NAME.conf sources this file first.\n\
             # VSERVERS_ROOT: the directory that holds the guests, kept at mode 000.\n\
             VSERVERS_ROOT={}\n",
            vroot.display()
        );
        create_new(&global, &text, undo)?;
    }
    let text = guest_config_text(name, opts, checked, guest_root.as_deref());
    let temp = guests.join(format!(".{name}.conf.build-{}", std::process::id()));
    create_new(&temp, &text, undo)?;
    Ok(temp)
}

/// conf::load, for a guest file not yet at its name.
fn load_file(
    root: &ConfigRoot,
    name: &str,
    file: &Path,
) -> std::result::Result<GuestConfig, ConfError> {
    let mut eval = Evaluator::new(root, Variables::default());
    let global = root.global_file();
    if global.exists() {
        eval.run(&global)?;
    }
    let description = eval.run(file)?;
    GuestConfig::from_vars(name, description, eval.vars)
}

/// Removes the leftovers `PREFIX<pid>` in `dir` of builds whose process is
/// gone (killed: nothing else leaves them).
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        // std's remove_dir_all does not follow symlinks in the tree.
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

fn create_new(path: &Path, text: &str, undo: &mut Undo) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::failure(format!("{} already exists", path.display()))
            } else {
                Error::io(format!("cannot create {}", path.display()), &e)
            }
        })?;
    undo.files.push(path.to_path_buf());
    file.write_all(text.as_bytes())
        .context(|| format!("cannot write {}", path.display()))
}

/// The guest's configuration file, with the main variables explained.
fn guest_config_text(
    name: &str,
    opts: &BuildOptions,
    checked: &Checked,
    vservers_root: Option<&Path>,
) -> String {
    let description = opts
        .description
        .clone()
        .unwrap_or_else(|| format!("guest {name}, built with the {} method", opts.method));
    let hostname = opts.hostname.as_deref().unwrap_or(name);
    let ip = checked
        .ip
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut t = format!(
        "# Description: {description}\n\
         source /etc/vservers.conf\n\
         # Written by `vserver {name} build`; the format is vserver.conf(5),\n\
         # `printconf {name}` shows the values in effect.\n\
         #\n\
         # S_HOSTNAME: the guest's host name.\n\
         S_HOSTNAME={hostname}\n\
         # IPROOT: the guest's addresses, [device:]ip[/mask] ... (at most 16);\n\
         # empty: the guest uses the host's addresses.\n"
    );
    if ip.is_empty() {
        t.push_str("#IPROOT=\"eth0:192.0.2.10/24\"\n");
    } else {
        t.push_str(&format!("IPROOT=\"{ip}\"\n"));
    }
    // New guests of Debian's default variant (systemd) get a user namespace
    // of their own; the others (minbase, busybox, copies of trees that may
    // sit on file systems without idmapped mounts) keep the default, off.
    let default_variant =
        matches!(opts.method, Method::Debootstrap { .. }) && opts.variant.is_none();
    let userns = if default_variant {
        "S_USERNS=yes"
    } else {
        "#S_USERNS=yes"
    };
    t.push_str(&format!(
        "# IPROOTDEV: the device the addresses are set up on at start.\n\
         #IPROOTDEV=eth0\n\
         # S_CONTEXT: a fixed context number (2-49151); empty: a dynamic one.\n\
         #S_CONTEXT=\n\
         # S_FLAGS: lock (no new namespaces inside the guest), sched, nproc,\n\
         # private, fakeinit (run the guest's own /sbin/init as pid 1).\n\
         S_FLAGS=\"lock\"\n\
         # S_CAPS: capabilities added to the default set, !CAP removes one.\n\
         #S_CAPS=\"CAP_NET_RAW\"\n\
         # S_USERNS: yes runs the guest in a user namespace of its own (its\n\
         # root an unprivileged host id; the tree needs idmapped mounts).\n\
         {userns}\n\
         # ULIMIT: resource limits in ulimit syntax.\n\
         #ULIMIT=\"-HS -u 200 -n 1024\"\n\
         # ONBOOT: yes starts the guest with the host (the vservers service);\n\
         # PRIORITY orders the guests (lower starts first, stops last).\n\
         ONBOOT=no\n\
         #PRIORITY=0\n",
    ));
    if let Some(r) = vservers_root {
        t.push_str(&format!(
            "# VSERVERS_ROOT: this guest's root is $VSERVERS_ROOT/{name}.\n\
             VSERVERS_ROOT={}\n",
            r.display()
        ));
    }
    t
}

/// /etc/vservers/install-post.sh GUESTDIR, if present and executable.
fn run_install_post(root: &ConfigRoot, dir: &Path) -> Result<()> {
    let script = root.guests_dir().join("install-post.sh");
    let runnable = std::fs::metadata(&script)
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !runnable {
        return Ok(());
    }
    let mut cmd = std::process::Command::new(&script);
    cmd.arg(dir).stdin(std::process::Stdio::null());
    super::run_host_script(&mut cmd, &script, &dir.display().to_string())
}

/// What to remove when a build fails: files written, directories made.
#[derive(Default)]
struct Undo {
    files: Vec<PathBuf>,
    /// Trees this build made (removed whole).
    dirs: Vec<PathBuf>,
    /// Directories this build made that others may have filled since.
    empty_dirs: Vec<PathBuf>,
    done: bool,
}

impl Undo {
    fn commit(&mut self) {
        self.done = true;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for f in self.files.iter().rev() {
            let _ = std::fs::remove_file(f);
        }
        // std's remove_dir_all does not follow symlinks in the tree.
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir_all(d);
        }
        for d in self.empty_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_and_print() {
        for text in [
            "busybox",
            "skeleton",
            "host",
            "clone:web1",
            "debootstrap:bookworm",
            "debootstrap:bookworm:http://deb.debian.org/debian",
        ] {
            assert_eq!(text.parse::<Method>().unwrap().to_string(), text);
        }
        assert_eq!(
            "debootstrap".parse::<Method>().unwrap(),
            Method::Debootstrap {
                suite: "stable".into(),
                mirror: None
            }
        );
        for bad in ["", "clone", "clone:", "copy", "busybox:x"] {
            assert_eq!(bad.parse::<Method>().unwrap_err().exit_status(), 2, "{bad}");
        }
    }

    #[test]
    fn excluded_paths_are_relative_and_inside() {
        assert_eq!(
            relative_guest_path(Path::new("/var/log")).unwrap(),
            Path::new("var/log")
        );
        assert!(relative_guest_path(Path::new("/")).is_err());
        assert!(relative_guest_path(Path::new("/var/../etc")).is_err());
    }

    #[test]
    fn host_names_are_checked() {
        assert!(check_hostname("web1.example.org").is_ok());
        for bad in ["", "a b", "a/b", "-x", "a\"b", &"x".repeat(65)] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }
}
