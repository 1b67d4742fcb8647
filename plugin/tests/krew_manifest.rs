//! Tier 1 (no cluster): the plugin's krew manifest. The committed
//! `plugins/jobrun.yaml` is a template of this version whose sha256 is a
//! placeholder; `make plugin-package` packs the two binaries (here the debug
//! ones cargo built for this test) and writes the manifest with the archive's
//! sha256; krew's validator accepts it, and krew itself installs the package
//! from the local archive, offline, as krew's developer guide tests a plugin
//! (`krew install --manifest=… --archive=…` into a KREW_ROOT of its own).
//!
//! Needs krew and validate-krew-manifest: `$KREW` (the validator beside it), or
//! `${JTR_CACHE_DIR:-$HOME/.cache/job-template-run}/bin/krew` as installed by
//! `bash scripts/install-krew.sh` (`make tools`). Without them the tests that
//! run krew check nothing (one line says so); with `CI=true` they fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const PLUGIN_BIN: &str = env!("CARGO_BIN_EXE_kubectl-jobrun");
const COMPLETE_BIN: &str = env!("CARGO_BIN_EXE_kubectl_complete-jobrun");
/// What the committed template has where the archive's sha256 goes.
const PLACEHOLDER: &str = "SHA256-OF-THE-ARCHIVE";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("plugin/ is in the workspace")
}

fn template_path() -> PathBuf {
    workspace().join("plugins/jobrun.yaml")
}

fn tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn archive_name() -> String {
    format!("kubectl-jobrun_{}_linux_amd64.tar.gz", tag())
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().and_then(|name| name.to_str()).expect("a binary's file name")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_yaml(path: &Path) -> Value {
    let yaml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn the_platform(manifest: &Value) -> &Value {
    let platforms = manifest["spec"]["platforms"].as_array().expect("spec.platforms");
    assert_eq!(platforms.len(), 1, "one platform, linux/amd64: {platforms:?}");
    &platforms[0]
}

/// A folder under cargo's scratch space for tests, emptied first; left in
/// place afterwards, so that a failed test's files can be looked at.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("krew_manifest").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

struct Krew {
    krew: PathBuf,
    validator: PathBuf,
}

/// krew and its validator, or None (after one line saying so) outside CI.
fn krew() -> Option<&'static Krew> {
    static KREW: OnceLock<Result<Krew, String>> = OnceLock::new();
    let found = KREW.get_or_init(|| {
        let krew = match std::env::var_os("KREW") {
            Some(krew) => PathBuf::from(krew),
            None => {
                let cache = match std::env::var_os("JTR_CACHE_DIR") {
                    Some(dir) => PathBuf::from(dir),
                    None => {
                        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/job-template-run")
                    }
                };
                cache.join("bin/krew")
            }
        };
        let validator = krew.with_file_name("validate-krew-manifest");
        match (krew.is_file(), validator.is_file()) {
            (true, true) => Ok(Krew { krew, validator }),
            _ => Err(format!(
                "krew or validate-krew-manifest not found: run `bash scripts/install-krew.sh` \
                 (looked for {} and {}; set KREW to override)",
                krew.display(),
                validator.display()
            )),
        }
    });
    match found {
        Ok(krew) => Some(krew),
        Err(why) if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!("CI needs krew: {why}"),
        Err(why) => {
            static SAID: OnceLock<()> = OnceLock::new();
            // Past libtest's capture, so that the line shows in a passing run; once.
            SAID.get_or_init(|| {
                let _ = writeln!(std::io::stderr(), "krew_manifest: the tests that run krew are skipped: {why}");
            });
            None
        }
    }
}

impl Krew {
    /// `validate-krew-manifest -manifest PATH -skip-install`: its structural
    /// checks (the installing part runs `kubectl krew install` without an
    /// archive, a download).
    fn validate(&self, manifest: &Path) -> Output {
        Command::new(&self.validator)
            .arg("-manifest")
            .arg(manifest)
            .arg("-skip-install")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.validator.display()))
    }

    /// `krew install --manifest=… --archive=…` into `root`, krew's own binary
    /// run standalone (the same program as `kubectl krew`).
    fn install(&self, root: &Path, manifest: &Path, archive: &Path) -> Output {
        let path = std::env::join_paths(
            std::iter::once(root.join("bin"))
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .expect("PATH");
        Command::new(&self.krew)
            .arg("install")
            .arg(format!("--manifest={}", manifest.display()))
            .arg(format!("--archive={}", archive.display()))
            .env("KREW_ROOT", root)
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.krew.display()))
    }
}

struct Package {
    manifest: PathBuf,
    archive: PathBuf,
}

/// `make plugin-package` of the binaries cargo built for this test, once.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let bin_dir = Path::new(PLUGIN_BIN).parent().expect("the binaries' folder");
        assert_eq!(Path::new(COMPLETE_BIN).parent(), Some(bin_dir), "both binaries are in one folder");
        let dist = scratch("dist");
        let output = Command::new("make")
            .args(["-s", "--no-print-directory", "-C"])
            .arg(workspace())
            .arg("plugin-package")
            .arg(format!("PLUGIN_BIN_DIR={}", bin_dir.display()))
            .arg(format!("DIST={}", dist.display()))
            .stdin(Stdio::null())
            .output()
            .expect("cannot run make");
        assert!(
            output.status.success(),
            "make plugin-package failed:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        Package { manifest: dist.join("jobrun.yaml"), archive: dist.join(archive_name()) }
    })
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().expect("cannot run sha256sum");
    assert!(output.status.success(), "sha256sum {}: {}", path.display(), text(&output.stderr));
    text(&output.stdout).split_whitespace().next().expect("sha256sum prints the sum").to_owned()
}

