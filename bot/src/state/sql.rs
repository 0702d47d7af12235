//! The SQL both backends speak: values, rows, and the statement runner every component uses.
//!
//! Components write one SQL text for both SQLite and PostgreSQL: positional parameters as
//! `?1`, `?2`… (rewritten to `$1`, `$2`… for PostgreSQL), `INSERT … ON CONFLICT … DO UPDATE`
//! for upserts, `RETURNING id` for new row ids. Values are the four SQLite storage classes the
//! state tables use; each backend converts them to and from its own types.

use super::StateError;

/// One SQL value, as bound to a parameter or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Value {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// Parameters for a statement: `args![a, b, c]` converts each with `Value::from`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[$crate::state::sql::Value] };
    ($($arg:expr),+ $(,)?) => { &[$($crate::state::sql::Value::from($arg)),+][..] };
}

/// Reading a column into a Rust value.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
    const EXPECTED: &'static str;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "an integer";
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<bool> {
        i64::from_value(value).map(|v| v != 0)
    }
    const EXPECTED: &'static str = "an integer (0 or 1)";
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<f64> {
        match value {
            Value::Real(v) => Some(*v),
            // SQLite stores a whole REAL as an integer when it can.
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "a real";
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "text";
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
    const EXPECTED: &'static str = T::EXPECTED;
}

/// One row of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(values: Vec<Value>) -> Row {
        Row { values }
    }

    /// Column `index` (from 0) as `T`; a missing column or another type is a typed error.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, StateError> {
        let value = self.values.get(index).ok_or(StateError::Decode {
            column: index,
            expected: T::EXPECTED,
            found: "no such column",
        })?;
        T::from_value(value).ok_or(StateError::Decode {
            column: index,
            expected: T::EXPECTED,
            found: value.kind(),
        })
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// What runs statements: the database itself, or an open transaction on it.
pub trait Exec {
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<usize, StateError>;
    /// Runs a query; returns its rows.
    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StateError>;

    /// Several statements without parameters, in the backend's own dialect (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StateError>;

    /// The first row of a query, if any.
    fn query_opt(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, StateError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }
}

/// `?N` (and bare `?`) placeholders as PostgreSQL's `$N`, outside quoted text.
pub(crate) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1usize;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// A migration's SQLite column types as PostgreSQL's: 64-bit integers (SQLite's INTEGER),
/// identity row ids, doubles, and text compared byte-wise (`COLLATE "C"`, SQLite's BINARY),
/// so ORDER BY and timestamp comparisons agree on both backends.
pub(crate) fn postgres_types(sql: &str) -> String {
    static RULES: std::sync::OnceLock<[(regex::Regex, &'static str); 4]> =
        std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        let re = |p: &str| regex::Regex::new(p).expect("fixed pattern");
        [
            (
                re(r"\bINTEGER PRIMARY KEY\b"),
                "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            ),
            (re(r"\bINTEGER\b"), "BIGINT"),
            (re(r"\bREAL\b"), "DOUBLE PRECISION"),
            (re(r"\bTEXT\b"), "TEXT COLLATE \"C\""),
        ]
    });
    let mut out = sql.to_owned();
    for (pattern, replacement) in rules {
        out = pattern.replace_all(&out, *replacement).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ?1 AND c IN (?3, ?2)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($3, $2)"
        );
        assert_eq!(numbered_placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(
            numbered_placeholders("SELECT '?1', \"a?\" WHERE x = ?12"),
            "SELECT '?1', \"a?\" WHERE x = $12"
        );
    }

    #[test]
    fn migration_types_become_postgres_types() {
        let sql = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, f REAL, s TEXT)";
        assert_eq!(
            postgres_types(sql),
            "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
             n BIGINT NOT NULL, f DOUBLE PRECISION, s TEXT COLLATE \"C\")"
        );
    }

    #[test]
    fn rows_decode_with_typed_errors() {
        let row = Row::new(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        let err = row.get::<i64>(2).unwrap_err().to_string();
        assert!(err.contains("column 2") && err.contains("integer"), "{err}");
        assert!(row.get::<String>(9).is_err());
    }
}
