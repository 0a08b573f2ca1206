//! kustodian-render