#[test]
fn the_template_is_of_the_plugins_version_and_names_its_release_archive_for_linux_amd64() {
    let manifest = read_yaml(&template_path());
    assert_eq!(manifest["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "jobrun", "the plugin is `kubectl jobrun`");
    assert_eq!(manifest["spec"]["version"], tag(), "plugin/Cargo.toml's version");
    let platform = the_platform(&manifest);
    assert_eq!(platform["selector"], serde_json::json!({ "matchLabels": { "os": "linux", "arch": "amd64" } }));
    let uri = format!("https://github.com/hematoscope/job-template-run/releases/download/{}/{}", tag(), archive_name());
    assert_eq!(platform["uri"], uri.as_str());
    assert_eq!(platform["sha256"], PLACEHOLDER);
}

#[test]
fn the_template_installs_both_binaries_and_links_kubectl_jobrun() {
    let manifest = read_yaml(&template_path());
    let platform = the_platform(&manifest);
    assert_eq!(platform["bin"], file_name(PLUGIN_BIN));
    let files = serde_json::json!([
        { "from": file_name(PLUGIN_BIN), "to": "." },
        { "from": file_name(COMPLETE_BIN), "to": "." },
    ]);
    assert_eq!(platform["files"], files);
}

#[test]
fn krews_validator_refuses_the_committed_template_for_its_placeholder_sha256() {
    let Some(krew) = krew() else { return };
    let output = krew.validate(&template_path());
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the template is not a manifest to publish:\n{stderr}");
    assert!(stderr.contains(&format!("`sha256` value {PLACEHOLDER} is not valid")), "{stderr}");
}

#[test]
fn make_plugin_package_writes_the_template_with_the_sha256_of_the_archive_it_wrote() {
    let package = package();
    let mut expected = read_yaml(&template_path());
    expected["spec"]["platforms"][0]["sha256"] = Value::String(sha256(&package.archive));
    assert_eq!(read_yaml(&package.manifest), expected);
}

#[test]
fn the_archive_holds_the_two_binaries_at_its_top_executable() {
    let package = package();
    let output = Command::new("tar").arg("-tvzf").arg(&package.archive).output().expect("cannot run tar");
    assert!(output.status.success(), "tar -tvzf: {}", text(&output.stderr));
    let listing = text(&output.stdout);
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0], fields[fields.len() - 1])
        })
        .collect();
    assert_eq!(entries, [("-rwxr-xr-x", file_name(PLUGIN_BIN)), ("-rwxr-xr-x", file_name(COMPLETE_BIN))], "{listing}");
}

#[test]
fn krews_validator_accepts_the_packaged_manifest() {
    let Some(krew) = krew() else { return };
    let output = krew.validate(&package().manifest);
    assert!(output.status.success(), "validate-krew-manifest:\n{}{}", text(&output.stdout), text(&output.stderr));
}

#[test]
fn krew_installs_the_package_from_the_local_archive_and_the_plugin_and_its_completion_run() {
    let Some(krew) = krew() else { return };
    let package = package();
    let root = scratch("install");
    let output = krew.install(&root, &package.manifest, &package.archive);
    assert!(output.status.success(), "krew install:\n{}{}", text(&output.stdout), text(&output.stderr));
    assert!(root.join("receipts/jobrun.yaml").is_file(), "krew keeps a receipt of the plugin");

    let plugin = root.join("bin/kubectl-jobrun");
    let version =
        Command::new(&plugin).arg("--version").output().unwrap_or_else(|e| panic!("{}: {e}", plugin.display()));
    assert!(version.status.success(), "{}", text(&version.stderr));
    assert_eq!(text(&version.stdout).trim(), format!("kubectl-jobrun {}", env!("CARGO_PKG_VERSION")));

    // The caveats' own command puts the completion binary next to the plugin.
    let manifest = read_yaml(&package.manifest);
    let caveats = manifest["spec"]["caveats"].as_str().expect("spec.caveats");
    let (_, link) = caveats.split_once("ln -sf").expect("the caveats say how to link the completion binary");
    let linked = Command::new("bash")
        .args(["-euc", &format!("ln -sf{link}")])
        .env("KREW_ROOT", &root)
        .output()
        .expect("cannot run bash");
    assert!(linked.status.success(), "the caveats' ln -sf{link}: {}", text(&linked.stderr));
    let complete = root.join("bin/kubectl_complete-jobrun");
    let candidates = Command::new(&complete)
        .arg("c")
        .env("KUBECONFIG", root.join("no-kubeconfig"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", complete.display()));
    assert!(candidates.status.success(), "{}", text(&candidates.stderr));
    assert_eq!(text(&candidates.stdout).lines().collect::<Vec<_>>(), ["create", "cancel", "completion", ":4"]);
}

#[test]
fn krew_refuses_an_archive_whose_sha256_is_not_the_manifests() {
    let Some(krew) = krew() else { return };
    let package = package();
    let dir = scratch("wrong-sha256");
    let mut manifest = read_yaml(&package.manifest);
    // The sha256 of nothing: a valid sum, of another file.
    let other = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    manifest["spec"]["platforms"][0]["sha256"] = Value::String(other.to_owned());
    let wrong = dir.join("jobrun.yaml");
    std::fs::write(&wrong, serde_norway::to_string(&manifest).expect("YAML")).expect("the manifest is written");

    let root = dir.join("root");
    let output = krew.install(&root, &wrong, &package.archive);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "krew installed an archive of another sha256:\n{stderr}");
    assert!(stderr.contains("checksum does not match"), "{stderr}");
    assert!(!root.join("bin/kubectl-jobrun").exists(), "nothing is linked");
}
