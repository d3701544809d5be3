//! Shared helpers: a temp dir holding a config and checks (`TestEnv`), the real `dqwatch`
//! binary run in it, throwaway SQLite / PostgreSQL / MariaDB databases, and `require_env!`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dqwatch");

/// Returns the value of an environment variable that names a test server, or writes a
/// `SKIP` line straight to stderr (libtest does not capture it) and returns from the test.
#[macro_export]
macro_rules! require_env {
    ($var:literal) => {
        match std::env::var($var) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                fn here() {}
                $crate::util::skip(
                    &$crate::util::test_name(std::any::type_name_of_val(&here)),
                    concat!($var, " not set"),
                );
                return;
            }
        }
    };
}

/// `module::test` from the type name of a function item declared in the test.
pub fn test_name(fn_path: &str) -> String {
    let path = fn_path.strip_suffix("::here").unwrap_or(fn_path);
    path.strip_prefix("it::").unwrap_or(path).to_string()
}

/// Writes `SKIP test: reason` to the process's stderr, bypassing libtest's capture.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write as _;
    let line = format!("SKIP {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// What a `dqwatch` process did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (a process killed by a signal fails the test).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Output {
    /// Stdout parsed as JSON (`--format json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code, want,
            "exit code {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that neither stream contains `needle`.
    #[track_caller]
    pub fn nowhere(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "{needle:?} was printed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The JSON report's entry for check `id`.
#[track_caller]
pub fn check_doc<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in report:\n{report:#}"))
}

/// A temp dir with `dqwatch.toml` and `checks/`; commands run with it as working directory
/// and `--config dqwatch.toml`, so paths in messages are relative (`checks/a.sql`).
pub struct TestEnv {
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// An empty temp dir.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dqwatch-it-")
            .tempdir()
            .unwrap();
        Self { dir }
    }

    /// A temp dir whose config has one connection `warehouse` with `url`, plus `extra`
    /// lines inside that connection table (`statement_timeout = "1s"`).
    pub fn with_connection(url: &str, extra: &str) -> Self {
        let env = Self::new();
        env.config(&format!(
            "[connections.warehouse]\nurl = \"{url}\"\n{extra}\n"
        ));
        std::fs::create_dir_all(env.path().join("checks")).unwrap();
        env
    }

    /// A temp dir with a SQLite warehouse `warehouse.db` built from `sql`, and a config
    /// naming it with `extra` connection lines.
    pub fn sqlite(sql: &str, extra: &str) -> Self {
        let env = Self::with_connection("sqlite://warehouse.db", extra);
        sqlite_exec(&env.path().join("warehouse.db"), sql);
        env
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (parents created) and returns its absolute path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `dqwatch.toml`.
    pub fn config(&self, toml: &str) -> PathBuf {
        self.write("dqwatch.toml", toml)
    }

    /// Writes `checks/ID.sql`.
    pub fn check(&self, id: &str, text: &str) -> PathBuf {
        self.write(&format!("checks/{id}.sql"), text)
    }

    /// Writes a check with the header lines `header` (each written as `-- LINE`) and `sql`.
    pub fn check_with(&self, id: &str, header: &[&str], sql: &str) -> PathBuf {
        let mut text = String::from("-- dqwatch\n");
        for line in header {
            text.push_str("-- ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(sql);
        text.push('\n');
        self.check(id, &text)
    }

    /// Reads a file of the temp dir.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Runs `dqwatch --config dqwatch.toml ARGS` in the temp dir.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.arg("--config").arg("dqwatch.toml").args(args);
        output(&mut cmd)
    }

    /// A `dqwatch` command in the temp dir with a clean environment and no `--config`.
    pub fn command(&self) -> Command {
        dqwatch(self.path())
    }
}

/// A `dqwatch` command in `dir`, without the variables that would change which config or
/// warehouse it uses.
pub fn dqwatch(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("DQWATCH_CONFIG")
        .env_remove("WAREHOUSE_URL")
        .env_remove("DQWATCH_API_TOKEN")
        .env_remove("RUST_LOG");
    cmd
}

/// Runs a command to completion.
pub fn output(cmd: &mut Command) -> Output {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(code) = out.status.code() else {
        panic!(
            "dqwatch died by a signal: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        )
    };
    Output {
        code,
        stdout,
        stderr,
        elapsed,
    }
}

/// Runs a command, killing it if it has not finished within `limit`: `Err` carries what it
/// printed until then. For tests of code that might hang.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output, Output> {
    use std::io::Read;
    use std::process::Stdio;
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|mut pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(());
                String::from_utf8_lossy(&buf).into_owned()
            })
        })
        .collect();
    // Both pipes reach end of file when the process exits.
    let mut closed = 0;
    let mut timed_out = false;
    while closed < 2 {
        match rx.recv_timeout(limit.saturating_sub(start.elapsed())) {
            Ok(()) => closed += 1,
            Err(_) => {
                let _ = child.kill();
                timed_out = true;
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    let mut texts = readers.into_iter().map(|r| r.join().unwrap());
    let (stdout, stderr) = (texts.next().unwrap(), texts.next().unwrap());
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        elapsed,
    };
    if timed_out { Err(out) } else { Ok(out) }
}

/// A TCP port on loopback that accepts connections (the kernel completes the handshake)
/// but never answers: a hung server. Alive as long as the listener.
pub fn silent_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Copies the folder `from` into `to`, recursively, byte for byte.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs a future on a fresh single-threaded runtime (tests are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Creates (or opens) the SQLite file at `path` and runs `sql` (several statements).
pub fn sqlite_exec(path: &Path, sql: &str) {
    use sqlx::{ConnectOptions, Connection};
    block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

/// The first column of the first row of `sql` on the SQLite file at `path`, as an integer.
pub fn sqlite_scalar(path: &Path, sql: &str) -> i64 {
    use sqlx::{ConnectOptions, Connection, Row};
    block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .connect()
            .await
            .unwrap();
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let v: i64 = row.get(0);
        conn.close().await.unwrap();
        v
    })
}

/// A name unique to this test and process, usable as an SQL identifier.
pub fn unique_name(test: &str) -> String {
    format!("dqwatch_{test}_{}", std::process::id())
}

/// A PostgreSQL schema that lives as long as the value, with a URL whose `search_path`
/// points at it.
pub struct PgSchema {
    admin: String,
    /// The schema's name.
    pub name: String,
    /// The server URL with `search_path` set to the schema.
    pub url: String,
}

impl PgSchema {
    /// Creates a fresh schema named for `test` on the server at `admin`.
    pub fn new(admin: &str, test: &str) -> Self {
        let name = unique_name(test);
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        let schema = Self {
            admin: admin.to_string(),
            name,
            url,
        };
        schema.admin_exec(&format!(
            "DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}",
            schema.name
        ));
        schema
    }

    fn admin_exec(&self, sql: &str) {
        pg_exec(&self.admin, sql);
    }

    /// Runs `sql` (several statements) with the schema on the search path.
    pub fn exec(&self, sql: &str) {
        pg_exec(&self.url, sql);
    }

    /// The first column of the first row of `sql`, as an integer.
    pub fn scalar(&self, sql: &str) -> i64 {
        use sqlx::{Connection, Row};
        block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut c)
                .await
                .unwrap();
            let v: i64 = row.get(0);
            c.close().await.unwrap();
            v
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let admin = self.admin.clone();
        // Never panic in drop: a failed cleanup only leaves a schema behind.
        let _ = std::thread::spawn(move || {
            block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

fn pg_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    block_on(async {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
}

/// A MariaDB database that lives as long as the value, with a URL naming it.
pub struct MyDatabase {
    admin: String,
    /// The database's name.
    pub name: String,
    /// The server URL with the database as its path.
    pub url: String,
}

impl MyDatabase {
    /// Creates a fresh database named for `test` on the server at `admin`.
    pub fn new(admin: &str, test: &str) -> Self {
        let name = unique_name(test);
        let url = with_path(admin, &name);
        let db = Self {
            admin: admin.to_string(),
            name,
            url,
        };
        my_exec(
            &db.admin,
            &format!("DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}", db.name),
        );
        db
    }

    /// Runs `sql` (several statements) in the database.
    pub fn exec(&self, sql: &str) {
        my_exec(&self.url, sql);
    }

    /// The first column of the first row of `sql`, as an integer.
    pub fn scalar(&self, sql: &str) -> i64 {
        use sqlx::{Connection, Row};
        block_on(async {
            let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut c)
                .await
                .unwrap();
            let v: i64 = row.get(0);
            c.close().await.unwrap();
            v
        })
    }
}

impl Drop for MyDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let admin = self.admin.clone();
        let _ = std::thread::spawn(move || {
            block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

fn my_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    block_on(async {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
}

/// `url` with its path (the database name) replaced by `db`, query kept.
pub fn with_path(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let auth_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[auth_start..]
        .find('/')
        .map_or(base.len(), |i| auth_start + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with the password `password` for its user.
pub fn with_password(url: &str, password: &str) -> String {
    let auth_start = url.find("://").map_or(0, |i| i + 3);
    let auth_end = url[auth_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| auth_start + i);
    let Some(at) = url[auth_start..auth_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &url[auth_start..auth_start + at];
    let user = userinfo.split(':').next().unwrap_or_default();
    format!(
        "{}{user}:{password}{}",
        &url[..auth_start],
        &url[auth_start + at..]
    )
}

#[test]
fn with_password_sets_the_password() {
    assert_eq!(
        with_password("postgres://pg@h:5432/test", "x"),
        "postgres://pg:x@h:5432/test"
    );
    assert_eq!(
        with_password("mysql://root:old@h/test", "x"),
        "mysql://root:x@h/test"
    );
    assert_eq!(
        test_name("it::postgres::numeric_types::here"),
        "postgres::numeric_types"
    );
}

#[test]
fn with_path_replaces_the_database() {
    assert_eq!(
        with_path("mysql://root@h:3306/test", "x"),
        "mysql://root@h:3306/x"
    );
    assert_eq!(
        with_path("mysql://root@h:3306", "x"),
        "mysql://root@h:3306/x"
    );
    assert_eq!(
        with_path("mysql://u:p@h/test?ssl-mode=disabled", "x"),
        "mysql://u:p@h/x?ssl-mode=disabled"
    );
}

/// A PostgreSQL cluster of the test's own, on a spare loopback port, that a test may stop
/// and start again (the shared server is never stopped). `initdb` and `pg_ctl` come from
/// `/usr/lib/postgresql/*/bin` (the newest) or `$DQWATCH_TEST_PG_BIN`; as root they run as
/// the `postgres` user through `runuser`. Trust authentication, user `postgres`, fsync off.
/// Stopped (immediately) and deleted on drop.
///
/// ```ignore
/// let Some(pg) = PgCluster::start("my_test") else { return };  // SKIP printed
/// let url = pg.url();       // postgres://postgres@127.0.0.1:PORT/postgres
/// pg.stop();                // pg_ctl stop -m fast: connections are cut, the port refuses
/// pg.start();               // same data, same port
/// ```
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl PgCluster {
    /// Creates and starts a cluster; `None` (with a `SKIP` line naming `test`) when no
    /// PostgreSQL binaries are installed.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = pg_bin() else {
            skip(test, "no initdb/pg_ctl (set DQWATCH_TEST_PG_BIN)");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("dqwatch-pg-")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let cluster = Self {
            dir,
            bin,
            as_postgres,
            port,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.start_again();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (`pg_ctl stop -m fast`): clients are disconnected, new connections
    /// are refused. Returns once it is down.
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server (again) on the same port and data; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe);
            cmd
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        // Never panic in drop: a server left running dies with its deleted data folder.
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The folder holding `initdb` and `pg_ctl`: `$DQWATCH_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DQWATCH_TEST_PG_BIN")
        && !dir.is_empty()
    {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
