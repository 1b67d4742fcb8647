//! kubectl's completion hook for the plugin: `kubectl jobrun <TAB>` runs
//! this with the words typed after `jobrun`, the last one partial.

use kubectl_jobrun::args::Global;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let global = Global::default();
    kubectl_jobrun::commands::complete(&global, &words).await;
}
