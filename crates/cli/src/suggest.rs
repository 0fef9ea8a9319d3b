//! "Did you mean" for a mistyped command: only commands that change nothing are ever
//! suggested. clap suggests the closest name of any command, so `berth status` got `start`,
//! and a user who accepts a suggestion without reading it must never change the server.

/// Commands that only look, by the command they belong to (`None`: the top level).
const READ_ONLY: &[(Option<&str>, &[&str])] = &[
    (Some("proxy"), &["status"]),
    (None, &["ps", "logs", "config", "releases", "version"]),
];

/// Words people type for a read-only command that is named differently here.
const ALIASES: &[(&str, &[&str])] = &[
    ("status", &["ps", "proxy status"]),
    ("ls", &["ps"]),
    ("list", &["ps"]),
    ("top", &["ps"]),
    ("history", &["releases"]),
    ("info", &["version"]),
];

/// clap's report of an unknown command, with its tip replaced by one naming read-only commands
/// only (or none). `args` are the command-line arguments after the program name.
pub fn unknown_command(e: &clap::Error, args: impl Iterator<Item = String>) -> String {
    let invalid = match e.get(clap::error::ContextKind::InvalidSubcommand) {
        Some(clap::error::ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let parent = parent_of(args, &invalid);
    let suggestions = suggestions(parent.as_deref(), &invalid);
    let rendered = e.render().to_string();
    let mut out = String::new();
    let mut lines = rendered
        .lines()
        .filter(|l| !l.trim_start().starts_with("tip:"));
    if let Some(first) = lines.next() {
        out.push_str(first);
        out.push('\n');
    }
    if !suggestions.is_empty() {
        let quoted: Vec<String> = suggestions.iter().map(|s| format!("'{s}'")).collect();
        out.push_str(&format!(
            "\n  tip: a command that changes nothing exists: {}\n",
            quoted.join(" or ")
        ));
    }
    let mut blank = false;
    for l in lines {
        // clap's removed tip leaves two blank lines in a row.
        if l.trim().is_empty() && blank {
            continue;
        }
        blank = l.trim().is_empty();
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The command the unknown word was given to: `proxy` when it came after `proxy`.
fn parent_of(args: impl Iterator<Item = String>, invalid: &str) -> Option<String> {
    let mut parent = None;
    for a in args {
        if a == invalid {
            break;
        }
        if a == "proxy" || (parent.is_some() && a == "route") {
            parent = Some(a);
        }
    }
    parent
}

/// Read-only commands close to `word`, spelt as the user would type them after `berth`.
fn suggestions(parent: Option<&str>, word: &str) -> Vec<String> {
    let prefix = parent.map(|p| format!("{p} ")).unwrap_or_default();
    if parent.is_none() {
        if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == word) {
            return to.iter().map(|s| s.to_string()).collect();
        }
    }
    let Some((_, names)) = READ_ONLY.iter().find(|(p, _)| *p == parent) else {
        // `proxy route` has only commands that change routes.
        return vec![];
    };
    let mut close: Vec<(usize, &str)> = names
        .iter()
        .map(|n| (distance(word, n), *n))
        .filter(|(d, n)| *d <= 2 && *d * 2 < n.chars().count())
        .collect();
    close.sort();
    close
        .into_iter()
        .map(|(_, n)| format!("{prefix}{n}"))
        .collect()
}

/// Levenshtein distance, with a swap of two neighbouring letters counted once (`stauts`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_commands_are_close() {
        assert_eq!(suggestions(None, "status"), ["ps", "proxy status"]);
        assert_eq!(suggestions(None, "log"), ["logs"]);
        assert_eq!(suggestions(None, "stp"), Vec::<String>::new());
        assert_eq!(suggestions(Some("proxy"), "stauts"), ["proxy status"]);
        assert_eq!(suggestions(Some("proxy"), "rout"), Vec::<String>::new());
        assert_eq!(suggestions(Some("route"), "ad"), Vec::<String>::new());
    }
}
