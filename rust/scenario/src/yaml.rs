//! A YAML tree that remembers where every node came from, and the writer that turns a tree back
//! into text.
//!
//! Reading goes through serde-saphyr's parser (granit) event by event, so that every mapping key
//! and every value keeps its line and column; validation can then point at the exact place of a
//! dangling reference or an impossible value, not only at syntax errors. Plain scalars are
//! resolved with the YAML 1.2 core schema (null, booleans, integers, floats, strings); quoted
//! scalars are always strings.

use std::collections::HashMap;
use std::fmt::Write as _;

use lambdaroute_core::yaml::MAX_NODES;
use serde_saphyr::budget::{EnforcingPolicy, check_yaml_budget};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

/// Where a node starts: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1; 0 (the default) for a node built by a program, not read from text.
    pub line: usize,
    /// Column, from 1; 0 (the default) for a node built by a program.
    pub column: usize,
}

/// A YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts in the text.
    pub pos: Pos,
    /// The scalar, list or mapping.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~`, an empty plain scalar, or an empty document.
    Null,
    /// `true` or `false` (also `True`, `TRUE`, `False`, `FALSE`).
    Bool(bool),
    /// A plain scalar that is a decimal, hexadecimal (`0x`) or octal (`0o`) integer.
    Int(i64),
    /// A plain scalar that is any other number, `.inf` and `.nan` included.
    Float(f64),
    /// A quoted or tagged scalar, or a plain one that is no other kind.
    Str(String),
    /// A list, its items in document order.
    Seq(Vec<Node>),
    /// Keys in document order, each with the position of the key itself.
    Map(Vec<(String, Pos, Node)>),
}

impl Value {
    /// What a user would call this kind of value in an error message.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "nothing (null)".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Str(s) => format!("the string \"{s}\""),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the problem is: the offending key or value, or where the parser stopped.
    pub pos: Pos,
    /// What is wrong, as the parser or the budget check says it.
    pub message: String,
}

/// Parses one YAML document into a located tree. An empty document is `Null`.
///
/// The text is held to core's YAML budget first ([`lambdaroute_core::yaml::budget`]: events,
/// nodes, depth, anchors, aliases), and the tree to [`lambdaroute_core::yaml::MAX_NODES`]
/// nodes counting those aliases repeat, so that nested aliases ("billion laughs") fail at once.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let report = check_yaml_budget(
        text,
        lambdaroute_core::yaml::budget(),
        EnforcingPolicy::AllContent,
    )
    .map_err(|e| SyntaxError {
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: e.info().to_string(),
    })?;
    if let Some(breach) = report.breached {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "the file exceeds the limits of a scenario file ({breach:?}); at most {} nodes \
                 nested {} deep and {} aliases",
                MAX_NODES,
                lambdaroute_core::yaml::MAX_DEPTH,
                lambdaroute_core::yaml::MAX_ALIASES
            ),
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    for item in &mut parser {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        match event {
            Event::DocumentStart(..) => {
                builder.documents += 1;
                if builder.documents > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "a scenario file holds one YAML document; found a second one"
                            .into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = if style == ScalarStyle::Plain && tag.is_none() {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                builder.count(1, pos)?;
                builder.push(Node { pos, value }, anchor, 1)?;
            }
            Event::SequenceStart(_, anchor, _) => {
                builder.count(1, pos)?;
                builder.open(pos, Value::Seq(Vec::new()), anchor);
            }
            Event::MappingStart(_, anchor, _) => {
                builder.count(1, pos)?;
                builder.open(pos, Value::Map(Vec::new()), anchor);
            }
            Event::SequenceEnd | Event::MappingEnd => builder.close()?,
            Event::Alias(id) => {
                let size = builder
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    })?;
                builder.count(size, pos)?;
                let node = builder.anchors[&id].0.clone();
                builder.push(Node { pos, ..node }, 0, size)?;
            }
            _ => {}
        }
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos { line: 1, column: 1 },
        value: Value::Null,
    }))
}

/// An open collection: the node, its anchor id, its size in nodes so far and, for a mapping, a
/// key waiting for its value.
type Open = (Node, usize, usize, Option<(String, Pos)>);

#[derive(Default)]
struct Builder {
    /// Open collections, each with its anchor id and, for mappings, a key waiting for its value.
    stack: Vec<Open>,
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    documents: usize,
    /// Nodes in the tree so far, counting each node an alias repeats.
    nodes: usize,
}

