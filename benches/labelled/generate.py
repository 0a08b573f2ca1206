#!/usr/bin/env python3
"""Writes kustodian's labelled credential corpus: files as they are found in public GitOps
repositories (Flux, Argo CD, kustomize, Helm values, Talos, k3s, home-lab tooling), each
credential labelled `sure` or `weak`, and look-alikes that are not credentials labelled `fake`.

    benches/labelled/generate.py OUT_DIR

writes OUT_DIR/repo/... and OUT_DIR/labels.tsv (`path<TAB>first line<TAB>last line<TAB>label
<TAB>kind<TAB>value`, value escaped with \\n). Every value is random (fixed seed, so the output is
the same on every run) in the shape of the real format; no value is a real credential.

Labels:
- sure: a credential a scanner must find (a random token, key or password in use);
- weak: a demo value or weak default in use (`admin`, `prom-operator`, a password hash, a
  diceware passphrase that reads like a resource name), where judgement differs;
- fake: a look-alike that must never block (ciphertext, references, templates, placeholders,
  digests, UUIDs, public keys and certificates, resource names, key names without a value);
- neutral: a value that is neither, counted nowhere (the `url` of a plaintext Secret that also
  holds a credential: the scanner blocks the whole Secret, by design).

In the templates below a labelled value is written `«LABEL:kind:text»`; `@@name@@` is replaced
by a generated value first. Credential-format prefixes are split ("AK" "IA") so that this file
itself holds no credential-looking text.
"""

import base64
import hashlib
import json
import os
import random
import re
import sys
import uuid

rnd = random.Random(1515)

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def pick(alphabet, n):
    return "".join(rnd.choice(alphabet) for _ in range(n))


def b64(b):
    return base64.b64encode(b).decode()


def rbytes(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))


def password(n=None):
    """A generated password: letters, digits and a few symbols, always mixed."""
    n = n or rnd.randint(14, 28)
    while True:
        p = pick(ALNUM + "!#%^*-_=+.", n)
        if (any(c in UPPER for c in p) and any(c in LOWER for c in p)
                and any(c in DIGITS for c in p)):
            return p


def openssl_b64(n=32):
    return b64(rbytes(n))


def openssl_hex(n=32):
    return rbytes(n).hex()


def uuid4():
    return str(uuid.UUID(bytes=rbytes(16), version=4))


AK = "AK" + "IA"
BEGIN = "-----BEGIN "
END = "-----END "


def aws_id():
    return AK + pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)


def aws_secret():
    return pick(ALNUM + "/+", 40)


def pem_private(label="RSA PRIVATE KEY", lines=6, indent=""):
    body = [pick(B64, 64) for _ in range(lines)] + [pick(B64, 40) + "=="]
    out = [BEGIN + label + "-----"] + body + [END + label + "-----"]
    return ("\n" + indent).join(out)


def pem_public_cert(lines=6, indent=""):
    body = ["MII" + pick(B64, 61)] + [pick(B64, 64) for _ in range(lines)] + [pick(B64, 20) + "="]
    out = [BEGIN + "CERTIFICATE-----"] + body + [END + "CERTIFICATE-----"]
    return ("\n" + indent).join(out)


def jwt(payload):
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"' + pick(URLSAFE, 43).encode() + b'"}')
    body = base64.urlsafe_b64encode(json.dumps(payload).encode())
    return (head.decode().rstrip("=") + "." + body.decode().rstrip("=") + "." + pick(URLSAFE, 342))


def htpasswd_apr1(user):
    return user + ":$apr1$" + pick(ALNUM + "./", 8) + "$" + pick(ALNUM + "./", 22)


def bcrypt_hash():
    return "$2y$10$" + pick(ALNUM + "./", 53)


def sealed():
    return "AgB" + pick(B64, 680) + "=="


def sops_enc(n=None):
    n = n or rnd.randint(8, 40)
    return ("ENC[AES256_GCM,data:" + b64(rbytes(n)) + ",iv:" + b64(rbytes(32)) + ",tag:"
            + b64(rbytes(16)) + ",type:str]")


def age_recipient():
    return "age1" + pick(BECH32, 58)


def age_secret():
    return "AGE-SECRET-KEY-1" + pick(BECH32.upper(), 58)


def sha256():
    return openssl_hex(32)


def ssh_pub():
    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + pick(B64, 43)


V = {}


def val(name, fn):
    V[name] = fn()
    return V[name]


