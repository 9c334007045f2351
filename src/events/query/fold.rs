//! The compiled form a query runs as: its AST rewritten once so that each
//! event costs less.
//!
//! - `a.b.c` becomes `a["b"]["c"]`. `cel` reads a select chain as a
//!   possibly qualified name first: it joins `a.b.c` into a string and
//!   asks for `a.b.c`, `a.b` and `a` in turn, allocating each time; event
//!   fields are never dotted names, so indexing says the same, directly.
//! - `duration("50ms")` and `timestamp("…")` of a literal are evaluated
//!   once and read back as constants (`@c0`), not parsed per event.

use cel::common::ast::{CallExpr, Expr, LiteralValue};
use cel::common::types::CelString;
use cel::common::value::Val;
use cel::{Context, IdedExpr, Value};

/// Constants' names start with this (not a name a query can write).
pub(super) const CONSTANT: &str = "@c";

pub(super) fn fold(expr: &mut IdedExpr, constants: &mut Vec<Box<dyn Val>>) {
    match &mut expr.expr {
        Expr::Select(select) => {
            fold(&mut select.operand, constants);
            if !select.test {
                let operand = std::mem::take(&mut *select.operand);
                let field = CelString::from(std::mem::take(&mut select.field));
                let key = IdedExpr {
                    id: expr.id,
                    expr: Expr::Literal(LiteralValue::String(field)),
                };
                expr.expr = Expr::Call(CallExpr {
                    func_name: "_[_]".to_string(),
                    target: None,
                    args: vec![operand, key],
                });
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &mut call.target {
                fold(target, constants);
            }
            for arg in &mut call.args {
                fold(arg, constants);
            }
            if let Some(value) = constant_call(call) {
                expr.expr = Expr::Ident(format!("{CONSTANT}{}", constants.len()));
                constants.push(value);
            }
        }
        Expr::List(list) => list.elements.iter_mut().for_each(|e| fold(e, constants)),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let cel::common::ast::EntryExpr::MapEntry(e) = &mut entry.expr {
                    fold(&mut e.key, constants);
                    fold(&mut e.value, constants);
                }
            }
        }
        Expr::Comprehension(c) => {
            for e in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                fold(e, constants);
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Struct(_) | Expr::Unspecified => {}
    }
}

/// The value of `duration("…")` or `timestamp("…")` of a literal.
fn constant_call(call: &CallExpr) -> Option<Box<dyn Val>> {
    if call.target.is_some() || !matches!(call.func_name.as_str(), "duration" | "timestamp") {
        return None;
    }
    let [IdedExpr {
        expr: Expr::Literal(LiteralValue::String(_)),
        ..
    }] = call.args.as_slice()
    else {
        return None;
    };
    let expr = IdedExpr {
        id: 0,
        expr: Expr::Call(call.clone()),
    };
    let value: Value = Value::resolve(&expr, &Context::with_env(super::ENV.clone())).ok()?;
    Box::<dyn Val>::try_from(value).ok()
}
