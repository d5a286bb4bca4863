//! Finding the share root: `--share DIR`, `CBR_SHARE`, or `cinder.conf`
//! (format doc, section 1).

use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum LocateError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error(
        "{path}: backup_driver is {driver}, which does not keep backups on a share cbr can read \
         (NFS, GlusterFS or posix)"
    )]
    UnsupportedDriver { path: PathBuf, driver: String },
    #[error(
        "{path}: the NFS/GlusterFS backup driver needs backup_share in [DEFAULT], and it is not set"
    )]
    NoBackupShare { path: PathBuf },
}

/// Where the share is, and which rule of cinder.conf found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub root: PathBuf,
    pub rule: String,
}

/// The `[DEFAULT]` section of an INI file (keys lower-case, last one wins).
fn default_section(text: &str) -> HashMap<String, String> {
    let mut section = String::from("DEFAULT");
    let mut out = HashMap::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section != "DEFAULT" {
            continue;
        }
        if let Some((k, v)) = t.split_once('=').or_else(|| t.split_once(':')) {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// Expand `$state_path` / `${state_path}` style references (one level deep
/// is all Cinder's defaults need; we go a few levels).
fn expand(value: &str, conf: &HashMap<String, String>, defaults: &HashMap<&str, &str>) -> String {
    let mut v = value.to_string();
    for _ in 0..4 {
        let Some(pos) = v.find('$') else { break };
        let rest = &v[pos + 1..];
        let (name, len) = if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(e) => (&r[..e], e + 2),
                None => break,
            }
        } else {
            let e = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..e], e)
        };
        let rep = conf
            .get(name)
            .cloned()
            .or_else(|| defaults.get(name).map(|s| s.to_string()))
            .unwrap_or_default();
        v = format!("{}{}{}", &v[..pos], rep, &v[pos + 1 + len..]);
    }
    v
}

/// Find the share root from a cinder.conf's text.
pub fn from_cinder_conf_text(path: &Path, text: &str) -> Result<Located, LocateError> {
    let conf = default_section(text);
    let defaults: HashMap<&str, &str> = HashMap::from([
        ("state_path", "/var/lib/cinder"),
        ("backup_mount_point_base", "$state_path/backup_mount"),
        ("backup_posix_path", "$state_path/backup"),
    ]);
    let get = |k: &str| -> Option<String> {
        conf.get(k)
            .cloned()
            .or_else(|| defaults.get(k).map(|s| s.to_string()))
            .map(|v| expand(&v, &conf, &defaults))
    };
    let driver = conf
        .get("backup_driver")
        .cloned()
        .unwrap_or_else(|| "cinder.backup.drivers.swift.SwiftBackupDriver".into());
    let d = driver.to_ascii_lowercase();
    if d.contains("posix") {
        let root = get("backup_posix_path").unwrap_or_default();
        return Ok(Located {
            rule: format!(
                "backup_driver is posix: backup_posix_path{} = {root}",
                if conf.contains_key("backup_posix_path") {
                    ""
                } else {
                    " (default)"
                }
            ),
            root: PathBuf::from(root),
        });
    }
    if d.contains("nfs") || d.contains("glusterfs") {
        let Some(share) = conf.get("backup_share").cloned() else {
            return Err(LocateError::NoBackupShare {
                path: path.to_owned(),
            });
        };
        let base = get("backup_mount_point_base").unwrap_or_default();
        let hash = crate::share::sha256file::to_hex(&Md5::digest(share.as_bytes()));
        return Ok(Located {
            root: Path::new(&base).join(&hash),
            rule: format!(
                "backup_driver is {}: backup_mount_point_base{} ({base}) / md5 of backup_share {share:?} ({hash})",
                if d.contains("nfs") {
                    "NFS"
                } else {
                    "GlusterFS"
                },
                if conf.contains_key("backup_mount_point_base") {
                    ""
                } else {
                    " (default)"
                }
            ),
        });
    }
    Err(LocateError::UnsupportedDriver {
        path: path.to_owned(),
        driver,
    })
}

/// Find the share root from a cinder.conf file.
#[allow(clippy::disallowed_methods)] // cinder.conf, not the share
pub fn from_cinder_conf(path: &Path) -> Result<Located, LocateError> {
    let text = std::fs::read_to_string(path).map_err(|e| LocateError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    from_cinder_conf_text(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfs_defaults_mount_under_state_path_by_md5() {
        let conf = "[DEFAULT]\nbackup_driver = cinder.backup.drivers.nfs.NFSBackupDriver\nbackup_share = fileserver:/vol/backups\n";
        let l = from_cinder_conf_text(Path::new("c"), conf).unwrap();
        let md5 = crate::share::sha256file::to_hex(&Md5::digest(b"fileserver:/vol/backups"));
        assert_eq!(
            l.root,
            PathBuf::from(format!("/var/lib/cinder/backup_mount/{md5}"))
        );
        assert!(l.rule.contains("md5"));
    }

    #[test]
    fn nfs_with_own_state_path_and_mount_base() {
        let conf = "[DEFAULT]\nstate_path=/srv/c\nbackup_driver=cinder.backup.drivers.nfs\nbackup_share=h:/x\n[other]\nbackup_share=no\n";
        let l = from_cinder_conf_text(Path::new("c"), conf).unwrap();
        assert!(l.root.starts_with("/srv/c/backup_mount"));
        let conf2 = format!("{conf}[DEFAULT]\nbackup_mount_point_base=${{state_path}}/mnt\n");
        let l = from_cinder_conf_text(Path::new("c"), &conf2).unwrap();
        assert!(l.root.starts_with("/srv/c/mnt"), "{:?}", l.root);
    }

    #[test]
    fn posix_uses_backup_posix_path() {
        let conf = "[DEFAULT]\nbackup_driver = cinder.backup.drivers.posix.PosixBackupDriver\n";
        let l = from_cinder_conf_text(Path::new("c"), conf).unwrap();
        assert_eq!(l.root, PathBuf::from("/var/lib/cinder/backup"));
        let conf = "[DEFAULT]\nbackup_driver = cinder.backup.drivers.posix.PosixBackupDriver\nbackup_posix_path=/b\n";
        assert_eq!(
            from_cinder_conf_text(Path::new("c"), conf).unwrap().root,
            PathBuf::from("/b")
        );
    }

    #[test]
    fn swift_and_missing_share_are_refused() {
        assert!(matches!(
            from_cinder_conf_text(Path::new("c"), "[DEFAULT]\n"),
            Err(LocateError::UnsupportedDriver { .. })
        ));
        assert!(matches!(
            from_cinder_conf_text(
                Path::new("c"),
                "[DEFAULT]\nbackup_driver=cinder.backup.drivers.nfs\n"
            ),
            Err(LocateError::NoBackupShare { .. })
        ));
    }
}
