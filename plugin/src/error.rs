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
    #[error("{verb} {what}: {source}")]
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
    #[error("jobrun {name} has no Job yet{why}")]
    NoJob { name: String, why: String },
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

impl PluginError {
    pub fn api(verb: &'static str, what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Api { verb, what, source }
    }
}
