//! `soak`: a long run where thousands of clients live the lives real
//! clients do against the socketgate gateway's relay (`join`, `chat`,
//! `echo`): they connect over WebSocket, over polling then upgrade (as the
//! JS client does), or over polling only; join a room; chat and ask for
//! acknowledged echoes; then leave politely, drop their TCP connections
//! without a close, or go silent (the socket stays open, nothing is read
//! or answered) — and reconnect a moment later.
//!
//! One observer per room stays connected for the whole run. What is lost
//! is counted three ways: a chat its sender never saw come back while its
//! connection stayed healthy, an echo whose ack never came, and a chat its
//! sender saw delivered that the room's observer never received. After
//! every client has left, the server's session count (its health route)
//! must return to zero within pingInterval + pingTimeout: what remains is
//! reported as leaked. The server's RSS is sampled throughout.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{Opts, collect_ready, join_all, report_cpu_and_errors, secs};
use crate::conn::{self, Conn, Error};
use crate::ctx::{Ctx, Transport, now_us};
use crate::proto::{parse_ack, parse_event};
use crate::report::Report;
use crate::stats::{Errors, Group, Snap, Window, round2, rss_kib};

/// Members per room (observer included), on average.
const ROOM_SIZE: usize = 10;

#[derive(Default)]
struct Counters {
    online: AtomicI64,
    lives: AtomicU64,
    upgrades: AtomicU64,
    polling_only: AtomicU64,
    polite: AtomicU64,
    abrupt: AtomicU64,
    silent: AtomicU64,
    /// Connections held silent right now.
    held: AtomicI64,
    chats_sent: AtomicU64,
    /// Chats their sender saw delivered back.
    chats_confirmed: AtomicU64,
    /// Chats from others received by the churning clients.
    chats_received: AtomicU64,
    own_lost: AtomicU64,
    echoes_sent: AtomicU64,
    echoes_acked: AtomicU64,
    acks_lost: AtomicU64,
}

struct Shared {
    c: Counters,
    group: Group,
    next_id: AtomicU64,
    /// Per room: ids of chats their sender saw delivered.
    confirmed: Vec<Mutex<Vec<u64>>>,
}

/// A sample of the server and the fleet at one instant.
struct Sample {
    t_s: f64,
    rss_kib: Option<u64>,
    sessions: Option<u64>,
    online: i64,
    held: i64,
    confirmed: u64,
    /// Errors so far, by kind.
    errors: Errors,
}

/// Small deterministic generator (xorshift64*), one per client slot.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform duration in [lo, hi) milliseconds.
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

