//! The scanner finds credentials outside Secret objects (issue 15): known credential formats in
//! every text file (`known-credential`), credential key names with a credential-looking value in
//! every GitOps location (`credential-value`), and lets look-alikes through.
//!
//! One fixture folder per behaviour under tests/fixtures/scan/: `location-*` (each place a
//! credential hides), `format-*` (each known format), `safe-*` (each shape that never blocks).
//! Each has a `repo/` and an `expected.txt` (`path:line:column:rule:severity` per finding, empty
//! when nothing may block); each is scanned as a walk, through `--staged` and through
//! `--range`, in every output format, and no output holds a planted value (every one holds
//! `canary`). `KUSTODIAN_BLESS=1` rewrites `expected.txt` from the walk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{brief, commit_all, findings, git, kustodian, new_repo, CANARIES};

fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("tests/fixtures/scan").join(name)
}

/// Runs `kustodian scan ARGS` and checks that neither stdout nor stderr holds a canary.
fn scan(dir: &Path, args: &[&str]) -> Output {
    let out = kustodian(dir).arg("scan").args(args).output().unwrap();
    common::assert_no_canary(&format!("scan {args:?}"), &out, &CANARIES);
    out
}

/// The fixture's `expected.txt`, one finding a line.
fn expected(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(name).join("expected.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A fresh repository holding the fixture's files, not yet committed.
fn repo_of(name: &str) -> tempfile::TempDir {
    common::repo_with(&fixture(name).join("repo"))
}

/// Scans `dir` in `mode` (`[]` a walk, `["--staged"]`, `["--range", "HEAD"]`): the JSON
/// findings must be `want` with the exit code that goes with them, and every other format must
/// exit the same and hold no canary.
fn scan_all_formats(name: &str, dir: &Path, mode: &[&str], want: &[String]) {
    let code = Some(if want.is_empty() { 0 } else { 1 });
    let json = scan(dir, &[mode, &["--format", "json"]].concat());
    assert_eq!(brief(&json), want, "{name}: {mode:?}");
    assert_eq!(json.status.code(), code, "{name}: {mode:?}");
    for format in ["human", "sarif", "github"] {
        let out = scan(dir, &[mode, &["--format", format]].concat());
        assert_eq!(
            out.status.code(),
            code,
            "{name}: {mode:?} --format {format}"
        );
    }
}

/// Scans the fixture as a walk, staged and as history; each must give `expected.txt`.
fn run_case(name: &str) {
    let tmp = repo_of(name);
    let dir = tmp.path();
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        let walk = scan(dir, &["--format", "json"]);
        let body: String = brief(&walk).iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(fixture(name).join("expected.txt"), body).unwrap();
    }
    let want = expected(name);
    scan_all_formats(name, dir, &[], &want);
    git(dir, &["add", "-A"]);
    scan_all_formats(name, dir, &["--staged"], &want);
    commit_all(dir, "add the fixture");
    scan_all_formats(name, dir, &["--range", "HEAD"], &want);
}

/// One test per fixture folder, named after it.
macro_rules! cases {
    ($($test:ident => $folder:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run_case($folder);
            }
        )*
        /// Every fixture folder of a kind, for the tests that run them all.
        const CASES: &[&str] = &[$($folder),*];
    };
}

