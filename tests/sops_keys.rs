//! SOPS beyond age, against the real tools: the real `sops` 3.11, GnuPG keys in a temporary
//! GNUPGHOME, OpenBao's transit engine, moto's KMS. Every key type and key groups with a
//! Shamir threshold of 2 of 3 in both directions; `.sops.yaml` rules with mixed types;
//! `updatekeys` and `rotate` results opened by the real sops; an error naming each master key
//! that could not be used. Every secret value holds a canary that no stderr may show.

#[path = "support/bao.rs"]
mod bao;
#[path = "support/moto.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

const CANARY: &str = "canary-sops-keys-7f3a";

fn plain() -> String {
    format!("db:\n    password: {CANARY}\n    user: app\n")
}

fn find_on_path(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH: run tests/setup-tools.sh and put .venv/bin on PATH")
        })
}

/// A scratch folder with its own HOME, XDG_CONFIG_HOME and GNUPGHOME, and no key variables
/// from the caller's environment.
struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Drop for Env {
    fn drop(&mut self) {
        // The gpg-agent started for this GNUPGHOME.
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.path("gnupg"))
            .output();
    }
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::Builder::new().prefix("sk").tempdir().unwrap();
        for d in ["home", "xdg", "gnupg"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("gnupg"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Env {
            dir,
            vars: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn set(&mut self, k: &str, v: &str) {
        self.vars.push((k.into(), v.into()));
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("GNUPGHOME", self.path("gnupg"))
            .env("NO_COLOR", "1");
        for (k, _) in std::env::vars() {
            if k.starts_with("SOPS_")
                || k.starts_with("VAULT_")
                || k.starts_with("BAO_")
                || k.starts_with("AWS_")
            {
                c.env_remove(k);
            }
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    fn kustodian(&self) -> Command {
        self.command(&assert_cmd::cargo::cargo_bin("kustodian"))
    }

    fn sops(&self) -> Command {
        self.command(&find_on_path("sops"))
    }

    /// The real sops encrypts [`plain`] (as `p.yaml`) with `flags` into `to`; returns the text.
    fn sops_encrypt(&self, flags: &[&str], to: &str) -> String {
        self.write("p.yaml", &plain());
        let text = stdout(run(self.sops().arg("encrypt").args(flags).arg("p.yaml")));
        self.write(to, &text);
        text
    }

    /// A GnuPG key with an encryption subkey; its fingerprint.
    fn gpg_key(&self, name: &str) -> String {
        let out = run(self.command(Path::new("gpg")).args([
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("{name} <{name}@example.test>"),
            "future-default",
            "default",
            "never",
        ]));
        assert!(out.status.success());
        let list = run(self.command(Path::new("gpg")).args([
            "--list-keys",
            "--with-colons",
            &format!("{name}@example.test"),
        ]));
        String::from_utf8(list.stdout)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .unwrap()
    }

    /// An age key file written by `kustodian keygen`: (file, recipient).
    fn age_key(&self, name: &str) -> (PathBuf, String) {
        let file = self.path(name);
        let out = run(self.kustodian().args(["keygen", "-o"]).arg(&file));
        let public = String::from_utf8(out.stderr).unwrap();
        (
            file,
            public
                .trim()
                .strip_prefix("Public key: ")
                .unwrap()
                .to_string(),
        )
    }
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("running a tool");
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} should fail");
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains(CANARY));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains(CANARY), "stderr shows the value:\n{err}");
    err
}

/// Decrypts with `c` and checks the canary and that stderr is clean.
fn opens(c: &mut Command) {
    let out = run(c);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(CANARY));
    let text = stdout(out);
    assert!(text.contains(CANARY), "{text}");
}

fn stdout(out: Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: Output) -> String {
    String::from_utf8(out.stderr).unwrap()
}

/// Both directions with the master keys of `flags` (`--pgp FP`): the real sops encrypts
/// `p.yaml` into `by-sops.yaml` and kustodian opens it, kustodian encrypts it into
/// `by-kustodian.yaml` and the real sops opens that. Returns kustodian's file.
fn round_trip(env: &Env, flags: &[&str]) -> String {
    env.sops_encrypt(flags, "by-sops.yaml");
    opens(env.kustodian().args(["decrypt", "by-sops.yaml"]));
    let text = stdout(run(env
        .kustodian()
        .arg("encrypt")
        .args(flags)
        .arg("p.yaml")));
    env.write("by-kustodian.yaml", &text);
    opens(env.sops().args(["decrypt", "by-kustodian.yaml"]));
    text
}

