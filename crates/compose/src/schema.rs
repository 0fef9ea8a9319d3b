//! Structural validation of a Compose file: unknown keys, wrong types, bad enum values.
//!
//! [`validate`] checks one parsed and interpolated file tree against the shape the Compose
//! Specification's JSON schema (`compose-spec.json`) gives it, and returns every problem found,
//! each with the dotted path and the span of the offending key or value.
//!
//! The shape is written as Rust data: a [`Shape`] describes what one node may be, and closed
//! mappings are [`Obj`] tables listing their keys. The tables below follow the JSON schema
//! section by section (services, build, deploy, develop, networks, volumes, configs, secrets,
//! include, models). Where the schema says `"type": ["integer", "string"]` we accept a string
//! only when Compose could convert it (compose-go casts interpolated strings to the target type
//! before using them), so `replicas: "2"` is fine and `replicas: "two"` is reported here rather
//! than as an obscure conversion failure later. A few values the schema leaves as plain strings
//! are checked as well because Compose or the engine rejects them later anyway: durations,
//! `restart`, `pull_policy`, `deploy.mode`, `failure_action`, port `protocol` and `mode`.
//!
//! Alternatives (`oneOf` in the schema) are resolved by the node's kind: the first alternative
//! that accepts a string, a sequence or a mapping is the one whose errors are reported, so a
//! mistake deep inside a long-syntax entry is reported there and not as "matches no
//! alternative".
//!
//! Nodes tagged `!reset` are not checked: Compose drops them before validating.

use crate::node::{Entry, Kind, Node, Tag};
use crate::source::Span;
use std::fmt::Write as _;
use std::time::Duration;

/// One problem found by [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaError {
    /// Dotted key path, e.g. `services.web.ports[0].target`.
    pub path: String,
    /// Lowercase, no trailing period, says what to do, e.g.
    /// "unknown key `pots` in service `web`; did you mean `ports`?"
    pub message: String,
    pub span: Span,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SchemaError {}

/// Validates one parsed and interpolated top-level file tree. Returns every problem found
/// (not just the first), each with the span of the offending key or value.
pub fn validate(root: &Node) -> Vec<SchemaError> {
    let mut v = Validator {
        path: String::new(),
        errors: Vec::new(),
    };
    if root.as_map().is_none() {
        v.errors.push(SchemaError {
            path: String::new(),
            message: format!(
                "a compose file must be a mapping at the top level (with `services:` and so on), not {}",
                root.type_name()
            ),
            span: root.span,
        });
        return v.errors;
    }
    v.check(&Shape::Obj(&TOP), root);
    v.errors
}

/// Converts the strings of one parsed and interpolated file tree to the types the schema gives
/// their place: booleans (`true`, `yes`, `on`... as compose-go's `toBoolean`), integers and
/// numbers. compose-go casts every string at a typed path after interpolation, so
/// `read_only: ${RO}` is a boolean and `replicas: "2"` an integer; doing it from the same tables
/// [`validate`] uses covers every typed field at once. Strings that do not convert are left
/// alone for [`validate`] to report.
pub fn coerce(root: &mut Node) {
    coerce_node(&Shape::Obj(&TOP), root);
}

fn coerce_node(shape: &Shape, node: &mut Node) {
    if node.tag == Some(Tag::Reset) {
        return;
    }
    match shape {
        Bool | Int | IntIn(..) | Number => {
            if let Kind::Str(s) = &node.kind {
                if let Some(k) = convert(shape, s) {
                    node.kind = k;
                }
            }
        }
        Seq(item) | Set(item) => {
            if let Kind::Seq(items) = &mut node.kind {
                for n in items {
                    coerce_node(item, n);
                }
            }
        }
        Map(value) | Names { value, .. } => {
            if let Kind::Map(m) = &mut node.kind {
                for e in m.values_mut() {
                    coerce_node(value, &mut e.value);
                }
            }
        }
        Obj(o) => {
            if let Kind::Map(m) = &mut node.kind {
                for (k, e) in m.iter_mut() {
                    if let Some((_, shape)) = o.fields.iter().find(|(name, _)| name == k) {
                        coerce_node(shape, &mut e.value);
                    }
                }
            }
        }
        OneOf(alts) => {
            // A string keeps the first alternative that takes it: a typed one only when it
            // converts, a string one as it is. Containers go to the first that takes their kind.
            for alt in alts.iter().filter(|a| accepts(a, node)) {
                match (alt, &node.kind) {
                    (Bool | Int | IntIn(..) | Number, Kind::Str(s)) => {
                        if let Some(k) = convert(alt, s) {
                            node.kind = k;
                            return;
                        }
                    }
                    _ => {
                        coerce_node(alt, node);
                        return;
                    }
                }
            }
        }
        _ => {}
    }
}