pub async fn run(ctx: Arc<Ctx>, o: &Opts) -> Report {
    let n = o.clients.max(2);
    let rooms = (n / ROOM_SIZE).clamp(1, n - 1);
    let shared = Arc::new(Shared {
        c: Counters::default(),
        group: Group::default(),
        next_id: AtomicU64::new(1),
        confirmed: (0..rooms).map(|_| Mutex::new(Vec::new())).collect(),
    });
    let pid = o.server_pid();
    let rss_start = pid.and_then(rss_kib);
    let t0 = Instant::now();

    // Observers first: one per room, WebSocket, for the whole run.
    let (ready_tx, ready_rx) = mpsc::channel(rooms);
    let (obs_stop_tx, obs_stop_rx) = watch::channel(false);
    let (hb_tx, mut hb_rx) = watch::channel(None::<(Duration, Duration)>);
    let hb_tx = Arc::new(hb_tx);
    let observers: Vec<_> = (0..rooms)
        .map(|room| {
            tokio::spawn(observer(
                ctx.clone(),
                room,
                shared.clone(),
                ready_tx.clone(),
                obs_stop_rx.clone(),
                hb_tx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let (obs_ok, obs_failed, obs_pending) = collect_ready(ready_rx, rooms, ctx.timeout).await;
    let (ping_interval, ping_timeout) = hb_rx
        .borrow_and_update()
        .unwrap_or((Duration::from_secs(25), Duration::from_secs(20)));
    let hold = ping_interval + ping_timeout + Duration::from_secs(5);

    // The churning clients, started over a ramp.
    let ramp = (o.duration / 4).min(Duration::from_secs(30));
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots: Vec<_> = (0..n - rooms)
        .map(|i| {
            tokio::spawn(slot(
                ctx.clone(),
                i,
                rooms,
                ramp,
                hold,
                shared.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();

    // Sample while the run lasts.
    let a = Snap::take(pid);
    let mut samples = Vec::new();
    let end = t0 + o.duration;
    let every = o.sample.max(Duration::from_secs(1));
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep((end - now).min(every)).await;
        let s = sample(&ctx, o, &shared, t0).await;
        eprintln!(
            "soak t={:>6.0}s rss={} KiB sessions={} online={} silent={} chats_back={} errors: {}",
            s.t_s,
            s.rss_kib.map_or("-".into(), |v| v.to_string()),
            s.sessions.map_or("-".into(), |v| v.to_string()),
            s.online,
            s.held,
            s.confirmed,
            s.errors.summary()
        );
        samples.push(s);
    }
    let b = Snap::take(pid);
    let window = Window::between(&a, &b);
    let rss_peak_sampled = samples.iter().filter_map(|s| s.rss_kib).max();

    // Everyone leaves: polite closes, after their last messages come back.
    let _ = stop_tx.send(true);
    join_all(
        slots,
        Instant::now() + ctx.timeout * 3 + Duration::from_secs(5),
    )
    .await;
    // Let the last deliveries reach the observers, then close them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = obs_stop_tx.send(true);
    let seen = join_all(
        observers,
        Instant::now() + ctx.timeout + Duration::from_secs(5),
    )
    .await;
    // Silent connections are let go when their hold ends.
    let held_deadline = Instant::now() + hold + Duration::from_secs(5);
    while shared.c.held.load(Ordering::Relaxed) > 0 && Instant::now() < held_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left_at = Instant::now();

    // Sessions must be gone within pingInterval + pingTimeout.
    let leak_deadline = left_at + ping_interval + ping_timeout;
    let mut sessions_left = None;
    let mut zero_after = None;
    if o.health_path.is_some() {
        loop {
            sessions_left = sessions(&ctx, o).await;
            if sessions_left == Some(0) {
                zero_after = Some(left_at.elapsed());
                break;
            }
            if Instant::now() >= leak_deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let rss_end = pid.and_then(rss_kib);

    // Chats a sender saw delivered that its room's observer missed.
    let mut observer_lost = 0u64;
    let mut rooms_unobserved = 0u64;
    let mut observed_of = vec![None; rooms];
    for (room, set) in seen {
        observed_of[room] = set;
    }
    for (room, observed) in observed_of.iter().enumerate() {
        let confirmed = shared.confirmed[room].lock().expect("confirmed");
        match observed {
            Some(set) => {
                observer_lost += confirmed.iter().filter(|id| !set.contains(id)).count() as u64
            }
            None => rooms_unobserved += 1,
        }
    }

    let c = &shared.c;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let errors = shared.group.errors.lock().expect("errors").clone();
    let confirmed = get(&c.chats_confirmed);
    let lost = get(&c.own_lost) + get(&c.acks_lost) + observer_lost;

    let mut r = Report::new(format!(
        "soak: {n} clients ({rooms} observers, {} churning), {} s",
        n - rooms,
        secs(o.duration)
    ));
    r.row(
        "observers",
        format!("{obs_ok} of {rooms} connected ({obs_failed} failed, {obs_pending} unfinished)"),
    );
    r.row(
        "heartbeat",
        format!(
            "pingInterval {} ms, pingTimeout {} ms; silent clients held {} s",
            ping_interval.as_millis(),
            ping_timeout.as_millis(),
            hold.as_secs()
        ),
    );
    r.row(
        "lives",
        format!(
            "{} ({} upgraded from polling, {} polling only)",
            get(&c.lives),
            get(&c.upgrades),
            get(&c.polling_only)
        ),
    );
    r.row(
        "ends",
        format!(
            "{} polite, {} dropped without a close, {} went silent",
            get(&c.polite),
            get(&c.abrupt),
            get(&c.silent)
        ),
    );
    r.row(
        "chats",
        format!(
            "{} sent, {confirmed} seen back by their sender, {} received by other members",
            get(&c.chats_sent),
            get(&c.chats_received)
        ),
    );
    r.row(
        "acked echoes",
        format!(
            "{} sent, {} acked",
            get(&c.echoes_sent),
            get(&c.echoes_acked)
        ),
    );
    r.row(
        "lost",
        format!(
            "{lost}{} ({} chats never back to a healthy sender, {} acks missing, {observer_lost} missed by observers{})",
            if lost == 0 { " (ok)" } else { " (FAIL)" },
            get(&c.own_lost),
            get(&c.acks_lost),
            if rooms_unobserved > 0 {
                format!(", {rooms_unobserved} rooms lost their observer")
            } else {
                String::new()
            }
        ),
    );
    r.row("errors", errors.summary());
    let kib = |v: Option<u64>| v.map_or("- (pass --server-pid)".into(), |v| format!("{v} KiB"));
    r.row("server RSS at start", kib(rss_start));
    r.row("server RSS peak (sampled)", kib(rss_peak_sampled));
    r.row("server RSS after all left", kib(rss_end));
    r.row(
        "sessions after all left",
        match (sessions_left, zero_after) {
            (Some(0), Some(t)) => format!("0 after {:.1} s (ok)", t.as_secs_f64()),
            (Some(v), _) => format!(
                "{v} still open {} s after the last client left (LEAK)",
                (ping_interval + ping_timeout).as_secs()
            ),
            (None, _) => "- (pass --health-path)".into(),
        },
    );
    report_cpu_and_errors(
        &mut r,
        &window,
        confirmed,
        "chat",
        &errors,
        shared.group.last_error.lock().expect("err").clone(),
    );
    r.grid(
        &[
            "t (s)",
            "RSS (KiB)",
            "sessions",
            "online",
            "silent",
            "chats back",
            "errors",
        ],
        samples
            .iter()
            .map(|s| {
                vec![
                    format!("{:.0}", s.t_s),
                    s.rss_kib.map_or("-".into(), |v| v.to_string()),
                    s.sessions.map_or("-".into(), |v| v.to_string()),
                    s.online.to_string(),
                    s.held.to_string(),
                    s.confirmed.to_string(),
                    s.errors.total().to_string(),
                ]
            })
            .collect(),
    );

    r.set("rooms", json!(rooms));
    r.set("observers_connected", json!(obs_ok));
    r.set("ping_interval_ms", json!(ping_interval.as_millis() as u64));
    r.set("ping_timeout_ms", json!(ping_timeout.as_millis() as u64));
    r.set("lives", json!(get(&c.lives)));
    r.set("upgrades", json!(get(&c.upgrades)));
    r.set("polling_only", json!(get(&c.polling_only)));
    r.set(
        "ends",
        json!({"polite": get(&c.polite), "abrupt": get(&c.abrupt), "silent": get(&c.silent)}),
    );
    r.set(
        "chats",
        json!({"sent": get(&c.chats_sent), "confirmed": confirmed, "received_by_others": get(&c.chats_received)}),
    );
    r.set(
        "echoes",
        json!({"sent": get(&c.echoes_sent), "acked": get(&c.echoes_acked)}),
    );
    r.set(
        "lost",
        json!({"total": lost, "own": get(&c.own_lost), "acks": get(&c.acks_lost), "observers": observer_lost, "rooms_unobserved": rooms_unobserved}),
    );
    r.set("rss_start_kib", json!(rss_start));
    r.set("rss_peak_kib", json!(rss_peak_sampled));
    r.set("rss_end_kib", json!(rss_end));
    r.set("sessions_leaked", json!(sessions_left));
    r.set(
        "sessions_zero_after_s",
        json!(zero_after.map(|t| round2(t.as_secs_f64()))),
    );
    r.set(
        "samples",
        Value::Array(
            samples
                .iter()
                .map(|s| {
                    json!({"t_s": round2(s.t_s), "rss_kib": s.rss_kib, "sessions": s.sessions,
                           "online": s.online, "silent": s.held, "confirmed": s.confirmed, "errors": s.errors.total()})
                })
                .collect(),
        ),
    );
    r
}

async fn sample(ctx: &Ctx, o: &Opts, shared: &Shared, t0: Instant) -> Sample {
    let sessions = sessions(ctx, o).await;
    Sample {
        t_s: t0.elapsed().as_secs_f64(),
        rss_kib: o.server_pid().and_then(rss_kib),
        sessions,
        online: shared.c.online.load(Ordering::Relaxed),
        held: shared.c.held.load(Ordering::Relaxed),
        confirmed: shared.c.chats_confirmed.load(Ordering::Relaxed),
        errors: shared.group.errors.lock().expect("errors").clone(),
    }
}

/// The server's live session count from its health route.
async fn sessions(ctx: &Ctx, o: &Opts) -> Option<u64> {
    let path = o.health_path.as_deref()?;
    let (status, body) = conn::http_get(ctx, path).await.ok()?;
    if status != 200 {
        return None;
    }
    serde_json::from_slice::<Value>(&body).ok()?["sessions"].as_u64()
}

fn room_name(room: usize) -> String {
    format!("soak-{room}")
}

/// Joins `room` (an acknowledged `join`) and answers pings meanwhile.
async fn join(conn: &mut Conn, room: usize, timeout: Duration) -> Result<(), Error> {
    conn.send(format!("420[\"join\",\"{}\"]", room_name(room)))
        .await?;
    tokio::time::timeout(timeout, async {
        loop {
            let p = conn.recv().await?;
            if parse_ack(&p) == Some(0) {
                return Ok(());
            }
        }
    })
    .await
    .map_err(|_| Error::Timeout("join"))?
}

/// The id of a relayed chat (`2["chat",{…,"id":N,…}]`).
fn chat_id(sio: &Bytes) -> Option<u64> {
    let ev = parse_event(sio)?;
    if ev.name != "chat" {
        return None;
    }
    ev.args.first()?.get("id")?.as_u64()
}

/// Stays in `room` for the whole run and records every chat id it gets.
async fn observer(
    ctx: Arc<Ctx>,
    room: usize,
    shared: Arc<Shared>,
    ready: mpsc::Sender<bool>,
    mut stop: watch::Receiver<bool>,
    hb: Arc<watch::Sender<Option<(Duration, Duration)>>>,
) -> (usize, Option<HashSet<u64>>) {
    let mut seen = HashSet::new();
    let conn = async {
        let mut conn = Conn::connect(&ctx, Transport::Websocket).await?;
        join(&mut conn, room, ctx.timeout).await?;
        Ok::<_, Error>(conn)
    }
    .await;
    let mut conn = match conn {
        Ok(c) => {
            hb.send_replace(Some((c.handshake.ping_interval, c.handshake.ping_timeout)));
            let _ = ready.send(true).await;
            c
        }
        Err(e) => {
            shared.group.error(&e);
            let _ = ready.send(false).await;
            // The room is unobserved: its chats cannot be checked.
            return (room, None);
        }
    };
    drop(ready);
    loop {
        tokio::select! {
            r = conn.next_engine() => {
                let r = match r {
                    Ok(pkt) => conn.handle(pkt).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(Some(sio)) => {
                        if let Some(id) = chat_id(&sio) {
                            seen.insert(id);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        shared.group.error(&e);
                        return (room, None);
                    }
                }
            }
            c = stop.changed() => if c.is_err() || *stop.borrow() { break },
        }
    }
    let _ = conn.close().await;
    (room, Some(seen))
}

/// How a life ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Polite,
    Abrupt,
    Silent,
}

/// One client slot: lives until the run stops, with short pauses between.
async fn slot(
    ctx: Arc<Ctx>,
    index: usize,
    rooms: usize,
    ramp: Duration,
    hold: Duration,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(index as u64 + 1);
    let first = Duration::from_millis(rng.below(ramp.as_millis().max(1) as u64));
    if pause(first, &mut stop).await {
        return;
    }
    loop {
        life(&ctx, &mut rng, rooms, hold, &shared, &mut stop).await;
        if *stop.borrow() || pause(rng.ms(500, 3000), &mut stop).await {
            return;
        }
    }
}

/// Sleeps `d`; true if the run stopped meanwhile.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn life(
    ctx: &Arc<Ctx>,
    rng: &mut Rng,
    rooms: usize,
    hold: Duration,
    shared: &Arc<Shared>,
    stop: &mut watch::Receiver<bool>,
) {
    let c = &shared.c;
    c.lives.fetch_add(1, Ordering::Relaxed);
    // 5 % polling only, 25 % WebSocket at once, 70 % polling then upgrade.
    let pick = rng.below(100);
    let transport = if pick < 25 {
        Transport::Websocket
    } else {
        Transport::Polling
    };
    let room = rng.below(rooms as u64) as usize;
    let opened = async {
        let mut conn = Conn::connect(ctx, transport).await?;
        if pick >= 30 {
            conn.upgrade(ctx).await?;
            c.upgrades.fetch_add(1, Ordering::Relaxed);
        } else if pick >= 25 {
            c.polling_only.fetch_add(1, Ordering::Relaxed);
        }
        join(&mut conn, room, ctx.timeout).await?;
        Ok::<_, Error>(conn)
    }
    .await;
    let mut conn = match opened {
        Ok(conn) => conn,
        Err(e) => {
            shared.group.error(&e);
            return;
        }
    };
    c.online.fetch_add(1, Ordering::Relaxed);

    let life_end = tokio::time::Instant::now() + rng.ms(20_000, 120_000);
    let mut next_msg = tokio::time::Instant::now() + rng.ms(500, 5_000);
    let mut own: HashMap<u64, Instant> = HashMap::new();
    let mut acks: HashMap<u64, Instant> = HashMap::new();
    let mut next_ack = 1u64;
    let healthy = loop {
        tokio::select! {
            r = conn.next_engine() => {
                let r = match r {
                    Ok(pkt) => conn.handle(pkt).await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(Some(sio)) => on_packet(&sio, room, &mut own, &mut acks, shared),
                    Ok(None) => {}
                    Err(e) => {
                        shared.group.error(&e);
                        break false;
                    }
                }
            }
            _ = tokio::time::sleep_until(next_msg) => {
                expire(&mut own, &mut acks, ctx.timeout, shared);
                let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                let sent = if rng.below(4) == 0 {
                    let ack = next_ack;
                    next_ack += 1;
                    acks.insert(ack, Instant::now());
                    c.echoes_sent.fetch_add(1, Ordering::Relaxed);
                    conn.send(format!("42{ack}[\"echo\",{{\"id\":{id},\"t\":{}}}]", now_us())).await
                } else {
                    own.insert(id, Instant::now());
                    c.chats_sent.fetch_add(1, Ordering::Relaxed);
                    conn.send(format!(
                        "42[\"chat\",{{\"room\":\"{}\",\"id\":{id},\"text\":\"soak message {id}\"}}]",
                        room_name(room)
                    ))
                    .await
                };
                if let Err(e) = sent {
                    shared.group.error(&e);
                    break false;
                }
                next_msg += rng.ms(1_000, 10_000);
            }
            _ = tokio::time::sleep_until(life_end) => break true,
            _ = stop.changed() => break true,
        }
    };
    c.online.fetch_sub(1, Ordering::Relaxed);
    if !healthy {
        return;
    }
    let end = if *stop.borrow() {
        End::Polite
    } else {
        match rng.below(10) {
            0..6 => End::Polite,
            6..8 => End::Abrupt,
            _ => End::Silent,
        }
    };
    match end {
        End::Polite => {
            // Wait for what is still on its way back, then say goodbye.
            let deadline = tokio::time::Instant::now() + ctx.timeout;
            while !(own.is_empty() && acks.is_empty()) {
                match tokio::time::timeout_at(deadline, conn.recv()).await {
                    Ok(Ok(sio)) => on_packet(&sio, room, &mut own, &mut acks, shared),
                    Ok(Err(e)) => {
                        shared.group.error(&e);
                        return;
                    }
                    Err(_) => break,
                }
            }
            c.own_lost.fetch_add(own.len() as u64, Ordering::Relaxed);
            c.acks_lost.fetch_add(acks.len() as u64, Ordering::Relaxed);
            if let Err(e) = conn.close().await {
                shared.group.error(&e);
            }
            c.polite.fetch_add(1, Ordering::Relaxed);
        }
        End::Abrupt => {
            c.abrupt.fetch_add(1, Ordering::Relaxed);
            drop(conn);
        }
        End::Silent => {
            c.silent.fetch_add(1, Ordering::Relaxed);
            c.held.fetch_add(1, Ordering::Relaxed);
            let shared = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(conn);
                shared.c.held.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
}

/// Books a packet received by a churning client.
fn on_packet(
    sio: &Bytes,
    room: usize,
    own: &mut HashMap<u64, Instant>,
    acks: &mut HashMap<u64, Instant>,
    shared: &Shared,
) {
    let c = &shared.c;
    if let Some(ack) = parse_ack(sio) {
        if acks.remove(&ack).is_some() {
            c.echoes_acked.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    if let Some(id) = chat_id(sio) {
        if own.remove(&id).is_some() {
            c.chats_confirmed.fetch_add(1, Ordering::Relaxed);
            shared.confirmed[room].lock().expect("confirmed").push(id);
        } else {
            c.chats_received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counts as lost what has waited longer than `t` (`--timeout`).
fn expire(
    own: &mut HashMap<u64, Instant>,
    acks: &mut HashMap<u64, Instant>,
    t: Duration,
    shared: &Shared,
) {
    let n = own.len();
    own.retain(|_, at| at.elapsed() < t);
    shared
        .c
        .own_lost
        .fetch_add((n - own.len()) as u64, Ordering::Relaxed);
    let n = acks.len();
    acks.retain(|_, at| at.elapsed() < t);
    shared
        .c
        .acks_lost
        .fetch_add((n - acks.len()) as u64, Ordering::Relaxed);
}
