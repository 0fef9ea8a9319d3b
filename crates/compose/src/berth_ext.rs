//! The `x-berth` extension (DESIGN.md §3), parsed into typed structs with located errors.

use crate::duration::{self, GoDuration};
use crate::error::Problem;
use crate::node::{Kind, Node};
use crate::source::SourceMap;
use crate::suggest::nearest;

/// Top-level `x-berth`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectBerth {
    /// Where the host's shared proxy accepts HTTP, e.g. `0.0.0.0:80`.
    pub proxy_listen: Option<String>,
    pub backups: Option<Backups>,
}

/// Top-level `x-berth.backups`: where the repository is and how its password is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backups {
    /// `repository` (or its older spelling `dir`): a path, relative to the project
    /// directory; `./backups` when not written.
    pub repository: Option<String>,
    /// The file holding the repository's password; `~` is the user's home.
    pub password_file: Option<String>,
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

/// Service-level `x-berth`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceBerth {
    pub proxy: Option<ServiceProxy>,
    pub strategy: Strategy,
    pub canary: Option<Canary>,
    pub release_command: Option<String>,
    pub drain_timeout: Option<GoDuration>,
    pub backup: Option<BackupKind>,
    /// `builder`: which builder builds the service's image; BuildKit when not written.
    pub builder: Option<BuilderKind>,
}

/// `x-berth.builder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    BuildKit,
    Classic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProxy {
    pub host: String,
    pub port: u16,
    pub health_path: String,
    pub path_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    #[default]
    Rolling,
    BlueGreen,
    Canary,
}

impl Strategy {
    /// The spelling in `x-berth.strategy` and on the command line, e.g. `blue-green`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary => "canary",
        }
    }

    /// The strategy spelled `name`, or `None` when there is none of that name; the one
    /// place that knows the spellings, shared by the loader and `berth deploy --strategy`.
    pub fn from_name(name: &str) -> Option<Strategy> {
        [Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// Percentages of traffic for the canary, ascending, each 1-100.
    pub steps: Vec<u8>,
    /// Steps written `{ percent: N, pause: true }`: the deploy holds there until `berth
    /// promote` (or `berth abort`).
    pub pause_at: Vec<u8>,
    pub interval: GoDuration,
    pub max_error_rate: f64,
}

impl Canary {
    /// The canary's shares of traffic when `x-berth.canary` is not written at all.
    pub const DEFAULT_STEPS: [u8; 2] = [10, 50];
    /// How long each step is watched when `interval` is not written.
    pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
    /// The error rate a new version may show (1%) when `max_error_rate` is not written; also
    /// the bound rolling and blue-green deploys watch for.
    pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;
}

/// Service-level `x-berth.backup`: how the service's data is backed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupKind {
    /// `pg_dump --format=custom` by exec in the running server.
    Postgres,
    /// `mysqldump --single-transaction` by exec (MariaDB or MySQL).
    Mysql,
    /// `BGSAVE`, then the RDB file.
    Redis,
    /// The named volumes the service mounts, with the service stopped (the default).
    Volume,
    /// The host directories the service bind-mounts, with the service stopped.
    Bind,
    /// Nothing of this service is backed up.
    None,
    /// The service's own dump and restore commands for engines berth does not know.
    Custom {
        /// Run by exec; writes the dump to `file` (or to standard output without one).
        command: String,
        /// Run by exec with the dump at `file` (or on standard input without one).
        restore: String,
        file: Option<String>,
    },
}

impl BackupKind {
    /// The spelling in `x-berth.backup` (`custom` for the mapping form).
    pub fn as_str(&self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgres",
            BackupKind::Mysql => "mysql",
            BackupKind::Redis => "redis",
            BackupKind::Volume => "volume",
            BackupKind::Bind => "bind",
            BackupKind::None => "none",
            BackupKind::Custom { .. } => "custom",
        }
    }

    /// The kind spelled `name` in the scalar form, or `None` when there is none of that name.
    pub fn from_name(name: &str) -> Option<BackupKind> {
        [
            BackupKind::Postgres,
            BackupKind::Mysql,
            BackupKind::Redis,
            BackupKind::Volume,
            BackupKind::Bind,
            BackupKind::None,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// A database engine whose files must never be copied while it runs.
    pub fn is_database(&self) -> bool {
        matches!(
            self,
            BackupKind::Postgres
                | BackupKind::Mysql
                | BackupKind::Redis
                | BackupKind::Custom { .. }
        )
    }
}

struct P<'a> {
    sources: &'a SourceMap,
    problems: Vec<Problem>,
}

