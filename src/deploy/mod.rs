//! Deployment: an HTTP service that evaluates circuits on ciphertexts only ([`server`]), its
//! evaluation-key [`store`], the bytes that travel between them ([`wire`]) and the [`Client`]
//! that holds the secret key.
//!
//! The client fetches a circuit, uploads its evaluation key once (`server.key`, public),
//! quantizes and encrypts samples locally, posts them, and decrypts the answer locally: the
//! server sees circuits, evaluation keys and ciphertexts, never a client key or clear data.
//! See `SECURITY.md` for the threat model and what each mode leaks.

pub mod client;
pub mod server;
pub mod store;
pub mod wire;

pub use client::{decrypt_batch, encrypt_batch, Client, Prediction, Session};
pub use server::{ServerConfig, Tokens};
pub use store::KeyStore;
pub use wire::{Batch, BatchKind, CircuitInfo, KeyInfo};
