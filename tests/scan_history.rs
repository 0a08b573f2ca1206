//! End-to-end tests of `kustodian scan --since REV` and `--range A..B` in real git repositories:
//! every blob the commits of a range add is scanned, a value is reported once, at the commit that
//! added it (even when a later commit deletes it), and no output holds a value.

mod common;

use std::path::Path;
use std::process::Output;

use common::{findings, kustodian, text, CANARIES};

const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: canary-history-one\n";
const CLEAN: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  mode: fast\n";

/// A repository with one clean commit.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: common::new_repo(),
        };
        repo.commit_with("app.yaml", CLEAN, "base");
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git; returns its trimmed stdout.
    fn git(&self, args: &[&str]) -> String {
        common::git(self.path(), args)
    }

    fn write(&self, path: &str, body: &str) {
        common::write(self.path(), path, body);
    }

    /// Commits everything; returns the commit id.
    fn commit(&self, message: &str) -> String {
        common::commit_all(self.path(), message)
    }

    /// Writes one file and commits everything; returns the commit id.
    fn commit_with(&self, path: &str, body: &str, message: &str) -> String {
        self.write(path, body);
        self.commit(message)
    }

    /// `kustodian scan ARGS --format json`, checked for canaries in every output format.
    fn scan(&self, args: &[&str]) -> Output {
        for format in ["human", "sarif", "github", "json"] {
            common::assert_no_canary(format, &self.run(args, format), &CANARIES);
        }
        self.run(args, "json")
    }

    fn run(&self, args: &[&str], format: &str) -> Output {
        kustodian(self.path())
            .arg("scan")
            .args(args)
            .args(["--format", format])
            .output()
            .unwrap()
    }
}

/// `(path, key, commit id)` of each finding of a JSON report.
fn found(out: &Output) -> Vec<(String, String, String)> {
    findings(out)
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["key"].as_str().unwrap().to_string(),
                f["commit"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn row(path: &str, key: &str, commit: &str) -> (String, String, String) {
    (path.to_string(), key.to_string(), commit.to_string())
}

#[test]
fn a_secret_added_then_deleted_is_found_at_the_commit_that_added_it() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let added = repo.commit_with("db.yaml", SECRET, "add db");
    repo.git(&["rm", "-q", "db.yaml"]);
    repo.commit("oops, remove it");

    // The working tree is clean now ...
    assert_eq!(repo.run(&[], "json").status.code(), Some(0));
    // ... but the history is not.
    let out = repo.scan(&["--since", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(found(&out), vec![row("db.yaml", "password", &added)]);

    let human = repo.run(&["--since", &base], "human");
    let shown = text(&human.stdout);
    assert!(
        shown.contains(&format!(
            "added in commit {added} by Ann Author <ann@example.com>"
        )),
        "{shown}"
    );
    assert!(shown.contains("in 2 commits scanned"), "{shown}");

    let sarif: serde_json::Value =
        serde_json::from_slice(&repo.run(&["--since", &base], "sarif").stdout).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["properties"]["commit"], added.as_str());
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "db.yaml"
    );

    let github = text(&repo.run(&["--since", &base], "github").stdout);
    assert!(
        github.starts_with("::error file=db.yaml,line=6,"),
        "{github}"
    );
    assert!(github.contains(&added), "{github}");
}

#[test]
fn a_range_holds_only_its_own_commits() {
    let repo = Repo::new();
    let before = repo.commit_with("old.yaml", SECRET, "an old leak");
    let a = repo.commit_with("app.yaml", &CLEAN.replace("fast", "slow"), "clean change");
    let new = repo.commit_with(
        "new.yaml",
        &SECRET.replace("history-one", "history-two"),
        "a new leak",
    );
    let b = repo.commit_with("app.yaml", CLEAN, "another clean change");

    let out = repo.scan(&["--range", &format!("{a}..{b}")]);
    assert_eq!(found(&out), vec![row("new.yaml", "password", &new)]);
    // One revision: its whole history.
    let out = repo.scan(&["--range", &b]);
    assert_eq!(
        found(&out),
        vec![
            row("new.yaml", "password", &new),
            row("old.yaml", "password", &before)
        ]
    );
    // Nothing in range: clean.
    let out = repo.scan(&["--range", &format!("{new}..{b}")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(found(&out).is_empty());
}

#[test]
fn later_edits_do_not_report_old_values_again_but_new_values_are_reported() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let added = repo.commit_with("db.yaml", SECRET, "leak");
    // Another line changes, the value moves down a line: not this commit's doing.
    repo.commit_with(
        "db.yaml",
        &SECRET.replace("  name: db\n", "  name: db\n  labels: {team: a}\n"),
        "label",
    );
    // A rename carries the value along: still not new.
    repo.git(&["mv", "db.yaml", "database.yaml"]);
    repo.commit("rename");
    // A new value on the same key is new.
    let rotated = repo.commit_with(
        "database.yaml",
        &SECRET
            .replace("  name: db\n", "  name: db\n  labels: {team: a}\n")
            .replace("history-one", "history-rotated"),
        "rotate",
    );
    let out = repo.scan(&["--since", &base]);
    assert_eq!(
        found(&out),
        vec![
            row("database.yaml", "password", &rotated),
            row("db.yaml", "password", &added)
        ]
    );
}

#[test]
fn merges_report_only_what_no_parent_had() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let on_branch = repo.commit_with("feature.yaml", SECRET, "feature leak");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_with("main.yaml", CLEAN, "main work");
    // A merge that also adds a value of its own (an "evil merge").
    repo.git(&["merge", "-q", "--no-ff", "--no-commit", "feature"]);
    repo.write(
        "merge.yaml",
        &SECRET.replace("history-one", "history-merge"),
    );
    let merge = repo.commit("merge feature");

    let out = repo.scan(&["--since", &base]);
    assert_eq!(
        found(&out),
        vec![
            row("feature.yaml", "password", &on_branch),
            row("merge.yaml", "password", &merge)
        ]
    );
    // A...B: both sides since the merge base (here, feature's tip: main's own commits).
    let out = repo.scan(&["--range", "main...feature"]);
    assert_eq!(found(&out), vec![row("merge.yaml", "password", &merge)]);
    let out = repo.scan(&["--range", &format!("{base}...feature")]);
    assert_eq!(
        found(&out),
        vec![row("feature.yaml", "password", &on_branch)]
    );
}

#[test]
fn env_files_are_judged_through_the_kustomization_of_their_commit() {
    let repo = Repo::new();
    repo.write(
        "apps/web/kustomization.yaml",
        "secretGenerator:\n- name: web\n  envs:\n  - web.env\n",
    );
    repo.write("apps/web/web.env", "PASSWORD=<path:kv/data/web#password>\n");
    let base = repo.commit("references only");
    let leak = repo.commit_with("apps/web/web.env", "PASSWORD=canary-env-value\n", "leak");
    repo.commit_with(
        "apps/web/web.env",
        "PASSWORD=<path:kv/data/web#password>\n",
        "fix",
    );
    let out = repo.scan(&["--since", &base]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        found(&out),
        vec![row("apps/web/web.env", "PASSWORD", &leak)]
    );
}

#[test]
fn paths_limit_a_history_scan() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let a = repo.commit_with("apps/a/db.yaml", SECRET, "a");
    repo.commit_with(
        "apps/b/db.yaml",
        &SECRET.replace("history-one", "history-b"),
        "b",
    );
    let out = repo.scan(&["--since", &base, "apps/a"]);
    assert_eq!(found(&out), vec![row("apps/a/db.yaml", "password", &a)]);
}

