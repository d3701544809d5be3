//! PostgreSQL and MariaDB/MySQL connections over TCP with `TCP_NODELAY`, which sqlx 0.9.0
//! does not set (sqlx issue 4335, fixed after 0.9.0). Without it the TLS handshake and
//! start-up stall twice on Nagle's algorithm against the server's delayed ACK: ~90 ms per
//! new connection (benches/RESULTS.md, "TCP_NODELAY").
//!
//! sqlx takes no socket from its caller, but it connects to a Unix-domain socket path and
//! negotiates TLS over it exactly as over TCP, verifying the certificate against the
//! configured host name. So dqwatch opens the TCP connection itself (`TCP_NODELAY` on),
//! listens on a one-shot socket in a private (0700) temporary directory, points sqlx at it
//! with the real host name kept, accepts sqlx's one connection, removes the socket and the
//! directory, and relays bytes both ways for the life of the connection. TLS runs end to end
//! between sqlx and the server; the relay only sees ciphertext.
//!
//! Used only when TLS may be negotiated (`sslmode` other than `disable`/`allow`, `ssl-mode`
//! other than `DISABLED`) over TCP: without TLS each start-up step is one write, and Nagle
//! holds nothing back.

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Error};
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// PostgreSQL's SSLRequest: length 8, code 80877103. sqlx sends it first whenever it will
/// try TLS; the relay insists on it, so that no sqlx release that skipped TLS on a socket
/// path could send a start-up message in clear text over the network.
const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The relay task of one connection (none when sqlx connected by itself). Dropped, the
/// task goes on until the connection's socket closes.
pub(super) struct Relay(Option<JoinHandle<()>>);

