//! A TCP load balancer for tests of several `leadscore serve` instances: clients connect to its
//! one address, as they would to a real load balancer, and each connection is forwarded to one of
//! the live instances in turn (round robin), bytes copied both ways by a thread each.
//!
//! The list of instances changes while it runs (an instance killed is taken out, its replacement
//! put in). As with a real balancer, a connection already forwarded to an instance that dies just
//! breaks: the client sees its request fail and sends it again.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Balancer {
    /// Where clients connect (`127.0.0.1:PORT`).
    pub address: String,
    backends: Arc<Mutex<Vec<String>>>,
}

impl Balancer {
    /// Starts forwarding to `backends` (addresses `HOST:PORT`).
    pub fn start(backends: Vec<String>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let backends = Arc::new(Mutex::new(backends));
        let shared = backends.clone();
        std::thread::spawn(move || {
            let turn = AtomicUsize::new(0);
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let live = shared.lock().unwrap().clone();
                // The next instance in turn; one that refuses (killed a moment ago) passes the
                // connection on to the next, as a balancer's failed health check would.
                let first = turn.fetch_add(1, Ordering::Relaxed);
                let backend = (0..live.len()).find_map(|i| {
                    let address = &live[(first + i) % live.len()];
                    let address = address.parse().ok()?;
                    TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()
                });
                // None live: the client's connection is closed unanswered.
                if let Some(backend) = backend {
                    forward(client, backend);
                }
            }
        });
        Balancer { address, backends }
    }

    /// The instances connections go to now.
    pub fn backends(&self) -> Vec<String> {
        self.backends.lock().unwrap().clone()
    }

    /// Takes `address` out: no new connection goes to it.
    pub fn remove(&self, address: &str) {
        self.backends.lock().unwrap().retain(|backend| backend != address);
    }

    /// Puts `address` in.
    pub fn add(&self, address: &str) {
        self.backends.lock().unwrap().push(address.to_string());
    }
}

/// Copies bytes both ways until either side closes. When the instance's side ends (it answered
/// and closed, or it died), the client's connection is closed at once, both ways, so that a
/// client of a dead instance sees its request fail rather than wait.
fn forward(client: TcpStream, backend: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    let (Ok(client_reader), Ok(backend_writer)) = (client.try_clone(), backend.try_clone()) else { return };
    std::thread::spawn(move || {
        copy(client_reader, &backend_writer);
        // The client is done sending: the instance reads the end of the request.
        let _ = backend_writer.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        copy(&backend, &client);
        let _ = client.shutdown(Shutdown::Both);
        let _ = backend.shutdown(Shutdown::Both);
    });
}

/// Copies until the reader ends or either side fails.
fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
