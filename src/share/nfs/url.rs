//! `nfs://HOST[:PORT]/EXPORT[/PATH][?nfsport=N&mountport=N&uid=N&gid=N&version=3&privileged=1]`,
//! following libnfs's URL conventions: the port after the host is the NFS
//! port (as `nfsport`), ports not given are asked of the server's
//! portmapper (port 111), uid/gid are the AUTH_SYS identity (default 65534,
//! nobody), only `version=3` is spoken. `concurrency=N` (cbr's own) is how
//! many directories a walk keeps in flight (each on a connection of its own).

use super::NfsError;

/// A parsed `nfs://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsUrl {
    pub host: String,
    pub nfsport: Option<u16>,
    pub mountport: Option<u16>,
    /// The path on the server: `/EXPORT[/PATH]` (components validated).
    pub path: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub privileged: bool,
    /// Seconds for each network step (connect, send, reply).
    pub timeout_s: u64,
    /// Directories a walk keeps in flight ([`DEFAULT_CONCURRENCY`] unless
    /// `concurrency=N`).
    pub concurrency: usize,
}

/// Directories walked at once over NFS unless the URL says otherwise: a
/// walk is bound by round trips, not CPUs, so it keeps many in flight.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The most `concurrency=` accepts (each is a thread and a connection).
pub const MAX_CONCURRENCY: usize = 256;

/// Whether `s` is meant as an `nfs://` URL (any letter case of the scheme).
pub fn is_nfs_url(s: &str) -> bool {
    s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("nfs://"))
}

fn bad(url: &str, reason: impl Into<String>) -> NfsError {
    NfsError::BadUrl {
        url: url.to_string(),
        reason: reason.into(),
    }
}

fn num<T: std::str::FromStr>(url: &str, key: &str, v: &str) -> Result<T, NfsError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(url, format!("{key}={v:?} is not a number")));
    }
    v.parse::<T>()
        .map_err(|_| bad(url, format!("{key}={v} is out of range")))
}

fn port(url: &str, key: &str, v: &str) -> Result<u16, NfsError> {
    let p: u16 = num(url, key, v)?;
    if p == 0 {
        return Err(bad(url, format!("{key}=0 is not a port")));
    }
    Ok(p)
}

fn unescape(url: &str, s: &str) -> Result<String, NfsError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(url, "a % not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(url, "the path is not UTF-8"))
}

/// The server and its NFS port (`HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT`).
fn host_and_port(url: &str, authority: &str) -> Result<(String, Option<u16>), NfsError> {
    if authority.contains('@') {
        return Err(bad(url, "user names are not supported (use uid= and gid=)"));
    }
    let (host, nfsport) = if let Some(h) = authority.strip_prefix('[') {
        let (h, tail) = h
            .split_once(']')
            .ok_or_else(|| bad(url, "an IPv6 address without its ']'"))?;
        let p = match tail.strip_prefix(':') {
            Some(p) => Some(port(url, "port", p)?),
            None if tail.is_empty() => None,
            None => return Err(bad(url, "junk after the IPv6 address")),
        };
        (format!("[{h}]"), p)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(port(url, "port", p)?)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad(url, "no server name"));
    }
    Ok((host, nfsport))
}

/// The export path's components, unescaped and checked as share names.
fn path_parts(url: &str, path: &str) -> Result<Vec<String>, NfsError> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        let c = unescape(url, c)?;
        crate::share::source::check_name(&c)
            .map_err(|r| bad(url, format!("path component {c:?}: {r}")))?;
        parts.push(c);
    }
    if parts.is_empty() {
        return Err(bad(url, "no export path (nfs://HOST/EXPORT)"));
    }
    Ok(parts)
}