cases! {
    // Where credentials hide.
    location_helmrelease_values => "location-helmrelease-values",
    location_helmrelease_values_from_configmap => "location-helmrelease-values-from-configmap",
    location_helmrelease_values_from_configmap_generator => "location-helmrelease-values-from-configmap-generator",
    location_helmrelease_values_from_secret => "location-helmrelease-values-from-secret",
    location_kustomize_helmcharts_values_file => "location-kustomize-helmcharts-values-file",
    location_argocd_application_value_files => "location-argocd-application-value-files",
    location_argocd_application_helm_values => "location-argocd-application-helm-values",
    location_argocd_application_values_object => "location-argocd-application-values-object",
    location_argocd_application_helm_parameters => "location-argocd-application-helm-parameters",
    location_argocd_applicationset_helm_values => "location-argocd-applicationset-helm-values",
    location_argocd_plugin_env => "location-argocd-plugin-env",
    location_helm_values_beside_chart => "location-helm-values-beside-chart",
    location_configmap_data => "location-configmap-data",
    location_config_text_in_a_string => "location-config-text-in-a-string",
    location_url_userinfo_in_config_text => "location-url-userinfo-in-config-text",
    location_container_env_every_workload_kind => "location-container-env-every-workload-kind",
    location_crd_pod_template_env => "location-crd-pod-template-env",
    location_container_args => "location-container-args",
    location_container_args_flag_then_value => "location-container-args-flag-then-value",
    location_ruby_php_pairs_in_config_text => "location-ruby-php-pairs-in-config-text",
    location_header_pairs_in_notification_config_text => "location-header-pairs-in-notification-config-text",
    location_externalsecret_template_data => "location-externalsecret-template-data",
    location_sopssecret_plaintext => "location-sopssecret-plaintext",
    location_flux_provider_webhook_address => "location-flux-provider-webhook-address",
    location_alertmanager_receivers => "location-alertmanager-receivers",
    location_talos_machine_config => "location-talos-machine-config",
    location_kubeconfig => "location-kubeconfig",
    location_yaml_comments => "location-yaml-comments",
    location_scripts => "location-scripts",
    location_taskfiles => "location-taskfiles",
    location_env_sample => "location-env-sample",
    location_markdown => "location-markdown",
    // Each known credential format, in a plain text file.
    format_private_key => "format-private-key",
    format_aws_access_key => "format-aws-access-key",
    format_aws_secret_access_key => "format-aws-secret-access-key",
    format_github_token => "format-github-token",
    format_gitlab_token => "format-gitlab-token",
    format_slack_token => "format-slack-token",
    format_google_api_key => "format-google-api-key",
    format_stripe_live_key => "format-stripe-live-key",
    format_npm_token => "format-npm-token",
    format_pypi_token => "format-pypi-token",
    format_azure_storage_key => "format-azure-storage-key",
    format_sendgrid_api_key => "format-sendgrid-api-key",
    format_vault_token => "format-vault-token",
    format_age_secret_key => "format-age-secret-key",
    format_jwt => "format-jwt",
    format_slack_webhook_url => "format-slack-webhook-url",
    format_chat_webhook_url => "format-chat-webhook-url",
    format_url_with_password => "format-url-with-password",
    format_htpasswd_line => "format-htpasswd-line",
    format_anthropic_key => "format-anthropic-key",
    format_base64_private_key => "format-base64-private-key",
    format_cloudflare_origin_ca_key => "format-cloudflare-origin-ca-key",
    format_connection_string_password => "format-connection-string-password",
    format_digitalocean_token => "format-digitalocean-token",
    format_docker_hub_token => "format-docker-hub-token",
    format_doppler_token => "format-doppler-token",
    format_grafana_token => "format-grafana-token",
    format_huggingface_token => "format-huggingface-token",
    format_jfrog_token => "format-jfrog-token",
    format_linear_key => "format-linear-key",
    format_openai_key => "format-openai-key",
    format_openshift_token => "format-openshift-token",
    format_postman_key => "format-postman-key",
    format_sentry_token => "format-sentry-token",
    format_shopify_token => "format-shopify-token",
    format_tailscale_key => "format-tailscale-key",
    format_telegram_bot_token => "format-telegram-bot-token",
    format_terraform_cloud_token => "format-terraform-cloud-token",
    // Shapes that never block.
    safe_avp_path_references => "safe-avp-path-references",
    safe_avp_generic_placeholders => "safe-avp-generic-placeholders",
    safe_vals_references => "safe-vals-references",
    safe_1password_references => "safe-1password-references",
    safe_flux_substitutions => "safe-flux-substitutions",
    safe_flux_substitutions_with_defaults => "safe-flux-substitutions-with-defaults",
    safe_templates => "safe-templates",
    safe_secret_key_refs => "safe-secret-key-refs",
    safe_existing_secret_names => "safe-existing-secret-names",
    safe_placeholders => "safe-placeholders",
    safe_short_and_dictionary_values => "safe-short-and-dictionary-values",
    safe_sealedsecret_ciphertext => "safe-sealedsecret-ciphertext",
    safe_sops_encrypted_values => "safe-sops-encrypted-values",
    safe_digests => "safe-digests",
    safe_uuids => "safe-uuids",
    safe_public_certificates => "safe-public-certificates",
    safe_digests_under_credential_words => "safe-digests-under-credential-words",
    safe_code_and_argument_look_alikes => "safe-code-and-argument-look-alikes",
    // Secret data.
    secret_data_vault_and_age_keys_critical => "secret-data-vault-and-age-keys-critical",
}