/// A KMS key on moto; its ARN.
fn kms_key(m: &moto::Moto, description: &str) -> String {
    let key = &m.aws(json!([["kms", "create_key", {"Description": description}]]))[0];
    key["KeyMetadata"]["Arn"].as_str().unwrap().to_string()
}

/// An [`Env`] whose AWS calls go to moto, with static test credentials.
fn moto_env(m: &moto::Moto) -> Env {
    let mut env = Env::new();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", m.url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "canary-aws-secret"),
    ] {
        env.set(k, v);
    }
    env
}

#[test]
fn pgp_files_round_trip_with_real_sops() {
    let env = Env::new();
    let fp = env.gpg_key("alice");
    let text = round_trip(&env, &["--pgp", &fp]);
    assert!(text.contains("-----BEGIN PGP MESSAGE-----") && text.contains(&fp));
    // SOPS_PGP_FP is read like sops reads it.
    let out = run(env
        .kustodian()
        .env("SOPS_PGP_FP", &fp)
        .args(["encrypt", "p.yaml"]));
    env.write("by-env.yaml", &stdout(out));
    opens(env.sops().args(["decrypt", "by-env.yaml"]));
}

#[test]
fn pgp_without_the_secret_key_names_the_fingerprint_and_why() {
    let env = Env::new();
    let fp = env.gpg_key("bob");
    env.sops_encrypt(&["--pgp", &fp], "s.yaml");
    let err = fails(
        env.kustodian()
            .env("GNUPGHOME", env.path("empty-gnupg"))
            .args(["decrypt", "s.yaml"]),
    );
    assert!(
        err.contains(&format!("pgp {fp}")) && err.contains("s.yaml"),
        "{err}"
    );
    // gpg's own reason, and no data key (the stanza's armor) in the message.
    assert!(!err.contains("BEGIN PGP MESSAGE"), "{err}");
    let err = fails(
        env.kustodian()
            .env("SOPS_GPG_EXEC", "/nonexistent/gpg")
            .args(["decrypt", "s.yaml"]),
    );
    assert!(err.contains("SOPS_GPG_EXEC"), "{err}");
}

/// A `.sops.yaml` with three key groups (age, pgp, age), threshold 2.
fn three_groups(env: &Env) -> (String, PathBuf, PathBuf) {
    let fp = env.gpg_key("carol");
    let (k1, a1) = env.age_key("a1.txt");
    let (k2, a2) = env.age_key("a2.txt");
    env.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    shamir_threshold: 2\n    key_groups:\n      - age: [{a1}]\n      - pgp: [{fp}]\n      - age: [{a2}]\n"
        ),
    );
    (fp, k1, k2)
}

#[test]
fn key_groups_with_a_threshold_of_two_of_three_round_trip_with_real_sops() {
    let env = Env::new();
    let (fp, k1, k2) = three_groups(&env);
    for (writer, file) in [
        ("sops", "by-sops.enc.yaml"),
        ("kustodian", "by-kustodian.enc.yaml"),
    ] {
        env.write(file, &plain());
        let mut enc = if writer == "sops" {
            env.sops()
        } else {
            env.kustodian()
        };
        run(enc.args(["encrypt", "-i", file]));
        let text = env.read(file);
        assert!(
            text.contains("shamir_threshold: 2") && text.contains("key_groups:"),
            "{text}"
        );
        // Any two groups open it, with both tools.
        for reader in ["sops", "kustodian"] {
            let mut c = if reader == "sops" {
                env.sops()
            } else {
                env.kustodian()
            };
            // age group 1 + pgp group 2
            opens(c.env("SOPS_AGE_KEY_FILE", &k1).args(["decrypt", file]));
            // age groups 1 and 3, without the PGP key
            let both = format!(
                "{}{}",
                std::fs::read_to_string(&k1).unwrap(),
                std::fs::read_to_string(&k2).unwrap()
            );
            let mut c = if reader == "sops" {
                env.sops()
            } else {
                env.kustodian()
            };
            opens(
                c.env("SOPS_AGE_KEY", &both)
                    .env("GNUPGHOME", env.path("empty-gnupg"))
                    .args(["decrypt", file]),
            );
        }
        // One group is not enough: each failed key is named with its reason.
        let err = fails(
            env.kustodian()
                .env("SOPS_AGE_KEY_FILE", &k1)
                .env("GNUPGHOME", env.path("empty-gnupg"))
                .args(["decrypt", file]),
        );
        assert!(
            err.contains("2 of 3 key groups are needed")
                && err.contains(&format!("pgp {fp}"))
                && err.contains("no age identity matches"),
            "{err}"
        );
        assert!(!err.contains("AGE-SECRET-KEY"), "{err}");
    }
}

