//! Templates of a playbook: every string of a step is a minijinja template rendered just before
//! the step runs, over `{params, steps.<name>.<output>, trigger}`; `when:` is an expression.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// The environment every playbook template is compiled in. Undefined values chain (they render
/// empty and are false) so that `when: "trigger.check.status == 'crit'"` is simply false when
/// nothing triggered the run, and a dry run renders steps that use the output of steps it only
/// planned.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

/// Whether `text` is a valid template (the syntax error otherwise).
pub fn check_template(env: &Environment<'_>, text: &str) -> Result<(), String> {
    env.template_from_str(text)
        .map(|_| ())
        .map_err(|e| format!("template syntax error: {e}"))
}

/// Whether `text` is a valid expression (the syntax error otherwise).
pub fn check_expression(env: &Environment<'_>, text: &str) -> Result<(), String> {
    env.compile_expression(text)
        .map(|_| ())
        .map_err(|e| format!("expression syntax error: {e}"))
}

/// `text` rendered over `ctx`.
pub fn render(env: &Environment<'_>, text: &str, ctx: &Value) -> Result<String, String> {
    env.render_str(text, minijinja::value::Serde(ctx))
        .map_err(|e| format!("rendering {text:?}: {e}"))
}

/// Whether the expression `text` is true over `ctx`.
pub fn evaluate(env: &Environment<'_>, text: &str, ctx: &Value) -> Result<bool, String> {
    let expr = env
        .compile_expression(text)
        .map_err(|e| format!("`when` {text:?}: {e}"))?;
    expr.eval(minijinja::value::Serde(ctx))
        .map(|v| v.is_true())
        .map_err(|e| format!("`when` {text:?}: {e}"))
}

/// `value` with every string in it rendered (keys are left alone).
pub fn render_value(env: &Environment<'_>, value: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(render(env, s, ctx)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(env, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(env, v, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}
