//! vunify against the real kernel (root; skips otherwise).

mod common;

#[test]
fn md5_helper_matches_known_digests() {
    use common::dpkg::md5_hex;
    assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    let long = vec![b'x'; 1000];
    assert_eq!(md5_hex(&long), String::from_utf8(std::process::Command::new("sh").arg("-c").arg("head -c 1000 /dev/zero | tr '\\0' x | md5sum").output().unwrap().stdout).unwrap()[..32]);
}
