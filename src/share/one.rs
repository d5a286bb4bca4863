//! One backup without a walk of the share (issue 25): `show ID` and
//! `check RECORD` read the directory Cinder's layout puts a backup in
//! (`ab/cd/<id>`, or the container a record names), and its parents' the
//! same way. Only when a backup is not where the layout puts it (a custom
//! container holding it elsewhere, a moved share, a parent that is not on
//! the share at all) is the whole share walked, as before: correct first,
//! fast where Cinder's layout holds. Time and memory then follow the
//! backup and its chain, not the number of backups on the share.
//!
//! [`Near`] answers [`Backups::get`] from the directories it has read,
//! reads a backup's default container when asked for one it has not seen,
//! and walks the share (once, into the bounded index of
//! [`super::scan::index`]) when that fails; from then on the walk answers,
//! exactly as a command that walked first would have.

use super::scan::{
    BackupEntry, Backups, IndexOptions, MAX_DEPTH, ScanError, ShareIndex, backups_in_dir, index,
};
use super::source::{components, join};
use super::{AccessError, Share};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OneError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error("the share root cannot be read: {0}")]
    Root(#[from] AccessError),
    /// A walk this run needed failed (its reason, as the walk said it).
    #[error("{0}")]
    Walk(String),
}

/// The backups of one directory, as read.
struct Dir {
    backups: Vec<Arc<BackupEntry>>,
}

#[derive(Default)]
struct State {
    /// Directories read, by share-relative path; None when it could not be
    /// read (or is deeper than a walk goes).
    dirs: HashMap<String, Option<Dir>>,
    /// Every backup of the directories read, by id: with repeated ids the
    /// first in the order of backups (created_at, then id), as a walk's.
    by_id: HashMap<String, Arc<BackupEntry>>,
    /// The whole share, once walked: its index (a summary per backup;
    /// a backup asked for is loaded from its directory then).
    walked: Option<Arc<ShareIndex>>,
    /// Why the walk failed, if it did.
    walk_error: Option<String>,
}

/// The few backups around one: what `show` and `check` need.
pub struct Near<'s> {
    share: &'s Share,
    state: Mutex<State>,
    /// Told, once, why the share is about to be walked.
    on_walk: Box<dyn Fn(&str) + Send + Sync + 's>,
}