/// The typed value of `s` at a place of shape `shape`, when it has one.
fn convert(shape: &Shape, s: &str) -> Option<Kind> {
    match shape {
        Bool => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Some(Kind::Bool(true)),
            "n" | "no" | "false" | "off" => Some(Kind::Bool(false)),
            _ => None,
        },
        Int | IntIn(..) => s.parse::<i64>().ok().map(Kind::Int),
        Number => match s.parse::<i64>() {
            Ok(i) => Some(Kind::Int(i)),
            Err(_) => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Kind::Float),
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

/// What a node may be.
#[derive(Debug)]
enum Shape {
    /// Anything (extensions, free-form options).
    Any,
    Null,
    Str,
    /// A string or a boolean (`provenance: true`, `provenance: mode=max`).
    StrOrBool,
    /// A string or a number, any value.
    StrOrNum,
    /// A string, number or boolean (values of `labels`, `environment` mappings).
    Scalar,
    /// A boolean, or a string Compose converts to one (`true`, `no`, `on`...).
    Bool,
    /// An integer, or a string holding one.
    Int,
    /// An integer within bounds, or a string holding one.
    IntIn(i64, i64),
    /// A number, or a string holding one.
    Number,
    /// A byte size: a number, or a string like `512m`, `1.5gb`.
    Bytes,
    /// A Go duration string like `1m30s`.
    Dur,
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// A string checked by a function; `hint` ends the error message.
    Check {
        what: &'static str,
        ok: fn(&str) -> bool,
        hint: &'static str,
    },
    Seq(&'static Shape),
    /// A sequence whose items must be unique (`uniqueItems` in the schema).
    Set(&'static Shape),
    /// A mapping with any keys.
    Map(&'static Shape),
    /// A mapping keyed by names matching `^[a-zA-Z0-9._-]+$` (services, networks...).
    Names {
        what: &'static str,
        value: &'static Shape,
    },
    /// A mapping with a fixed set of keys.
    Obj(&'static Obj),
    /// The first alternative whose kind matches the node is used.
    OneOf(&'static [Shape]),
}

/// How unknown-key messages name the mapping they were found in.
#[derive(Debug, Clone, Copy)]
enum What {
    /// "at the top level"
    Top,
    /// "in service `web`", with the last path key as the name.
    Named(&'static str),
    /// "in `services.web.build`"
    Path,
}

/// A mapping with known keys.
#[derive(Debug)]
struct Obj {
    what: What,
    fields: &'static [(&'static str, Shape)],
    /// `x-` keys are allowed (`patternProperties: {"^x-": {}}`).
    ext: bool,
    required: &'static [&'static str],
    /// Keys users put here that belong elsewhere, with where they belong.
    moved: &'static [(&'static str, &'static str)],
}

const fn obj(what: What, fields: &'static [(&'static str, Shape)]) -> Obj {
    Obj {
        what,
        fields,
        ext: true,
        required: &[],
        moved: &[],
    }
}

const fn obj_req(
    what: What,
    fields: &'static [(&'static str, Shape)],
    required: &'static [&'static str],
) -> Obj {
    Obj {
        what,
        fields,
        ext: true,
        required,
        moved: &[],
    }
}

/// Same as [`obj`], for the few mappings the schema closes without allowing `x-` keys.
const fn obj_noext(what: What, fields: &'static [(&'static str, Shape)]) -> Obj {
    Obj {
        what,
        fields,
        ext: false,
        required: &[],
        moved: &[],
    }
}

use Shape::*;

// Common definitions (`#/definitions/...` in the JSON schema).

/// `list_of_strings`
const STR_LIST: Shape = Set(&Str);
/// `string_or_list`
const STR_OR_LIST: Shape = OneOf(&[Str, STR_LIST]);
/// `list_or_dict`: a mapping of scalars (or null) or a list of `KEY=VALUE` strings.
const LIST_OR_DICT: Shape = OneOf(&[Map(&OneOf(&[Scalar, Null])), STR_LIST]);
/// `command`: null, a string or a list of strings.
const COMMAND: Shape = OneOf(&[Null, Str, Seq(&Str)]);
/// `driver_opts`-style mappings.
const OPTS: Shape = Map(&StrOrNum);
const STR_SEQ: Shape = Seq(&Str);

static TOP: Obj = obj(
    What::Top,
    &[
        ("version", Scalar),
        ("name", Str),
        ("include", Seq(&OneOf(&[Str, Obj(&INCLUDE)]))),
        (
            "services",
            Names {
                what: "service",
                value: &Obj(&SERVICE),
            },
        ),
        (
            "models",
            Names {
                what: "model",
                value: &Obj(&MODEL),
            },
        ),
        (
            "networks",
            Names {
                what: "network",
                value: &OneOf(&[Null, Obj(&NETWORK)]),
            },
        ),
        (
            "volumes",
            Names {
                what: "volume",
                value: &OneOf(&[Null, Obj(&VOLUME)]),
            },
        ),
        (
            "secrets",
            Names {
                what: "secret",
                value: &Obj(&SECRET),
            },
        ),
        (
            "configs",
            Names {
                what: "config",
                value: &Obj(&CONFIG),
            },
        ),
    ],
);

static INCLUDE: Obj = obj_noext(
    What::Path,
    &[
        ("path", STR_OR_LIST),
        ("env_file", STR_OR_LIST),
        ("project_directory", Str),
    ],
);

