//! The bundled Voice Microservices allowlist: imported from the customer document it must
//! reproduce the committed file byte for byte, and its rows must say what the document says.

use allowlist::{
    Allowlist, Classification, Outcome, Overrides, PortBasis, PortSpec, Ports, Transport, file,
    import, lint, overrides, rule_index::RuleIndex,
};

const DOC: &str = include_str!("../sources/voice-microservices-architecture.txt");
const YAML: &str = include_str!("../voice-microservices.yaml");
const DOC_NAME: &str = "voice-microservices-architecture.txt";

fn seed() -> Allowlist {
    import(DOC, Some(DOC_NAME)).expect("the seed document imports")
}

#[test]
fn reimporting_the_document_reproduces_the_committed_file_byte_for_byte() {
    let yaml = file::to_yaml(&seed(), &file::import_header(DOC_NAME));
    assert!(
        yaml == YAML,
        "allowlist/voice-microservices.yaml is stale: re-run `auditor allowlist import allowlist/sources/{DOC_NAME} -o allowlist/voice-microservices.yaml`"
    );
}

#[test]
fn the_committed_file_reads_back_as_the_import() {
    assert_eq!(
        file::parse(YAML, "voice-microservices.yaml").unwrap(),
        seed()
    );
    // JSON is the same document.
    assert_eq!(
        file::parse(&file::to_json(&seed()), "x.json").unwrap(),
        seed()
    );
}

#[test]
fn sixty_connections_numbered_one_to_sixty() {
    let a = seed();
    let numbers: Vec<Option<u32>> = a.connections.iter().map(|c| c.number).collect();
    assert_eq!(numbers, (1..=60).map(Some).collect::<Vec<_>>());
}

fn ports(list: &[(u16, bool)]) -> Ports {
    Ports::Listed(list.iter().map(|&(p, c)| PortSpec::single(p, c)).collect())
}

struct Row {
    source: &'static str,
    destination: &'static str,
    protocol: &'static str,
    transport: Transport,
    ports: Ports,
    classification: Classification,
    description: &'static str,
}

fn check(n: u32, want: Row) {
    let a = seed();
    let c = a.connection(n).unwrap_or_else(|| panic!("row {n} missing"));
    assert_eq!(c.source, want.source, "row {n} source");
    assert_eq!(c.destination, want.destination, "row {n} destination");
    assert_eq!(c.protocol, want.protocol, "row {n} protocol");
    assert_eq!(c.transport, want.transport, "row {n} transport");
    assert_eq!(c.ports, want.ports, "row {n} ports");
    assert_eq!(
        c.classification,
        vec![want.classification],
        "row {n} classification"
    );
    assert_eq!(c.description, want.description, "row {n} description");
}

use Classification::{Egress, IntraCluster};
use Transport::{Tcp, Udp};

#[test]
fn row_1_port_list() {
    check(
        1,
        Row {
            source: "CX Contact",
            destination: "Tenant Service",
            protocol: "TCP",
            transport: Tcp,
            ports: ports(&[(5050, false), (8888, false)]),
            classification: IntraCluster,
            description: "Outbound campaigns provisioning and control performed by CX contact.",
        },
    );
}

#[test]
fn row_8_split_across_a_page_break() {
    check(
        8,
        Row {
            source: "Genesys Engagement Service",
            destination: "Tenant Service",
            protocol: "HTTP",
            transport: Tcp,
            ports: ports(&[(5080, false)]),
            classification: IntraCluster,
            description: "Routing requests/events.",
        },
    );
}

#[test]
fn row_10_long_description() {
    check(
        10,
        Row {
            source: "Genesys Engagement Service",
            destination: "ORS",
            protocol: "HTTP",
            transport: Tcp,
            ports: ports(&[(9098, false)]),
            classification: IntraCluster,
            description: "GES starts a session in ORS when it is time to put the callback in the queue for an agent. To initiate the ORS session, GES stores an entry in the Voice Microservice's Redis (using port 6379), rather than communicating directly with ORS. Once the ORS session is started, GES regularly queries the ORS session (using port 9098) for diagnostics information about the callback. In addition, GES might send events to control the ORS session; for example, when the callback is cancelled through the API or UI.",
        },
    );
}

#[test]
fn row_14_versioned_source_is_aliased() {
    check(
        14,
        Row {
            source: "Redis",
            destination: "Tenant Service",
            protocol: "Redis",
            transport: Tcp,
            ports: ports(&[(6379, true)]),
            classification: Egress,
            description: "Call and routing Voice Microservices events for the message bus.",
        },
    );
    assert_eq!(
        seed().connection(14).unwrap().documented_source.as_deref(),
        Some("Redis 6.x")
    );
}

#[test]
fn row_24_no_port() {
    check(
        24,
        Row {
            source: "Voicemail",
            destination: "Object storage",
            protocol: "HTTP",
            transport: Tcp,
            ports: Ports::Unknown {
                reason: "N/A".into(),
            },
            classification: IntraCluster,
            description: "Mailbox configurations and all the voicemail messages are saved in Azure Blob Storage/AWS S3 bucket. HTTP connection protocol is used without any specific port, whereas secret keys are used for establishing the connections.",
        },
    );
}

