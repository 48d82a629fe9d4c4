//! A PostgreSQL cluster of a test's own, for tests that crash and restart the database server
//! (which the shared server at `LEADSCORE_TEST_POSTGRES` must never be).
//!
//! The cluster is made by `initdb` in a temporary directory (trust authentication, user
//! `postgres`), listens on 127.0.0.1 on a free port with its socket in that directory, and is
//! started and stopped with `pg_ctl`. PostgreSQL refuses to run as root, so as root its programs
//! run as the `postgres` user (`runuser`), who then owns the directory. Dropping the cluster (a
//! test that panics included) stops the server at once and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Cluster {
    /// Holds the data directory (`data`), the server's socket and its log (`log`).
    dir: tempfile::TempDir,
    /// Where `initdb`, `pg_ctl` and `postgres` are.
    bin: PathBuf,
    pub port: u16,
    /// Whether the programs run as the `postgres` user (the test runs as root).
    as_postgres: bool,
}

impl Cluster {
    /// The directory of PostgreSQL's server programs: `LEADSCORE_TEST_PG_BIN`, else the one of
    /// `initdb` on the `PATH`, else the newest `/usr/lib/postgresql/*/bin` (Debian and Ubuntu
    /// keep them off the `PATH`). `None` when none has `initdb`.
    pub fn binaries() -> Option<PathBuf> {
        let has_initdb = |dir: &Path| dir.join("initdb").is_file();
        if let Some(dir) = std::env::var_os("LEADSCORE_TEST_PG_BIN") {
            return Some(PathBuf::from(dir)).filter(|dir| has_initdb(dir));
        }
        let on_path =
            std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|dir| has_initdb(dir)));
        // Where the link on the PATH leads: `pg_ctl` is beside it there, with `postgres`.
        if let Some(real) = on_path.and_then(|dir| std::fs::canonicalize(dir.join("initdb")).ok()) {
            return real.parent().map(Path::to_path_buf);
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
            .filter(|(_, bin)| has_initdb(bin))
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    /// Makes a cluster with the programs in `bin` and starts it; panics with the programs'
    /// output when they fail.
    pub fn start(bin: &Path) -> Cluster {
        let as_postgres = rustix::process::getuid().is_root();
        let dir = tempfile::Builder::new().prefix("leadscore-pg-").tempdir().unwrap();
        if as_postgres {
            checked(
                Command::new("chown").arg("postgres:").arg(dir.path()).output(),
                "chown postgres: on the cluster's directory",
            );
        }
        // A port free now; the server takes it a moment later (nothing else here binds ports
        // by number, so nothing takes it meanwhile).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Cluster { dir, bin: bin.to_path_buf(), port, as_postgres };
        let data = cluster.data();
        let made = cluster
            .program("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"])
            .output();
        checked(made, "initdb");
        cluster.start_server();
        cluster
    }

    /// The URL of `database` on this cluster, as user `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates the database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        self.url(name)
    }

    /// Crashes the server and starts it again: `pg_ctl stop -m immediate` ends every server
    /// process at once, with no checkpoint, so that the start recovers from the write-ahead log
    /// as after a power cut. Every connection breaks; returns once the server accepts new ones.
    pub fn crash_and_restart(&self) {
        let stopped =
            self.program("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
        checked(stopped, "pg_ctl stop -m immediate");
        self.start_server();
    }

    /// Leaves the server running on its directory, to look into after a failure; returns how to
    /// reach and stop it.
    pub fn keep(self) -> String {
        let how = format!(
            "PostgreSQL left running at {} on {} (stop it with: pg_ctl -D {} -m immediate stop)",
            self.url("postgres"),
            self.dir.path().display(),
            self.data().display()
        );
        // Neither stopped nor removed.
        std::mem::forget(self);
        how
    }

    /// The server's log so far, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server on the data directory and waits until it accepts connections.
    fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        let started = self
            .program("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output();
        if !started.as_ref().is_ok_and(|output| output.status.success()) {
            panic!("pg_ctl start failed: {}\nserver log:\n{}", describe(&started), self.log());
        }
    }

    /// The PostgreSQL program `name`, run as `postgres` when the test runs as root.
    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        // A working directory `postgres` may enter (the test's may be closed to it).
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: nothing of the cluster is kept, so there is nothing to write out first.
        let _ = self.program("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

/// Panics with what the program printed unless it ran and succeeded.
fn checked(output: std::io::Result<Output>, what: &str) {
    if !output.as_ref().is_ok_and(|output| output.status.success()) {
        panic!("{what} failed: {}", describe(&output));
    }
}

fn describe(output: &std::io::Result<Output>) -> String {
    match output {
        Ok(output) => format!(
            "{}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => error.to_string(),
    }
}
