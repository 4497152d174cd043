//! A smoke run of the benchmark's load generator against a whole federation: a few hundred
//! exchanges direct to the backend and through both security servers (and through the nginx
//! chain when nginx is installed). No figure is asserted — only that every exchange completes
//! and the counts add up — so it keeps the benchmark from rotting without timing anything.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use passerelle_messagelog::Durability;
use passerelle_testkit::load::{self, ClosedLoop, Target};
use passerelle_testkit::nginx::{self, NginxChain};
use passerelle_testkit::{Federation, FederationOptions, names, procstat};

const REQUESTS: u64 = 200;

fn plan(connections: usize) -> ClosedLoop {
    ClosedLoop {
        connections,
        duration: Duration::from_secs(60),
        max_requests: Some(REQUESTS),
    }
}

async fn closed_loop_completes(target: &Target) {
    let result = load::closed_loop(target, plan(4)).await.unwrap();
    assert_eq!(result.errors, 0, "{result:?}");
    assert_eq!(result.completed, REQUESTS);
    assert_eq!(result.latencies_us.len() as u64, REQUESTS);
    let p50 = result.percentile_us(0.5).unwrap();
    let p99 = result.percentile_us(0.99).unwrap();
    assert!(p50 <= p99);
    assert!(result.throughput() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_runs_direct_nginx_and_through_both_security_servers() {
    let dir = tempfile::tempdir().unwrap();
    let federation = Federation::start(FederationOptions {
        dir: dir.path().to_path_buf(),
        durability: Durability::Fsync,
    })
    .await
    .unwrap();

    let direct = Target::echo(federation.backend_addr, "/v1/echo", &[], 1024);
    closed_loop_completes(&direct).await;

    let consumer = SocketAddr::from((Ipv4Addr::LOCALHOST, federation.ports.consumer_client));
    let through = Target::echo(
        consumer,
        &format!("/r1/{}/v1/echo", names::SERVICE),
        &[("x-road-client", names::CONSUMER_SUBSYSTEM)],
        1024,
    );
    closed_loop_completes(&through).await;

    // Larger bodies come back whole through both servers.
    let large = Target::echo(
        through.address,
        &format!("/r1/{}/v1/echo", names::SERVICE),
        &[("x-road-client", names::CONSUMER_SUBSYSTEM)],
        100 * 1024,
    );
    let result = load::closed_loop(
        &large,
        ClosedLoop {
            connections: 2,
            duration: Duration::from_secs(60),
            max_requests: Some(10),
        },
    )
    .await
    .unwrap();
    assert_eq!((result.completed, result.errors), (10, 0));

    // An open loop sends what was due, whatever the answers do.
    let open = load::open_loop(&through, 200.0, Duration::from_millis(500), 8)
        .await
        .unwrap();
    assert_eq!(open.errors, 0);
    assert_eq!(open.completed, 100);

    // A route the access rights do not cover is refused, and counted as an error.
    let denied = Target::echo(
        consumer,
        &format!("/r1/{}/v1/children/42/vaccinations", names::SERVICE),
        &[("x-road-client", names::CONSUMER_SUBSYSTEM)],
        16,
    );
    let refused = load::closed_loop(
        &denied,
        ClosedLoop {
            connections: 1,
            duration: Duration::from_secs(30),
            max_requests: Some(3),
        },
    )
    .await
    .unwrap();
    assert_eq!((refused.completed, refused.errors), (0, 3));

    if let Some(binary) = nginx::find_binary() {
        let chain = NginxChain::start(
            &binary,
            &dir.path().join("nginx"),
            &federation.ca,
            federation.backend_addr,
            1,
        )
        .unwrap();
        let via_nginx = Target::echo(chain.entry, "/v1/echo", &[], 1024);
        closed_loop_completes(&via_nginx).await;
        for master in chain.masters {
            assert!(procstat::cpu_time_with_children(master).is_ok());
            assert!(!procstat::children(master).unwrap().is_empty());
        }
    }

    federation.shutdown().await;
}
