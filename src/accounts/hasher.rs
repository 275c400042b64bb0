//! Password hashing with bounded memory and bounded waiting.
//!
//! One argon2id hash takes 19 MiB. Run on tokio's blocking pool, each burst
//! of sign-ins grew the process by 19 MiB per concurrent request, and the
//! allocator kept it (glibc's per-thread arenas). Here a fixed set of
//! threads (`DEVX_HASH_CONCURRENCY`, by default one per CPU) does all the
//! hashing, each reusing one memory block for every hash it computes, so the
//! memory is allocated once per thread and bounded by
//! `concurrency x 19 MiB`. Requests wait in a bounded queue
//! (`DEVX_HASH_QUEUE`); past it they are answered 503 with `Retry-After`
//! at once, instead of queueing without end.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::secrets;

/// Why a hash could not be had now.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full.
    #[error("too many sign-ins are being checked right now; try again in a second")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(String),
    /// A password and the stored hash (`None`: check against a dummy and fail).
    Verify(String, Option<String>),
    /// The current password checked, and on success the new one hashed.
    Change {
        current: String,
        stored: Option<String>,
        new: String,
    },
}

enum Outcome {
    Hashed(Result<String, String>),
    Verified(bool),
    Changed(Option<Result<String, String>>),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Outcome>,
}

/// The hashing threads and their queue. Cheap to clone; the threads stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    queue: SyncSender<Job>,
}

impl Hasher {
    /// `threads` hashing threads (at least one) and room for `queue` waiting requests.
    pub fn new(threads: usize, queue: usize) -> Hasher {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("devx-hash-{n}"))
                .spawn(move || work(&rx))
                .expect("the OS starts a hashing thread");
        }
        Hasher { queue: tx }
    }

    async fn run(&self, work: Work) -> Result<Outcome, HashError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { work, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(HashError::Failed("the hashing threads stopped".into())),
        }
        answer.await.map_err(|_| HashError::Failed("a hashing thread stopped".into()))
    }

    /// The PHC string of a new argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        match self.run(Work::Hash(password)).await? {
            Outcome::Hashed(hash) => hash.map_err(HashError::Failed),
            _ => unreachable!("a hash job answers with a hash"),
        }
    }

    /// Whether `password` matches `stored` (argon2 PHC, or an imported
    /// bcrypt hash); with no stored hash, the same
    /// work is done against a dummy and the answer is no, so unknown
    /// accounts cost the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        match self.run(Work::Verify(password, stored)).await? {
            Outcome::Verified(ok) => Ok(ok),
            _ => unreachable!("a verify job answers with a verdict"),
        }
    }

    /// Checks `current` against `stored` and, if it matches, hashes `new`:
    /// `None` when the current password is wrong.
    pub async fn change(
        &self,
        current: String,
        stored: Option<String>,
        new: String,
    ) -> Result<Option<String>, HashError> {
        match self.run(Work::Change { current, stored, new }).await? {
            Outcome::Changed(None) => Ok(None),
            Outcome::Changed(Some(hash)) => hash.map(Some).map_err(HashError::Failed),
            _ => unreachable!("a change job answers with a change"),
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let outcome = match job.work {
            Work::Hash(password) => Outcome::Hashed(hash_with(&mut memory, &password)),
            Work::Verify(password, stored) => Outcome::Verified(verify_with(&mut memory, &password, stored.as_deref())),
            Work::Change { current, stored, new } => Outcome::Changed(
                verify_with(&mut memory, &current, stored.as_deref()).then(|| hash_with(&mut memory, &new)),
            ),
        };
        let _ = job.reply.send(outcome);
    }
}

/// Computes argon2 into `out` with `memory`, grown once to what `params` needs.
fn compute(
    memory: &mut Vec<Block>,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..params.block_count()])
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> Result<String, String> {
    let params = secrets::argon2_params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(memory, &argon2, &params, password, salt_bytes, &mut out).map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

fn verify_with(memory: &mut Vec<Block>, password: &str, stored: Option<&str>) -> bool {
    let dummy = secrets::dummy_hash();
    let (candidate, real) = match stored {
        Some(h) => (h, true),
        None => (dummy, false),
    };
    let ok = if secrets::is_bcrypt(candidate) {
        secrets::verify_bcrypt(password, candidate)
    } else {
        matches(memory, password, candidate)
    };
    ok && real
}

/// Whether `password` hashes to the argon2 PHC string `stored`, under the
/// parameters it was made with.
fn matches(memory: &mut Vec<Block>, password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let version = parsed.version.map(Version::try_from).transpose();
    let (Ok(version), Some(salt), Some(expected)) = (version, parsed.salt, parsed.hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params.clone());
    let mut out = vec![0u8; expected.len()];
    compute(memory, &argon2, &params, password, salt, &mut out).is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_the_standard_phc_format() {
        let hasher = Hasher::new(1, 4);
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
        assert!(!hasher.verify("correct horse".into(), Some("not a hash".into())).await.unwrap());
        // The argon2 crate's own verifier agrees, both ways.
        assert!(secrets::verify_password("correct horse", Some(&hash)));
        let theirs = secrets::hash_password("other params").unwrap();
        assert!(hasher.verify("other params".into(), Some(theirs)).await.unwrap());
        assert_eq!(hasher.change("wrong".into(), Some(hash.clone()), "new one".into()).await.unwrap(), None);
        let changed = hasher.change("correct horse".into(), Some(hash), "new one".into()).await.unwrap().unwrap();
        assert!(hasher.verify("new one".into(), Some(changed)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = Hasher::new(1, 1);
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let hasher = hasher.clone();
            jobs.spawn(async move { hasher.hash("some password".into()).await });
        }
        let results = jobs.join_all().await;
        let busy = results.iter().filter(|r| matches!(r, Err(HashError::Busy))).count();
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert!(busy >= 1, "six at once through one thread and a queue of one: some are refused");
        assert!(done >= 1, "and the ones admitted are hashed");
        assert_eq!(busy + done, 6);
    }
}
