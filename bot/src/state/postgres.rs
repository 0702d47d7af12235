//! The shared backend: PostgreSQL, for two or more replicas over one state.
//!
//! One connection, used like the SQLite one: a caller holds it for one statement or one
//! transaction. The socket is driven by a one-thread tokio runtime of its own; callers block on
//! the client's futures with `futures_executor::block_on` (the client talks to the socket task
//! over channels, so this works from any thread, a tokio worker included, as the SQLite mutex
//! does). A lost connection makes every call fail fast with [`StateError::Unavailable`] and is
//! re-made on a later call, with a backoff from 200 ms doubling to 5 s.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, GenericClient, Statement};

use super::StateError;
use super::sql::{Exec, Row, Value, numbered_placeholders};

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection; past this the cache starts again.
const STATEMENT_CACHE: usize = 256;

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().as_str().to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => Err(format!("a real cannot be bound to a {ty} parameter").into()),
            },
            Value::Text(v) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    v.as_str().to_sql(ty, out)
                }
                _ => Err(format!("text cannot be bound to a {ty} parameter").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn value_at(row: &tokio_postgres::Row, index: usize) -> Result<Value, StateError> {
    let ty = row.columns()[index].type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Value::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|v| Value::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(index)?.map(Value::Text)
        }
        other => {
            return Err(StateError::UnsupportedType {
                column: index,
                ty: other.to_string(),
            });
        }
    };
    Ok(value.unwrap_or(Value::Null))
}

/// Statements on the connection or on a transaction open on it.
struct PgExec<'a, C: GenericClient + Sync> {
    client: &'a C,
    statements: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient + Sync> PgExec<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, StateError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement =
            futures_executor::block_on(self.client.prepare(&numbered_placeholders(sql)))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn params(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient + Sync> Exec for PgExec<'_, C> {
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<usize, StateError> {
        let statement = self.statement(sql)?;
        let changed = futures_executor::block_on(self.client.execute(&statement, &params(args)))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StateError> {
        let statement = self.statement(sql)?;
        let rows = futures_executor::block_on(self.client.query(&statement, &params(args)))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| value_at(row, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row::new)
            })
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StateError> {
        Ok(futures_executor::block_on(self.client.batch_execute(sql))?)
    }
}

/// The connection and what belongs to it.
struct Link {
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    /// While down: no new attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    last_error: Option<String>,
}