def gen_values():
    g = {
        "aws_id1": aws_id, "aws_sec1": aws_secret, "aws_id2": aws_id, "aws_sec2": aws_secret,
        "aws_id3": aws_id, "aws_sec3": aws_secret, "aws_id4": aws_id, "aws_sec4": aws_secret,
        "aws_id5": aws_id, "aws_sec5": aws_secret,
        "ghp": lambda: "gh" + "p_" + pick(ALNUM, 36),
        "ghpat": lambda: "github" + "_pat_11" + pick(UPPER + DIGITS, 20) + "_" + pick(ALNUM, 59),
        "glpat": lambda: "gl" + "pat-" + pick(URLSAFE, 20),
        "slack_hook": lambda: "https://hooks.sl" + "ack.com/services/T" + pick(UPPER + DIGITS, 8)
        + "/B" + pick(UPPER + DIGITS, 10) + "/" + pick(ALNUM, 24),
        "slack_hook2": lambda: "https://hooks.sl" + "ack.com/services/T" + pick(UPPER + DIGITS, 10)
        + "/B" + pick(UPPER + DIGITS, 10) + "/" + pick(ALNUM, 24),
        "xoxb": lambda: "xo" + "xb-" + pick(DIGITS, 12) + "-" + pick(DIGITS, 13) + "-" + pick(ALNUM, 24),
        "discord": lambda: "https://discord.com/api/web" + "hooks/" + pick(DIGITS, 19) + "/" + pick(URLSAFE, 68),
        "pd_key": lambda: openssl_hex(16),
        "pd_key2": lambda: openssl_hex(16),
        "opsgenie": uuid4,
        "telegram": lambda: str(rnd.randint(10**9, 7 * 10**9)) + ":AA" + pick(URLSAFE, 33),
        "telegram2": lambda: str(rnd.randint(10**9, 7 * 10**9)) + ":AA" + pick(URLSAFE, 33),
        "cf_token": lambda: pick(URLSAFE, 40),
        "cf_token2": lambda: pick(URLSAFE, 40),
        "cf_global": lambda: pick(HEX, 37),
        "do_token": lambda: "dop" + "_v1_" + openssl_hex(32),
        "glsa": lambda: "gl" + "sa_" + pick(ALNUM, 32) + "_" + pick(HEX, 8),
        "openai": lambda: "sk-" + "proj-" + pick(URLSAFE, 74) + "T3Blbk" + "FJ" + pick(URLSAFE, 74),
        "anthropic": lambda: "sk-" + "ant-api03-" + pick(URLSAFE, 93) + "AA",
        "hf": lambda: "h" + "f_" + pick(UPPER + LOWER, 34),
        "dckr": lambda: "dckr" + "_pat_" + pick(URLSAFE, 27),
        "tskey": lambda: "tskey" + "-auth-k" + pick(ALNUM, 10) + "CNTRL-" + pick(ALNUM, 33),
        "doppler": lambda: "dp" + ".st.prd." + pick(ALNUM, 43),
        "tfc": lambda: pick(ALNUM, 14) + ".atlas" + "v1." + pick(URLSAFE, 67),
        "shopify": lambda: "shp" + "at_" + pick(HEX, 32),
        "linear": lambda: "lin" + "_api_" + pick(ALNUM, 40),
        "twilio": lambda: "S" + "K" + pick(HEX, 32),
        "sentry_tok": lambda: "sntry" + "u_" + pick(HEX, 64),
        "jfrog": lambda: "AK" + "Cp" + pick(ALNUM, 69),
        "vault_tok": lambda: "hv" + "s." + pick(URLSAFE, 91),
        "vault_tok2": lambda: "hv" + "s." + pick(ALNUM, 24),
        "age_sk": age_secret, "age_sk2": age_secret,
        "dd_api": lambda: openssl_hex(16),
        "dd_app": lambda: openssl_hex(20),
        "grafana_pw": password, "pg_pw": password, "pg_pw2": password, "pg_repl": password,
        "redis_pw": password, "mongo_pw": password, "rabbit_pw": password, "mysql_pw": password,
        "minio_pw": password, "authelia_jwt": lambda: pick(ALNUM, 64),
        "authelia_session": lambda: pick(ALNUM, 64), "authelia_storage": lambda: pick(ALNUM, 64),
        "authelia_hmac": lambda: pick(ALNUM, 64), "ldap_pw": password,
        "authentik_key": lambda: pick(ALNUM + "-_", 50), "authentik_pg": password,
        "talos_token": lambda: pick(LOWER + DIGITS, 6) + "." + pick(LOWER + DIGITS, 16),
        "talos_cluster_token": lambda: pick(LOWER + DIGITS, 6) + "." + pick(LOWER + DIGITS, 16),
        "talos_secret": lambda: openssl_b64(32), "talos_aescbc": lambda: openssl_b64(32),
        "talos_id": lambda: openssl_b64(32),
        "k3s_token": lambda: "K10" + openssl_hex(32) + "::server:" + openssl_hex(16),
        "k3s_agent": lambda: pick(ALNUM, 32),
        "kube_token": lambda: pick(LOWER + DIGITS, 6) + "." + pick(LOWER + DIGITS, 16),
        "sa_jwt": lambda: jwt({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:deployer"}),
        "argocd_jwt": lambda: jwt({"iss": "argocd", "sub": "ci:apiKey", "jti": uuid4()}),
        "restic_pw": password, "restic_pw2": password, "rclone_pass": lambda: pick(URLSAFE, 48),
        "wg_key": lambda: openssl_b64(32), "wg_key2": lambda: openssl_b64(32),
        "tunnel_secret": lambda: openssl_b64(32),
        "tunnel_token": lambda: b64(json.dumps({"a": openssl_hex(16), "t": uuid4(), "s": openssl_b64(32)}).encode()),
        "harbor_pw": password, "gitea_tok": lambda: openssl_hex(20), "proxmox_secret": uuid4,
        "oidc_secret": lambda: pick(ALNUM, 32), "oidc_secret2": lambda: pick(ALNUM, 48),
        "dex_secret": lambda: pick(ALNUM, 40), "keycloak_secret": lambda: pick(ALNUM, 32),
        "avp_secret_id": uuid4, "vault_token_env": lambda: "hv" + "s." + pick(URLSAFE, 91),
        "nextcloud_pw": password, "immich_db": password, "mqtt_pw": password, "mqtt_pw2": password,
        "smtp_pw": password, "smtp_pw2": password, "docker_auth": lambda: b64(("robot$ci:" + pick(ALNUM, 32)).encode()),
        "registry_pw": lambda: pick(ALNUM, 32), "ghcr_pw": lambda: "gh" + "p_" + pick(ALNUM, 36),
        "jdbc_pw": password, "mssql_pw": password, "amqp_pw": password, "mongo_srv_pw": password,
        "redis_url_pw": password, "sentry_dsn_key": lambda: openssl_hex(16),
        "gitlab_runner": lambda: "gl" + "rt-" + pick(URLSAFE, 20),
        "webhook_secret": lambda: openssl_hex(20), "flux_webhook_token": lambda: pick(ALNUM, 32),
        "weave_hash": bcrypt_hash, "authelia_hash": lambda: "$argon2id$v=19$m=65536,t=3,p=4$" + pick(B64, 22) + "$" + pick(B64, 43),
        "htpasswd1": lambda: htpasswd_apr1("admin"), "htpasswd2": lambda: "ops:" + bcrypt_hash(),
        "pihole_pw": password, "unifi_pw": password, "cnpg_pw": password, "ha_token": lambda: jwt({"iss": pick(HEX, 32), "iat": 1700000000}),
        "plex_token": lambda: pick(URLSAFE, 20), "zigbee_key": lambda: pick(HEX, 32),
        "tf_cf": lambda: pick(URLSAFE, 40), "tf_pm": password, "ansible_pw": password,
        "datadog_env": lambda: openssl_hex(16), "openai_env": lambda: "sk-" + "proj-" + pick(URLSAFE, 74) + "T3Blbk" + "FJ" + pick(URLSAFE, 74),
        "velero_id": aws_id, "velero_sec": aws_secret,
        "ssh_priv": lambda: pem_private("OPENSSH PRIVATE KEY", 5, "    "),
        "flux_deploy_key": lambda: pem_private("OPENSSH PRIVATE KEY", 5, "    "),
        "authelia_oidc_key": lambda: pem_private("RSA PRIVATE KEY", 6, "          "),
        "client_key_data": lambda: b64(pem_private("EC PRIVATE KEY", 3).encode()),
        "talos_ca_key": lambda: b64(pem_private("ED25519 PRIVATE KEY", 1).encode()),
        "talosconfig_key": lambda: b64(pem_private("ED25519 PRIVATE KEY", 1).encode()),
        "license_key": lambda: pick(UPPER + DIGITS, 5) + "-" + pick(UPPER + DIGITS, 5) + "-" + pick(UPPER + DIGITS, 5) + "-" + pick(UPPER + DIGITS, 5),
        "stripe": lambda: "sk" + "_live_" + pick(ALNUM, 24), "sendgrid": lambda: "S" + "G." + pick(URLSAFE, 22) + "." + pick(URLSAFE, 43),
        "google": lambda: "AI" + "za" + pick(URLSAFE, 35), "npm": lambda: "np" + "m_" + pick(ALNUM, 36),
        # look-alikes
        "sha": sha256, "sha2": sha256, "sha3": sha256, "commit": lambda: openssl_hex(20),
        "uuid1": uuid4, "uuid2": uuid4, "uuid3": uuid4, "age_r1": age_recipient, "age_r2": age_recipient,
        "pgp_fp": lambda: pick("0123456789ABCDEF", 40), "ssh_pub1": ssh_pub, "ssh_pub2": ssh_pub,
        "cert1": lambda: pem_public_cert(5, "    "), "cert_b64": lambda: b64(pem_public_cert(5).encode()),
        "cert_b64_2": lambda: b64(pem_public_cert(5).encode()),
        "cfg_hash": lambda: pick(LOWER + DIGITS, 10), "pod_hash": lambda: pick("bcdfghjklmnpqrstvwxz2456789", 10),
        "logo_b64": lambda: b64(b"\x89PNG\r\n\x1a\n" + rbytes(90)),
        "integrity": lambda: "sha512-" + b64(rbytes(64)),
        "ansible_vault": lambda: "\n          ".join(pick(HEX, 80) for _ in range(4)),
        "uuid4": uuid4, "uuid5": uuid4, "sealed2": sealed, "sealed3": sealed,
        "ca_fp": lambda: ":".join(pick("0123456789ABCDEF", 2) for _ in range(32)),
        "ocp_token": lambda: "sha256" + "~" + pick(URLSAFE, 43),
        "cli_pw": password, "cli_pw2": password, "ghcr_pw2": lambda: pick(ALNUM, 32),
        "compose_pw": lambda: pick(ALNUM, 24), "rails_skb": lambda: openssl_hex(64),
        "docker_env_tok": lambda: pick(ALNUM, 40), "tf_result": password, "tf_state_pw": password,
        "nested_pw": password, "gen_tok": lambda: pick(ALNUM, 32), "gen_smtp": password,
        "appset_tok": lambda: pick(ALNUM + "-_", 48), "arg_pw": password, "arg_tok": lambda: pick(ALNUM, 40),
        "inv_pw": password, "make_tok": lambda: pick(ALNUM, 36), "gotify_tok": lambda: pick(ALNUM + "-_.", 15),
        "admin_pw": password,
    }
    for k, fn in g.items():
        val(k, fn)


FILES = []


def add(path, text):
    FILES.append((path, text))


def files():
    # ---------------------------------------------------------------- Flux HelmReleases
    add("kubernetes/apps/monitoring/kube-prometheus-stack/app/helmrelease.yaml", """---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: kube-prometheus-stack
  namespace: monitoring
spec:
  interval: 30m
  chart:
    spec:
      chart: kube-prometheus-stack
      version: 65.1.1
      sourceRef:
        kind: HelmRepository
        name: prometheus-community
        namespace: flux-system
  values:
    grafana:
      adminUser: admin
      adminPassword: «S:grafana-admin-password:@@grafana_pw@@»
      grafana.ini:
        server:
          root_url: https://grafana.${SECRET_DOMAIN}
        auth.generic_oauth:
          enabled: true
          client_id: grafana
          client_secret: «S:oidc-client-secret:@@oidc_secret@@»
          token_url: «N:url:https://auth.${SECRET_DOMAIN}/api/oidc/token»
        smtp:
          password: «N:flux-var:${SMTP_PASSWORD}»
    alertmanager:
      config:
        global:
          slack_api_url: «S:slack-webhook:@@slack_hook@@»
          resolve_timeout: 5m
        receivers:
          - name: "null"
          - name: pagerduty
            pagerduty_configs:
              - routing_key: «S:pagerduty-routing-key:@@pd_key@@»
                send_resolved: true
          - name: opsgenie
            opsgenie_configs:
              - api_key: «S:opsgenie-api-key:@@opsgenie@@»
          - name: telegram
            telegram_configs:
              - bot_token: «S:telegram-bot-token:@@telegram@@»
                chat_id: «N:number:-1001234567890»
          - name: discord
            discord_configs:
              - webhook_url: «S:discord-webhook:@@discord@@»
    prometheus:
      prometheusSpec:
        podMetadata:
          annotations:
            checksum/config: «N:checksum:@@sha@@»
""")
    add("kubernetes/apps/database/postgresql/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: postgresql
spec:
  chart:
    spec:
      chart: postgresql
      version: 16.0.3
  values:
    global:
      postgresql:
        auth:
          postgresPassword: «S:postgres-password:@@pg_pw@@»
          username: app
          password: «S:postgres-password:@@pg_pw2@@»
          database: app
          existingSecret: «N:existing-secret:postgresql-credentials»
    architecture: replication
    auth:
      replicationPassword: «S:postgres-replication-password:@@pg_repl@@»
    metrics:
      enabled: true
    primary:
      podAnnotations:
        checksum/secret: «N:checksum:@@sha2@@»
""")
    add("kubernetes/apps/default/minio/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: minio
spec:
  values:
    rootUser: minio
    rootPassword: «S:minio-root-password:@@minio_pw@@»
    users:
      - accessKey: loki
        secretKey: «W:demo-password:loki-secret»
        policy: readwrite
    buckets:
      - name: loki
        policy: none
""")
    add("kubernetes/apps/default/redis/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: redis
spec:
  values:
    auth:
      enabled: true
      password: «S:redis-password:@@redis_pw@@»
      sentinel: false
    master:
      persistence:
        size: 8Gi
""")
    add("kubernetes/apps/default/harbor/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: harbor
spec:
  values:
    externalURL: https://harbor.example.com
    harborAdminPassword: «S:harbor-admin-password:@@harbor_pw@@»
    secretKey: «W:chart-default:not-a-secure-key»
    database:
      internal:
        password: «W:chart-default:changeit»
    registry:
      credentials:
        username: harbor_registry_user
        password: «W:chart-default:harbor_registry_password»
""")
    add("kubernetes/apps/security/authentik/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: authentik
spec:
  valuesFrom:
    - kind: Secret
      name: authentik-secret
      valuesKey: secret_key
      targetPath: authentik.secret_key
  values:
    authentik:
      secret_key: «S:authentik-secret-key:@@authentik_key@@»
      email:
        host: smtp.fastmail.com
        port: 587
        username: alerts@example.com
        password: «S:smtp-password:@@smtp_pw@@»
      postgresql:
        password: «S:postgres-password:@@authentik_pg@@»
    server:
      env:
        - name: AUTHENTIK_REDIS__PASSWORD
          valueFrom:
            secretKeyRef:
              name: «N:secret-name:redis-credentials»
              key: «N:key-name:password»
    postgresql:
      enabled: true
      auth:
        existingSecret: «N:existing-secret:authentik-postgresql»
        secretKeys:
          userPasswordKey: «N:key-name:postgres-password»
""")
    add("kubernetes/apps/default/weave-gitops/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: weave-gitops
spec:
  values:
    adminUser:
      create: true
      username: admin
      passwordHash: «W:bcrypt-hash:@@weave_hash@@»
    rbac:
      impersonationResourceNames: ["admin"]
""")
    add("kubernetes/apps/default/nextcloud/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: nextcloud
spec:
  values:
    nextcloud:
      host: cloud.${SECRET_DOMAIN}
      username: admin
      password: «S:nextcloud-admin-password:@@nextcloud_pw@@»
      mail:
        smtp:
          password: «N:flux-var-default:${SMTP_PASSWORD:=}»
      configs:
        s3.config.php: |-
          <?php
          $CONFIG = array (
            'objectstore' => array(
              'class' => '\\\\OC\\\\Files\\\\ObjectStore\\\\S3',
              'arguments' => array(
                'bucket' => 'nextcloud',
                'key' => '«S:aws-access-key-id:@@aws_id3@@»',
                'secret' => '«S:aws-secret-access-key:@@aws_sec3@@»',
              ),
            ),
          );
    externalDatabase:
      enabled: true
      existingSecret:
        enabled: true
        secretName: «N:secret-name:nextcloud-db»
        passwordKey: «N:key-name:db-password»
""")
    add("kubernetes/apps/home/home-assistant/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: home-assistant
spec:
  values:
    controllers:
      home-assistant:
        containers:
          app:
            image:
              repository: ghcr.io/home-operations/home-assistant
              tag: 2024.11.3@sha256:«N:image-digest:@@sha3@@»
            env:
              TZ: Europe/Paris
              HASS_TOKEN: «S:home-assistant-token:@@ha_token@@»
              MQTT_PASSWORD: «S:mqtt-password:@@mqtt_pw@@»
              ZIGBEE_NETWORK_KEY: «W:zigbee-network-key:@@zigbee_key@@»
            envFrom:
              - secretRef:
                  name: home-assistant-secret
""")
    add("kubernetes/apps/home/zigbee2mqtt/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: zigbee2mqtt
spec:
  values:
    config:
      mqtt:
        server: mqtt://emqx.database.svc.cluster.local
        user: zigbee2mqtt
        password: «S:mqtt-password:@@mqtt_pw2@@»
      advanced:
        network_key: GENERATE
        pan_id: GENERATE
        log_level: info
""")
    add("kubernetes/apps/media/plex/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: plex
spec:
  values:
    controllers:
      plex:
        containers:
          app:
            env:
              PLEX_CLAIM: «W:plex-claim:claim-@@plex_token@@»
              PLEX_ADVERTISE_URL: https://plex.${SECRET_DOMAIN}:443
              PLEX_TOKEN: «N:flux-var:${PLEX_TOKEN}»
""")
    # ---------------------------------------------------------------- Argo CD Applications
    add("argocd/apps/grafana.yaml", """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: grafana
  namespace: argocd
  annotations:
    argocd.argoproj.io/sync-wave: "2"
spec:
  project: default
  source:
    repoURL: https://grafana.github.io/helm-charts
    chart: grafana
    targetRevision: 8.5.1
    helm:
      releaseName: grafana
      parameters:
        - name: adminPassword
          value: «S:grafana-admin-password:@@pg_pw@@X»
        - name: image.tag
          value: 11.3.0
      valuesObject:
        datasources:
          datasources.yaml:
            apiVersion: 1
            datasources:
              - name: Loki
                type: loki
                url: http://loki-gateway.monitoring
                basicAuth: true
                basicAuthUser: loki
                secureJsonData:
                  basicAuthPassword: «N:dollar-ref:$LOKI_PASSWORD»
              - name: InfluxDB
                type: influxdb
                secureJsonData:
                  token: «S:influxdb-token:@@dex_secret@@==»
  destination:
    server: https://kubernetes.default.svc
    namespace: monitoring
""")
    add("argocd/apps/app-with-avp.yaml", """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: billing
spec:
  source:
    repoURL: https://github.com/example/gitops.git
    path: apps/billing
    plugin:
      name: argocd-vault-plugin
      env:
        - name: AVP_TYPE
          value: vault
        - name: AVP_AUTH_TYPE
          value: approle
        - name: AVP_ROLE_ID
          value: «N:uuid-role-id:@@uuid1@@»
        - name: AVP_SECRET_ID
          value: «S:vault-approle-secret-id:@@avp_secret_id@@»
        - name: VAULT_TOKEN
          value: «S:vault-token:@@vault_token_env@@»
""")
    add("argocd/apps/external-dns.yaml", """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: external-dns
spec:
  sources:
    - repoURL: https://kubernetes-sigs.github.io/external-dns
      chart: external-dns
      targetRevision: 1.15.0
      helm:
        values: |
          provider:
            name: cloudflare
          env:
            - name: CF_API_TOKEN
              value: «S:cloudflare-api-token:@@cf_token@@»
            - name: CF_API_EMAIL
              value: ops@example.com
          extraArgs:
            - --cloudflare-proxied
            - --txt-owner-id=«N:owner-id:k8s-home-@@cfg_hash@@»
          txtPrefix: k8s.
""")
    add("argocd/argocd-cm.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
data:
  url: https://argocd.example.com
  admin.enabled: "false"
  dex.config: |
    connectors:
      - type: github
        id: github
        name: GitHub
        config:
          clientID: «N:client-id:Iv1.@@cfg_hash@@»
          clientSecret: «N:argocd-secret-ref:$dex.github.clientSecret»
          orgs:
            - name: example
  oidc.config: |
    name: Keycloak
    issuer: https://keycloak.example.com/realms/main
    clientID: argocd
    clientSecret: «S:oidc-client-secret:@@keycloak_secret@@»
    requestedScopes: ["openid", "profile", "email"]
  accounts.ci: apiKey
""")
    add("argocd/argocd-repo-creds.yaml", """apiVersion: v1
kind: Secret
metadata:
  name: private-repo-creds
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: repo-creds
stringData:
  type: «X:secret-data:git»
  url: «X:secret-data:https://github.com/example»
  password: «S:github-pat:@@ghpat@@»
  username: «X:secret-data:bot»
""")
    add("argocd/notifications-cm.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-notifications-cm
data:
  service.slack: |
    token: $slack-token
    username: argocd
  service.webhook.github: |
    url: https://api.github.com
    headers:
      - name: Authorization
        value: token «S:github-token:@@ghp@@»
  service.telegram: |
    token: «S:telegram-bot-token:@@telegram2@@»
  service.webhook.gotify: |
    url: https://gotify.example.com/message
    headers:
      - name: Authorization
        value: «S:bearer-header:Bearer @@gotify_tok@@»
  service.webhook.ntfy: |
    url: https://ntfy.example.com/argocd
    headers:
      - name: Authorization
        value: «N:bearer-var:Bearer $ntfy-token»
  template.app-deployed: |
    message: Application {{.app.metadata.name}} is now running new version.
""")
    # ---------------------------------------------------------------- Flux notification, sources
    add("kubernetes/flux/notifications/provider.yaml", """---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: slack
  namespace: flux-system
spec:
  type: slack
  channel: gitops
  address: «S:slack-webhook:@@slack_hook2@@»
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: github
  namespace: flux-system
spec:
  type: github
  address: https://github.com/example/home-ops
  secretRef:
    name: «N:secret-name:github-token»
---
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: on-call
spec:
  providerRef:
    name: slack
  eventSeverity: error
  eventSources:
    - kind: Kustomization
      name: "*"
---
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: github-receiver
spec:
  type: github
  events: ["ping", "push"]
  secretRef:
    name: «N:secret-name:github-webhook-token»
""")
    add("kubernetes/flux/repositories/git/home-ops.yaml", """apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: home-ops
  namespace: flux-system
spec:
  interval: 30m
  url: ssh://git@github.com/example/home-ops
  ref:
    branch: main
    commit: «N:git-commit:@@commit@@»
  secretRef:
    name: home-ops-deploy-key
  ignore: |
    /*
    !/kubernetes
""")
    add("kubernetes/flux/vars/cluster-settings.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
  namespace: flux-system
data:
  TIMEZONE: Europe/Paris
  CLUSTER_CIDR: 10.42.0.0/16
  SECRET_DOMAIN_ID: «N:uuid:@@uuid2@@»
  LB_GATEWAY_IP: 10.0.10.20
  SECRET_TOKEN_FILE: «N:path:/var/run/secrets/kubernetes.io/serviceaccount/token»
  AUTH_TYPE: «N:word:oidc-provider»
  CLOUDFLARE_TUNNEL_ID: «N:uuid:@@uuid3@@»
""")
    # ---------------------------------------------------------------- cert-manager, external-dns
    add("kubernetes/apps/cert-manager/issuers/clusterissuer.yaml", """apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-production
spec:
  acme:
    server: https://acme-v02.api.letsencrypt.org/directory
    email: ops@example.com
    privateKeySecretRef:
      name: «N:secret-name:letsencrypt-production»
    solvers:
      - dns01:
          cloudflare:
            apiTokenSecretRef:
              name: «N:secret-name:cloudflare-api-token»
              key: «N:key-name:api-token»
---
apiVersion: v1
kind: Secret
metadata:
  name: cloudflare-api-token
  namespace: cert-manager
type: Opaque
stringData:
  api-token: «S:cloudflare-api-token:@@cf_token2@@»
""")
    add("kubernetes/apps/cert-manager/issuers/certificate.yaml", """apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: wildcard
spec:
  secretName: «N:secret-name:wildcard-tls»
  privateKey:
    algorithm: ECDSA
    size: 256
    rotationPolicy: Always
  dnsNames:
    - example.com
    - "*.example.com"
""")
    add("kubernetes/apps/network/external-dns/app/deployment.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: external-dns
spec:
  template:
    metadata:
      labels:
        pod-template-hash: «N:pod-template-hash:@@pod_hash@@»
    spec:
      containers:
        - name: external-dns
          image: registry.k8s.io/external-dns/external-dns:v0.15.0
          args:
            - --provider=digitalocean
            - --source=ingress
          env:
            - name: DO_TOKEN
              value: «S:digitalocean-token:@@do_token@@»
            - name: CF_API_KEY
              value: «S:cloudflare-global-key:@@cf_global@@»
            - name: CF_API_EMAIL
              value: ops@example.com
            - name: EXTERNAL_DNS_TXT_ENCRYPT_AES_KEY
              valueFrom:
                secretKeyRef:
                  name: external-dns
                  key: «N:key-name:aes-key»
""")
    # ---------------------------------------------------------------- Traefik basic auth
    add("kubernetes/apps/network/traefik/middlewares.yaml", """apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata:
  name: dashboard-auth
spec:
  basicAuth:
    secret: «N:secret-name:dashboard-users»
---
apiVersion: v1
kind: Secret
metadata:
  name: dashboard-users
stringData:
  users: |
    «S:htpasswd:@@htpasswd1@@»
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata:
  name: legacy-auth
spec:
  basicAuth:
    users:
      - "«S:htpasswd:@@htpasswd2@@»"
    removeHeader: true
""")
    # ---------------------------------------------------------------- Authelia config
    add("kubernetes/apps/security/authelia/app/config/configuration.yaml", """---
theme: auto
server:
  address: tcp://0.0.0.0:9091
log:
  level: info
identity_validation:
  reset_password:
    jwt_secret: «S:authelia-jwt-secret:@@authelia_jwt@@»
authentication_backend:
  password_reset:
    disable: false
  ldap:
    address: ldap://lldap.security.svc.cluster.local:3890
    base_dn: dc=home,dc=arpa
    user: uid=admin,ou=people,dc=home,dc=arpa
    password: «S:ldap-password:@@ldap_pw@@»
session:
  secret: «S:authelia-session-secret:@@authelia_session@@»
  redis:
    host: dragonfly.database.svc.cluster.local
    password: «N:env-template:'{{ env "AUTHELIA_REDIS_PASSWORD" }}'»
storage:
  encryption_key: «S:authelia-storage-key:@@authelia_storage@@»
  postgres:
    address: tcp://postgres-rw.database.svc.cluster.local:5432
    database: authelia
    username: authelia
    password: «N:file-ref:'{{ secret "/config/secrets/storage-password" }}'»
notifier:
  smtp:
    address: submission://smtp.fastmail.com:587
    username: alerts@example.com
    password: «S:smtp-password:@@smtp_pw2@@»
identity_providers:
  oidc:
    hmac_secret: «S:authelia-hmac-secret:@@authelia_hmac@@»
    jwks:
      - key_id: main
        key: |
          «S:private-key:@@authelia_oidc_key@@»
    clients:
      - client_id: grafana
        client_name: Grafana
        client_secret: «W:pbkdf2-digest:$pbkdf2-sha512$310000$@@cfg_hash@@$@@pg_repl@@»
        public: false
        authorization_policy: two_factor
""")
    add("kubernetes/apps/security/authelia/app/config/users_database.yml", """users:
  admin:
    disabled: false
    displayname: Admin
    password: «W:argon2-hash:@@authelia_hash@@»
    email: admin@example.com
    groups:
      - admins
""")
    # ---------------------------------------------------------------- Talos
    add("talos/clusterconfig/home-controlplane-1.yaml", """version: v1alpha1
debug: false
persist: true
machine:
  type: controlplane
  token: «S:talos-machine-token:@@talos_token@@»
  ca:
    crt: «N:public-cert-b64:@@cert_b64@@»
    key: «S:talos-ca-key:@@talos_ca_key@@»
  certSANs:
    - 10.0.10.10
  install:
    disk: /dev/sda
    image: factory.talos.dev/installer/«N:schematic-id:@@sha@@»:v1.8.3
cluster:
  id: «N:talos-cluster-id:@@talos_id@@»
  secret: «S:talos-cluster-secret:@@talos_secret@@»
  controlPlane:
    endpoint: https://10.0.10.10:6443
  clusterName: home
  network:
    dnsDomain: cluster.local
  token: «S:talos-cluster-token:@@talos_cluster_token@@»
  secretboxEncryptionSecret: «S:talos-encryption-secret:@@talos_aescbc@@»
  ca:
    crt: «N:public-cert-b64:@@cert_b64_2@@»
""")
    add("talos/talosconfig", """context: home
contexts:
  home:
    endpoints:
      - 10.0.10.10
    nodes:
      - 10.0.10.10
    ca: «N:public-cert-b64:@@cert_b64@@»
    crt: «N:public-cert-b64:@@cert_b64_2@@»
    key: «S:talosconfig-key:@@talosconfig_key@@»
""")
    add("talos/talconfig.yaml", """---
clusterName: home
talosVersion: v1.8.3
kubernetesVersion: v1.31.2
endpoint: https://10.0.10.10:6443
nodes:
  - hostname: cp-1
    ipAddress: 10.0.10.10
    controlPlane: true
    installDiskSelector:
      serial: «N:disk-serial:S4EVNM0T@@pod_hash@@»
    schematic:
      customization:
        systemExtensions:
          officialExtensions:
            - siderolabs/i915
controlPlane:
  patches:
    - "@./patches/controller/cluster.yaml"
""")
    # ---------------------------------------------------------------- k3s, kubeconfig
    add("ansible/inventory/group_vars/kubernetes/k3s.yaml", """---
k3s_release_version: v1.30.6+k3s1
k3s_install_hard_links: true
k3s_become: true
k3s_etcd_datastore: true
k3s_registration_address: 10.0.10.5
k3s_server:
  token: «S:k3s-token:@@k3s_token@@»
  agent-token: «S:k3s-agent-token:@@k3s_agent@@»
  disable:
    - traefik
  write-kubeconfig-mode: "644"
ansible_become_pass: «S:ansible-become-password:@@ansible_pw@@»
ansible_ssh_pass: «N:jinja:{{ vault_ssh_password }}»
db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          «N:ansible-vault:@@ansible_vault@@»
""")
    add("clusters/staging/kubeconfig.yaml", """apiVersion: v1
kind: Config
clusters:
  - cluster:
      certificate-authority-data: «N:public-cert-b64:@@cert_b64@@»
      server: https://10.0.20.10:6443
    name: staging
contexts:
  - context:
      cluster: staging
      user: admin
    name: admin@staging
current-context: admin@staging
users:
  - name: admin
    user:
      client-certificate-data: «N:public-cert-b64:@@cert_b64_2@@»
      client-key-data: «S:kubeconfig-client-key:@@client_key_data@@»
  - name: deployer
    user:
      token: «S:service-account-jwt:@@sa_jwt@@»
  - name: bootstrap
    user:
      token: «S:kubeadm-bootstrap-token:@@kube_token@@»
""")
    # ---------------------------------------------------------------- workloads and config
    add("kubernetes/apps/default/rabbitmq/app/cluster.yaml", """apiVersion: rabbitmq.com/v1beta1
kind: RabbitmqCluster
metadata:
  name: rabbitmq
spec:
  replicas: 3
  rabbitmq:
    additionalConfig: |
      log.console.level = info
      default_user = admin
      default_pass = «S:rabbitmq-default-pass:@@rabbit_pw@@»
      mqtt.default_user = iot
      mqtt.default_pass = «W:demo-password:iot»
      management.path_prefix = /rabbitmq
""")
    add("kubernetes/apps/default/backend/app/deployment.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  annotations:
    reloader.stakater.com/auto: "true"
spec:
  template:
    spec:
      containers:
        - name: backend
          image: ghcr.io/example/backend:1.4.2
          env:
            - name: SPRING_DATASOURCE_URL
              value: «S:jdbc-password:jdbc:postgresql://postgres-rw.database:5432/app?user=app&password=@@jdbc_pw@@»
            - name: MSSQL_CONNECTION
              value: «S:mssql-connection-string:Server=mssql.database,1433;Database=orders;User Id=sa;Password=@@mssql_pw@@;TrustServerCertificate=True»
            - name: AMQP_URL
              value: «S:amqp-url:amqp://app:@@amqp_pw@@@rabbitmq.default.svc:5672/»
            - name: MONGODB_URI
              value: «S:mongodb-url:mongodb+srv://app:@@mongo_srv_pw@@@cluster0.x1abc.mongodb.net/app?retryWrites=true»
            - name: REDIS_URL
              value: «S:redis-url:redis://:@@redis_url_pw@@@redis-master.default.svc:6379/0»
            - name: SENTRY_DSN
              value: «W:sentry-dsn:https://@@sentry_dsn_key@@@o450123.ingest.sentry.io/5412345»
            - name: SENTRY_AUTH_TOKEN
              value: «S:sentry-token:@@sentry_tok@@»
            - name: DD_API_KEY
              value: «S:datadog-api-key:@@datadog_env@@»
            - name: OPENAI_API_KEY
              value: «S:openai-key:@@openai_env@@»
            - name: DATABASE_URL
              value: «N:url-var:postgres://app:$(DB_PASSWORD)@postgres-rw.database:5432/app»
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: «N:secret-name:backend-db»
                  key: password
            - name: JWT_SECRET_FILE
              value: «N:path:/run/secrets/jwt»
            - name: STRIPE_SECRET_KEY
              value: «S:stripe-key:@@stripe@@»
            - name: SENDGRID_API_KEY
              value: «S:sendgrid-key:@@sendgrid@@»
""")
    add("kubernetes/apps/default/immich/app/configmap.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: immich-config
data:
  DB_HOSTNAME: postgres-rw.database.svc.cluster.local
  DB_USERNAME: immich
  DB_PASSWORD: «S:immich-db-password:@@immich_db@@»
  DB_DATABASE_NAME: immich
  REDIS_HOSTNAME: dragonfly.database.svc.cluster.local
  IMMICH_MACHINE_LEARNING_URL: http://immich-machine-learning:3003
  TYPESENSE_API_KEY: «N:placeholder:<your-typesense-api-key>»
""")
    add("kubernetes/apps/network/cloudflared/app/configs/config.yaml", """---
originRequest:
  originServerName: external.${SECRET_DOMAIN}
ingress:
  - hostname: "${SECRET_DOMAIN}"
    service: https://nginx-external-controller.network.svc.cluster.local:443
  - service: http_status:404
""")
    add("kubernetes/apps/network/cloudflared/app/credentials.json", """{
  "AccountTag": "«N:account-id:@@pd_key2@@»",
  "TunnelSecret": "«S:cloudflare-tunnel-secret:@@tunnel_secret@@»",
  "TunnelID": "«N:uuid:@@uuid1@@»"
}
""")
    add("kubernetes/apps/network/cloudflared/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cloudflared
spec:
  values:
    controllers:
      cloudflared:
        containers:
          app:
            args: ["tunnel", "--no-autoupdate", "run"]
            env:
              TUNNEL_TOKEN: «S:cloudflare-tunnel-token:@@tunnel_token@@»
              TUNNEL_METRICS: 0.0.0.0:8080
""")
    add("kubernetes/apps/vpn/gluetun/configmap.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: wireguard
data:
  wg0.conf: |
    [Interface]
    PrivateKey = «S:wireguard-private-key:@@wg_key@@»
    Address = 10.64.0.2/32
    DNS = 10.64.0.1
    [Peer]
    PublicKey = «N:wireguard-public-key:@@wg_key2@@»
    AllowedIPs = 0.0.0.0/0
    Endpoint = 185.0.0.1:51820
""")
    add("kubernetes/apps/vpn/tailscale/deployment.yaml", """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: tailscale-subnet-router
spec:
  template:
    spec:
      containers:
        - name: tailscale
          image: ghcr.io/tailscale/tailscale:v1.76.6
          env:
            - name: TS_AUTHKEY
              value: «S:tailscale-auth-key:@@tskey@@»
            - name: TS_ROUTES
              value: 10.0.0.0/16
            - name: TS_KUBE_SECRET
              value: «N:secret-name:tailscale-state»
""")
    add("kubernetes/apps/ci/gitlab-runner/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: gitlab-runner
spec:
  values:
    gitlabUrl: https://gitlab.com/
    runnerToken: «S:gitlab-runner-token:@@gitlab_runner@@»
    rbac:
      create: true
    runners:
      secret: «N:secret-name:gitlab-runner-secret»
      config: |
        [[runners]]
          [runners.cache]
            Type = "s3"
            [runners.cache.s3]
              ServerAddress = "minio.default.svc:9000"
              AccessKey = "«S:aws-access-key-id:@@aws_id4@@»"
              SecretKey = "«S:minio-secret-key:@@aws_sec4@@»"
""")
    add("kubernetes/apps/ci/actions-runner/cronjob.yaml", """apiVersion: batch/v1
kind: CronJob
metadata:
  name: registry-cleanup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: cleanup
              image: ghcr.io/example/regctl:0.7.2
              args:
                - --token=«S:gitea-token:@@gitea_tok@@»
                - --registry=ghcr.io
              env:
                - name: DOCKERHUB_TOKEN
                  value: «S:docker-hub-token:@@dckr@@»
                - name: HF_TOKEN
                  value: «S:huggingface-token:@@hf@@»
                - name: ANTHROPIC_API_KEY
                  value: «S:anthropic-key:@@anthropic@@»
          restartPolicy: OnFailure
""")
    add("kubernetes/apps/observability/datadog/values.yaml", """# Datadog values, passed by kustomize helmCharts
datadog:
  apiKey: «S:datadog-api-key:@@dd_api@@»
  appKey: «S:datadog-app-key:@@dd_app@@»
  apiKeyExistingSecret: «N:existing-secret:datadog-secret»
  site: datadoghq.eu
  logs:
    enabled: true
clusterAgent:
  token: «S:datadog-cluster-agent-token:@@oidc_secret2@@»
""")
    add("kubernetes/apps/observability/datadog/Chart.yaml", """apiVersion: v2
name: datadog-wrapper
version: 0.1.0
""")
    add("kubernetes/apps/observability/datadog/kustomization.yaml", """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
helmCharts:
  - name: datadog
    repo: https://helm.datadoghq.com
    version: 3.80.0
    releaseName: datadog
    valuesFile: values.yaml
configMapGenerator:
  - name: datadog-extra
    literals:
      - DD_ENV=home
generatorOptions:
  disableNameSuffixHash: true
""")
    add("kubernetes/apps/default/pihole/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: pihole
spec:
  values:
    adminPassword: «S:pihole-admin-password:@@pihole_pw@@»
    admin:
      existingSecret: ""
      passwordKey: «N:key-name:password»
    DNS1: 1.1.1.1
""")
    add("kubernetes/apps/default/unifi/app/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: unpoller
spec:
  values:
    env:
      UP_UNIFI_DEFAULT_USER: unpoller
      UP_UNIFI_DEFAULT_PASS: «S:unifi-password:@@unifi_pw@@»
      UP_INFLUXDB_PW: «S:influxdb-password:@@admin_pw@@»
      UP_PROMETHEUS_DISABLE: "false"
""")
    add("kubernetes/apps/database/cloudnative-pg/cluster.yaml", """apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: postgres16
spec:
  instances: 3
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4-1
  superuserSecret:
    name: «N:secret-name:cloudnative-pg-secret»
  backup:
    barmanObjectStore:
      destinationPath: s3://cloudnative-pg/
      endpointURL: https://s3.example.com
      s3Credentials:
        accessKeyId:
          name: cloudnative-pg-secret
          key: «N:key-name:aws-access-key-id»
        secretAccessKey:
          name: cloudnative-pg-secret
          key: «N:key-name:aws-secret-access-key»
  bootstrap:
    initdb:
      secret:
        name: «N:secret-name:app-user»
""")
    add("kubernetes/apps/database/cloudnative-pg/externalsecret.yaml", """apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: cloudnative-pg
spec:
  secretStoreRef:
    kind: ClusterSecretStore
    name: onepassword-connect
  target:
    name: cloudnative-pg-secret
    template:
      engineVersion: v2
      metadata:
        labels:
          cnpg.io/reload: "true"
      data:
        username: postgres
        password: «N:eso-template:'{{ .POSTGRES_SUPER_PASS }}'»
        AWS_ACCESS_KEY_ID: «N:eso-template:'{{ .MINIO_ACCESS_KEY }}'»
        superuser-password: «S:postgres-password:@@cnpg_pw@@»
  dataFrom:
    - extract:
        key: cloudnative-pg
  data:
    - secretKey: «N:env-name:AWS_SECRET_ACCESS_KEY»
      remoteRef:
        key: minio
        property: «N:env-name:MINIO_SECRET_KEY»
    - secretKey: «N:camel-name:awsSecretAccessKey»
      remoteRef:
        key: «N:vault-path:secret/data/minio»
        property: secretKey
""")
    # ---------------------------------------------------------------- velero, volsync, restic
    add("kubernetes/apps/backup/velero/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: velero
spec:
  values:
    credentials:
      useSecret: true
      secretContents:
        cloud: |
          [default]
          aws_access_key_id=«S:aws-access-key-id:@@velero_id@@»
          aws_secret_access_key=«S:aws-secret-access-key:@@velero_sec@@»
    configuration:
      backupStorageLocation:
        - name: default
          provider: aws
          bucket: velero
""")
    add("kubernetes/apps/backup/volsync/replicationsource.yaml", """apiVersion: volsync.backube.with/v1alpha1
kind: ReplicationSource
metadata:
  name: home-assistant
spec:
  sourcePVC: home-assistant
  trigger:
    schedule: "0 * * * *"
  restic:
    copyMethod: Snapshot
    pruneIntervalDays: 7
    repository: «N:secret-name:home-assistant-restic-secret»
    cacheCapacity: 2Gi
    retain:
      daily: 7
""")
    add("scripts/backup.sh", """#!/usr/bin/env bash
# Nightly offsite backup of the NAS share.
set -euo pipefail
export AWS_ACCESS_KEY_ID=«S:aws-access-key-id:@@aws_id1@@»
export AWS_SECRET_ACCESS_KEY=«S:aws-secret-access-key:@@aws_sec1@@»
export RESTIC_REPOSITORY=s3:s3.eu-central-1.wasabisys.com/nas-backup
export RESTIC_PASSWORD=«S:restic-password:@@restic_pw@@»
export RESTIC_CACHE_DIR=/var/cache/restic
restic backup /mnt/tank/share --exclude-caches
restic forget --keep-daily 7 --keep-weekly 4 --prune
""")
    add("scripts/bootstrap.sh", """#!/usr/bin/env bash
set -euo pipefail
# Needs GITHUB_TOKEN and SOPS_AGE_KEY_FILE in the environment.
: "${GITHUB_TOKEN:?set GITHUB_TOKEN}"
export SOPS_AGE_KEY_FILE="${HOME}/.config/sops/age/keys.txt"
flux bootstrap github --owner=example --repository=home-ops --path=kubernetes/flux \\
  --token-auth --personal
kubectl create secret generic sops-age -n flux-system \\
  --from-file=age.agekey="${SOPS_AGE_KEY_FILE}"
echo "digest: «N:checksum:sha256:@@sha@@»"
""")
    add("scripts/rclone.conf", """[wasabi]
type = s3
provider = Wasabi
access_key_id = «S:aws-access-key-id:@@aws_id2@@»
secret_access_key = «S:aws-secret-access-key:@@aws_sec2@@»
endpoint = s3.eu-central-1.wasabisys.com

[crypt]
type = crypt
remote = wasabi:backup
password = «S:rclone-obscured-password:@@rclone_pass@@»
""")
    add("scripts/restic.env", """RESTIC_REPOSITORY=s3:https://s3.example.com/backup
RESTIC_PASSWORD=«S:restic-password:@@restic_pw2@@»
AWS_ACCESS_KEY_ID=«S:aws-access-key-id:@@aws_id5@@»
AWS_SECRET_ACCESS_KEY=«S:aws-secret-access-key:@@aws_sec5@@»
""")
    # ---------------------------------------------------------------- docker, registries
    add("docker/config.json", """{
  "auths": {
    "ghcr.io": {
      "auth": "«S:docker-auth:@@docker_auth@@»"
    },
    "https://index.docker.io/v1/": {}
  },
  "credsStore": "desktop"
}
""")
    add("kubernetes/apps/default/registry/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: zot
spec:
  values:
    imagePullSecrets:
      - name: «N:secret-name:regcred»
    mirror:
      credentials:
        ghcr.io:
          username: bot
          password: «S:github-token:@@ghcr_pw@@»
        registry.example.com:
          username: robot$ci
          password: «S:registry-password:@@registry_pw@@»
""")
    # ---------------------------------------------------------------- Renovate, Taskfiles, CI
    add(".github/renovate.json5", """{
  $schema: "https://docs.renovatebot.com/renovate-schema.json",
  extends: ["config:recommended", ":dependencyDashboard"],
  hostRules: [
    {
      matchHost: "ghcr.io",
      hostType: "docker",
      username: "example-bot",
      password: "«S:github-token:@@ghp@@»",
    },
    {
      matchHost: "gitlab.com",
      token: "«S:gitlab-token:@@glpat@@»",
    },
    {
      matchHost: "npm.pkg.github.com",
      encrypted: {
        token: "«N:renovate-encrypted:wcFMA@@sealed@@»",
      },
    },
  ],
}
""".replace("@@sealed@@", pick(B64, 300)))
    add(".github/workflows/renovate.yaml", """name: Renovate
on:
  schedule:
    - cron: "0 * * * *"
jobs:
  renovate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@«N:git-commit:@@commit@@»
      - uses: renovatebot/github-action@v41.0.2
        with:
          token: «N:gha-expression:${{ secrets.RENOVATE_TOKEN }}»
        env:
          LOG_LEVEL: debug
          RENOVATE_PASSWORD: «N:gha-expression:${{ secrets.BOT_PASSWORD }}»
""")
    add("Taskfile.yaml", """---
version: "3"
vars:
  KUBERNETES_DIR: "{{.ROOT_DIR}}/kubernetes"
  TALOSCONFIG: "{{.ROOT_DIR}}/talos/clusterconfig/talosconfig"
env:
  KUBECONFIG: "{{.ROOT_DIR}}/kubeconfig"
  SOPS_AGE_KEY_FILE: «N:path:~/.config/sops/age/keys.txt»
  CLOUDFLARE_API_TOKEN: «S:cloudflare-api-token:@@tf_cf@@»
  GITHUB_TOKEN: «N:task-template:'{{.GITHUB_TOKEN | default ""}}'»
tasks:
  reconcile:
    desc: Force Flux to pull in changes from your Git repository
    cmd: flux --namespace flux-system reconcile kustomization cluster --with-source
""")
    add(".env.sample", """# Copy to .env and fill in
CLOUDFLARE_API_TOKEN=«N:placeholder:<your-cloudflare-token>»
GITHUB_TOKEN=«N:placeholder:ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx»
AWS_ACCESS_KEY_ID=«N:doc-sample:@@akid_example@@»
AWS_SECRET_ACCESS_KEY=«N:doc-sample:@@secret_example@@»
GRAFANA_TOKEN=«S:grafana-service-account-token:@@glsa@@»
POSTGRES_PASSWORD=«N:placeholder:changeme»
SMTP_PASSWORD=«N:placeholder:REPLACE_ME»
""".replace("@@akid_example@@", AK + "IOSFODNN7EXAMPLE").replace(
        "@@secret_example@@", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"))
    add("terraform/cloudflare/terraform.tfvars", """cloudflare_account_id = "«N:account-id:@@pd_key2@@»"
cloudflare_api_token  = "«S:cloudflare-api-token:@@tf_cf@@»"
zone                  = "example.com"
""")
    add("terraform/proxmox/terraform.tfvars", """proxmox_endpoint  = "https://pve.home.arpa:8006/"
proxmox_api_token = "terraform@pve!provider=«S:proxmox-api-token:@@proxmox_secret@@»"
proxmox_password  = "«S:proxmox-password:@@tf_pm@@»"
ssh_public_key    = "«N:ssh-public-key:@@ssh_pub1@@»"
""")
    add("terraform/proxmox/variables.tf", """variable "proxmox_api_token" {
  type      = string
  sensitive = true
}
variable "proxmox_password" {
  description = "Password of the terraform@pve user"
  type        = string
  sensitive   = true
}
""")
    add("terraform/tfc/.terraformrc", """credentials "app.terraform.io" {
  token = "«S:terraform-cloud-token:@@tfc@@»"
}
""")
    add("docs/notifications.md", """# Notifications

Alerts go to Slack through a Flux `Provider`. The webhook lives in the `slack-webhook` Secret
(`kubernetes/flux/notifications/secret.sops.yaml`), never in the manifests:

```yaml
spec:
  secretRef:
    name: slack-webhook
```

The old PagerDuty integration key was `«S:pagerduty-key:@@pd_key@@»`, rotated since.

For local testing export a token first:

```sh
export GITHUB_TOKEN=«N:placeholder:<your-token>»
export LINEAR_API_KEY=«S:linear-key:@@linear@@»
curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user
```

Shopify app token for the shop sync job: «S:shopify-token:@@shopify@@»
Doppler service token used by the sync job: «S:doppler-token:@@doppler@@»
""")
    add("README.md", """# home-ops

My home Kubernetes cluster, managed by Flux and Renovate.

- Secrets are encrypted with SOPS and age (recipient «N:age-recipient:@@age_r1@@»).
- Terraform state lives in Terraform Cloud.
- Image `ghcr.io/home-operations/home-assistant@sha256:«N:image-digest:@@sha3@@»`.
- Bootstrap token in the docs: «N:doc-sample:abcdef.0123456789abcdef»
""")
    # ---------------------------------------------------------------- SOPS, sealed secrets
    add(".sops.yaml", """---
creation_rules:
  - path_regex: talos/.*\\.sops\\.ya?ml
    mac_only_encrypted: true
    age: «N:age-recipient:@@age_r1@@»
  - path_regex: kubernetes/.*\\.sops\\.ya?ml
    encrypted_regex: "^(data|stringData)$"
    mac_only_encrypted: true
    age: «N:age-recipient:@@age_r2@@»
  - path_regex: legacy/.*\\.ya?ml
    pgp: «N:pgp-fingerprint:@@pgp_fp@@»
""")
    sops_doc = """apiVersion: v1
kind: Secret
metadata:
    name: cluster-secrets
    namespace: flux-system
stringData:
    SECRET_DOMAIN: «N:sops-enc:@@enc1@@»
    SECRET_ACME_EMAIL: «N:sops-enc:@@enc2@@»
    SECRET_CLOUDFLARE_TOKEN: «N:sops-enc:@@enc3@@»
    SECRET_GRAFANA_PASSWORD: «N:sops-enc:@@enc4@@»
sops:
    kms: []
    age:
        - recipient: «N:age-recipient:@@age_r2@@»
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            «N:age-armor:@@armor@@»
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2024-11-02T10:12:44Z"
    mac: «N:sops-mac:@@mac@@»
    pgp: []
    encrypted_regex: ^(data|stringData)$
    mac_only_encrypted: true
    version: 3.9.1
"""
    for i in range(1, 5):
        sops_doc = sops_doc.replace("@@enc%d@@" % i, sops_enc())
    sops_doc = sops_doc.replace("@@armor@@", "\n            ".join(pick(B64, 64) for _ in range(4)))
    sops_doc = sops_doc.replace("@@mac@@", sops_enc(32))
    add("kubernetes/flux/vars/cluster-secrets.sops.yaml", sops_doc)
    talos_sops = """cluster:
    id: «N:sops-enc:@@enc5@@»
    secret: «N:sops-enc:@@enc1@@»
secrets:
    bootstraptoken: «N:sops-enc:@@enc2@@»
    secretboxencryptionsecret: «N:sops-enc:@@enc3@@»
trustdinfo:
    token: «N:sops-enc:@@enc4@@»
sops:
    age:
        - recipient: «N:age-recipient:@@age_r1@@»
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            «N:age-armor:@@armor@@»
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2024-11-02T10:12:44Z"
    mac: «N:sops-mac:@@mac@@»
    mac_only_encrypted: true
    version: 3.9.1
"""
    for i in range(1, 6):
        talos_sops = talos_sops.replace("@@enc%d@@" % i, sops_enc())
    talos_sops = talos_sops.replace("@@armor@@", "\n            ".join(pick(B64, 64) for _ in range(4)))
    talos_sops = talos_sops.replace("@@mac@@", sops_enc(32))
    add("talos/talsecret.sops.yaml", talos_sops)
    sealed_doc = """apiVersion: bitnami.com/v1alpha1
kind: SealedSecret
metadata:
  name: app-credentials
  namespace: default
  annotations:
    sealedsecrets.bitnami.com/cluster-wide: "false"
spec:
  encryptedData:
"""
    for key in ["password", "api-token", "AWS_SECRET_ACCESS_KEY", "client-secret", "webhook-url", "DB_PASSWORD"]:
        sealed_doc += "    %s: «N:sealed-secret:%s»\n" % (key, sealed())
    sealed_doc += """  template:
    metadata:
      name: app-credentials
    type: Opaque
"""
    add("kubernetes/apps/default/app/sealedsecret.yaml", sealed_doc)
    # ---------------------------------------------------------------- references and templates
    add("kubernetes/apps/default/app/secret-avp.yaml", """apiVersion: v1
kind: Secret
metadata:
  name: app
  annotations:
    avp.kubernetes.io/path: «N:vault-path:secret/data/apps/app»
type: Opaque
stringData:
  password: «N:avp-generic:<password>»
  api-token: «N:avp-path:<path:secret/data/apps/app#api-token>»
  db-url: «N:avp-path-in-url:postgres://app:<path:secret/data/db#password>@db:5432/app»
  vals: «N:vals-ref:ref+vault://secret/apps/app#/token»
  sops: «N:vals-ref:ref+sops://secrets/app.enc.yaml#/password»
  onepassword: «N:op-ref:op://home/app/password»
  flux: «N:flux-var:${APP_PASSWORD}»
""")
    add("charts/app/values.yaml", """## @section Global parameters
## @param auth.password Password for the admin user
## @param auth.existingSecret Name of an existing Secret with the password (key: `password`)
##
auth:
  ## e.g.
  ## password: mypassword
  password: «N:empty:""»
  existingSecret: «N:empty:""»
  secretKeys:
    adminPasswordKey: «N:key-name:admin-password»
    userPasswordKey: «N:key-name:user-password»
## @param metrics.serviceMonitor.bearerTokenFile
metrics:
  serviceMonitor:
    bearerTokenFile: «N:path:/var/run/secrets/kubernetes.io/serviceaccount/token»
    bearerTokenSecret:
      name: «N:secret-name:metrics-token»
      key: token
## @param apiKey API key for the upstream service (use `existingSecret` instead)
apiKey: «N:placeholder:your-api-key-here»
token: «N:placeholder:CHANGE_ME_PLEASE»
webhookSecret: «N:placeholder:"********"»
licenseKey: «N:placeholder:<license-key>»
signingKey: «N:placeholder:TODO-generate-me»
encryptionKey: «N:placeholder:xxxxxxxxxxxxxxxxxxxxxxxx»
""")
    add("charts/app/Chart.yaml", """apiVersion: v2
name: app
version: 1.2.3
""")
    add("charts/app/templates/secret.yaml", """apiVersion: v1
kind: Secret
metadata:
  name: {{ include "app.fullname" . }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
type: Opaque
data:
  password: «N:helm-template:{{ .Values.auth.password | default (randAlphaNum 24) | b64enc | quote }}»
  api-key: «N:helm-template:{{ required "apiKey is required" .Values.apiKey | b64enc }}»
""")
    add("charts/app/templates/deployment.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.fullname" . }}
spec:
  template:
    metadata:
      annotations:
        checksum/secret: «N:helm-template:{{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}»
    spec:
      containers:
        - name: app
          env:
            - name: ADMIN_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: «N:helm-template:{{ .Values.auth.existingSecret | default (include "app.fullname" .) }}»
                  key: «N:helm-template:{{ .Values.auth.secretKeys.adminPasswordKey }}»
            - name: API_TOKEN
              value: «N:helm-template:{{ .Values.apiToken | quote }}»
""")
    add("kubernetes/apps/default/app/kustomization.yaml", """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: default
resources:
  - ./sealedsecret.yaml
  - ./secret-avp.yaml
configMapGenerator:
  - name: app-config
    literals:
      - LOG_LEVEL=info
      - FEATURE_TOKEN_REFRESH=true
      - TOKEN_ISSUER=«N:url:https://auth.example.com»
      - SESSION_SECRET_NAME=«N:secret-name:app-session»
images:
  - name: ghcr.io/example/app
    digest: «N:image-digest:sha256:@@sha2@@»
""")
    add("kubernetes/apps/default/app/configmap-generated.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config-«N:configmap-hash:@@cfg_hash@@»
  labels:
    app.kubernetes.io/instance: app
    controller-revision-hash: «N:revision-hash:app-@@pod_hash@@»
  annotations:
    argocd.argoproj.io/tracking-id: «N:tracking-id:app:/ConfigMap:default/app-config»
    kustomize.toolkit.fluxcd.io/checksum: «N:checksum:@@sha@@»
data:
  ca.crt: |
    «N:public-cert:@@cert1@@»
  authorized_keys: «N:ssh-public-key:@@ssh_pub1@@»
  known_hosts: «N:ssh-public-key:github.com @@ssh_pub2@@»
  session.key.name: «N:key-name:session-key»
  secret.enabled: "true"
  token.ttl: 24h
  password.policy: «N:word:min-length-12»
  client.id: «N:uuid:@@uuid2@@»
binaryData:
  logo.png: «N:base64-binary:@@logo_b64@@»
""")
    add("kubernetes/apps/default/app/webhook.yaml", """apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: app-webhook
webhooks:
  - name: validate.app.example.com
    clientConfig:
      caBundle: «N:public-cert-b64:@@cert_b64@@»
      service:
        name: app-webhook
        namespace: default
    admissionReviewVersions: ["v1"]
    sideEffects: None
""")
    add("kubernetes/apps/default/app/grafana-dashboard.json", """{
  "annotations": {"list": []},
  "uid": "«N:dashboard-uid:P1809F7CD0C75ACF3»",
  "title": "App",
  "panels": [
    {"datasource": {"type": "prometheus", "uid": "«N:dashboard-uid:PBFA97CFB590B2093»"},
     "targets": [{"expr": "sum(rate(http_requests_total{job=\\"app\\"}[5m]))"}]}
  ],
  "templating": {"list": [{"name": "token_bucket", "query": "label_values(token_bucket)"}]}
}
""")
    add("kubernetes/apps/default/app/package-lock.json", """{
  "name": "app-ui",
  "lockfileVersion": 3,
  "packages": {
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "integrity": "«N:integrity:@@integrity@@»"
    }
  }
}
""")
    add("kubernetes/apps/monitoring/alertmanager/alertmanager.yaml", """apiVersion: monitoring.coreos.com/v1alpha1
kind: AlertmanagerConfig
metadata:
  name: alertmanager
spec:
  route:
    receiver: pushover
  receivers:
    - name: pushover
      pushoverConfigs:
        - userKey:
            name: «N:secret-name:alertmanager-secret»
            key: «N:key-name:ALERTMANAGER_PUSHOVER_USER_KEY»
          token:
            name: alertmanager-secret
            key: «N:key-name:ALERTMANAGER_PUSHOVER_TOKEN»
    - name: pagerduty
      pagerdutyConfigs:
        - routingKey:
            name: alertmanager-secret
            key: routing-key
    - name: slack
      slackConfigs:
        - apiURL:
            name: alertmanager-secret
            key: «N:key-name:slack-webhook-url»
""")
    add("kubernetes/apps/monitoring/alertmanager/config.yaml", """global:
  resolve_timeout: 5m
  smtp_auth_password_file: «N:path:/etc/alertmanager/secrets/smtp-password»
route:
  receiver: default
receivers:
  - name: default
    webhook_configs:
      - url: «N:url:http://alertmanager-discord:9094»
        http_config:
          authorization:
            credentials_file: /etc/alertmanager/secrets/token
    pagerduty_configs:
      - service_key: «S:pagerduty-service-key:@@pd_key2@@»
    email_configs:
      - auth_password: «N:placeholder:<secret>»
        auth_username: «N:word:alertmanager»
""")
    add("kubernetes/apps/default/app/job.yaml", """apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  template:
    spec:
      containers:
        - name: migrate
          image: ghcr.io/example/app-migrate:1.4.2
          command: ["/app/migrate"]
          args: ["--database-url", «N:url-var:"postgres://app:$(DB_PASSWORD)@db:5432/app"»]
          env:
            - name: DB_PASSWORD
              value: «W:demo-password:postgres»
            - name: ADMIN_PASSWORD
              value: «W:weak-default:admin123»
            - name: GRAFANA_ADMIN_PASSWORD
              value: «W:chart-default:prom-operator»
            - name: SECRET_KEY_BASE
              value: «N:placeholder:replace-with-output-of-rake-secret»
            - name: API_SECRET
              value: «N:word:correct-horse-battery-staple»
            - name: APP_PASSPHRASE
              value: «W:diceware:sleepy-otter-carbon-violin-42»
            - name: ENCRYPTION_KEY
              value: «S:encryption-key:@@webhook_secret@@»
            - name: WEBHOOK_TOKEN
              value: «S:webhook-token:@@flux_webhook_token@@»
            - name: LICENSE_KEY
              value: «S:license-key:@@license_key@@»
            - name: JFROG_API_KEY
              value: «S:jfrog-api-key:@@jfrog@@»
            - name: TWILIO_API_KEY
              value: «S:twilio-api-key:@@twilio@@»
            - name: GOOGLE_API_KEY
              value: «S:google-api-key:@@google@@»
            - name: NPM_TOKEN
              value: «S:npm-token:@@npm@@»
            - name: HUGGINGFACE_HUB_CACHE
              value: «N:path:/data/hf-cache»
""")
    add("kubernetes/apps/default/app/secrets-in-comments.yaml", """apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: license
spec:
  # old key, before we moved it to 1Password: «S:license-key-comment:@@vault_tok2@@»
  secretStoreRef:
    kind: ClusterSecretStore
    name: onepassword-connect
  target:
    name: license
  dataFrom:
    - extract:
        key: license
# age key for the old store (do not use): «S:age-secret-key:@@age_sk@@»
# token: «N:placeholder:<redacted>»
""")
    add("kubernetes/apps/default/app/ssh-deploy-key.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: git-sync
data:
  ssh-key: |
    «S:private-key:@@ssh_priv@@»
  GIT_SYNC_REPO: git@github.com:example/content.git
""")
    add("kubernetes/flux/flux-system/deploy-key.yaml", """apiVersion: v1
kind: Secret
metadata:
  name: home-ops-deploy-key
  namespace: flux-system
stringData:
  identity: |
    «S:private-key:@@flux_deploy_key@@»
  identity.pub: «X:secret-data:@@ssh_pub2@@»
  known_hosts: «X:secret-data:github.com @@ssh_pub1@@»
""")
    add("kubernetes/apps/ci/argocd-ci-token.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: ci-settings
data:
  ARGOCD_SERVER: argocd.example.com
  ARGOCD_AUTH_TOKEN: «S:argocd-jwt:@@argocd_jwt@@»
  VAULT_ADDR: https://vault.example.com:8200
  SOPS_AGE_KEY: «S:age-secret-key:@@age_sk2@@»
""")
    add("kubernetes/apps/default/mysql/statefulset.yaml", """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: mysql
spec:
  template:
    spec:
      containers:
        - name: mysql
          image: mysql:8.4
          env:
            - name: MYSQL_ROOT_PASSWORD
              value: «S:mysql-root-password:@@mysql_pw@@»
            - name: MYSQL_USER
              value: wordpress
            - name: MYSQL_PASSWORD
              value: «W:demo-password:wordpress»
          livenessProbe:
            exec:
              command: ["mysqladmin", "ping", "-p$(MYSQL_ROOT_PASSWORD)"]
""")
    add("kubernetes/apps/default/mongodb/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: mongodb
spec:
  values:
    auth:
      rootUser: root
      rootPassword: «S:mongodb-root-password:@@mongo_pw@@»
      usernames: ["app"]
      passwords: [«W:demo-password:"apppassword"»]
      databases: ["app"]
    metrics:
      enabled: true
""")
    add("kubernetes/apps/ai/ollama/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: open-webui
spec:
  values:
    extraEnvVars:
      - name: OPENAI_API_KEY
        value: «S:openai-key:@@openai@@»
      - name: WEBUI_SECRET_KEY
        value: «N:flux-var:${WEBUI_SECRET_KEY}»
      - name: OAUTH_CLIENT_SECRET
        value: «N:op-ref:op://home/open-webui/client-secret»
""")
    add("kubernetes/apps/default/vault-agent/deployment.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  template:
    metadata:
      annotations:
        vault.hashicorp.com/agent-inject: "true"
        vault.hashicorp.com/role: payments
        vault.hashicorp.com/agent-inject-secret-db: «N:vault-path:database/creds/payments»
        vault.hashicorp.com/agent-inject-template-db: |
          {{- with secret "database/creds/payments" -}}
          postgres://{{ .Data.username }}:{{ .Data.password }}@db:5432/payments
          {{- end }}
    spec:
      serviceAccountName: payments
""")


def more_files():
    """Adversarial look-alikes: what a scanner that judges key names and shapes gets wrong."""
    add(".env.example", """# Copy to .env; never commit real values
DB_PASSWORD=«N:empty:»
API_TOKEN=«N:placeholder:your_token_here»
SECRET_KEY=«N:command:$(openssl rand -hex 32)»
JWT_SECRET=«N:shell-default:"${JWT_SECRET:-}"»
PASSWORD_LENGTH=«N:number:32»
ADMIN_PASSWORD=«N:placeholder:__ADMIN_PASSWORD__»
SESSION_SECRET=«N:placeholder:<generate with openssl rand -base64 32>»
""")
    add("scripts/login.sh", """#!/usr/bin/env bash
set -euo pipefail
export VAULT_TOKEN=«N:command:$(vault login -token-only -method=oidc)»
TOKEN=«N:command:$(kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d)»
read -rs PASSWORD
token_file=«N:path:/etc/ci/token»
GITHUB_TOKEN="${GITHUB_TOKEN:-}"
export OPENSHIFT_TOKEN=«S:openshift-token:@@ocp_token@@»
argocd login argocd.example.com --username admin --password "$PASSWORD"
""")
    add("terraform/db/main.tf", """resource "random_password" "db" {
  length  = 32
  special = true
}

resource "kubernetes_secret" "db" {
  metadata {
    name = "db-credentials"
  }
  data = {
    password = «N:hcl-expression:random_password.db.result»
  }
}

provider "cloudflare" {
  api_token = «N:hcl-expression:var.cloudflare_api_token»
}

variable "token_ttl" {
  default = «N:duration:"24h"»
}
""")
    add("config/application.properties", """spring.datasource.url=«N:url-var:jdbc:postgresql://db:5432/app?user=app&password=${DB_PASSWORD}»
spring.datasource.password=«N:property-var:${DB_PASSWORD}»
spring.mail.password=«N:placeholder:<smtp-password>»
management.endpoints.web.exposure.include=health
app.jwt.secret-name=«N:secret-name:app-jwt»
app.legacy.connection=«N:format-string:Server=%s;User Id=%s;Password=%s;»
app.sqlserver.template=«N:format-string:Server={0};Database={1};Password={2};»
""")
    add("config/app.toml", """[server]
host = "0.0.0.0"
port = 8080

[database]
user = "app"
password = «N:empty:""»
password_env = «N:env-name:"DATABASE_PASSWORD"»

[oauth]
client_secret = «N:placeholder:"<client-secret>"»
""")
    add("kubernetes/apps/default/bank-vaults/deployment.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
spec:
  template:
    spec:
      containers:
        - name: orders
          env:
            - name: DB_PASSWORD
              value: «N:bank-vaults-ref:vault:secret/data/orders#DB_PASSWORD»
            - name: API_TOKEN
              value: «N:bank-vaults-ref:vault:secret/data/orders#API_TOKEN#2»
            - name: GRAFANA_API_KEY
              value: «N:file-provider:$__file{/etc/secrets/grafana_api_key}»
            - name: SLACK_WEBHOOK_URL
              value: «N:flux-var:${SLACK_WEBHOOK_URL}»
            - name: AZURE_CLIENT_ID
              value: «N:uuid:@@uuid4@@»
            - name: AZURE_TENANT_ID
              value: «N:uuid:@@uuid5@@»
            - name: TOKEN_AUDIENCE
              value: «N:word:api://orders»
            - name: MASKED_TOKEN
              value: «N:placeholder:ghp_************************************»
            - name: CI_PASSWORD
              value: «N:placeholder:dummy-password-for-ci»
---
apiVersion: v1
kind: Secret
metadata:
  name: orders
  annotations:
    vault.security.banzaicloud.io/vault-addr: https://vault.example.com:8200
stringData:
  password: «N:bank-vaults-ref:vault:secret/data/orders#DB_PASSWORD»
  token: «N:bank-vaults-ref:">>vault:secret/data/orders#API_TOKEN"»
""")
    add("kubernetes/apps/default/sealed-values/helmrelease.yaml", """apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app-sealed
spec:
  values:
    sealed:
      password: «N:sealed-secret:@@sealed2@@»
      apiToken: «N:sealed-secret:@@sealed3@@»
    homeassistant:
      password: «N:ha-secret-tag:!secret mqtt_password»
    postBuildToken: «N:placeholder:__TOKEN__»
    clientSecret: «N:placeholder:REPLACE_WITH_CLIENT_SECRET»
    license:
      key: «N:word:enterprise»
      secretName: «N:secret-name:license-key»
""")
    add("kubernetes/flux/apps.yaml", """apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 30m
  path: ./kubernetes/apps
  prune: true
  decryption:
    provider: sops
    secretRef:
      name: «N:secret-name:sops-age»
  postBuild:
    substitute:
      SECRET_DOMAIN_SUFFIX: «N:word:home-arpa»
      TOKEN_ISSUER: «N:url:https://auth.example.com»
    substituteFrom:
      - kind: Secret
        name: «N:secret-name:cluster-secrets»
""")
    add("kubernetes/apps/default/app/secrets.sops.env", "".join(
        "%s=«N:sops-enc:%s»\n" % (k, sops_enc()) for k in ["DB_PASSWORD", "API_TOKEN", "SMTP_PASS"])
        + "sops_age__list_0__map_recipient=«N:age-recipient:@@age_r1@@»\n"
        + "sops_mac=«N:sops-mac:%s»\n" % sops_enc(32)
        + "sops_lastmodified=2024-11-02T10:12:44Z\nsops_version=3.9.1\n")
    add("docs/development.md", """# Development

Start a local stack with `docker compose up`; it uses these throwaway defaults:

    DATABASE_URL=«W:localhost-default:postgres://postgres:postgres@localhost:5432/dev»
    AMQP_URL=«W:localhost-default:amqp://guest:guest@localhost:5672/»

To decrypt the store you need your own age key (`AGE-SECRET-KEY-1...`), never a shared one:

    export SOPS_AGE_KEY_FILE=~/.config/sops/age/keys.txt
    export AWS_SECRET_ACCESS_KEY=«N:placeholder:<your-secret-access-key>»

The cluster CA fingerprint is `«N:checksum:SHA256:@@ca_fp@@»`.
Dashboards: `«N:url:https://grafana.example.com/d/P1809F7CD0C75ACF3/app?orgId=1»`.
""")


def red_files():
    """Credentials in less common places, and look-alikes beside them."""
    add("scripts/create-secrets.sh", """#!/usr/bin/env bash
# One-off: creates the app Secrets by hand (before we had SOPS).
set -euo pipefail
kubectl -n default create secret generic app-db \\
  --from-literal=username=app \\
  --from-literal=password=«S:from-literal-password:@@cli_pw@@»
kubectl -n default create secret generic app-api --from-literal=token=«N:command:"$(openssl rand -hex 24)"»
helm upgrade --install grafana grafana/grafana --set adminPassword=«S:helm-set-password:@@cli_pw2@@» --set persistence.enabled=true
docker login ghcr.io -u example-bot --password «S:docker-login-password:@@ghcr_pw2@@»
docker login registry.example.com -u ci --password-stdin < «N:path:/run/secrets/registry-token»
argocd login argocd.example.com --username admin --password «N:shell-var:"$ARGOCD_PASSWORD"»
""")
    add("docker-compose.yaml", """services:
  db:
    image: postgres:16
    environment:
      - POSTGRES_USER=app
      - POSTGRES_PASSWORD=«S:compose-password:@@compose_pw@@»
      - POSTGRES_DB=app
  app:
    image: ghcr.io/example/app:1.4.2
    environment:
      DATABASE_URL: «S:compose-url:postgres://app:@@compose_pw@@@db:5432/app»
      SECRET_KEY_BASE: «S:rails-secret-key-base:@@rails_skb@@»
      REDIS_PASSWORD: «N:compose-var:${REDIS_PASSWORD:?set it}»
""")
    add("Dockerfile", """FROM node:22-alpine
ARG NPM_TOKEN
ENV NODE_ENV=production
ENV SENTRY_ORG=example
ENV DEPLOY_TOKEN=«S:dockerfile-env-token:@@docker_env_tok@@»
RUN echo "//npm.pkg.github.com/:_authToken=${NPM_TOKEN}" > .npmrc && npm ci && rm .npmrc
""")
    add("terraform/state/terraform.tfstate", """{
  "version": 4,
  "terraform_version": "1.9.8",
  "resources": [
    {
      "type": "random_password",
      "name": "db",
      "instances": [
        {
          "attributes": {
            "id": "none",
            "length": 32,
            "result": «W:tfstate-result:"@@tf_result@@"»
          }
        }
      ]
    },
    {
      "type": "proxmox_virtual_environment_user",
      "instances": [
        {
          "attributes": {
            "password": «S:tfstate-password:"@@tf_state_pw@@"»,
            "user_id": "terraform@pve"
          }
        }
      ]
    }
  ]
}
""")
    add("kubernetes/apps/crossplane/object.yaml", """apiVersion: kubernetes.crossplane.io/v1alpha2
kind: Object
metadata:
  name: tenant-db-secret
spec:
  forProvider:
    manifest:
      apiVersion: v1
      kind: Secret
      metadata:
        name: tenant-db
        namespace: tenant-a
      stringData:
        password: «S:nested-secret-password:@@nested_pw@@»
  providerConfigRef:
    name: «N:secret-name:kubernetes-provider»
""")
    add("kubernetes/apps/default/app/kustomization-generators.yaml", """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
secretGenerator:
  - name: app-api
    literals:
      - API_TOKEN=«S:generator-literal:@@gen_tok@@»
configMapGenerator:
  - name: app-env
    literals:
      - SMTP_PASSWORD=«S:configmap-generator-literal:@@gen_smtp@@»
      - SMTP_HOST=smtp.example.com
      - TOKEN_ENDPOINT=«N:url:https://auth.example.com/oauth/token»
""")
    add("kubernetes/apps/default/app/application-set.yaml", """apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: clusters
spec:
  generators:
    - list:
        elements:
          - cluster: edge-1
            url: https://10.0.30.10:6443
            bearerToken: «S:cluster-bearer-token:@@appset_tok@@»
          - cluster: edge-2
            url: https://10.0.30.11:6443
            bearerTokenSecret: «N:secret-name:edge-2-token»
  template:
    metadata:
      name: "app-{{cluster}}"
    spec:
      source:
        helm:
          parameters:
            - name: token
              value: «N:appset-template:"{{bearerToken}}"»
""")
    add("kubernetes/apps/default/app/args.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: exporter
spec:
  template:
    spec:
      containers:
        - name: exporter
          image: ghcr.io/example/exporter:2.1.0
          args:
            - --web.listen-address=:9100
            - --db.password=«S:container-arg-password:@@arg_pw@@»
            - --tls.key-file=«N:path:/etc/tls/tls.key»
            - "--api-token"
            - «S:container-arg-split:@@arg_tok@@»
""")
    add("kubernetes/apps/network/ingress.yaml", """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: grafana
  annotations:
    nginx.ingress.kubernetes.io/auth-type: basic
    nginx.ingress.kubernetes.io/auth-secret: «N:secret-name:monitoring/basic-auth-users»
    nginx.ingress.kubernetes.io/auth-realm: Authentication Required
    nginx.ingress.kubernetes.io/auth-url: «N:url:https://auth.example.com/api/verify?rd=https://grafana.example.com»
    traefik.ingress.kubernetes.io/router.middlewares: «N:word:network-basic-auth@kubernetescrd»
spec:
  ingressClassName: nginx
  tls:
    - hosts: [grafana.example.com]
      secretName: «N:secret-name:grafana-tls»
""")
    add("kubernetes/apps/default/app/crd.yaml", """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.example.com
spec:
  group: example.com
  names:
    kind: Database
    plural: databases
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                password:
                  type: string
                  description: «N:description:The password of the admin user. Use passwordSecretRef instead.»
                passwordSecretRef:
                  type: object
                tokenTTL:
                  type: string
                  pattern: «N:regex:'^[0-9]+(s|m|h)$'»
""")
    add("kubernetes/apps/default/app/serviceaccount.yaml", """apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  annotations:
    eks.amazonaws.com/role-arn: «N:arn:arn:aws:iam::123456789012:role/app-secrets-reader»
    iam.gke.io/gcp-service-account: «N:word:app-secrets@example-project.iam.gserviceaccount.com»
automountServiceAccountToken: false
---
apiVersion: v1
kind: Secret
metadata:
  name: app-token
  annotations:
    kubernetes.io/service-account.name: app
type: kubernetes.io/service-account-token
""")
    add("kubernetes/apps/monitoring/prometheus-rules.yaml", """apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: auth
spec:
  groups:
    - name: auth
      rules:
        - alert: TokenRefreshFailures
          expr: «N:promql:sum(rate(auth_token_refresh_failures_total{job="auth"}[5m])) > 0»
          annotations:
            summary: «N:description:Token refresh failing; check the client_secret rotation job»
            runbook_url: «N:url:https://runbooks.example.com/auth#token-refresh»
""")
    add("config/hosts.ini", """[k3s_masters]
k3s-0 ansible_host=10.0.10.10
k3s-1 ansible_host=10.0.10.11

[all:vars]
ansible_user=«N:word:ansible»
ansible_become_password=«S:ansible-inventory-password:@@inv_pw@@»
ansible_ssh_private_key_file=«N:path:~/.ssh/id_ed25519»
""")
    add("Makefile", """REGISTRY ?= ghcr.io/example
REGISTRY_TOKEN ?= «S:makefile-token:@@make_tok@@»
IMAGE_TAG ?= $(shell git rev-parse --short HEAD)

push:
\tdocker login $(REGISTRY) -u bot --password $(REGISTRY_TOKEN)
""")
    add("docs/secrets.md", """# Secrets

Create the age key with `age-keygen -o age.agekey` and never commit it: the key starts with
`AGE-SECRET-KEY-1` and the public recipient with `age1`. Store it in the cluster:

```sh
kubectl create secret generic sops-age --from-file=age.agekey=«N:path:./age.agekey»
```

A token looks like `ghp_` followed by 36 characters; a Vault token like `hvs.` and 24 or more.
The Helm chart's default password is `prom-operator`; change it with
`--set adminPassword=«N:placeholder:<your-password>»`.
""")


def miss_files():
    """Places the scanner missed before (issue 15): Ruby and PHP pairs in config text, a
    credential flag whose value is the next list item, header name/value lines in text that is
    not YAML, and hex digests under keys that also say token or secret. Its values are drawn
    last, so that the files before keep theirs."""
    for k, fn in {
        "php_secret": lambda: pick(ALNUM, 40), "php_dbpw": password, "rb_pw": password,
        "omni_pw": password, "flow_tok": lambda: pick(ALNUM, 40), "cmd_pw": lambda: pick(ALNUM, 24),
        "oneline_s3": lambda: pick(ALNUM, 40), "hook_bearer": lambda: pick(ALNUM, 48),
        "hook_key": lambda: pick(ALNUM, 32), "cfg_sha": sha256, "tok_sha1": lambda: openssl_hex(20),
        "api_hex": lambda: openssl_hex(32),
    }.items():
        val(k, fn)
    add("kubernetes/apps/default/gitlab/app/omnibus-config.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: gitlab-omnibus
  namespace: gitlab
data:
  gitlab.rb: |
    external_url 'https://gitlab.example.com'
    gitlab_rails['smtp_enable'] = true
    gitlab_rails['smtp_password'] = "«S:omnibus-smtp-password:@@omni_pw@@»"
    gitlab_rails['db_password'] = «N:ruby-call:File.read('/run/secrets/gitlab-db')»
  smtp_settings.rb: |
    ActionMailer::Base.smtp_settings = {
      :address => "smtp.example.com",
      :user_name => "gitlab",
      :password => "«S:ruby-smtp-password:@@rb_pw@@»",
      :token => «N:ruby-env:ENV['SMTP_TOKEN_VALUE']»,
    }
  config.php: |
    <?php
    $CONFIG = array (
      'secret' => '«S:php-secret:@@php_secret@@»',
      'dbpassword' => "«S:php-db-password:@@php_dbpw@@»",
      'dbpassword_ro' => «N:php-call:getenv('NEXTCLOUD_DB_PASSWORD_RO')»,
      'passwordsalt' => "«N:php-interpolation:$nextcloudPasswordSalt»",
    );
""")
    add("kubernetes/apps/default/app/args-split.yaml", """apiVersion: apps/v1
kind: Deployment
metadata:
  name: uploader
spec:
  template:
    spec:
      containers:
        - name: uploader
          image: ghcr.io/example/uploader:0.9.1
          args: ["--bucket=uploads", "--api-token", "«S:container-arg-flow-split:@@flow_tok@@»"]
          command:
            - /bin/uploader
            - --password
            - «S:container-command-split:@@cmd_pw@@»
            - --password-file
            - «N:path:/run/secrets/uploader-password»
            - --token
            - --verbose
""")
    add("kubernetes/apps/default/app/args-one-line.yaml", """apiVersion: batch/v1
kind: CronJob
metadata:
  name: offsite
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: offsite
              image: ghcr.io/example/offsite:1.2.0
              args: ["--s3-secret-key=«S:container-arg-one-line:@@oneline_s3@@»"]
""")
    add("argocd/notifications-webhooks-cm.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-notifications-cm
  namespace: argocd
data:
  service.webhook.deploy-hook: |
    url: {{.context.hookUrl}}/deployments
    headers:
    - name: Content-Type
      value: «N:header-value:application/json-patch+json»
    - name: Authorization
      value: Bearer «S:webhook-bearer-header:@@hook_bearer@@»
  service.webhook.status: |
    url: {{.context.statusUrl}}/api
    headers:
    - name: X-Api-Key
      value: «S:webhook-api-key-header:@@hook_key@@»
""")
    add("kubernetes/apps/default/app/digests.yaml", """apiVersion: v1
kind: ConfigMap
metadata:
  name: app-digests
data:
  CONFIG_TOKEN_SHA256: «N:digest:@@cfg_sha@@»
  SECRET_SHA1: «N:digest:@@tok_sha1@@»
  api_token: «S:hex-api-token:@@api_hex@@»
""")


def render(text):
    for k, v in V.items():
        text = text.replace("@@%s@@" % k, v)
    assert "@@" not in text, re.findall(r"@@\w+@@", text)
    return text


MARK = re.compile(r"«(S|W|N|X):([a-z0-9-]+):(.*?)»", re.S)
LABEL = {"S": "sure", "W": "weak", "N": "fake", "X": "neutral"}


def strip(text):
    """The text without markers, and (first line, last line, label, kind, value) per marker."""
    out, labels, pos = [], [], 0
    line = 1
    for m in MARK.finditer(text):
        before = text[pos:m.start()]
        out.append(before)
        line += before.count("\n")
        value = m.group(3)
        first = line
        line += value.count("\n")
        labels.append((first, line, LABEL[m.group(1)], m.group(2), value))
        out.append(value)
        pos = m.end()
    out.append(text[pos:])
    plain = "".join(out)
    assert "«" not in plain and "»" not in plain, plain
    return plain, labels


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT_DIR")
    out = sys.argv[1]
    gen_values()
    files()
    more_files()
    red_files()
    miss_files()
    rows = []
    for path, text in FILES:
        plain, labels = strip(render(text))
        dest = os.path.join(out, "repo", path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            f.write(plain)
        for first, last, label, kind, value in labels:
            rows.append("\t".join([path, str(first), str(last), label, kind,
                                   value.replace("\\", "\\\\").replace("\n", "\\n")]))
    with open(os.path.join(out, "labels.tsv"), "w") as f:
        f.write("# path\tfirst line\tlast line\tsure|weak|fake\tkind\tvalue (\\n escaped)\n")
        f.write("\n".join(rows) + "\n")
    counts = {}
    for r in rows:
        lab = r.split("\t")[3]
        counts[lab] = counts.get(lab, 0) + 1
    print("wrote %d files: %s" % (len(FILES), ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items()))))


if __name__ == "__main__":
    main()
