//! One warehouse of each kind behind one facade, so that a scenario is written once and
//! runs on every database it applies to.
//!
//! A scenario is a function `fn(&Db)`; `on_every_database!` (PostgreSQL, MariaDB, SQLite),
//! `on_servers!` (PostgreSQL and MariaDB) or `on_databases!` (a list of kinds) turns it
//! into `MODULE::SCENARIO::{postgres, mariadb, sqlite}`. A scenario that needs no server
//! (a URL that refuses or never answers) is a function `fn(Kind)`, turned into tests by
//! `on_kinds!`. PostgreSQL and MariaDB tests print a `SKIP` line without
//! `DQWATCH_TEST_POSTGRES_URL` / `DQWATCH_TEST_MARIADB_URL`.
//!
//! What differs between the databases (type names, SQL spelling, error texts) is written
//! in the scenario, next to the case that needs it, with [`Kind::pick`].

use crate::util::{MyDatabase, PgSchema, TestEnv, block_on, sqlite_exec, sqlite_scalar};
use std::path::PathBuf;

/// The kind of a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Mariadb,
    Sqlite,
}

impl Kind {
    /// The one of three values that belongs to this kind.
    pub fn pick<T>(self, postgres: T, mariadb: T, sqlite: T) -> T {
        match self {
            Self::Postgres => postgres,
            Self::Mariadb => mariadb,
            Self::Sqlite => sqlite,
        }
    }
}

/// The throwaway database behind a [`Db`]; dropping it drops the schema or database (the
/// SQLite file goes with the temp dir).
enum Server {
    Postgres(PgSchema),
    Mariadb(MyDatabase),
    Sqlite(PathBuf),
}

/// A fresh warehouse of one kind, with a temp dir whose config names it `warehouse`.
pub struct Db {
    pub kind: Kind,
    pub env: TestEnv,
    /// The server URL (PostgreSQL, MariaDB), or the path of the database file (SQLite).
    pub url: String,
    server: Server,
}

impl Db {
    /// A schema named for `test` on the PostgreSQL server at `admin`.
    pub fn postgres(admin: &str, test: &str) -> Self {
        let schema = PgSchema::new(admin, test);
        Self {
            kind: Kind::Postgres,
            env: TestEnv::with_connection(&schema.url, ""),
            url: schema.url.clone(),
            server: Server::Postgres(schema),
        }
    }

    /// A database named for `test` on the MariaDB server at `admin`.
    pub fn mariadb(admin: &str, test: &str) -> Self {
        let db = MyDatabase::new(admin, test);
        Self {
            kind: Kind::Mariadb,
            env: TestEnv::with_connection(&db.url, ""),
            url: db.url.clone(),
            server: Server::Mariadb(db),
        }
    }

    /// A SQLite file `warehouse.db` in the temp dir.
    pub fn sqlite() -> Self {
        let env = TestEnv::with_connection("sqlite://warehouse.db", "");
        let path = env.path().join("warehouse.db");
        sqlite_exec(&path, "CREATE TABLE dqwatch_created (n INTEGER)");
        Self {
            kind: Kind::Sqlite,
            url: path.display().to_string(),
            env,
            server: Server::Sqlite(path),
        }
    }

    /// Rewrites the config: the connection `warehouse` with `extra` lines
    /// (`statement_timeout = "1s"`).
    pub fn connection_options(&self, extra: &str) {
        let url = match &self.server {
            Server::Postgres(_) | Server::Mariadb(_) => self.url.as_str(),
            Server::Sqlite(_) => "sqlite://warehouse.db",
        };
        self.env.config(&format!(
            "[connections.warehouse]\nurl = \"{url}\"\n{extra}\n"
        ));
    }

    /// Runs `sql` (several statements).
    pub fn exec(&self, sql: &str) {
        match &self.server {
            Server::Postgres(schema) => schema.exec(sql),
            Server::Mariadb(db) => db.exec(sql),
            Server::Sqlite(path) => sqlite_exec(path, sql),
        }
    }

    /// The first column of the first row of `sql`, as text.
    pub fn text(&self, sql: &str) -> String {
        use sqlx::{ConnectOptions, Connection, Row};
        block_on(async {
            match &self.server {
                Server::Postgres(schema) => {
                    let mut c = sqlx::PgConnection::connect(&schema.url).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                        .get::<String, _>(0)
                }
                Server::Mariadb(db) => {
                    let mut c = sqlx::MySqlConnection::connect(&db.url).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                        .get::<String, _>(0)
                }
                Server::Sqlite(path) => {
                    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .connect()
                        .await
                        .unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                        .get::<String, _>(0)
                }
            }
        })
    }

