//! The operator's drain, without a cluster: its API server is a loopback
//! port that refuses every connection, so its caches never sync.

use std::net::TcpListener;
use std::time::Duration;

use job_template_run::reconciler::{self, Options, Scope};

/// A loopback address where nothing listens.
fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let address = listener.local_addr().expect("the port's address");
    drop(listener);
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stopped_before_its_caches_sync_stops_at_once() {
    let url = refused_address().parse().expect("a valid URL");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("a client");
    let scope = Scope::Namespaces(vec!["first".into(), "second".into()]);
    let options = Options::new(scope, ([127, 0, 0, 1], 0).into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(reconciler::run_with_client(client, options, async move {
        let _ = stopped.await;
    }));
    // Long enough for the watches to have failed and be backing off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!operator.is_finished(), "the operator stopped before it was asked to");
    stop.send(()).expect("the operator still listens for the shutdown");
    let ended = tokio::time::timeout(Duration::from_secs(10), operator)
        .await
        .expect("the operator drains within 10 s of the shutdown, though its caches never synced");
    ended.expect("the operator task does not panic").expect("the operator stops without an error");
}
