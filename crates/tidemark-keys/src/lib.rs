//! Tidemark software key backend: an encrypted keystore holding a BIP32 seed and ed25519 keys.
