//! Queueing an encoded packet for one client, under the full-queue policy.

use super::config::FullQueue;
use super::payload::Encoded;

/// Sends an encoded packet to one socket's session, under the full-queue
/// policy: a volatile packet is dropped for a client that is behind; any
/// other packet that does not fit closes the session (so nothing is lost
/// silently), or with [`FullQueue::Drop`] is dropped and counted.
pub(crate) fn deliver(
    session: &crate::engine::Session,
    packet: &Encoded,
    volatile: bool,
    policy: FullQueue,
) -> Result<(), crate::engine::SendError> {
    use crate::engine::SendError;
    if volatile {
        session.send_volatile(&packet.0);
        return Ok(());
    }
    match session.send_all(&packet.0) {
        Err(SendError::QueueFull) if policy == FullQueue::Drop => {
            session.count_dropped();
            Err(SendError::QueueFull)
        }
        Err(SendError::QueueFull) => {
            tracing::warn!(sid = %session.sid(), queued = session.queued_bytes(), "slow consumer: closing");
            session.close_now(crate::engine::CloseReason::SlowConsumer);
            Err(SendError::QueueFull)
        }
        other => other,
    }
}
