//! A stand-in for the Kubernetes API server (none can run here), speaking its wire
//! format: LIST returns a `*List` with `metadata.resourceVersion`; WATCH
//! (`?watch=true&resourceVersion=N`) streams chunked JSON events — ADDED, MODIFIED,
//! DELETED, periodic BOOKMARKs — and answers a compacted resourceVersion with an ERROR
//! event carrying a 410 Expired Status, which makes clients relist. Pods, Services and
//! EndpointSlices, cluster-wide. Honours `fieldSelector=spec.nodeName=N` on pods and
//! metadata-only requests (`Accept: …;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`),
//! pages a LIST by `limit` and `continue` (every page from the first page's snapshot, as
//! the API server serves a list without a resourceVersion), and counts the bytes it
//! sends, as an API server's load would be measured.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Pod,
    Service,
    EndpointSlice,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Pod => "/api/v1/pods",
            Kind::Service => "/api/v1/services",
            Kind::EndpointSlice => "/apis/discovery.k8s.io/v1/endpointslices",
        }
    }
    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pod => ("PodList", "v1"),
            Kind::Service => ("ServiceList", "v1"),
            Kind::EndpointSlice => ("EndpointSliceList", "discovery.k8s.io/v1"),
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
        }
    }
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    /// (resourceVersion, kind, event type, object) since `oldest`.
    log: Vec<(u64, Kind, &'static str, Value)>,
    /// Watches from before this resourceVersion get 410 Gone.
    oldest: u64,
    /// Bumped to end every open watch (clients then reconnect).
    generation: u64,
    watches_served: u64,
    relists: u64,
    bytes_sent: u64,
    /// Every pod request: its fieldSelector ("" when none) and whether metadata only.
    pod_selectors: Vec<(String, bool)>,
    /// Paged lists under way: continue token -> (the list's resourceVersion, the items
    /// not sent yet).
    pages: BTreeMap<u64, (u64, Vec<Value>)>,
    next_token: u64,
    /// LIST responses sent (a paged list is several).
    list_pages: u64,
}

/// What a request asks for besides the kind: a node's pods only, metadata only.
#[derive(Clone, Default)]
struct Filter {
    node: Option<String>,
    metadata_only: bool,
}

impl Filter {
    fn admits(&self, kind: Kind, o: &Value) -> bool {
        match (&self.node, kind) {
            (Some(n), Kind::Pod) => o["spec"]["nodeName"].as_str() == Some(n.as_str()),
            _ => true,
        }
    }

    fn shape(&self, o: &Value) -> Value {
        if self.metadata_only {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
        } else {
            o.clone()
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct FakeKube {
    pub port: u16,
    state: Arc<(Mutex<State>, Condvar)>,
}

fn key_of(o: &Value) -> (String, String) {
    (
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new((
            Mutex::new(State {
                rv: 1,
                oldest: 1,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(conn, s));
            }
        });
        FakeKube { port, state }
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://127.0.0.1:{}\"}}\nusers:\n- name: fake\n  user: {{token: fake-token}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\ncurrent-context: fake\n",
            self.port
        )
    }

    fn record(&self, kind: Kind, ty: &'static str, mut obj: Value) {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!(kind.list_kind().1);
        let (ns, name) = key_of(&obj);
        if ty == "DELETED" {
            st.objects.remove(&(kind, ns, name));
        } else {
            st.objects.insert((kind, ns, name), obj.clone());
        }
        st.log.push((rv, kind, ty, obj));
        cv.notify_all();
    }

    /// Creates or updates an object (ADDED or MODIFIED).
    pub fn apply(&self, kind: Kind, obj: Value) {
        let exists = self.state.0.lock().unwrap().objects.contains_key(&(
            kind,
            key_of(&obj).0,
            key_of(&obj).1,
        ));
        self.record(kind, if exists { "MODIFIED" } else { "ADDED" }, obj);
    }

    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        let obj = self
            .state
            .0
            .lock()
            .unwrap()
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned();
        if let Some(o) = obj {
            self.record(kind, "DELETED", o);
        }
    }

    /// Deletes an object while every watch is cut, and compacts its event away (as etcd
    /// compaction does): clients reconnect with their last resourceVersion, get 410
    /// Gone, and only a relist tells them the object is gone.
    pub fn delete_unseen(&self, kind: Kind, namespace: &str, name: &str) {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        st.objects
            .remove(&(kind, namespace.to_string(), name.to_string()));
        st.rv += 1;
        st.oldest = st.rv + 1;
        st.log.clear();
        st.generation += 1;
        cv.notify_all();
    }

    pub fn relists(&self) -> u64 {
        self.state.0.lock().unwrap().relists
    }

    /// LIST responses sent so far: a list the client asked for in pages counts each.
    pub fn list_pages(&self) -> u64 {
        self.state.0.lock().unwrap().list_pages
    }

    pub fn watches_served(&self) -> u64 {
        self.state.0.lock().unwrap().watches_served
    }

    /// Bytes of response bodies and watch events sent to every client so far.
    pub fn bytes_sent(&self) -> u64 {
        self.state.0.lock().unwrap().bytes_sent
    }

    /// Every pod list and watch so far: its fieldSelector ("" when none), and whether it
    /// asked for metadata only.
    pub fn pod_selectors(&self) -> Vec<(String, bool)> {
        self.state.0.lock().unwrap().pod_selectors.clone()
    }

    /// Objects of a kind now held.
    pub fn count(&self, kind: Kind) -> usize {
        self.state
            .0
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter(|(k, _, _)| *k == kind)
            .count()
    }
}

/// The request target and whether it asks for metadata only (by its Accept header).
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, bool)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut metadata_only = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if h.to_ascii_lowercase().starts_with("accept:") && h.contains("as=PartialObjectMetadata") {
            metadata_only = true;
        }
    }
    request_line
        .split_whitespace()
        .nth(1)
        .map(|t| (t.to_string(), metadata_only))
}