impl NfsUrl {
    pub fn parse(url: &str) -> Result<NfsUrl, NfsError> {
        if !is_nfs_url(url) {
            return Err(bad(url, "not an nfs:// URL"));
        }
        let rest = &url[6..];
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        if rest.contains('#') {
            return Err(bad(url, "a fragment (#) has no meaning here"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, nfsport) = host_and_port(url, authority)?;
        let mut u = NfsUrl {
            host,
            nfsport,
            mountport: None,
            path: path_parts(url, path)?,
            uid: 65534,
            gid: 65534,
            privileged: false,
            timeout_s: 30,
            concurrency: DEFAULT_CONCURRENCY,
        };
        for kv in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            u.set(url, k, v)?;
        }
        Ok(u)
    }

    /// One `key=value` of the query, checked.
    fn set(&mut self, url: &str, k: &str, v: &str) -> Result<(), NfsError> {
        match k {
            "nfsport" => self.nfsport = Some(port(url, k, v)?),
            "mountport" => self.mountport = Some(port(url, k, v)?),
            "uid" => self.uid = num(url, k, v)?,
            "gid" => self.gid = num(url, k, v)?,
            "version" => {
                if v != "3" {
                    return Err(NfsError::Unsupported(format!(
                        "version={v}: cbr speaks NFSv3 only (NFSv4-only servers are not supported)"
                    )));
                }
            }
            "privileged" => {
                self.privileged = match v {
                    "1" | "" => true,
                    "0" => false,
                    _ => return Err(bad(url, format!("privileged={v:?} (0 or 1)"))),
                }
            }
            "timeout" => {
                let t: u64 = num(url, k, v)?;
                if !(1..=3600).contains(&t) {
                    return Err(bad(url, "timeout= takes 1..3600 seconds"));
                }
                self.timeout_s = t;
            }
            "concurrency" => {
                let n: usize = num(url, k, v)?;
                if !(1..=MAX_CONCURRENCY).contains(&n) {
                    return Err(bad(url, format!("concurrency= takes 1..{MAX_CONCURRENCY}")));
                }
                self.concurrency = n;
            }
            "sec" | "auth" => {
                if v != "sys" {
                    return Err(NfsError::Unsupported(format!(
                        "{k}={v}: only AUTH_SYS is supported (no Kerberos)"
                    )));
                }
            }
            _ => return Err(bad(url, format!("unknown parameter {k:?}"))),
        }
        Ok(())
    }

    /// The path on the server as one string (`/EXPORT/PATH`).
    pub fn server_path(&self) -> String {
        format!("/{}", self.path.join("/"))
    }

    /// The URL as shown in output and as a journal key: the parameters
    /// that say where the share is, not how it is reached.
    pub fn display(&self) -> String {
        let port = self.nfsport.map(|p| format!(":{p}")).unwrap_or_default();
        format!("nfs://{}{}{}", self.host, port, self.server_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libnfs_urls() {
        let u = NfsUrl::parse(
            "nfs://server/export/backup?nfsport=2049&mountport=20048&uid=0&gid=0&version=3",
        )
        .unwrap();
        assert_eq!(u.host, "server");
        assert_eq!(u.path, vec!["export", "backup"]);
        assert_eq!(u.nfsport, Some(2049));
        assert_eq!(u.mountport, Some(20048));
        assert_eq!((u.uid, u.gid), (0, 0));
        assert!(!u.privileged);
        assert_eq!(u.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(u.display(), "nfs://server:2049/export/backup");
        let u = NfsUrl::parse("nfs://h/e?concurrency=1").unwrap();
        assert_eq!(u.concurrency, 1);
        assert_eq!(
            u.display(),
            "nfs://h/e",
            "how, not where: not in the journal key"
        );
        let u = NfsUrl::parse("NFS://[::1]:2050/e?privileged=1").unwrap();
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.nfsport, Some(2050));
        assert!(u.privileged);
        let u = NfsUrl::parse("nfs://h/a%20b//./c").unwrap();
        assert_eq!(u.path, vec!["a b", "c"]);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        for bad in [
            "http://h/e",
            "nfs://h",
            "nfs:///e",
            "nfs://h/",
            "nfs://h:0/e",
            "nfs://h:65536/e",
            "nfs://h:-1/e",
            "nfs://h/e?nfsport=99999",
            "nfs://h/e?uid=4294967296",
            "nfs://h/e?uid=-1",
            "nfs://h/e?gid=+1",
            "nfs://h/e?bogus=1",
            "nfs://h/../e",
            "nfs://h/a/%2e%2e/b",
            "nfs://h/a%2fb",
            "nfs://h/a%00b",
            "nfs://h/a%zz",
            "nfs://user@h/e",
            "nfs://[::1/e",
            "nfs://h/e#x",
            "nfs://h/e?timeout=0",
            "nfs://h/e?concurrency=0",
            "nfs://h/e?concurrency=257",
            "nfs://h/e?concurrency=",
        ] {
            assert!(NfsUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            NfsUrl::parse("nfs://h/e?version=4"),
            Err(NfsError::Unsupported(_))
        ));
        assert!(matches!(
            NfsUrl::parse("nfs://h/e?sec=krb5"),
            Err(NfsError::Unsupported(_))
        ));
    }
}
