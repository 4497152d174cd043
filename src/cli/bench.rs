//! `passerelle bench`: what the gateway costs, measured against a direct call and against two
//! nginx proxies chained with mutual TLS, in one run on loopback (see docs/performance.md).
//!
//! The backend and both security servers run as separate processes (this binary, re-executed),
//! so each one's CPU time and memory can be read from `/proc`; the central server runs in this
//! process, where it idles. The four targets are measured in alternating rounds so that drift
//! of the machine hits all of them alike.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use passerelle_messagelog::Durability;
use passerelle_security_server::Node;
use passerelle_testkit::load::{self, ClosedLoop, RunResult, Target};
use passerelle_testkit::nginx::{self, NginxChain, wait_for_port};
use passerelle_testkit::{Federation, PreparedFederation, names, procstat};
use serde_json::{Value, json};

/// Measure a 1 KiB exchange (and 100 KiB, 5 MiB) four ways: direct to the backend, through two
/// nginx proxies chained with mutual TLS, through both security servers with everything on,
/// and the same with the message log in memory only.
///
/// Saturation throughput comes from a closed loop; latency from an open loop at 25, 50 and
/// 75 % of the passerelle saturation, counted from each request's due time. Prints a table and
/// writes the figures as JSON. nginx is skipped (and said so) when it is not installed.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  scripts/bench                          # builds release, installs nginx if missing, runs this
  passerelle bench --dir bench-data      # the default run, a few minutes
  passerelle bench --smoke               # a few hundred exchanges per target, no nginx
  passerelle bench --rounds 1 --soak 390 # then 6.5 minutes of saturation, memory every 30 s"
)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    role: Option<Role>,
    /// Where the federation, the nginx configurations and the process logs are kept.
    #[arg(long, default_value = "bench-data", value_name = "DIR")]
    dir: PathBuf,
    /// The JSON results (default DIR/bench.json).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Closed-loop rounds of the 1 KiB exchange; each round visits every target once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of each closed-loop (saturation) step.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Seconds of each open-loop (latency) step.
    #[arg(long, default_value_t = 5.0)]
    open_seconds: f64,
    /// Keep-alive connections of the load generator for 1 KiB exchanges.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Do not run the nginx chain even when nginx is installed.
    #[arg(long)]
    no_nginx: bool,
    /// A tiny run to check the machinery: a few hundred exchanges per target, no nginx, no
    /// large bodies beyond a handful. Its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Keep the security servers' message logs when the run ends. A full run logs several GB;
    /// by default they are deleted once the figures are written.
    #[arg(long)]
    keep_logs: bool,
    /// After the other steps, restart both security servers and hold them at 1 KiB saturation
    /// for this many seconds (durable log), reading their resident memory twelve times: what
    /// a long load does to memory, which the short rounds cannot show. 0: no soak.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    soak: f64,
}

