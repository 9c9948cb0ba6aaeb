//! Published ports: a userspace forwarder, like docker's `docker-proxy`. The monitor
//! listens on the host port and, for each connection, connects to the container port on
//! the container's loopback from a thread that has entered the container's network
//! namespace. Nothing on the host changes: no bridge, no veth, no firewall rule, which
//! machines that may not touch their firewall (CI, shared hosts) need.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

use super::record::PortMapping;

/// Bind every host port first, so a port in use fails the start.
pub(crate) fn bind(ports: &[PortMapping]) -> io::Result<Vec<(TcpListener, u16)>> {
    ports
        .iter()
        .map(|p| {
            TcpListener::bind((p.host_ip, p.host_port))
                .map(|l| (l, p.container_port))
                .map_err(|e| io::Error::new(e.kind(), format!("Bind for {}:{} failed: {e}", p.host_ip, p.host_port)))
        })
        .collect()
}

/// Serve each listener in a thread of its own, forwarding into the network namespace
/// `netns` (`/proc/PID/ns/net` of the container), for as long as the process lives.
pub(crate) fn forward(listeners: Vec<(TcpListener, u16)>, netns: File) {
    let netns = Arc::new(netns);
    for (listener, port) in listeners {
        let netns = Arc::clone(&netns);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let netns = Arc::clone(&netns);
                std::thread::spawn(move || {
                    let _ = serve(client, &netns, port);
                });
            }
        });
    }
}

/// One connection: connect inside the namespace (this thread enters it; the socket
/// stays in it), then copy both ways until each side closes.
fn serve(client: TcpStream, netns: &File, port: u16) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(netns),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    let upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
