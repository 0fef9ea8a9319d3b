//! Why a project cannot be planned. Every message is lowercase and says what to do next,
//! because the CLI prints it as is.

/// An error found while translating a project or planning against the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("service `{service}` sets `container_name` but runs {replicas} replicas; container names must be unique, so remove `container_name` or set `deploy.replicas: 1`")]
    ContainerNameWithReplicas { service: String, replicas: u64 },

    #[error("service `{service}`: `{key}` is {value:?}, which is not {expected}; {help}")]
    InvalidValue {
        service: String,
        key: String,
        value: String,
        expected: String,
        help: String,
    },

    #[error("service `{service}`: `{first}` and `{second}` disagree ({first_value} vs {second_value}); set only one of them")]
    Conflict {
        service: String,
        first: String,
        second: String,
        first_value: String,
        second_value: String,
    },

    #[error(
        "service `{service}` has neither `image` nor `build`; add `image: NAME` or `build: ./dir`"
    )]
    NoImage { service: String },

    #[error("service `{service}` uses {kind} `{name}`, which is not declared in the top-level `{kind}s` section; declare it there")]
    UnknownResource {
        service: String,
        kind: &'static str,
        name: String,
    },

    #[error("service `{service}`: mount type `{kind}` at {target} is not supported; use a bind, volume or tmpfs mount")]
    UnsupportedMount {
        service: String,
        kind: String,
        target: String,
    },

    #[error("service `{service}`: the bind mount at {target} has no `source`; add the host path as `source`")]
    BindWithoutSource { service: String, target: String },

    #[error("unknown service `{0}`; check the name against `berth config`")]
    UnknownService(String),

    #[error(
        "services depend on each other in a cycle ({0}); remove one of these `depends_on` entries"
    )]
    Cycle(String),

    #[error("external {kind} `{name}` does not exist; create it with `docker {kind} create {name}` or drop `external: true`")]
    MissingExternal { kind: &'static str, name: String },

    #[error("cannot write the systemd unit: {0}")]
    Unit(String),
}