/// A PostgreSQL state database.
pub(crate) struct Postgres {
    /// Drives the socket; shut down in the background on drop (dropping a runtime inside
    /// another one's task would panic).
    runtime: Option<tokio::runtime::Runtime>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// host:port/dbname, for messages (never the password).
    shown: String,
    link: Mutex<Link>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The URL without its password, for messages.
pub(crate) fn shown_url(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgres://{host}:{port}/{db}")
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, StateError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let bad =
            |detail: String| StateError::Config(format!("ca_file {}: {detail}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StateError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// libpq's `sslmode=verify-full` and `verify-ca`, which tokio-postgres does not parse, as
/// `require`: Deckhand's TLS always verifies the server's chain and name (rustls), so
/// `require` here is at least as strict as either.
fn verified_modes_as_require(url: &str) -> std::borrow::Cow<'_, str> {
    if url.contains("sslmode=verify-full") || url.contains("sslmode=verify-ca") {
        url.replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require")
            .into()
    } else {
        url.into()
    }
}

impl Postgres {
    /// Connects once (so a wrong URL or password fails start-up with its reason); later losses
    /// are recovered by reconnecting.
    pub(crate) fn connect(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Postgres, StateError> {
        let mut config = tokio_postgres::Config::from_str(&verified_modes_as_require(url))
            .map_err(|e| StateError::Config(format!("state url: {e}")))?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("deckhand");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("deckhand-postgres")
            .enable_all()
            .build()
            .map_err(|e| StateError::Config(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(ca_file)?);
        let shown = shown_url(&config);
        let db = Postgres {
            runtime: Some(runtime),
            config,
            tls,
            shown,
            link: Mutex::new(Link {
                client: None,
                statements: HashMap::new(),
                retry_at: None,
                backoff: FIRST_BACKOFF,
                last_error: None,
            }),
        };
        {
            let mut link = db.lock();
            let client = db.open_connection().map_err(|e| StateError::Unavailable {
                url: db.shown.clone(),
                detail: e,
            })?;
            link.client = Some(client);
        }
        Ok(db)
    }

    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects on the runtime; the error is the driver's or the server's message.
    fn open_connection(&self) -> Result<Client, String> {
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        let config = self.config.clone();
        let tls = self.tls.clone();
        let task = runtime.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(error = %error, "PostgreSQL connection lost");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        match futures_executor::block_on(task) {
            Ok(result) => result.map_err(|e| error_text(&e)),
            Err(join) => Err(format!("the connect task failed: {join}")),
        }
    }

    /// The live client, re-made when it was lost (no more often than the backoff allows).
    fn ready(&self, link: &mut Link) -> Result<(), StateError> {
        if link.client.as_ref().is_some_and(Client::is_closed) {
            link.client = None;
            link.statements.clear();
        }
        if link.client.is_none() {
            let now = Instant::now();
            if link.retry_at.is_some_and(|at| now < at) {
                return Err(self.unavailable(link));
            }
            match self.open_connection() {
                Ok(client) => {
                    if link.last_error.take().is_some() {
                        tracing::info!(url = %self.shown, "PostgreSQL connection re-made");
                    }
                    link.client = Some(client);
                    link.retry_at = None;
                    link.backoff = FIRST_BACKOFF;
                }
                Err(error) => {
                    tracing::warn!(url = %self.shown, %error, "PostgreSQL unreachable");
                    link.last_error = Some(error);
                    link.retry_at = now.checked_add(link.backoff);
                    link.backoff = link.backoff.saturating_mul(2).min(MAX_BACKOFF);
                    return Err(self.unavailable(link));
                }
            }
        }
        Ok(())
    }

    fn unavailable(&self, link: &Link) -> StateError {
        StateError::Unavailable {
            url: self.shown.clone(),
            detail: link
                .last_error
                .clone()
                .unwrap_or_else(|| "connection lost".to_owned()),
        }
    }

    /// After a failed statement: a closed connection turns the error into `Unavailable` and the
    /// next call reconnects.
    fn after_error(&self, link: &mut Link, error: StateError) -> StateError {
        if link.client.as_ref().is_some_and(Client::is_closed) {
            link.client = None;
            link.statements.clear();
            link.last_error = Some(error.to_string());
            return self.unavailable(link);
        }
        error
    }

    /// One statement or query outside a transaction.
    pub(crate) fn run<R>(
        &self,
        f: impl FnOnce(&mut dyn Exec) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let mut guard = self.lock();
        let link = &mut *guard;
        self.ready(link)?;
        let Link {
            client, statements, ..
        } = &mut *link;
        let mut exec = PgExec {
            client: client.as_ref().expect("ready"),
            statements,
        };
        let result = f(&mut exec);
        result.map_err(|e| self.after_error(link, e))
    }

    /// A transaction: committed when `f` returns `Ok`, rolled back otherwise.
    pub(crate) fn transaction<R>(
        &self,
        f: impl FnOnce(&mut dyn Exec) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let mut guard = self.lock();
        let link = &mut *guard;
        let result = (|| {
            self.ready(link)?;
            let Link {
                client, statements, ..
            } = &mut *link;
            let client = client.as_mut().expect("ready");
            let tx = futures_executor::block_on(client.transaction())?;
            let value = {
                let mut exec = PgExec {
                    client: &tx,
                    statements,
                };
                f(&mut exec)?
            };
            futures_executor::block_on(tx.commit())?;
            Ok(value)
        })();
        result.map_err(|e| self.after_error(link, e))
    }
}

/// A driver error with the server's message when there is one, else with its causes (the
/// driver's own text is only "error connecting to server").
fn error_text(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {}", db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut cause = StdError::source(error);
    while let Some(c) = cause {
        let detail = c.to_string();
        if !text.contains(&detail) {
            text.push_str(": ");
            text.push_str(&detail);
        }
        cause = c.source();
    }
    text
}