#[test]
fn an_unknown_revision_is_an_error_with_help() {
    let repo = Repo::new();
    let out = repo.run(&["--since", "no-such-branch"], "human");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("no-such-branch..HEAD"), "{err}");
    assert!(err.contains("fetch-depth: 0"), "{err}");
    let out = repo.run(&["--staged", "--since", "HEAD"], "human");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_baseline_from_the_working_tree_silences_the_same_values_in_history() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.commit_with("db.yaml", SECRET, "known leak");
    let baseline = repo.path().join("baseline.json");
    let out = repo.run(&["--write-baseline", baseline.to_str().unwrap()], "json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = repo.scan(&["--since", &base, "--baseline", baseline.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_shallow_clone_says_where_its_history_ends() {
    let repo = Repo::new();
    repo.commit_with("db.yaml", SECRET, "leak");
    repo.commit_with("app.yaml", &CLEAN.replace("fast", "slow"), "clean");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    common::git(
        clone.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    );
    let shallow = clone.path().join("shallow");
    let out = kustodian(&shallow)
        .args(["scan", "--range", "HEAD", "--format", "json"])
        .output()
        .unwrap();
    common::assert_no_canary("shallow", &out, &CANARIES);
    let head = common::git(&shallow, &["rev-parse", "HEAD"]);
    // The leak is in the boundary commit's tree, so it is found, and the note says why it is
    // attributed to that commit.
    assert_eq!(found(&out), vec![row("db.yaml", "password", &head)]);
    let err = text(&out.stderr);
    assert!(
        err.contains("the shallow clone ends here") && err.contains(&head),
        "{err}"
    );
}