/// One repository holding several fixtures, each under a folder of its name, and what they
/// give together.
fn repo_of_many(names: &[&str]) -> (tempfile::TempDir, Vec<String>) {
    let tmp = new_repo();
    let mut want = Vec::new();
    for name in names {
        let to = tmp.path().join(name);
        std::fs::create_dir_all(&to).unwrap();
        common::copy_tree(&fixture(name).join("repo"), &to);
        want.extend(expected(name).iter().map(|l| format!("{name}/{l}")));
    }
    want.sort();
    (tmp, want)
}

fn cases_starting(prefix: &str) -> Vec<&'static str> {
    CASES
        .iter()
        .copied()
        .filter(|c| c.starts_with(prefix))
        .collect()
}

#[test]
fn only_secrets_keeps_the_narrow_scan() {
    let names = [cases_starting("location-"), cases_starting("format-")].concat();
    let (tmp, want) = repo_of_many(&names);
    assert!(want.len() > names.len(), "{want:?}");
    // Only what Secret data gives stays (a Secret a HelmRelease reads its values from).
    let narrow: Vec<String> = want
        .into_iter()
        .filter(|l| !l.contains(":known-credential:") && !l.contains(":credential-value:"))
        .collect();
    assert_eq!(narrow.len(), 1, "{narrow:?}");
    let out = scan(tmp.path(), &["--only", "secrets", "--format", "json"]);
    assert_eq!(brief(&out), narrow);
    git(tmp.path(), &["add", "-A"]);
    let out = scan(
        tmp.path(),
        &["--staged", "--only", "secrets", "--format", "json"],
    );
    assert_eq!(brief(&out), narrow, "--staged");
    // Secret data is judged as before.
    let tmp = repo_of("secret-data-vault-and-age-keys-critical");
    let out = scan(tmp.path(), &["--only", "secrets", "--format", "json"]);
    assert_eq!(
        brief(&out),
        expected("secret-data-vault-and-age-keys-critical")
    );
}

#[test]
fn a_policy_turns_the_credential_rules_off() {
    let (tmp, want) = repo_of_many(&[
        "location-helmrelease-values",
        "location-flux-provider-webhook-address",
        "location-scripts",
    ]);
    assert_eq!(brief(&scan(tmp.path(), &["--format", "json"])), want);
    let policy = "version: 1\nrules:\n  known-credential: off\n  credential-value: off\n";
    std::fs::write(tmp.path().join(".kustodian.yaml"), policy).unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(brief(&out), Vec::<String>::new());
    // Per path, as for every rule.
    let policy = "version: 1\nallow:\n  - paths: ['location-helmrelease-values/**', 'location-scripts/**']\n    reason: test\n";
    std::fs::write(tmp.path().join(".kustodian.yaml"), policy).unwrap();
    let out = scan(tmp.path(), &["--format", "json"]);
    let left: Vec<String> = want
        .into_iter()
        .filter(|l| l.starts_with("location-flux-provider-webhook-address/"))
        .collect();
    assert!(!left.is_empty());
    assert_eq!(brief(&out), left);
}