static SERVICE: Obj = Obj {
    what: What::Named("service"),
    fields: &[
        ("annotations", LIST_OR_DICT),
        ("attach", Bool),
        ("blkio_config", Obj(&BLKIO)),
        ("build", OneOf(&[Str, Obj(&BUILD)])),
        ("cap_add", STR_LIST),
        ("cap_drop", STR_LIST),
        ("cgroup", Enum(&["host", "private"])),
        ("cgroup_parent", Str),
        ("command", COMMAND),
        ("configs", CONFIG_OR_SECRET_REFS),
        ("container_name", Str),
        ("cpu_count", IntIn(0, i64::MAX)),
        ("cpu_percent", IntIn(0, 100)),
        ("cpu_period", Number),
        ("cpu_quota", Number),
        ("cpu_rt_period", Number),
        ("cpu_rt_runtime", Number),
        ("cpu_shares", Number),
        ("cpus", Number),
        ("cpuset", Str),
        ("credential_spec", Obj(&CREDENTIAL_SPEC)),
        (
            "depends_on",
            OneOf(&[
                STR_LIST,
                Names {
                    what: "service",
                    value: &Obj(&DEPENDS_ON),
                },
            ]),
        ),
        ("deploy", OneOf(&[Null, Obj(&DEPLOY)])),
        ("develop", OneOf(&[Null, Obj(&DEVELOP)])),
        ("device_cgroup_rules", STR_LIST),
        ("devices", Set(&OneOf(&[Str, Obj(&DEVICE)]))),
        ("dns", STR_OR_LIST),
        ("dns_opt", STR_LIST),
        ("dns_search", STR_OR_LIST),
        ("domainname", Str),
        ("entrypoint", COMMAND),
        ("env_file", OneOf(&[Str, Seq(&OneOf(&[Str, Obj(&ENV_FILE)]))])),
        ("environment", LIST_OR_DICT),
        ("expose", Set(&StrOrNum)),
        ("extends", OneOf(&[Str, Obj(&EXTENDS)])),
        ("external_links", STR_LIST),
        ("extra_hosts", EXTRA_HOSTS),
        ("gpus", OneOf(&[Enum(&["all"]), Seq(&Obj(&GPU))])),
        ("group_add", Set(&StrOrNum)),
        ("healthcheck", Obj(&HEALTHCHECK)),
        ("hostname", Str),
        ("image", Str),
        ("init", Bool),
        ("ipc", Str),
        ("isolation", Str),
        ("label_file", OneOf(&[Str, STR_SEQ])),
        ("labels", LIST_OR_DICT),
        ("links", STR_LIST),
        ("logging", Obj(&LOGGING)),
        ("mac_address", Str),
        ("mem_limit", Bytes),
        ("mem_reservation", Bytes),
        ("mem_swappiness", Int),
        ("memswap_limit", Bytes),
        (
            "models",
            OneOf(&[
                STR_LIST,
                Names {
                    what: "model",
                    value: &Obj(&SERVICE_MODEL),
                },
            ]),
        ),
        ("network_mode", Str),
        (
            "networks",
            OneOf(&[
                STR_LIST,
                Names {
                    what: "network",
                    value: &OneOf(&[Null, Obj(&SERVICE_NETWORK)]),
                },
            ]),
        ),
        ("oom_kill_disable", Bool),
        ("oom_score_adj", IntIn(-1000, 1000)),
        ("pid", OneOf(&[Null, Str])),
        ("pids_limit", Number),
        ("platform", Str),
        ("ports", Set(&OneOf(&[StrOrNum, Obj(&PORT)]))),
        ("post_start", Seq(&Obj(&HOOK))),
        ("pre_stop", Seq(&Obj(&HOOK))),
        ("privileged", Bool),
        ("profiles", STR_LIST),
        ("provider", Obj(&PROVIDER)),
        (
            "pull_policy",
            Check {
                what: "pull policy",
                ok: pull_policy_ok,
                hint: "use always, never, missing, build, refresh, daily, weekly or every_<duration> (e.g. every_12h)",
            },
        ),
        ("pull_refresh_after", Str),
        ("read_only", Bool),
        (
            "restart",
            Check {
                what: "restart policy",
                ok: restart_ok,
                hint: "use no, always, on-failure, on-failure:<max retries> or unless-stopped",
            },
        ),
        ("runtime", Str),
        ("scale", Int),
        ("secrets", CONFIG_OR_SECRET_REFS),
        ("security_opt", STR_LIST),
        ("shm_size", Bytes),
        ("stdin_open", Bool),
        ("stop_grace_period", Dur),
        ("stop_signal", Str),
        ("storage_opt", Map(&Any)),
        ("sysctls", LIST_OR_DICT),
        ("tmpfs", STR_OR_LIST),
        ("tty", Bool),
        ("ulimits", ULIMITS),
        ("use_api_socket", Bool),
        ("user", Str),
        ("userns_mode", Str),
        ("uts", Str),
        ("volumes", Set(&OneOf(&[Str, Obj(&SERVICE_VOLUME)]))),
        ("volumes_from", STR_LIST),
        ("working_dir", Str),
    ],
    ext: true,
    required: &[],
    moved: &[
        ("replicas", "deploy.replicas"),
        ("resources", "deploy.resources"),
        ("restart_policy", "deploy.restart_policy"),
        ("placement", "deploy.placement"),
        ("update_config", "deploy.update_config"),
        ("context", "build.context"),
        ("dockerfile", "build.dockerfile"),
        ("args", "build.args"),
        ("target", "build.target"),
        ("interval", "healthcheck.interval"),
        ("test", "healthcheck.test"),
        ("memory", "deploy.resources.limits.memory"),
        ("env", "environment"),
        ("volume", "volumes"),
        ("port", "ports"),
        ("network", "networks"),
    ],
};

static BUILD: Obj = obj(
    What::Path,
    &[
        ("context", Str),
        ("dockerfile", Str),
        ("dockerfile_inline", Str),
        ("entitlements", STR_SEQ),
        ("args", LIST_OR_DICT),
        ("ssh", LIST_OR_DICT),
        ("labels", LIST_OR_DICT),
        ("cache_from", STR_SEQ),
        ("cache_to", STR_SEQ),
        ("no_cache", Bool),
        ("additional_contexts", LIST_OR_DICT),
        ("network", Str),
        ("provenance", StrOrBool),
        ("sbom", StrOrBool),
        ("pull", Bool),
        ("target", Str),
        ("shm_size", Bytes),
        ("extra_hosts", EXTRA_HOSTS),
        ("isolation", Str),
        ("privileged", Bool),
        ("secrets", CONFIG_OR_SECRET_REFS),
        ("tags", STR_SEQ),
        ("ulimits", ULIMITS),
        ("platforms", STR_SEQ),
    ],
);

static BLKIO: Obj = obj_noext(
    What::Path,
    &[
        ("device_read_bps", Seq(&Obj(&BLKIO_LIMIT))),
        ("device_read_iops", Seq(&Obj(&BLKIO_LIMIT))),
        ("device_write_bps", Seq(&Obj(&BLKIO_LIMIT))),
        ("device_write_iops", Seq(&Obj(&BLKIO_LIMIT))),
        ("weight", Int),
        ("weight_device", Seq(&Obj(&BLKIO_WEIGHT))),
    ],
);
static BLKIO_LIMIT: Obj = obj_noext(What::Path, &[("path", Str), ("rate", Bytes)]);
static BLKIO_WEIGHT: Obj = obj_noext(What::Path, &[("path", Str), ("weight", Int)]);

