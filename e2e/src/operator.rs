//! The operator under test as a real process: the `job-template-run`
//! binary, run with the cluster's kubeconfig, killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary to run: `JTR_OPERATOR_BIN`, or the workspace's debug build
/// in `CARGO_TARGET_DIR` or `target/` (`make e2e` builds it first).
pub fn binary() -> PathBuf {
    std::env::var_os("JTR_OPERATOR_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("debug/job-template-run")
    })
}

/// A running operator process: the project's binary ([`Self::start`]) or
/// any command ([`Self::spawn`]).
pub struct OperatorProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, serving /healthz, /readyz and /metrics.
    pub endpoint: String,
}

impl OperatorProcess {
    /// Starts `job-template-run controller` for all namespaces and waits
    /// until `/readyz` answers 200 (its caches have synced).
    pub fn start(kubeconfig: &std::path::Path, extra_args: &[&str]) -> Result<Self, String> {
        let binary = binary();
        if !binary.exists() {
            return Err(format!(
                "{} does not exist: run `cargo build --bin job-template-run` (make e2e does)",
                binary.display()
            ));
        }
        let port = free_port()?;
        let mut command = Command::new(&binary);
        command
            .args(["controller", "--listen", &format!("127.0.0.1:{port}"), "--log-level", "info,kube=warn"])
            .args(extra_args)
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut operator = Self::spawn(command, format!("http://127.0.0.1:{port}"))?;
        operator.wait_ready(Duration::from_secs(60))?;
        Ok(operator)
    }

    /// Starts any command as the operator under test (its environment,
    /// arguments and output as the caller set them) and returns at once,
    /// without waiting for readiness; `endpoint` is where it serves
    /// `/readyz`, if anywhere. Killed when dropped, like [`Self::start`]'s.
    pub fn spawn(mut command: Command, endpoint: String) -> Result<Self, String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
        Ok(Self { child, endpoint })
    }

    /// The value of one series of the operator's `/metrics` (the whole
    /// series name with its labels, e.g. `x_total{reason="y"}`); 0 while it
    /// is not exposed yet.
    pub fn metric(&self, series: &str) -> Result<f64, String> {
        metric(&self.endpoint, series)
    }

    /// The process id, e.g. to read its memory from `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `/readyz` every 100 ms until it answers 200, failing early if
    /// the process exits.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the operator exited with {status} before it was ready (its log is above)"));
            }
            if http_get(&self.endpoint, "/readyz").is_ok_and(|(code, _)| code == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let last = http_get(&self.endpoint, "/readyz").map(|(code, body)| format!("{code} {body}"));
        Err(format!("the operator was not ready within {timeout:?} (last /readyz: {last:?}; its log is above)"))
    }
}

impl OperatorProcess {
    /// Sends SIGTERM and waits up to `timeout` for the process to exit;
    /// returns its exit status.
    pub fn terminate(mut self, timeout: Duration) -> Result<std::process::ExitStatus, String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().map_err(|e| e.to_string())?;
        if !sent.success() {
            return Err(format!("kill -TERM {pid} failed"));
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the operator did not exit within {timeout:?} of SIGTERM"))
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One series of the metrics an operator serves at `endpoint`
/// (`http://127.0.0.1:<port>`); 0 when not exposed yet.
pub fn metric(endpoint: &str, series: &str) -> Result<f64, String> {
    let (code, text) = http_get(endpoint, "/metrics")?;
    if code != 200 {
        return Err(format!("/metrics answered {code}"));
    }
    Ok(text
        .lines()
        .find(|line| line.split(' ').next() == Some(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0))
}

/// A loopback port free at the time of asking.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A minimal HTTP/1.0 GET, enough for the operator's own endpoints.
pub fn http_get(endpoint: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status line")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}
