//! Users of a guest, from the guest's own /etc/passwd and /etc/group, read
//! from inside the guest (after setns, so every path resolves in its root)
//! and never through the host's NSS. The files are the guest's: malformed
//! lines are skipped, sizes are bounded.

use rustix::process::{Gid, Uid};

use crate::error::Context;
use crate::{Error, Result};

/// A file of the guest larger than this is not read (a hostile guest could
/// make /etc/passwd endless).
const MAX_FILE: u64 = 4 << 20;

/// Most supplementary groups one user gets (the kernel's NGROUPS_MAX is
/// larger; no real guest comes near this).
const MAX_GROUPS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<u32>,
}

impl GuestUser {
    /// Looks up `user` (a name, or a number) in the guest's /etc/passwd and
    /// its groups in /etc/group. Call it inside the guest.
    pub fn lookup(user: &str) -> Result<GuestUser> {
        let passwd = read_bounded("/etc/passwd")?;
        let group = match read_bounded("/etc/group") {
            Err(e) if e.errno().and_then(|n| n.name()) == Some("ENOENT") => String::new(),
            other => other?,
        };
        find(&passwd, &group, user)
            .ok_or_else(|| Error::failure(format!("no user {user} in the guest's /etc/passwd")))
    }

    /// Becomes this user: supplementary groups, group, user (in that order:
    /// after setuid the others are no longer allowed).
    pub fn switch_to(&self) -> Result<()> {
        let groups: Vec<Gid> = self.groups.iter().map(|&g| Gid::from_raw(g)).collect();
        rustix::thread::set_thread_groups(&groups)
            .context(|| format!("cannot set the groups of {}", self.name))?;
        rustix::thread::set_thread_gid(Gid::from_raw(self.gid))
            .context(|| format!("cannot set group {}", self.gid))?;
        rustix::thread::set_thread_uid(Uid::from_raw(self.uid))
            .context(|| format!("cannot become {}", self.name))?;
        Ok(())
    }
}

fn read_bounded(path: &str) -> Result<String> {
    let bytes = crate::context::guestfile::read(path, MAX_FILE)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The passwd entry of `user` (name or number) with its groups.
pub fn find(passwd: &str, group: &str, user: &str) -> Option<GuestUser> {
    let by_number: Option<u32> = user.parse().ok();
    let fields = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 7
                && (f[0] == user || (by_number.is_some() && f[2].parse::<u32>().ok() == by_number))
        })?;
    let (uid, gid) = (fields[2].parse().ok()?, fields[3].parse().ok()?);
    let name = fields[0].to_string();
    let mut groups = vec![gid];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || groups.len() >= MAX_GROUPS {
            continue;
        }
        let Ok(g) = f[2].parse::<u32>() else { continue };
        if f[3].split(',').any(|m| m == name) && !groups.contains(&g) {
            groups.push(g);
        }
    }
    Some(GuestUser {
        name,
        uid,
        gid,
        home: if fields[5].is_empty() {
            "/".to_string()
        } else {
            fields[5].to_string()
        },
        shell: if fields[6].is_empty() {
            "/bin/sh".to_string()
        } else {
            fields[6].to_string()
        },
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nbroken line\nweb:x:1000:1000:Web:/srv/web:\n::::::\nmail:x:8:12::/var/mail:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:web,other\nbad\nadm:x:4:syslog,web\nweb:x:1000:\n";

    #[test]
    fn by_name_and_number_with_groups() {
        let web = find(PASSWD, GROUP, "web").unwrap();
        assert_eq!(
            (web.uid, web.gid, web.home.as_str(), web.shell.as_str()),
            (1000, 1000, "/srv/web", "/bin/sh")
        );
        assert_eq!(web.groups, vec![1000, 33, 4]);
        assert_eq!(find(PASSWD, GROUP, "8").unwrap().name, "mail");
        assert_eq!(find(PASSWD, GROUP, "0").unwrap().shell, "/bin/bash");
    }

    #[test]
    fn unknown_and_malformed() {
        assert_eq!(find(PASSWD, GROUP, "nobody"), None);
        assert_eq!(
            find(PASSWD, GROUP, ""),
            None,
            "the malformed empty entry does not match"
        );
        assert_eq!(find("a:x:notanumber:0::/:/bin/sh\n", "", "a"), None);
    }
}
