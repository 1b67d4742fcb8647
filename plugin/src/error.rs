//! Why a command failed: printed as one line on stderr, exit code 1.

/// What failed, with the names involved.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read the kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("cannot make a client: {0}")]
    Client(#[source] kube::Error),
    #[error("jobruns.cellbytes.io {name:?} not found in namespace {namespace}")]
    RunNotFound { name: String, namespace: String },
    #[error("jobtemplates.cellbytes.io {name:?} not found in namespace {namespace}")]
    TemplateNotFound { name: String, namespace: String },
    #[error("{verb} {what}: {}", api_text(source))]
    Api {
        verb: &'static str,
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The template's policy refuses the run: the operator's reason and message.
    #[error("{reason}: {message}")]
    Refused { reason: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("jobrun {name} {state}{why}")]
    NoJob { name: String, state: &'static str, why: String },
    #[error("cannot read the log of pod {pod}: {source}")]
    ReadLog {
        pod: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the output: {0}")]
    Encode(String),
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    #[error("watch of {what} ended: {source}")]
    Watch {
        what: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
}

/// The server's words, as kubectl prints them (`message (Reason)`), not the
/// client's debug form.
fn api_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.reason.is_empty() => format!("{} ({})", status.message, status.reason),
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

impl PluginError {
    pub fn api(verb: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Api { verb, what, source }
    }
}
