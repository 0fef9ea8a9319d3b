//! The seeds' build checklist (../shared/seeds/003) applied to what a build actually did:
//! what the context sent, which dependency installs ran again, which have no cache mount,
//! and whether the final image keeps a compiler. Each piece names the Dockerfile line.
//! (`berth lint` checks Dockerfiles statically; this reads a real build.)

use berth_compose::dockerfile::{Dockerfile, Instruction};
use berth_engine::{BuildSpec, BuiltImage};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Advice {
    /// A stable name: `context-sends`, `install-after-source`, `install-without-cache`,
    /// `compiler-in-final-image`.
    pub rule: &'static str,
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Dependency installers: what the step's command contains, and where its cache lives.
const INSTALLERS: &[(&str, &str)] = &[
    ("pip install", "/root/.cache/pip"),
    ("pip3 install", "/root/.cache/pip"),
    ("poetry install", "/root/.cache/pypoetry"),
    ("npm ci", "/root/.npm"),
    ("npm install", "/root/.npm"),
    ("yarn install", "/usr/local/share/.cache/yarn"),
    ("pnpm install", "/root/.local/share/pnpm/store"),
    ("cargo build", "/usr/local/cargo/registry"),
    ("cargo fetch", "/usr/local/cargo/registry"),
    ("go mod download", "/go/pkg/mod"),
    ("go build", "/root/.cache/go-build"),
    ("bundle install", "/usr/local/bundle/cache"),
    ("composer install", "/root/.composer/cache"),
    ("apt-get install", "/var/cache/apt"),
    ("apk add", "/var/cache/apk"),
];

/// Packages and base images that mean a compiler is in the image.
const COMPILER_PACKAGES: &[&str] = &[
    "build-essential",
    "gcc",
    "g++",
    "clang",
    "rustc",
    "golang",
    "musl-dev",
    "cmake",
];
const COMPILER_IMAGES: &[&str] = &["rust", "golang", "gcc", "maven", "gradle"];

pub(crate) fn advise(
    dockerfile: &Dockerfile,
    spec: &BuildSpec,
    built: &BuiltImage,
    rebuild: bool,
) -> Vec<Advice> {
    let file = dockerfile.path.display().to_string();
    let at = |rule, ins: &Instruction, message: String| Advice {
        rule,
        file: file.clone(),
        line: ins.line,
        message,
    };
    let last = dockerfile.final_stage(spec.target.as_deref());
    let mut out = Vec::new();

    // The context sent what an image never needs.
    if !built.context.heavy.is_empty() {
        let whole_copy = dockerfile
            .instructions
            .iter()
            .find(|i| copies_whole_context(i))
            .or_else(|| dockerfile.instructions.first());
        if let Some(ins) = whole_copy {
            out.push(at(
                "context-sends",
                ins,
                format!(
                    "the build context sent {}; add {} to .dockerignore so they are neither sent nor copied",
                    built.context.heavy.join(", "),
                    built
                        .context
                        .heavy
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }

    for stage in 0..=last {
        let instructions = dockerfile.stage_instructions(stage);
        for (index, ins) in instructions.iter().enumerate() {
            let Some((installer, cache)) = installer(ins) else {
                continue;
            };
            // An install that ran again on a rebuild, behind a COPY of the whole source.
            let ran = built
                .steps
                .iter()
                .any(|s| !s.cached && step_is(&s.name, ins));
            if rebuild && ran {
                if let Some(copy) = instructions[..index]
                    .iter()
                    .find(|i| copies_whole_context(i))
                {
                    out.push(at(
                        "install-after-source",
                        copy,
                        format!(
                            "this COPY of the whole source comes before `{installer}` on line {}, so a change to any file re-ran the install; copy only the dependency files first, install, then copy the source",
                            ins.line
                        ),
                    ));
                }
            }
            if !ins.mount_types().iter().any(|m| m == "cache") {
                out.push(at(
                    "install-without-cache",
                    ins,
                    format!(
                        "`{installer}` has no cache mount, so every run downloads again; write `RUN --mount=type=cache,target={cache} …`"
                    ),
                ));
            }
        }
    }

    // A compiler in the image that runs: the final stage's base chain or its installs.
    let mut stage = last;
    loop {
        let instructions = dockerfile.stage_instructions(stage);
        let from = &instructions[0];
        let base = &dockerfile.stages[stage].base;
        let base_name = base.rsplit('/').next().unwrap_or(base);
        let base_name = base_name.split([':', '@']).next().unwrap_or(base_name);
        if !dockerfile.stages[stage].base_is_stage && COMPILER_IMAGES.contains(&base_name) {
            out.push(at(
                "compiler-in-final-image",
                from,
                format!("the final image is built on {base}, which carries a compiler; build in a stage of its own and COPY --from it only what runs"),
            ));
        }
        for ins in instructions.iter().filter(|i| i.keyword == "RUN") {
            let words: Vec<&str> = ins.args.split_whitespace().collect();
            if words.iter().any(|w| *w == "install" || *w == "add") {
                if let Some(package) = COMPILER_PACKAGES.iter().find(|p| words.contains(p)) {
                    out.push(at(
                        "compiler-in-final-image",
                        ins,
                        format!("the final image keeps {package}, installed here; install it in a build stage and COPY --from that stage only what runs"),
                    ));
                }
            }
        }
        if !dockerfile.stages[stage].base_is_stage {
            break;
        }
        let base = dockerfile.stages[stage].base.to_ascii_lowercase();
        match dockerfile.stages[..stage]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(base.as_str()))
        {
            Some(parent) => stage = parent,
            None => break,
        }
    }
    out
}

/// The installer a RUN step runs, and its cache directory.
fn installer(ins: &Instruction) -> Option<(&'static str, &'static str)> {
    if ins.keyword != "RUN" {
        return None;
    }
    let text = ins.args.split_whitespace().collect::<Vec<_>>().join(" ");
    INSTALLERS
        .iter()
        .find(|(needle, _)| text.contains(needle))
        .copied()
}

/// `COPY . .`, `COPY ./ /app`, `ADD . /src`: the whole context.
fn copies_whole_context(ins: &Instruction) -> bool {
    if !(ins.keyword == "COPY" || ins.keyword == "ADD") || ins.flag("from").is_some() {
        return false;
    }
    let words: Vec<&str> = ins.args.split_whitespace().collect();
    words.len() >= 2
        && words[..words.len() - 1]
            .iter()
            .any(|w| *w == "." || *w == "./")
}

/// Whether the builder's step name is this instruction (BuildKit writes `[stage 2/3] RUN
/// …`, the classic builder `Step 2/3 : RUN …`; both keep the instruction's text).
fn step_is(name: &str, ins: &Instruction) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = squash(name);
    let args = squash(&ins.args);
    let head: String = args.chars().take(60).collect();
    name.contains(&ins.keyword) && name.contains(&head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::{Builder, ContextSummary, StepRecord};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    fn built(steps: &[(&str, bool)], heavy: &[&str]) -> BuiltImage {
        BuiltImage {
            id: "sha256:x".into(),
            size_bytes: 1,
            layers: vec![],
            steps: steps
                .iter()
                .map(|(name, cached)| StepRecord {
                    name: name.to_string(),
                    cached: *cached,
                    elapsed: Duration::from_secs(1),
                })
                .collect(),
            context: ContextSummary {
                heavy: heavy.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            builder: Builder::BuildKit,
        }
    }

    fn rules(
        text: &str,
        steps: &[(&str, bool)],
        heavy: &[&str],
        rebuild: bool,
    ) -> Vec<(&'static str, usize)> {
        let d = Dockerfile::parse(Path::new("Dockerfile"), text, &BTreeMap::new()).unwrap();
        advise(&d, &BuildSpec::default(), &built(steps, heavy), rebuild)
            .into_iter()
            .map(|a| (a.rule, a.line))
            .collect()
    }

    #[test]
    fn the_source_copied_before_the_install_is_named_on_a_rebuild() {
        let text =
            "FROM python:3.12\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n";
        let steps = [
            ("[3/4] COPY . .", false),
            ("[4/4] RUN pip install -r requirements.txt", false),
        ];
        assert_eq!(
            rules(text, &steps, &[], true),
            vec![("install-after-source", 3), ("install-without-cache", 4)]
        );
        // A first build re-ran nothing.
        assert_eq!(
            rules(text, &steps, &[], false),
            vec![("install-without-cache", 4)]
        );
    }

    #[test]
    fn a_cached_install_with_a_cache_mount_is_fine() {
        let text = "FROM python:3.12 AS deps\nCOPY requirements.txt .\nRUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\nFROM deps\nCOPY . .\n";
        let steps = [("[deps 2/2] RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt", true)];
        assert_eq!(rules(text, &steps, &[], true), vec![]);
    }

    #[test]
    fn heavy_context_and_compilers_are_named() {
        let text = "FROM rust:1.80\nRUN apt-get install -y --no-install-recommends gcc\nCOPY . .\n";
        assert_eq!(
            rules(text, &[], &[".git", "target"], false),
            vec![
                ("context-sends", 3),
                ("install-without-cache", 2),
                ("compiler-in-final-image", 1),
                ("compiler-in-final-image", 2)
            ]
        );
        // Built in a stage of its own, the final image has no compiler.
        let staged = "FROM rust:1.80 AS build\nRUN --mount=type=cache,target=/usr/local/cargo/registry cargo build\nFROM debian:12\nCOPY --from=build /app /app\n";
        assert_eq!(rules(staged, &[], &[], false), vec![]);
    }
}
