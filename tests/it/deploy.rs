//! The Kubernetes manifests under deploy/k8s, as `kubectl kustomize` builds them (the base and
//! every overlay), agree with how moim listens and shuts down (docs/operations.md,
//! "Kubernetes"): the probes ask the right endpoints on the HTTP port, the kubelet waits longer
//! than moim's drain, a draining pod is out of rotation before its clients are told to
//! reconnect, a rollout never goes below the wanted count, voluntary disruptions are bounded,
//! the Services reach the ports moim listens on (RTMP on its own layer-4 Service), and the
//! container runs as an unprivileged user.

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::helpers::{manifest_dir, require_all};

/// moim's own defaults (docs/configuration.md), for a setting the manifests leave out.
const DEFAULT_SHUTDOWN_GRACE_S: u64 = 10;
const DEFAULT_DRAIN_DELAY_S: u64 = 0;
const DEFAULT_DRAIN_JITTER_S: f64 = 1.0;

/// Builds one kustomization (a path relative to the repository); `None` when kubectl is
/// missing and that is allowed.
fn kustomize(dir: &str) -> Option<Vec<Value>> {
    let out = match Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .current_dir(manifest_dir())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                !require_all(),
                "kubectl is not on PATH but MOIM_REQUIRE_ALL=1: the deploy/k8s checks need it"
            );
            eprintln!("SKIPPED (kubectl): install kubectl 1.27 or later to check deploy/k8s");
            return None;
        }
        Err(e) => panic!("running kubectl kustomize {dir}: {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kubectl kustomize prints UTF-8");
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("the YAML of kubectl kustomize {dir}: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect();
    assert!(
        !docs.is_empty(),
        "kubectl kustomize {dir} built no resources"
    );
    Some(docs)
}

/// What one kustomization built.
struct Build {
    dir: String,
    docs: Vec<Value>,
}

impl Build {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name).unwrap_or_else(|| {
            let have: Vec<String> = self
                .docs
                .iter()
                .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
                .collect();
            panic!("{}: no {kind} named {name}; it has {have:?}", self.dir)
        })
    }
}

/// A whole number of seconds (or a count) at `what`, or `default` when it is left out.
fn count_or(v: &Value, what: &str, default: u64) -> u64 {
    if v.is_null() {
        return default;
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is {v}, not a whole number"))
}

/// The port of an address such as `0.0.0.0:8080`, which must be reachable from outside the pod.
fn listen_port(env: &BTreeMap<String, String>, var: &str) -> u64 {
    let addr = env
        .get(var)
        .unwrap_or_else(|| panic!("{var} is not set in the manifests"));
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{var}={addr} has no port"));
    assert!(
        ["0.0.0.0", "[::]", "::"].contains(&host),
        "{var}={addr}: inside a pod moim must listen on all addresses, or probes and Services \
         cannot reach it"
    );
    port.parse()
        .unwrap_or_else(|e| panic!("{var}={addr}: the port is not a number: {e}"))
}

/// The environment the container starts with: its envFrom sources in order (a later one wins),
/// then its own `env` entries. A Secret counts only when it is part of the build.
fn environment(b: &Build, c: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for src in c["envFrom"].as_array().into_iter().flatten() {
        let prefix = src["prefix"].as_str().unwrap_or("");
        if let Some(name) = src["configMapRef"]["name"].as_str() {
            let cm = b.get("ConfigMap", name);
            for (k, v) in cm["data"].as_object().into_iter().flatten() {
                let v = v
                    .as_str()
                    .unwrap_or_else(|| panic!("ConfigMap {name}: {k} is {v}, not a string"));
                env.insert(format!("{prefix}{k}"), v.to_string());
            }
        }
        if let Some(name) = src["secretRef"]["name"].as_str() {
            if let Some(secret) = b.find("Secret", name) {
                for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
                    env.insert(format!("{prefix}{k}"), v.as_str().unwrap_or("").to_string());
                }
            }
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            env.insert(k.to_string(), v.to_string());
        }
    }
    env
}

fn seconds(env: &BTreeMap<String, String>, var: &str, default: u64) -> u64 {
    env.get(var).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|e| panic!("{var}={v} is not a whole number of seconds: {e}"))
    })
}

