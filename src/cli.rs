//! The command-line definition: the one source of `--help`, the man pages in
//! `man/` and the shell completions. This is the only module that knows clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "cbr",
    version,
    about = "Offline toolkit for OpenStack Cinder backups on NFS/posix shares",
    long_about = "cbr works offline on Cinder backup export records (the backup_url of \
`cinder backup-export`) and on the files of a mounted backup share: decode and re-encode \
records byte-exactly, rewrite them for another tenant, list and check the share, verify \
every chunk, restore images and recover records without the source cloud.",
    propagate_version = true,
    arg_required_else_help = true,
    after_long_help = codes_help()
)]
pub struct Cli {
    /// Silence everything but results and errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// When to use colour on the terminal
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// Exit statuses and the table of finding codes (man cbr(1)).
fn codes_help() -> String {
    let mut s = String::from(
        "Exit status:\n  0  all good\n  1  problems found (findings of severity error, refused steps)\n  \
         2  could not do the job (bad input, unreadable share or journal); nothing on stdout\n  \
         129, 130, 143  ended by SIGHUP, SIGINT, SIGTERM (128 + the signal's number)\n\
         A closed stdout (`cbr ... | head`) is success: 0, and nothing said.\n\n\
         Finding codes:\n",
    );
    for (code, what) in cbr::findings::CODES {
        s.push_str(&format!("  {code:<26} {what}\n"));
    }
    s.push_str(
        "\nExamples:\n  cbr decode export.txt\n  cbr check export.txt --share /var/lib/cinder/backup_mount/<md5>\n  \
         cbr verify --deep --share DIR --journal --older-than 30d\n  \
         cbr plan --share DIR --map-project SRC=DST exports/*.txt > migrate.sh\n",
    );
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every export record in a paste and print it decoded
    Decode(DecodeArgs),
    /// Encode a record (or any paste decode accepts) back into a backup_url
    Encode(EncodeArgs),
    /// Change fields of records (tenant ids, any field) and re-encode them
    Rewrite(RewriteArgs),
    /// Report problems of records alone, without a share
    Lint(LintArgs),
    /// List every backup on a share
    Ls(LsArgs),
    /// Show everything known about one backup on a share
    Show(ShowArgs),
    /// Check a record against the share before importing it
    Check(CheckArgs),
    /// Verify the integrity of a share or of some backups on it
    Verify(VerifyArgs),
    /// Write the volume image of a backup (full plus incrementals) to a file
    Restore(RestoreArgs),
    /// Build an importable export record from the share alone
    Recover(RecoverArgs),
    /// Turn a batch of exports into an ordered, checked, resumable migration runbook
    Plan(Box<PlanArgs>),
    /// The verification journal: overdue and failed backups, merging shards
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// `--journal [FILE]`: where the verification journal is (never the share).
#[derive(Debug, Clone, Args)]
pub struct JournalArg {
    /// Record (or read) every chunk's verification in this SQLite journal
    /// (never inside the share; readers open it read-only); without FILE:
    /// $XDG_STATE_HOME/cbr/journal.sqlite
    // An OsString parser: clap's PathBuf parser refuses the empty value
    // that stands for "no FILE given" (`--journal --older-than 30d`).
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::OsStringValueParser::new(),
            PathBuf::from
        )
    )]
    pub journal: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Backups whose last proof is older than a window, or failed
    Report(JournalReportArgs),
    /// Merge journals (e.g. of --shard K/N runs on several hosts) into one
    Merge(JournalMergeArgs),
}

#[derive(Debug, Args)]
pub struct JournalReportArgs {
    #[command(flatten)]
    pub journal: JournalArg,

    /// The share: also list its backups the journal has never proven
    #[command(flatten)]
    pub share: ShareArgs,

    /// Overdue: not proven within this window (e.g. 30d, 12h)
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub older_than: String,