impl<'s> Near<'s> {
    /// Nothing read yet. The share root must be a directory cbr can open
    /// (as for a walk): that is an error of the run, not a finding.
    pub fn new(share: &'s Share) -> Result<Near<'s>, OneError> {
        share.root_dir()?;
        Ok(Near {
            share,
            state: Mutex::new(State::default()),
            on_walk: Box::new(|_| {}),
        })
    }

    /// Call `f` with the reason before the share is walked (a note for
    /// the operator: it is only slower).
    pub fn on_walk(mut self, f: impl Fn(&str) + Send + Sync + 's) -> Self {
        self.on_walk = Box::new(f);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the share was walked (a fallback, or asked for).
    pub fn walked(&self) -> bool {
        self.lock().walked.is_some()
    }

    /// How many directories were read one by one (not counting a walk).
    pub fn dirs_read(&self) -> usize {
        self.lock().dirs.len()
    }

    /// Why a walk this run needed failed: the answers given since are
    /// not to be trusted, and the run cannot do its job.
    pub fn walk_error(&self) -> Option<String> {
        self.lock().walk_error.clone()
    }

    /// Read one directory (once), adding its backups to those known.
    /// Returns its share-relative path as the walk spells it.
    fn read(&self, st: &mut State, rel: &str) -> String {
        let parts = components(rel);
        let key = parts
            .as_ref()
            .map_or_else(|_| rel.to_string(), |c| c.join("/"));
        if st.dirs.contains_key(&key) {
            return key;
        }
        // A walk does not read below MAX_DEPTH: neither does this, so
        // that what is found is what a walk finds.
        let read = match parts {
            Ok(c) if c.len() <= MAX_DEPTH => {
                backups_in_dir(self.share, &key)
                    .ok()
                    .map(|(backups, _)| Dir {
                        backups: backups.into_iter().map(Arc::new).collect(),
                    })
            }
            _ => None,
        };
        if let Some(d) = &read {
            for b in &d.backups {
                match st.by_id.get(&b.id) {
                    Some(old) if !earlier(b, old) => {}
                    _ => {
                        st.by_id.insert(b.id.clone(), b.clone());
                    }
                }
            }
        }
        st.dirs.insert(key.clone(), read);
        key
    }

    /// Walk the share (once), telling why first.
    fn walk_locked(&self, st: &mut State, why: &str) -> Option<Arc<ShareIndex>> {
        if st.walked.is_none() && st.walk_error.is_none() {
            (self.on_walk)(why);
            match index(self.share, IndexOptions::default()) {
                Ok(s) => st.walked = Some(Arc::new(s)),
                Err(e) => st.walk_error = Some(e.to_string()),
            }
        }
        st.walked.clone()
    }

    /// The whole share, walked (once): for what only a walk can tell
    /// (`show --dependants`).
    pub fn walk(&self, why: &str) -> Result<Arc<ShareIndex>, OneError> {
        let mut st = self.lock();
        match self.walk_locked(&mut st, why) {
            Some(s) => Ok(s),
            None => Err(OneError::Walk(st.walk_error.clone().unwrap_or_default())),
        }
    }

    /// The backup with this object prefix in this container (the
    /// container a record names), read from that directory alone.
    pub fn in_container(&self, container: &str, prefix: &str) -> Option<Arc<BackupEntry>> {
        let mut st = self.lock();
        let key = self.read(&mut st, container);
        let d = st.dirs.get(&key)?.as_ref()?;
        d.backups.iter().find(|b| b.prefix == prefix).cloned()
    }

    /// The backup with this id without a walk: read so far, or in its
    /// default container.
    fn near(&self, st: &mut State, id: &str) -> Option<Arc<BackupEntry>> {
        if let Some(b) = st.by_id.get(id) {
            return Some(b.clone());
        }
        if plausible_id(id) {
            self.read(st, &super::default_container(id));
        }
        st.by_id.get(id).cloned()
    }

    /// `show ID`: the backup with this id, or the only one whose id starts
    /// with it. An id, or a prefix of at least 4 characters, is looked up
    /// where Cinder's layout puts it (`ab/cd/<id>`); when nothing matches
    /// there (a custom container, a short prefix), the share is walked.
    pub fn find(&self, id: &str) -> Result<Arc<BackupEntry>, OneError> {
        let mut st = self.lock();
        if st.walked.is_none() {
            if let Some(b) = self.near(&mut st, id) {
                return Ok(b);
            }
            let mut matches = self.by_prefix(&mut st, id);
            matches.sort_by(|a, b| order(a).cmp(&order(b)));
            matches.dedup_by(|a, b| a.id == b.id);
            match matches.len() {
                0 => {}
                1 => return Ok(matches.swap_remove(0)),
                _ => {
                    return Err(OneError::Scan(ScanError::Ambiguous {
                        id: id.to_string(),
                        matches: matches
                            .iter()
                            .map(|b| b.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }));
                }
            }
        }
        let why = format!(
            "no backup {id} where Cinder's layout puts it ({}): reading the whole share to find it",
            if id.len() >= 4 {
                super::default_container(id)
            } else {
                format!("{id}… is shorter than 4 characters")
            }
        );
        match self.walk_locked(&mut st, &why) {
            Some(s) => {
                let found = s.find(id)?.id().to_owned();
                self.loaded_by_index(&mut st, &s, &found)
                    .ok_or_else(|| OneError::Scan(ScanError::NotFound(id.to_string())))
            }
            None => Err(OneError::Walk(st.walk_error.clone().unwrap_or_default())),
        }
    }

    /// The backup with exactly this id as the walk's index has it, read
    /// from its directory (once: kept with those read).
    fn loaded_by_index(
        &self,
        st: &mut State,
        s: &ShareIndex,
        id: &str,
    ) -> Option<Arc<BackupEntry>> {
        let sum = s.summary(id)?;
        if let Some(b) = st.by_id.get(id)
            && b.container == *sum.container()
            && b.prefix == *sum.prefix()
        {
            return Some(b.clone());
        }
        let b = Arc::new(s.load(self.share, sum)?);
        st.by_id.insert(id.to_string(), b.clone());
        Some(b)
    }

    /// Backups whose id starts with `prefix` (at least 4 characters) in
    /// Cinder's layout: the directories `ab/cd/<prefix>…`.
    fn by_prefix(&self, st: &mut State, prefix: &str) -> Vec<Arc<BackupEntry>> {
        let (Some(a), Some(b)) = (prefix.get(0..2), prefix.get(2..4)) else {
            return Vec::new();
        };
        if !plausible_id(prefix) {
            return Vec::new();
        }
        let parent = format!("{a}/{b}");
        let names: Vec<String> = match self.share.open_dir(&parent).and_then(|d| d.entries()) {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| {
                    !e.lossy && e.kind == super::scan::EntryKind::Dir && e.name.starts_with(prefix)
                })
                .map(|e| e.name)
                .collect(),
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        for n in names {
            let rel = self.read(st, &join(&parent, &n));
            if let Some(Some(d)) = st.dirs.get(&rel) {
                out.extend(
                    d.backups
                        .iter()
                        .filter(|b| b.id.starts_with(prefix))
                        .cloned(),
                );
            }
        }
        out
    }

    /// The backups whose parent `b` is, among the directories read (full
    /// order), and whether that is every one on the share (after a walk).
    pub fn dependants(&self, b: &BackupEntry) -> (Vec<String>, bool) {
        let st = self.lock();
        if let Some(s) = &st.walked {
            let all = s.dependants(&b.id).map(|c| c.id().to_owned()).collect();
            return (all, true);
        }
        let mut kids: Vec<&Arc<BackupEntry>> = st
            .dirs
            .values()
            .flatten()
            .flat_map(|d| d.backups.iter())
            .filter(|c| c.parent_id() == Some(b.id.as_str()))
            .collect();
        kids.sort_by(|x, y| order(x).cmp(&order(y)));
        (kids.iter().map(|c| c.id.clone()).collect(), false)
    }
}

impl Backups for Near<'_> {
    fn get(&self, id: &str) -> Option<Arc<BackupEntry>> {
        let mut st = self.lock();
        if let Some(s) = st.walked.clone() {
            return self.loaded_by_index(&mut st, &s, id);
        }
        if let Some(b) = self.near(&mut st, id) {
            return Some(b);
        }
        let why = format!(
            "backup {id} is not where Cinder's layout puts it ({}): reading the whole share to find it",
            super::default_container(id)
        );
        let s = self.walk_locked(&mut st, &why)?;
        self.loaded_by_index(&mut st, &s, id)
    }
}

/// The order of backups on a share: created_at, then id.
fn order(b: &BackupEntry) -> (Option<&str>, &str) {
    (b.metadata.created_at.as_deref(), b.id.as_str())
}

/// Whether `a` comes before `b` (same id) in the order of backups.
fn earlier(a: &BackupEntry, b: &BackupEntry) -> bool {
    order(a) < order(b)
}

/// Whether an id can name a default container: Cinder's ids are UUIDs;
/// anything with a separator, or too short for `ab/cd/`, is looked for by
/// a walk.
fn plausible_id(id: &str) -> bool {
    id.len() >= 4 && !id.contains('/') && components(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{SynthBackup, uuid_from, write_backup};

    fn spec(
        n: u64,
        container: Option<&str>,
        parent: Option<(String, Vec<[u8; 32]>)>,
    ) -> SynthBackup {
        SynthBackup {
            id: uuid_from(n, 3),
            volume_id: uuid_from(n / 10, 4),
            container: container.map(str::to_owned),
            legacy_prefix: false,
            timestamp: format!("20261124{:06}", n),
            name: None,
            description: None,
            size: 65536,
            object_size: 65536,
            block: 32768,
            compression: "none".into(),
            parent,
        }
    }

    /// 40 backups in Cinder's layout, a chain of three among them, one
    /// in a custom container.
    fn share() -> (tempfile::TempDir, Share) {
        let dir = tempfile::tempdir().unwrap();
        let mut fill = |o: u64, b: &mut [u8]| b.fill((o % 7) as u8);
        for n in 0..40 {
            write_backup(dir.path(), &spec(n, None, None), &mut fill).unwrap();
        }
        let full = write_backup(dir.path(), &spec(100, None, None), &mut fill).unwrap();
        let mut other = |o: u64, b: &mut [u8]| b.fill((o % 5) as u8);
        let i1 = write_backup(
            dir.path(),
            &spec(101, None, Some((uuid_from(100, 3), full.sha256s))),
            &mut other,
        )
        .unwrap();
        write_backup(
            dir.path(),
            &spec(102, None, Some((uuid_from(101, 3), i1.sha256s))),
            &mut other,
        )
        .unwrap();
        write_backup(dir.path(), &spec(200, Some("custom"), None), &mut fill).unwrap();
        let share = Share::open(dir.path()).unwrap();
        (dir, share)
    }

    #[test]
    fn a_chain_in_cinders_layout_reads_one_directory_per_backup() {
        let (_d, share) = share();
        let near = Near::new(&share).unwrap();
        let top = near.find(&uuid_from(102, 3)).unwrap();
        assert_eq!(near.dirs_read(), 1);
        let chain = near.chain(top.clone());
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].id, uuid_from(100, 3));
        let f = crate::structure::backup_findings(&share, &near, &top);
        assert!(!f.has_errors(), "{f:?}");
        assert_eq!(near.dirs_read(), 3);
        assert!(!near.walked());
        let (kids, complete) = near.dependants(&chain[1]);
        assert_eq!((kids, complete), (vec![uuid_from(102, 3)], false));
    }

    #[test]
    fn a_prefix_reads_only_its_ab_cd_directories() {
        let (_d, share) = share();
        let id = uuid_from(7, 3);
        let near = Near::new(&share).unwrap();
        assert_eq!(near.find(&id[..8]).unwrap().id, id);
        assert!(!near.walked());
        assert!(near.dirs_read() <= 2, "{}", near.dirs_read());
    }

    #[test]
    fn what_is_not_in_cinders_layout_is_found_by_one_walk() {
        let (_d, share) = share();
        let told = Mutex::new(Vec::new());
        let near = Near::new(&share)
            .unwrap()
            .on_walk(|why| told.lock().unwrap().push(why.to_string()));
        let custom = near.find(&uuid_from(200, 3)).unwrap();
        assert_eq!(custom.container, "custom");
        assert!(near.walked());
        // Once walked, the walk answers: no second walk, nothing missed.
        assert!(near.get(&uuid_from(5, 3)).is_some());
        assert!(near.get("no-such-backup").is_none());
        assert_eq!(told.lock().unwrap().len(), 1);
        let (_, complete) = near.dependants(&custom);
        assert!(complete);
    }

    #[test]
    fn an_unknown_id_is_missing_after_a_walk_not_before() {
        let (_d, share) = share();
        let near = Near::new(&share).unwrap();
        assert!(near.get(&uuid_from(999, 3)).is_none());
        assert!(near.walked(), "missing is only known after a walk");
        assert!(matches!(
            near.find(&uuid_from(999, 3)),
            Err(OneError::Scan(ScanError::NotFound(_)))
        ));
    }
}