fn query(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let params = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    (path.to_string(), params)
}

fn serve(conn: TcpStream, state: Arc<(Mutex<State>, Condvar)>) {
    let mut out = match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut reader = BufReader::new(conn);
    while let Some((target, metadata_only)) = read_request(&mut reader) {
        let (path, params) = query(&target);
        let kind = [Kind::Pod, Kind::Service, Kind::EndpointSlice]
            .into_iter()
            .find(|k| k.path() == path);
        let Some(kind) = kind else {
            let body = json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}).to_string();
            let _ = write!(
                out,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            continue;
        };
        let selector = params.get("fieldSelector").cloned().unwrap_or_default();
        if kind == Kind::Pod {
            state
                .0
                .lock()
                .unwrap()
                .pod_selectors
                .push((selector.clone(), metadata_only));
        }
        let filter = Filter {
            node: selector
                .split(',')
                .find_map(|s| s.strip_prefix("spec.nodeName="))
                .map(str::to_string),
            metadata_only,
        };
        if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
            let from: u64 = params
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let timeout = params
                .get("timeoutSeconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(290u64)
                .min(290);
            watch(
                &mut out,
                &state,
                kind,
                &filter,
                from,
                Duration::from_secs(timeout),
            );
            return; // the stream ends the connection
        }
        let body = {
            let mut st = state.0.lock().unwrap();
            let limit = params
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            // A continued list goes on from the first page's snapshot; a first page
            // takes one (a relist).
            let continued = params
                .get("continue")
                .and_then(|c| c.parse::<u64>().ok())
                .and_then(|t| st.pages.remove(&t));
            let (rv, mut items) = match continued {
                Some(rest) => rest,
                None => {
                    st.relists += 1;
                    let items: Vec<Value> = st
                        .objects
                        .iter()
                        .filter(|((k, _, _), v)| *k == kind && filter.admits(kind, v))
                        .map(|(_, v)| filter.shape(v))
                        .collect();
                    (st.rv, items)
                }
            };
            let rest = match limit {
                Some(l) if items.len() > l => items.split_off(l),
                _ => Vec::new(),
            };
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if !rest.is_empty() {
                st.next_token += 1;
                let token = st.next_token;
                metadata["continue"] = json!(token.to_string());
                metadata["remainingItemCount"] = json!(rest.len());
                st.pages.insert(token, (rv, rest));
            }
            let (list_kind, api) = if filter.metadata_only {
                ("PartialObjectMetadataList", "meta.k8s.io/v1")
            } else {
                kind.list_kind()
            };
            let body =
                json!({"kind": list_kind, "apiVersion": api, "metadata": metadata, "items": items})
                    .to_string();
            st.bytes_sent += body.len() as u64;
            st.list_pages += 1;
            body
        };
        if write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .is_err()
        {
            return;
        }
    }
}

