//! Alerts: what to tell people, and getting it to them. `notification` is the payload, `notifier`
//! the receivers (one file per kind), `template` the message content, `truncate` the vendors' size limits.

pub mod inhibit;
pub mod lifecycle;
pub mod maintenance;
pub mod matcher;
pub mod notification;
pub mod notifier;
pub mod outbox;
pub mod policy;
pub mod route;
pub mod silence;
pub mod template;
pub mod truncate;

pub use notification::{Alert, AlertStatus, Notification, OwnMessage};
pub use notifier::{ReceiverSpec, SendContext, SendError};