impl Relay {
    /// Once the connection is closed: waits (at most a second) until the relay has passed on
    /// the last bytes and closed the TCP connection, so that a process that exits next does
    /// not cut the goodbye off.
    pub(super) async fn finish(self) {
        if let Some(task) = self.0 {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

/// Opens a PostgreSQL connection; over TCP with TLS possible, through the relay.
pub(super) async fn connect_pg(opts: PgConnectOptions) -> Result<(PgConnection, Relay), Error> {
    let tls = !matches!(opts.get_ssl_mode(), PgSslMode::Disable | PgSslMode::Allow);
    // A host starting with `/` is a socket directory (sqlx's rule).
    if !tls || opts.get_socket().is_some() || opts.get_host().starts_with('/') {
        return Ok((opts.connect().await?, Relay(None)));
    }
    let (host, port) = (opts.get_host().to_string(), opts.get_port());
    let name = format!(".s.PGSQL.{port}");
    relayed(
        &host,
        port,
        &name,
        Some(&PG_SSL_REQUEST),
        opts,
        |o, dir, _| o.socket(dir),
    )
    .await
}

/// Opens a MariaDB/MySQL connection; over TCP with TLS possible, through the relay.
pub(super) async fn connect_my(
    opts: MySqlConnectOptions,
) -> Result<(MySqlConnection, Relay), Error> {
    let tls = !matches!(opts.get_ssl_mode(), MySqlSslMode::Disabled);
    if !tls || opts.get_socket().is_some() {
        return Ok((opts.connect().await?, Relay(None)));
    }
    let (host, port) = (opts.get_host().to_string(), opts.get_port());
    relayed(&host, port, "mysql.sock", None, opts, |o, _, path| {
        o.socket(path)
    })
    .await
}

/// Connects `opts` (pointed at the socket by `aim`: options, directory, socket path) through
/// a relay to `host:port`. `first`: the bytes the client must send first.
async fn relayed<O, C>(
    host: &str,
    port: u16,
    name: &str,
    first: Option<&'static [u8]>,
    opts: O,
    aim: impl FnOnce(O, &Path, &Path) -> O,
) -> Result<(C, Relay), Error>
where
    O: ConnectOptions<Connection = C>,
{
    // The socket first: if it cannot be made (a temporary directory too long for a socket
    // path, say), sqlx connects by itself, as it would without the relay.
    let Ok((dir, listener)) = listen(name) else {
        return Ok((opts.connect().await?, Relay(None)));
    };
    let path = dir.path().join(name);
    // URLs keep an IPv6 address in brackets.
    let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
    tcp.set_nodelay(true)?;
    let opts = aim(opts, dir.path(), &path);
    let connecting = Box::pin(async move { opts.connect().await });
    start(dir, listener, tcp, first, connecting).await
}

/// A fresh private directory (0700) with a listening socket `name` in it.
fn listen(name: &str) -> std::io::Result<(tempfile::TempDir, UnixListener)> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("dqwatch-{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?;
    let listener = UnixListener::bind(dir.path().join(name))?;
    Ok((dir, listener))
}

/// Accepts sqlx's connection on `listener` while `connecting` runs, removes the socket and
/// its directory, starts the relay and finishes the connect.
async fn start<C, F>(
    dir: tempfile::TempDir,
    listener: UnixListener,
    tcp: TcpStream,
    first: Option<&'static [u8]>,
    mut connecting: std::pin::Pin<Box<F>>,
) -> Result<(C, Relay), Error>
where
    F: Future<Output = Result<C, Error>>,
{
    let client = tokio::select! {
        accepted = listener.accept() => accepted?.0,
        // sqlx gave up before reaching the socket.
        done = &mut connecting => {
            return done.and(Err(Error::Protocol("the driver did not connect to the relay".into())));
        }
    };
    drop(listener);
    // Removes the socket file and the directory: nobody else can connect any more.
    drop(dir);
    // Only this process may have connected (the directory is 0700, so another would have
    // to run as the same user; this makes sure all the same).
    let me = i32::try_from(std::process::id()).ok();
    if client.peer_cred()?.pid() != me {
        return Err(Error::Protocol(
            "another process connected to dqwatch's private socket".into(),
        ));
    }
    let task = tokio::spawn(relay(client, tcp, first));
    // If sqlx fails from here (or this future is dropped), its socket closes and the relay
    // ends with it.
    Ok((connecting.await?, Relay(Some(task))))
}

/// Copies bytes both ways until sqlx closes its socket, or until the server closes and then
/// sqlx does: the task never outlives the connection.
async fn relay(mut client: UnixStream, mut server: TcpStream, first: Option<&'static [u8]>) {
    if let Some(want) = first {
        let mut head = vec![0; want.len()];
        if client.read_exact(&mut head).await.is_err() {
            return;
        }
        if head != want {
            tracing::warn!("The database driver did not ask for TLS first; connection closed.");
            return;
        }
        if server.write_all(&head).await.is_err() {
            return;
        }
    }
    let (mut client_rx, mut client_tx) = client.split();
    let (mut server_rx, mut server_tx) = server.split();
    tokio::select! {
        _ = tokio::io::copy(&mut client_rx, &mut server_tx) => {
            // sqlx closed the connection (or dropped it): so does the relay, as sqlx would
            // close its own TCP socket.
            let _ = server_tx.shutdown().await;
        }
        _ = tokio::io::copy(&mut server_rx, &mut client_tx) => {
            // The server closed (after a Terminate, say): sqlx reads the end; what it still
            // sends (a TLS close_notify) is read and dropped until it closes too, so that its
            // write does not fail on a closed socket.
            let _ = client_tx.shutdown().await;
            let _ = tokio::io::copy(&mut client_rx, &mut tokio::io::sink()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;
    use std::str::FromStr;
    use std::time::{Duration, Instant};

    fn postgres_url(test: &str) -> Option<String> {
        let url = std::env::var("DQWATCH_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty());
        if url.is_none() {
            use std::io::Write as _;
            let line = format!("SKIP {test}: DQWATCH_TEST_POSTGRES_URL not set\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        url
    }

    fn alive_tasks() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Directories of this process's relay sockets still on disk.
    fn socket_dirs() -> usize {
        let prefix = format!("dqwatch-{}-", std::process::id());
        std::fs::read_dir(std::env::temp_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Polls `done` until it holds, for at most 10 s.
    async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done().await {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// With `sslmode=require` the connection goes through the relay (one task per
    /// connection), negotiates TLS with the server over TCP, leaves no socket on disk, and
    /// once closed or dropped leaves no relay task and no server session behind.
    #[tokio::test]
    async fn tls_through_the_relay_and_nothing_left_behind() {
        let Some(url) = postgres_url("tls_through_the_relay_and_nothing_left_behind") else {
            return;
        };
        let base = PgConnectOptions::from_str(&url).expect("url");
        let mut probe = base
            .clone()
            .ssl_mode(PgSslMode::Disable)
            .connect()
            .await
            .expect("probe");
        let tasks = alive_tasks();
        let mut conns = Vec::new();
        let mut pids = Vec::new();
        for _ in 0..3 {
            let (mut c, relay) = connect_pg(base.clone().ssl_mode(PgSslMode::Require))
                .await
                .expect("connect through the relay");
            let (pid, ssl, tcp): (i32, bool, bool) = sqlx::query_as(
                "SELECT pid, ssl, inet_client_addr() IS NOT NULL \
                 FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .fetch_one(&mut c)
            .await
            .expect("query");
            assert!(ssl, "no TLS through the relay");
            assert!(tcp, "not a TCP connection on the server's side");
            pids.push(pid);
            conns.push((c, relay));
        }
        assert_eq!(alive_tasks(), tasks + 3, "one relay task per connection");
        // Other tests of this process may be connecting meanwhile: their directories come
        // and go; one left behind stays.
        eventually("relay sockets removed", async || socket_dirs() == 0).await;

        // One closed politely: its relay is done once `finish` returns. Two dropped.
        let mut conns = conns.into_iter();
        if let Some((c, relay)) = conns.next() {
            c.close().await.expect("close");
            relay.finish().await;
            assert_eq!(
                alive_tasks(),
                tasks + 2,
                "the closed connection's relay ran on"
            );
        }
        drop(conns);
        eventually("relay tasks ended", async || alive_tasks() == tasks).await;
        eventually("server sessions ended", async || {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&pids)
                    .fetch_one(&mut probe)
                    .await
                    .unwrap_or(-1);
            n == 0
        })
        .await;
    }

    /// `sslmode=disable` connects directly: no relay task.
    #[tokio::test]
    async fn without_tls_there_is_no_relay() {
        let Some(url) = postgres_url("without_tls_there_is_no_relay") else {
            return;
        };
        let opts = PgConnectOptions::from_str(&url)
            .expect("url")
            .ssl_mode(PgSslMode::Disable);
        let tasks = alive_tasks();
        let (c, relay) = connect_pg(opts).await.expect("connect");
        assert!(relay.0.is_none());
        assert_eq!(alive_tasks(), tasks);
        c.close().await.expect("close");
    }

    /// `verify-full` checks the certificate against the configured host, not the socket
    /// path: the same answer as sqlx's own TCP connection.
    #[tokio::test]
    async fn verify_full_checks_the_real_host() {
        let Some(url) = postgres_url("verify_full_checks_the_real_host") else {
            return;
        };
        let opts = PgConnectOptions::from_str(&url)
            .expect("url")
            .ssl_mode(PgSslMode::VerifyFull);
        let direct = opts.clone().connect().await.map(drop);
        let relayed = connect_pg(opts).await.map(drop);
        match (direct, relayed) {
            (Ok(()), Ok(())) => {}
            (Err(d), Err(r)) => assert_eq!(d.to_string(), r.to_string()),
            (d, r) => panic!("direct {d:?}, relayed {r:?}"),
        }
    }
}