static CREDENTIAL_SPEC: Obj = obj(
    What::Path,
    &[("config", Str), ("file", Str), ("registry", Str)],
);

static DEPENDS_ON: Obj = obj(
    What::Path,
    &[
        ("restart", Bool),
        ("required", Bool),
        (
            "condition",
            Enum(&[
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            ]),
        ),
    ],
);

static DEVICE: Obj = obj_req(
    What::Path,
    &[("source", Str), ("target", Str), ("permissions", Str)],
    &["source"],
);

static ENV_FILE: Obj = Obj {
    what: What::Path,
    fields: &[("path", Str), ("format", Str), ("required", Bool)],
    ext: false,
    required: &["path"],
    moved: &[],
};

static EXTENDS: Obj = Obj {
    what: What::Path,
    fields: &[("service", Str), ("file", Str)],
    ext: false,
    required: &["service"],
    moved: &[],
};

/// `extra_hosts`: `host: ip` (or a list of ips) mapping, or `host:ip` / `host=ip` strings.
const EXTRA_HOSTS: Shape = OneOf(&[Map(&OneOf(&[Str, STR_SEQ])), STR_LIST]);

static GPU: Obj = obj(
    What::Path,
    &[
        ("capabilities", STR_LIST),
        ("count", OneOf(&[Int, Enum(&["all"])])),
        ("device_ids", STR_LIST),
        ("driver", Str),
        ("options", LIST_OR_DICT),
    ],
);

static HEALTHCHECK: Obj = obj(
    What::Path,
    &[
        ("disable", Bool),
        ("interval", Dur),
        ("retries", IntIn(0, i64::MAX)),
        ("test", OneOf(&[Str, STR_SEQ])),
        ("timeout", Dur),
        ("start_period", Dur),
        ("start_interval", Dur),
    ],
);

static LOGGING: Obj = obj(
    What::Path,
    &[("driver", Str), ("options", Map(&OneOf(&[StrOrNum, Null])))],
);

static SERVICE_MODEL: Obj = obj(What::Path, &[("endpoint_var", Str), ("model_var", Str)]);

static SERVICE_NETWORK: Obj = obj(
    What::Path,
    &[
        ("aliases", STR_LIST),
        ("interface_name", Str),
        ("ipv4_address", Str),
        ("ipv6_address", Str),
        ("link_local_ips", STR_LIST),
        ("mac_address", Str),
        ("driver_opts", OPTS),
        ("priority", Number),
        ("gw_priority", Number),
    ],
);

static PORT: Obj = obj(
    What::Path,
    &[
        ("name", Str),
        ("mode", Enum(&["host", "ingress"])),
        ("host_ip", Str),
        ("target", Int),
        ("published", StrOrNum),
        (
            "protocol",
            Check {
                what: "port protocol",
                ok: protocol_ok,
                hint: "use tcp, udp or sctp",
            },
        ),
        ("app_protocol", Str),
    ],
);

static HOOK: Obj = obj_req(
    What::Path,
    &[
        ("command", COMMAND),
        ("user", Str),
        ("privileged", Bool),
        ("working_dir", Str),
        ("environment", LIST_OR_DICT),
    ],
    &["command"],
);

static PROVIDER: Obj = obj_req(
    What::Path,
    &[
        ("type", Str),
        ("options", Map(&OneOf(&[Scalar, Seq(&Scalar)]))),
    ],
    &["type"],
);

/// `service_config_or_secret`
const CONFIG_OR_SECRET_REFS: Shape = Seq(&OneOf(&[Str, Obj(&FILE_REF)]));
static FILE_REF: Obj = obj(
    What::Path,
    &[
        ("source", Str),
        ("target", Str),
        ("uid", Str),
        ("gid", Str),
        ("mode", StrOrNum),
    ],
);

/// `ulimits`: `nofile: 65535` or `nofile: {soft: 20000, hard: 40000}`.
const ULIMITS: Shape = Map(&OneOf(&[Int, Obj(&ULIMIT)]));
static ULIMIT: Obj = obj_req(
    What::Path,
    &[("hard", Int), ("soft", Int)],
    &["soft", "hard"],
);

static SERVICE_VOLUME: Obj = obj_req(
    What::Path,
    &[
        (
            "type",
            Enum(&["bind", "volume", "tmpfs", "cluster", "npipe", "image"]),
        ),
        ("source", Str),
        ("target", Str),
        ("read_only", Bool),
        ("consistency", Str),
        ("bind", Obj(&VOLUME_BIND)),
        ("volume", Obj(&VOLUME_VOLUME)),
        ("tmpfs", Obj(&VOLUME_TMPFS)),
        ("image", Obj(&VOLUME_IMAGE)),
    ],
    &["type"],
);
static VOLUME_BIND: Obj = obj(
    What::Path,
    &[
        ("propagation", Str),
        ("create_host_path", Bool),
        (
            "recursive",
            Enum(&["enabled", "disabled", "writable", "readonly"]),
        ),
        ("selinux", Enum(&["z", "Z"])),
    ],
);
static VOLUME_VOLUME: Obj = obj(
    What::Path,
    &[("labels", LIST_OR_DICT), ("nocopy", Bool), ("subpath", Str)],
);
static VOLUME_TMPFS: Obj = obj(What::Path, &[("size", Bytes), ("mode", StrOrNum)]);
static VOLUME_IMAGE: Obj = obj(What::Path, &[("subpath", Str)]);

static DEVELOP: Obj = obj(What::Path, &[("watch", Seq(&Obj(&WATCH)))]);
static WATCH: Obj = obj_req(
    What::Path,
    &[
        ("ignore", STR_OR_LIST),
        ("include", STR_OR_LIST),
        ("path", Str),
        (
            "action",
            Enum(&["rebuild", "sync", "restart", "sync+restart", "sync+exec"]),
        ),
        ("target", Str),
        ("exec", Obj(&HOOK)),
        ("initial_sync", Bool),
    ],
    &["path", "action"],
);