fn chunk(out: &mut TcpStream, v: &Value) -> std::io::Result<usize> {
    let mut line = v.to_string();
    line.push('\n');
    write!(out, "{:x}\r\n{line}\r\n", line.len())?;
    out.flush()?;
    Ok(line.len())
}

fn watch(
    out: &mut TcpStream,
    state: &Arc<(Mutex<State>, Condvar)>,
    kind: Kind,
    filter: &Filter,
    from: u64,
    timeout: Duration,
) {
    if write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    let (lock, cv) = &**state;
    let mut st = lock.lock().unwrap();
    st.watches_served += 1;
    if from != 0 && from + 1 < st.oldest {
        let gone = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", st.oldest), "reason": "Expired", "code": 410}});
        drop(st);
        let _ = chunk(out, &gone);
        let _ = write!(out, "0\r\n\r\n");
        return;
    }
    let generation = st.generation;
    let sent = from;
    let deadline = Instant::now() + timeout;
    let mut last_bookmark = Instant::now();
    // The log is in resourceVersion order: start past what was sent.
    let mut at = st.log.partition_point(|(rv, _, _, _)| *rv <= sent);
    loop {
        let events: Vec<Value> = st.log[at.min(st.log.len())..]
            .iter()
            .filter(|(_, k, _, obj)| *k == kind && filter.admits(kind, obj))
            .map(|(_, _, ty, obj)| json!({"type": ty, "object": filter.shape(obj)}))
            .collect();
        at = st.log.len();
        let bookmark = (last_bookmark.elapsed() >= Duration::from_secs(1))
            .then(|| json!({"type": "BOOKMARK", "object": {"kind": kind.kind(), "apiVersion": kind.list_kind().1, "metadata": {"resourceVersion": st.rv.to_string()}}}));
        drop(st);
        let mut bytes = 0;
        for e in events.iter().chain(bookmark.iter()) {
            match chunk(out, e) {
                Ok(n) => bytes += n as u64,
                Err(_) => return,
            }
        }
        if bookmark.is_some() {
            last_bookmark = Instant::now();
        }
        st = lock.lock().unwrap();
        st.bytes_sent += bytes;
        if st.generation != generation || Instant::now() >= deadline {
            drop(st);
            let _ = write!(out, "0\r\n\r\n");
            return;
        }
        st = cv.wait_timeout(st, Duration::from_millis(250)).unwrap().0;
        if st.generation != generation {
            drop(st);
            let _ = write!(out, "0\r\n\r\n");
            return;
        }
    }
}

/// A realistic Pod: Deployment-owned through a ReplicaSet, on `node`, with `ip`.
pub fn pod(
    namespace: &str,
    name: &str,
    uid: &str,
    app: &str,
    ip: &str,
    node: &str,
    created: &str,
) -> Value {
    let hash = "7d9f8b6c5";
    json!({
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid, "creationTimestamp": created,
            "labels": {"app.kubernetes.io/name": app, "pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-{hash}"), "uid": "00000000-0000-4000-8000-00000000aaaa", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"nodeName": node, "containers": [{"name": app, "image": format!("registry.example/{app}:1.0")}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.10"}
    })
}

pub fn service(namespace: &str, name: &str, app: &str, cluster_ip: &str, port: u16) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": app}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": {"app.kubernetes.io/name": app},
                 "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": port}]}
    })
}

pub fn endpoint_slice(namespace: &str, service: &str, ips: &[&str], port: u16) -> Value {
    json!({
        "metadata": {"name": format!("{service}-abcde"), "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}]
    })
}

/// An EndpointSlice as the endpoints controller writes it: each endpoint names its pod
/// (`targetRef`) and node.
pub fn endpoint_slice_of_pods(
    namespace: &str,
    service: &str,
    slice: &str,
    pods: &[(&str, &str, &str)],
    port: u16,
) -> Value {
    json!({
        "metadata": {"name": slice, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": pods.iter().map(|(ip, pod, node)| json!({
            "addresses": [ip], "conditions": {"ready": true}, "nodeName": node,
            "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod}
        })).collect::<Vec<_>>(),
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}]
    })
}
