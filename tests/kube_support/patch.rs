//! Patches as the API server applies them: JSON merge patch (RFC 7386; strategic merge and
//! server-side apply are treated as merge here) and JSON patch (RFC 6902: add, remove, replace,
//! test, copy, move).

use serde_json::Value;

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let map = target.as_object_mut().expect("made an object above");
    for (k, v) in patch_map {
        if v.is_null() {
            map.remove(k);
        } else {
            merge(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6901 pointer tokens (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {pointer:?}"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
    let mut v = doc;
    for t in toks {
        v = match v {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path element {t:?} does not exist"))?;
    }
    Ok(v)
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) if last == "-" => a.push(value),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if i > a.len() {
                return Err(format!("index {i} out of range"));
            }
            a.insert(i, value);
        }
        _ => return Err(format!("cannot add at {path:?}")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let toks = tokens(path)?;
    let (last, init) = toks
        .split_last()
        .ok_or("cannot remove the whole document")?;
    match parent(doc, init)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("{path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            (i < a.len())
                .then(|| a.remove(i))
                .ok_or_else(|| format!("index {i} out of range"))
        }
        _ => Err(format!("cannot remove {path:?}")),
    }
}

fn get(doc: &Value, path: &str) -> Result<Value, String> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| format!("{path:?} does not exist"))
}

/// Applies an RFC 6902 patch (an array of operations) to `doc`; all or nothing.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch is an array")?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("an operation needs a path")?;
        let from = || op["from"].as_str().ok_or("an operation needs from");
        match op["op"].as_str() {
            Some("add") => add(&mut work, path, op["value"].clone())?,
            Some("remove") => drop(remove(&mut work, path)?),
            Some("replace") => {
                remove(&mut work, path)?;
                add(&mut work, path, op["value"].clone())?;
            }
            Some("test") if get(&work, path)? != op["value"] => {
                return Err(format!("test of {path:?} failed"));
            }
            Some("test") => {}
            Some("copy") => {
                let v = get(&work, from()?)?;
                add(&mut work, path, v)?;
            }
            Some("move") => {
                let v = remove(&mut work, from()?)?;
                add(&mut work, path, v)?;
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}