static DEPLOY: Obj = obj(
    What::Path,
    &[
        (
            "mode",
            Enum(&["replicated", "global", "replicated-job", "global-job"]),
        ),
        ("endpoint_mode", Str),
        ("replicas", IntIn(0, i64::MAX)),
        ("labels", LIST_OR_DICT),
        ("rollback_config", Obj(&UPDATE_CONFIG)),
        ("update_config", Obj(&UPDATE_CONFIG)),
        ("resources", Obj(&RESOURCES)),
        ("restart_policy", Obj(&RESTART_POLICY)),
        ("placement", Obj(&PLACEMENT)),
    ],
);
static UPDATE_CONFIG: Obj = obj(
    What::Path,
    &[
        ("parallelism", IntIn(0, i64::MAX)),
        ("delay", Dur),
        ("failure_action", Enum(&["continue", "rollback", "pause"])),
        ("monitor", Dur),
        ("max_failure_ratio", Number),
        ("order", Enum(&["start-first", "stop-first"])),
    ],
);
static RESOURCES: Obj = obj(
    What::Path,
    &[
        ("limits", Obj(&LIMITS)),
        ("reservations", Obj(&RESERVATIONS)),
    ],
);
static LIMITS: Obj = obj(
    What::Path,
    &[("cpus", Number), ("memory", Str), ("pids", Int)],
);
static RESERVATIONS: Obj = obj(
    What::Path,
    &[
        ("cpus", Number),
        ("memory", Str),
        ("generic_resources", Seq(&Obj(&GENERIC_RESOURCE))),
        ("devices", Seq(&Obj(&DEPLOY_DEVICE))),
    ],
);
static GENERIC_RESOURCE: Obj = obj(
    What::Path,
    &[("discrete_resource_spec", Obj(&DISCRETE_RESOURCE_SPEC))],
);
static DISCRETE_RESOURCE_SPEC: Obj = obj(What::Path, &[("kind", Str), ("value", Number)]);
static DEPLOY_DEVICE: Obj = obj_req(
    What::Path,
    &[
        ("capabilities", STR_LIST),
        ("count", OneOf(&[Int, Enum(&["all"])])),
        ("device_ids", STR_LIST),
        ("driver", Str),
        ("options", LIST_OR_DICT),
    ],
    &["capabilities"],
);
static RESTART_POLICY: Obj = obj(
    What::Path,
    &[
        ("condition", Enum(&["none", "on-failure", "any"])),
        ("delay", Dur),
        ("max_attempts", Int),
        ("window", Dur),
    ],
);
static PLACEMENT: Obj = obj(
    What::Path,
    &[
        ("constraints", STR_SEQ),
        ("preferences", Seq(&Obj(&PREFERENCE))),
        ("max_replicas_per_node", Int),
    ],
);
static PREFERENCE: Obj = obj(What::Path, &[("spread", Str)]);

static NETWORK: Obj = obj(
    What::Named("network"),
    &[
        ("name", Str),
        ("driver", Str),
        ("driver_opts", OPTS),
        ("ipam", Obj(&IPAM)),
        ("external", OneOf(&[Bool, Obj(&EXTERNAL)])),
        ("internal", Bool),
        ("enable_ipv4", Bool),
        ("enable_ipv6", Bool),
        ("attachable", Bool),
        ("labels", LIST_OR_DICT),
    ],
);
static IPAM: Obj = obj(
    What::Path,
    &[
        ("driver", Str),
        ("config", Seq(&Obj(&IPAM_CONFIG))),
        ("options", Map(&Str)),
    ],
);
static IPAM_CONFIG: Obj = obj(
    What::Path,
    &[
        ("subnet", Str),
        ("ip_range", Str),
        ("gateway", Str),
        ("aux_addresses", Map(&Str)),
    ],
);
/// `external: {name: ...}` (deprecated form).
static EXTERNAL: Obj = obj(What::Path, &[("name", Str)]);

static VOLUME: Obj = obj(
    What::Named("volume"),
    &[
        ("name", Str),
        ("driver", Str),
        ("driver_opts", OPTS),
        ("external", OneOf(&[Bool, Obj(&EXTERNAL)])),
        ("labels", LIST_OR_DICT),
    ],
);

static SECRET: Obj = obj(
    What::Named("secret"),
    &[
        ("name", Str),
        ("environment", Str),
        ("file", Str),
        ("external", OneOf(&[Bool, Obj(&EXTERNAL)])),
        ("labels", LIST_OR_DICT),
        ("driver", Str),
        ("driver_opts", OPTS),
        ("template_driver", Str),
    ],
);

static CONFIG: Obj = obj(
    What::Named("config"),
    &[
        ("name", Str),
        ("content", Str),
        ("environment", Str),
        ("file", Str),
        ("external", OneOf(&[Bool, Obj(&EXTERNAL)])),
        ("labels", LIST_OR_DICT),
        ("template_driver", Str),
    ],
);

static MODEL: Obj = obj_req(
    What::Named("model"),
    &[
        ("name", Str),
        ("model", Str),
        ("context_size", Int),
        ("runtime_flags", STR_SEQ),
    ],
    &["model"],
);

// ---------------------------------------------------------------------------------------------
// Value checks
// ---------------------------------------------------------------------------------------------