/// The processes the benchmark starts from this binary; not for direct use.
#[derive(Debug, clap::Subcommand)]
enum Role {
    /// The sample backend on a loopback port, until SIGTERM.
    #[command(hide = true)]
    Backend {
        #[arg(long)]
        port: u16,
    },
    /// A security server whose message log is never synced: measures what the sync costs.
    #[command(hide = true)]
    DangerMemoryOnlyServer {
        #[arg(long)]
        config: PathBuf,
    },
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.role {
        Some(Role::Backend { port }) => runtime.block_on(serve_backend(port))?,
        Some(Role::DangerMemoryOnlyServer { ref config }) => {
            runtime.block_on(serve_memory_only(config))?;
        }
        None => {
            // The central server and the trust services run in this process, on a runtime of
            // their own: their periodic work (a new global configuration every minute, synced
            // to disk) must not hold up the load generator's tasks and show up as latency.
            let services = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bench-services")
                .enable_all()
                .build()
                .context("cannot start the services' async runtime")?;
            runtime.block_on(bench(&Plan::from_args(&args), services.handle()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve_backend(port: u16) -> anyhow::Result<()> {
    let (listener, _) = passerelle_testkit::backend::bind(port).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(passerelle_testkit::backend::serve(listener, stopped));
    wait_for_termination().await?;
    let _ = stop.send(true);
    let _ = serving.await;
    Ok(())
}

async fn serve_memory_only(config: &Path) -> anyhow::Result<()> {
    let node = Node::launch(config, Durability::DangerMemoryOnly).await?;
    wait_for_termination().await?;
    node.shutdown().await;
    Ok(())
}

async fn wait_for_termination() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Everything the run does, decided once from the arguments.
#[derive(Debug, Clone)]
struct Plan {
    dir: PathBuf,
    output: PathBuf,
    rounds: usize,
    saturation: Duration,
    warmup: Duration,
    open: Duration,
    connections: usize,
    max_requests: Option<u64>,
    nginx: bool,
    /// How long a freshly started security server is left alone after its first exchange
    /// before its idle memory is read.
    idle_settle: Duration,
    keep_logs: bool,
    /// (body bytes, connections, requests per step)
    large: Vec<(usize, usize, u64)>,
    /// The length of the soak at the end; zero for none.
    soak: Duration,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> Self {
        let output = args
            .output
            .clone()
            .unwrap_or_else(|| args.dir.join("bench.json"));
        if args.smoke {
            return Self {
                dir: args.dir.clone(),
                output,
                rounds: 1,
                saturation: Duration::from_secs(10),
                warmup: Duration::from_millis(200),
                open: Duration::from_millis(500),
                connections: 4,
                max_requests: Some(300),
                nginx: false,
                idle_settle: Duration::from_millis(200),
                keep_logs: args.keep_logs,
                large: vec![(100 * 1024, 2, 10)],
                soak: Duration::from_secs_f64(args.soak.clamp(0.0, 2.0)),
            };
        }
        Self {
            dir: args.dir.clone(),
            output,
            rounds: args.rounds.max(1),
            saturation: Duration::from_secs_f64(args.seconds.max(0.5)),
            warmup: Duration::from_secs(1),
            open: Duration::from_secs_f64(args.open_seconds.max(0.5)),
            connections: args.connections.max(1),
            max_requests: None,
            nginx: !args.no_nginx,
            idle_settle: Duration::from_secs(3),
            keep_logs: args.keep_logs,
            large: vec![(100 * 1024, 8, 2000), (5 * 1024 * 1024, 2, 40)],
            soak: Duration::from_secs_f64(args.soak.clamp(0.0, 86_400.0)),
        }
    }
}

/// The four ways of making the same exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Direct,
    Nginx,
    Passerelle,
    PasserelleMemoryLog,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Direct => "direct",
            Way::Nginx => "nginx",
            Way::Passerelle => "passerelle",
            Way::PasserelleMemoryLog => "passerelle-memlog",
        }
    }

    /// The processes whose CPU time is charged to this way's exchanges (besides the backend).
    fn gateways(self) -> &'static [&'static str] {
        match self {
            Way::Direct => &[],
            Way::Nginx => &["nginx-a", "nginx-b"],
            Way::Passerelle | Way::PasserelleMemoryLog => &["consumer", "provider"],
        }
    }
}

/// The running processes and where each way's requests go.
struct Rig {
    exe: PathBuf,
    federation: PreparedFederation,
    backend: Child,
    nginx: Option<NginxChain>,
    pair: Option<ServerPair>,
    logs: PathBuf,
    /// Idle and peak memory of every security-server process that ran, by role.
    memory: BTreeMap<&'static str, MemoryRecord>,
    /// Whether only 1 KiB exchanges have run so far (peaks then count as saturation peaks).
    small_only: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct MemoryRecord {
    idle_max: u64,
    peak_max: u64,
    /// The peak while only 1 KiB exchanges had run (the saturation rounds).
    peak_small_max: u64,
}

/// The consumer's and the provider's security servers, running in one durability mode.
struct ServerPair {
    durability: Durability,
    provider: Child,
    consumer: Child,
}

impl Rig {
    /// Prepares the federation on `services`, the runtime its central server and trust services
    /// keep running on.
    async fn start(plan: &Plan, services: &tokio::runtime::Handle) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let dir = plan.dir.clone();
        let federation = services
            .spawn(async move { Federation::prepare(&dir).await })
            .await
            .context("the federation's set-up task failed")??;
        let logs = federation.dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let backend = spawn(
            Command::new(&exe)
                .args(["bench", "backend", "--port"])
                .arg(federation.ports.backend.to_string()),
            &logs.join("backend.log"),
        )?;
        wait_for_port(federation.ports.backend, Duration::from_secs(30))?;
        let nginx = if plan.nginx {
            match nginx::find_binary() {
                Some(binary) => {
                    let workers = std::thread::available_parallelism().map_or(1, usize::from);
                    Some(NginxChain::start(
                        &binary,
                        &federation.dir.join("nginx"),
                        &federation.ca,
                        backend_address(&federation),
                        workers,
                    )?)
                }
                None => {
                    eprintln!(
                        "nginx is not installed: the nginx chain is skipped (scripts/bench installs it)"
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(Self {
            exe,
            federation,
            backend,
            nginx,
            pair: None,
            logs,
            memory: BTreeMap::new(),
            small_only: true,
        })
    }

    fn ways(&self) -> Vec<Way> {
        let mut ways = vec![Way::Direct];
        if self.nginx.is_some() {
            ways.push(Way::Nginx);
        }
        ways.extend([Way::Passerelle, Way::PasserelleMemoryLog]);
        ways
    }

    fn target(&self, way: Way, body: usize) -> anyhow::Result<Target> {
        let echo = "/v1/echo";
        Ok(match way {
            Way::Direct => Target::echo(backend_address(&self.federation), echo, &[], body),
            Way::Nginx => {
                let chain = self.nginx.as_ref().context("nginx is not running")?;
                Target::echo(chain.entry, echo, &[], body)
            }
            Way::Passerelle | Way::PasserelleMemoryLog => Target::echo(
                SocketAddr::from((Ipv4Addr::LOCALHOST, self.federation.ports.consumer_client)),
                &format!("/r1/{}{echo}", names::SERVICE),
                &[("x-road-client", names::CONSUMER_SUBSYSTEM)],
                body,
            ),
        })
    }

    /// Makes `way` reachable: for the passerelle ways, (re)starts the security servers in the
    /// right durability mode.
    async fn ready(&mut self, way: Way, idle_settle: Duration) -> anyhow::Result<()> {
        let durability = match way {
            Way::Direct | Way::Nginx => return Ok(()),
            Way::Passerelle => Durability::Fsync,
            Way::PasserelleMemoryLog => Durability::DangerMemoryOnly,
        };
        if self
            .pair
            .as_ref()
            .is_some_and(|pair| pair.durability == durability)
        {
            return Ok(());
        }
        self.stop_pair()?;
        let config = |id: &str| {
            self.federation
                .server_config(id)
                .map(Path::to_path_buf)
                .with_context(|| format!("no configuration for {id}"))
        };
        let start = |config: PathBuf, role: &str| -> anyhow::Result<Child> {
            let mut command = Command::new(&self.exe);
            match durability {
                Durability::DangerMemoryOnly => {
                    command.args(["bench", "danger-memory-only-server", "--config"])
                }
                _ => command.args(["server", "serve", "--config"]),
            };
            spawn(command.arg(config), &self.logs.join(format!("{role}.log")))
        };
        let provider = start(config(names::PROVIDER_SERVER)?, "provider")?;
        let consumer = start(config(names::CONSUMER_SERVER)?, "consumer")?;
        self.pair = Some(ServerPair {
            durability,
            provider,
            consumer,
        });
        let ports = &self.federation.ports;
        for port in [ports.provider_server, ports.consumer_client] {
            wait_for_port(port, Duration::from_secs(60))
                .with_context(|| format!("see the logs in {}", self.logs.display()))?;
        }
        // The first exchange waits for the configuration download and the peer connection.
        let probe = self.target(way, 16)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let once = ClosedLoop {
                connections: 1,
                duration: Duration::from_secs(5),
                max_requests: Some(1),
            };
            if load::closed_loop(&probe, once).await?.completed == 1 {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the security servers did not carry an exchange within 60 s; see the logs in {}",
                    self.logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Idle means settled: opening a log that holds large bodies, and the first checkpoint
        // after it, use memory for a moment; wait for them (the demo checkpoints every 2 s).
        tokio::time::sleep(idle_settle).await;
        for (role, pid) in self.pair_pids() {
            let memory = procstat::memory(pid)?;
            let record = self.memory.entry(role).or_default();
            record.idle_max = record.idle_max.max(memory.resident);
        }
        Ok(())
    }

    fn pair_pids(&self) -> Vec<(&'static str, u32)> {
        self.pair
            .as_ref()
            .map(|pair| {
                vec![
                    ("consumer", pair.consumer.id()),
                    ("provider", pair.provider.id()),
                ]
            })
            .unwrap_or_default()
    }

    /// Records the running security servers' peak memory so far.
    fn note_peaks(&mut self) {
        for (role, pid) in self.pair_pids() {
            if let Ok(memory) = procstat::memory(pid) {
                let record = self.memory.entry(role).or_default();
                record.peak_max = record.peak_max.max(memory.peak);
                if self.small_only {
                    record.peak_small_max = record.peak_small_max.max(memory.peak);
                }
            }
        }
    }

    /// From now on, peaks no longer count as 1 KiB saturation peaks.
    fn end_small_phase(&mut self) {
        self.note_peaks();
        self.small_only = false;
    }

    /// Stops the security servers, recording their peak memory first.
    fn stop_pair(&mut self) -> anyhow::Result<()> {
        self.note_peaks();
        if let Some(mut pair) = self.pair.take() {
            terminate(&mut pair.consumer)?;
            terminate(&mut pair.provider)?;
        }
        Ok(())
    }

    /// The processes whose CPU time is sampled, by role.
    fn processes(&self) -> Vec<(&'static str, u32, bool)> {
        let mut processes = vec![
            ("backend", self.backend.id(), false),
            ("generator", std::process::id(), false),
        ];
        if let Some(chain) = &self.nginx {
            processes.push(("nginx-a", chain.masters[0], true));
            processes.push(("nginx-b", chain.masters[1], true));
        }
        processes.extend(
            self.pair_pids()
                .into_iter()
                .map(|(role, pid)| (role, pid, false)),
        );
        processes
    }

    fn cpu_snapshot(&self) -> BTreeMap<&'static str, Duration> {
        self.processes()
            .into_iter()
            .filter_map(|(role, pid, with_children)| {
                let time = if with_children {
                    procstat::cpu_time_with_children(pid)
                } else {
                    procstat::cpu_time(pid)
                };
                time.ok().map(|time| (role, time))
            })
            .collect()
    }

    async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop_pair()?;
        drop(self.nginx.take());
        terminate(&mut self.backend)?;
        self.federation.shutdown().await;
        Ok(())
    }
}

fn backend_address(federation: &PreparedFederation) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, federation.ports.backend))
}

fn spawn(command: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .context("cannot start a benchmark process")
}

/// SIGTERM, so a security server closes its log cleanly; SIGKILL after ten seconds.
fn terminate(child: &mut Child) -> anyhow::Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// One measured step: a way, a run and the CPU each process spent during it.
#[derive(Debug, Clone)]
struct Step {
    way: Way,
    result: RunResult,
    cpu: BTreeMap<&'static str, Duration>,
}

impl Step {
    fn cpu_per_exchange_us(&self, role: &str) -> Option<f64> {
        let spent = self.cpu.get(role)?;
        (self.result.completed > 0)
            .then(|| spent.as_secs_f64() * 1e6 / self.result.completed as f64)
    }

