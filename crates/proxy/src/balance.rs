//! Spreads client connections evenly over the data-plane workers.
//!
//! Every worker accepts from its own copy of each listening socket, and the kernel wakes
//! whichever is ready first: under a burst of new connections (a load balancer or a load
//! test opening its pool) one busy worker can take most of them and serve them on one core
//! while the other idles, which a benchmark showed as a 70/30 split of CPU time and a longer
//! tail. So a worker that accepts a connection while it holds more than the least-loaded
//! worker passes the socket to that worker instead of serving it. Only the connections that
//! would unbalance the workers move, once each, at accept: a request never crosses threads.

use prometheus_client::metrics::gauge::Gauge;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A connection passed to another worker, with what that worker needs to serve it.
pub struct Handoff<T> {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub extra: T,
    pub load: Load,
}

/// The open connections of every worker and the inbox each takes handed-off sockets from.
pub struct Balance<T> {
    /// Open connections per worker; the gauges are also what `/metrics` shows.
    loads: Vec<Gauge>,
    inboxes: Vec<mpsc::UnboundedSender<Handoff<T>>>,
}

impl<T> Balance<T> {
    /// A balance over one worker per gauge, and the receiving end of each worker's inbox.
    pub fn new(loads: Vec<Gauge>) -> (Arc<Balance<T>>, Vec<mpsc::UnboundedReceiver<Handoff<T>>>) {
        let mut inboxes = Vec::with_capacity(loads.len());
        let mut receivers = Vec::with_capacity(loads.len());
        for _ in 0..loads.len() {
            let (tx, rx) = mpsc::unbounded_channel();
            inboxes.push(tx);
            receivers.push(rx);
        }
        (Arc::new(Balance { loads, inboxes }), receivers)
    }

    /// Where worker `me` should serve a connection it just accepted: itself (`None`, with
    /// its load counted) or the least-loaded worker (`Some`, that worker's load counted).
    /// The count is taken before the socket moves, so that workers accepting at the same
    /// moment see each other's choices.
    pub fn place(&self, me: usize) -> (Option<usize>, Load) {
        let mine = self.loads[me].get();
        let (least, lowest) = self
            .loads
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.get()))
            .min_by_key(|&(i, l)| (l, i != me))
            .unwrap_or((me, mine));
        // Within one connection of the least loaded is balanced enough; moving a socket
        // costs a deregistration and a registration.
        if least != me && lowest + 1 < mine {
            (Some(least), Load::new(self.loads[least].clone()))
        } else {
            (None, Load::new(self.loads[me].clone()))
        }
    }

    /// Sends a connection to worker `to`; gives it back when that worker has stopped.
    pub fn send(&self, to: usize, handoff: Handoff<T>) -> Result<(), Handoff<T>> {
        self.inboxes[to].send(handoff).map_err(|e| e.0)
    }

    /// Open client connections over all workers, for shutdown to wait on.
    pub fn open(&self) -> i64 {
        self.loads.iter().map(Gauge::get).sum()
    }

    /// The load counter of worker `me`, for a connection it serves after a failed send.
    pub fn load_of(&self, me: usize) -> Load {
        Load::new(self.loads[me].clone())
    }
}

/// One open connection counted against a worker until it is dropped.
pub struct Load(Gauge);

impl Load {
    fn new(count: Gauge) -> Load {
        count.inc();
        Load(count)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_ahead_by_more_than_one_passes_the_connection_to_the_least_loaded() {
        let (balance, _rx) = Balance::<()>::new(vec![Gauge::default(), Gauge::default()]);
        let held: Vec<Load> = (0..2).map(|_| balance.place(0).1).collect();
        // Worker 0 holds 2 and worker 1 none: the next one goes to worker 1.
        let (to, load) = balance.place(0);
        assert_eq!(to, Some(1));
        drop(load);
        // Even loads stay where they were accepted.
        let _one = balance.place(1).1;
        let (to, _load) = balance.place(1);
        assert_eq!(to, None);
        drop(held);
    }

    #[test]
    fn a_dropped_load_is_no_longer_counted() {
        let (balance, _rx) = Balance::<()>::new(vec![Gauge::default(), Gauge::default()]);
        let a = balance.place(0).1;
        let b = balance.place(0).1;
        drop((a, b));
        assert_eq!(balance.place(0).0, None);
    }
}
