//! The benchmark's reference: two nginx reverse proxies chained with mutual TLS, the cost of
//! two TLS proxy hops that neither sign nor log. nginx A listens in plain HTTP (as a security
//! server's client side does) and proxies over TLS 1.3, presenting a client certificate, to
//! nginx B, which requires one and proxies to the backend. Both keep upstream connections
//! alive. Certificates come from the federation's development CA.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use passerelle_pki::devca::{DevCa, IssueRequest, LeafKey, LeafProfile, Validity};

/// Where an nginx binary may be when it is not on `PATH` (Debian installs it in sbin).
const CANDIDATES: [&str; 3] = ["nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx"];

/// The nginx binary to use, if one is installed.
pub fn find_binary() -> Option<PathBuf> {
    CANDIDATES.iter().map(PathBuf::from).find(|candidate| {
        Command::new(candidate)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Two running nginx processes (masters, with their workers). Dropping it stops them.
#[derive(Debug)]
pub struct NginxChain {
    /// nginx A's plain HTTP listener: where the load generator calls.
    pub entry: SocketAddr,
    /// The master processes of nginx A and nginx B.
    pub masters: [u32; 2],
    children: Vec<Child>,
}

impl NginxChain {
    /// Writes certificates and configurations under `dir` and starts both proxies in front of
    /// `backend`. `workers` is each proxy's `worker_processes`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        ca: &DevCa,
        backend: SocketAddr,
        workers: usize,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let now = SystemTime::now();
        let root = dir.join("ca.pem");
        std::fs::write(&root, ca.root().to_pem())?;
        for name in ["nginx-a", "nginx-b"] {
            let issued = ca.issue(&IssueRequest {
                profile: LeafProfile::Auth {
                    name: name.to_owned(),
                    dns_names: vec!["localhost".to_owned()],
                    ip_addresses: vec![Ipv4Addr::LOCALHOST.into()],
                },
                validity: Validity::days_from(now, 30),
                key: LeafKey::Generate,
            })?;
            issued.write(&dir.join(name))?;
        }
        let entry_port = free_port()?;
        let inner_port = free_port()?;
        let common = |name: &str| -> anyhow::Result<String> {
            let home = dir.join(name);
            std::fs::create_dir_all(&home)?;
            Ok(format!(
                r#"daemon off;
master_process on;
worker_processes {workers};
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {home}/client_body;
  proxy_temp_path {home}/proxy;
  fastcgi_temp_path {home}/fastcgi;
  uwsgi_temp_path {home}/uwsgi;
  scgi_temp_path {home}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_max_body_size 16m;
  client_body_buffer_size 8m;
  proxy_buffer_size 16k;
  proxy_buffers 96 64k;
  proxy_max_temp_file_size 0;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
"#,
                home = home.display(),
            ))
        };
        let config_a = format!(
            r#"{common}
  upstream inner {{ server 127.0.0.1:{inner_port}; keepalive 256; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{entry_port};
    location / {{
      proxy_pass https://inner;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate {dir}/nginx-a.chain.pem;
      proxy_ssl_certificate_key {dir}/nginx-a.key.pem;
      proxy_ssl_trusted_certificate {root};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 3;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
    }}
  }}
}}
"#,
            common = common("nginx-a")?,
            dir = dir.display(),
            root = root.display(),
        );
        let config_b = format!(
            r#"{common}
  upstream backend {{ server {backend}; keepalive 256; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{inner_port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate {dir}/nginx-b.chain.pem;
    ssl_certificate_key {dir}/nginx-b.key.pem;
    ssl_client_certificate {root};
    ssl_verify_client on;
    ssl_verify_depth 3;
    location / {{
      proxy_pass http://backend;
    }}
  }}
}}
"#,
            common = common("nginx-b")?,
            dir = dir.display(),
            root = root.display(),
        );
        let mut children = Vec::new();
        let mut masters = [0; 2];
        for (index, (name, config)) in [("nginx-b", config_b), ("nginx-a", config_a)]
            .into_iter()
            .enumerate()
        {
            let path = dir.join(format!("{name}.conf"));
            std::fs::write(&path, config)?;
            let log = std::fs::File::create(dir.join(format!("{name}.out")))?;
            let child = Command::new(binary)
                .arg("-p")
                .arg(dir.join(name))
                .arg("-c")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            // A is index 1 in start order but index 0 in `masters`: A is the entry.
            masters[1 - index] = child.id();
            children.push(child);
        }
        let chain = Self {
            entry: SocketAddr::from((Ipv4Addr::LOCALHOST, entry_port)),
            masters,
            children,
        };
        for port in [inner_port, entry_port] {
            wait_for_port(port, Duration::from_secs(10)).with_context(|| {
                format!("nginx did not listen on {port}; see {}", dir.display())
            })?;
        }
        Ok(chain)
    }
}

impl Drop for NginxChain {
    /// SIGTERM to each master, which stops its workers; SIGKILL would leave them running.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts connections on loopback `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
