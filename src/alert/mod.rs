//! Alerts: what to tell people, and getting it to them. `notification` is the payload, `notifier`
//! the receivers (one file per kind), `template` the message content, `truncate` the vendors' size limits.

pub mod notification;
pub mod notifier;
pub mod template;
pub mod truncate;

pub use notification::{Alert, AlertStatus, Notification};
pub use notifier::{ReceiverSpec, SendContext, SendError};
