//! Upgrading the proxy without a gap: the running process passes its listening sockets
//! to the new one over a unix socket (`SCM_RIGHTS`), with its routes and the live health
//! of every target, then stops accepting and drains. The sockets never close, so the
//! kernel keeps queueing connections throughout and none is refused.

use crate::state::PersistedState;
use crate::target::Health;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BERTHHO1";
const MAX_FDS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketKind {
    Http,
    Tls,
    Metrics,
    Admin,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Offer {
    pub sockets: Vec<SocketKind>,
    pub state: PersistedState,
    pub health: Vec<(String, String, Health)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The handover socket sits beside the admin socket.
pub fn socket_path(admin: &Path) -> PathBuf {
    let mut name = admin.as_os_str().to_owned();
    name.push(".handover");
    PathBuf::from(name)
}

/// What the new process received: the sockets (in the order of `offer.sockets`) and the
/// connection on which it reports that it serves.
pub struct Received {
    pub offer: Offer,
    pub fds: Vec<OwnedFd>,
    pub conn: UnixStream,
}

/// New process: asks the running proxy for its sockets. Blocking; called before serving.
pub fn request(path: &Path) -> io::Result<Received> {
    let mut conn = UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "no running proxy to take over at {} ({e}); start without --takeover",
                path.display()
            ),
        )
    })?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    conn.write_all(b"takeover\n")?;
    let mut header = [0u8; 12];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [io::IoSliceMut::new(&mut header)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            for fd in received {
                // SAFETY: the kernel just installed `fd` in this process for this message
                // (SCM_RIGHTS); nothing else refers to it, so taking ownership is sound.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    let got = msg.bytes;
    if got < 12 || &header[..8] != MAGIC {
        // The rest of the header may follow in a second read on a short first one.
        if got < 12 && got > 0 {
            conn.read_exact(&mut header[got..])?;
        }
        if &header[..8] != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the running proxy answered the handover with something else; is it a berth proxy?",
            ));
        }
    }
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let mut json = vec![0u8; len];
    conn.read_exact(&mut json)?;
    let offer: Offer = serde_json::from_slice(&json).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad handover offer: {e}"),
        )
    })?;
    if let Some(error) = &offer.error {
        return Err(io::Error::other(format!(
            "the running proxy refused the handover: {error}"
        )));
    }
    if offer.sockets.len() != fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the running proxy offered {} sockets but sent {}",
                offer.sockets.len(),
                fds.len()
            ),
        ));
    }
    Ok(Received { offer, fds, conn })
}

/// New process: says it serves, then waits until the old process has let go of its
/// copies (it closes the connection), so that the handover socket path is free.
pub fn confirm(mut conn: UnixStream) -> io::Result<()> {
    conn.write_all(b"ready\n")?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    Ok(())
}

/// Old process: reads the request line of a handover connection.
pub fn read_request(conn: &UnixStream) -> io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    if line.trim() != "takeover" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unknown handover request",
        ));
    }
    Ok(())
}

/// Old process: sends the offer with the sockets attached.
pub fn send_offer(conn: &UnixStream, offer: &Offer, fds: &[RawFd]) -> io::Result<()> {
    let json = serde_json::to_vec(offer).map_err(io::Error::other)?;
    let mut header = [0u8; 12];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&(json.len() as u32).to_be_bytes());
    let iov = [io::IoSlice::new(&header)];
    let cmsgs = if fds.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(fds)]
    };
    let sent = sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    let mut writer = conn;
    if sent < header.len() {
        writer.write_all(&header[sent..])?;
    }
    writer.write_all(&json)?;
    writer.flush()
}

/// Old process: waits for the new one to say it serves.
pub fn wait_ready(conn: &UnixStream, timeout: std::time::Duration) -> io::Result<()> {
    conn.set_read_timeout(Some(timeout))?;
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line)?;
    if line.trim() == "ready" {
        Ok(())
    } else {
        Err(io::Error::other(
            "the new proxy went away before it was ready",
        ))
    }
}