#[test]
fn row_36_source_split_across_a_page_break() {
    check(
        36,
        Row {
            source: "Voice Registrar Service",
            destination: "Redis",
            protocol: "Redis",
            transport: Tcp,
            ports: ports(&[(6379, true)]),
            classification: Egress,
            description: "In-memory cache for SIP registration.",
        },
    );
}

#[test]
fn row_51_sip_over_tcp() {
    check(
        51,
        Row {
            source: "Voice SIP Cluster Service",
            destination: "Voice SIP Proxy Service",
            protocol: "SIP/TCP",
            transport: Tcp,
            ports: ports(&[(5080, false)]),
            classification: IntraCluster,
            description: "Exchange of SIP signals.",
        },
    );
}

#[test]
fn row_57_sip_over_udp() {
    check(
        57,
        Row {
            source: "Voice SIP Proxy Service",
            destination: "WebRTC Media Service",
            protocol: "SIP/UDP",
            transport: Udp,
            ports: ports(&[(5070, false)]),
            classification: IntraCluster,
            description: "Exchange of SIP signals.",
        },
    );
}

#[test]
fn row_59_port_split_across_a_page_break() {
    check(
        59,
        Row {
            source: "Voice SIP Proxy Service",
            destination: "Session Border Controller",
            protocol: "SIP/TCP",
            transport: Tcp,
            ports: Ports::Unknown {
                reason: "Not known (configured as trunk DN level in customer CME)".into(),
            },
            classification: IntraCluster,
            description: "Exchange of SIP signals.",
        },
    );
}

#[test]
fn row_60_alternative_configurable_ports() {
    check(
        60,
        Row {
            source: "Voice SIP Proxy Service",
            destination: "Kafka",
            protocol: "Kafka",
            transport: Tcp,
            ports: ports(&[(9092, true), (9093, true)]),
            classification: Egress,
            description: "Provides data to reporting.",
        },
    );
}

#[test]
fn lints_find_the_four_kinds_of_problem_in_the_seed() {
    let findings = lint::lint(&seed());
    let rows_of = |code: &str| -> Vec<Vec<u32>> {
        findings
            .iter()
            .filter(|f| f.code == code)
            .map(|f| f.rows.clone())
            .collect()
    };
    assert_eq!(rows_of("reversed-datastore"), vec![vec![14], vec![55]]);
    assert_eq!(rows_of("described-not-listed"), vec![vec![10]]);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "described-not-listed" && f.message.contains("Redis on port 6379"))
    );
    assert!(rows_of("repeated-connection").contains(&vec![45, 46, 47]));
    assert_eq!(rows_of("unknown-port"), vec![vec![24], vec![59]]);
}

fn policy(overrides_yaml: &str) -> RuleIndex {
    let a = seed();
    let o = if overrides_yaml.is_empty() {
        Overrides::default()
    } else {
        overrides::parse(overrides_yaml, "o.yaml", &a).unwrap()
    };
    RuleIndex::new(&a, &o)
}

#[test]
fn lookup_explains_each_outcome() {
    let p = policy("");
    let l = p
        .lookup_names("Genesys Engagement Service", "ORS", Tcp, 9098)
        .unwrap();
    assert_eq!((l.outcome, l.numbers()), (Outcome::Allowed, vec![10]));
    let l = p
        .lookup_names("Genesys Engagement Service", "Redis", Tcp, 6379)
        .unwrap();
    assert_eq!(l.outcome, Outcome::NoEdge);
    let l = p
        .lookup_names("Voice SIP Proxy Service", "WebRTC Media Service", Udp, 5070)
        .unwrap();
    assert_eq!((l.outcome, l.numbers()), (Outcome::Allowed, vec![57]));
    let l = p
        .lookup_names("Voice SIP Proxy Service", "WebRTC Media Service", Tcp, 5070)
        .unwrap();
    assert_eq!(
        (l.outcome, l.numbers()),
        (Outcome::OtherTransport, vec![57])
    );
    let l = p
        .lookup_names("Tenant Service", "Config Service", Tcp, 9200)
        .unwrap();
    assert_eq!((l.outcome, l.numbers()), (Outcome::OtherPorts, vec![26]));
    let l = p.lookup_names("ORS", "Redis", Tcp, 6379).unwrap();
    assert_eq!(l.numbers(), vec![45, 46, 47]);
    // Aliases resolve.
    assert_eq!(
        p.lookup_names("Redis 6.x", "Tenant Service", Tcp, 6379)
            .unwrap()
            .numbers(),
        vec![14]
    );
    assert!(p.lookup_names("Nobody", "Redis", Tcp, 6379).is_none());
}

