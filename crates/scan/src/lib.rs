//! kustodian-scan