/// How long the preStop hook takes: the sleep action, or `exec: [sleep, N]`; 0 without one.
fn pre_stop_s(dir: &str, c: &Value) -> u64 {
    let hook = &c["lifecycle"]["preStop"];
    if hook.is_null() {
        return 0;
    }
    if !hook["sleep"].is_null() {
        return count_or(&hook["sleep"]["seconds"], "preStop.sleep.seconds", 0);
    }
    let words: Vec<&str> = hook["exec"]["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let [program, n] = words.as_slice() {
        if program.ends_with("sleep") {
            return n
                .parse()
                .unwrap_or_else(|e| panic!("{dir}: preStop sleeps {n:?}: {e}"));
        }
    }
    panic!("{dir}: preStop {hook} is neither a sleep action nor `sleep N`; its length is unknown")
}

/// The container port a Service's or probe's port names (a port name or a number).
fn resolve_port(dir: &str, c: &Value, port: &Value) -> (u64, String) {
    let mut ports = c["ports"].as_array().into_iter().flatten();
    let found = if let Some(name) = port.as_str() {
        ports.find(|p| p["name"] == name)
    } else if let Some(n) = port.as_u64() {
        ports.find(|p| p["containerPort"] == n)
    } else {
        None
    };
    let p = found.unwrap_or_else(|| panic!("{dir}: port {port} is not a port of the container"));
    let number = count_or(&p["containerPort"], "containerPort", 0);
    let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
    (number, protocol)
}

/// A probe's path and port, the port as the container port number.
fn http_probe(dir: &str, c: &Value, which: &str) -> (String, u64) {
    let probe = &c[which];
    assert!(!probe.is_null(), "{dir}: the moim container has no {which}");
    let get = &probe["httpGet"];
    assert!(
        !get.is_null(),
        "{dir}: {which} is not an httpGet probe: {probe}"
    );
    let path = get["path"].as_str().unwrap_or("/").to_string();
    let (port, _) = resolve_port(dir, c, &get["port"]);
    (path, port)
}

/// Every label in `selector` is on the pods.
fn selects(selector: &Value, pod_labels: &Value) -> bool {
    let Some(want) = selector.as_object() else {
        return false;
    };
    !want.is_empty() && want.iter().all(|(k, v)| pod_labels[k] == *v)
}

