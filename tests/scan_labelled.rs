//! The scanner measured on a labelled corpus of GitOps files (issue 15): tests/fixtures/labelled
//! holds a repository written by benches/labelled/generate.py (Flux HelmReleases, Argo CD
//! Applications, Talos and kubeconfig files, Authelia, Alertmanager, scripts, tfvars, Renovate,
//! SOPS and SealedSecret files, ...) and labels.tsv, which marks each credential `sure` or `weak`
//! and each look-alike `fake`. As a walk, through `--staged` and through `--range`, the scan
//! must find 94% or more of the sure credentials, raise false alarms on 1.5% or less of the
//! look-alikes, and print no planted value in any output format. benches/labelled/run.py
//! prints the same score beside gitleaks and detect-secrets.
//!
//! Each new known-credential format has a folder tests/fixtures/scan/format-*/ with a `repo/`
//! and an `expected.txt` (`path:line:rule:severity`); all of them are scanned in one repository.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use common::{brief, commit_all, findings, git, kustodian, new_repo, CANARIES};

/// The least share of sure credentials found, and the most false alarms per look-alike.
const RECALL: f64 = 0.94;
const FALSE_ALARMS: f64 = 0.015;

struct Label {
    path: String,
    first: usize,
    last: usize,
    label: String,
    kind: String,
    value: String,
}

fn labels() -> Vec<Label> {
    let tsv =
        std::fs::read_to_string(common::repo_root().join("tests/fixtures/labelled/labels.tsv"))
            .unwrap();
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(6, '\t').collect();
            Label {
                path: f[0].to_string(),
                first: f[1].parse().unwrap(),
                last: f[2].parse().unwrap(),
                label: f[3].to_string(),
                kind: f[4].to_string(),
                value: f[5].replace("\\n", "\n").replace("\\\\", "\\"),
            }
        })
        .collect()
}

/// Runs a scan and checks that no output holds a planted value (or "canary").
fn scan(dir: &Path, args: &[&str], planted: &[String]) -> Output {
    let out = kustodian(dir).arg("scan").args(args).output().unwrap();
    common::assert_no_canary(&format!("scan {args:?}"), &out, &CANARIES);
    let all = format!("{}{}", common::text(&out.stdout), common::text(&out.stderr));
    for v in planted {
        assert!(
            !all.contains(v.as_str()),
            "scan {args:?} prints a planted value fragment ({} characters)",
            v.len()
        );
    }
    out
}

/// The values to look for in outputs: each credential of 10 characters or more, and a
/// 12-character middle slice of each one of 24 or more (a value cut by a message).
fn planted(labels: &[Label]) -> Vec<String> {
    let mut v = Vec::new();
    for l in labels
        .iter()
        .filter(|l| l.label == "sure" || l.label == "weak")
    {
        let chars: Vec<char> = l.value.chars().collect();
        if chars.len() >= 10 {
            v.push(l.value.clone());
        }
        if chars.len() >= 24 {
            let mid = chars.len() / 2;
            v.push(chars[mid - 6..mid + 6].iter().collect());
        }
    }
    v
}

