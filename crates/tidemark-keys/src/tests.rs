//! Unit tests of the file format and decoders.
