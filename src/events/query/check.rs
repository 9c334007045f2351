//! What a query is held to before any event is read: every name it uses is
//! one events have, every function exists, literals compared with a field
//! are of the field's type, and durations, timestamps and regexes written
//! as literals parse. `cel` checks syntax only; without this a misspelt
//! field would silently match nothing.

use cel::common::ast::{CallExpr, Expr, LiteralValue};
use cel::{Context, Env, ExecutionError, IdedExpr, Program};

use super::fields::{Ns, Ty};

/// One problem, at a byte offset of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub offset: usize,
    pub message: String,
}

/// CEL's type names, which are identifiers too (`type(x) == int`).
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "timestamp",
    "duration",
    "dyn",
];

pub(super) struct Checker<'a> {
    env: &'a Env,
    program: &'a Program,
    /// Comprehension variables in scope (`t` in `kafka.topics.exists(t, …)`).
    scope: Vec<String>,
    pub problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(env: &'a Env, program: &'a Program) -> Self {
        Self {
            env,
            program,
            scope: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Checks the whole query, which must be true or false.
    pub(super) fn check_query(&mut self) {
        let root = self.program.expression();
        let ty = self.check(root);
        if let Some(ty) = ty.filter(|t| *t != Ty::Bool && *t != Ty::Dyn) {
            self.problem(
                root,
                format!(
                    "a query must be true or false, and this is a {}: compare it \
                     (`== …`, `> …`) or test it (`has(…)`)",
                    ty.name()
                ),
            );
        }
    }

    fn offset(&self, expr: &IdedExpr) -> usize {
        self.program
            .source_info()
            .offset_for(expr.id)
            .map_or(0, |(start, _)| start as usize)
    }

    fn problem(&mut self, expr: &IdedExpr, message: String) {
        let offset = self.offset(expr);
        self.problems.push(Problem { offset, message });
    }

    /// The expression's type where it is known before an event.
    fn check(&mut self, expr: &IdedExpr) -> Option<Ty> {
        match &expr.expr {
            Expr::Ident(name) => self.ident(expr, name),
            Expr::Select(select) => {
                let operand = self.check(&select.operand);
                let ty = self.member(expr, operand, &select.field);
                if select.test {
                    Some(Ty::Bool)
                } else {
                    ty
                }
            }
            Expr::Call(call) => self.call(expr, call),
            Expr::Literal(literal) => Some(literal_ty(literal)),
            Expr::List(list) => {
                for e in &list.elements {
                    self.check(e);
                }
                None
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(e) = &entry.expr {
                        self.check(&e.key);
                        self.check(&e.value);
                    }
                }
                None
            }
            Expr::Comprehension(c) => {
                self.check(&c.iter_range);
                let bound = 1 + usize::from(c.iter_var2.is_some()) + 1;
                self.scope.push(c.iter_var.clone());
                self.scope.extend(c.iter_var2.clone());
                self.scope.push(c.accu_var.clone());
                self.check(&c.accu_init);
                self.check(&c.loop_cond);
                self.check(&c.loop_step);
                let result = self.check(&c.result);
                self.scope.truncate(self.scope.len() - bound);
                result
            }
            Expr::Struct(_) | Expr::Unspecified => None,
        }
    }

    fn ident(&mut self, expr: &IdedExpr, name: &str) -> Option<Ty> {
        if self.scope.iter().any(|s| s == name) || TYPE_NAMES.contains(&name) {
            return None;
        }
        let ty = Ns::Root.field(name);
        if ty.is_none() {
            let message = format!(
                "unknown name `{name}`; expected one of: {}",
                names(Ns::Root)
            );
            self.problem(expr, message);
        }
        ty
    }

    /// `operand.field` (or `operand["field"]`).
    fn member(&mut self, expr: &IdedExpr, operand: Option<Ty>, field: &str) -> Option<Ty> {
        match operand? {
            Ty::Ns(ns) => {
                let ty = ns.field(field);
                if ty.is_none() {
                    let message = format!(
                        "unknown field `{field}` of `{}`; expected one of: {}",
                        ns.path(),
                        names(ns)
                    );
                    self.problem(expr, message);
                }
                ty
            }
            Ty::Headers => Some(Ty::String),
            Ty::Dyn => None,
            other => {
                let message = format!("a {} has no fields (`.{field}`)", other.name());
                self.problem(expr, message);
                None
            }
        }
    }

    fn call(&mut self, expr: &IdedExpr, call: &CallExpr) -> Option<Ty> {
        let target = call.target.as_deref().map(|t| self.check(t));
        let args: Vec<Option<Ty>> = call.args.iter().map(|a| self.check(a)).collect();
        let name = call.func_name.as_str();
        match name {
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                self.compare(&call.args, &args);
                Some(Ty::Bool)
            }
            "_&&_" | "_||_" | "!_" | "@in" | "@not_strictly_false" => Some(Ty::Bool),
            "_[_]" => {
                let key = call.args.get(1).and_then(string_literal);
                match (args.first().copied().flatten(), key) {
                    (Some(Ty::Ns(ns)), Some(key)) => self.member(expr, Some(Ty::Ns(ns)), key),
                    (Some(Ty::Headers), _) => Some(Ty::String),
                    (Some(Ty::Strings), _) => Some(Ty::String),
                    _ => None,
                }
            }
            "duration" | "timestamp" if target.is_none() => {
                if let Some(text) = call.args.first().and_then(string_literal) {
                    self.literal_call(&call.args[0], name, text);
                }
                Some(if name == "duration" {
                    Ty::Duration
                } else {
                    Ty::Timestamp
                })
            }
            "matches" => {
                let pattern = call.args.last().and_then(string_literal);
                if let Some(pattern) = pattern {
                    if let Err(e) = regex::Regex::new(pattern) {
                        self.problem(&call.args[call.args.len() - 1], format!("bad regex: {e}"));
                    }
                }
                Some(Ty::Bool)
            }
            "contains" | "startsWith" | "endsWith" => Some(Ty::Bool),
            "size" => Some(Ty::Int),
            _ if name.starts_with('_') || name.starts_with('@') => None,
            _ => {
                if !self.function_exists(name, target.is_some()) {
                    self.problem(expr, format!("unknown function `{name}`"));
                }
                None
            }
        }
    }

    /// A literal compared with a field of another type never matches: say
    /// so now rather than match nothing.
    fn compare(&mut self, operands: &[IdedExpr], types: &[Option<Ty>]) {
        let [Some(a), Some(b)] = [
            types.first().copied().flatten(),
            types.get(1).copied().flatten(),
        ] else {
            return;
        };
        if compatible(a, b) {
            return;
        }
        let literal = match (&operands[0].expr, &operands[1].expr) {
            (_, Expr::Literal(_)) => 1,
            (Expr::Literal(_), _) => 0,
            _ => 1,
        };
        let field = types[1 - literal].unwrap_or(Ty::Dyn);
        let other = types[literal].unwrap_or(Ty::Dyn);
        let hint = match (field, other) {
            (Ty::Duration, Ty::Int | Ty::Double) => " (write a duration: `duration(\"50ms\")`)",
            (Ty::Int, Ty::String) => " (write the number without quotes)",
            _ => "",
        };
        let message = format!(
            "cannot compare a {} with a {}{hint}",
            field.name(),
            other.name()
        );
        self.problem(&operands[literal], message);
    }

    /// `duration("…")` and `timestamp("…")` of a literal: evaluated now.
    fn literal_call(&mut self, expr: &IdedExpr, name: &str, text: &str) {
        let source = format!("{name}({})", serde_json::Value::from(text));
        let result = self
            .env
            .compile(&source)
            .ok()
            .map(|p| p.execute(&Context::default()));
        if let Some(Err(_)) = result {
            let expected = if name == "duration" {
                "a duration such as \"50ms\", \"1.5s\" or \"2m\""
            } else {
                "an RFC 3339 timestamp such as \"2026-12-03T10:00:00Z\""
            };
            self.problem(expr, format!("bad {name} {text:?}: expected {expected}"));
        }
    }

    /// Whether `cel` knows a function of this name (called as a method or
    /// not), found by calling it without arguments: an unknown name fails
    /// differently from a known one called wrongly.
    fn function_exists(&self, name: &str, member: bool) -> bool {
        let source = if member {
            format!("null.{name}()")
        } else {
            format!("{name}()")
        };
        let Ok(program) = self.env.compile(&source) else {
            return true;
        };
        !matches!(
            program.execute(&Context::default()),
            Err(ExecutionError::UndeclaredReference(_))
        )
    }
}

fn compatible(a: Ty, b: Ty) -> bool {
    let numeric = |t| matches!(t, Ty::Int | Ty::Double);
    a == b || (numeric(a) && numeric(b)) || a == Ty::Dyn || b == Ty::Dyn
}

fn literal_ty(literal: &LiteralValue) -> Ty {
    match literal {
        LiteralValue::Boolean(_) => Ty::Bool,
        LiteralValue::Double(_) => Ty::Double,
        LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
        LiteralValue::String(_) => Ty::String,
        LiteralValue::Bytes(_) | LiteralValue::Null => Ty::Dyn,
    }
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

fn names(ns: Ns) -> String {
    ns.fields()
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