/// Parses a Go duration (`time.ParseDuration`): an optional sign, then one or more decimal
/// numbers each followed by a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `1m30s`,
/// `2.5s`, `500ms`; `0` alone needs no unit. Negative durations other than zero give `None`
/// (no Compose field accepts them), as do values beyond Go's range (about 292 years).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    const MAX_NS: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    let mut chars = rest.char_indices().peekable();
    while chars.peek().is_some() {
        // Integer part.
        let mut int: u128 = 0;
        let mut digits = 0usize;
        while let Some(&(_, c)) = chars.peek() {
            let Some(d) = c.to_digit(10) else { break };
            int = int.checked_mul(10)?.checked_add(d as u128)?;
            if int > MAX_NS {
                return None;
            }
            digits += 1;
            chars.next();
        }
        // Fraction.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            while let Some(&(_, c)) = chars.peek() {
                let Some(d) = c.to_digit(10) else { break };
                // Digits beyond nanosecond-of-hour precision cannot change the result.
                if scale < 10u128.pow(18) {
                    frac = frac * 10 + d as u128;
                    scale *= 10;
                }
                digits += 1;
                chars.next();
            }
        }
        if digits == 0 {
            return None;
        }
        // Unit.
        let start = chars.peek().map(|&(i, _)| i)?;
        let mut end = rest.len();
        while let Some(&(i, c)) = chars.peek() {
            if c == '.' || c.is_ascii_digit() {
                end = i;
                break;
            }
            chars.next();
        }
        let unit: u128 = match &rest[start..end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total
            .checked_add(int.checked_mul(unit)?)?
            .checked_add(frac * unit / scale)?;
        if total > MAX_NS {
            return None;
        }
    }
    if neg && total != 0 {
        return None;
    }
    let total = u64::try_from(total).ok()?;
    Some(Duration::from_nanos(total))
}