    /// The value of the scalar query `sql`, a whole number.
    pub fn int(&self, sql: &str) -> i64 {
        match &self.server {
            Server::Postgres(schema) => schema.scalar(&format!("SELECT CAST(({sql}) AS bigint)")),
            Server::Mariadb(db) => db.scalar(&format!("SELECT CAST(({sql}) AS SIGNED)")),
            Server::Sqlite(path) => {
                sqlite_scalar(path, &format!("SELECT CAST(({sql}) AS INTEGER)"))
            }
        }
    }

    /// Rows of `table` (proves it still exists).
    pub fn count(&self, table: &str) -> i64 {
        self.int(&format!("SELECT COUNT(*) FROM {table}"))
    }

    /// The schema (PostgreSQL), database (MariaDB) or attached database (SQLite) holding
    /// the test's tables, for `schema.table` names.
    pub fn schema(&self) -> &str {
        match &self.server {
            Server::Postgres(schema) => &schema.name,
            Server::Mariadb(db) => &db.name,
            Server::Sqlite(_) => "main",
        }
    }

    /// The one of three values that belongs to this database's kind.
    pub fn pick<T>(&self, postgres: T, mariadb: T, sqlite: T) -> T {
        self.kind.pick(postgres, mariadb, sqlite)
    }
}

/// `MODULE::SCENARIO::{KIND…}`: for each scenario `fn(&Db)`, one `#[test]` per kind listed
/// (`postgres`, `mariadb`, `sqlite`), on a fresh database named `PREFIX` + the scenario.
/// The prefix keeps two test files' databases apart.
///
/// ```ignore
/// on_databases!("w_", [postgres], nan_and_infinity_are_never_a_pass);
/// ```
macro_rules! on_databases {
    (@test $prefix:literal, postgres, $scenario:ident) => {
        #[test]
        fn postgres() {
            let admin = $crate::require_env!("DQWATCH_TEST_POSTGRES_URL");
            let name = concat!($prefix, stringify!($scenario));
            super::$scenario(&$crate::db::Db::postgres(&admin, name));
        }
    };
    (@test $prefix:literal, mariadb, $scenario:ident) => {
        #[test]
        fn mariadb() {
            let admin = $crate::require_env!("DQWATCH_TEST_MARIADB_URL");
            let name = concat!($prefix, stringify!($scenario));
            super::$scenario(&$crate::db::Db::mariadb(&admin, name));
        }
    };
    (@test $prefix:literal, sqlite, $scenario:ident) => {
        #[test]
        fn sqlite() {
            super::$scenario(&$crate::db::Db::sqlite());
        }
    };
    (@scenario $prefix:literal, [$($kind:ident),+], $scenario:ident) => {
        mod $scenario {
            $($crate::db::on_databases!(@test $prefix, $kind, $scenario);)+
        }
    };
    ($prefix:literal, $kinds:tt, $($scenario:ident),+ $(,)?) => {
        $($crate::db::on_databases!(@scenario $prefix, $kinds, $scenario);)+
    };
}

/// `MODULE::SCENARIO::{postgres, mariadb, sqlite}` for each scenario `fn(&Db)`.
macro_rules! on_every_database {
    ($prefix:literal, $($scenario:ident),+ $(,)?) => {
        $crate::db::on_databases!($prefix, [postgres, mariadb, sqlite], $($scenario),+);
    };
}

/// `MODULE::SCENARIO::{postgres, mariadb}` for each scenario `fn(&Db)` that has no SQLite
/// counterpart.
macro_rules! on_servers {
    ($prefix:literal, $($scenario:ident),+ $(,)?) => {
        $crate::db::on_databases!($prefix, [postgres, mariadb], $($scenario),+);
    };
}

/// `MODULE::SCENARIO::{KIND…}` for each scenario `fn(Kind)` that needs no database (a
/// connection that is refused or never answered): these always run.
macro_rules! on_kinds {
    (@test postgres, $scenario:ident) => {
        #[test]
        fn postgres() {
            super::$scenario($crate::db::Kind::Postgres);
        }
    };
    (@test mariadb, $scenario:ident) => {
        #[test]
        fn mariadb() {
            super::$scenario($crate::db::Kind::Mariadb);
        }
    };
    (@scenario [$($kind:ident),+], $scenario:ident) => {
        mod $scenario {
            $($crate::db::on_kinds!(@test $kind, $scenario);)+
        }
    };
    ($kinds:tt, $($scenario:ident),+ $(,)?) => {
        $($crate::db::on_kinds!(@scenario $kinds, $scenario);)+
    };
}

pub(crate) use {on_databases, on_every_database, on_kinds, on_servers};
