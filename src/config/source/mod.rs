//! Where rule files come from — placeholder while the Consul KV source is being written.
