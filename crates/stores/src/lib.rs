//! kustodian-stores
