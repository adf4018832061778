//! Rule files: the schema (serde structs), loading with `${…}` substitution, and validation that
//! reports every problem with its file, line and column.

mod de;
mod doc_reader;
pub mod duration;
mod issues;
mod load;
mod model;
mod node;
mod playbooks;
mod revision;
pub mod schema;
mod service;
pub mod source;
mod subst;
mod suite;
mod target;

pub use de::{DeError, OneOrMany, from_node, struct_fields};
pub use doc_reader::{DocReader, parse_file, read_kind_document};
pub use issues::{Diagnostic, Issues};
pub use load::{Receiver, RuleSet, load, load_with_env, parse_inline_check, yaml_files};
pub use model::{Check, CheckCommon, Mode, Origin, Severity};
pub use node::{Loc, Node, NodeValue, PathSeg, parse_yaml, path_text};
pub use playbooks::{DEFAULT_APPROVAL_TIMEOUT, PlaybooksConfig};
pub use revision::Revision;
pub use service::{Component, LowScore, ScoreModel, ServiceConfig};
pub use subst::{Env, ProcessEnv, Substituter};
pub use suite::{Selection, Suite};
pub use target::{
    ConsulTarget, GrpcTarget, HttpTarget, KubernetesTarget, PrometheusTarget, RedisTarget,
    SqlTarget, Target, TargetSpec, TcpTarget, TlsOptions, check_namespace_name,
};
