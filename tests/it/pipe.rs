//! Output into a pipe whose reader has gone (`dqwatch outbox list | head -1`): no panic, no
//! message, and the command's own exit code (a breaching `run` still exits 1).

use crate::util::TestEnv;
use std::io::Read as _;
use std::process::Stdio;

// See: issues/8 item 12
#[test]
fn output_to_a_closed_pipe_ends_quietly_with_the_commands_own_exit_code() {
    let env = TestEnv::sqlite("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);", "");
    env.check_with(
        "a",
        &["description = \"breaches\"", "severity = \"P1\""],
        "SELECT n FROM t",
    );
    env.run(["run"]).code(1);
    for (args, code) in [
        (vec!["list"], 0),
        (vec!["render", "a"], 0),
        (vec!["validate"], 0),
        (vec!["run"], 1),
        (vec!["run", "--format", "json"], 1),
        (vec!["incidents", "list"], 0),
        (vec!["incidents", "show", "1"], 0),
        (vec!["outbox", "list"], 0),
    ] {
        // The read end is closed before the process starts, so its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = env
            .command()
            .arg("--config")
            .arg("dqwatch.toml")
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        let what = args.join(" ");
        assert!(!stderr.contains("panicked"), "{what} panicked:\n{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{what}:\n{stderr}");
        assert_eq!(status.code(), Some(code), "{what}:\n{stderr}");
    }
}