impl Builder {
    /// Counts `n` more nodes in the tree; an error past [`MAX_NODES`].
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "the file expands to more than {MAX_NODES} nodes (aliases included); \
                     are aliases nested in aliases?"
                ),
            });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, value: Value, anchor: usize) {
        self.stack.push((Node { pos, value }, anchor, 1, None));
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let (node, anchor, size, _) = self.stack.pop().expect("parser balances collections");
        self.push(node, anchor, size)
    }

    /// Adds a complete node of `size` nodes to the open collection (or makes it the root).
    fn push(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some((parent, _, parent_size, pending_key)) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        *parent_size = parent_size.saturating_add(size);
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => {
                match pending_key.take() {
                    None => {
                        let key = match node.value {
                            Value::Str(s) => s,
                            Value::Int(i) => i.to_string(),
                            Value::Bool(b) => b.to_string(),
                            Value::Float(f) => f.to_string(),
                            Value::Null => "null".into(),
                            Value::Seq(_) | Value::Map(_) => {
                                return Err(SyntaxError {
                                pos: node.pos,
                                message: "a mapping key must be a plain name, not a list or a mapping".into(),
                            });
                            }
                        };
                        if let Some((_, first, _)) = entries.iter().find(|(k, _, _)| *k == key) {
                            return Err(SyntaxError {
                                pos: node.pos,
                                message: format!(
                                    "duplicate key `{key}` (first given at line {})",
                                    first.line
                                ),
                            });
                        }
                        *pending_key = Some((key, node.pos));
                    }
                    Some((key, pos)) => entries.push((key, pos, node)),
                }
            }
            _ => unreachable!("only collections are pushed on the stack"),
        }
        Ok(())
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(Ok(i)) = s.strip_prefix("0x").map(|h| i64::from_str_radix(h, 16)) {
        return Value::Int(i);
    }
    if let Some(Ok(i)) = s.strip_prefix("0o").map(|o| i64::from_str_radix(o, 8)) {
        return Value::Int(i);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::Int(i);
    }
    let numeric = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if numeric
        && digits.bytes().any(|b| b.is_ascii_digit())
        && let Ok(f) = s.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

// ===== writing =====

/// A value to write: like [`Value`] without positions, with the choice of flow style.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// Written `null`.
    Null,
    /// Written `true` or `false`.
    Bool(bool),
    /// Written in decimal.
    Int(i64),
    /// Written so that it reads back as a float: `10.0`, `0.1`, `.inf`, `.nan`.
    Float(f64),
    /// Written plain when that reads back as the same string, else double-quoted.
    Str(String),
    /// A list, on one line (`[a, b]`) when it fits, else one `- ` item per line.
    Seq(Vec<Out>),
    /// A mapping in the given key order, on one line (`{a: 1}`) when it fits, else a block.
    Map(Vec<(String, Out)>),
}

impl From<&str> for Out {
    fn from(s: &str) -> Self {
        Out::Str(s.to_string())
    }
}
impl From<String> for Out {
    fn from(s: String) -> Self {
        Out::Str(s)
    }
}
impl From<f64> for Out {
    fn from(f: f64) -> Self {
        Out::Float(f)
    }
}
impl From<u64> for Out {
    fn from(i: u64) -> Self {
        Out::Int(i as i64)
    }
}
impl From<u32> for Out {
    fn from(i: u32) -> Self {
        Out::Int(i64::from(i))
    }
}
impl From<bool> for Out {
    fn from(b: bool) -> Self {
        Out::Bool(b)
    }
}