/// Checks one build of the manifests.
fn check(b: &Build, overlay: bool) {
    let dir = b.dir.as_str();
    let deploy = b.get("Deployment", "moim");
    let spec = &deploy["spec"];
    let pod = &spec["template"]["spec"];
    let pod_labels = &spec["template"]["metadata"]["labels"];
    let c = pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "moim")
        .unwrap_or_else(|| panic!("{dir}: the Deployment has no container named moim"));
    let env = environment(b, c);

    // What moim listens on is what the container declares.
    let http_port = listen_port(&env, "MOIM_LISTEN");
    let rtmp_port = listen_port(&env, "MOIM_RTMP_LISTEN");
    assert_eq!(
        resolve_port(dir, c, &Value::from("http")),
        (http_port, "TCP".to_string()),
        "{dir}: the container port named http must be MOIM_LISTEN's port, over TCP"
    );
    assert_eq!(
        resolve_port(dir, c, &Value::from("rtmp")),
        (rtmp_port, "TCP".to_string()),
        "{dir}: the container port named rtmp must be MOIM_RTMP_LISTEN's port, over TCP"
    );
    if env.contains_key("MOIM_WEBRTC_LISTEN") {
        let webrtc_port = listen_port(&env, "MOIM_WEBRTC_LISTEN");
        assert_eq!(
            resolve_port(dir, c, &Value::from(webrtc_port)).1,
            "UDP",
            "{dir}: MOIM_WEBRTC_LISTEN's port {webrtc_port} must be declared as UDP"
        );
    }

    // Probes: liveness and startup on /healthz, readiness on /readyz, all on the HTTP port.
    let (path, port) = http_probe(dir, c, "readinessProbe");
    assert_eq!(
        (path.as_str(), port),
        ("/readyz", http_port),
        "{dir}: readiness must ask /readyz on the HTTP port {http_port}, which says 503 once \
         moim drains"
    );
    let (path, port) = http_probe(dir, c, "livenessProbe");
    assert_eq!(
        (path.as_str(), port),
        ("/healthz", http_port),
        "{dir}: liveness must ask /healthz on the HTTP port {http_port}: /readyz says 503 \
         while draining, and a liveness probe on it would kill a draining pod"
    );
    let (path, port) = http_probe(dir, c, "startupProbe");
    assert_eq!(
        (path.as_str(), port),
        ("/healthz", http_port),
        "{dir}: the startup probe must ask /healthz on the HTTP port {http_port}"
    );

    // Drain times.
    let grace = seconds(&env, "MOIM_SHUTDOWN_GRACE_S", DEFAULT_SHUTDOWN_GRACE_S);
    let delay = seconds(&env, "MOIM_DRAIN_DELAY_S", DEFAULT_DRAIN_DELAY_S);
    let jitter: f64 = env
        .get("MOIM_DRAIN_JITTER_S")
        .map_or(DEFAULT_DRAIN_JITTER_S, |v| {
            v.parse()
                .unwrap_or_else(|e| panic!("{dir}: MOIM_DRAIN_JITTER_S={v} is not a number: {e}"))
        });
    let pre_stop = pre_stop_s(dir, c);
    let termination = count_or(
        &pod["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
        30,
    );
    // The kubelet's clock starts at deletion and covers preStop; moim's grace starts at SIGTERM
    // (after preStop) and already contains the drain delay, so preStop + grace would do. The
    // delay is counted again as margin, so that raising it alone never lets the kubelet's
    // SIGKILL land inside moim's drain.
    assert!(
        termination > pre_stop + delay + grace,
        "{dir}: terminationGracePeriodSeconds {termination} must be above preStop {pre_stop} + \
         MOIM_DRAIN_DELAY_S {delay} + MOIM_SHUTDOWN_GRACE_S {grace} = {}",
        pre_stop + delay + grace
    );
    // moim refuses to start when the drain does not fit in its grace period (config.rs); the
    // jitter it uses is at most half the grace.
    let jitter_used = jitter.clamp(0.0, grace as f64 / 2.0);
    assert!(
        (delay as f64) + jitter_used < grace as f64,
        "{dir}: MOIM_DRAIN_DELAY_S {delay} + MOIM_DRAIN_JITTER_S {jitter_used} must be below \
         MOIM_SHUTDOWN_GRACE_S {grace}, or moim refuses to start"
    );
    // Out of rotation before clients are told to move. Deleting a pod takes it out of the
    // Services' endpoints at once, and preStop gives kube-proxy and ingress controllers time to
    // act on that. /readyz turns 503 only at SIGTERM, which comes after preStop, so for anything
    // that follows readiness (the endpoints' `serving` condition, which kube-proxy falls back
    // to when no pod is ready, and balancers that poll /readyz) the drain delay alone must
    // cover the probe's failureThreshold × periodSeconds: a stricter rule than drain delay +
    // preStop ≥ failureThreshold × periodSeconds, which it implies.
    let ready = &c["readinessProbe"];
    let period = count_or(&ready["periodSeconds"], "readinessProbe.periodSeconds", 10);
    let failures = count_or(
        &ready["failureThreshold"],
        "readinessProbe.failureThreshold",
        3,
    );
    assert!(
        delay >= period * failures,
        "{dir}: MOIM_DRAIN_DELAY_S {delay} must be at least the readiness probe's \
         periodSeconds {period} × failureThreshold {failures} = {}, so the pod is out of \
         rotation before its WebSocket clients are told to reconnect (preStop {pre_stop} runs \
         before /readyz turns 503 and does not count)",
        period * failures
    );

    // Rollouts never go below the wanted count.
    let strategy = &spec["strategy"];
    assert!(
        strategy["type"].is_null() || strategy["type"] == "RollingUpdate",
        "{dir}: the Deployment's strategy is {}, not RollingUpdate",
        strategy["type"]
    );
    let max_unavailable = &strategy["rollingUpdate"]["maxUnavailable"];
    assert!(
        *max_unavailable == 0_u64 || *max_unavailable == "0%",
        "{dir}: rollingUpdate.maxUnavailable is {max_unavailable} (left out means 25%), it must \
         be 0 so a rollout takes an old pod down only once a new one is ready"
    );
    let max_surge = &strategy["rollingUpdate"]["maxSurge"];
    assert!(
        max_surge.as_u64().is_some_and(|n| n >= 1)
            || max_surge
                .as_str()
                .is_some_and(|s| s.ends_with('%') && s != "0%"),
        "{dir}: rollingUpdate.maxSurge is {max_surge}; with maxUnavailable 0 it must be at least \
         1 or the rollout cannot start"
    );
    let hpa_min = b
        .all("HorizontalPodAutoscaler")
        .into_iter()
        .find(|h| h["spec"]["scaleTargetRef"]["name"] == "moim")
        .map(|h| count_or(&h["spec"]["minReplicas"], "minReplicas", 1));
    // Without `replicas` (left to the autoscaler) the count starts at the autoscaler's minimum.
    let replicas = count_or(&spec["replicas"], "replicas", hpa_min.unwrap_or(1));
    assert!(
        replicas >= 2,
        "{dir}: {replicas} replica(s); several identical nodes need at least 2"
    );
    let floor = hpa_min.map_or(replicas, |m| m.min(replicas));

    // Voluntary disruptions (node drains) are bounded, and still possible.
    let pdb = b
        .all("PodDisruptionBudget")
        .into_iter()
        .find(|p| selects(&p["spec"]["selector"]["matchLabels"], pod_labels))
        .unwrap_or_else(|| panic!("{dir}: no PodDisruptionBudget selects moim's pods"));
    let (min_available, max_unavailable) =
        (&pdb["spec"]["minAvailable"], &pdb["spec"]["maxUnavailable"]);
    match (min_available.as_u64(), max_unavailable.as_u64()) {
        (Some(n), None) => assert!(
            (1..floor).contains(&n),
            "{dir}: PodDisruptionBudget minAvailable {n} must be at least 1 and below the \
             smallest count {floor}, or it stops every node drain"
        ),
        (None, Some(n)) => assert!(
            (1..floor).contains(&n),
            "{dir}: PodDisruptionBudget maxUnavailable {n} must be at least 1 and below the \
             smallest count {floor}"
        ),
        _ => panic!(
            "{dir}: the PodDisruptionBudget must set one whole number, minAvailable \
             ({min_available}) or maxUnavailable ({max_unavailable})"
        ),
    }

    // The Services: HTTP inside the cluster on port 80; RTMP on its own layer-4 load balancer.
    let http = b.get("Service", "moim-http");
    let rtmp = b.get("Service", "moim-rtmp");
    for svc in [http, rtmp] {
        let name = &svc["metadata"]["name"];
        assert!(
            selects(&svc["spec"]["selector"], pod_labels),
            "{dir}: Service {name}'s selector {} does not select moim's pods {pod_labels}",
            svc["spec"]["selector"]
        );
    }
    // (service port, container port, protocol) of each port of a Service.
    let targets = |svc: &Value| -> Vec<(u64, u64, String)> {
        svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let port = count_or(&p["port"], "Service port", 0);
                let target = if p["targetPort"].is_null() {
                    Value::from(port)
                } else {
                    p["targetPort"].clone()
                };
                let (to, _) = resolve_port(dir, c, &target);
                let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
                (port, to, protocol)
            })
            .collect()
    };
    let http_ports = targets(http);
    assert!(
        http["spec"]["type"].is_null() || http["spec"]["type"] == "ClusterIP",
        "{dir}: moim-http is {}, it must be ClusterIP (reached through the ingress)",
        http["spec"]["type"]
    );
    assert!(
        http_ports.contains(&(80, http_port, "TCP".to_string())),
        "{dir}: moim-http must map port 80/TCP to the HTTP port {http_port}; it has (port, \
         container port, protocol) {http_ports:?}"
    );
    assert!(
        http_ports.iter().all(|(_, to, _)| *to == http_port),
        "{dir}: moim-http must carry HTTP only (container port {http_port}), not {http_ports:?}"
    );
    let rtmp_ports = targets(rtmp);
    assert_eq!(
        rtmp["spec"]["type"], "LoadBalancer",
        "{dir}: moim-rtmp must be a LoadBalancer: encoders come from outside the cluster over \
         plain TCP, which an HTTP ingress does not carry"
    );
    assert_eq!(
        rtmp["spec"]["externalTrafficPolicy"], "Local",
        "{dir}: moim-rtmp needs externalTrafficPolicy Local to keep the encoders' addresses for \
         the per-address RTMP limits"
    );
    assert_eq!(
        rtmp_ports,
        vec![(1935, rtmp_port, "TCP".to_string())],
        "{dir}: moim-rtmp must map exactly 1935/TCP to the RTMP port {rtmp_port}"
    );

    // An unprivileged container: the pod's settings, overridden by the container's.
    let effective = |key: &str| -> Value {
        let own = &c["securityContext"][key];
        if own.is_null() {
            pod["securityContext"][key].clone()
        } else {
            own.clone()
        }
    };
    assert_eq!(
        effective("runAsNonRoot"),
        Value::Bool(true),
        "{dir}: runAsNonRoot must be true"
    );
    let user = effective("runAsUser");
    assert!(
        user.as_u64().is_some_and(|u| u != 0),
        "{dir}: runAsUser is {user}; it must be a user other than root (the image's is 10001)"
    );
    let sc = &c["securityContext"];
    assert_eq!(
        sc["allowPrivilegeEscalation"],
        Value::Bool(false),
        "{dir}: allowPrivilegeEscalation must be false"
    );
    assert_eq!(
        sc["readOnlyRootFilesystem"],
        Value::Bool(true),
        "{dir}: readOnlyRootFilesystem must be true"
    );
    assert!(
        sc["privileged"].is_null() || sc["privileged"] == Value::Bool(false),
        "{dir}: the container must not be privileged"
    );
    assert!(
        sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|drops| drops.iter().any(|cap| cap == "ALL")),
        "{dir}: capabilities must drop ALL, not {}",
        sc["capabilities"]
    );
    // With a read-only root, moim's data directory must be a writable volume.
    let data_dir = env
        .get("MOIM_DATA_DIR")
        .unwrap_or_else(|| panic!("{dir}: MOIM_DATA_DIR is not set"));
    assert!(
        c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["mountPath"] == data_dir.as_str() && m["readOnly"] != Value::Bool(true)),
        "{dir}: MOIM_DATA_DIR {data_dir} is not a writable volume mount, and the root \
         filesystem is read-only"
    );
    // Service links would add variables such as MOIM_HTTP_PORT=tcp://… to moim's environment.
    assert_eq!(
        pod["enableServiceLinks"],
        Value::Bool(false),
        "{dir}: enableServiceLinks must be false: moim reads MOIM_* variables"
    );

    // An overlay must not ship the base's placeholder credentials (nor overwrite the real ones).
    if overlay {
        for secret in b.all("Secret") {
            assert!(
                !secret.to_string().contains("CHANGE-ME"),
                "{dir}: Secret {} still holds the base's placeholder values",
                secret["metadata"]["name"]
            );
        }
    }
}

#[test]
fn kubernetes_manifests_agree_with_the_drain() {
    let root = manifest_dir();
    let mut dirs = vec![("deploy/k8s/base".to_string(), false)];
    let mut overlays: Vec<String> = std::fs::read_dir(root.join("deploy/k8s/overlays"))
        .expect("deploy/k8s/overlays exists")
        .map(|e| e.expect("reading deploy/k8s/overlays").path())
        .filter(|p| p.join("kustomization.yaml").is_file())
        .map(|p| {
            let name = p.file_name().expect("an overlay's name").to_string_lossy();
            format!("deploy/k8s/overlays/{name}")
        })
        .collect();
    overlays.sort();
    assert!(
        overlays.iter().any(|o| o.ends_with("/production")),
        "no production overlay in deploy/k8s/overlays: {overlays:?}"
    );
    dirs.extend(overlays.into_iter().map(|o| (o, true)));
    for (dir, overlay) in dirs {
        let Some(docs) = kustomize(&dir) else {
            return;
        };
        check(&Build { dir, docs }, overlay);
    }
}
