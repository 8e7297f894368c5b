//! The Debian mirror of the host's apt sources, for a debootstrap build
//! given no MIRROR: a host behind a proxy or with a local mirror can reach
//! that one, and often nothing else.
//!
//! apt reads /etc/apt/sources.list, then the files of sources.list.d in
//! name order: `*.list` in the one-line format (`deb [OPTIONS] URI SUITE
//! COMPONENTS`) and `*.sources` in deb822 (`URIs:` fields of stanzas). The
//! first URI whose path ends in `/debian` is taken; the security archive
//! (`debian-security`, or a host named security.*) and commented or
//! disabled entries are skipped. These are the host's own files, trusted.

use std::path::Path;

/// Where debootstrap downloads from when neither the command line nor the
/// host's sources name a Debian mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The first Debian mirror of the apt sources under `etc_apt` (the host's
/// is /etc/apt), or DEFAULT_MIRROR.
pub fn host_mirror(etc_apt: &Path) -> String {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string(etc_apt.join("sources.list")) {
        texts.push((false, t));
    }
    let mut parts: Vec<_> = std::fs::read_dir(etc_apt.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    parts.sort();
    for path in parts {
        let deb822 = match path.extension().and_then(|e| e.to_str()) {
            Some("list") => false,
            Some("sources") => true,
            _ => continue,
        };
        if let Ok(t) = std::fs::read_to_string(&path) {
            texts.push((deb822, t));
        }
    }
    texts
        .iter()
        .find_map(|(deb822, text)| {
            if *deb822 {
                first_in_deb822(text)
            } else {
                first_in_one_line(text)
            }
        })
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string())
}

/// The first Debian mirror of a one-line sources.list text.
fn first_in_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        if !matches!(words.next(), Some("deb" | "deb-src")) {
            return None;
        }
        let mut uri = words.next()?;
        // `[arch=amd64 signed-by=...]`: options, possibly several words.
        if uri.starts_with('[') {
            while !uri.ends_with(']') {
                uri = words.next()?;
            }
            uri = words.next()?;
        }
        is_debian_mirror(uri).then(|| uri.to_string())
    })
}

/// The first Debian mirror of a deb822 .sources text: the `URIs:` of a
/// stanza that is not `Enabled: no`.
fn first_in_deb822(text: &str) -> Option<String> {
    let mut uris: Vec<&str> = Vec::new();
    let mut enabled = true;
    // A blank line ends a stanza; so does the end of the text.
    for line in text.lines().chain([""]) {
        if line.trim().is_empty() {
            let found = uris.iter().find(|u| is_debian_mirror(u));
            if let (true, Some(uri)) = (enabled, found) {
                return Some(uri.to_string());
            }
            uris.clear();
            enabled = true;
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_lowercase().as_str() {
                "uris" => uris.extend(value.split_whitespace()),
                "enabled" => enabled = !value.trim().eq_ignore_ascii_case("no"),
                _ => {}
            }
        }
    }
    None
}

/// An http(s) URI whose path ends in /debian, not the security archive.
fn is_debian_mirror(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    path.trim_end_matches('/').rsplit('/').next() == Some("debian")
        && !host.starts_with("security.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources() {
        let text = "\
# deb http://commented.example/debian bookworm main
deb http://security.debian.org/debian bookworm-security main
deb http://deb.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://packages.cloud.google.com/apt cloud main
deb [ arch=amd64 ] http://ftp.de.debian.org/debian/ bookworm main contrib
deb http://second.example/debian bookworm main
";
        assert_eq!(
            first_in_one_line(text).as_deref(),
            Some("http://ftp.de.debian.org/debian/")
        );
        assert_eq!(first_in_one_line("deb-src\n#\n\n"), None);
    }

    #[test]
    fn deb822_sources() {
        let text = "\
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb
# URIs: http://commented.example/debian
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security

Types: deb deb-src
URIs: https://deb.nodesource.com/node_20.x http://mirror.example.org/pub/debian
Suites: bookworm bookworm-updates
Components: main
";
        assert_eq!(
            first_in_deb822(text).as_deref(),
            Some("http://mirror.example.org/pub/debian")
        );
        assert_eq!(first_in_deb822("Types: deb\nURIs: ftp://x/debian\n"), None);
    }

    #[test]
    fn host_files_in_apt_order_with_a_default() {
        let dir = std::env::temp_dir().join(format!("vsbox-apt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        assert_eq!(host_mirror(&dir), DEFAULT_MIRROR);
        std::fs::write(
            dir.join("sources.list.d/b.sources"),
            "Types: deb\nURIs: http://b.example/debian\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("sources.list.d/a.list"),
            "deb http://a.example/debian-security x main\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("sources.list.d/0.disabled"),
            "deb http://z/debian x\n",
        )
        .unwrap();
        assert_eq!(host_mirror(&dir), "http://b.example/debian");
        std::fs::write(
            dir.join("sources.list"),
            "deb http://main.example/debian x m\n",
        )
        .unwrap();
        assert_eq!(host_mirror(&dir), "http://main.example/debian");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
