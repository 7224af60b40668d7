//! `mig.toml`: where the specs are, which database, and the run defaults.
//! Found by walking up from the working directory; `MIG_DATABASE_URL` overrides the URL.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const FILE_NAME: &str = "mig.toml";
const DEMO_DATABASE: &str = ".mig/demo.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}:{line}:{col}: {message}")]
    InvalidAt {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error(
        "database url `{0}` is not understood: use `sqlite:PATH` or `postgres://user@host:port/db`"
    )]
    BadUrl(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The folder holding mig.toml; relative paths in it are taken from here.
    pub root: PathBuf,
    pub specs: PathBuf,
    pub database: Database,
    pub defaults: Defaults,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub batch: u64,
    pub pause: Duration,
    /// How long a batch may take while another session is busy; none: batches keep their size.
    pub yield_after: Option<Duration>,
    pub lock_timeout: Duration,
    pub retries: u64,
    /// Bytes of WAL a replica may have left to replay before a batch waits for it; none:
    /// replicas are not watched.
    pub max_replica_lag: Option<u64>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            batch: 1000,
            pause: Duration::ZERO,
            yield_after: None,
            lock_timeout: Duration::from_secs(2),
            retries: 3,
            max_replica_lag: None,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    specs: Option<String>,
    database: Option<RawDatabase>,
    defaults: Option<RawDefaults>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    batch: Option<u64>,
    pause: Option<String>,
    #[serde(rename = "yield")]
    yield_after: Option<String>,
    lock_timeout: Option<String>,
    retries: Option<u64>,
    max_replica_lag: Option<String>,
}

impl Config {
    /// Loads `explicit` if given, else the nearest mig.toml above `cwd`, else the defaults
    /// with `cwd` as root.
    pub fn load(explicit: Option<&Path>, cwd: &Path) -> Result<Config, ConfigError> {
        let found = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => find_upwards(cwd),
        };
        let (root, raw) = match found {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let raw: RawConfig =
                    toml::from_str(&text).map_err(|e| located(path.clone(), &text, &e))?;
                let root = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| cwd.to_path_buf());
                let root = if root.as_os_str().is_empty() {
                    cwd.to_path_buf()
                } else {
                    root
                };
                (root, raw)
            }
            None => (cwd.to_path_buf(), RawConfig::default()),
        };
        let url = std::env::var("MIG_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| raw.database.as_ref().and_then(|d| d.url.clone()))
            .unwrap_or_else(|| format!("sqlite:{DEMO_DATABASE}"));
        let database = parse_url(&url, &root)?;
        let defaults = defaults_from(raw.defaults.unwrap_or_default(), &root)?;
        let specs = root.join(raw.specs.unwrap_or_else(|| "specs".into()));
        Ok(Config {
            root,
            specs,
            database,
            defaults,
        })
    }

    /// The demo database is the SQLite file `.mig/demo.sqlite` of the project; only it is
    /// ever created and seeded by mig.
    pub fn is_demo_database(&self) -> bool {
        matches!(&self.database, Database::Sqlite(p) if *p == self.root.join(DEMO_DATABASE))
    }
}

/// The parser's error at the line and column it points at: without them, `expected newline`
/// over a file of a dozen lines leaves the user to guess which line (`pause = 50ms`,
/// unquoted). Columns count characters from 1, as spec diagnostics do.
fn located(path: PathBuf, text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().to_string();
    let Some(span) = error.span() else {
        return ConfigError::Invalid { path, message };
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let last_line = before.rsplit_once('\n').map_or(before, |(_, last)| last);
    ConfigError::InvalidAt {
        path,
        line,
        col: last_line.chars().count() + 1,
        message,
    }
}

fn find_upwards(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

fn parse_url(url: &str, root: &Path) -> Result<Database, ConfigError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(ConfigError::BadUrl(without_password(url)));
        }
        return Ok(Database::Sqlite(root.join(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    Err(ConfigError::BadUrl(without_password(url)))
}

/// `url` as mig prints it: a password in it (`postgres://user:secret@host`, a `password=`
/// parameter, or `sslpassword=`, the passphrase of the client's key) replaced by `***`.
/// Errors carry the URL to say which database failed, and they end up in terminals, CI logs
/// and the node's replies.
pub fn without_password(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, None), |(a, p)| (a, Some(p)));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            match path {
                Some(path) => format!("{scheme}://{authority}/{path}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((key, _)) if is_secret_parameter(key) => format!("{key}=***"),
                _ => param.to_string(),
            })
            .collect();
        shown = format!("{shown}?{}", params.join("&"));
    }
    shown
}