/// `(path, line)` of each finding.
fn hits(out: &Output) -> BTreeSet<(String, usize)> {
    findings(out)
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// Whether line `n` of the file opens a block scalar (`key: |`): a finding there is about the
/// block's first line.
fn opens_block(dir: &Path, path: &str, n: usize) -> bool {
    let text = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
    text.lines().nth(n - 1).is_some_and(|l| {
        let l = l.trim_end();
        ["|", "|-", "|+", ">", ">-"].iter().any(|e| l.ends_with(e))
    })
}

struct Score {
    sure: usize,
    found: usize,
    fakes: usize,
    missed: Vec<String>,
    false_alarms: Vec<String>,
}

fn score(labels: &[Label], hits: &BTreeSet<(String, usize)>, dir: &Path) -> Score {
    let at = |path: &str, n: usize| -> Vec<&Label> {
        let here: Vec<&Label> = labels
            .iter()
            .filter(|l| l.path == path && l.first <= n && n <= l.last)
            .collect();
        if here.is_empty() && opens_block(dir, path, n) {
            return labels
                .iter()
                .filter(|l| l.path == path && l.first == n + 1)
                .collect();
        }
        here
    };
    let mut found = BTreeSet::new();
    let mut false_alarms = Vec::new();
    for (path, n) in hits {
        let here = at(path, *n);
        let credentials: Vec<&&Label> = here
            .iter()
            .filter(|l| l.label == "sure" || l.label == "weak")
            .collect();
        for l in &credentials {
            found.insert((l.path.clone(), l.first));
        }
        if credentials.is_empty() && !here.iter().any(|l| l.label == "neutral") {
            let kind = here.first().map_or("no label", |l| l.kind.as_str());
            false_alarms.push(format!("{path}:{n} ({kind})"));
        }
    }
    let sure: Vec<&Label> = labels.iter().filter(|l| l.label == "sure").collect();
    let missed: Vec<String> = sure
        .iter()
        .filter(|l| !found.contains(&(l.path.clone(), l.first)))
        .map(|l| format!("{}:{} ({})", l.path, l.first, l.kind))
        .collect();
    Score {
        sure: sure.len(),
        found: sure.len() - missed.len(),
        fakes: labels.iter().filter(|l| l.label == "fake").count(),
        missed,
        false_alarms,
    }
}

fn assert_targets(what: &str, s: &Score) {
    let recall = s.found as f64 / s.sure as f64;
    let alarms = s.false_alarms.len() as f64 / s.fakes as f64;
    eprintln!(
        "{what}: sure {}/{} ({:.1}%), false alarms {}/{} ({:.1}%)",
        s.found,
        s.sure,
        100.0 * recall,
        s.false_alarms.len(),
        s.fakes,
        100.0 * alarms
    );
    assert!(
        recall >= RECALL,
        "{what}: found {}/{} sure credentials; missed:\n{}",
        s.found,
        s.sure,
        s.missed.join("\n")
    );
    assert!(
        alarms <= FALSE_ALARMS,
        "{what}: {} false alarms on {} look-alikes:\n{}",
        s.false_alarms.len(),
        s.fakes,
        s.false_alarms.join("\n")
    );
}

#[test]
fn labelled_corpus_meets_the_targets_as_a_walk_staged_and_history() {
    let labels = labels();
    let planted = planted(&labels);
    let tmp = common::repo_with(&common::repo_root().join("tests/fixtures/labelled/repo"));
    let dir = tmp.path();
    let walk = scan(dir, &["--format", "json"], &planted);
    assert_eq!(walk.status.code(), Some(1));
    let walk_hits = hits(&walk);
    assert_targets("walk", &score(&labels, &walk_hits, dir));
    git(dir, &["add", "-A"]);
    let staged = scan(dir, &["--staged", "--format", "json"], &planted);
    assert_eq!(
        hits(&staged),
        walk_hits,
        "--staged finds what the walk finds"
    );
    commit_all(dir, "the labelled corpus");
    let history = scan(dir, &["--range", "HEAD", "--format", "json"], &planted);
    assert_eq!(
        hits(&history),
        walk_hits,
        "--range finds what the walk finds"
    );
    for format in ["human", "sarif", "github"] {
        scan(dir, &["--format", format], &planted);
    }
}

#[test]
fn labelled_corpus_labels_point_at_their_values() {
    let labels = labels();
    let root = common::repo_root().join("tests/fixtures/labelled/repo");
    let (mut sure, mut fake) = (0, 0);
    for l in &labels {
        let text = std::fs::read_to_string(root.join(&l.path)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let span = lines[l.first - 1..l.last].join("\n");
        assert!(
            span.contains(&l.value),
            "{}:{}: the {} value is not on its lines",
            l.path,
            l.first,
            l.kind
        );
        sure += usize::from(l.label == "sure");
        fake += usize::from(l.label == "fake");
    }
    // A corpus big enough for the targets to mean something.
    assert!(
        sure >= 100 && fake >= 200,
        "{sure} sure, {fake} look-alikes"
    );
}

#[test]
fn every_new_format_is_found_and_never_printed() {
    let fixtures = common::repo_root().join("tests/fixtures/scan");
    let tmp = new_repo();
    let dir = tmp.path();
    let mut want = Vec::new();
    let mut planted = Vec::new();
    for e in std::fs::read_dir(&fixtures).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("format-") {
            continue;
        }
        let case = fixtures.join(&name);
        std::fs::create_dir_all(dir.join(&name)).unwrap();
        common::copy_tree(&case.join("repo"), &dir.join(&name));
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        assert!(!expected.trim().is_empty(), "{name}: nothing expected");
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            want.push(format!("{name}/{line}"));
            // The longest word of the flagged line is the credential: never printed.
            let (file, n) = line.split_once(':').unwrap();
            let n: usize = n.split(':').next().unwrap().parse().unwrap();
            let text = std::fs::read_to_string(case.join("repo").join(file)).unwrap();
            let word = text.lines().nth(n - 1).unwrap().split_whitespace();
            planted.push(word.max_by_key(|w| w.len()).unwrap().to_string());
        }
    }
    want.sort();
    let walk = scan(dir, &["--format", "json"], &planted);
    assert_eq!(brief(&walk), want, "walk");
    git(dir, &["add", "-A"]);
    assert_eq!(
        brief(&scan(dir, &["--staged", "--format", "json"], &planted)),
        want,
        "--staged"
    );
    commit_all(dir, "one credential of each new format");
    assert_eq!(
        brief(&scan(
            dir,
            &["--range", "HEAD", "--format", "json"],
            &planted
        )),
        want,
        "--range"
    );
    for format in ["human", "sarif", "github"] {
        scan(dir, &["--format", format], &planted);
    }
}