/// Writes a tree as block YAML; small mappings and lists of scalars go on one line (flow style).
pub fn emit(root: &Out) -> String {
    let mut out = String::new();
    match root {
        Out::Map(entries) => emit_entries(&mut out, entries, 0),
        other => {
            out.push_str(&inline(other).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

const FLOW_WIDTH: usize = 100;

fn emit_entries(out: &mut String, entries: &[(String, Out)], indent: usize) {
    for (key, value) in entries {
        let pad = " ".repeat(indent);
        let key = scalar_str(key);
        match value {
            Out::Map(inner) if !fits_inline(value, indent + key.len()) && !inner.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                emit_entries(out, inner, indent + 2);
            }
            Out::Seq(items) if !fits_inline(value, indent + key.len()) && !items.is_empty() => {
                let _ = writeln!(out, "{pad}{key}:");
                emit_items(out, items, indent);
            }
            _ => {
                let text = inline(value).expect("fits_inline or scalar");
                let _ = writeln!(out, "{pad}{key}: {text}");
            }
        }
    }
}

fn emit_items(out: &mut String, items: &[Out], indent: usize) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Out::Map(entries) if !fits_inline(item, indent + 2) && !entries.is_empty() => {
                // First entry on the dash line, the rest indented under it.
                let mut block = String::new();
                emit_entries(&mut block, entries, indent + 2);
                let block = block.trim_start();
                let _ = write!(out, "{pad}- {block}");
            }
            Out::Seq(inner) if !fits_inline(item, indent + 2) && !inner.is_empty() => {
                let _ = writeln!(out, "{pad}-");
                emit_items(out, inner, indent + 2);
            }
            _ => {
                let text = inline(item).expect("fits_inline or scalar");
                let _ = writeln!(out, "{pad}- {text}");
            }
        }
    }
}

fn fits_inline(value: &Out, used: usize) -> bool {
    let nested = match value {
        Out::Map(entries) => entries.iter().any(|(_, v)| is_nested_collection(v)),
        Out::Seq(items) => items.iter().any(is_nested_collection),
        _ => false,
    };
    !nested && inline(value).is_some_and(|t| t.len() + used + 4 <= FLOW_WIDTH)
}

fn is_nested_collection(v: &Out) -> bool {
    match v {
        Out::Map(m) => !m.is_empty(),
        Out::Seq(s) => s.iter().any(|x| matches!(x, Out::Map(_) | Out::Seq(_))),
        _ => false,
    }
}

/// One-line (flow) text of a value.
fn inline(value: &Out) -> Option<String> {
    Some(match value {
        Out::Null => "null".into(),
        Out::Bool(b) => b.to_string(),
        Out::Int(i) => i.to_string(),
        Out::Float(f) => float_str(*f),
        Out::Str(s) => scalar_str(s),
        Out::Seq(items) => {
            let parts: Option<Vec<String>> = items.iter().map(inline).collect();
            format!("[{}]", parts?.join(", "))
        }
        Out::Map(entries) => {
            let parts: Option<Vec<String>> = entries
                .iter()
                .map(|(k, v)| inline(v).map(|v| format!("{}: {v}", scalar_str(k))))
                .collect();
            format!("{{{}}}", parts?.join(", "))
        }
    })
}

fn float_str(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }
    } else if f == f.trunc() && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        // Rust's shortest round-trip representation.
        format!("{f}")
    }
}

/// A string as a plain scalar when that reads back as the same string, else double-quoted.
fn scalar_str(s: &str) -> String {
    let plain_safe = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/' || c == '.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && resolve_plain(s) == Value::Str(s.to_string());
    if plain_safe {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_with_the_core_schema() {
        assert_eq!(resolve_plain("12"), Value::Int(12));
        assert_eq!(resolve_plain("-1.5e3"), Value::Float(-1500.0));
        assert_eq!(resolve_plain("true"), Value::Bool(true));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("10.0.0.1"), Value::Str("10.0.0.1".into()));
        assert_eq!(resolve_plain("s1"), Value::Str("s1".into()));
    }

    #[test]
    fn positions_point_at_keys_and_values() {
        let node = parse("a: 1\nb:\n  - x\n  - {c: 2}\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        assert_eq!(entries[1].1, Pos { line: 2, column: 1 });
        let Value::Seq(items) = &entries[1].2.value else {
            panic!()
        };
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
    }

    #[test]
    fn written_text_reads_back_the_same() {
        let tree = Out::Map(vec![
            ("name".into(), "a b".into()),
            ("ip".into(), "10.0.0.1".into()),
            ("n".into(), Out::Float(10.0)),
            ("yes".into(), "true".into()),
            (
                "list".into(),
                Out::Seq(vec![Out::Map(vec![
                    ("a".into(), "s1".into()),
                    ("b".into(), Out::Int(2)),
                ])]),
            ),
        ]);
        let text = emit(&tree);
        let node = parse(&text).unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        assert_eq!(entries[0].2.value, Value::Str("a b".into()));
        assert_eq!(entries[1].2.value, Value::Str("10.0.0.1".into()));
        assert_eq!(entries[2].2.value, Value::Float(10.0));
        assert_eq!(entries[3].2.value, Value::Str("true".into()));
    }
}