#[test]
fn an_allow_marker_lets_a_credential_line_through() {
    let tmp = new_repo();
    common::write(
        tmp.path(),
        "deploy.sh",
        "curl https://hooks.slack.com/services/T0CANARY1/B0CANARY2/canaryAbCdEfGhIjKl # kustodian:allow test hook\n",
    );
    let out = scan(tmp.path(), &["--format", "json"]);
    assert_eq!(brief(&out), Vec::<String>::new());
}

#[test]
fn history_of_a_partial_clone_is_scanned_in_full() {
    let (src, want) = repo_of_many(&cases_starting("format-"));
    commit_all(src.path(), "add the fixtures");
    git(src.path(), &["config", "uploadpack.allowFilter", "true"]);
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", src.path().display());
    git(
        clone.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &url,
            "c",
        ],
    );
    let dir = clone.path().join("c");
    let missing = git(&dir, &["rev-list", "--objects", "--missing=print", "--all"]);
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "not a partial clone"
    );
    let out = scan(&dir, &["--range", "HEAD", "--format", "json"]);
    assert_eq!(brief(&out), want);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_blob_is_an_unreadable_blob_finding_and_the_scan_goes_on() {
    let (tmp, want) = repo_of_many(&cases_starting("format-"));
    let dir = tmp.path();
    common::write(
        dir,
        "lost.yaml",
        "kind: ConfigMap\ndata:\n  note: canary lost\n",
    );
    let commit = commit_all(dir, "add the fixtures");
    let blob = git(dir, &["rev-parse", "HEAD:lost.yaml"]);
    std::fs::remove_file(dir.join(".git/objects").join(&blob[..2]).join(&blob[2..])).unwrap();
    let out = scan(dir, &["--range", "HEAD", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let f = findings(&out);
    let lost: Vec<_> = f
        .iter()
        .filter(|f| f["rule"] == "unreadable-blob")
        .collect();
    assert_eq!(lost.len(), 1, "{f:?}");
    assert_eq!(lost[0]["path"], "lost.yaml");
    assert_eq!(lost[0]["commit"].as_str(), Some(commit.as_str()));
    assert!(lost[0]["message"].as_str().unwrap().contains(&blob));
    // The other blobs of the commit are still judged.
    assert_eq!(f.len(), want.len() + 1, "{f:?}");
}

/// A values file that a `configMapGenerator` reads for a `HelmRelease`'s `valuesFrom`, changed on
/// its own after the kustomization: `--staged` judges the staged version (not the working
/// tree's) through the kustomization around it, and `--range` the committed one.
#[test]
fn a_generated_values_file_is_judged_from_the_index_and_from_the_commit() {
    let name = "location-helmrelease-values-from-configmap-generator";
    let values = "apps/grafana/grafana-values.txt";
    let tmp = repo_of(name);
    let dir = tmp.path();
    common::write(dir, values, "adminUser: admin\n");
    commit_all(dir, "the release, no password yet");
    let base = git(dir, &["rev-parse", "HEAD"]);
    common::copy_tree(&fixture(name).join("repo"), dir);
    git(dir, &["add", values]);
    // The working tree no longer holds the password; the index does.
    common::write(dir, values, "adminUser: admin\n");
    let want = expected(name);
    scan_all_formats(name, dir, &["--staged"], &want);
    scan_all_formats(name, dir, &[], &[]);
    common::copy_tree(&fixture(name).join("repo"), dir);
    commit_all(dir, "set the admin password");
    let range = format!("{base}..HEAD");
    scan_all_formats(name, dir, &["--range", &range], &want);
    // The finding names the entry that reads the file.
    let out = scan(dir, &["--range", &range, "--format", "json"]);
    let f = &findings(&out)[0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .starts_with("configMapGenerator/grafana-values:"),
        "{f}"
    );
}
