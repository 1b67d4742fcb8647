//! The operators under test: any command, started with the cluster's
//! kubeconfig in `KUBECONFIG`, measured from outside through `/proc`.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::operator::{OperatorProcess, http_get};

use crate::error::{BenchError, Result};

/// One `--operator-cmd LABEL=COMMAND`.
#[derive(Debug, Clone)]
pub struct OperatorSpec {
    pub label: String,
    /// Run with `sh -c`; `{port}` is replaced by a free local port, where
    /// the operator must then answer `GET /readyz` with 200 once ready.
    pub command: String,
    /// CRDs to install before it runs (another implementation's).
    pub crds: Option<PathBuf>,
}

impl OperatorSpec {
    pub fn parse(text: &str) -> Result<Self> {
        let (label, command) = text
            .split_once('=')
            .filter(|(label, command)| !label.trim().is_empty() && !command.trim().is_empty())
            .ok_or_else(|| BenchError::Args(format!("--operator-cmd wants LABEL=COMMAND, got {text:?}")))?;
        let label = label.trim();
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(BenchError::Args(format!("operator label {label:?}: use letters, digits, - and _")));
        }
        Ok(Self { label: label.to_owned(), command: command.trim().to_owned(), crds: None })
    }

    /// Ours: the release build in `CARGO_TARGET_DIR` (or `target/`).
    pub fn ours() -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let binary = target.join("release/job-template-run");
        Self {
            label: "ours".into(),
            command: format!("{} controller --listen 127.0.0.1:{{port}}", shell_quote(&binary.to_string_lossy())),
            crds: None,
        }
    }
}

fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A started operator, its own process group, and how to tell it is ready.
pub struct Running {
    pub label: String,
    process: OperatorProcess,
    readyz: bool,
    pub started: Instant,
}

impl Running {
    /// Starts `spec` with `kubeconfig`, its output appended to `log`.
    pub fn spawn(spec: &OperatorSpec, kubeconfig: &Path, log: &Path) -> Result<Self> {
        let port = free_port().map_err(BenchError::io("cannot find a free port"))?;
        let readyz = spec.command.contains("{port}");
        let command_line = spec.command.replace("{port}", &port.to_string());
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| BenchError::Write { path: log.to_path_buf(), source })?;
        let err = file.try_clone().map_err(BenchError::io("cannot duplicate the log file"))?;
        let mut command = Command::new("sh");
        command
            .args(["-c", &command_line])
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0);
        let started = Instant::now();
        let process = OperatorProcess::spawn(command, format!("http://127.0.0.1:{port}"))
            .map_err(|message| BenchError::Operator { label: spec.label.clone(), message })?;
        Ok(Self { label: spec.label.clone(), process, readyz, started })
    }

    /// Whether readiness comes from `/readyz` (else from a first run served).
    pub fn has_readyz(&self) -> bool {
        self.readyz
    }

    /// Polls `/readyz` every 5 ms; the time from spawn to the first 200.
    pub async fn wait_readyz(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        let endpoint = self.process.endpoint.clone();
        loop {
            if let Some(status) = self.process.exited() {
                return Err(self.failed(format!("exited with {status} before it was ready")));
            }
            let probe = endpoint.clone();
            let ok =
                tokio::task::spawn_blocking(move || http_get(&probe, "/readyz").is_ok_and(|(code, _)| code == 200))
                    .await
                    .unwrap_or(false);
            if ok {
                return Ok(self.started.elapsed());
            }
            if Instant::now() >= deadline {
                return Err(self.failed(format!("/readyz did not answer 200 within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn check_alive(&mut self) -> Result<()> {
        match self.process.exited() {
            Some(status) => Err(self.failed(format!("exited with {status}"))),
            None => Ok(()),
        }
    }

    fn failed(&self, message: String) -> BenchError {
        BenchError::Operator { label: self.label.clone(), message: format!("{message} (see its log)") }
    }

    /// One series of the operator's `/metrics` (0 when not exposed).
    pub fn metric(&self, series: &str) -> f64 {
        self.process.metric(series).unwrap_or(0.0)
    }

    /// Resident memory of the process and its descendants.
    pub fn memory(&self) -> Memory {
        Memory::of_tree(self.process.pid())
    }

    /// SIGTERM to the whole group, then waits for the process to exit.
    pub fn stop(self) {
        let group = format!("-{}", self.process.pid());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        match self.process.terminate(Duration::from_secs(20)) {
            Ok(_) => {}
            Err(e) => eprintln!("bench: {}: {e}; killing it", self.label),
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    }
}

fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port())
}

/// `VmRSS` and `VmHWM` (peak) from `/proc/<pid>/status`, summed over a
/// process and its descendants (a `sh -c` wrapper and what it starts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn of_tree(root: u32) -> Self {
        let mut total = Self::default();
        for pid in descendants(root) {
            if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
                total.rss_kib += field_kib(&status, "VmRSS:");
                total.peak_kib += field_kib(&status, "VmHWM:");
            }
        }
        total
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// CPU time (user + system, in clock ticks of 1/100 s) of a process tree.
pub fn cpu_ticks(root: u32) -> u64 {
    descendants(root)
        .iter()
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            // After the command: state is field 3, utime 14 and stime 15.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn field_kib(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `root` and every process whose parent chain leads to it.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces.
            let after = stat.rsplit_once(')')?.1;
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_and_command() {
        let spec = OperatorSpec::parse("py=python3 -m op --port={port}").expect("valid");
        assert_eq!(spec.label, "py");
        assert_eq!(spec.command, "python3 -m op --port={port}");
        assert!(OperatorSpec::parse("no-command=").is_err());
        assert!(OperatorSpec::parse("bad label=x").is_err());
    }

    #[test]
    fn counts_cpu_time_of_this_process() {
        let pid = std::process::id();
        let start = cpu_ticks(pid);
        // Spin (`black_box` keeps the optimiser from folding the loop away)
        // until the count moves: a tick is 10 ms of CPU time, which a loaded
        // machine may take a while to give us, so at most 10 s of wall time.
        let began = Instant::now();
        let mut x = 0u64;
        while cpu_ticks(pid) <= start && began.elapsed() < Duration::from_secs(10) {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
        }
        let end = cpu_ticks(pid);
        assert!(end > start, "CPU ticks did not grow after {:?} of spinning: {start} → {end} ({x})", began.elapsed());
    }

    #[test]
    fn reads_memory_of_this_process() {
        let memory = Memory::of_tree(std::process::id());
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }
}
