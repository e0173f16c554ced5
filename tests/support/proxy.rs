//! A TCP forwarder on loopback that a test can switch off and on, to cut a client off from
//! its server and let it back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<JoinSet<()>>>,
    accept: AbortHandle,
    /// Told to every link: stop forwarding, but keep both sockets open.
    stall: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// Forwards a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(JoinSet::new()));
        let (stall, stalled) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn({
            let (up, links) = (up.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection close
                    }
                    let mut stalled = stalled.clone();
                    links.lock().unwrap().spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = async { let _ = stalled.wait_for(|stalled| *stalled).await.is_ok(); } => {
                                    // Silence: no byte either way, no close either.
                                    std::future::pending::<()>().await;
                                }
                            }
                        }
                    });
                }
            }
        })
        .abort_handle();
        Self {
            addr,
            up,
            links,
            accept,
            stall,
        }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().abort_all();
    }

    /// Stops forwarding on every open connection without closing any: the network path
    /// goes silent.
    pub fn stall(&self) {
        let _ = self.stall.send(true);
    }

    /// Lets connections through again.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.links.lock().unwrap().abort_all();
    }
}
