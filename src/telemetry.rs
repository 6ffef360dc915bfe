//! Prometheus metrics for the gateway (`GET /metrics`), through the
//! `metrics` facade and its Prometheus exporter.
//!
//! The hot paths count in plain atomics ([`EngineStats`], [`IoStats`], the
//! cluster's counters); a scrape copies them into a recorder of this
//! gateway's own (no process-wide recorder: several gateways may share a
//! process) and renders the text format. Labels come from bounded sets
//! only: transport, close reason, outcome; never an event name, a room or
//! an id.
//!
//! [`EngineStats`]: crate::engine::EngineStats
//! [`IoStats`]: crate::socketio::IoStats

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::cluster::{ClusterStore, NodeRegistry, RedisBus};
use crate::engine::{CloseReason, TransportKind};
use crate::socketio::SocketIo;

/// A gateway's metrics: its recorder, filled at each scrape.
pub struct Telemetry {
    recorder: PrometheusRecorder,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Telemetry")
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// What a scrape reads from the cluster, when there is one.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterParts<'a> {
    /// The pub/sub bus.
    pub bus: Option<&'a RedisBus>,
    /// The node registry.
    pub nodes: Option<&'a NodeRegistry>,
    /// The recovery store.
    pub store: Option<&'a ClusterStore>,
    /// The backend hooks.
    pub hooks: Option<&'a crate::hooks::Hooks>,
    /// The relay.
    pub relay: Option<&'a crate::gateway::Relay>,
}

impl Telemetry {
    /// An empty recorder.
    pub fn new() -> Self {
        Telemetry {
            recorder: PrometheusBuilder::new().build_recorder(),
        }
    }

    /// Records into this gateway's recorder (for events counted as they
    /// happen, such as hook calls and their latency).
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The Prometheus text for `io` (and its cluster) now.
    pub fn render(&self, io: &SocketIo, cluster: ClusterParts<'_>) -> String {
        self.record(|| {
            let engine = io.engine();
            let e = engine.stats();
            let (mut polling, mut websocket) = (0u64, 0u64);
            for s in engine.live_sessions() {
                match s.transport() {
                    TransportKind::Polling => polling += 1,
                    TransportKind::WebSocket => websocket += 1,
                }
            }
            gauge!("socketgate_sessions", "transport" => "polling").set(polling as f64);
            gauge!("socketgate_sessions", "transport" => "websocket").set(websocket as f64);
            counter!("socketgate_handshakes_total", "transport" => "polling")
                .absolute(e.handshakes_polling);
            counter!("socketgate_handshakes_total", "transport" => "websocket")
                .absolute(e.handshakes_websocket);
            counter!("socketgate_upgrades_total").absolute(e.upgrades);
            counter!("socketgate_polling_compressed_total").absolute(e.compressed_answers);
            for reason in CloseReason::ALL {
                counter!("socketgate_disconnects_total", "reason" => reason.as_str())
                    .absolute(e.closes[reason.index()]);
            }
            counter!("socketgate_messages_in_total").absolute(e.messages_in);
            counter!("socketgate_bytes_in_total").absolute(e.bytes_in);
            counter!("socketgate_frames_out_total").absolute(e.frames_out);
            counter!("socketgate_bytes_out_total").absolute(e.bytes_out);
            counter!("socketgate_slow_consumer_closes_total").absolute(e.slow_consumer_closes);
            counter!("socketgate_volatile_dropped_total").absolute(e.volatile_dropped);
            counter!("socketgate_dropped_full_total").absolute(e.dropped_full);
            counter!("socketgate_forwarded_total").absolute(e.forwarded);
            counter!("socketgate_forward_failures_total").absolute(e.forward_failures);
            counter!("socketgate_relayed_total").absolute(e.relayed);
            counter!("socketgate_served_forwarded_total").absolute(e.served_forwarded);
            counter!("socketgate_refused_forwards_total").absolute(e.refused_forwards);
            counter!("socketgate_owner_unknown_total").absolute(e.owner_unknown);

            let s = io.stats();
            counter!("socketgate_broadcasts_total").absolute(s.broadcasts);
            counter!("socketgate_broadcast_deliveries_total").absolute(s.deliveries);
            counter!("socketgate_recoveries_total", "outcome" => "recovered").absolute(s.recovered);
            counter!("socketgate_recoveries_total", "outcome" => "not_recovered")
                .absolute(s.not_recovered);

            if let Some(bus) = cluster.bus {
                let b = bus.stats();
                gauge!("socketgate_cluster_bus_up").set(if b.up { 1.0 } else { 0.0 });
                counter!("socketgate_cluster_published_total").absolute(b.published);
                counter!("socketgate_cluster_unpublished_total").absolute(b.unpublished);
                counter!("socketgate_cluster_received_total").absolute(b.received);
                counter!("socketgate_cluster_malformed_total").absolute(b.malformed);
            }
            if let Some(nodes) = cluster.nodes {
                let n = nodes.stats();
                gauge!("socketgate_cluster_nodes").set(n.alive as f64);
                counter!("socketgate_cluster_node_joins_total").absolute(n.joined);
                counter!("socketgate_cluster_node_deaths_total").absolute(n.died);
            }
            if let Some(hooks) = cluster.hooks {
                let h = hooks.stats();
                for (hook, outcome, n) in [
                    ("connect", "allowed", h.connect_allowed),
                    ("connect", "refused", h.connect_refused),
                    ("connect", "failed", h.connect_failed),
                    ("events", "answered", h.events_sent),
                    ("events", "failed", h.events_failed),
                    ("events", "dropped", h.events_dropped),
                    ("disconnect", "sent", h.disconnects_sent),
                    ("disconnect", "failed", h.disconnects_failed),
                    ("disconnect", "dropped", h.disconnects_dropped),
                ] {
                    counter!("socketgate_hook_calls_total", "hook" => hook, "outcome" => outcome)
                        .absolute(n);
                }
                gauge!("socketgate_hook_backend_up").set(if h.backend_down { 0.0 } else { 1.0 });
            }
            if let Some(relay) = cluster.relay {
                counter!("socketgate_relay_rate_limited_total").absolute(relay.rate_limited());
            }
            if let Some(store) = cluster.store {
                let r = store.stats();
                counter!("socketgate_recovery_stream_appended_total").absolute(r.appended);
                counter!("socketgate_recovery_stream_delivered_total").absolute(r.delivered);
                counter!("socketgate_recovery_sessions_dropped_total").absolute(r.sessions_dropped);
            }
        });
        self.recorder.handle().render()
    }
}
