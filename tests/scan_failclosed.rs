//! The scanner never fails open: a file that may hold a Secret and cannot be read in full
//! blocks (`unreadable-manifest`), the documents that were read are judged as usual, escapes
//! and repeated keys cannot hide a Secret, an allow marker counts only as a real comment, and
//! a huge Secret neither passes nor exhausts memory.
//!
//! Each fixture folder under tests/fixtures/scan/ is copied into a fresh git repository and
//! scanned as a walk and with `--staged` (which must agree), in every format; fixture secrets
//! all contain `canary`, which no output may hold.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use common::{findings, git, kustodian, new_repo, repo_root, text, CANARIES};

/// A fresh repository holding the files of `tests/fixtures/scan/NAME/repo`.
fn fixture_repo(name: &str) -> tempfile::TempDir {
    let tmp = new_repo();
    let src = repo_root()
        .join("tests/fixtures/scan")
        .join(name)
        .join("repo");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    tmp
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    kustodian(dir).arg("scan").args(args).output().unwrap()
}

/// One finding as (path, line, rule).
type Brief = (String, u64, String);

fn brief(out: &Output) -> BTreeSet<Brief> {
    findings(out)
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn b(path: &str, line: u64, rule: &str) -> Brief {
    (path.to_string(), line, rule.to_string())
}

/// Scans `dir` as a walk and staged (same findings), in every format (exit 1, no canary);
/// returns the findings.
fn scan_every_way(dir: &Path) -> BTreeSet<Brief> {
    let walk = scan(dir, &["--format", "json"]);
    git(dir, &["add", "-A"]);
    let staged = scan(dir, &["--staged", "--format", "json"]);
    for (what, out) in [("walk", &walk), ("--staged", &staged)] {
        common::assert_no_canary(what, out, &CANARIES);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
    }
    assert_eq!(brief(&walk), brief(&staged));
    for format in ["human", "sarif", "github"] {
        let out = scan(dir, &["--format", format]);
        common::assert_no_canary(format, &out, &CANARIES);
        assert_eq!(out.status.code(), Some(1), "{format}");
    }
    brief(&walk)
}

#[test]
fn escaped_kinds_and_keys_are_decoded_before_judging() {
    let tmp = fixture_repo("escaped-kind");
    let found = scan_every_way(tmp.path());
    for f in [
        b("escaped.yaml", 6, "plaintext-secret-data"),
        b("escaped.json", 1, "plaintext-secret-data"),
        b("continued.yaml", 7, "plaintext-secret-data"),
    ] {
        assert!(found.contains(&f), "{f:?} not in {found:?}");
    }
}

#[test]
fn a_secret_before_an_unreadable_document_is_reported_and_the_file_blocks() {
    let tmp = fixture_repo("unreadable-document-after-a-secret");
    let found = scan_every_way(tmp.path());
    let unreadable = |path: &str| {
        found
            .iter()
            .any(|(p, _, r)| p == path && r == "unreadable-manifest")
    };
    for path in ["deep.yaml", "aliases.yaml", "broken.yaml", "nul.yaml"] {
        assert!(
            found.contains(&b(path, 6, "plaintext-secret-data")),
            "{path}: {found:?}"
        );
        assert!(unreadable(path), "{path}: {found:?}");
    }
    assert!(unreadable("surrogate.json"), "{found:?}");
    // The message says where, what, and how to fix it.
    let out = scan(tmp.path(), &["--format", "json"]);
    let f = findings(&out);
    let deep = f
        .iter()
        .find(|f| f["path"] == "deep.yaml" && f["rule"] == "unreadable-manifest")
        .unwrap();
    assert_eq!(deep["severity"], "high");
    let message = deep["message"].as_str().unwrap();
    assert!(message.contains("deep.yaml:8:"), "{message}");
    assert!(message.contains("fix the file"), "{message}");
}

#[test]
fn an_unreadable_file_that_cannot_hold_a_secret_stays_a_note() {
    let tmp = new_repo();
    std::fs::write(
        tmp.path().join("logo.yaml"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("latin1.yaml"),
        b"kind: ConfigMap\nnote: caf\xe9\n",
    )
    .unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("logo.yaml: skipped: binary file"));
    assert!(text(&out.stderr).contains("latin1.yaml: skipped: not UTF-8 text"));
    // The same bytes next to a Secret block.
    std::fs::write(
        tmp.path().join("latin1.yaml"),
        b"kind: Secret\nstringData:\n  note: caf\xe9\n",
    )
    .unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(brief(&out).contains(&b("latin1.yaml", 3, "unreadable-manifest")));
}

#[test]
fn a_credential_in_a_file_left_unparsed_is_still_found() {
    let tmp = new_repo();
    let token = "ghp_Xk9mP2vL7qAb3ZrT8wYcXk9mP2vL7qAb3ZrT";
    // Not UTF-8 and no Secret: not parsed, but searched for known formats as any text file.
    let mut latin1 = b"kind: ConfigMap\n# caf\xe9\ndata:\n  t: ".to_vec();
    latin1.extend_from_slice(token.as_bytes());
    latin1.push(b'\n');
    std::fs::write(tmp.path().join("latin1.yaml"), latin1).unwrap();
    // An allow marker inside a block scalar is text, not a comment.
    std::fs::write(
        tmp.path().join("block.yaml"),
        format!("kind: ConfigMap\ndata:\n  run.sh: |\n    export T={token} # kustodian:allow\n"),
    )
    .unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let found = brief(&out);
    assert!(
        found.contains(&b("latin1.yaml", 4, "known-credential")),
        "{found:?}"
    );
    assert!(
        found.contains(&b("block.yaml", 4, "known-credential")),
        "{found:?}"
    );
    assert!(!text(&out.stdout).contains(token) && !text(&out.stderr).contains(token));
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded_and_scanned() {
    let tmp = fixture_repo("utf16-with-bom");
    let found = scan_every_way(tmp.path());
    assert_eq!(
        found,
        BTreeSet::from([
            b("be.yaml", 6, "plaintext-secret-data"),
            b("le.yaml", 6, "plaintext-secret-data"),
        ])
    );
}

#[test]
fn repeated_keys_are_judged_every_way_and_reported() {
    let tmp = fixture_repo("duplicate-keys");
    let found = scan_every_way(tmp.path());
    assert_eq!(
        found,
        BTreeSet::from([
            // `kind: ConfigMap`, then `kind: Secret`: a Secret for kubectl.
            b("kind-twice.yaml", 6, "plaintext-secret-data"),
            b("kind-twice.yaml", 7, "duplicate-key"),
            // The second `data` block holds the plaintext.
            b("data-twice.yaml", 7, "duplicate-key"),
            b("data-twice.yaml", 8, "plaintext-secret-data"),
            // The second `password` is plaintext, the first a reference.
            b("key-twice.yaml", 7, "duplicate-key"),
            b("key-twice.yaml", 7, "plaintext-secret-data"),
        ])
    );
}

#[test]
fn an_allow_marker_inside_a_value_is_not_a_comment() {
    let tmp = fixture_repo("allow-marker-not-a-comment");
    let found = scan_every_way(tmp.path());
    let lines: BTreeSet<u64> = found
        .iter()
        .filter(|(_, _, r)| r == "plaintext-secret-data")
        .map(|(_, l, _)| *l)
        .collect();
    // Quoted (6, 8), glued to the value (7), and on a line that a multi-line string spans (12)
    // block; the real comment (9) allows its line.
    for line in [6, 7, 8, 12] {
        assert!(lines.contains(&line), "line {line}: {found:?}");
    }
    assert!(!lines.contains(&9), "{found:?}");
}

#[test]
fn a_large_file_that_may_hold_a_secret_blocks_and_any_other_is_a_note() {
    let tmp = new_repo();
    let dir = tmp.path();
    let padding = "# padding padding padding padding padding padding padding padding padding\n";
    let mut big = String::from(
        "apiVersion: v1\nkind: Secret\nstringData:\n  password: canary-in-a-large-file\n",
    );
    let mut other = String::from("apiVersion: v1\nkind: ConfigMap\n");
    while big.len() <= 9 * 1024 * 1024 {
        big.push_str(padding);
        other.push_str(padding);
    }
    std::fs::write(dir.join("big.yaml"), &big).unwrap();
    std::fs::write(dir.join("other.yaml"), &other).unwrap();
    let walk = scan(dir, &["--format", "json"]);
    git(dir, &["add", "-A"]);
    let staged = scan(dir, &["--staged", "--format", "json"]);
    for out in [&walk, &staged] {
        common::assert_no_canary("large", out, &CANARIES);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            brief(out),
            BTreeSet::from([b("big.yaml", 1, "unreadable-manifest")])
        );
        assert!(
            text(&out.stderr).contains("other.yaml: skipped: larger than 8 MiB"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Peak resident memory of `kustodian ARGS` in `dir`, in KiB, from GNU time.
fn peak_rss_kib(dir: &Path, args: &[&str]) -> (Output, u64) {
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .args(["-f", "peak-rss-kib=%M", "--"])
        .arg(common::bin())
        .args(args);
    let out = cmd.output().unwrap();
    let stderr = text(&out.stderr);
    let kib = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("peak-rss-kib="))
        .next_back()
        .unwrap_or_else(|| panic!("no peak RSS in:\n{stderr}"))
        .trim()
        .parse()
        .unwrap();
    (out, kib)
}

#[test]
fn findings_are_capped_per_file_and_memory_stays_bounded() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped: /usr/bin/time (GNU time) is not installed");
        return;
    }
    // 2 MB of one-letter keys in one Secret: every line a plaintext value and a repeated key.
    let tmp = new_repo();
    let dir = tmp.path();
    let mut src =
        String::from("apiVersion: v1\nkind: Secret\nmetadata: {name: huge}\nstringData:\n");
    let mut i = 0u32;
    while src.len() < 2 * 1024 * 1024 {
        let key = (b'a' + (i % 26) as u8) as char;
        src.push_str(&format!("  {key}: canary-{i:08}\n"));
        i += 1;
    }
    std::fs::write(dir.join("huge.yaml"), &src).unwrap();
    for format in ["human", "json", "sarif", "github"] {
        let (out, kib) = peak_rss_kib(dir, &["scan", "--format", format]);
        common::assert_no_canary(format, &out, &CANARIES);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(
            kib < 200 * 1024,
            "{format}: peak memory {kib} KiB for a 2 MB file"
        );
        assert!(
            out.stdout.len() < 1024 * 1024,
            "{format}: {} bytes of output",
            out.stdout.len()
        );
    }
    let out = scan(dir, &["--format", "json"]);
    let f = findings(&out);
    assert_eq!(f.len(), 101);
    let last = f.last().unwrap()["message"].as_str().unwrap().to_string();
    assert!(last.contains("more findings in this file"), "{last}");
}

#[test]
fn the_policy_can_turn_unreadable_manifest_off_like_any_rule() {
    let tmp = new_repo();
    let dir = tmp.path();
    std::fs::write(
        dir.join("broken.yaml"),
        "kind: Secret\nmetadata: {name: x\n",
    )
    .unwrap();
    let out = scan(dir, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        brief(&out),
        BTreeSet::from([b("broken.yaml", 3, "unreadable-manifest")])
    );
    std::fs::write(
        dir.join(".kustodian.yaml"),
        "version: 1\nrules:\n  unreadable-manifest: off\n",
    )
    .unwrap();
    let out = scan(dir, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
