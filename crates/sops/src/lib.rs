//! kustodian-sops