#[test]
fn creation_rules_with_mixed_types_wrap_for_every_key() {
    let env = Env::new();
    let fp = env.gpg_key("dave");
    let (k1, a1) = env.age_key("a1.txt");
    env.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: ^other/\n    age: {a1}\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^password$\n    age: {a1}\n    pgp: {fp}\n"
        ),
    );
    env.write("secrets/app.yaml", &plain());
    run(env.kustodian().args(["encrypt", "-i", "secrets/app.yaml"]));
    let text = env.read("secrets/app.yaml");
    assert!(text.contains("user: app") && text.contains("encrypted_regex: ^password$"));
    // Either key alone opens it with the real sops.
    opens(
        env.sops()
            .env("SOPS_AGE_KEY_FILE", &k1)
            .env("GNUPGHOME", env.path("empty-gnupg"))
            .args(["decrypt", "secrets/app.yaml"]),
    );
    opens(env.sops().args(["decrypt", "secrets/app.yaml"]));
}

#[test]
fn render_uses_pgp_and_group_files_without_manifest_changes() {
    let env = Env::new();
    let fp = env.gpg_key("erin");
    run(Command::new("git").arg("init").arg("-q").arg(env.path("")));
    env.sops_encrypt(&["--pgp", &fp], "store/app.enc.yaml");
    std::fs::remove_file(env.path("p.yaml")).unwrap();
    env.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:../store/app.enc.yaml#db.password>\n  b: ref+sops://../store/app.enc.yaml#/db/password\n",
    );
    let text = stdout(run(env.kustodian().args(["render", "app"])));
    assert_eq!(text.matches(CANARY).count(), 2, "{text}");
}

#[test]
fn transit_keys_round_trip_with_real_sops_and_stay_on_the_operators_vault() {
    let b = bao::Bao::start();
    assert!(b.cli(&["secrets", "enable", "transit"]).0);
    assert!(b.cli(&["write", "-f", "transit/keys/app"]).0);
    let mut env = Env::new();
    env.set("VAULT_ADDR", &b.addr);
    env.set("VAULT_TOKEN", bao::ROOT_TOKEN);
    let uri = format!("{}/v1/transit/keys/app", b.addr);
    let text = round_trip(&env, &["--hc-vault-transit", &uri]);
    assert!(
        text.contains("hc_vault:") && text.contains("vault:v1:"),
        "{text}"
    );

    // A file naming another server: the token is not sent there, and the file is named.
    let elsewhere = env
        .read("by-sops.yaml")
        .replace(&b.addr, "http://127.0.0.2:9");
    env.write("elsewhere.yaml", &elsewhere);
    let err = fails(env.kustodian().args(["decrypt", "elsewhere.yaml"]));
    assert!(
        err.contains("elsewhere.yaml names the Vault server http://127.0.0.2:9"),
        "{err}"
    );
    assert!(!err.contains(bao::ROOT_TOKEN), "{err}");
    // A token without the policy: access denied, named per key.
    let weak = b.token(&["default"], "10m");
    let err = fails(
        env.kustodian()
            .env("VAULT_TOKEN", &weak)
            .args(["decrypt", "by-sops.yaml"]),
    );
    assert!(err.contains("hc_vault") && err.contains("denied"), "{err}");
    assert!(!err.contains(&weak), "{err}");
}

#[test]
fn kms_keys_round_trip_with_real_sops_on_moto() {
    let m = moto::moto();
    let arn = kms_key(m, "sops");
    let env = moto_env(m);
    let text = round_trip(&env, &["--kms", &arn]);
    assert!(text.contains("kms:") && text.contains(&arn), "{text}");
    // Without credentials: the key is named with why.
    let err = fails(
        env.kustodian()
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .args(["decrypt", "by-sops.yaml"]),
    );
    assert!(
        err.contains(&format!("kms {arn}")) && err.contains("no AWS credentials"),
        "{err}"
    );
    assert!(!err.contains("canary-aws-secret"), "{err}");
}