    /// Print {"backups": [{"backup_id", "status", "last_ok_at", "chunks",
    /// "chunks_proven"}]} (the same as --format json); status: fresh (every
    /// chunk proven within the window), partial, overdue, failed or never
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Output format: human, json, or openmetrics (for node_exporter's
    /// textfile collector; exit 0 whatever it reports: alert in Prometheus)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,
}

/// `journal report --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// The overdue, failed and never-proven backups, and a summary line
    Human,
    /// {"backups": [...]}
    Json,
    /// Prometheus/OpenMetrics text: per backup and per share gauges
    Openmetrics,
}

#[derive(Debug, Args)]
pub struct JournalMergeArgs {
    /// The journal to merge into (created if missing)
    #[arg(long, value_name = "FILE")]
    pub into: PathBuf,

    /// Journals to merge
    #[arg(value_name = "JOURNAL", required = true)]
    pub inputs: Vec<PathBuf>,
}

/// `cbr plan`.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
cbr plan --share DIR --map-project SRC=DST exports/*.txt > migrate.sh\n  \
cbr plan --share DIR --from-share --default-project DST --format md\n  \
cbr plan --share DIR --map map.csv --target-backups target.json --per-project plans/ exports.txt\n  \
cbr plan --share DIR --default-project DST --restore newest --volume-name 'mig-{id8}-{display_name}' exports.txt\n  \
cbr plan --share DIR --deep --journal --older-than 7d --exclude-from lost.txt --map map.csv exports/\n\n\
Nothing is decided silently: a project mapped to two targets, a backup given as two different \
records, unmapped projects and a --target-backups file that is no backup list are errors (exit 2, \
all listed at once); refused backups (exit 1) say what to do.")]
pub struct PlanArgs {
    /// Records to plan: pastes or record files, anything decode accepts; a
    /// directory is every file in it, by name ('-': standard input; none:
    /// standard input unless --from-share)
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub share: ShareArgs,

    /// Plan from records recovered from the share (the source database is gone)
    #[arg(long)]
    pub from_share: bool,

    /// Only these backups (ids or unique prefixes); repeatable
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,

    /// Only backups of this source project; repeatable
    #[arg(long = "project", value_name = "PROJECT")]
    pub projects: Vec<String>,

    /// Only backups created on or after this date (2026-11-24 or 2026-11-24T06:00:00Z)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Leave this backup out by hand (id or unique prefix): listed as
    /// skipped, its dependants refused; repeatable
    #[arg(long = "exclude", value_name = "ID")]
    pub exclude: Vec<String>,

    /// Leave out every backup listed in FILE (one id a line, `#` comments)
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Option<PathBuf>,

    /// Read every chunk of every planned backup, as `verify --deep` does:
    /// a damaged backup is refused with its finding, and so are its
    /// dependants; the runbook's `cbr check` steps run with --deep too
    #[arg(long)]
    pub deep: bool,

    /// With --deep: chunks this journal proved OK within --older-than (files
    /// unchanged) are not read again; every chunk read is recorded in it
    #[command(flatten)]
    pub journal: JournalArg,

    /// With --journal: accept chunks proven OK within this window (e.g. 7d)
    #[arg(long, value_name = "DURATION", requires = "journal")]
    pub older_than: Option<String>,

    /// Parallel chunk readers for --deep (default: number of cores)
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,

    /// Map a source project to a target project; repeatable
    #[arg(long = "map-project", value_name = "SRC=DST")]
    pub map_project: Vec<String>,

    /// Mappings from a file: CSV `source,target[,user]` (quoted fields, CRLF,
    /// a BOM, a header row are fine; `old new` pairs too) or JSON. A
    /// source mapped to two targets, here or with --map-project, is an error
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// Target project for backups whose project has no mapping
    #[arg(long, value_name = "PROJECT")]
    pub default_project: Option<String>,

    /// The backup service of the target cloud
    #[arg(
        long,
        value_name = "NAME",
        default_value = "cinder.backup.drivers.nfs.NFSBackupDriver"
    )]
    pub target_service: String,

    /// The target's backup list (`openstack volume backup list --all-projects
    /// [--long] -f json|csv|yaml|value` or its table, `cinder backup-list
    /// --all-tenants`): `available` ones are skipped; one in another status,
    /// or under another project, is refused; a file that is no backup list
    /// is an error
    #[arg(long, value_name = "FILE")]
    pub target_backups: Option<PathBuf>,

    /// Volume type of the volumes to create
    #[arg(long, value_name = "TYPE")]
    pub volume_type: Option<String>,

    /// Availability zone of the volumes to create
    #[arg(long, value_name = "ZONE")]
    pub availability_zone: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Sh, value_name = "FORMAT")]
    pub format: PlanFormat,

    /// Write one script per target project into DIR (with --format sh)
    #[arg(long, value_name = "DIR")]
    pub per_project: Option<PathBuf>,

    /// Which backups to restore into a new volume (every record is imported,
    /// parents first, whatever this says)
    #[arg(long, value_enum, default_value_t = PlanRestore::All, value_name = "WHICH")]
    pub restore: PlanRestore,

    /// Name of the volume made for each backup: {id}, {id8} (its first 8
    /// characters), {display_name} and {volume_id} (of the source volume)
    /// are replaced; volumes are found again by their cbr-backup property,
    /// never by name
    #[arg(long, value_name = "TEMPLATE", default_value = "cbr-{id}")]
    pub volume_name: String,

    /// The script's progress file, which lets a re-run skip finished steps
    /// without asking the cloud (default: the script's own path + .state)
    #[arg(long, value_name = "FILE")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanRestore {
    /// Restore every backup into a volume of its own
    All,
    /// Restore only the newest backup of each chain
    Newest,
    /// Import only
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A bash runbook, resumable: re-running it skips what is done
    Sh,
    /// The plan as data
    Json,
    /// A table for a change-review board
    Md,
}

/// Where the share is: `--share`, `CBR_SHARE`, or `--cinder-conf`.
#[derive(Debug, Clone, Args)]
pub struct ShareArgs {
    /// The share root (the directory the backup driver mounts or writes to), or
    /// nfs://HOST[:PORT]/EXPORT[/PATH][?uid=N&gid=N&nfsport=N&mountport=N&privileged=1&timeout=S&concurrency=N]
    /// to read it straight from an NFSv3 server, without mounting it (read-only; timeout: each
    /// network step, default 30 s; concurrency: directories walked at once, default 16;
    /// NFSv4-only servers and Kerberos are not supported)
    #[arg(long, env = "CBR_SHARE", value_name = "DIR")]
    pub share: Option<PathBuf>,

    /// Find the share from cinder.conf (NFS mount point rule, or backup_posix_path)
    #[arg(long, value_name = "FILE", conflicts_with = "share")]
    pub cinder_conf: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitKind {
    /// The backup_url alone
    Url,
    /// A `cinder backup-import SERVICE URL` line
    Cinder,
    /// An `openstack volume backup record import SERVICE URL` line
    Openstack,
    /// `{"backup_service": ..., "backup_url": ...}`
    ExportJson,
    /// The decoded record, pretty-printed
    Record,
}

/// How encoded records are printed.
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    /// What to print for each record
    #[arg(long, value_enum, default_value_t = EmitKind::Url, value_name = "KIND")]
    pub emit: EmitKind,

    /// Wrap the base64 at this many columns, as Kilo/Liberty did (76); 0 for one line.
    /// Default: as the input was, one line for new records
    #[arg(long, value_name = "COLS")]
    pub wrap: Option<usize>,

    /// The JSON layout of the record inside the url: `keep` writes a record
    /// as it was written — the url's JSON, or a record given as JSON byte
    /// for byte (compact stays compact; an edit changes only the bytes it
    /// must), except the pretty JSON `cbr decode` prints, which is encoded
    /// as Cinder wrote it; `cinder` rewrites it as Cinder does (Python's
    /// json.dumps)
    #[arg(long, value_enum, default_value_t = LayoutChoice::Keep, value_name = "LAYOUT")]
    pub layout: LayoutChoice,
}

/// `--layout`: keep a record's own JSON layout, or normalise to Cinder's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutChoice {
    /// As the record was written
    Keep,
    /// As Cinder writes it (Python's json.dumps defaults)
    Cinder,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  cbr decode export.txt\n  cbr decode --field id export.txt\n  cbr decode --json export.txt"
)]
pub struct DecodeArgs {
    /// Files to read, directories (every file in one, by name), '-' (none:
    /// standard input)
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Print one field's value only (strings without quotes)
    #[arg(long, value_name = "NAME")]
    pub field: Option<String>,

    /// Print {"records": [...]} with the source format, wrapping and era
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// File to read ('-' or none: standard input)
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,

    /// Backup service to print with --emit cinder|openstack|export-json
    /// (default: the one in the input, else from the record's era)
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    #[command(flatten)]
    pub emit: EmitArgs,
}

#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// Files to read, directories (every file in one, by name), '-' (none:
    /// standard input); one output per record
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Set project_id (a keystone id: 32 hex digits or a UUID)
    #[arg(long, value_name = "ID")]
    pub project_id: Option<String>,

    /// Set user_id (a keystone id: 32 hex digits or a UUID)
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,

    /// Set a field: VALUE as JSON when it parses, else a string; dotted keys
    /// reach into metadata and driver_info
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Remove a field (dotted keys reach into metadata and driver_info)
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,

    /// Mapping file, as `plan --map` reads it: CSV `source,target[,user]`
    /// (old id, new id; the user is given to records of that project), `old
    /// new` pairs, or JSON; applied to project and user ids of every record
    #[arg(long, value_name = "FILE")]
    pub map: Option<PathBuf>,

    /// Also replace the source tenant ids wherever else they appear in the record
    #[arg(long)]
    pub scrub_source: bool,

    /// Backup service to print with --emit cinder|openstack|export-json
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    #[command(flatten)]
    pub emit: EmitArgs,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files to read, directories (every file in one, by name), '-' (none:
    /// standard input)
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Print {"findings": [...]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub share: ShareArgs,

    /// Show incremental chains as a tree
    #[arg(long)]
    pub tree: bool,

    /// Add each backup's last verification from this journal
    #[command(flatten)]
    pub journal: JournalArg,

    /// Print {"backups": [...], "findings": [...]}
    #[arg(long, conflicts_with = "json_lines")]
    pub json: bool,

    /// Print one JSON object per line: {"backup": {...}} for each backup,
    /// then {"finding": {...}} for each finding
    #[arg(long)]
    pub json_lines: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Backup id, or a unique prefix of one
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub share: ShareArgs,

    /// Add the backup's last verification from this journal
    #[command(flatten)]
    pub journal: JournalArg,

    /// List every backup whose parent it is: reads the whole share (without
    /// it, only those in the containers read for this backup and its chain)
    #[arg(long)]
    pub dependants: bool,

    /// Print one JSON document
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  cbr check export.txt --share /var/lib/cinder/backup_mount/<md5>\n  cbr check --deep --json export.txt --share DIR"
)]
pub struct CheckArgs {
    /// Records to check: files of anything decode accepts, directories
    /// (every file in one, by name), '-' (none: standard input)
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    #[command(flatten)]
    pub share: ShareArgs,

    /// Also read and verify every chunk of the backup and its parents
    #[arg(long)]
    pub deep: bool,

    /// With --deep: also compute every chunk's md5 (by default md5 is
    /// computed only for bytes no sha256 entry proves)
    #[arg(long)]
    pub md5: bool,

    /// The backup service of the target cloud
    #[arg(
        long,
        value_name = "NAME",
        default_value = "cinder.backup.drivers.nfs.NFSBackupDriver"
    )]
    pub target_service: String,

    /// Parallel chunk readers for --deep (default: number of cores)
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,

    /// Print {"backup_id", "ok", "verdict", "data_read", "advice", "findings"}
    /// (an array of those for several records); verdict is ready,
    /// will-fail, restores-corrupted or unproven
    #[arg(long)]
    pub json: bool,

    /// The target project: the suggested import is scoped to it
    /// (--os-project-id; default: the record's own project_id)
    #[arg(long, value_name = "PROJECT")]
    pub target_project: Option<String>,

    /// Print the findings and the verdict only, not the suggested import
    /// command (the plan's runbook imports by itself)
    #[arg(long)]
    pub no_advice: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressKind {
    /// A progress bar when stderr is a terminal
    Auto,
    /// JSON lines on stderr, for scripts and monitoring
    Json,
    /// No progress
    Never,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  cbr verify --share DIR\n  cbr verify --deep --share DIR 96128a75\n  cbr verify --deep --share DIR --journal --older-than 30d --budget 6h\n  cbr verify --deep --share DIR --shard 2/8 --journal shard-2.sqlite"
)]
pub struct VerifyArgs {
    /// Backups to verify (ids or unique prefixes), with their chains; none: all
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,

    #[command(flatten)]
    pub share: ShareArgs,

    /// Read every chunk: decompress, check its length and every block's
    /// sha256 (md5 only for bytes no sha256 entry proves)
    #[arg(long)]
    pub deep: bool,

    #[command(flatten)]
    pub journal: JournalArg,

    /// With --journal: continue the last unfinished run (also one a budget
    /// stopped), skipping chunks it proved whose files are unchanged (the
    /// chunk, _metadata and _sha256file: size, mtime, inode)
    #[arg(long, requires = "journal")]
    pub resume: bool,

    /// With --journal: read only chunks not proven OK within this window
    /// (e.g. 30d) or whose files changed since — a rolling scrub
    #[arg(long, value_name = "DURATION", requires = "journal")]
    pub older_than: Option<String>,

    /// Stop cleanly (start no more chunks) after this long, e.g. 2h; chunks
    /// left are not proven: "complete" and "ok" false, exit 1, and the run
    /// stays open for --resume
    #[arg(long, value_name = "DURATION")]
    pub budget: Option<String>,

    /// Stop cleanly after this many bytes of chunk data (uncompressed), as
    /// --budget does
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,

    /// With --deep: also compute every chunk's md5, whether or not the
    /// sha256file proves its bytes
    #[arg(long)]
    pub md5: bool,

    /// Parallel chunk readers (default: number of cores)
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,

    /// Verify only shard K of N (a deterministic split by backup), e.g. 2/7
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Verify a random sample of this percentage of chunks
    #[arg(long, value_name = "PCT")]
    pub sample: Option<f64>,

    /// Seed for --sample (same seed, same chunks)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Only backups created on or after this date (YYYY-MM-DD or RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Progress reporting on stderr
    #[arg(long, value_enum, default_value_t = ProgressKind::Auto, value_name = "KIND")]
    pub progress: ProgressKind,

    /// Print {"findings", "ok", "complete", "backups_checked", "chunks_checked",
    /// "chunks_skipped", "chunks_deferred", "bytes_read"}, written as it goes
    #[arg(long, conflicts_with = "json_lines")]
    pub json: bool,

    /// Print one JSON object per line: {"finding": {...}} as each is found,
    /// then {"report": {...}} with the counts
    #[arg(long)]
    pub json_lines: bool,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  cbr restore --share DIR 96128a75 --output vol.img\n  cbr restore --share DIR 96128a75 --output /dev/vdb --force\n  cbr restore --share DIR 96128a75 --output vol.img --dry-run"
)]
pub struct RestoreArgs {
    /// Backup id (or a unique prefix) whose volume image to write
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub share: ShareArgs,

    /// The image file or block device to write (never inside the share,
    /// never a FIFO, socket or character device)
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    /// Write into an existing file or device (zeros are then written too)
    #[arg(long)]
    pub force: bool,

    /// Print the plan (which chunks of which backup land where) and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Also compute the md5 of every chunk read (every block written is
    /// proven by the sha256file either way)
    #[arg(long)]
    pub md5: bool,

    /// Parallel decompressors (default: number of cores)
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,

    /// Progress reporting on stderr
    #[arg(long, value_enum, default_value_t = ProgressKind::Auto, value_name = "KIND")]
    pub progress: ProgressKind,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  cbr recover --share DIR 96128a75 --emit cinder\n  cbr recover --share DIR 5e3d24d4 --chain --project-id P --emit openstack"
)]
pub struct RecoverArgs {
    /// Backup id (or a unique prefix) to build a record for
    #[arg(value_name = "ID")]
    pub id: String,

    #[command(flatten)]
    pub share: ShareArgs,

    /// project_id to put in the record
    #[arg(long, value_name = "ID")]
    pub project_id: Option<String>,

    /// user_id to put in the record
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,

    /// The backup service (driver) the record names
    #[arg(
        long,
        value_name = "NAME",
        default_value = "cinder.backup.drivers.nfs.NFSBackupDriver"
    )]
    pub service: String,

    /// Emit the records of the whole chain, parents first
    #[arg(long)]
    pub chain: bool,

    #[command(flatten)]
    pub emit: EmitArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The date of this version's man pages (`.TH`): fixed with the version,
/// not the build's clock, so that `man/` is reproducible. Bump both.
pub const RELEASE_DATE: &str = "2026-11-29";

#[cfg_attr(not(test), allow(dead_code))]
/// Render the man pages: `cbr.1` and one `cbr-SUB.1` per subcommand.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let cmd = command();
    let mut pages = Vec::new();
    pages.push(("cbr.1".to_string(), man_page(cmd.clone())?));
    for sub in cmd.get_subcommands() {
        let name = format!("cbr-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        pages.push((format!("{name}.1"), man_page(sub)?));
    }
    Ok(pages)
}

/// One man page: `.TH` with the version and [`RELEASE_DATE`], and a
/// synopsis that shows `[INPUT]...` for arguments taken many times
/// (clap_mangen prints them as if taken once).
fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    let many: Vec<String> = cmd
        .get_positionals()
        .filter(|a| {
            a.get_num_args().is_some_and(|n| n.max_values() > 1)
                || matches!(a.get_action(), clap::ArgAction::Append)
        })
        .map(|a| {
            a.get_value_names()
                .map(|v| v.join(" "))
                .unwrap_or_else(|| a.get_id().to_string())
        })
        .collect();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .date(RELEASE_DATE)
        .source(format!("cbr {}", env!("CARGO_PKG_VERSION")))
        .manual("cbr manual")
        .render(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut out = String::with_capacity(text.len() + 16);
    let mut synopsis = false;
    for line in text.split_inclusive('\n') {
        if synopsis && !line.starts_with('.') {
            let mut l = line.to_string();
            for name in &many {
                for (open, close) in [("[", "]"), ("<", ">")] {
                    let one = format!("{open}\\fI{name}\\fR{close}");
                    l = l.replace(&format!("{one} "), &format!("{one}... "));
                }
            }
            out.push_str(&l);
        } else {
            out.push_str(line);
        }
        synopsis = line.starts_with(".SH SYNOPSIS");
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    /// Fails when `man/` is not what the clap definition renders.
    /// Regenerate with `CBR_UPDATE_MAN=1 cargo test --bin cbr man_pages_are_current`.
    #[test]
    #[allow(clippy::disallowed_methods)] // man/, not the share
    fn man_pages_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
        let pages = man_pages().expect("render man pages");
        if std::env::var_os("CBR_UPDATE_MAN").is_some() {
            std::fs::create_dir_all(&dir).expect("create man/");
            for entry in std::fs::read_dir(&dir).expect("read man/") {
                let p = entry.expect("entry").path();
                if p.extension().is_some_and(|e| e == "1") {
                    std::fs::remove_file(p).expect("remove old page");
                }
            }
            for (name, body) in &pages {
                std::fs::write(dir.join(name), body).expect("write page");
            }
        }
        let mut stale = Vec::new();
        for (name, body) in &pages {
            match std::fs::read(dir.join(name)) {
                Ok(on_disk) if &on_disk == body => {}
                _ => stale.push(name.clone()),
            }
        }
        let on_disk = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).count())
            .unwrap_or(0);
        assert!(
            stale.is_empty() && on_disk == pages.len(),
            "man/ is stale ({stale:?}, {on_disk} files for {} pages): run \
             CBR_UPDATE_MAN=1 cargo test --bin cbr man_pages_are_current",
            pages.len()
        );
    }
}
