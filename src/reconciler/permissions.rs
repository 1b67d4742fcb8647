//! Every API call the operator makes, as RBAC rules. The Helm chart's
//! ClusterRole/Role must grant exactly these (a test renders the chart and
//! compares), and the e2e suite runs the operator with that identity.

/// One RBAC rule: an API group, a resource and the verbs used on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// The operator's permissions, without the optional callback Secrets.
pub const PERMISSIONS: &[Permission] = &[
    // The Controller lists and watches runs; status is replaced through the
    // subresource, conditional on the run's resourceVersion; a finished run
    // past its TTL or beyond its template's history limit is deleted.
    Permission { api_group: "cellbytes.io", resource: "jobruns", verbs: &["get", "list", "watch", "delete"] },
    Permission { api_group: "cellbytes.io", resource: "jobruns/status", verbs: &["update"] },
    // Templates are cached; a cache miss makes one GET. Their status
    // (`Valid`) is written through the subresource by a merge patch.
    Permission { api_group: "cellbytes.io", resource: "jobtemplates", verbs: &["get", "list", "watch"] },
    Permission { api_group: "cellbytes.io", resource: "jobtemplates/status", verbs: &["patch"] },
    // Owned Jobs are cached; create, a GET after a 409 or before a failure,
    // and patch to set or remove the operator's finalizer, and to suspend a
    // cancelled run's Job.
    Permission { api_group: "batch", resource: "jobs", verbs: &["get", "list", "watch", "create", "patch"] },
    // The pods of the operator's Jobs and the Job controller's FailedCreate
    // Events are cached (say why a run is stalled); never read one by one.
    Permission { api_group: "", resource: "pods", verbs: &["list", "watch"] },
    Permission { api_group: "", resource: "events", verbs: &["list", "watch"] },
    // The event recorder creates events and patches repeated ones.
    Permission { api_group: "events.k8s.io", resource: "events", verbs: &["create", "patch"] },
];

/// Granted only when callbacks with Secret tokens are turned on.
pub const CALLBACK_SECRET_PERMISSION: Permission = Permission { api_group: "", resource: "secrets", verbs: &["get"] };

/// Leader election (`leader.rs`), granted only in the operator's own
/// namespace and only with `leaderElection.enabled`: read the Lease, create
/// it when it is missing, and renew, take over or release it by a replace
/// conditional on its resourceVersion. The chart restricts `get` and
/// `update` to the one Lease by name (RBAC cannot restrict `create` so).
pub const LEADER_ELECTION_PERMISSION: Permission =
    Permission { api_group: "coordination.k8s.io", resource: "leases", verbs: &["get", "create", "update"] };