#[test]
fn updatekeys_follows_the_creation_rule_and_sops_opens_the_result() {
    let env = Env::new();
    let fp = env.gpg_key("frank");
    let (k1, a1) = env.age_key("a1.txt");
    env.write(".sops.yaml", &format!("creation_rules:\n  - age: {a1}\n"));
    for f in ["t/one.yaml", "t/two.yaml"] {
        env.write(f, &plain());
        run(env.kustodian().args(["encrypt", "-i", f]));
    }
    env.write("t/plain.yaml", "a: 1\n");
    // The rule now adds the PGP key: one file by name, then the rest of the tree.
    env.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - age: {a1}\n    pgp: {fp}\n"),
    );
    let out = run(env.kustodian().env("SOPS_AGE_KEY_FILE", &k1).args([
        "updatekeys",
        "--yes",
        "t/one.yaml",
    ]));
    let err = stderr(out);
    assert!(
        err.contains(&format!("t/one.yaml: keys updated: +pgp {fp}")),
        "{err}"
    );
    let out = run(env.kustodian().env("SOPS_AGE_KEY_FILE", &k1).args([
        "updatekeys",
        "--yes",
        "--all",
        "t",
    ]));
    let err = stderr(out);
    assert!(
        err.contains("one.yaml: already up to date") && err.contains("two.yaml: keys updated"),
        "{err}"
    );
    assert!(!err.contains("plain.yaml"), "{err}");
    for f in ["t/one.yaml", "t/two.yaml"] {
        // The PGP key alone opens them now.
        opens(env.sops().args(["decrypt", f]));
    }
    // A file it cannot open is reported, the others are still done, exit 2.
    env.write(".sops.yaml", &format!("creation_rules:\n  - pgp: {fp}\n"));
    let out = env
        .kustodian()
        .env("GNUPGHOME", env.path("empty-gnupg"))
        .args(["updatekeys", "--yes", "t/one.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(out);
    assert!(
        err.contains("t/one.yaml: could not update the keys of"),
        "{err}"
    );
    assert!(!err.contains(CANARY));
}

#[test]
fn rotate_gives_a_new_data_key_and_adds_and_removes_recipients() {
    let env = Env::new();
    let fp = env.gpg_key("gina");
    let (k1, a1) = env.age_key("a1.txt");
    let (k2, a2) = env.age_key("a2.txt");
    env.write("s.yaml", &plain());
    run(env
        .kustodian()
        .args(["encrypt", "-i", "--age", &a1, "--pgp", &fp, "s.yaml"]));
    let before = env.read("s.yaml");
    run(env.kustodian().env("SOPS_AGE_KEY_FILE", &k1).args([
        "rotate",
        "-i",
        "--rm-pgp",
        &fp,
        "--rm-age",
        &a1,
        "--add-age",
        &a2,
        "s.yaml",
    ]));
    let after = env.read("s.yaml");
    assert!(!after.contains("pgp:") && !after.contains(&a1) && after.contains(&a2));
    // A new data key: every value's ciphertext changed.
    let enc = |t: &str| {
        t.lines()
            .find(|l| l.contains("password: ENC["))
            .unwrap()
            .to_string()
    };
    assert_ne!(enc(&before), enc(&after));
    opens(
        env.sops()
            .env("SOPS_AGE_KEY_FILE", &k2)
            .args(["decrypt", "s.yaml"]),
    );
    let err = fails(
        env.sops()
            .env("SOPS_AGE_KEY_FILE", &k1)
            .args(["decrypt", "s.yaml"]),
    );
    assert!(!err.is_empty());
    // A whole tree, in place: every SOPS file gets a new data key; other files are left alone.
    env.write("tree/b.yaml", &plain());
    run(env
        .kustodian()
        .args(["encrypt", "-i", "--age", &a2, "tree/b.yaml"]));
    env.write("tree/plain.yaml", "a: 1\n");
    let b_before = env.read("tree/b.yaml");
    let out = run(env
        .kustodian()
        .env("SOPS_AGE_KEY_FILE", &k2)
        .args(["rotate", "-i", "--all", "tree"]));
    let err = stderr(out);
    assert!(
        err.contains("b.yaml: rotated: new data key") && !err.contains("plain.yaml"),
        "{err}"
    );
    assert_ne!(enc(&b_before), enc(&env.read("tree/b.yaml")));
    assert_eq!(env.read("tree/plain.yaml"), "a: 1\n");
    opens(
        env.sops()
            .env("SOPS_AGE_KEY_FILE", &k2)
            .args(["decrypt", "tree/b.yaml"]),
    );
}

#[test]
fn real_sops_pgp_and_group_vectors_decrypt_with_the_test_key() {
    let env = Env::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop/sops/keys-real");
    run(env
        .command(Path::new("gpg"))
        .args(["--batch", "--import"])
        .arg(dir.join("pgp-test-key.asc")));
    for (file, age) in [
        ("pgp.enc.yaml", None),
        ("shamir-2of3.enc.yaml", Some("age-group1.key.txt")),
        ("shamir-2of3.enc.yaml", Some("age-group3.key.txt")),
    ] {
        let mut c = env.kustodian();
        if let Some(k) = age {
            c.env("SOPS_AGE_KEY_FILE", dir.join(k));
        }
        let text = stdout(run(c.arg("decrypt").arg(dir.join(file))));
        assert!(
            text.contains("password: interop-canary-pw"),
            "{file}: {text}"
        );
    }
}

/// Copies `tests/fixtures/sops-keys/<case>/repo` into a new git repository.
fn fixture_repo(case: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sops-keys")
        .join(case)
        .join("repo");
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("git").args(["init", "-q"]).arg(dir.path()));
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn scan(dir: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("kustodian"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .arg("scan")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    for canary in ["canary-ssh-password-41", "canary-fine-0", "canary-drift-pw"] {
        assert!(
            !stdout.contains(canary) && !stderr.contains(canary),
            "{stdout}{stderr}"
        );
    }
    (
        out.status.code().unwrap(),
        serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}{stderr}")),
        stderr,
    )
}

#[test]
fn scan_blocks_a_sops_file_whose_rules_encrypt_nothing() {
    // Written by the real sops: `encrypted_regex: ^(data|stringData)$` on a file that is not a
    // Secret, read by a secretGenerator, holding a plaintext passwordSSH.
    let repo = fixture_repo("encrypts-nothing");
    let (code, json, _) = scan(repo.path(), &[]);
    let f = json["findings"].as_array().unwrap();
    assert_eq!(code, 1, "{json}");
    assert_eq!(f.len(), 1, "{json}");
    assert_eq!(f[0]["rule"], "sops-encrypts-nothing");
    assert_eq!(f[0]["path"], "ssh.enc.age.yaml");
    assert_eq!(f[0]["severity"], "medium");
    assert!(f[0]["message"]
        .as_str()
        .unwrap()
        .contains("`encrypted_regex` setting encrypts none"));
}

#[test]
fn scan_reports_recipient_drift_only_when_a_policy_turns_it_on() {
    let repo = fixture_repo("recipient-drift");
    // Off by default.
    let (code, json, _) = scan(repo.path(), &[]);
    assert_eq!(
        (code, json["findings"].as_array().unwrap().len()),
        (0, 0),
        "{json}"
    );
    // On, below the blocking severity: reported, exit 0.
    std::fs::write(
        repo.path().join(".kustodian.yaml"),
        "version: 1\nrules:\n  sops-recipient-drift: on\nblock_at: medium\n",
    )
    .unwrap();
    let (code, json, _) = scan(repo.path(), &[]);
    let f = json["findings"].as_array().unwrap();
    assert_eq!((code, f.len()), (0, 1), "{json}");
    let added = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sops-keys/recipient-drift/added-recipient.txt"),
    )
    .unwrap();
    assert_eq!(f[0]["rule"], "sops-recipient-drift");
    assert_eq!(f[0]["severity"], "low");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("missing age {}", added.trim())),
        "{json}"
    );
    // A policy that blocks at low: exit 1.
    std::fs::write(
        repo.path().join(".kustodian.yaml"),
        "version: 1\nrules:\n  sops-recipient-drift: on\n",
    )
    .unwrap();
    assert_eq!(scan(repo.path(), &[]).0, 1);
    // updatekeys needs the old key's identity to re-wrap: without it, it names the file, exits
    // 2 and changes nothing.
    let before = std::fs::read_to_string(repo.path().join("app.enc.yaml")).unwrap();
    std::fs::remove_file(repo.path().join(".kustodian.yaml")).unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("kustodian"))
        .current_dir(repo.path())
        .args(["updatekeys", "--yes", "app.enc.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("app.enc.yaml: could not update"));
    assert_eq!(
        std::fs::read_to_string(repo.path().join("app.enc.yaml")).unwrap(),
        before
    );
}

#[test]
fn kms_roles_in_files_are_assumed_only_when_the_operator_allows_them() {
    let m = moto::moto();
    let arn = kms_key(m, "sops-role");
    let role = "arn:aws:iam::123456789012:role/sops-decrypt";
    let env = moto_env(m);
    let text = env.sops_encrypt(&["--kms", &format!("{arn}+{role}")], "s.yaml");
    assert!(text.contains(&format!("role: {role}")), "{text}");
    // The role is written by whoever writes the repository: not assumed unless allowed.
    let err = fails(env.kustodian().args(["decrypt", "s.yaml"]));
    assert!(
        err.contains(&format!("kms {arn}+{role}"))
            && err.contains("KUSTODIAN_AWS_ALLOWED_ROLE_ARNS"),
        "{err}"
    );
    opens(
        env.kustodian()
            .env(
                "KUSTODIAN_AWS_ALLOWED_ROLE_ARNS",
                "arn:aws:iam::123456789012:role/sops-*",
            )
            .args(["decrypt", "s.yaml"]),
    );
}
