//! The cost component's tables: fetched prices (with their fetch date) and samples of each
//! pool's size. Azure keeps no node-count history we can read, so Deckhand records its own.

use crate::args;
use crate::sched::store::parse_ts;
use crate::state::timestamp;
use crate::state::{Db, StateError};
use chrono::{DateTime, Utc};

pub const MIGRATIONS: &[&str] = &[
    // 1: prices and pool samples.
    "CREATE TABLE cost_prices (
        vm_size TEXT NOT NULL,
        region TEXT NOT NULL,
        currency TEXT NOT NULL,
        on_demand REAL,
        spot REAL,
        fetched_at TEXT NOT NULL,
        PRIMARY KEY (vm_size, region, currency)
    );
    CREATE TABLE cost_samples (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        cluster TEXT NOT NULL,
        pool TEXT NOT NULL,
        vm_size TEXT NOT NULL,
        region TEXT NOT NULL,
        spot INTEGER NOT NULL,
        count INTEGER NOT NULL,
        deallocate INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        origin TEXT NOT NULL
    );
    CREATE INDEX cost_samples_at ON cost_samples(at);",
];

/// This component, as `deckhand state migrate` and [`Db::ensure`] know it.
pub(crate) const COMPONENT: crate::state::Component = crate::state::Component {
    name: "cost",
    migrations: MIGRATIONS,
};

/// A price as fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPrice {
    pub on_demand: Option<f64>,
    pub spot: Option<f64>,
    pub currency: String,
    pub fetched_at: DateTime<Utc>,
}

/// One observation of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub cluster: String,
    pub pool: String,
    pub vm_size: String,
    pub region: String,
    pub spot: bool,
    pub count: i64,
    /// `scaleDownMode = Deallocate`: scaled-down nodes keep their disks (still billed).
    pub deallocate: bool,
    /// The size has GPUs (from the pool's VM size).
    pub gpu: bool,
    /// `sampler` (an interval read of ARM) or `scale` (a scale Deckhand performed).
    pub origin: String,
}

#[derive(Clone)]
pub struct CostStore {
    db: Db,
}

impl CostStore {
    pub fn open(db: Db) -> Result<CostStore, StateError> {
        db.ensure(&COMPONENT)?;
        Ok(CostStore { db })
    }

    pub fn price(
        &self,
        vm_size: &str,
        region: &str,
        currency: &str,
    ) -> Result<Option<CachedPrice>, StateError> {
        self.db
            .query_opt(
                "SELECT on_demand, spot, currency, fetched_at FROM cost_prices
                 WHERE vm_size = ?1 AND region = ?2 AND currency = ?3",
                args![vm_size, region, currency],
            )?
            .map(|r| {
                Ok(CachedPrice {
                    on_demand: r.get(0)?,
                    spot: r.get(1)?,
                    currency: r.get(2)?,
                    fetched_at: parse_ts(&r.get::<String>(3)?)?,
                })
            })
            .transpose()
    }

    pub fn put_price(
        &self,
        vm_size: &str,
        region: &str,
        price: &CachedPrice,
    ) -> Result<(), StateError> {
        self.db.execute(
            "INSERT INTO cost_prices (vm_size, region, currency, on_demand, spot, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (vm_size, region, currency) DO UPDATE SET
               on_demand = excluded.on_demand, spot = excluded.spot,
               fetched_at = excluded.fetched_at",
            args![
                vm_size,
                region,
                &price.currency,
                price.on_demand,
                price.spot,
                timestamp(price.fetched_at)
            ],
        )?;
        Ok(())
    }

    pub fn add_sample(&self, s: &Sample) -> Result<(), StateError> {
        self.db.execute(
            "INSERT INTO cost_samples (at, cluster, pool, vm_size, region, spot, count,
                                       deallocate, gpu, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            args![
                timestamp(s.at),
                &s.cluster,
                &s.pool,
                &s.vm_size,
                &s.region,
                s.spot,
                s.count,
                s.deallocate,
                s.gpu,
                &s.origin
            ],
        )?;
        Ok(())
    }

    /// Samples up to `until`, oldest first; for each pool also the last one before `from`
    /// (the state the window starts in).
    pub fn samples(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StateError> {
        let rows = self.db.query(
            "SELECT at, cluster, pool, vm_size, region, spot, count, deallocate, gpu, origin
             FROM cost_samples s
             WHERE at <= ?2 AND (at >= ?1 OR at = (
                 SELECT max(at) FROM cost_samples p
                 WHERE p.cluster = s.cluster AND p.pool = s.pool AND p.at < ?1))
             ORDER BY at, id",
            args![timestamp(from), timestamp(until)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Sample {
                    at: parse_ts(&r.get::<String>(0)?)?,
                    cluster: r.get(1)?,
                    pool: r.get(2)?,
                    vm_size: r.get(3)?,
                    region: r.get(4)?,
                    spot: r.get(5)?,
                    count: r.get(6)?,
                    deallocate: r.get(7)?,
                    gpu: r.get(8)?,
                    origin: r.get(9)?,
                })
            })
            .collect()
    }
}
