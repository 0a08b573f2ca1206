//! kustodian-refs
