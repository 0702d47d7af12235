//! `deckhand state migrate|export` and the state part of `deckhand check`: what needs every
//! component's migrations, so it lives above the components, not in `state`.

use std::path::Path;

use deckhand_support::secret::Secret;

use crate::state::{Component, Db, StateConfig, StateError};

/// Every component with tables of its own (each names itself once, in its `COMPONENT`).
pub fn components() -> [Component; 5] {
    [
        crate::alerts::store::COMPONENT,
        crate::cost::store::COMPONENT,
        crate::chat::discord::outbox::COMPONENT,
        crate::chat::ledger::COMPONENT,
        crate::sched::store::COMPONENT,
    ]
}

/// Brings the core and every component up to this build's schema; returns the versions.
pub fn migrate(db: &Db) -> Result<Vec<(String, i64)>, StateError> {
    for component in components() {
        db.ensure(&component)?;
    }
    let mut versions = vec![("core".to_owned(), db.schema_version()?)];
    versions.extend(db.component_versions()?);
    Ok(versions)
}

/// How many rows of each table went over.
pub type ExportReport = Vec<(String, usize)>;

/// Copies every table of `source` into a new SQLite file (refused when it exists), at the
/// same schema versions, row ids kept: what `[state] path` can then open.
pub fn export_to_sqlite(source: &Db, file: &Path) -> Result<ExportReport, StateError> {
    if file.exists() {
        return Err(StateError::Config(format!(
            "{} exists; export writes a new file",
            file.display()
        )));
    }
    let target = Db::open(file)?;
    let versions = source.component_versions()?;
    for Component { name, migrations } in components() {
        let applied = versions
            .iter()
            .find(|(component, _)| component == name)
            .map_or(0, |(_, v)| usize::try_from(*v).unwrap_or(usize::MAX));
        if applied > migrations.len() {
            return Err(StateError::TooNew {
                path: format!("component {name}"),
                found: applied as i64,
                known: migrations.len() as i64,
            });
        }
        if applied > 0 {
            target.ensure_schema(name, &migrations[..applied])?;
        }
    }
    let tables: Vec<String> = target
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT LIKE 'sqlite_%' AND name <> 'schema_versions' ORDER BY name",
            &[],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect::<Result<_, _>>()?;
    let mut report = Vec::new();
    for table in tables {
        let columns: Vec<String> = target
            .query(
                &format!("SELECT name FROM pragma_table_info('{table}')"),
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect::<Result<_, _>>()?;
        let list = columns.join(", ");
        let rows = source.query(&format!("SELECT {list} FROM {table}"), &[])?;
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let insert = format!("INSERT INTO {table} ({list}) VALUES ({})", marks.join(", "));
        target.transaction(|tx| {
            for row in &rows {
                tx.execute(&insert, row.values())?;
            }
            Ok(())
        })?;
        report.push((table, rows.len()));
    }
    Ok(report)
}

/// `deckhand check` on `[state]`: PostgreSQL answers and its schema is not newer than this
/// build (older is fine: `serve` and `state migrate` bring it up). Nothing is changed.
pub fn check(config: &StateConfig) -> Result<Vec<String>, String> {
    config.validate()?;
    let Some(url) = &config.url else {
        return Ok(Vec::new());
    };
    let password = config.password.as_ref().map(Secret::expose);
    let db = Db::inspect_postgres(url, password, config.ca_file.as_deref())
        .map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    let core = db.schema_version().map_err(|e| e.to_string())?;
    let known = Db::known_schema_version();
    if core > known {
        return Err(format!(
            "{}: schema version {core} is newer than this build's ({known})",
            db.describe()
        ));
    }
    notes.push(format!(
        "{}: reachable, core schema {core} of {known}",
        db.describe()
    ));
    let versions = db.component_versions().unwrap_or_default();
    for Component { name, migrations } in components() {
        let found = versions
            .iter()
            .find(|(c, _)| c == name)
            .map_or(0, |(_, v)| *v);
        let known = migrations.len() as i64;
        if found > known {
            return Err(format!(
                "{}: component {name} is at schema {found}, newer than this build's ({known})",
                db.describe()
            ));
        }
        if found < known {
            notes.push(format!(
                "component {name} at schema {found} of {known}: `deckhand serve` or `deckhand state migrate` brings it up"
            ));
        }
    }
    Ok(notes)
}