impl P<'_> {
    fn err(&mut self, n: &Node, msg: String, help: &str) {
        self.problems
            .push(Problem::at(self.sources, n.span, msg).with_help(help.to_string()));
    }

    /// Checks that `n` is a mapping with only `known` keys; returns the entries.
    fn map<'n>(&mut self, n: &'n Node, what: &str, known: &[&str]) -> Vec<(&'n str, &'n Node)> {
        let Some(m) = n.as_map() else {
            if !n.is_null() {
                self.err(
                    n,
                    format!("`{what}` must be a mapping, not {}", n.type_name()),
                    "see DESIGN.md §3 for the x-berth keys",
                );
            }
            return vec![];
        };
        let mut out = Vec::new();
        for (k, e) in m {
            if known.contains(&k.as_str()) || k.starts_with("x-") {
                out.push((k.as_str(), &e.value));
            } else {
                let help = match nearest(k, known.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!("known keys: {}", known.join(", ")),
                };
                self.problems.push(
                    Problem::at(
                        self.sources,
                        e.key_span,
                        format!("unknown key `{k}` in `{what}`"),
                    )
                    .with_help(help),
                );
            }
        }
        out
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => n.scalar_string(),
            _ => {
                self.err(
                    n,
                    format!("`{what}` must be a string, not {}", n.type_name()),
                    "write a plain value",
                );
                None
            }
        }
    }

    fn uint(&mut self, n: &Node, what: &str, max: u64) -> Option<u64> {
        let v = match &n.kind {
            Kind::Int(i) if *i >= 0 => Some(*i as u64),
            Kind::Str(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match v {
            Some(v) if v <= max => Some(v),
            _ => {
                self.err(
                    n,
                    format!("`{what}` must be a whole number from 0 to {max}"),
                    "write a number like 3",
                );
                None
            }
        }
    }

    /// A container port: 1-65535, as a number or a string holding one.
    fn port(&mut self, n: &Node, what: &str) -> Option<u16> {
        let text = n
            .scalar_string()
            .unwrap_or_else(|| n.type_name().to_string());
        let number = match &n.kind {
            Kind::Int(i) => Some(*i),
            Kind::Str(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match number {
            Some(p) if (1..=65535).contains(&p) => Some(p as u16),
            Some(p) => {
                self.err(
                    n,
                    format!("`{what}` {p} is out of range 1-65535"),
                    "write the container port the service listens on, like 8000",
                );
                None
            }
            None => {
                self.err(
                    n,
                    format!("`{what}` must be a port number, not `{text}`"),
                    "write the container port the service listens on, like 8000",
                );
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<GoDuration> {
        let s = n.scalar_string();
        match s.as_deref().and_then(duration::parse) {
            Some(d) => Some(GoDuration(d)),
            None => {
                self.err(
                    n,
                    format!(
                        "`{what}`: invalid duration {}",
                        s.map(|s| format!("`{s}`"))
                            .unwrap_or_else(|| n.type_name().into())
                    ),
                    "use a duration like 30s, 1m30s or 500ms",
                );
                None
            }
        }
    }
}

pub fn project(n: &Node, sources: &SourceMap) -> Result<ProjectBerth, Vec<Problem>> {
    let mut p = P {
        sources,
        problems: vec![],
    };
    let mut out = ProjectBerth::default();
    for (k, v) in p.map(n, "x-berth", &["proxy", "backups"]) {
        match k {
            "proxy" => {
                for (k, v) in p.map(v, "x-berth.proxy", &["listen"]) {
                    if k == "listen" {
                        out.proxy_listen = p.string(v, "x-berth.proxy.listen");
                        if let Some(l) = &out.proxy_listen {
                            if l.parse::<std::net::SocketAddr>().is_err() {
                                p.err(v, format!("`x-berth.proxy.listen` must be an address like 0.0.0.0:80, not `{l}`"), "write HOST:PORT");
                            }
                        }
                    }
                }
            }
            "backups" => {
                let mut b = Backups::default();
                let keys = ["repository", "dir", "password_file", "keep"];
                for (k, v) in p.map(v, "x-berth.backups", &keys) {
                    match k {
                        // `dir` is the spelling of the first berth releases; both mean the
                        // same local repository path.
                        "repository" | "dir" => {
                            b.repository = p.string(v, &format!("x-berth.backups.{k}"));
                            if let Some(r) = &b.repository {
                                if r.contains("://") || r.starts_with("rest:") {
                                    p.err(
                                        v,
                                        format!("off-site backup repositories (`{r}`) are not supported yet"),
                                        "write a local path such as ./backups",
                                    );
                                }
                            }
                        }
                        "password_file" => {
                            b.password_file = p.string(v, "x-berth.backups.password_file")
                        }
                        "keep" => {
                            let periods = ["last", "daily", "weekly", "monthly"];
                            for (k, v) in p.map(v, "x-berth.backups.keep", &periods) {
                                let n = p
                                    .uint(v, &format!("x-berth.backups.keep.{k}"), 10_000)
                                    .map(|x| x as u32);
                                match k {
                                    "last" => b.keep_last = n,
                                    "daily" => b.keep_daily = n,
                                    "weekly" => b.keep_weekly = n,
                                    _ => b.keep_monthly = n,
                                }
                            }
                        }
                        _ => {}
                    }
                }
                out.backups = Some(b);
            }
            _ => {}
        }
    }
    if p.problems.is_empty() {
        Ok(out)
    } else {
        Err(p.problems)
    }
}

/// `x-berth.backup`: a kind's name, or `{ command, restore, file }`.
fn backup_kind(p: &mut P<'_>, v: &Node) -> Option<BackupKind> {
    if v.as_map().is_some() {
        let (mut command, mut restore, mut file) = (None, None, None);
        for (k, v) in p.map(v, "x-berth.backup", &["command", "restore", "file"]) {
            let what = format!("x-berth.backup.{k}");
            match k {
                "command" => command = p.string(v, &what),
                "restore" => restore = p.string(v, &what),
                _ => file = p.string(v, &what),
            }
        }
        return match (command, restore) {
            (Some(command), Some(restore)) => Some(BackupKind::Custom {
                command,
                restore,
                file,
            }),
            _ => {
                p.err(
                    v,
                    "`x-berth.backup` needs both `command` and `restore`".into(),
                    "write { command: DUMP, restore: LOAD, file: PATH }",
                );
                None
            }
        };
    }
    let name = p.string(v, "x-berth.backup")?;
    let kind = BackupKind::from_name(&name);
    if kind.is_none() {
        p.err(
            v,
            format!("unknown backup kind `{name}`"),
            "use postgres, mysql, redis, volume, bind, none, or { command, restore, file }",
        );
    }
    kind
}

pub fn service(n: &Node, sources: &SourceMap) -> Result<ServiceBerth, Vec<Problem>> {
    let mut p = P {
        sources,
        problems: vec![],
    };
    let mut out = ServiceBerth::default();
    let keys = [
        "proxy",
        "strategy",
        "canary",
        "release_command",
        "drain_timeout",
        "backup",
        "builder",
    ];
    for (k, v) in p.map(n, "x-berth", &keys) {
        match k {
            "proxy" => {
                let (mut host, mut port, mut health, mut prefix) =
                    (None, None, "/up".to_string(), None);
                for (k, v) in p.map(
                    v,
                    "x-berth.proxy",
                    &["host", "port", "health_path", "path_prefix"],
                ) {
                    match k {
                        "host" => host = p.string(v, "x-berth.proxy.host"),
                        "port" => port = Some(p.port(v, "x-berth.proxy.port")),
                        "health_path" => {
                            if let Some(h) = p.string(v, "x-berth.proxy.health_path") {
                                if !h.starts_with('/') {
                                    p.err(v, format!("`x-berth.proxy.health_path` must start with `/`, not `{h}`"), "write a path like /up");
                                }
                                health = h;
                            }
                        }
                        _ => prefix = p.string(v, "x-berth.proxy.path_prefix"),
                    }
                }
                match (host, port) {
                    // A port that was given but is not valid has its own message already.
                    (_, Some(None)) => {}
                    (Some(host), Some(Some(port))) => {
                        out.proxy = Some(ServiceProxy {
                            host,
                            port,
                            health_path: health,
                            path_prefix: prefix,
                        })
                    }
                    _ => p.err(
                        v,
                        "`x-berth.proxy` needs a `host` and a `port` (the container port)".into(),
                        "write `proxy: { host: shop.example.com, port: 8000 }`",
                    ),
                }
            }
            "strategy" => {
                if let Some(name) = p.string(v, "x-berth.strategy") {
                    match Strategy::from_name(&name) {
                        Some(s) => out.strategy = s,
                        None => p.err(
                            v,
                            format!("unknown strategy `{name}`"),
                            "use rolling, blue-green or canary",
                        ),
                    }
                }
            }
            "canary" => {
                let mut pause_at = Vec::new();
                let (mut steps, mut interval, mut rate) = (
                    Vec::new(),
                    GoDuration(Canary::DEFAULT_INTERVAL),
                    Canary::DEFAULT_MAX_ERROR_RATE,
                );
                for (k, v) in p.map(
                    v,
                    "x-berth.canary",
                    &["steps", "interval", "max_error_rate"],
                ) {
                    match k {
                        "steps" => match v.as_seq() {
                            Some(items) => {
                                for i in items {
                                    let mut pause = false;
                                    let mut percent_node = i;
                                    if i.as_map().is_some() {
                                        let mut found = None;
                                        for (k, v) in p.map(
                                            i,
                                            "x-berth.canary.steps[]",
                                            &["percent", "pause"],
                                        ) {
                                            match k {
                                                "percent" => found = Some(v),
                                                _ => match &v.kind {
                                                    Kind::Bool(b) => pause = *b,
                                                    _ => p.err(
                                                        v,
                                                        "`pause` must be true or false".into(),
                                                        "write `{ percent: 25, pause: true }`",
                                                    ),
                                                },
                                            }
                                        }
                                        match found {
                                            Some(v) => percent_node = v,
                                            None => {
                                                p.err(
                                                    i,
                                                    "a canary step needs a `percent`".into(),
                                                    "write `{ percent: 25, pause: true }`",
                                                );
                                                continue;
                                            }
                                        }
                                    }
                                    if let Some(s) =
                                        p.uint(percent_node, "x-berth.canary.steps[]", 100)
                                    {
                                        if pause {
                                            pause_at.push(s as u8);
                                        }
                                        if s == 0 || steps.last().is_some_and(|l| *l >= s as u8) {
                                            p.err(i, "canary steps must be ascending percentages from 1 to 100".into(), "write steps like [10, 50]");
                                        }
                                        steps.push(s as u8);
                                    }
                                }
                            }
                            None => p.err(
                                v,
                                "`x-berth.canary.steps` must be a list of percentages".into(),
                                "write steps like [10, 50]",
                            ),
                        },
                        "interval" => {
                            if let Some(d) = p.duration(v, "x-berth.canary.interval") {
                                interval = d;
                            }
                        }
                        _ => {
                            let r = match &v.kind {
                                Kind::Float(f) => Some(*f),
                                Kind::Int(i) => Some(*i as f64),
                                Kind::Str(s) => s.parse().ok(),
                                _ => None,
                            };
                            match r {
                                Some(r) if (0.0..=1.0).contains(&r) => rate = r,
                                _ => p.err(v, "`x-berth.canary.max_error_rate` must be a fraction from 0 to 1".into(), "write 0.01 for 1%"),
                            }
                        }
                    }
                }
                out.canary = Some(Canary {
                    steps,
                    pause_at,
                    interval,
                    max_error_rate: rate,
                });
            }
            "release_command" => out.release_command = p.string(v, "x-berth.release_command"),
            "drain_timeout" => out.drain_timeout = p.duration(v, "x-berth.drain_timeout"),
            "backup" => out.backup = backup_kind(&mut p, v),
            "builder" => {
                out.builder = match p.string(v, "x-berth.builder").as_deref() {
                    Some("buildkit") => Some(BuilderKind::BuildKit),
                    Some("classic") => Some(BuilderKind::Classic),
                    Some(other) => {
                        p.err(
                            v,
                            format!("unknown builder `{other}`"),
                            "use buildkit (the default) or classic",
                        );
                        None
                    }
                    None => None,
                }
            }
            _ => {}
        }
    }
    if p.problems.is_empty() {
        Ok(out)
    } else {
        Err(p.problems)
    }
}