    fn json(&self) -> Value {
        let cpu: BTreeMap<&str, Value> = self
            .cpu
            .keys()
            .map(|role| (*role, json!(self.cpu_per_exchange_us(role).map(round1))))
            .collect();
        json!({
            "target": self.way.name(),
            "completed": self.result.completed,
            "errors": self.result.errors,
            "seconds": round3(self.result.elapsed.as_secs_f64()),
            "exchanges_per_second": round1(self.result.throughput()),
            "p50_us": self.result.percentile_us(0.5),
            "p99_us": self.result.percentile_us(0.99),
            "p999_us": self.result.percentile_us(0.999),
            "cpu_us_per_exchange": cpu,
        })
    }
}

async fn measure(
    rig: &mut Rig,
    plan: &Plan,
    way: Way,
    body: usize,
    run: impl AsyncFnOnce(&Target) -> anyhow::Result<RunResult>,
    connections: usize,
) -> anyhow::Result<Step> {
    rig.ready(way, plan.idle_settle).await?;
    let target = rig.target(way, body)?;
    let warmup = ClosedLoop {
        connections,
        duration: plan.warmup,
        max_requests: plan.max_requests.map(|limit| limit / 10),
    };
    load::closed_loop(&target, warmup).await?;
    let before = rig.cpu_snapshot();
    let result = run(&target).await?;
    let after = rig.cpu_snapshot();
    let cpu = after
        .iter()
        .filter_map(|(role, time)| Some((*role, time.checked_sub(*before.get(role)?)?)))
        .collect();
    Ok(Step { way, result, cpu })
}

/// The order of the ways in round `round`: rotated, so no way always follows the same one.
fn rotated(ways: &[Way], round: usize) -> Vec<Way> {
    let mut order = ways.to_vec();
    if !order.is_empty() {
        let shift = round % order.len();
        order.rotate_left(shift);
    }
    order
}

async fn bench(plan: &Plan, services: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let mut rig = Rig::start(plan, services).await?;
    let outcome = run_all(&mut rig, plan).await;
    let nginx_memory = rig.nginx.as_ref().map(|chain| {
        chain
            .masters
            .map(|pid| procstat::memory_with_children(pid).ok())
    });
    let stopped = rig.stop_pair();
    let memory = rig.memory.clone();
    if !plan.keep_logs
        && let Err(error) = remove_message_logs(&rig.federation)
    {
        eprintln!("warning: {error:#}");
    }
    rig.shutdown().await?;
    let results = outcome?;
    stopped?;
    let report = Report {
        results,
        memory,
        nginx_memory,
    };
    print!("{}", report.table(plan));
    let json = report.json(plan);
    if let Some(parent) = plan.output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&plan.output, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("cannot write {}", plan.output.display()))?;
    println!("\nJSON: {}", plan.output.display());
    Ok(())
}

