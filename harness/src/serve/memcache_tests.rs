//! Unit tests of the memcached protocol.