fn restart_ok(s: &str) -> bool {
    match s {
        "no" | "always" | "on-failure" | "unless-stopped" => true,
        _ => s
            .strip_prefix("on-failure:")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// The engine lowercases the protocol before checking it.
fn protocol_ok(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp")
}

fn pull_policy_ok(s: &str) -> bool {
    match s {
        "always" | "never" | "build" | "if_not_present" | "missing" | "refresh" | "daily"
        | "weekly" => true,
        _ => s.strip_prefix("every_").is_some_and(|d| {
            // ([0-9]+[wdhms])+
            let b = d.as_bytes();
            let mut i = 0;
            if b.is_empty() {
                return false;
            }
            while i < b.len() {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i == start || i >= b.len() || !b"wdhms".contains(&b[i]) {
                    return false;
                }
                i += 1;
            }
            true
        }),
    }
}

/// The strings compose-go converts to booleans (`toBoolean`, case-insensitive).
fn bool_str_ok(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "on" | "n" | "no" | "false" | "off"
    )
}

/// A byte size as Docker's `RAMInBytes` reads it: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`,
/// with `-1` (unlimited) accepted too.
fn bytes_str_ok(s: &str) -> bool {
    if s == "-1" {
        return true;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    while i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if i < b.len() && b[i] == b' ' {
        i += 1;
    }
    if i < b.len() && b"kKmMgGtTpP".contains(&b[i]) {
        i += 1;
    }
    if i < b.len() && (b[i] == b'i' || b[i] == b'I') {
        i += 1;
    }
    if i < b.len() && (b[i] == b'b' || b[i] == b'B') {
        i += 1;
    }
    i == b.len()
}

/// `^[a-zA-Z0-9._-]+$`
fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The closest candidate within edit distance 2 (and closer than the word's own length, so
/// that `ab` does not suggest `cd`). Case-only differences win.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    if let Some(c) = candidates.clone().find(|c| c.eq_ignore_ascii_case(word)) {
        return Some(c);
    }
    let lower = word.to_ascii_lowercase();
    let (d, best) = candidates
        .map(|c| (crate::suggest::edit_distance(&lower, c), c))
        .min_by_key(|&(d, _)| d)?;
    (d <= 2 && d < word.chars().count()).then_some(best)
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

struct Validator {
    path: String,
    errors: Vec<SchemaError>,
}

/// How a node's kind is named in "must be ..." messages.
fn describe(shape: &Shape, out: &mut Vec<&'static str>) {
    let s = match shape {
        Any => return,
        Null => "null",
        Str | Enum(_) | Check { .. } => "a string",
        StrOrBool => "a string or boolean",
        StrOrNum => "a string or number",
        Scalar => "a string, number or boolean",
        Bool => "a boolean",
        Int | IntIn(..) => "an integer",
        Number => "a number",
        Bytes => "a byte size (e.g. 512m)",
        Dur => "a duration string (e.g. 10s)",
        Seq(_) | Set(_) => "a sequence",
        Map(_) | Names { .. } | Obj(_) => "a mapping",
        OneOf(alts) => {
            for a in alts.iter() {
                describe(a, out);
            }
            return;
        }
    };
    if !out.contains(&s) {
        out.push(s);
    }
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => "anything".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// Whether `shape` takes a node of this kind (the first check before any value check).
fn accepts(shape: &Shape, node: &Node) -> bool {
    let k = &node.kind;
    match shape {
        Any => true,
        Null => matches!(k, Kind::Null),
        Str | Enum(_) | Check { .. } => matches!(k, Kind::Str(_)),
        StrOrBool => matches!(k, Kind::Str(_) | Kind::Bool(_)),
        StrOrNum => matches!(k, Kind::Str(_) | Kind::Int(_) | Kind::Float(_)),
        Scalar => matches!(
            k,
            Kind::Str(_) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_)
        ),
        Bool => matches!(k, Kind::Bool(_) | Kind::Str(_)),
        Int | IntIn(..) => matches!(k, Kind::Int(_) | Kind::Str(_)),
        Number | Bytes => matches!(k, Kind::Int(_) | Kind::Float(_) | Kind::Str(_)),
        Dur => matches!(k, Kind::Str(_) | Kind::Int(_) | Kind::Float(_)),
        Seq(_) | Set(_) => matches!(k, Kind::Seq(_)),
        Map(_) | Names { .. } | Obj(_) => matches!(k, Kind::Map(_)),
        OneOf(alts) => alts.iter().any(|a| accepts(a, node)),
    }
}

impl Validator {
    fn error(&mut self, span: Span, message: String) {
        self.errors.push(SchemaError {
            path: self.path.clone(),
            message,
            span,
        });
    }

    /// `services.web.ports` in backquotes, or "the file" at the root.
    fn here(&self) -> String {
        if self.path.is_empty() {
            "the top level".into()
        } else {
            format!("`{}`", self.path)
        }
    }

    fn push_key(&mut self, key: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        len
    }

    fn push_index(&mut self, i: usize) -> usize {
        let len = self.path.len();
        let _ = write!(self.path, "[{i}]");
        len
    }

    /// The last key of the current path (a service's or a network's name).
    fn last_key(&self) -> &str {
        match self.path.rfind('.') {
            Some(i) => &self.path[i + 1..],
            None => &self.path,
        }
    }

    fn check(&mut self, shape: &Shape, node: &Node) {
        if node.tag == Some(Tag::Reset) {
            return;
        }
        if !accepts(shape, node) {
            let mut kinds = Vec::new();
            describe(shape, &mut kinds);
            let msg = format!(
                "{} must be {}, not {}",
                self.here(),
                join_or(&kinds),
                node.type_name()
            );
            self.error(node.span, msg);
            return;
        }
        match shape {
            Any | Null | Str | StrOrBool | StrOrNum | Scalar => {}
            Bool => {
                if let Kind::Str(s) = &node.kind {
                    if !bool_str_ok(s) {
                        let msg =
                            format!("{}: invalid boolean `{s}`; use true or false", self.here());
                        self.error(node.span, msg);
                    }
                }
            }
            Int | IntIn(..) if matches!(node.kind, Kind::Str(_)) => {
                if let Kind::Str(s) = &node.kind {
                    if s.parse::<i64>().is_err() {
                        let msg = format!(
                            "{}: invalid integer `{s}`; use a whole number like 3",
                            self.here()
                        );
                        self.error(node.span, msg);
                    }
                }
            }
            IntIn(min, max) => {
                if let Kind::Int(i) = node.kind {
                    if i < *min || i > *max {
                        let msg = if *max == i64::MAX {
                            format!("{}: {i} is too small; use at least {min}", self.here())
                        } else {
                            format!(
                                "{}: {i} is out of range; use a value from {min} to {max}",
                                self.here()
                            )
                        };
                        self.error(node.span, msg);
                    }
                }
            }
            Int => {}
            Number => {
                if let Kind::Str(s) = &node.kind {
                    if s.trim().is_empty() || s.parse::<f64>().is_err() {
                        let msg = format!(
                            "{}: invalid number `{s}`; use a number like 1.5",
                            self.here()
                        );
                        self.error(node.span, msg);
                    }
                }
            }
            Bytes => {
                if let Kind::Str(s) = &node.kind {
                    if !bytes_str_ok(s) {
                        let msg = format!(
                            "{}: invalid byte size `{s}`; use a number with an optional unit like 512m or 2g",
                            self.here()
                        );
                        self.error(node.span, msg);
                    }
                }
            }
            Dur => {
                let text = node.scalar_string().unwrap_or_default();
                let valid = matches!(&node.kind, Kind::Str(s) if parse_duration(s).is_some());
                if !valid {
                    let msg = format!(
                        "{}: invalid duration `{text}`; use a Go duration like 10s, 1m30s or 500ms",
                        self.here()
                    );
                    self.error(node.span, msg);
                }
            }
            Enum(values) => {
                if let Kind::Str(s) = &node.kind {
                    if !values.contains(&s.as_str()) {
                        let list = values
                            .iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let mut msg = format!(
                            "{}: invalid value `{s}`; expected one of {list}",
                            self.here()
                        );
                        if let Some(c) = closest(s, values.iter().copied()) {
                            let _ = write!(msg, " (did you mean `{c}`?)");
                        }
                        self.error(node.span, msg);
                    }
                }
            }
            Check { what, ok, hint } => {
                if let Kind::Str(s) = &node.kind {
                    if !ok(s) {
                        let msg = format!("{}: invalid {what} `{s}`; {hint}", self.here());
                        self.error(node.span, msg);
                    }
                }
            }
            Seq(item) => self.check_seq(item, node, false),
            Set(item) => self.check_seq(item, node, true),
            Map(value) => {
                if let Some(m) = node.as_map() {
                    for (k, e) in m {
                        let saved = self.push_key(k);
                        self.check(value, &e.value);
                        self.path.truncate(saved);
                    }
                }
            }
            Names { what, value } => {
                if let Some(m) = node.as_map() {
                    for (k, e) in m {
                        let saved = self.push_key(k);
                        if !name_ok(k) {
                            let msg = format!(
                                "invalid {what} name `{k}`; names may only contain letters, digits, `.`, `_` and `-`"
                            );
                            self.error(e.key_span, msg);
                        }
                        self.check(value, &e.value);
                        self.path.truncate(saved);
                    }
                }
            }
            Obj(o) => self.check_obj(o, node),
            OneOf(alts) => {
                // The first alternative that takes the node cleanly wins; when none does, the
                // errors reported are those of the first one that takes its kind.
                let before = self.errors.len();
                let mut candidates = alts.iter().filter(|a| accepts(a, node));
                let Some(first) = candidates.next() else {
                    return;
                };
                self.check(first, node);
                if self.errors.len() == before {
                    return;
                }
                let first_errors = self.errors.split_off(before);
                for alt in candidates {
                    self.check(alt, node);
                    if self.errors.len() == before {
                        return;
                    }
                    self.errors.truncate(before);
                }
                self.errors.extend(first_errors);
            }
        }
    }

    fn check_seq(&mut self, item: &Shape, node: &Node, unique: bool) {
        let Some(items) = node.as_seq() else { return };
        for (i, n) in items.iter().enumerate() {
            let saved = self.push_index(i);
            self.check(item, n);
            if unique {
                if let Some(first) = items[..i].iter().position(|p| same(p, n)) {
                    let shown = n
                        .scalar_string()
                        .map(|s| format!("`{s}` "))
                        .unwrap_or_default();
                    let msg = format!(
                        "{}: duplicate item {shown}(same as item [{first}]); remove one of them",
                        self.here()
                    );
                    self.error(n.span, msg);
                }
            }
            self.path.truncate(saved);
        }
    }

    fn check_obj(&mut self, o: &Obj, node: &Node) {
        let Some(m) = node.as_map() else { return };
        for (k, e) in m {
            match o.fields.iter().find(|(name, _)| name == k) {
                Some((_, shape)) => {
                    let saved = self.push_key(k);
                    self.check(shape, &e.value);
                    self.path.truncate(saved);
                }
                None if o.ext && k.starts_with("x-") => {}
                None => self.unknown_key(o, k, e),
            }
        }
        for req in o.required {
            if !m.contains_key(*req) {
                let msg = format!("{} is missing the required key `{req}`", self.here());
                self.error(node.span, msg);
            }
        }
    }

    fn unknown_key(&mut self, o: &Obj, key: &str, e: &Entry) {
        let place = match o.what {
            What::Top => "at the top level".to_string(),
            What::Named(kind) => format!("in {kind} `{}`", self.last_key()),
            What::Path => format!("in {}", self.here()),
        };
        let mut msg = format!("unknown key `{key}` {place}");
        let names = o.fields.iter().map(|(n, _)| *n);
        if let Some(c) = closest(key, names.clone()) {
            let _ = write!(msg, "; did you mean `{c}`?");
        } else if let Some((_, to)) = o.moved.iter().find(|(from, _)| *from == key) {
            let _ = write!(msg, "; did you mean `{to}`?");
        } else if matches!(o.what, What::Top) {
            msg.push_str(
                "; expected one of `services`, `networks`, `volumes`, `configs`, `secrets`, `models`, `include`, `name` or an `x-` extension",
            );
        } else if o.fields.len() <= 12 {
            let list: Vec<String> = names.map(|n| format!("`{n}`")).collect();
            let _ = write!(msg, "; expected one of {}", list.join(", "));
        } else {
            msg.push_str("; see the compose specification for the keys allowed here");
        }
        if o.ext && !matches!(o.what, What::Top) {
            // Mentioned only when nothing closer was suggested.
            if !msg.contains("did you mean") && !msg.contains("expected one of") {
                msg.push_str(" (custom keys must start with `x-`)");
            }
        }
        let saved = self.push_key(key);
        self.error(e.key_span, msg);
        self.path.truncate(saved);
    }
}

/// Equality for `uniqueItems`: same JSON value (spans ignored).
fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Str(x), Kind::Str(y)) => x == y,
        (Kind::Int(x), Kind::Int(y)) => x == y,
        (Kind::Int(x), Kind::Float(y)) | (Kind::Float(y), Kind::Int(x)) => (*x as f64) == *y,
        (Kind::Float(x), Kind::Float(y)) => x == y,
        (Kind::Bool(x), Kind::Bool(y)) => x == y,
        (Kind::Null, Kind::Null) => true,
        (Kind::Seq(x), Kind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, e)| y.get(k).is_some_and(|f| same(&e.value, &f.value)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("500ms", 500),
            ("1h", 3_600_000),
            ("2.5s", 2_500),
            ("0", 0),
            ("-0", 0),
            ("+5s", 5_000),
            (".5s", 500),
            ("5.s", 5_000),
            ("1h2m3s4ms", 3_723_004),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s).map(|d| d.as_millis()), Some(ms), "{s}");
        }
        assert_eq!(parse_duration("1us"), Some(Duration::from_micros(1)));
        assert_eq!(parse_duration("1µs"), Some(Duration::from_micros(1)));
        assert_eq!(parse_duration("3ns"), Some(Duration::from_nanos(3)));
        assert_eq!(
            parse_duration("1.000000001s"),
            Some(Duration::from_nanos(1_000_000_001))
        );
        for bad in [
            "",
            "10",
            "10x",
            "s",
            ".s",
            "1.5",
            "-1s",
            "1 s",
            "1s ",
            "1d",
            "10S",
            "+",
            "-",
            "99999999999999999999h",
            "3000000h",
            "1e3s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn restart_and_pull_policy() {
        for s in [
            "no",
            "always",
            "on-failure",
            "on-failure:3",
            "unless-stopped",
        ] {
            assert!(restart_ok(s), "{s}");
        }
        for s in ["on-failure:", "on-failure:x", "never", "", "No"] {
            assert!(!restart_ok(s), "{s}");
        }
        for s in [
            "always",
            "every_12h",
            "every_1d2h",
            "if_not_present",
            "daily",
        ] {
            assert!(pull_policy_ok(s), "{s}");
        }
        for s in ["every_", "every_h", "every_12", "sometimes", "every_12x"] {
            assert!(!pull_policy_ok(s), "{s}");
        }
    }

    #[test]
    fn byte_sizes() {
        for s in ["512m", "1g", "1.5gb", "64 MiB", "1024", "-1", "2GB"] {
            assert!(bytes_str_ok(s), "{s}");
        }
        for s in ["", "m", "1.5.", "1x", "lots", "1  "] {
            assert!(!bytes_str_ok(s), "{s}");
        }
    }

    #[test]
    fn suggestions() {
        let keys = ["ports", "image", "pid", "tty"];
        assert_eq!(closest("pots", keys.iter().copied()), Some("ports"));
        assert_eq!(closest("Image", keys.iter().copied()), Some("image"));
        assert_eq!(closest("zz", keys.iter().copied()), None);
        assert_eq!(crate::suggest::edit_distance("kitten", "sitting"), 3);
    }
}
