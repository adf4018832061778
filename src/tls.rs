//! Shared rustls client configurations (being implemented).