/// Deletes the message logs the run's security servers wrote (synthetic exchanges only).
fn remove_message_logs(federation: &PreparedFederation) -> anyhow::Result<()> {
    for (id, config) in &federation.server_configs {
        let config = passerelle_security_server::config::ServerConfig::load(config)?;
        if let Some(dir) = config.message_log_dir
            && dir.exists()
        {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot delete {} ({id})", dir.display()))?;
            eprintln!(
                "deleted the message log of {id} ({}); --keep-logs keeps it",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Every measured step of the run.
#[derive(Debug, Default)]
struct Results {
    /// 1 KiB closed loop, every round.
    saturation: Vec<Step>,
    /// 1 KiB open loop: percent of the passerelle saturation, the offered rate, the steps.
    open: Vec<(u32, f64, Vec<Step>)>,
    /// Larger bodies, closed loop: body bytes and the steps.
    large: Vec<(usize, Vec<Step>)>,
    /// The soak: the servers' memory as it went, then idle after it.
    soak: Vec<SoakSample>,
}

/// The security servers' resident memory during the soak.
#[derive(Debug, Clone, Copy)]
struct SoakSample {
    /// Seconds since the soak's load started; `None` for the idle reading after it.
    seconds: Option<f64>,
    /// Exchanges completed so far.
    exchanges: u64,
    errors: u64,
    consumer: u64,
    provider: u64,
}

/// Samples of the soak's memory.
const SOAK_SAMPLES: u32 = 12;

const OPEN_LOAD_PERCENTS: [u32; 3] = [25, 50, 75];

async fn run_all(rig: &mut Rig, plan: &Plan) -> anyhow::Result<Results> {
    let ways = rig.ways();
    let mut results = Results::default();
    let saturation = ClosedLoop {
        connections: plan.connections,
        duration: plan.saturation,
        max_requests: plan.max_requests,
    };
    for round in 0..plan.rounds {
        for way in rotated(&ways, round) {
            let step = measure(
                rig,
                plan,
                way,
                1024,
                async |target| load::closed_loop(target, saturation).await,
                plan.connections,
            )
            .await?;
            eprintln!(
                "round {}/{} {:<18} {:>9.0} exchanges/s ({} errors)",
                round + 1,
                plan.rounds,
                way.name(),
                step.result.throughput(),
                step.result.errors
            );
            results.saturation.push(step);
        }
    }
    rig.end_small_phase();
    let passerelle = median_throughput(&results.saturation, Way::Passerelle)
        .context("no passerelle saturation was measured")?;
    for (index, percent) in OPEN_LOAD_PERCENTS.into_iter().enumerate() {
        let rate = passerelle * f64::from(percent) / 100.0;
        let mut steps = Vec::new();
        for way in rotated(&ways, index) {
            let step = measure(
                rig,
                plan,
                way,
                1024,
                async |target| load::open_loop(target, rate, plan.open, plan.connections).await,
                plan.connections,
            )
            .await?;
            eprintln!(
                "open {percent:>2} % ({rate:>7.0}/s) {:<18} p50 {} p99 {} ({} errors)",
                way.name(),
                micros(step.result.percentile_us(0.5)),
                micros(step.result.percentile_us(0.99)),
                step.result.errors
            );
            steps.push(step);
        }
        results.open.push((percent, rate, steps));
    }
    for (index, &(body, connections, requests)) in plan.large.iter().enumerate() {
        let mut steps = Vec::new();
        let plan_large = ClosedLoop {
            connections,
            duration: plan.saturation * 4,
            max_requests: Some(requests),
        };
        for way in rotated(&ways, index) {
            let step = measure(
                rig,
                plan,
                way,
                body,
                async |target| load::closed_loop(target, plan_large).await,
                connections,
            )
            .await?;
            eprintln!(
                "{:>9} {:<18} {:>9.1} exchanges/s ({} errors)",
                size(body),
                way.name(),
                step.result.throughput(),
                step.result.errors
            );
            steps.push(step);
        }
        results.large.push((body, steps));
    }
    if !plan.soak.is_zero() {
        results.soak = soak(rig, plan).await?;
    }
    Ok(results)
}

/// Freshly started servers held at 1 KiB saturation for the plan's soak, their memory read
/// [`SOAK_SAMPLES`] times, then once more after they have been idle for the settle time.
async fn soak(rig: &mut Rig, plan: &Plan) -> anyhow::Result<Vec<SoakSample>> {
    rig.stop_pair()?;
    rig.ready(Way::Passerelle, plan.idle_settle).await?;
    let target = rig.target(Way::Passerelle, 1024)?;
    let pids = rig.pair_pids();
    let read = |seconds: Option<f64>, exchanges: u64, errors: u64| -> anyhow::Result<SoakSample> {
        let resident = |role: &str| -> anyhow::Result<u64> {
            let (_, pid) = pids
                .iter()
                .find(|(name, _)| *name == role)
                .context("the security servers are not running")?;
            Ok(procstat::memory(*pid)?.resident)
        };
        Ok(SoakSample {
            seconds,
            exchanges,
            errors,
            consumer: resident("consumer")?,
            provider: resident("provider")?,
        })
    };
    let mut samples = vec![read(Some(0.0), 0, 0)?];
    let interval = plan.soak / SOAK_SAMPLES;
    let started = Instant::now();
    let (mut exchanges, mut errors) = (0, 0);
    for _ in 0..SOAK_SAMPLES {
        let part = ClosedLoop {
            connections: plan.connections,
            duration: interval,
            max_requests: plan.max_requests,
        };
        let result = load::closed_loop(&target, part).await?;
        exchanges += result.completed;
        errors += result.errors;
        let sample = read(Some(started.elapsed().as_secs_f64()), exchanges, errors)?;
        eprintln!(
            "soak {:>6.0} s {:>9} exchanges  consumer {:>9}  provider {:>9}",
            sample.seconds.unwrap_or_default(),
            exchanges,
            mebibytes(sample.consumer),
            mebibytes(sample.provider)
        );
        samples.push(sample);
    }
    tokio::time::sleep(plan.idle_settle).await;
    samples.push(read(None, exchanges, errors)?);
    Ok(samples)
}

fn median_throughput(steps: &[Step], way: Way) -> Option<f64> {
    let mut values: Vec<f64> = steps
        .iter()
        .filter(|step| step.way == way)
        .map(|step| step.result.throughput())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// Total CPU of `role` over total exchanges, across every step of `way`.
fn cpu_per_exchange_us(steps: &[Step], way: Way, role: &str) -> Option<f64> {
    let (spent, completed) = steps
        .iter()
        .filter(|step| step.way == way)
        .filter_map(|step| Some((step.cpu.get(role)?, step.result.completed)))
        .fold(
            (Duration::ZERO, 0u64),
            |(spent, completed), (time, count)| (spent + *time, completed + count),
        );
    (completed > 0).then(|| spent.as_secs_f64() * 1e6 / completed as f64)
}

struct Report {
    results: Results,
    memory: BTreeMap<&'static str, MemoryRecord>,
    nginx_memory: Option<[Option<procstat::Memory>; 2]>,
}

impl Report {
    fn ways(&self) -> Vec<Way> {
        let mut ways: Vec<Way> = self
            .results
            .saturation
            .iter()
            .map(|step| step.way)
            .collect();
        ways.sort();
        ways.dedup();
        ways
    }

    fn open_step(&self, percent: u32, way: Way) -> Option<&Step> {
        self.results
            .open
            .iter()
            .find(|(at, _, _)| *at == percent)
            .and_then(|(_, _, steps)| steps.iter().find(|step| step.way == way))
    }

    /// passerelle / direct and passerelle / nginx, and the added latency at 50 % load.
    fn ratios(&self) -> BTreeMap<String, Option<f64>> {
        let throughput = |way| median_throughput(&self.results.saturation, way);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some((a / b * 1000.0).round() / 1000.0),
            _ => None,
        };
        let p99 = |way| {
            self.open_step(50, way)
                .and_then(|step| step.result.percentile_us(0.99))
                .map(f64::from)
        };
        let added = |way| match (p99(way), p99(Way::Direct)) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        let mut ratios = BTreeMap::new();
        for (way, label) in [
            (Way::Passerelle, "passerelle"),
            (Way::PasserelleMemoryLog, "passerelle_memlog"),
        ] {
            ratios.insert(
                format!("{label}_over_direct_throughput"),
                ratio(throughput(way), throughput(Way::Direct)),
            );
            ratios.insert(
                format!("{label}_over_nginx_throughput"),
                ratio(throughput(way), throughput(Way::Nginx)),
            );
            ratios.insert(
                format!("{label}_over_direct_p99_at_50pct"),
                ratio(p99(way), p99(Way::Direct)),
            );
            ratios.insert(
                format!("{label}_over_nginx_p99_at_50pct"),
                ratio(p99(way), p99(Way::Nginx)),
            );
            ratios.insert(format!("{label}_added_p99_us_at_50pct"), added(way));
        }
        ratios.insert("nginx_added_p99_us_at_50pct".to_owned(), added(Way::Nginx));
        ratios
    }

    fn table(&self, plan: &Plan) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let ways = self.ways();
        let _ = writeln!(
            out,
            "\nSaturation, 1 KiB request / 1 KiB response, {} connections, median of {} rounds of {:.1} s",
            plan.connections,
            plan.rounds,
            plan.saturation.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{:<18} {:>11} {:>7} {:>9} {:>9}   CPU µs per exchange",
            "target", "exchanges/s", "errors", "p50", "p99"
        );
        for &way in &ways {
            let steps: Vec<&Step> = self
                .results
                .saturation
                .iter()
                .filter(|step| step.way == way)
                .collect();
            let errors: u64 = steps.iter().map(|step| step.result.errors).sum();
            let median_step = steps.get(steps.len() / 2);
            let mut cpu = String::new();
            for role in way.gateways().iter().chain(&["backend", "generator"]) {
                if let Some(value) = cpu_per_exchange_us(&self.results.saturation, way, role) {
                    let _ = write!(cpu, "{role} {value:.0}  ");
                }
            }
            let _ = writeln!(
                out,
                "{:<18} {:>11.0} {:>7} {:>9} {:>9}   {}",
                way.name(),
                median_throughput(&self.results.saturation, way).unwrap_or(0.0),
                errors,
                micros(median_step.and_then(|step| step.result.percentile_us(0.5))),
                micros(median_step.and_then(|step| step.result.percentile_us(0.99))),
                cpu.trim_end()
            );
        }
        let _ = writeln!(
            out,
            "\nLatency at fixed offered rates (open loop, from the due time), {:.1} s each",
            plan.open.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{:>5} {:>9} {:<18} {:>9} {:>9} {:>9} {:>7}",
            "load", "rate/s", "target", "p50", "p99", "p99.9", "errors"
        );
        for (percent, rate, steps) in &self.results.open {
            let mut steps: Vec<&Step> = steps.iter().collect();
            steps.sort_by_key(|step| step.way);
            for step in steps {
                let _ = writeln!(
                    out,
                    "{:>4}% {:>9.0} {:<18} {:>9} {:>9} {:>9} {:>7}",
                    percent,
                    rate,
                    step.way.name(),
                    micros(step.result.percentile_us(0.5)),
                    micros(step.result.percentile_us(0.99)),
                    micros(step.result.percentile_us(0.999)),
                    step.result.errors
                );
            }
        }
        let _ = writeln!(out, "\nLarger bodies (same size both ways), closed loop");
        let _ = writeln!(
            out,
            "{:>9} {:<18} {:>11} {:>9} {:>9} {:>9}   CPU µs per exchange",
            "body", "target", "exchanges/s", "MiB/s", "p50", "p99"
        );
        for (body, steps) in &self.results.large {
            let mut steps: Vec<&Step> = steps.iter().collect();
            steps.sort_by_key(|step| step.way);
            for step in steps {
                let mut cpu = String::new();
                for role in step.way.gateways() {
                    if let Some(value) = step.cpu_per_exchange_us(role) {
                        let _ = write!(cpu, "{role} {value:.0}  ");
                    }
                }
                let throughput = step.result.throughput();
                let _ = writeln!(
                    out,
                    "{:>9} {:<18} {:>11.1} {:>9.1} {:>9} {:>9}   {}",
                    size(*body),
                    step.way.name(),
                    throughput,
                    throughput * 2.0 * *body as f64 / (1024.0 * 1024.0),
                    micros(step.result.percentile_us(0.5)),
                    micros(step.result.percentile_us(0.99)),
                    cpu.trim_end()
                );
            }
        }
        let _ = writeln!(out, "\nMemory (resident)");
        for (role, record) in &self.memory {
            let _ = writeln!(
                out,
                "  security server {role:<9} idle {:>9}   peak at 1 KiB saturation {:>9}   peak overall {:>9}",
                mebibytes(record.idle_max),
                mebibytes(record.peak_small_max),
                mebibytes(record.peak_max)
            );
        }
        if let Some(masters) = &self.nginx_memory {
            for (name, memory) in ["nginx-a", "nginx-b"].iter().zip(masters) {
                if let Some(memory) = memory {
                    let _ = writeln!(
                        out,
                        "  {name:<25} now {:>7}   peak {:>7} (master + workers)",
                        mebibytes(memory.resident),
                        mebibytes(memory.peak)
                    );
                }
            }
        }
        if !self.results.soak.is_empty() {
            let _ = writeln!(
                out,
                "\nSoak: freshly started security servers at 1 KiB saturation ({} connections, durable log)",
                plan.connections
            );
            let _ = writeln!(
                out,
                "{:>9} {:>10} {:>7} {:>10} {:>10}",
                "seconds", "exchanges", "errors", "consumer", "provider"
            );
            for sample in &self.results.soak {
                let at = sample
                    .seconds
                    .map_or_else(|| "idle".to_owned(), |seconds| format!("{seconds:.0}"));
                let _ = writeln!(
                    out,
                    "{at:>9} {:>10} {:>7} {:>10} {:>10}",
                    sample.exchanges,
                    sample.errors,
                    mebibytes(sample.consumer),
                    mebibytes(sample.provider)
                );
            }
        }
        let _ = writeln!(out, "\nRatios (same run)");
        for (name, value) in self.ratios() {
            let shown = value.map_or_else(|| "n/a".to_owned(), |value| format!("{value:.3}"));
            let _ = writeln!(out, "  {name:<42} {shown}");
        }
        out
    }

    fn json(&self, plan: &Plan) -> Value {
        let saturation: Vec<Value> = self
            .ways()
            .into_iter()
            .map(|way| {
                let rounds: Vec<Value> = self
                    .results
                    .saturation
                    .iter()
                    .filter(|step| step.way == way)
                    .map(Step::json)
                    .collect();
                let mut cpu = serde_json::Map::new();
                for role in way.gateways().iter().chain(&["backend", "generator"]) {
                    cpu.insert(
                        (*role).to_owned(),
                        json!(cpu_per_exchange_us(&self.results.saturation, way, role).map(round1)),
                    );
                }
                json!({
                    "target": way.name(),
                    "median_exchanges_per_second":
                        median_throughput(&self.results.saturation, way).map(round1),
                    "cpu_us_per_exchange": cpu,
                    "rounds": rounds,
                })
            })
            .collect();
        let open: Vec<Value> = self
            .results
            .open
            .iter()
            .map(|(percent, rate, steps)| {
                json!({
                    "percent_of_passerelle_saturation": percent,
                    "offered_per_second": round1(*rate),
                    "targets": steps.iter().map(Step::json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let large: Vec<Value> = self
            .results
            .large
            .iter()
            .map(|(body, steps)| {
                json!({
                    "body_bytes": body,
                    "targets": steps.iter().map(Step::json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let nginx_memory = self.nginx_memory.as_ref().map(|masters| {
            ["nginx-a", "nginx-b"]
                .iter()
                .zip(masters)
                .map(|(name, memory)| {
                    (
                        (*name).to_owned(),
                        json!(memory.map(|memory| json!({
                            "rss_bytes_at_end": memory.resident,
                            "peak_rss_bytes": memory.peak,
                        }))),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        });
        json!({
            "machine": machine(),
            "settings": {
                "rounds": plan.rounds,
                "saturation_seconds": plan.saturation.as_secs_f64(),
                "open_loop_seconds": plan.open.as_secs_f64(),
                "connections": plan.connections,
                "max_requests": plan.max_requests,
            },
            "saturation_1k": saturation,
            "open_loop_1k": open,
            "large_bodies": large,
            "security_server_memory": memory_json(&self.memory),
            "nginx_memory": nginx_memory,
            "soak": self.results.soak.iter().map(|sample| json!({
                "seconds": sample.seconds.map(round1),
                "exchanges": sample.exchanges,
                "errors": sample.errors,
                "consumer_rss_bytes": sample.consumer,
                "provider_rss_bytes": sample.provider,
            })).collect::<Vec<_>>(),
            "ratios": self.ratios(),
        })
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, value)| value.trim().to_owned());
    json!({
        "nproc": std::thread::available_parallelism().map(usize::from).ok(),
        "cpu_model": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|text| text.trim().to_owned()),
    })
}

fn memory_json(memory: &BTreeMap<&'static str, MemoryRecord>) -> Value {
    memory
        .iter()
        .map(|(role, record)| {
            (
                (*role).to_owned(),
                json!({
                    "idle_rss_bytes": record.idle_max,
                    "peak_rss_bytes_1k_saturation": record.peak_small_max,
                    "peak_rss_bytes": record.peak_max,
                }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn micros(value: Option<u32>) -> String {
    match value {
        None => "-".to_owned(),
        Some(us) if us >= 10_000 => format!("{:.1} ms", f64::from(us) / 1000.0),
        Some(us) => format!("{us} µs"),
    }
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(way: Way, completed: u64, seconds: u64) -> Step {
        Step {
            way,
            result: RunResult {
                completed,
                errors: 0,
                elapsed: Duration::from_secs(seconds),
                latencies_us: vec![100; completed as usize],
            },
            cpu: BTreeMap::from([("consumer", Duration::from_millis(completed))]),
        }
    }

    #[test]
    fn rounds_rotate_so_no_target_always_comes_first() {
        let ways = [Way::Direct, Way::Nginx, Way::Passerelle];
        assert_eq!(rotated(&ways, 0), ways);
        assert_eq!(
            rotated(&ways, 1),
            [Way::Nginx, Way::Passerelle, Way::Direct]
        );
        assert_eq!(rotated(&ways, 3), ways);
        assert!(rotated(&[], 2).is_empty());
    }

    #[test]
    fn throughput_is_the_median_of_rounds_and_cpu_is_pooled() {
        let steps = [
            step(Way::Passerelle, 300, 1),
            step(Way::Passerelle, 100, 1),
            step(Way::Passerelle, 200, 1),
            step(Way::Direct, 1000, 1),
            step(Way::Direct, 3000, 1),
        ];
        assert_eq!(median_throughput(&steps, Way::Passerelle), Some(200.0));
        assert_eq!(median_throughput(&steps, Way::Direct), Some(2000.0));
        assert_eq!(median_throughput(&steps, Way::Nginx), None);
        // 1 ms of consumer CPU per exchange in every step.
        let cpu = cpu_per_exchange_us(&steps, Way::Passerelle, "consumer").unwrap();
        assert!((cpu - 1000.0).abs() < 1e-6);
        assert_eq!(
            cpu_per_exchange_us(&steps, Way::Passerelle, "provider"),
            None
        );
    }
}
