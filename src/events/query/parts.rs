//! A query taken apart for explanations: its top-level conditions, the
//! fields it reads, and values shown as a person reads them.

use cel::common::ast::{Expr, LiteralValue};
use cel::{IdedExpr, Value};

/// The operands of the top-level `&&`s of `text`, as written; `text`
/// alone when `||` or `?:` also appear at the top level (where splitting
/// at `&&` would change the meaning).
pub(super) fn conjuncts(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let (mut depth, mut quote, mut i, mut start) = (0i32, None::<u8>, 0, 0);
    let mut parts = Vec::new();
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
        } else {
            match b {
                b'"' | b'\'' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'|' | b'?' if depth == 0 => return vec![text.trim().to_string()],
                b'&' if depth == 0 && bytes.get(i + 1) == Some(&b'&') => {
                    parts.push(text[start..i].trim().to_string());
                    start = i + 2;
                    i += 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    parts.push(text[start..].trim().to_string());
    parts
}

/// The field paths `expr` reads, each once, in order.
pub(super) fn paths(expr: &IdedExpr, out: &mut Vec<String>) {
    if let Some(path) = path(expr) {
        if !out.contains(&path) {
            out.push(path);
        }
        return;
    }
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                paths(target, out);
            }
            for arg in &call.args {
                paths(arg, out);
            }
        }
        Expr::Select(select) => paths(&select.operand, out),
        Expr::List(list) => list.elements.iter().for_each(|e| paths(e, out)),
        Expr::Comprehension(c) => paths(&c.iter_range, out),
        _ => {}
    }
}

/// `a.b["c"].d` as written, if `expr` is such a chain from a name.
fn path(expr: &IdedExpr) -> Option<String> {
    match &expr.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(select) if !select.test => {
            Some(format!("{}.{}", path(&select.operand)?, select.field))
        }
        Expr::Call(call) if call.func_name == "_[_]" && call.args.len() == 2 => {
            let key = match &call.args[1].expr {
                Expr::Literal(LiteralValue::String(s)) => {
                    serde_json::Value::from(s.inner()).to_string()
                }
                Expr::Literal(LiteralValue::Int(i)) => i.inner().to_string(),
                _ => return None,
            };
            Some(format!("{}[{key}]", path(&call.args[0])?))
        }
        _ => None,
    }
}

/// A value as a person reads it: strings quoted, durations in ms.
pub(super) fn show(value: &Value) -> Option<String> {
    Some(match value {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => serde_json::Value::from(s.as_str()).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Duration(d) => format!("{}ms", d.num_microseconds()? as f64 / 1000.0),
        Value::Timestamp(t) => t.to_rfc3339(),
        Value::List(items) => {
            let shown: Vec<String> = items.iter().filter_map(show).collect();
            format!("[{}]", shown.join(", "))
        }
        _ => return None,
    })
}

/// The lowest seq `expr` can hold for, from its top-level `&&` operands
/// of the form `seq > N`, `seq >= N` (or `N < seq`, `N <= seq`): where a
/// reader of the log may start instead of its first event.
pub(super) fn first_seq(expr: &IdedExpr) -> Option<u64> {
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    let int = |e: &IdedExpr| match &e.expr {
        Expr::Literal(LiteralValue::Int(i)) => Some(*i.inner()),
        _ => None,
    };
    let is_seq = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(name) if name == "seq");
    let floor = |n: i64, strict: bool| u64::try_from(n).ok().map(|n| n + u64::from(strict));
    match (call.func_name.as_str(), call.args.as_slice()) {
        ("_&&_", [a, b]) => match (first_seq(a), first_seq(b)) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
        ("_>_" | "_>=_", [a, b]) if is_seq(a) => floor(int(b)?, call.func_name == "_>_"),
        ("_<_" | "_<=_", [a, b]) if is_seq(b) => floor(int(a)?, call.func_name == "_<_"),
        _ => None,
    }
}
