//! The Argo CD sidecar of the cloud-store tests: its own HOME (token cache), the operator's
//! variables, and a leak check on every run (no canary, token or credential on stderr, nothing
//! on stdout when the render failed).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::rendered::Render;

/// Variable prefixes of the test's own environment that never reach kustodian.
const FOREIGN: &[&str] = &[
    "AWS_",
    "GOOGLE_",
    "GCE_",
    "CLOUDSDK_",
    "AZURE_",
    "VAULT_",
    "BAO_",
    "AVP_",
    "KUSTODIAN_",
    "ARGOCD_",
    "XDG_",
    "SSL_CERT",
    "OP_",
    "KUBE",
];

pub struct Sidecar {
    pub home: tempfile::TempDir,
    pub vars: Vec<(String, String)>,
    /// Strings that must never reach stderr (or stdout of a failed render).
    pub secrets: Vec<String>,
    /// More such strings, read before each check (the keys in a credential cache).
    pub also_secret: Option<fn(&Sidecar) -> Vec<String>>,
}

impl Sidecar {
    /// A sidecar whose `<path:>` placeholders go to `store`, with a short retry budget.
    pub fn new(store: &str) -> Sidecar {
        let mut s = Sidecar::with_secrets(&[]);
        s.set("AVP_TYPE", store);
        s.set("KUSTODIAN_CLOUD_MAX_ATTEMPTS", "3");
        s
    }

    /// A sidecar with no variables yet; `secrets` (and "canary") must never reach an output.
    pub fn with_secrets(secrets: &[&str]) -> Sidecar {
        let mut all: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        all.push("canary".into());
        Sidecar {
            home: tempfile::tempdir().unwrap(),
            vars: Vec::new(),
            secrets: all,
            also_secret: None,
        }
    }

    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(n, _)| n != k);
        self.vars.push((k.into(), v.into()));
    }

    pub fn unset(&mut self, k: &str) {
        self.vars.retain(|(n, _)| n != k);
    }

    /// Writes a file under HOME and returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.home.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn render(&self, input: &str) -> Render {
        self.run(&["render", "-"], input)
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Render {
        self.run_program(&assert_cmd::cargo::cargo_bin("kustodian"), args, stdin)
    }

    /// Runs `program` in the sidecar's environment only, and checks that nothing leaks.
    pub fn run_program(&self, program: &Path, args: &[&str], stdin: &str) -> Render {
        let mut cmd = std::process::Command::new(program);
        for (k, _) in std::env::vars() {
            if FOREIGN.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"));
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let out = assert_cmd::Command::from_std(cmd)
            .args(args)
            .write_stdin(stdin.to_string())
            .output()
            .unwrap();
        let r = Render {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut secrets = self.secrets.clone();
        secrets.extend(self.also_secret.map(|f| f(self)).unwrap_or_default());
        for s in &secrets {
            assert!(
                !r.stderr.to_lowercase().contains(&s.to_lowercase()),
                "stderr leaks {s:?}:\n{}",
                r.stderr
            );
            if !r.ok {
                assert!(!r.stdout.contains(s.as_str()), "stdout leaks {s:?}");
            }
        }
        r
    }

    /// The token cache files under `~/.cache/kustodian/<folder>`, each checked to be mode 0600.
    pub fn cache_files(&self, folder: &str) -> Vec<PathBuf> {
        let dir = self.home.path().join(".cache/kustodian").join(folder);
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        #[cfg(unix)]
        for f in &files {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        files
    }
}

/// A Secret with `stringData` lines.
pub fn secret_doc(lines: &[(&str, &str)]) -> String {
    let mut s = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n");
    for (k, v) in lines {
        s.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    s
}

/// A name unique to this test process and purpose.
pub fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// Renders `fixtures` (`app/`, `legacy/`, `krm/input.yaml`) through every render path: the
/// CLI on a kustomize folder, the KRM function, the legacy kustomize exec plugin (run by
/// `kubectl kustomize --enable-alpha-plugins`) and the Argo CD plugin as argocd-cmp-server
/// runs it (the Application picks the store with `ARGOCD_ENV_AVP_TYPE`, everything else is
/// the sidecar's). Each output must hold every `(key, value)` of `expect`.
pub fn every_render_path(side: &Sidecar, fixtures: &Path, store: &str, expect: &[(&str, &str)]) {
    let check = |what: &str, out: &Render| {
        assert!(out.ok, "{what} failed:\n{}", out.stderr);
        for (k, v) in expect {
            out.has(k, v);
        }
    };
    let app = fixtures.join("app");
    check(
        "render DIR",
        &side.run(&["render", app.to_str().unwrap()], ""),
    );
    let krm = std::fs::read_to_string(fixtures.join("krm/input.yaml")).unwrap();
    check("kustodian krm", &side.run(&["krm"], &krm));
    side.run(&["install-kustomize-plugin"], "").expect_ok();
    let legacy = fixtures.join("legacy");
    check(
        "the legacy Resolver",
        &side.run_program(
            Path::new("kubectl"),
            &[
                "kustomize",
                "--enable-alpha-plugins",
                legacy.to_str().unwrap(),
            ],
            "",
        ),
    );
    let repo = tempfile::tempdir().unwrap();
    crate::example::copy_dir(&app, &repo.path().join("apps/app"));
    let input = crate::example::AppInput {
        name: "app".into(),
        namespace: "team-a".into(),
        source_path: "apps/app".into(),
        env: vec![("AVP_TYPE".into(), store.into())],
        ..Default::default()
    };
    let bins = crate::example::bin_dir();
    let env: Vec<(&str, &str)> = side
        .vars
        .iter()
        .filter(|(k, _)| k != "AVP_TYPE")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let run = crate::example::run_cmp(
        &crate::example::plugin("kustodian"),
        repo.path(),
        &input,
        bins.path(),
        &env,
    );
    let out = Render {
        ok: run.output.status.success(),
        stdout: run.stdout(),
        stderr: run.stderr(),
    };
    for s in &side.secrets {
        assert!(
            !out.stderr.contains(s.as_str()),
            "the plugin's stderr leaks {s:?}"
        );
    }
    check("the Argo CD plugin", &out);
}
