//! Where the host reaches a proxy's listeners. A proxy booted as a container listens on
//! 0.0.0.0:80 inside it, but the host reaches it only where Docker publishes that port
//! (`proxy boot --listen 127.0.0.1:8080`): that is what `proxy status` must show.

use berth_engine::{Engine, PublishedPort};
use std::path::Path;

/// `listen` (the proxy's own addresses) as the host reaches them: a port that the proxy's
/// container publishes becomes its published address(es). Unchanged for a proxy running on
/// the host, and when the engine cannot be asked (the proxy's own word is all there is).
pub async fn host_addresses(socket: &Path, listen: &[String]) -> Vec<String> {
    let Some(ports) = container_ports(socket).await else {
        return listen.to_vec();
    };
    listen
        .iter()
        .map(|addr| {
            let port = addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok());
            let mut published: Vec<String> = ports
                .iter()
                .filter(|p| Some(p.container_port) == port)
                .filter_map(|p| {
                    let host_port = p.host_port?;
                    let ip = p.host_ip.as_deref().filter(|ip| !ip.is_empty());
                    Some(match ip {
                        Some(ip) if ip.contains(':') => format!("[{ip}]:{host_port}"),
                        Some(ip) => format!("{ip}:{host_port}"),
                        None => format!("0.0.0.0:{host_port}"),
                    })
                })
                .collect();
            published.dedup();
            if published.is_empty() {
                addr.clone()
            } else {
                published.join(", ")
            }
        })
        .collect()
}

/// The published ports of the container that serves `socket`, found by the label
/// `proxy boot` gives it.
async fn container_ports(socket: &Path) -> Option<Vec<PublishedPort>> {
    let socket = std::path::absolute(socket).ok()?;
    let socket = socket.display().to_string();
    let engine = Engine::connect().await.ok()?;
    let list = engine
        .list_containers(&[(super::container::SOCKET_LABEL, Some(&socket))], false)
        .await
        .ok()?;
    list.into_iter().next().map(|c| c.ports)
}
