//! Tidemark consensus domain: CometBFT, Tezos and plain-height double-sign protection (pure, no I/O).
