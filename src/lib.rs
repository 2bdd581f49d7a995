//! crypto-report: AI-written crypto market reports next to a live market dashboard, served
//! from one binary over one embedded redb store.

pub mod allocator;
pub mod api;
pub mod assets;
pub mod build_info;
pub mod cache;
pub mod card;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod demo;
pub mod doctor;
pub mod encoded;
pub mod error;
pub mod i18n;
pub mod import;
pub mod live;
mod lock;
pub mod market;
pub mod metrics;
pub mod pages;
pub mod redis_conn;
pub mod render;
pub mod reports;
pub mod routes;
pub mod search;
pub mod secret;
pub mod server;
pub mod since;
pub mod state;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod tasks;
pub mod workers;

pub use crate::routes::app;
pub use crate::server::{SHUTDOWN_GRACE, serve, shutdown_signal};
pub use crate::state::{AppState, Settings, Shared};
