//! Waiting for the cluster to reach a state, with a deadline. Tests may
//! poll; the operator never does.

use std::time::{Duration, Instant};

/// Calls `check` every 200 ms until it returns `Ok`, or fails with the last
/// error after `timeout`.
pub async fn until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => {
                return Err(format!("timed out after {timeout:?} waiting for {what}: {last}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