/// A fixture file of tests/fixtures/<behaviour>/.
fn fixture(behaviour: &str, name: &str) -> String {
    std::fs::read_to_string(
        common::repo_root()
            .join("tests/fixtures")
            .join(behaviour)
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_kustomization_from_a_merged_branch_or_before_the_range_judges_later_env_and_patch_files() {
    const CASE: &str = "history-kustomization-outside-the-range";
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    for name in ["kustomization.yaml", "web.env", "api-patch.yaml"] {
        repo.write(&format!("apps/web/{name}"), &fixture(CASE, name));
    }
    repo.commit("web app, references only");
    repo.git(&["checkout", "-q", "main"]);
    repo.commit_with("main.yaml", CLEAN, "main work");
    repo.git(&["merge", "-q", "--no-ff", "feature"]);
    let merge = repo.git(&["rev-parse", "HEAD"]);
    let env = repo.commit_with("apps/web/web.env", &fixture(CASE, "web-leak.env"), "env");
    let patch = repo.commit_with(
        "apps/web/api-patch.yaml",
        &fixture(CASE, "api-patch-leak.yaml"),
        "patch",
    );
    let want = vec![
        row("apps/web/api-patch.yaml", "token", &patch),
        row("apps/web/web.env", "PASSWORD", &env),
    ];
    // The branch's commit is in the range; the merge's second parent; the range's start.
    for range in [
        format!("{base}..HEAD"),
        "feature..HEAD".into(),
        format!("{merge}..HEAD"),
    ] {
        let out = repo.scan(&["--range", &range]);
        assert_eq!(out.status.code(), Some(1), "{range}: {}", text(&out.stderr));
        let mut got = found(&out);
        for f in &mut got {
            f.1 = f.1.rsplit('/').next().unwrap().to_string();
        }
        assert_eq!(got, want, "{range}");
    }
}

/// A `git fast-import` stream: `commits` commits on main, each writing the files it is given.
fn fast_import(repo: &Repo, commits: &[Vec<(String, String)>]) -> Vec<String> {
    use std::io::Write;
    let mut stream = Vec::new();
    for (i, files) in commits.iter().enumerate() {
        let msg = format!("change {i}");
        write!(
            stream,
            "commit refs/heads/main\nmark :{}\ncommitter Ann Author <ann@example.com> {} +0000\ndata {}\n{msg}\n",
            i + 1,
            1_700_000_000 + i,
            msg.len()
        )
        .unwrap();
        if i == 0 {
            stream.extend_from_slice(b"from refs/heads/main^0\n");
        }
        for (path, body) in files {
            write!(
                stream,
                "M 100644 inline {path}\ndata {}\n{body}\n",
                body.len()
            )
            .unwrap();
        }
        stream.push(b'\n');
    }
    let mut child = common::git_cmd(repo.path())
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    repo.git(&["reset", "-q", "--hard", "main"]);
    let ids = repo.git(&["rev-list", "--reverse", "main"]);
    ids.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn a_long_history_reports_each_value_once_at_the_commit_that_added_it() {
    // More changed blobs than the scanner reads in one batch, the same blobs at many paths and
    // commits, a value that comes back after it was removed.
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let config = |i: usize| CLEAN.replace("fast", &format!("mode-{}", i % 50));
    let leak = |v: &str| SECRET.replace("history-one", v);
    let mut commits: Vec<Vec<(String, String)>> = (0..2600)
        .map(|i| {
            vec![
                (format!("apps/cm{}.yaml", i % 300), config(i)),
                (
                    format!("scripts/run{}.sh", i % 200),
                    format!("echo {}\n", i % 70),
                ),
            ]
        })
        .collect();
    commits[3].push(("db.yaml".into(), leak("history-early")));
    commits[4].push(("db.yaml".into(), CLEAN.into()));
    // Back again: the same value at the same path is not new.
    commits[2500].push(("db.yaml".into(), leak("history-early")));
    // The same blob at another path is another finding.
    commits[2501].push(("copy/db.yaml".into(), leak("history-early")));
    commits[2599].push(("late.yaml".into(), leak("history-late")));
    let ids = fast_import(&repo, &commits);
    let out = repo.scan(&["--since", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        found(&out),
        vec![
            row("copy/db.yaml", "password", &ids[2501]),
            row("db.yaml", "password", &ids[3]),
            row("late.yaml", "password", &ids[2599]),
        ]
    );
    let human = text(&repo.run(&["--since", &base], "human").stdout);
    assert!(human.contains("in 2600 commits scanned"), "{human}");
}

#[test]
fn without_git_on_path_libgit2_lists_and_reads_the_history_alike() {
    let repo = Repo::new();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write(
        "apps/web/kustomization.yaml",
        "secretGenerator:\n- name: web\n  envs:\n  - web.env\n",
    );
    repo.write("apps/web/web.env", "PASSWORD=canary-env-no-git\n");
    repo.commit("env leak");
    repo.commit_with("db.yaml", SECRET, "leak");
    repo.git(&["mv", "db.yaml", "database.yaml"]);
    repo.commit("rename");
    let with_git = repo.scan(&["--since", &base]);
    assert_eq!(found(&with_git).len(), 2, "{}", text(&with_git.stdout));
    let without = kustodian(repo.path())
        .env("PATH", "/nonexistent")
        .args(["scan", "--since", &base, "--format", "json"])
        .output()
        .unwrap();
    common::assert_no_canary("no git", &without, &CANARIES);
    assert_eq!(found(&without), found(&with_git));
}
