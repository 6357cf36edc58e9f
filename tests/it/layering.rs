//! The house reads storage → domain → http: each top-level module of the server may use only
//! the modules listed for it below, so there are no import circles. A new dependency is a
//! decision: add it here and to the listing in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module → the modules it may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("telemetry", &[]),
    ("metrics", &[]),
    ("limits", &["metrics"]),
    ("storage", &[]),
    ("photos", &[]),
    ("ai", &["config", "domain"]),
    ("views", &["storage"]),
    ("signin", &["config"]),
    ("sfu", &["config"]),
    ("auth", &["metrics", "storage"]),
    ("domain", &["auth", "photos", "storage", "views"]),
    (
        "realtime",
        &["auth", "domain", "metrics", "storage", "views"],
    ),
    (
        "live",
        &["config", "domain", "limits", "metrics", "storage", "views"],
    ),
    ("library", &["config", "domain", "storage", "views"]),
    ("cluster", &["domain", "metrics"]),
    (
        "state",
        &[
            "auth", "config", "domain", "limits", "live", "metrics", "photos", "realtime", "sfu",
            "signin", "storage",
        ],
    ),
    (
        "http",
        &[
            "auth", "domain", "limits", "live", "metrics", "photos", "realtime", "sfu", "signin",
            "state", "storage", "views",
        ],
    ),
    (
        "app",
        &[
            "ai", "auth", "cluster", "config", "domain", "http", "library", "limits", "live",
            "metrics", "photos", "realtime", "sfu", "signin", "state", "storage", "views",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules each module's code (not its comments) names with `crate::`.
fn used() -> BTreeMap<String, BTreeSet<String>> {
    let src = crate::helpers::manifest_dir().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let uses = out.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn modules_depend_only_downwards() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let used = used();
    let mut wrong = Vec::new();
    for (module, uses) in &used {
        let Some(ok) = allowed.get(module.as_str()) else {
            wrong.push(format!("{module} is not in the layering table"));
            continue;
        };
        for u in uses {
            if !ok.contains(&u.as_str()) {
                wrong.push(format!("{module} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    // The table itself has no circles (so following it can never lead back).
    fn reaches(from: &str, to: &str, allowed: &BTreeMap<&str, &[&str]>) -> bool {
        allowed
            .get(from)
            .is_some_and(|next| next.iter().any(|n| *n == to || reaches(n, to, allowed)))
    }
    for (m, _) in ALLOWED {
        assert!(!reaches(m, m, &allowed), "{m} can reach itself");
    }
}