#[test]
fn overrides_replace_configurable_and_unknown_ports_only() {
    let p = policy("services:\n  Redis: [6380]\nrows:\n  59: [5060]\n");
    let l = p
        .lookup_names("Voice RQ Service", "Redis", Tcp, 6380)
        .unwrap();
    assert_eq!((l.outcome, l.numbers()), (Outcome::Allowed, vec![6]));
    assert_eq!(l.rules().next().unwrap().basis, PortBasis::Override);
    assert_eq!(
        p.lookup_names("Voice RQ Service", "Redis", Tcp, 6379)
            .unwrap()
            .outcome,
        Outcome::OtherPorts
    );
    assert_eq!(
        p.lookup_names(
            "Voice SIP Proxy Service",
            "Session Border Controller",
            Tcp,
            5060
        )
        .unwrap()
        .numbers(),
        vec![59]
    );
    // Row 24 has no port and no override: it matches, unverified.
    let l = p
        .lookup_names("Voicemail", "Object storage", Tcp, 443)
        .unwrap();
    assert_eq!(l.rules().next().unwrap().basis, PortBasis::Unverified);
}

#[test]
fn rows_without_a_port_are_unverified_until_an_override_gives_one() {
    // The seed's two rows without a port; rows allowing "Any" port are not among them.
    assert_eq!(policy("").port_unverified_rules(), vec![24, 59]);
    assert_eq!(
        policy("rows:\n  59: [5060]\n").port_unverified_rules(),
        vec![24]
    );
    assert_eq!(
        policy("rows:\n  24: [443]\n  59: [5060]\n").port_unverified_rules(),
        Vec::<u32>::new()
    );
}

#[test]
fn overrides_that_do_not_fit_the_allowlist_are_errors_with_positions() {
    let a = seed();
    let e = overrides::parse("rows:\n  26: [9200]\n", "o.yaml", &a).unwrap_err();
    assert_eq!((e.line, e.origin.as_str()), (2, "o.yaml"));
    assert!(e.message.contains("fixed by the document"), "{e}");
    let e = overrides::parse("rows:\n  99: [1]\n", "o.yaml", &a).unwrap_err();
    assert!(e.message.contains("no connection 99"), "{e}");
    let e = overrides::parse("services:\n  Redis: [70000]\n", "o.yaml", &a).unwrap_err();
    assert!(e.message.contains("out of range") && e.line == 2, "{e}");
    let e = overrides::parse("service:\n  Redis: [6380]\n", "o.yaml", &a).unwrap_err();
    assert!(e.message.contains("unknown field") && e.line == 1, "{e}");
}

#[test]
fn bad_files_fail_with_file_line_column() {
    let typo = YAML.replacen("  protocol: TCP\n", "  protocl: TCP\n", 1);
    let line = typo.lines().position(|l| l.contains("protocl")).unwrap() as u64 + 1;
    let e = file::parse(&typo, "a.yaml").unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.line, e.column),
        ("a.yaml", line, 3),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(&format!("a.yaml:{line}:3: ")) && e.message.contains("protocl"),
        "{e}"
    );

    let bad_port = YAML.replacen("ports: [5050, 8888]", "ports: [5050, 88888]", 1);
    let e = file::parse(&bad_port, "a.yaml").unwrap_err();
    assert!(e.message.contains("out of range"), "{e}");
    assert_eq!(
        e.line,
        bad_port.lines().position(|l| l.contains("88888")).unwrap() as u64 + 1
    );

    let dup = YAML.replacen("- number: 2\n", "- number: 1\n", 1);
    let e = file::parse(&dup, "a.yaml").unwrap_err();
    assert!(e.message.contains("used twice"), "{e}");

    let undeclared = YAML.replacen(
        "  destination: Tenant Service\n",
        "  destination: Tenant Servce\n",
        1,
    );
    let e = file::parse(&undeclared, "a.yaml").unwrap_err();
    assert!(
        e.message.contains("\"Tenant Servce\" is not declared"),
        "{e}"
    );

    let contradiction = YAML.replacen(
        "  protocol: SIP/UDP\n  transport: udp",
        "  protocol: SIP/UDP\n  transport: tcp",
        1,
    );
    let e = file::parse(&contradiction, "a.yaml").unwrap_err();
    assert!(e.message.contains("contradicts"), "{e}");
}

#[test]
fn committed_schemas_match_the_reader() {
    let committed = include_str!("../schema/allowlist.schema.json");
    assert!(
        committed == allowlist::schema::allowlist_schema(),
        "allowlist/schema/allowlist.schema.json is stale: run `auditor allowlist schema > allowlist/schema/allowlist.schema.json`"
    );
    let committed = include_str!("../schema/overrides.schema.json");
    assert!(
        committed == allowlist::schema::overrides_schema(),
        "allowlist/schema/overrides.schema.json is stale: run `auditor allowlist schema --overrides > allowlist/schema/overrides.schema.json`"
    );
}

#[test]
fn the_example_overrides_fit_the_bundled_allowlist() {
    overrides::parse(
        include_str!("../overrides.example.yaml"),
        "overrides.example.yaml",
        &seed(),
    )
    .unwrap();
}