fn is_secret_parameter(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

fn defaults_from(raw: RawDefaults, root: &Path) -> Result<Defaults, ConfigError> {
    let base = Defaults::default();
    let invalid = |message: String| ConfigError::Invalid {
        path: root.join(FILE_NAME),
        message,
    };
    let duration = |field: &str, text: Option<String>, fallback: Duration| match text {
        None => Ok(fallback),
        Some(t) => parse_duration(&t).ok_or_else(|| {
            invalid(format!(
                "defaults.{field}: `{t}` is not a duration like 50ms or 2s"
            ))
        }),
    };
    let batch = raw.batch.unwrap_or(base.batch);
    if batch == 0 {
        return Err(invalid("defaults.batch must be at least 1".into()));
    }
    Ok(Defaults {
        batch,
        pause: duration("pause", raw.pause, base.pause)?,
        yield_after: match raw.yield_after {
            None => base.yield_after,
            text => Some(duration("yield", text, Duration::ZERO)?),
        },
        lock_timeout: duration("lock_timeout", raw.lock_timeout, base.lock_timeout)?,
        retries: raw.retries.unwrap_or(base.retries),
        max_replica_lag: match raw.max_replica_lag {
            None => base.max_replica_lag,
            Some(text) => Some(parse_size(&text).ok_or_else(|| {
                invalid(format!(
                    "defaults.max_replica_lag: `{text}` is not a size like 64MB, 512kB or 1GB"
                ))
            })?),
        },
    })
}

/// `512kB`, `64MB`, `1GB`, `100B`: PostgreSQL's units, 1024 to the next.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit: u64 = match unit.trim_start() {
        "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `bytes` in the largest of PostgreSQL's units it reaches: whole where it is (`64MB`, which
/// `parse_size` reads back), else to a tenth (`234.5kB`).
pub fn show_size(bytes: u64) -> String {
    let units = [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("kB", 1 << 10),
    ];
    for (name, size) in units {
        if bytes >= size {
            return match bytes.is_multiple_of(size) {
                true => format!("{}{name}", bytes / size),
                false => format!("{:.1}{name}", bytes as f64 / size as f64),
            };
        }
    }
    format!("{bytes}B")
}

/// `250ms`, `2s`, `1m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_url_shows_no_password() {
        let cases = [
            (
                "postgres://u:s3cret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgresql://u:p@ss:w@h/db", "postgresql://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?password=s3cret&sslmode=disable",
                "postgres://h/db?password=***&sslmode=disable",
            ),
            ("postgres://u:x@h", "postgres://u:***@h"),
            (
                "postgres://h/db?sslkey=/k.pem&sslpassword=s3cret",
                "postgres://h/db?sslkey=/k.pem&sslpassword=***",
            ),
            ("sqlite:db.sqlite", "sqlite:db.sqlite"),
        ];
        for (url, shown) in cases {
            assert_eq!(without_password(url), shown, "{url}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0ms"), Some(Duration::ZERO));
        assert_eq!(parse_duration("50ms"), Some(Duration::from_millis(50)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("2h"), None);
    }

    #[test]
    fn sizes_in_postgresqls_units() {
        assert_eq!(parse_size("100B"), Some(100));
        assert_eq!(parse_size("512kB"), Some(512 * 1024));
        assert_eq!(parse_size("64MB"), Some(64 << 20));
        assert_eq!(parse_size("1 GB"), Some(1 << 30));
        for refused in ["64", "64mb", "MB", "-1MB", "1.5GB", "99999999999999TB"] {
            assert_eq!(parse_size(refused), None, "{refused}");
        }
        for bytes in [100, 512 * 1024, 64 << 20, 1 << 30] {
            assert_eq!(parse_size(&show_size(bytes)), Some(bytes));
        }
        assert_eq!(show_size(64 << 20), "64MB");
        assert_eq!(show_size(240_088), "234.5kB");
        assert_eq!(show_size(1023), "1023B");
    }

    #[test]
    fn finds_config_upwards_and_resolves_paths_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            "specs = \"specs\"\n[database]\nurl = \"sqlite:.mig/demo.sqlite\"\n[defaults]\nbatch = 10\npause = \"5ms\"\nyield = \"2ms\"\n",
        )
        .unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        let config = Config::load(None, &nested).unwrap();
        assert_eq!(config.root, dir.path());
        assert_eq!(config.specs, dir.path().join("specs"));
        assert!(config.is_demo_database());
        assert_eq!(config.defaults.batch, 10);
        assert_eq!(config.defaults.pause, Duration::from_millis(5));
        assert_eq!(config.defaults.yield_after, Some(Duration::from_millis(2)));
    }

    #[test]
    fn a_toml_error_names_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("[defaults]\nbatch = 10\npause = 50ms\n", ":3:11: "),
            ("[defaults]\nbatch = \"100\"\n", ":2:9: "),
            ("[database]\nurl = \"sqlite:x\n", ":2:16: "),
            ("[default]\nbatch = 1\n", ":1:2: "),
        ];
        for (text, at) in cases {
            std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
            let err = Config::load(None, dir.path()).unwrap_err().to_string();
            let expected = format!("{}{at}", dir.path().join(FILE_NAME).display());
            assert!(err.starts_with(&expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn max_replica_lag_is_a_size_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |value: &str| {
            std::fs::write(
                dir.path().join(FILE_NAME),
                format!("[defaults]\nmax_replica_lag = \"{value}\"\n"),
            )
            .unwrap()
        };
        write("64MB");
        let config = Config::load(None, dir.path()).unwrap();
        assert_eq!(config.defaults.max_replica_lag, Some(64 << 20));
        write("64 megs");
        let err = Config::load(None, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("defaults.max_replica_lag: `64 megs` is not a size like 64MB"),
            "{err}"
        );
        std::fs::write(dir.path().join(FILE_NAME), "[defaults]\nbatch = 5\n").unwrap();
        let config = Config::load(None, dir.path()).unwrap();
        assert_eq!(config.defaults.max_replica_lag, None);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "spec = \"x\"\n").unwrap();
        let err = Config::load(None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("spec"), "{err}");
    }
}
